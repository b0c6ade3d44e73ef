"""Face detectors: YuNet (default), SCRFD (InsightFace format), BlazeFace (short/full range).

Every detector takes a BGR uint8 image and returns :class:`Detections` in that image's
pixels; nothing found is an empty ``Detections``. Model facts (input layout, colour order,
normalisation, strides) come from the manifest entry, never from tensor shapes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap.config import DetectorConfig, RuntimeConfig
from obs_faceswap.errors import ConfigError, FrameFormatError, ModelLoadError, ModelNotFoundError
from obs_faceswap.frame import LazyFrame, resize_image
from obs_faceswap.geometry import TEMPLATES
from obs_faceswap.model_specs import DetectorSpec, check_input, check_outputs
from obs_faceswap.runtime import create_session
from obs_faceswap.types import Detections, ImageBGR

if TYPE_CHECKING:  # pragma: no cover
    from obs_faceswap.models import ModelStore

log = logging.getLogger(__name__)

#: Names the user sees for a detector file they chose.
SETTING = "detector.model, --detector-model"


def _spec(spec: DetectorSpec | None, default: str, family: str) -> DetectorSpec:
    from obs_faceswap.models import default_spec

    spec = spec or default_spec(default, DetectorSpec)
    if spec.family != family:
        raise ConfigError(f"manifest entry {spec.name!r} is a {spec.family} detector, not {family}")
    return spec


class Detector(Protocol):
    """What the tracker needs from a detector."""

    def detect(self, image: ImageBGR | LazyFrame) -> Detections: ...


def check_image(image: npt.NDArray[np.uint8] | LazyFrame) -> None:
    """Raise :class:`FrameFormatError` unless ``image`` is an (H, W, 3) uint8 array (or a
    :class:`~obs_faceswap.frame.LazyFrame` of that shape)."""
    if isinstance(image, LazyFrame):
        if len(image.shape) != 3 or image.shape[2] != 3 or image.shape[0] < 8 or image.shape[1] < 8:
            raise FrameFormatError(f"expected an (H, W, 3) frame of at least 8x8, got {image.shape}")
        return
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise FrameFormatError(f"expected an (H, W, 3) uint8 BGR image, got shape {shape} dtype {dtype}")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise FrameFormatError(f"image too small: {image.shape[1]}x{image.shape[0]}")


def nms(xyxy: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], iou: float) -> npt.NDArray[np.intp]:
    """Indices kept by greedy non-maximum suppression, best first."""
    if len(scores) == 0:
        return np.zeros((0,), np.intp)
    boxes = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), 0.0, iou)
    return np.asarray(keep, np.intp).reshape(-1)


def suppressed(
    boxes: list[npt.NDArray[np.float32]],
    scores: list[npt.NDArray[np.float32]],
    keypoints: list[npt.NDArray[np.float32]],
    iou: float,
) -> Detections:
    """Per-stride candidates concatenated and reduced by NMS (empty when there are none)."""
    if not scores:
        return Detections.empty()
    xyxy = np.concatenate(boxes).astype(np.float32)
    sc = np.concatenate(scores).astype(np.float32)
    kp = np.concatenate(keypoints).astype(np.float32)
    keep = nms(xyxy, sc, iou)
    return Detections(xyxy[keep], sc[keep], kp[keep])


class YuNet:
    """YuNet face detector (libfacedetection.train), dynamic input size.

    Args:
        path: ``yunet_n_dynamic.onnx`` (or a fixed-size export).
        runtime: provider preference and threads.
        spec: the manifest's facts (strides, outputs); defaults to the ``yunet`` entry.
        score_threshold: minimum ``sqrt(cls * obj)``.
        nms_iou: NMS IoU threshold.
        input_size: long side of the detector input in pixels (rounded up to 32). Fixed-size
            models ignore it and letterbox into their own size.

    Raises:
        ModelLoadError: the file's input or outputs differ from the spec's (the message names
            expected and found).
    """

    def __init__(
        self,
        path: str | Path,
        runtime: RuntimeConfig | None = None,
        spec: DetectorSpec | None = None,
        *,
        score_threshold: float = 0.6,
        nms_iou: float = 0.3,
        input_size: int = 320,
    ) -> None:
        self.spec = _spec(spec, "yunet", "yunet")
        self.strides = self.spec.strides
        self.session = create_session(path, runtime)
        check_input(self.session, self.spec, path, SETTING)
        self.output_names = check_outputs(self.session, self.spec, path, SETTING)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        h, w = inp.shape[2], inp.shape[3]
        self.fixed = (int(h), int(w)) if isinstance(h, int) and isinstance(w, int) else None
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.input_size = input_size

    def _geometry(self, h: int, w: int) -> tuple[float, int, int]:
        """(scale, padded_h, padded_w) for an h x w image."""
        if self.fixed is not None:
            ph, pw = self.fixed
            return min(ph / h, pw / w), ph, pw
        s = self.input_size / max(h, w)
        rh, rw = max(1, round(h * s)), max(1, round(w * s))
        return s, -(-rh // 32) * 32, -(-rw // 32) * 32

    def detect(self, image: ImageBGR | LazyFrame) -> Detections:
        check_image(image)
        h, w = image.shape[:2]
        s, ph, pw = self._geometry(h, w)
        rh, rw = min(ph, max(1, round(h * s))), min(pw, max(1, round(w * s)))
        small = resize_image(image, (rw, rh))
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :rh, :rw] = small.transpose(2, 0, 1)
        outs = dict(
            zip(self.spec.output_names, self.session.run(self.output_names, {self.input_name: blob}), strict=True)
        )
        dets = self._decode(outs, ph, pw)
        return dets.scaled(1.0 / s, 1.0 / s)

    def _decode(self, outs: dict[str, npt.NDArray[np.float32]], ph: int, pw: int) -> Detections:
        boxes, scores, kps = [], [], []
        for st in self.strides:
            cols = pw // st
            cls = outs[f"cls_{st}"][0, :, 0]
            obj = outs[f"obj_{st}"][0, :, 0]
            score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
            idx = np.nonzero(score >= self.score_threshold)[0]
            if len(idx) == 0:
                continue
            gx = (idx % cols).astype(np.float32)
            gy = (idx // cols).astype(np.float32)
            b = outs[f"bbox_{st}"][0, idx]
            cx, cy = (gx + b[:, 0]) * st, (gy + b[:, 1]) * st
            bw, bh = np.exp(b[:, 2]) * st, np.exp(b[:, 3]) * st
            boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1))
            k = outs[f"kps_{st}"][0, idx].reshape(-1, 5, 2)
            kps.append(np.stack([(gx[:, None] + k[:, :, 0]) * st, (gy[:, None] + k[:, :, 1]) * st], axis=2))
            scores.append(score[idx])
        return suppressed(boxes, scores, kps, self.nms_iou)


def _letterbox(image: ImageBGR | LazyFrame, side: int) -> tuple[npt.NDArray[np.uint8], float]:
    """Resize ``image`` to fit a ``side`` x ``side`` square, padded black at the bottom/right.

    Returns:
        ``(square, scale)`` where square pixel = image pixel x ``scale``.
    """
    h, w = image.shape[:2]
    scale = side / max(h, w)
    rh, rw = min(side, max(1, round(h * scale))), min(side, max(1, round(w * scale)))
    square = np.zeros((side, side, 3), np.uint8)
    square[:rh, :rw] = resize_image(image, (rw, rh))
    return square, scale


def _static_dim(value: object) -> int | None:
    return int(value) if isinstance(value, int) and value > 0 else None


class SCRFD:
    """SCRFD face detector in InsightFace's format (``scrfd_*_bnkps.onnx``, ``det_10g.onnx``, ...).

    The frame is letterboxed into a square (padded bottom/right), normalised as
    ``(RGB - mean) / std`` and decoded as InsightFace's ``scrfd.py`` does: per stride ``s``
    the anchor centres are ``(col * s, row * s)``, each repeated ``anchors_per_cell`` times;
    boxes are distances ``(left, top, right, bottom)`` and keypoints offsets from the centre,
    both in units of ``s``.

    Outputs are found the way InsightFace finds them: files that name them
    ``score_8 … bbox_8 … kps_8 …`` are read by name; otherwise the outputs must be the
    InsightFace export order, scores for every stride, then boxes, then keypoints (the
    9-output layout of ``det_10g.onnx``, whose outputs carry numeric names). Batched
    (``[1, A, C]``) and unbatched (``[A, C]``) outputs are both accepted.

    Args:
        path: the ``.onnx`` file.
        runtime: provider preference and threads.
        spec: the manifest's facts (strides, anchors per cell, normalisation, colour order,
            outputs); defaults to the ``scrfd`` entry.
        score_threshold: minimum score.
        nms_iou: NMS IoU threshold.
        input_size: side of the square input (rounded up to 32) when the model's input is
            dynamic; a fixed-size model uses its own size.

    Raises:
        ModelLoadError: the file's outputs are not in the SCRFD layout (keypoints included).
    """

    def __init__(
        self,
        path: str | Path,
        runtime: RuntimeConfig | None = None,
        spec: DetectorSpec | None = None,
        *,
        score_threshold: float = 0.5,
        nms_iou: float = 0.4,
        input_size: int = 640,
    ) -> None:
        self.spec = spec = _spec(spec, "scrfd", "scrfd")
        if len(set(spec.anchors_per_cell)) != 1 or len(set(spec.mean)) != 1 or len(set(spec.std)) != 1:
            raise ConfigError(
                f"manifest entry {spec.name!r}: SCRFD needs one anchors_per_cell and one mean/std for all channels"
            )
        self.session = create_session(path, runtime)
        check_input(self.session, spec, path, SETTING)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        h, w = _static_dim(inp.shape[2]), _static_dim(inp.shape[3])
        if h is not None and w is not None and h != w:
            raise ModelLoadError(f"{Path(path).name}: SCRFD input must be square, got {h}x{w}")
        self.side = h if h is not None else -(-int(input_size) // 32) * 32
        self.strides = spec.strides
        self.anchors = spec.anchors_per_cell[0]
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.mean, self.std = spec.mean[0], spec.std[0]
        self.swap_rb = spec.color == "RGB"
        names = self._find_outputs([o.name for o in self.session.get_outputs()], Path(path).name)
        self.output_names = check_outputs(
            self.session, spec, path, SETTING, None if names == list(spec.output_names) else names
        )
        self._centres: dict[int, npt.NDArray[np.float32]] = {}

    def _find_outputs(self, names: list[str], file: str) -> list[str]:
        """Output names ordered scores x strides, boxes x strides, keypoints x strides."""
        named = list(self.spec.output_names)
        if all(n in names for n in named):
            return named
        n = len(self.strides)
        if len(names) == 3 * n:
            log.debug("%s: outputs are not named score_/bbox_/kps_; using InsightFace's order", file)
            return names
        if len(names) == 2 * n:
            raise ModelLoadError(
                f"{file} is an SCRFD model without keypoints ({len(names)} outputs); the face "
                f"mesh needs the 5 keypoints: use a *_bnkps / *_kps model such as det_10g.onnx"
            )
        raise ModelLoadError(
            f"{file} does not look like an SCRFD model for strides {self.strides}: expected outputs "
            f"named {', '.join(named)} or {3 * n} outputs in InsightFace's order (scores, boxes, "
            f"keypoints per stride), got {len(names)}: {', '.join(names[:12])}"
        )

    def _anchor_centres(self, stride: int) -> npt.NDArray[np.float32]:
        c = self._centres.get(stride)
        if c is None:
            g = self.side // stride
            ys, xs = np.mgrid[:g, :g]
            c = (np.stack([xs, ys], axis=-1).reshape(-1, 2) * stride).astype(np.float32)
            c = np.repeat(c, self.anchors, axis=0)
            self._centres[stride] = c
        return c

    def detect(self, image: ImageBGR | LazyFrame) -> Detections:
        """Faces in a BGR uint8 image, in that image's pixels.

        Raises:
            FrameFormatError: ``image`` is not ``(H, W, 3)`` uint8.
            ModelLoadError: an output's size does not match the strides and anchors.
        """
        check_image(image)
        square, scale = _letterbox(image, self.side)
        blob = cv2.dnn.blobFromImage(
            square, 1.0 / self.std, (self.side, self.side), (self.mean, self.mean, self.mean), swapRB=self.swap_rb
        )
        outs = self.session.run(self.output_names, {self.input_name: blob})
        return self._decode(outs).scaled(1.0 / scale, 1.0 / scale)

    def _decode(self, outs: list[npt.NDArray[np.float32]]) -> Detections:
        n = len(self.strides)
        boxes, scores, kps = [], [], []
        for i, st in enumerate(self.strides):
            centres = self._anchor_centres(st)
            sc = np.asarray(outs[i]).reshape(-1)
            if sc.size != len(centres):
                raise ModelLoadError(
                    f"SCRFD output {self.output_names[i]} has {sc.size} scores, expected "
                    f"{len(centres)} for stride {st} at {self.side} px with {self.anchors} anchors "
                    f"per cell; check the model's strides/anchors (manifest) and output order"
                )
            idx = np.nonzero(sc >= self.score_threshold)[0]
            if len(idx) == 0:
                continue
            c = centres[idx]
            d = np.asarray(outs[i + n]).reshape(-1, 4)[idx] * st
            boxes.append(np.concatenate([c - d[:, :2], c + d[:, 2:]], axis=1))
            k = np.asarray(outs[i + 2 * n]).reshape(-1, 10)[idx].reshape(-1, 5, 2) * st
            kps.append(c[:, None, :] + k)
            scores.append(sc[idx])
        return suppressed(boxes, scores, kps, self.nms_iou)


#: Mouth half-width as a fraction of the eye-to-eye vector, from the ArcFace 5-point template
#: (mouth corners 0.2605 apart, eye centres 0.3146 apart): BlazeFace gives only the mouth
#: centre, and the 5-point order needs both corners.
MOUTH_HALF_WIDTH = float(
    (TEMPLATES["arcface_112_v2"][4, 0] - TEMPLATES["arcface_112_v2"][3, 0])
    / (TEMPLATES["arcface_112_v2"][1, 0] - TEMPLATES["arcface_112_v2"][0, 0])
    / 2
)


def blazeface_five_points(six: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Map BlazeFace's 6 keypoints to the project's 5-point order.

    BlazeFace gives (subject's) right eye, left eye, nose tip, mouth centre, right ear
    tragion, left ear tragion; on an unmirrored image the subject's right eye is the
    image-left one. The two mouth corners are estimated: the mouth centre moved along the eye
    line by :data:`MOUTH_HALF_WIDTH` of the eye-to-eye vector each way (the ArcFace template's
    proportions), which keeps the estimate rotation-correct. Ears are dropped.

    Args:
        six: ``(N, 6, 2)`` BlazeFace keypoints.

    Returns:
        ``(N, 5, 2)`` float32: image-left eye, image-right eye, nose, image-left mouth corner,
        image-right mouth corner.
    """
    six = np.asarray(six, np.float32).reshape(-1, 6, 2)
    eye_vec = six[:, 1] - six[:, 0]
    mouth = six[:, 3]
    left = mouth - MOUTH_HALF_WIDTH * eye_vec
    right = mouth + MOUTH_HALF_WIDTH * eye_vec
    return np.stack([six[:, 0], six[:, 1], six[:, 2], left, right], axis=1).astype(np.float32)


