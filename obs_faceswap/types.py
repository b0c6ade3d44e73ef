"""Plain data types passed between the pipeline's stages.

Conventions used everywhere in the engine:

* images are ``numpy.ndarray`` of ``uint8``, shape ``(H, W, 3)``, **BGR** (OpenCV's order);
* coordinates are ``float32`` pixels of the frame they belong to, ``x`` to the right and
  ``y`` down; boxes are ``xyxy``;
* the five keypoints are, in order: left eye, right eye, nose tip, left mouth corner, right
  mouth corner, where "left" means *image* left (the subject's right eye);
* "nothing found" is an empty array of the right shape, never ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from obs_faceswap.landmark_indices import five_points

#: float32 array of any shape (coordinates, matrices, embeddings).
FloatArray = npt.NDArray[np.float32]
#: ``(H, W, 3)`` uint8 image in OpenCV's BGR order.
ImageBGR = npt.NDArray[np.uint8]
#: ``(h, w)`` uint8 coverage: 255 = fully covered, 0 = not at all.
Mask = npt.NDArray[np.uint8]
#: Integer pixel box ``(x0, y0, x1, y1)``, end-exclusive, clipped to its image.
Box = tuple[int, int, int, int]


def _as_f32(a: object, shape_tail: tuple[int, ...], name: str) -> FloatArray:
    arr = np.asarray(a, dtype=np.float32)
    if arr.size == 0:
        arr = arr.reshape((0, *shape_tail))
    if arr.ndim != 1 + len(shape_tail) or tuple(arr.shape[1:]) != shape_tail:
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, shape_tail))}), got {arr.shape}")
    return arr


@dataclass(frozen=True)
class Detections:
    """N face detections from one image.

    Attributes:
        xyxy: ``(N, 4)`` float32 boxes in image pixels.
        scores: ``(N,)`` float32 confidences in ``[0, 1]``.
        keypoints: ``(N, 5, 2)`` float32 five-point landmarks in image pixels.

    Example:
        >>> d = Detections.empty()
        >>> len(d), d.xyxy.shape
        (0, (0, 4))
    """

    xyxy: FloatArray
    scores: FloatArray
    keypoints: FloatArray

    def __post_init__(self) -> None:
        xyxy = _as_f32(self.xyxy, (4,), "xyxy")
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        kps = _as_f32(self.keypoints, (5, 2), "keypoints")
        if not (len(xyxy) == len(scores) == len(kps)):
            raise ValueError(
                f"xyxy, scores and keypoints must have the same length, got {len(xyxy)}, {len(scores)}, {len(kps)}"
            )
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "keypoints", kps)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32))

    @classmethod
    def concat(cls, items: Sequence[Detections]) -> Detections:
        if not items:
            return cls.empty()
        return cls(
            np.concatenate([d.xyxy for d in items]),
            np.concatenate([d.scores for d in items]),
            np.concatenate([d.keypoints for d in items]),
        )

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index: int | slice | npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> Detections:
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1 if int(index) != -1 else None)
        return Detections(self.xyxy[index], self.scores[index], self.keypoints[index])

    @property
    def areas(self) -> FloatArray:
        """``(N,)`` box areas in square pixels."""
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        areas: FloatArray = (wh[:, 0] * wh[:, 1]).astype(np.float32)
        return areas

    def scaled(self, sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> Detections:
        """Map coordinates with ``x' = x * sx + dx`` and ``y' = y * sy + dy``."""
        s = np.array([sx, sy], np.float32)
        d = np.array([dx, dy], np.float32)
        xyxy = (self.xyxy.reshape(-1, 2, 2) * s + d).reshape(-1, 4)
        return Detections(xyxy, self.scores, self.keypoints * s + d)


@dataclass(frozen=True)
class Face:
    """One tracked face in one frame.

    Attributes:
        track_id: stable id of this face across frames (0, 1, 2, ... in order of appearance).
        landmarks: ``(468, 3)`` or ``(478, 3)`` float32 mesh points in frame pixels; ``z`` is in
            the same pixel scale, smaller is closer to the camera (MediaPipe's convention).
        presence: face-presence probability from the landmark model, ``[0, 1]``.
        score: detection score of the detection this track was last (re)started from.
    """

    track_id: int
    landmarks: FloatArray
    presence: float = 1.0
    score: float = 1.0

    def __post_init__(self) -> None:
        lm = np.asarray(self.landmarks, dtype=np.float32)
        if lm.ndim != 2 or lm.shape[1] != 3 or lm.shape[0] not in (468, 478):
            raise ValueError(f"landmarks must have shape (468, 3) or (478, 3), got {lm.shape}")
        object.__setattr__(self, "landmarks", lm)

    @property
    def xyxy(self) -> FloatArray:
        """Bounding box of the mesh points, ``(4,)`` float32."""
        pts = self.landmarks[:, :2]
        return np.concatenate([pts.min(axis=0), pts.max(axis=0)]).astype(np.float32)

    @property
    def keypoints(self) -> FloatArray:
        """The five alignment points ``(5, 2)`` derived from the mesh (image-left eye first)."""
        return five_points(self.landmarks)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.xyxy
        return float(max(0.0, x1 - x0) * max(0.0, y1 - y0))


@dataclass(frozen=True)
class SwapResult:
    """What a swapper produces for one face: a crop, its mask and where it goes.

    Merging (colour transfer, blending) and pasting back are separate pure functions in
    :mod:`obs_faceswap.merge`; a swapper never touches the frame.

    Attributes:
        crop: ``(h, w, 3)`` uint8 BGR image of the swapped face.
        mask: ``(h, w)`` uint8 coverage, 255 = use the crop, 0 = keep the frame.
        transform: ``(2, 3)`` float32 affine matrix mapping crop pixels to frame pixels.
        track_id: the face this result belongs to.
        live: optional ``(h, w, 3)`` uint8 BGR live face in the crop's frame (same size as
            ``crop``). Neural swappers set it: the merge stage then refines ``mask`` (occlusion,
            parsing, mouth) and colour-matches ``crop`` to it. ``None`` (the photo swapper) =
            the result is final.
    """

    crop: ImageBGR
    mask: Mask
    transform: FloatArray
    track_id: int = 0
    live: ImageBGR | None = None

    def __post_init__(self) -> None:
        if self.crop.ndim != 3 or self.crop.shape[2] != 3 or self.crop.dtype != np.uint8:
            raise ValueError(f"crop must be (h, w, 3) uint8, got {self.crop.shape} {self.crop.dtype}")
        if self.mask.shape != self.crop.shape[:2] or self.mask.dtype != np.uint8:
            raise ValueError(f"mask must be {self.crop.shape[:2]} uint8, got {self.mask.shape} {self.mask.dtype}")
        t = np.asarray(self.transform, dtype=np.float32)
        if t.shape != (2, 3):
            raise ValueError(f"transform must be (2, 3), got {t.shape}")
        object.__setattr__(self, "transform", t)
        if self.live is not None and (self.live.shape != self.crop.shape or self.live.dtype != np.uint8):
            raise ValueError(f"live must be {self.crop.shape} uint8 like crop, got {self.live.shape} {self.live.dtype}")

    @property
    def is_translation(self) -> bool:
        """True when the transform only shifts the crop (no resampling needed on paste)."""
        rows: list[list[float]] = self.transform.tolist()  # per frame: plain floats, no numpy calls
        (a, b, tx), (c, d, ty) = rows
        return (
            abs(a - 1) < 1e-6
            and abs(d - 1) < 1e-6
            and abs(b) < 1e-6
            and abs(c) < 1e-6
            and tx == round(tx)
            and ty == round(ty)
        )


@dataclass
class FrameReport:
    """What :meth:`Pipeline.process` tells about one frame.

    Attributes:
        faces: the faces found (after selection), in frame pixels.
        swapped: how many faces were swapped into the output.
        timings_ms: per-stage wall time in milliseconds (``detect``, ``landmarks``, ``swap``,
            ``merge``, ``total``, ...); a stage that did not run is absent.
        changed_xyxy: ``(4,)`` int box of the region of the output that differs from the
            input (``None`` when nothing changed). Integer, clipped to the frame.
        changed_boxes: the same region as separate boxes (one per swapped face, one for the
            badge), so a caller can copy back far fewer pixels than ``changed_xyxy`` spans.
        detected: whether the detector ran on this frame (vs. tracking only).
        left_out: faces found but not tracked because of ``tracking.max_faces`` (counted on
            frames where the detector ran; 0 without a limit).
    """

    faces: list[Face] = field(default_factory=list)
    swapped: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    changed_xyxy: Box | None = None
    changed_boxes: list[Box] = field(default_factory=list)
    detected: bool = False
    index: int = 0
    left_out: int = 0
