"""Face selection modes and the reference matcher's per-track cache, with fakes."""

from __future__ import annotations

import numpy as np
import pytest

from obs_faceswap.config import SelectionConfig
from obs_faceswap.errors import ConfigError, InputError, NoFaceError
from obs_faceswap.landmark_indices import LEFT_EYE, RIGHT_EYE
from obs_faceswap.select import ReferenceMatcher, select_faces
from obs_faceswap.types import Detections, Face

FRAME = np.zeros((480, 640, 3), np.uint8)
_rng = np.random.default_rng(0)
_TEMPLATE = _rng.uniform(-0.5, 0.5, (468, 3)).astype(np.float32)
_TEMPLATE[list(RIGHT_EYE), :2] = (-0.2, -0.1)
_TEMPLATE[list(LEFT_EYE), :2] = (0.2, -0.1)


def face(track_id: int, cx: float, size: float) -> Face:
    lm = _TEMPLATE * size
    lm[:, 0] += cx
    lm[:, 1] += 240
    return Face(track_id, lm)


# Three faces, listed out of left-to-right order: ids 0 (middle, largest), 1 (right), 2 (left).
FACES = [face(0, 320, 150), face(1, 520, 80), face(2, 100, 100)]


def test_largest() -> None:
    assert [f.track_id for f in select_faces(FACES, SelectionConfig(mode="largest"), FRAME)] == [0]


def test_all_keeps_every_face() -> None:
    assert [f.track_id for f in select_faces(FACES, SelectionConfig(mode="all"), FRAME)] == [0, 1, 2]


@pytest.mark.parametrize(("index", "expected"), [(0, [2]), (1, [0]), (2, [1]), (3, [])])
def test_index_counts_from_the_left(index: int, expected: list[int]) -> None:
    got = select_faces(FACES, SelectionConfig(mode="index", index=index), FRAME)
    assert [f.track_id for f in got] == expected


@pytest.mark.parametrize("mode", ["largest", "all", "index"])
def test_no_faces_selects_nothing(mode: str) -> None:
    assert select_faces([], SelectionConfig(mode=mode), FRAME) == []


def test_reference_mode_needs_a_matcher() -> None:
    with pytest.raises(ConfigError):
        select_faces(FACES, SelectionConfig(mode="reference", reference="ref.jpg"), FRAME)


class FakeEmbedder:
    """Identity = a unit vector chosen by the x position of the face's left eye."""

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, image, keypoints) -> np.ndarray:
        self.calls += 1
        x = float(np.asarray(keypoints)[0, 0])
        v = np.array([np.cos(x / 200), np.sin(x / 200), 0.1], np.float32)
        return v / np.linalg.norm(v)


class FakeDetector:
    def __init__(self, dets: Detections) -> None:
        self.dets = dets

    def detect(self, image) -> Detections:
        return self.dets


def _reference_at(x: float) -> FakeDetector:
    """A detector that 'finds' one face whose left eye is at ``x`` in the reference photo."""
    kps = np.array([[[x, 100], [x + 40, 100], [x + 20, 130], [x + 5, 150], [x + 35, 150]]], np.float32)
    return FakeDetector(Detections(np.array([[x - 20, 60, x + 60, 170]]), np.array([0.9]), kps))


def test_reference_picks_the_most_similar_face() -> None:
    left_eye_x = {f.track_id: float(f.keypoints[0, 0]) for f in FACES}
    emb = FakeEmbedder()
    matcher = ReferenceMatcher(emb, FRAME, _reference_at(left_eye_x[1]))
    got = select_faces(FACES, SelectionConfig(mode="reference", reference="x"), FRAME, matcher)
    assert [f.track_id for f in got] == [1]
    sims = matcher.similarities(FACES, FRAME)
    assert sims[1] == pytest.approx(1.0, abs=1e-5) and max(sims[0], sims[2]) < 0.999


def test_reference_similarity_is_cached_per_track() -> None:
    emb = FakeEmbedder()
    matcher = ReferenceMatcher(emb, FRAME, _reference_at(100.0), reembed_interval=5)
    assert emb.calls == 1  # the reference photo
    for _ in range(5):
        matcher.similarities(FACES, FRAME)
    assert emb.calls == 1 + 3  # once per track in the first 5 frames
    matcher.similarities(FACES, FRAME)
    assert emb.calls == 1 + 6  # stale after 5 frames: embedded again
    matcher.similarities(FACES[:1] + [face(9, 400, 90)], FRAME)
    assert emb.calls == 1 + 7  # only the new track 9
    matcher.similarities(FACES, FRAME)
    assert emb.calls == 1 + 9  # tracks 1 and 2 were forgotten when they left


def test_reference_min_similarity() -> None:
    matcher = ReferenceMatcher(FakeEmbedder(), FRAME, _reference_at(1000.0), min_similarity=0.999)
    assert select_faces(FACES, SelectionConfig(mode="reference", reference="x"), FRAME, matcher) == []
    # The caller can tell "not this person" (faces, best similarity below the bar) from "no face".
    assert matcher.last_best is not None and matcher.last_best < 0.999
    assert select_faces([], SelectionConfig(mode="reference", reference="x"), FRAME, matcher) == []
    assert matcher.last_best is None


def test_reference_threshold_is_validated() -> None:
    assert 0 < SelectionConfig().min_similarity < 1
    with pytest.raises(ConfigError, match="selection.min_similarity"):
        SelectionConfig(min_similarity=1.5)


def test_reference_without_a_face_raises() -> None:
    with pytest.raises(NoFaceError):
        ReferenceMatcher(FakeEmbedder(), FRAME, FakeDetector(Detections.empty()))


def test_unreadable_reference_raises(tmp_path) -> None:
    with pytest.raises(InputError):
        ReferenceMatcher(FakeEmbedder(), tmp_path / "missing.jpg", _reference_at(100.0))
    bad = tmp_path / "not_an_image.jpg"
    bad.write_bytes(b"hello")
    with pytest.raises(InputError):
        ReferenceMatcher(FakeEmbedder(), bad, _reference_at(100.0))
    with pytest.raises(InputError):
        ReferenceMatcher(FakeEmbedder(), np.zeros((10, 10), np.float32), _reference_at(100.0))
