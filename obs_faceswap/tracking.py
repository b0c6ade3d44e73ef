"""Detect-then-track: the detector runs every k frames, the mesh follows the face in between.

Each frame, every live track takes its landmark crop from its own previous (raw) landmarks
(:meth:`Roi.from_landmarks`), which is both cheaper and steadier than detecting again. A
track whose face-presence score falls below the threshold is dropped. The detector runs on
a fixed schedule (every ``detect_interval`` frames), whenever there is no track, and
whenever a track was lost since the last detection; a detection that overlaps a live track
keeps that track (and its id), the others start new tracks, at most ``max_faces``.

Between scheduled detections a cheap check looks for faces coming into view: the frame,
sampled on a coarse grid (:data:`CHANGE_WIDTH` samples across), is compared with the same
samples at the last detection, away from the tracked faces; when enough of them changed, the
detector runs then (the check runs every ``change_interval`` frames after a detection). A
still picture then costs one detection every ``detect_interval`` frames, and a face that comes
into view is still found within ``change_interval - 1`` frames of being fully visible.

The points given out are One Euro filtered (:class:`OneEuroFilter`), but the crop fed back
into the next frame uses the raw points: feeding smoothed points back would add their lag
to the tracking itself.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap.config import TrackingConfig
from obs_faceswap.frame import LazyFrame, resize_image
from obs_faceswap.landmark_indices import LEFT_EYE, RIGHT_EYE
from obs_faceswap.nets.detector import Detector, check_image
from obs_faceswap.nets.landmarks import Roi
from obs_faceswap.types import Face, FloatArray, ImageBGR

log = logging.getLogger(__name__)

#: Frame rate assumed when :meth:`FaceTracker.update` gets no timestamp.
DEFAULT_FPS = 30.0
#: A detection whose box overlaps a live track's landmark box by more than this IoU is the
#: same face (the mesh box and a detector box of one face overlap by ~0.5-0.8).
TRACK_IOU = 0.3
#: The change check's grid: this many samples across the frame (16 px apart at 720p).
CHANGE_WIDTH = 80
#: A sample has changed when a channel differs by more than this (0-255) from the last detection.
CHANGE_LEVEL = 24
#: This many changed samples away from the tracked faces (about a 60 px face at 720p) is
#: something coming into view.
CHANGE_SAMPLES = 12
#: Tracked faces' boxes are grown by this fraction of their size on each side before their
#: samples are ignored: hair, neck and the head's own motion change there all the time.
CHANGE_FACE_GROW = 0.5


class Landmarker(Protocol):
    """What the tracker needs from a landmark model (:class:`~obs_faceswap.nets.landmarks.FaceMesh`)."""

    crop_scale: float

    def infer(self, image: ImageBGR | LazyFrame, roi: Roi) -> tuple[FloatArray, float]: ...


def _alpha(dt: float, cutoff: npt.NDArray[np.float64] | float) -> npt.NDArray[np.float64] | float:
    """Exponential smoothing factor of a first-order low-pass at ``cutoff`` Hz over ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """The One Euro filter (Casiez et al., CHI 2012), vectorised: every element of the array
    is filtered independently, with its own speed-dependent cutoff.

    Slow changes (jitter) are smoothed at ``min_cutoff`` Hz; the cutoff rises with the speed
    ``|dx/dt|`` (itself low-passed at ``d_cutoff`` Hz) by ``beta``, so real motion passes
    with little lag. As in MediaPipe, the speed is measured from the previous *raw* value and
    can be multiplied by ``derivative_scale`` (e.g. ``1 / face_size``) so ``beta`` does not
    depend on how large the object is in pixels.

    Args:
        min_cutoff: cutoff frequency when still, Hz (lower = smoother, more lag).
        beta: cutoff increase per unit of (scaled) speed (higher = less lag when moving).
        d_cutoff: cutoff of the speed estimate, Hz.

    Example:
        >>> f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
        >>> f(np.zeros(3), 0.0).tolist(), [round(v, 3) for v in f(np.ones(3), 1 / 30).tolist()]
        ([0.0, 0.0, 0.0], [0.173, 0.173, 0.173])
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    @classmethod
    def from_config(cls, config: TrackingConfig) -> OneEuroFilter:
        return cls(config.min_cutoff, config.beta, config.d_cutoff)

    @property
    def fresh(self) -> bool:
        """Whether the next value passes through unchanged (nothing filtered since the last reset)."""
        return self._x is None

    def reset(self) -> None:
        """Forget the history: the next value passes through unchanged."""
        self._t: float | None = None
        self._raw: npt.NDArray[np.float64] | None = None
        self._x: npt.NDArray[np.float64] | None = None
        self._dx: npt.NDArray[np.float64] | None = None

    def __call__(self, x: npt.ArrayLike, t: float, *, derivative_scale: float = 1.0) -> FloatArray:
        """Filter one sample.

        Args:
            x: the new value (any shape; the same shape every call until :meth:`reset`).
            t: its timestamp in seconds. A timestamp that does not advance is taken as one
                frame at :data:`DEFAULT_FPS` later.
            derivative_scale: factor applied to the speed before ``beta`` (e.g. 1/face size).

        Returns:
            The filtered value, float32, shape of ``x``.
        """
        v = np.asarray(x, np.float64)
        if self._x is None or self._raw is None or self._dx is None or self._t is None or self._raw.shape != v.shape:
            self._t, self._raw, self._x = float(t), v.copy(), v.copy()
            self._dx = np.zeros_like(v)
            return v.astype(np.float32)
        dt = float(t) - self._t
        if not dt > 0.0:
            dt = 1.0 / DEFAULT_FPS
        dx = (v - self._raw) * (derivative_scale / dt)
        self._dx = self._dx + _alpha(dt, self.d_cutoff) * (dx - self._dx)
        a = _alpha(dt, self.min_cutoff + self.beta * np.abs(self._dx))
        self._x = self._x + a * (v - self._x)
        self._raw = v.copy()
        self._t = self._t + dt
        return self._x.astype(np.float32)


#: The expression (the mesh's shape relative to its rigid pose, see :class:`FaceSmoother`) is
#: smoothed at this cutoff when still, Hz, rising by this much per face size per second of
#: (per-point) speed; its speed estimate follows at this cutoff, Hz (faster than the pose's, so
#: a blink, ~3 frames, opens the filter in time). Measured on dfl_Obama_speaking.mp4 against
#: the raw mesh: the eye aspect ratio's correlation 0.953 and the mouth opening's 0.992 (the
#: per-point filter before: 0.951 and 0.992), no lag (the best frame shift is 0).
EXPRESSION_MIN_CUTOFF = 0.5
EXPRESSION_BETA = 60.0
EXPRESSION_D_CUTOFF = 3.0
#: The eyes' contours (and irises) get a faster expression filter: a blink shuts in 2-3 frames
#: and the slower filter halves its depth (measured: 0.63 -> 0.72 of the open eye aspect).
EYELID_MIN_CUTOFF = 1.0
EYELID_BETA = 240.0
#: A rigid jump of more than this share of the face's size between two frames is a cut (or
#: the mesh snapping to the face again): the filters start over instead of smearing it. (At
#: that speed the pose filter is open anyway: a fast head turn loses nothing.)
CUT_JUMP = 0.05
#: Anchors of the pose, in face sizes from the reference mesh's centre: their filtered
#: positions give the filtered pose (an affine map of 3D points).
_ANCHORS = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


class FaceSmoother:
    """One Euro smoothing of a face mesh, split into its rigid pose and its expression.

    Each frame the raw mesh is fitted with a 3D similarity (scale, rotation, translation) from
    the track's first mesh (the reference). The pose is filtered as four anchor points carried
    by it (:class:`OneEuroFilter` with the config's ``min_cutoff``, ``beta`` and ``d_cutoff``:
    it follows the head as closely as the per-point filter did); what the pose does not
    explain (the expression, and the mesh's own point-by-point jitter) is filtered per point
    in the reference's frame (:data:`EXPRESSION_MIN_CUTOFF`, :data:`EXPRESSION_BETA`,
    :data:`EXPRESSION_D_CUTOFF`). The head's motion then no longer
    opens every point's filter to its jitter, and no point's jitter moves the whole face.

    A rigid jump larger than :data:`CUT_JUMP` face sizes between two frames (a hard cut in the
    video, the mesh finding the face again) restarts both filters: the new place is taken at
    once instead of being smeared over the next frames.

    Args:
        config: the tracking settings.

    Example:
        >>> smoother = FaceSmoother(TrackingConfig())
        >>> mesh = np.random.default_rng(0).uniform(0, 100, (468, 3))
        >>> bool((smoother(mesh, 0.0) == mesh.astype(np.float32)).all())  # the first passes as is
        True
    """

    def __init__(self, config: TrackingConfig) -> None:
        self.pose = OneEuroFilter.from_config(config)
        self.expression = OneEuroFilter(EXPRESSION_MIN_CUTOFF, EXPRESSION_BETA, EXPRESSION_D_CUTOFF)
        self.eyelids = OneEuroFilter(EYELID_MIN_CUTOFF, EYELID_BETA, EXPRESSION_D_CUTOFF)
        self.reset()

    def reset(self) -> None:
        """Forget the history and the reference: the next mesh passes through unchanged."""
        self.pose.reset()
        self.expression.reset()
        self.eyelids.reset()
        self._reference: npt.NDArray[np.float64] | None = None  # centred
        self._eyes = np.zeros(0, np.intp)  # the eyes' points (see EYELID_BETA)
        self._rest = np.zeros(0, np.intp)  # the other points
        self._size = 1.0  # the reference's size (mean of its box's sides), pixels
        self._variance = 1.0  # the reference's mean squared distance from its centre
        self._last: npt.NDArray[np.float64] | None = None  # the last raw anchors

    def __call__(self, points: npt.ArrayLike, t: float) -> FloatArray:
        """Filter one ``(N, 3)`` mesh (frame pixels) taken at ``t`` seconds.

        Returns:
            The smoothed mesh, float32, shape of ``points``; the first mesh after a (re)start
            unchanged.
        """
        raw = np.asarray(points, np.float64)
        if self._reference is None or self._reference.shape != raw.shape:
            self.reset()
            self._reference = raw - raw.mean(axis=0)
            self._variance = max(float((self._reference**2).sum()) / len(raw), 1e-9)
            box = _landmark_box(raw.astype(np.float32))
            self._size = max(float((box[2] - box[0] + box[3] - box[1]) / 2), 1.0)
            eyes = np.zeros(len(raw), bool)
            eyes[[i for i in (*RIGHT_EYE, *LEFT_EYE) if i < len(raw)]] = True
            eyes[468:] = True  # the 478-point mesh's irises
            self._eyes, self._rest = np.flatnonzero(eyes), np.flatnonzero(~eyes)
        ref = self._reference
        scale, rot, shift = self._fit(raw)
        posed = scale * ref @ rot.T + shift  # the reference moved with the head
        anchors = scale * (_ANCHORS * self._size) @ rot.T + shift
        size = scale * self._size  # the face's size now
        if self._last is not None:
            jump = float(np.sqrt(((anchors - self._last) ** 2).sum(axis=1)).max())
            if jump > CUT_JUMP * size:
                log.debug("mesh jumped %.1f px: smoothing starts over", jump)
                self.pose.reset()
                self.expression.reset()
                self.eyelids.reset()
        self._last = anchors
        fresh = self.pose.fresh
        # the expression in the reference's frame and size: the head's motion is not in it
        expression = (raw - posed) @ rot / scale
        smooth_expr = np.empty_like(expression)
        eyes, rest = self._eyes, self._rest
        smooth_expr[rest] = self.expression(expression[rest], t, derivative_scale=1.0 / self._size)
        smooth_expr[eyes] = self.eyelids(expression[eyes], t, derivative_scale=1.0 / self._size)
        smooth_anchors = self.pose(anchors, t, derivative_scale=1.0 / max(size, 1.0)).astype(np.float64)
        if fresh:  # (the round trip through the fit is exact only to float rounding)
            passed: FloatArray = np.array(points, np.float32)
            return passed
        # the filtered pose: the affine map that takes the anchors to their filtered places
        linear = (smooth_anchors[1:] - smooth_anchors[0]).T / self._size
        out: FloatArray = ((ref + smooth_expr) @ linear.T + smooth_anchors[0]).astype(np.float32)
        return out

    def _fit(self, raw: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """:func:`~obs_faceswap.geometry.similarity` from the reference to ``raw``, with the
        reference's own terms computed once (half the time of the general fit)."""
        assert self._reference is not None
        centre = raw.mean(axis=0)
        u, sv, vt = np.linalg.svd((raw - centre).T @ self._reference)
        d = np.ones(3)
        if np.linalg.det(u @ vt) < 0:
            d[2] = -1.0
        rot = (u * d) @ vt
        scale = float((sv * d).sum()) / (len(raw) * self._variance)
        return scale, rot, centre


