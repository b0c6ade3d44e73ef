"""Identity embeddings of aligned faces (for reference-face selection and quality metrics).

Two input conventions are supported, declared by the manifest entry (or the arguments):
the HSE FaceRes model (NHWC, RGB 0..255, 224 px, ArcFace template) used by this project's
tests and metrics, and InsightFace ArcFace files users may bring (NCHW, RGB,
``(x - 127.5) / 127.5``, 112 px, ``arcface_112_v2``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from obs_faceswap.config import RuntimeConfig
from obs_faceswap.frame import LazyFrame
from obs_faceswap.geometry import align_crop
from obs_faceswap.models import ModelStore
from obs_faceswap.runtime import create_session
from obs_faceswap.types import FloatArray, ImageBGR


class FaceEmbedder:
    """An identity descriptor network on template-aligned crops.

    Args:
        path: the ``.onnx`` file.
        runtime: provider preference and threads.
        input_size: crop side in pixels.
        layout: ``"NHWC"`` or ``"NCHW"``.
        color: ``"RGB"`` or ``"BGR"``.
        mean, std: ``value = (pixel - mean) / std`` (pixel in 0..255).
        template: alignment template name from :data:`obs_faceswap.geometry.TEMPLATES`.
    """

    def __init__(self, path: str | Path, runtime: RuntimeConfig | None = None, *, input_size: int = 224,
                 layout: str = "NHWC", color: str = "RGB", mean: float = 0.0, std: float = 1.0,
                 template: str = "arcface_112_v2") -> None:
        self.session = create_session(path, runtime)
        self.input_name = self.session.get_inputs()[0].name
        outs = self.session.get_outputs()
        # FaceRes has several heads; the identity descriptor is the widest one.
        self.output_name = max(outs, key=lambda o: o.shape[-1] if isinstance(o.shape[-1], int) else 0).name
        self.size, self.layout, self.color = input_size, layout, color
        self.mean, self.std, self.template = float(mean), float(std), template

    @classmethod
    def from_store(cls, store: ModelStore, name: str = "faceres", runtime: RuntimeConfig | None = None) -> FaceEmbedder:
        e = store.entry(name)
        return cls(store.path(name), runtime, input_size=int(e.get("input")[0]), layout=e.get("layout", "NHWC"),
                   color=e.get("color", "RGB"), mean=float(e.get("mean")[0]), std=float(e.get("std")[0]),
                   template=e.get("template", "arcface_112_v2"))

    def crops(self, image: ImageBGR | LazyFrame, keypoints: Sequence[npt.ArrayLike]) -> list[npt.NDArray[np.uint8]]:
        return [align_crop(image, k, self.template, self.size)[0] for k in keypoints]

    def embed_crops(self, crops: Sequence[npt.NDArray[np.uint8]]) -> FloatArray:
        """``(N, D)`` L2-normalised embeddings of already aligned BGR crops."""
        if not crops:
            return np.zeros((0, 0), np.float32)
        batch = np.stack(crops)
        if self.color == "RGB":
            batch = batch[..., ::-1]
        x = (batch.astype(np.float32) - self.mean) / self.std
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        out = [self.session.run([self.output_name], {self.input_name: np.ascontiguousarray(x[i:i + 1])})[0]
               for i in range(len(x))]
        emb = np.concatenate(out).reshape(len(x), -1).astype(np.float32)
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)

    def embed(self, image: ImageBGR | LazyFrame, keypoints: npt.ArrayLike) -> FloatArray:
        """``(D,)`` L2-normalised embedding of the face with five ``keypoints`` in ``image``."""
        return self.embed_crops(self.crops(image, [keypoints]))[0]


def cosine(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Cosine similarity of two vectors."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


