"""Identity embeddings of aligned faces (for reference-face selection and quality metrics).

Two input conventions are supported, declared by the manifest entry:
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
from obs_faceswap.errors import ModelLoadError
from obs_faceswap.frame import LazyFrame
from obs_faceswap.geometry import align_crop
from obs_faceswap.model_specs import RecognitionSpec, check_input, check_outputs
from obs_faceswap.models import ModelStore
from obs_faceswap.runtime import create_session
from obs_faceswap.types import FloatArray, ImageBGR


class FaceEmbedder:
    """An identity descriptor network on template-aligned crops.

    Args:
        path: the ``.onnx`` file.
        runtime: provider preference and threads.
        spec: the manifest's facts: input size, layout, colour order, normalisation,
            alignment template and outputs (the identity descriptor first). Defaults to the
            ``faceres`` entry.

    Raises:
        ModelLoadError: the file's input or outputs differ from the spec's.
    """

    def __init__(
        self, path: str | Path, runtime: RuntimeConfig | None = None, spec: RecognitionSpec | None = None
    ) -> None:
        from obs_faceswap.models import default_spec

        self.spec = spec = spec or default_spec("faceres", RecognitionSpec)
        if spec.input_hw[0] != spec.input_hw[1] or spec.input_hw[0] <= 0:
            raise ModelLoadError(
                f"manifest entry {spec.name!r}: a recognition model needs a fixed square "
                f"input, got input {list(spec.input_hw)}"
            )
        self.session = create_session(path, runtime)
        check_input(self.session, spec, path, spec.name)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = check_outputs(self.session, spec, path, spec.name)[0]
        self.size, self.layout, self.color, self.template = spec.input_hw[0], spec.layout, spec.color, spec.template
        self.mean = np.array(spec.mean, np.float32)
        self.std = np.array(spec.std, np.float32)

    @classmethod
    def from_store(cls, store: ModelStore, name: str = "faceres", runtime: RuntimeConfig | None = None) -> FaceEmbedder:
        return cls(store.path(name), runtime, store.recognition_spec(name))

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
        out = [
            self.session.run([self.output_name], {self.input_name: np.ascontiguousarray(x[i : i + 1])})[0]
            for i in range(len(x))
        ]
        emb = np.concatenate(out).reshape(len(x), -1).astype(np.float32)
        unit: FloatArray = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return unit

    def embed(self, image: ImageBGR | LazyFrame, keypoints: npt.ArrayLike) -> FloatArray:
        """``(D,)`` L2-normalised embedding of the face with five ``keypoints`` in ``image``."""
        first: FloatArray = self.embed_crops(self.crops(image, [keypoints]))[0]
        return first


def cosine(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Cosine similarity of two vectors."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