@dataclass
class TrackResult:
    """What :meth:`FaceTracker.update` found in one frame.

    Attributes:
        faces: the tracked faces, by track id; ``landmarks`` in frame pixels (smoothed when
            smoothing is on).
        detected: whether the detector ran on this frame.
        timings_ms: ``"landmarks"`` (every mesh call this frame) and ``"detect"`` (only when
            the detector ran), milliseconds.
    """

    faces: list[Face] = field(default_factory=list)
    detected: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)
    left_out: int = 0  # faces the detector found beyond ``max_faces`` (when it ran)


@dataclass
class _Track:
    track_id: int
    raw: FloatArray
    presence: float
    score: float
    smoother: FaceSmoother


def box_iou(box: npt.ArrayLike, boxes: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """IoU of one ``xyxy`` box against ``(M, 4)`` boxes."""
    a = np.asarray(box, np.float64).reshape(4)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:2], b[:, :2])
    hi = np.minimum(a[2:], b[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area_a = np.prod(np.clip(a[2:] - a[:2], 0, None))
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    iou: npt.NDArray[np.float64] = inter / np.maximum(area_a + area_b - inter, 1e-9)
    return iou


def _landmark_box(points: FloatArray) -> FloatArray:
    xy = points[:, :2]
    return np.concatenate([xy.min(axis=0), xy.max(axis=0)]).astype(np.float32)


class FaceTracker:
    """Faces with stable ids across frames, from a detector and a face mesh.

    Args:
        detector: anything with ``detect(image) -> Detections``.
        mesh: anything with ``infer(image, roi) -> (points, presence)`` (a
            :class:`~obs_faceswap.nets.landmarks.FaceMesh`); its ``crop_scale`` (default 1.5)
            sets the crop size.
        config: detection interval, presence threshold, smoothing, face limit.
        fps: frame rate assumed when ``update`` gets no timestamp.

    Example:
        >>> tracker = FaceTracker(create_detector(...), create_landmarker(...))  # doctest: +SKIP
        >>> result = tracker.update(frame, timestamp=0.0)  # doctest: +SKIP
    """

    def __init__(
        self, detector: Detector, mesh: Landmarker, config: TrackingConfig | None = None, *, fps: float = DEFAULT_FPS
    ) -> None:
        self.detector = detector
        self.mesh = mesh
        self.config = config or TrackingConfig()
        self.fps = float(fps)
        self.crop_scale = float(getattr(mesh, "crop_scale", 1.5))
        self._next_id = 0
        self.reset()

    def reset(self) -> None:
        """Forget every track (ids restart at 0); the next frame runs the detector."""
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._countdown = 0
        self._since = 0  # frames since the detector last ran
        self._reference: npt.NDArray[np.uint8] | None = None  # the grid samples then
        self._reference_boxes: list[FloatArray] = []  # the tracked faces' boxes then
        self._expected = 0
        self._last_t: float | None = None
        self._shape: tuple[int, ...] | None = None
        self._warned_cap = False

    @property
    def track_ids(self) -> list[int]:
        """Ids of the live tracks."""
        return [t.track_id for t in self._tracks]

    def update(self, frame: ImageBGR | LazyFrame, timestamp: float | None = None) -> TrackResult:
        """Track the faces in the next frame.

        Args:
            frame: ``(H, W, 3)`` uint8 BGR.
            timestamp: seconds (any origin, increasing); ``None`` = previous + 1/fps.

        Returns:
            The faces, whether the detector ran, and per-stage timings.

        Raises:
            FrameFormatError: ``frame`` is not ``(H, W, 3)`` uint8.
        """
        check_image(frame)
        if self._shape is not None and frame.shape != self._shape:
            log.info("frame size changed %s -> %s: restarting tracking", self._shape, frame.shape)
            self._tracks = []
            self._countdown = 0
        self._shape = frame.shape
        t = (
            float(timestamp)
            if timestamp is not None
            else (0.0 if self._last_t is None else self._last_t + 1.0 / self.fps)
        )
        self._last_t = t
        cfg = self.config
        mesh_s = 0.0

        # 1. Follow every live track from its own previous raw landmarks.
        alive: list[_Track] = []
        for tr in self._tracks:
            roi = Roi.from_landmarks(tr.raw, self.crop_scale)
            t0 = time.perf_counter()
            pts, presence = self.mesh.infer(frame, roi)
            mesh_s += time.perf_counter() - t0
            if presence < cfg.presence_threshold:
                log.debug("track %d lost (presence %.2f)", tr.track_id, presence)
                continue
            tr.raw, tr.presence = pts, presence
            alive.append(tr)
        self._tracks = alive

        # 2. Detect on schedule, with no track, when a track was lost since the last run, or
        #    when the picture away from the tracked faces changed (a face coming into view).
        self._countdown -= 1
        self._since += 1
        detected = not alive or self._countdown <= 0 or len(alive) < self._expected
        timings: dict[str, float] = {}
        samples: npt.NDArray[np.uint8] | None = None
        # (checked every change_interval-th frame only: a face that appears just after a check
        # is still found at the next one, and the grid costs ~1 ms on packed YUY2 frames)
        if not detected and cfg.change_interval and self._since % cfg.change_interval == 0:
            t0 = time.perf_counter()
            samples = self._samples(frame)
            detected = self._changed(samples, [_landmark_box(tr.raw) for tr in alive])
            timings["change"] = (time.perf_counter() - t0) * 1e3
        left_out = 0
        if detected:
            t0 = time.perf_counter()
            dets = self.detector.detect(frame)
            timings["detect"] = (time.perf_counter() - t0) * 1e3
            self._countdown = cfg.detect_interval
            for i in np.argsort(-dets.scores, kind="stable"):
                if (
                    self._tracks
                    and box_iou(dets.xyxy[i], np.stack([_landmark_box(tr.raw) for tr in self._tracks])).max()
                    > TRACK_IOU
                ):
                    continue
                if cfg.max_faces and len(self._tracks) >= cfg.max_faces:
                    left_out += 1
                    continue
                t0 = time.perf_counter()
                started = self._start_track(frame, dets.xyxy[i], dets.keypoints[i], float(dets.scores[i]))
                mesh_s += time.perf_counter() - t0
                if started is not None:
                    self._tracks.append(started)
            self._expected = len(self._tracks)
            self._since = 0
            if cfg.change_interval:
                self._reference = samples if samples is not None else self._samples(frame)
                self._reference_boxes = [_landmark_box(tr.raw) for tr in self._tracks]
        timings["landmarks"] = mesh_s * 1e3

        # 3. Smoothed copies go out; the raw points stay for the next crop.
        faces = []
        for tr in self._tracks:
            lm = tr.raw
            if cfg.smoothing:
                lm = tr.smoother(tr.raw, t)
            faces.append(Face(tr.track_id, lm, presence=tr.presence, score=tr.score))
        if left_out and not self._warned_cap:
            log.warning("%d face(s) left unswapped: tracking.max_faces (--max-faces) is %d", left_out, cfg.max_faces)
            self._warned_cap = True
        return TrackResult(faces=faces, detected=detected, timings_ms=timings, left_out=left_out)

    def _samples(self, frame: ImageBGR | LazyFrame) -> npt.NDArray[np.uint8]:
        """The frame on the change check's coarse grid (:data:`CHANGE_WIDTH` samples across)."""
        h, w = frame.shape[:2]
        return resize_image(frame, (CHANGE_WIDTH, max(1, round(CHANGE_WIDTH * h / w))))

    def _changed(self, samples: npt.NDArray[np.uint8], boxes: list[FloatArray]) -> bool:
        """Whether :data:`CHANGE_SAMPLES` grid samples away from ``boxes`` (the tracked faces now)
        and from the faces tracked at the last detection changed since then."""
        ref = self._reference
        if ref is None or ref.shape != samples.shape:
            return True
        b, g, r = cv2.split(cv2.absdiff(samples, ref))  # (numpy's max over 3 channels is 20x slower)
        changed = np.asarray(cv2.max(cv2.max(b, g), r), np.uint8) > CHANGE_LEVEL
        if np.count_nonzero(changed) < CHANGE_SAMPLES or self._shape is None:
            return bool(np.count_nonzero(changed) >= CHANGE_SAMPLES)  # (ignoring faces only lowers it)
        faces = [*boxes, *self._reference_boxes]
        if faces:
            xyxy = np.asarray(faces, np.float64).reshape(-1, 4)
            grow = CHANGE_FACE_GROW * (xyxy[:, 2:] - xyxy[:, :2])
            s = samples.shape[1] / self._shape[1]  # grid samples per frame pixel
            lo = np.maximum(np.floor((xyxy[:, :2] - grow) * s), 0).astype(int)
            hi = np.maximum(np.ceil((xyxy[:, 2:] + grow) * s), 0).astype(int)
            for (x0, y0), (x1, y1) in zip(lo.tolist(), hi.tolist(), strict=True):
                changed[y0:y1, x0:x1] = False
        return bool(np.count_nonzero(changed) >= CHANGE_SAMPLES)

    def _start_track(
        self, frame: ImageBGR | LazyFrame, xyxy: FloatArray, keypoints: FloatArray, score: float
    ) -> _Track | None:
        """A new track from a detection, or None when the mesh sees no face there."""
        roi = Roi.from_keypoints(xyxy, keypoints, self.crop_scale)
        pts, presence = self.mesh.infer(frame, roi)
        if presence < self.config.presence_threshold:
            log.debug("detection at %s rejected by the mesh (presence %.2f)", np.round(xyxy), presence)
            return None
        # A second pass from the mesh's own crop: detector boxes are sized differently from
        # the landmark crop used while tracking, and the first tracked frame would jump.
        pts2, presence2 = self.mesh.infer(frame, Roi.from_landmarks(pts, self.crop_scale))
        if presence2 >= self.config.presence_threshold:
            pts, presence = pts2, presence2
        track = _Track(self._next_id, pts, presence, score, FaceSmoother(self.config))
        self._next_id += 1
        log.debug("track %d started (score %.2f)", track.track_id, score)
        return track
