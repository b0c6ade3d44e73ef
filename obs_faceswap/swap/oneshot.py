"""One spec-driven swapper for the one-photo family (inswapper, HyperSwap, SimSwap, GHOST, ...).

The family's facts come from :data:`obs_faceswap.swap.specs.SPECS`; this module only runs them:

* :class:`ArcFace` — the identity recognizer every embedding-based family needs (InsightFace
  ``w600k_r50`` signature: ``(1, 3, 112, 112)`` RGB ``(x - 127.5) / 127.5`` → 512-d);
* :func:`read_emap` — inswapper's ``emap`` matrix, an initializer no node uses (onnxruntime
  drops it), read from the file with the ``onnx`` package;
* :class:`OneShotSwapper` — a :class:`~obs_faceswap.swap.Swapper`: aligns the live face with the
  family's template, runs the model, and returns the swapped crop with a feathered box mask and
  the live crop (so the merge stage can apply masks and colour transfer). It never blends.

Several source photos of one person are averaged into one identity (mean of the raw
embeddings, then the family's latent); image-source families (BlendSwap, UniFace) use the
first photo.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap import align
from obs_faceswap.config import RuntimeConfig, SwapperConfig
from obs_faceswap.errors import InputError, ModelLoadError
from obs_faceswap.masks import box_mask
from obs_faceswap.runtime import FixedShapeRunner, create_session, output_is_broken
from obs_faceswap.swap.protocol import SourceFace
from obs_faceswap.swap.specs import OneShotSpec, Signature, TensorSig, recognise, swapper_key
from obs_faceswap.types import Box, Face, FloatArray, ImageBGR, SwapResult

log = logging.getLogger(__name__)

#: Name InsightFace gives inswapper's latent-mapping initializer.
EMAP_NAME = "buff2fs"


def read_model(path: str | Path) -> tuple[Signature, FloatArray | None]:
    """The file's :class:`Signature` and inswapper ``emap`` (or None), read once with ``onnx``.

    Parsing a model is costly (hundreds of MB): results are cached per file, size and mtime.

    Raises:
        ModelLoadError: the file is damaged or not an ONNX model.
    """
    p = Path(path)
    st = p.stat()
    return _read_model(str(p.resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=8)
def _read_model(path: str, size: int, mtime_ns: int) -> tuple[Signature, FloatArray | None]:
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:  # pragma: no cover - onnx is a dependency
        raise ModelLoadError("the 'onnx' package is needed to read face-swap models: pip install onnx") from e
    name = Path(path).name
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError, onnx its own errors
        raise ModelLoadError(
            f"cannot load {name}: {str(e).splitlines()[0][:200] if str(e) else type(e).__name__}. "
            f"The file is probably corrupt or not an ONNX model: fetch it again"
        ) from e
    graph = model.graph
    if not graph.input or not graph.output:
        raise ModelLoadError(
            f"cannot load {name}: no graph was found. The file is probably corrupt or not an ONNX model: fetch it again"
        )
    init_names = {t.name for t in graph.initializer}
    _types = {1: "tensor(float)", 10: "tensor(float16)", 7: "tensor(int64)", 11: "tensor(double)"}

    def sig(vi: object) -> TensorSig:
        tt = vi.type.tensor_type  # type: ignore[attr-defined]
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim)
        return TensorSig(str(vi.name), dims, _types.get(int(tt.elem_type), f"tensor({tt.elem_type})"))  # type: ignore[attr-defined]

    inputs = tuple(sig(i) for i in graph.input if i.name not in init_names)
    outputs = tuple(sig(o) for o in graph.output)
    inits = list(graph.initializer)
    chosen = next((t for t in inits if t.name == EMAP_NAME), inits[-1] if inits else None)
    used = {i for n in graph.node for i in n.input}
    emap = None
    unused = chosen is not None and (chosen.name == EMAP_NAME or chosen.name not in used)
    if chosen is not None and unused and tuple(chosen.dims) == (512, 512):
        emap = np.asarray(numpy_helper.to_array(chosen), np.float32)
    return Signature(inputs, outputs, emap is not None), emap


def read_emap(path: str | Path) -> FloatArray:
    """inswapper's ``(512, 512)`` latent map: the initializer ``buff2fs``, else the last initializer
    (no node uses it, so onnxruntime drops it; it is read from the file with ``onnx``).

    Raises:
        ModelLoadError: the file has none (it is not an inswapper model) or cannot be parsed.
    """
    emap = read_model(path)[1]
    if emap is None:
        raise ModelLoadError(f"{Path(path).name} has no 512x512 'emap' initializer; it is not an inswapper model")
    return emap


def _l2(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


class ArcFace:
    """InsightFace ArcFace recognizer (``w600k_r50`` signature) returning raw 512-d embeddings.

    Args:
        path: the ``.onnx`` file (``w600k_r50.onnx`` from ``buffalo_l`` or FaceFusion's
            ``arcface_w600k_r50.onnx``).
        runtime: providers and threads.

    Raises:
        ModelLoadError: the file is not a ``(N, 3, 112, 112)`` → ``(N, 512)`` model.
    """

    size = 112
    template = "arcface_112_v2"

    def __init__(self, path: str | Path, runtime: RuntimeConfig | None = None) -> None:
        self.path = Path(path)
        self.session = create_session(self.path, runtime)
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        shape = tuple(ins[0].shape) if len(ins) == 1 else ()
        if len(ins) != 1 or len(shape) != 4 or tuple(shape[1:]) != (3, 112, 112):
            got = ", ".join(f"{i.name} {list(i.shape)}" for i in ins)
            raise ModelLoadError(
                f"{self.path.name} is not an ArcFace recognizer: it needs one input [1, 3, 112, 112] "
                f"(InsightFace w600k_r50), found {got}. Pass a w600k_r50.onnx with --recognizer"
            )
        if not outs or outs[0].shape[-1] != 512:
            raise ModelLoadError(
                f"{self.path.name} is not an ArcFace recognizer: its output must be 512-d, found "
                f"{list(outs[0].shape) if outs else 'none'}"
            )
        self.input_name = ins[0].name

    def embed_crop(self, crop: ImageBGR) -> FloatArray:
        """Raw (not normalised) ``(512,)`` embedding of a 112×112 ``arcface_112_v2`` BGR crop."""
        x = (crop[..., ::-1].astype(np.float32) - 127.5) / 127.5
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        return np.asarray(self.session.run(None, {self.input_name: x})[0], np.float32).reshape(-1)

    def embed(self, image: ImageBGR, keypoints: npt.ArrayLike) -> FloatArray:
        crop, _ = align.warp_face(image, keypoints, self.template, self.size)
        return self.embed_crop(crop)


class OneShotSwapper:
    """A one-photo swapper for any family of :data:`~obs_faceswap.swap.specs.SPECS`.

    Args:
        path: the swap model (``.onnx``).
        recognizer: the ArcFace model (needed by every family except the image-source ones).
        runtime: providers, device and threads.
        family: the family's name when the file name does not say it (``--model-family``).
        converter: the converter model for SimSwap / GHOST (a path).

    Raises:
        ModelLoadError: the file is damaged, not ONNX, or not a model of a known family (the
            message names what did not match).
    """

    needs_source = True

    def __init__(
        self,
        path: str | Path,
        *,
        recognizer: ArcFace | None = None,
        runtime: RuntimeConfig | None = None,
        family: str | None = None,
        converter: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.runtime = runtime or RuntimeConfig()
        self.signature, emap = read_model(self.path)
        self.spec: OneShotSpec = recognise(self.signature, self.path, family)
        self.emap = emap if self.spec.source == "emap" else None
        self.recognizer = recognizer
        if self.spec.source != "image" and recognizer is None:
            raise ModelLoadError(
                f"{self.path.name} ({self.spec.name}) needs an ArcFace recognizer for the source "
                f"photo: pass --recognizer w600k_r50.onnx (or fetch it: obs-faceswap models fetch "
                f"w600k_r50)"
            )
        self.converter = None
        if self.spec.source == "converter":
            if converter is None:
                raise ModelLoadError(
                    f"{self.spec.name} needs its embedding converter ({self.spec.converter}.onnx): "
                    f"obs-faceswap models fetch {self.spec.converter}"
                )
            self.converter = create_session(converter, self.runtime)
        target = self.signature.input("target")
        assert target is not None
        self._dtype = np.float16 if "float16" in target.dtype else np.float32
        session = create_session(self.path, self.runtime, cuda_graph=self.runtime.cuda_graph)
        self._runner = FixedShapeRunner(session, self.runtime, self.path, name=self.spec.name)
        self._source: npt.NDArray[np.float32] | None = None
        #: ``_source`` in the model's input dtype (converted once, not per frame).
        self._feed_source: npt.NDArray[np.floating] | None = None
        # target = (pixel / 255 - mean) / std per RGB channel, in one OpenCV call (swapRB: the
        # mean and scale are given in the output's RGB order)
        spec = self.spec
        self._blob = cv2.dnn.Image2BlobParams(
            scalefactor=tuple(1.0 / (255.0 * sd) for sd in spec.std),
            mean=tuple(255.0 * mu for mu in spec.mean),
            swapRB=True,
            ddepth=cv2.CV_32F,
        )
        self._mask = box_mask(spec.size)
        #: The target tensor, refilled in place every frame.
        self._target = np.empty((1, 3, spec.size, spec.size), np.float32)
        #: What it was built from (:func:`~obs_faceswap.swap.specs.swapper_key`; see reconfigure).
        self.key: tuple[object, ...] | None = None

    def reconfigure(self, config: SwapperConfig) -> bool:
        """Keep this swapper when the model, family, recognizer and converter are unchanged
        (masks, colour and enhancer are the merge stage's)."""
        return self.key is not None and swapper_key(config) == self.key

    # -- the source ---------------------------------------------------------------------
    def set_source(self, faces: Sequence[SourceFace]) -> None:
        if not faces:
            raise InputError("no source photo given: a one-photo model needs at least one photo of the person")
        spec = self.spec
        if spec.source == "image":
            assert spec.source_template is not None and spec.source_size is not None
            crop, _ = align.warp_face(faces[0].image, faces[0].keypoints, spec.source_template, spec.source_size)
            x = crop[..., ::-1].astype(np.float32) / 255.0
            self._source = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
            self._feed_source = self._source.astype(self._dtype)
            if len(faces) > 1:
                log.info("%s uses one source photo; using %s", spec.name, faces[0].name or "the first")
            return
        assert self.recognizer is not None
        raw = np.mean([self.recognizer.embed(f.image, f.keypoints) for f in faces], axis=0).astype(np.float32)
        self._source = self.latent(raw)[None]
        self._feed_source = self._source.astype(self._dtype)

    def latent(self, raw: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The ``source`` vector for a raw ArcFace embedding, as the family was trained."""
        spec = self.spec
        if spec.source == "emap":
            assert self.emap is not None
            # InsightFace/Deep-Live-Cam: normalise, map, normalise again (FaceFusion skips the last
            # step: same direction, a norm the model was not trained with).
            return _l2(_l2(raw) @ self.emap)
        if spec.source == "embedding":
            return _l2(raw)
        assert self.converter is not None
        name = self.converter.get_inputs()[0].name
        out = np.asarray(
            self.converter.run(None, {name: raw.reshape(1, -1).astype(np.float32)})[0], np.float32
        ).reshape(-1)
        return _l2(out) if spec.normalise_latent else out

    # -- the swap -----------------------------------------------------------------------
    def reads(self, face: Face, frame_hw: tuple[int, int]) -> Box | None:
        m = align.estimate(face.keypoints, self.spec.template, self.spec.size)
        return align.crop_reads(m, self.spec.size, frame_hw)

    def preprocess(self, crop: ImageBGR) -> npt.NDArray[np.float32]:
        """BGR crop → the model's ``target`` tensor (RGB, normalised, NCHW)."""
        return np.asarray(cv2.dnn.blobFromImageWithParams(crop, self._blob), np.float32)

    def postprocess(self, out: npt.NDArray[np.float32]) -> ImageBGR:
        """The model's first output → a BGR uint8 crop."""
        spec = self.spec
        y = np.asarray(out, np.float32).reshape(3, out.shape[-2], out.shape[-1]).transpose(1, 2, 0)
        if spec.output == "denorm":
            y = y * np.array(spec.std, np.float32) + np.array(spec.mean, np.float32)
        y = np.clip(y, 0.0, 1.0)[..., ::-1]
        img = np.asarray(np.rint(y * 255.0), np.uint8)
        if img.shape[:2] != (spec.size, spec.size):
            img = np.asarray(cv2.resize(img, (spec.size, spec.size), interpolation=cv2.INTER_AREA), np.uint8)
        return img

    def swap(self, frame: ImageBGR, face: Face) -> SwapResult | None:
        if self._feed_source is None:
            return None
        spec = self.spec
        live, m = align.warp_face(frame, face.keypoints, spec.template, spec.size)
        target = cv2.dnn.blobFromImageWithParams(live, self._target, self._blob)  # preprocess(), in place
        feed = {
            "target": target if self._dtype == np.float32 else target.astype(self._dtype),
            "source": self._feed_source,
        }
        out = self._runner.run(feed)[0]
        if output_is_broken(out):
            return None
        crop = self.postprocess(out)
        return SwapResult(crop, self._mask, align.invert(m), face.track_id, live=live)

    def reset(self, track_id: int | None = None) -> None:
        """No per-track state."""

    def close(self) -> None:
        self._runner.close()
        self.converter = None
