"""Face selection on frec_two_people.jpg (Obama on the left, Biden on the right) with the real
detector, mesh and identity model; frec_obama.jpg / frec_biden.jpg are the reference photos."""

from __future__ import annotations

import pytest

from obs_faceswap.config import DetectorConfig, LandmarkConfig, SelectionConfig
from obs_faceswap.nets.detector import create_detector
from obs_faceswap.nets.landmarks import create_landmarker
from obs_faceswap.nets.recognition import FaceEmbedder
from obs_faceswap.select import ReferenceMatcher, select_faces
from obs_faceswap.tracking import FaceTracker
from obs_faceswap.types import Face

# Same person scores 0.57-0.78 with this model, different people <= 0.53 (models/MANIFEST.md):
# the right face must win by a clear margin.
MIN_MARGIN = 0.1


@pytest.fixture(scope="module")
def detector(store):
    return create_detector(DetectorConfig(input_size=640), store)


@pytest.fixture(scope="module")
def embedder(store) -> FaceEmbedder:
    return FaceEmbedder.from_store(store, "faceres")


@pytest.fixture(scope="module")
def scene(store, detector, read_image) -> tuple[object, list[Face]]:
    frame = read_image("frec_two_people.jpg")
    tracker = FaceTracker(detector, create_landmarker(LandmarkConfig(), store))
    faces = tracker.update(frame).faces
    assert len(faces) == 2
    return frame, faces


def _centre_x(face: Face) -> float:
    return float(face.xyxy[0] + face.xyxy[2]) / 2


def test_index_zero_is_the_left_face(scene) -> None:
    frame, faces = scene
    (left,) = select_faces(faces, SelectionConfig(mode="index", index=0), frame)
    (right,) = select_faces(faces, SelectionConfig(mode="index", index=1), frame)
    assert _centre_x(left) < 500 < _centre_x(right)
    assert select_faces(faces, SelectionConfig(mode="index", index=2), frame) == []


def test_largest_and_all(scene) -> None:
    frame, faces = scene
    (largest,) = select_faces(faces, SelectionConfig(mode="largest"), frame)
    assert largest.area == max(f.area for f in faces)
    assert {f.track_id for f in select_faces(faces, SelectionConfig(mode="all"), frame)} == {0, 1}


@pytest.mark.parametrize(("reference", "side"), [("frec_biden.jpg", "right"), ("frec_obama.jpg", "left")])
def test_reference_photo_picks_that_person(scene, embedder, detector, media, reference: str, side: str) -> None:
    frame, faces = scene
    matcher = ReferenceMatcher(embedder, media(reference), detector)
    (chosen,) = select_faces(faces, SelectionConfig(mode="reference", reference=str(media(reference))), frame, matcher)
    assert (_centre_x(chosen) > 500) == (side == "right")
    sims = sorted(matcher.similarities(faces, frame))
    print(f"{reference}: similarities {[round(s, 3) for s in sims]}")
    assert sims[1] - sims[0] >= MIN_MARGIN
