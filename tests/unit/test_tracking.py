"""FaceTracker logic with a fake detector and a fake mesh (a scene of known faces), and the
One Euro filter on synthetic signals. The real-model behaviour is in
tests/integration/test_tracking.py."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from obs_faceswap.config import TrackingConfig
from obs_faceswap.errors import FrameFormatError
from obs_faceswap.landmark_indices import LEFT_EYE, RIGHT_EYE
from obs_faceswap.nets.landmarks import Roi
from obs_faceswap.tracking import FaceSmoother, FaceTracker, OneEuroFilter, TrackResult, box_iou
from obs_faceswap.types import Detections

# --- a scene of faces the fakes "see" -------------------------------------------------------
_rng = np.random.default_rng(7)
TEMPLATE = np.zeros((468, 3), np.float32)
TEMPLATE[:, :2] = _rng.uniform(-0.5, 0.5, (468, 2))
TEMPLATE[list(RIGHT_EYE), :2] = (-0.2, -0.15)  # subject's right eye = image left
TEMPLATE[list(LEFT_EYE), :2] = (0.2, -0.15)
FRAME = np.full((480, 640, 3), 90, np.uint8)


@dataclass
class SceneFace:
    cx: float
    cy: float
    size: float = 100.0
    score: float = 0.9
    visible: bool = True

    def landmarks(self) -> np.ndarray:
        lm = TEMPLATE * self.size
        lm[:, 0] += self.cx
        lm[:, 1] += self.cy
        return lm


@dataclass
class Scene:
    faces: list[SceneFace] = field(default_factory=list)
    noise: float = 0.0
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def visible(self) -> list[SceneFace]:
        return [f for f in self.faces if f.visible]


class FakeDetector:
    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.calls = 0

    def detect(self, image) -> Detections:
        self.calls += 1
        faces = self.scene.visible()
        if not faces:
            return Detections.empty()
        boxes = [(f.cx - f.size / 2, f.cy - f.size / 2, f.cx + f.size / 2, f.cy + f.size / 2) for f in faces]
        kps = []
        for f in faces:
            lm = f.landmarks()
            kps.append(
                [
                    lm[list(RIGHT_EYE), :2].mean(0),
                    lm[list(LEFT_EYE), :2].mean(0),
                    (f.cx, f.cy),
                    (f.cx - 0.15 * f.size, f.cy + 0.25 * f.size),
                    (f.cx + 0.15 * f.size, f.cy + 0.25 * f.size),
                ]
            )
        return Detections(np.array(boxes), np.array([f.score for f in faces]), np.array(kps))


class FakeMesh:
    """Returns the visible face nearest the crop centre, if the crop is on it."""

    crop_scale = 1.5

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.rois: list[Roi] = []
        self.outputs: list[np.ndarray] = []

    def infer(self, image, roi: Roi) -> tuple[np.ndarray, float]:
        self.rois.append(roi)
        best = min(self.scene.visible(), key=lambda f: math.hypot(f.cx - roi.cx, f.cy - roi.cy), default=None)
        if best is None or math.hypot(best.cx - roi.cx, best.cy - roi.cy) > roi.size / 3:
            out = TEMPLATE * roi.size / 2
            out[:, :2] += (roi.cx, roi.cy)
            self.outputs.append(out)
            return out, 0.01
        out = best.landmarks()
        if self.scene.noise:
            out[:, :2] += self.scene.rng.normal(0, self.scene.noise, (468, 2)).astype(np.float32)
        self.outputs.append(out)
        return out, 0.99


def make(scene: Scene, **cfg) -> tuple[FaceTracker, FakeDetector, FakeMesh]:
    det, mesh = FakeDetector(scene), FakeMesh(scene)
    return FaceTracker(det, mesh, TrackingConfig(**cfg)), det, mesh


def ids(result: TrackResult) -> list[int]:
    return [f.track_id for f in result.faces]


# --- FaceTracker -------------------------------------------------------------------------------
def test_detector_runs_every_k_frames_while_tracking_is_good() -> None:
    scene = Scene([SceneFace(300, 200)])
    tracker, det, _ = make(scene, detect_interval=5)
    flags = []
    for i in range(23):
        scene.faces[0].cx = 300 + 0.7 * i  # slow motion: each detection overlaps the track
        r = tracker.update(FRAME)
        flags.append(r.detected)
        assert ids(r) == [0]
        assert ("detect" in r.timings_ms) == r.detected and "landmarks" in r.timings_ms
    assert [i for i, f in enumerate(flags) if f] == [0, 5, 10, 15, 20]
    assert det.calls == 5


def test_interval_one_detects_every_frame() -> None:
    scene = Scene([SceneFace(300, 200)])
    tracker, det, _ = make(scene, detect_interval=1)
    for _ in range(4):
        assert ids(tracker.update(FRAME)) == [0]
    assert det.calls == 4


def test_lost_face_drops_track_and_detects_on_that_frame() -> None:
    scene = Scene([SceneFace(300, 200)])
    tracker, det, _ = make(scene, detect_interval=10)
    for _ in range(3):
        tracker.update(FRAME)
    scene.faces[0].visible = False
    r = tracker.update(FRAME)
    assert r.faces == [] and r.detected and tracker.track_ids == []
    r = tracker.update(FRAME)
    assert r.faces == [] and r.detected  # no track: keep looking every frame
    scene.faces[0].visible = True
    r = tracker.update(FRAME)
    assert r.detected and ids(r) == [1]  # a restarted track is a new track
    np.testing.assert_array_equal(r.faces[0].landmarks, scene.faces[0].landmarks())  # fresh filter


def test_losing_one_of_two_faces_triggers_detection() -> None:
    scene = Scene([SceneFace(150, 200), SceneFace(450, 200)])
    tracker, det, _ = make(scene, detect_interval=5)
    assert ids(tracker.update(FRAME)) == [0, 1]
    assert not tracker.update(FRAME).detected
    scene.faces[1].visible = False
    r = tracker.update(FRAME)  # frame 2: a track is lost, the detector looks again at once
    assert r.detected and ids(r) == [0]
    scene.faces[1].visible = True
    flags = []
    for _ in range(3, 8):
        r = tracker.update(FRAME)
        flags.append((r.detected, ids(r)))
    # back on schedule (every 5 frames from the last run at frame 2): found again at frame 7
    assert flags == [(False, [0])] * 4 + [(True, [0, 2])]


def test_new_face_joins_at_the_next_scheduled_detection() -> None:
    scene = Scene([SceneFace(150, 200), SceneFace(450, 200, visible=False)])
    tracker, _, _ = make(scene, detect_interval=5)
    seen = []
    for i in range(8):
        if i == 2:
            scene.faces[1].visible = True
        seen.append(ids(tracker.update(FRAME)))
    assert seen[:5] == [[0]] * 5 and seen[5:] == [[0, 1]] * 3


def test_detection_overlapping_a_track_keeps_its_id() -> None:
    scene = Scene([SceneFace(300, 200, size=120)])
    tracker, _, _ = make(scene, detect_interval=1)
    for i in range(30):
        scene.faces[0].cx = 300 + 3 * i
        scene.faces[0].cy = 200 + math.sin(i / 3) * 10
        assert ids(tracker.update(FRAME)) == [0]


def test_at_most_max_faces_highest_scores_first() -> None:
    scene = Scene([SceneFace(100, 200, score=0.7), SceneFace(300, 200, score=0.95), SceneFace(500, 200, score=0.8)])
    tracker, det, _ = make(scene, max_faces=2, detect_interval=10)
    r = tracker.update(FRAME)
    assert len(r.faces) == 2
    assert sorted(round(f.score, 2) for f in r.faces) == [0.8, 0.95]
    for _ in range(5):
        assert not tracker.update(FRAME).detected  # full: no detection every frame


def test_smoothing_off_gives_the_raw_mesh_points() -> None:
    scene = Scene([SceneFace(300, 200)], noise=1.0)
    tracker, _, mesh = make(scene, smoothing=False)
    for _ in range(5):
        r = tracker.update(FRAME)
        np.testing.assert_array_equal(r.faces[0].landmarks, mesh.outputs[-1])


def test_smoothing_is_not_fed_back_into_the_crop() -> None:
    scene = Scene([SceneFace(300, 200)], noise=2.0)
    tracker, _, mesh = make(scene, detect_interval=1000)
    tracker.update(FRAME)
    for i in range(1, 15):
        scene.faces[0].cx = 300 + 4 * i
        before = len(mesh.outputs)
        r = tracker.update(FRAME)
        raw_prev = mesh.outputs[before - 1]
        expected = Roi.from_landmarks(raw_prev, mesh.crop_scale)
        assert mesh.rois[before] == expected  # crop from the previous *raw* points
        assert not np.allclose(r.faces[0].landmarks, mesh.outputs[-1])  # output is smoothed


def test_smoothing_cuts_jitter_of_a_still_face() -> None:
    # per-point noise of 0.15 % of the face size, about what the real mesh shows
    scene = Scene([SceneFace(300, 200, size=200)], noise=0.3)
    raw_tracker, _, _ = make(scene, smoothing=False)
    scene2 = Scene([SceneFace(300, 200, size=200)], noise=0.3)
    smooth_tracker, _, _ = make(scene2)
    raw = np.array([raw_tracker.update(FRAME).faces[0].landmarks for _ in range(60)])
    smooth = np.array([smooth_tracker.update(FRAME).faces[0].landmarks for _ in range(60)])
    j_raw = np.sqrt((np.diff(raw[10:, :, :2], axis=0) ** 2).mean())
    j_smooth = np.sqrt((np.diff(smooth[10:, :, :2], axis=0) ** 2).mean())
    assert j_smooth < 0.5 * j_raw


def test_missing_timestamps_mean_30_fps() -> None:
    outs = []
    for use_ts in (False, True):
        scene = Scene([SceneFace(300, 200)], noise=1.0)
        tracker, _, _ = make(scene)
        frames = []
        for i in range(10):
            scene.faces[0].cx = 300 + 2 * i
            frames.append(tracker.update(FRAME, i / 30 if use_ts else None).faces[0].landmarks)
        outs.append(np.array(frames))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-4)


def test_reset_restarts_ids_and_detection() -> None:
    scene = Scene([SceneFace(300, 200)])
    tracker, det, _ = make(scene, detect_interval=50)
    tracker.update(FRAME)
    tracker.update(FRAME)
    tracker.reset()
    assert tracker.track_ids == []
    r = tracker.update(FRAME)
    assert r.detected and ids(r) == [0] and det.calls == 2


def test_frame_size_change_restarts_tracks() -> None:
    scene = Scene([SceneFace(300, 200)])
    tracker, _, _ = make(scene, detect_interval=50)
    tracker.update(FRAME)
    r = tracker.update(np.zeros((720, 1280, 3), np.uint8))
    assert r.detected and ids(r) == [1]


def test_detection_rejected_by_the_mesh_starts_no_track() -> None:
    scene = Scene([SceneFace(300, 200)])
    tracker, det, mesh = make(scene)
    mesh.scene = Scene([])  # the mesh sees nothing where the detector sees a face
    r = tracker.update(FRAME)
    assert r.faces == [] and r.detected and det.calls == 1


@pytest.mark.parametrize("bad", [np.zeros((48, 64), np.uint8), np.zeros((48, 64, 3), np.float32), None])
def test_bad_frame(bad) -> None:
    tracker, _, _ = make(Scene([SceneFace(300, 200)]))
    with pytest.raises(FrameFormatError):
        tracker.update(bad)


def test_box_iou() -> None:
    iou = box_iou((0, 0, 10, 10), [(0, 0, 10, 10), (5, 0, 15, 10), (20, 20, 30, 30)])
    np.testing.assert_allclose(iou, [1.0, 1 / 3, 0.0])


# --- OneEuroFilter -------------------------------------------------------------------------------
def test_first_value_passes_and_constant_stays() -> None:
    f = OneEuroFilter(1.0, 0.5, 1.0)
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(f(x, 0.0), x)
    for i in range(1, 10):
        np.testing.assert_allclose(f(x, i / 30), x)


def test_beta_zero_is_an_exponential_moving_average() -> None:
    f = OneEuroFilter(min_cutoff=2.0, beta=0.0)
    dt = 1 / 30
    alpha = 1 / (1 + 1 / (2 * math.pi * 2.0 * dt))
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(20, 3))
    ema = xs[0].copy()
    f(xs[0], 0.0)
    for i in range(1, 20):
        ema = ema + alpha * (xs[i] - ema)
        np.testing.assert_allclose(f(xs[i], i * dt), ema, rtol=1e-5, atol=1e-6)


def test_elements_are_filtered_independently() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(40) / 30
    sig = np.stack([np.zeros(40), np.cumsum(np.full(40, 3.0))], axis=1) + rng.normal(0, 0.3, (40, 2))
    both = OneEuroFilter(1.0, 0.5)
    alone = [OneEuroFilter(1.0, 0.5), OneEuroFilter(1.0, 0.5)]
    for i in range(40):
        out = both(sig[i], t[i])
        for k in range(2):
            np.testing.assert_allclose(out[k], alone[k](sig[i, k : k + 1], t[i])[0], rtol=1e-5)


def test_beta_trades_lag_for_smoothness() -> None:
    t = np.arange(60) / 30
    ramp = 5.0 * np.arange(60)  # 5 units per frame
    lags = {}
    for beta in (0.0, 1.0):
        f = OneEuroFilter(1.0, beta)
        out = np.array([f(np.array([v]), ti)[0] for v, ti in zip(ramp, t, strict=True)])
        lags[beta] = (ramp[40:] - out[40:]).mean() / 5.0
    assert lags[1.0] < 1.0 < lags[0.0]


def test_derivative_scale_makes_beta_scale_free() -> None:
    rng = np.random.default_rng(3)
    sig = np.cumsum(rng.normal(0, 1, (30, 4)), axis=0)
    a, b = OneEuroFilter(1.0, 2.0), OneEuroFilter(1.0, 2.0)
    for i in range(30):
        out_a = a(sig[i], i / 30, derivative_scale=1.0)
        out_b = b(sig[i] * 10, i / 30, derivative_scale=0.1)
        np.testing.assert_allclose(out_b, out_a * 10, rtol=1e-4, atol=1e-4)


def test_repeated_timestamp_and_reset() -> None:
    f = OneEuroFilter(1.0, 1.0)
    f(np.zeros(2), 1.0)
    out = f(np.ones(2), 1.0)  # same timestamp: treated as one frame later, stays finite
    assert np.all(np.isfinite(out)) and np.all((out > 0) & (out < 1))
    f.reset()
    np.testing.assert_array_equal(f(np.full(2, 7.0), 5.0), [7.0, 7.0])


# --- FaceSmoother -------------------------------------------------------------------------------
def _smoother_mesh(seed: int = 0) -> np.ndarray:
    pts = np.random.default_rng(seed).uniform(-50, 50, (468, 3))
    pts[:, 2] *= 0.3
    return pts + (300.0, 200.0, 0.0)


def test_face_smoother_passes_the_first_mesh_and_a_cut_unchanged() -> None:
    mesh = _smoother_mesh()
    f = FaceSmoother(TrackingConfig())
    np.testing.assert_array_equal(f(mesh, 0.0), mesh.astype(np.float32))
    f(mesh + (0.5, 0.0, 0.0), 1 / 30)
    jumped = mesh + (40.0, 10.0, 0.0)  # 40 % of the face's size in one frame: a cut
    np.testing.assert_array_equal(f(jumped, 2 / 30), jumped.astype(np.float32))


def test_face_smoother_follows_a_rigid_motion_like_the_per_point_filter() -> None:
    mesh = _smoother_mesh()
    cfg = TrackingConfig()
    f, per_point = FaceSmoother(cfg), OneEuroFilter.from_config(cfg)
    for i in range(40):
        moved = mesh + (0.8 * i, -0.4 * i, 0.0)
        a = f(moved, i / 30)
        b = per_point(moved, i / 30, derivative_scale=1 / 100)
    np.testing.assert_allclose(a, b, atol=0.05)  # same lag: the pose uses the config's filter


def test_face_smoother_cuts_the_jitter_of_a_still_face() -> None:
    rng = np.random.default_rng(3)
    mesh = _smoother_mesh()
    f = FaceSmoother(TrackingConfig())
    noise = 0.15  # per point and axis, 0.15 % of the face's size: about what the real mesh shows
    out = np.array([f(mesh + rng.normal(0, noise, mesh.shape), i / 30) for i in range(60)])
    step = np.sqrt((np.diff(out[20:, :, :2], axis=0) ** 2).sum(-1).mean())
    raw_step = noise * 2  # sqrt(2) per axis, two axes
    assert step < 0.4 * raw_step  # measured 0.28 (the eyes' faster filter passes more; the per-point filter 0.23)


def test_the_filters_documented_examples_run() -> None:
    """The docstring examples of the smoothing filters are what they print (a float32 result once wasn't)."""
    import doctest

    import obs_faceswap.tracking as tracking

    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for obj in (tracking.OneEuroFilter, tracking.FaceSmoother):
        for test in finder.find(obj, globs=vars(tracking).copy()):
            runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
    assert runner.summarize(verbose=False).attempted >= 5