class BlazeFace:
    """MediaPipe BlazeFace (short range 128 px, or full range 192 px).

    The frame is letterboxed into the square input (padded bottom/right), normalised as
    ``(RGB - mean) / std``; SSD anchors are laid out per stride (row-major cells, the cell's
    anchors consecutive) with centres at ``(i + 0.5) / grid``; the regressor gives the box
    centre, size and 6 keypoints in input pixels relative to the anchor centre; the score is
    ``sigmoid(classificator)``. Keypoints become the 5-point order with
    :func:`blazeface_five_points`.

    The short-range model only sees faces that fill a good part of the frame (selfie
    distance), by design: use it as a fast path for webcams.

    Args:
        path: the ``.onnx`` file.
        runtime: provider preference and threads.
        spec: the manifest's facts: strides (one per anchor layer group; short range 8, 16,
            full range 4), anchors per cell for each stride (short range 2, 6; full 1),
            normalisation and outputs (regressor, then classifier). Defaults to the
            ``blazeface`` entry.
        score_threshold: minimum probability.
        nms_iou: NMS IoU threshold.

    Raises:
        ModelLoadError: the file's input or outputs differ from the spec's, or their anchor
            count does not match the spec's strides and anchors per cell.
    """

    def __init__(
        self,
        path: str | Path,
        runtime: RuntimeConfig | None = None,
        spec: DetectorSpec | None = None,
        *,
        score_threshold: float = 0.5,
        nms_iou: float = 0.3,
    ) -> None:
        self.spec = spec = _spec(spec, "blazeface", "blazeface")
        self.session = create_session(path, runtime)
        file = Path(path).name
        check_input(self.session, spec, path, SETTING)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        h, w = _static_dim(inp.shape[1]), _static_dim(inp.shape[2])
        if h is None or h != w:
            raise ModelLoadError(f"{file}: BlazeFace needs a fixed square NHWC input, got {inp.shape}")
        self.side = h
        self.output_names = check_outputs(self.session, spec, path, SETTING)
        strides, per_cell = list(spec.strides), list(spec.anchors_per_cell)
        self.anchors = self._make_anchors(strides, per_cell)
        reg = next(o for o in self.session.get_outputs() if o.name == self.output_names[0])
        n_out = _static_dim(reg.shape[1])
        if n_out is not None and n_out != len(self.anchors):
            raise ModelLoadError(
                f"{file}: the model has {n_out} anchors but strides {tuple(strides)} with "
                f"{tuple(per_cell)} anchors per cell at {self.side} px give {len(self.anchors)}"
            )
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        if len(set(spec.mean)) != 1 or len(set(spec.std)) != 1:
            raise ConfigError(f"manifest entry {spec.name!r}: BlazeFace needs one mean/std for all channels")
        self.mean, self.std = spec.mean[0], spec.std[0]

    def _make_anchors(self, strides: list[int], per_cell: list[int]) -> npt.NDArray[np.float32]:
        out = []
        for st, k in zip(strides, per_cell, strict=True):
            g = self.side // st
            ys, xs = np.mgrid[:g, :g]
            c = (np.stack([xs, ys], axis=-1).reshape(-1, 2) + 0.5) * (self.side / g)
            out.append(np.repeat(c, k, axis=0))
        return np.concatenate(out).astype(np.float32)

    def detect(self, image: ImageBGR | LazyFrame) -> Detections:
        """Faces in a BGR uint8 image, in that image's pixels.

        Raises:
            FrameFormatError: ``image`` is not ``(H, W, 3)`` uint8.
        """
        check_image(image)
        square, scale = _letterbox(image, self.side)
        blob = (cv2.cvtColor(square, cv2.COLOR_BGR2RGB).astype(np.float32) - self.mean) * (1.0 / self.std)
        reg, cls = self.session.run(self.output_names, {self.input_name: blob[None]})
        # MediaPipe clips logits to +-100; +-80 keeps exp() finite in float32.
        logits = np.clip(np.asarray(cls, np.float32).reshape(-1), -80.0, 80.0)
        scores = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        idx = np.nonzero(scores >= self.score_threshold)[0]
        if len(idx) == 0:
            return Detections.empty()
        r = np.asarray(reg, np.float32).reshape(len(self.anchors), -1)[idx]
        a = self.anchors[idx]
        centre = a + r[:, 0:2]
        half = r[:, 2:4] / 2
        xyxy = np.concatenate([centre - half, centre + half], axis=1)
        six = a[:, None, :] + r[:, 4:16].reshape(-1, 6, 2)
        keep = nms(xyxy, scores[idx], self.nms_iou)
        dets = Detections(xyxy[keep], scores[idx][keep], blazeface_five_points(six[keep]))
        return dets.scaled(1.0 / scale, 1.0 / scale)


