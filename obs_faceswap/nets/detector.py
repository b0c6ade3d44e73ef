"""Face detectors: YuNet (default), SCRFD (InsightFace format), BlazeFace (short range).

Every detector takes a BGR uint8 image and returns :class:`Detections` in that image's
pixels; nothing found is an empty ``Detections``. Model facts (input layout, colour order,
normalisation, strides) come from the manifest entry, never from tensor shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap.errors import FrameFormatError
from obs_faceswap.runtime import RuntimeConfig, create_session
from obs_faceswap.types import Detections, ImageBGR


class Detector(Protocol):
    """What the tracker needs from a detector."""

    def detect(self, image: ImageBGR) -> Detections: ...


def check_image(image: npt.NDArray[np.uint8]) -> None:
    """Raise :class:`FrameFormatError` unless ``image`` is an (H, W, 3) uint8 array."""
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


class YuNet:
    """YuNet face detector (libfacedetection.train), dynamic input size.

    Args:
        path: ``yunet_n_dynamic.onnx`` (or a fixed-size export).
        runtime: provider preference and threads.
        score_threshold: minimum ``sqrt(cls * obj)``.
        nms_iou: NMS IoU threshold.
        input_size: long side of the detector input in pixels (rounded up to 32). Fixed-size
            models ignore it and letterbox into their own size.
    """

    strides = (8, 16, 32)

    def __init__(self, path: str | Path, runtime: RuntimeConfig | None = None, *,
                 score_threshold: float = 0.6, nms_iou: float = 0.3, input_size: int = 320) -> None:
        self.session = create_session(path, runtime)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        h, w = inp.shape[2], inp.shape[3]
        self.fixed = (int(h), int(w)) if isinstance(h, int) and isinstance(w, int) else None
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.input_size = input_size
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _geometry(self, h: int, w: int) -> tuple[float, int, int]:
        """(scale, padded_h, padded_w) for an h x w image."""
        if self.fixed is not None:
            ph, pw = self.fixed
            return min(ph / h, pw / w), ph, pw
        s = self.input_size / max(h, w)
        rh, rw = max(1, round(h * s)), max(1, round(w * s))
        return s, -(-rh // 32) * 32, -(-rw // 32) * 32

    def detect(self, image: ImageBGR) -> Detections:
        check_image(image)
        h, w = image.shape[:2]
        s, ph, pw = self._geometry(h, w)
        rh, rw = min(ph, max(1, round(h * s))), min(pw, max(1, round(w * s)))
        small = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :rh, :rw] = small.transpose(2, 0, 1)
        outs = dict(zip(self.output_names, self.session.run(self.output_names, {self.input_name: blob})))
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
        if not scores:
            return Detections.empty()
        xyxy = np.concatenate(boxes).astype(np.float32)
        sc = np.concatenate(scores).astype(np.float32)
        kp = np.concatenate(kps).astype(np.float32)
        keep = nms(xyxy, sc, self.nms_iou)
        return Detections(xyxy[keep], sc[keep], kp[keep])