def create_detector(config: DetectorConfig, store: ModelStore, runtime: RuntimeConfig | None = None) -> Detector:
    """Build the detector ``config.kind`` names, with the facts of its manifest entry.

    ``config.model`` (a path) replaces the manifest's file but keeps the entry's facts
    (normalisation, strides, anchors, signature): e.g. ``kind="scrfd", model="det_10g.onnx"``.
    A file that does not fit the entry's signature is refused with expected and found outputs.

    Args:
        config: kind, optional model path, thresholds and input size.
        store: where the default files are found.
        runtime: provider preference and threads.

    Returns:
        A :class:`YuNet`, :class:`SCRFD` or :class:`BlazeFace`.

    Raises:
        ModelNotFoundError: ``config.model`` does not exist, or the default file is missing.
        ModelCorruptError: the default file fails verification.
        ModelLoadError: the file is not a model of that kind (its input or outputs differ
            from the manifest entry's).
    """
    spec = store.detector_spec(config.kind)
    if config.model:
        path = Path(config.model).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(f"detector model {path} not found (detector.model)")
    else:
        path = store.path(config.kind)
    log.info(
        "detector %s: %s (input %d, score >= %.2f)", config.kind, path.name, config.input_size, config.score_threshold
    )
    common = {"score_threshold": config.score_threshold, "nms_iou": config.nms_iou}
    if spec.family == "yunet":
        return YuNet(path, runtime, spec, input_size=config.input_size, **common)
    if spec.family == "scrfd":
        return SCRFD(path, runtime, spec, input_size=config.input_size, **common)
    if spec.family == "blazeface":
        return BlazeFace(path, runtime, spec, **common)
    raise ConfigError(f"detector family {spec.family!r} has no implementation")  # pragma: no cover
