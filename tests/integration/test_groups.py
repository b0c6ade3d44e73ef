"""``--select all`` means all faces: group photos, a six-person mosaic, a face coming into view.

Each picture is run through the default pipeline (``selection.mode = all``) as a single
frame: every face must be found and swapped, and a cap set by the user (``max_faces``) is
reported as faces left out.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.config import PipelineConfig, SelectionConfig, TrackingConfig
from obs_faceswap.pipeline import Pipeline

pytestmark = pytest.mark.slow

MOSAIC = (
    "faces/dicaprio_2.jpg",
    "faces/johansson_1.jpg",
    "faces/musk_1.jpg",
    "faces/pichai_1.jpg",
    "faces/zuckerberg_1.jpg",
    "faces/jolie_2.jpg",
)


def mosaic(read_image, names=MOSAIC, cell: int = 320) -> np.ndarray:
    """The photos side by side, 3 per row, each centre-cropped to a square ``cell``."""
    tiles = []
    for n in names:
        img = read_image(n)
        h, w = img.shape[:2]
        s = min(h, w)
        y0, x0 = (h - s) // 4, (w - s) // 2  # keep more of the top: faces sit high
        tiles.append(cv2.resize(img[y0 : y0 + s, x0 : x0 + s], (cell, cell), interpolation=cv2.INTER_AREA))
    rows = [np.hstack(tiles[i : i + 3]) for i in range(0, len(tiles), 3)]
    return np.vstack(rows)


def config(**tracking) -> PipelineConfig:
    return PipelineConfig(selection=SelectionConfig(mode="all"), tracking=TrackingConfig(**tracking))


@pytest.fixture(scope="module")
def pipe(store, media):
    return Pipeline(config(), store, source=media("astronaut.png"))


@pytest.mark.parametrize(
    ("name", "faces"), [("faces/jolie_pitt_couple.jpg", 2), ("frec_two_people.jpg", 2), ("mosaic", 6)]
)
def test_every_face_in_a_group_is_found_and_swapped(pipe, read_image, name, faces):
    image = mosaic(read_image) if name == "mosaic" else read_image(name)
    pipe.reset()
    out, report = pipe.process(image)
    assert len(report.faces) == faces
    assert report.swapped == faces
    assert report.left_out == 0
    for f in report.faces:  # each face really changed
        x0, y0, x1, y1 = (int(v) for v in f.xyxy)
        diff = cv2.absdiff(image[y0:y1, x0:x1], out[y0:y1, x0:x1]).max(axis=2) > 8
        assert diff.mean() > 0.2, (name, f.xyxy)


def test_a_cap_set_by_the_user_is_reported_as_faces_left_out(store, media, read_image):
    pipe = Pipeline(config(max_faces=4), store, source=media("astronaut.png"))
    _, report = pipe.process(mosaic(read_image))
    assert report.swapped == 4 and report.left_out == 2


@pytest.mark.parametrize("uncover", [1, 3, 5, 7, 9])
def test_a_face_coming_into_view_is_swapped_within_two_frames(pipe, read_image, uncover):
    """The mosaic with its right half covered, then (from frame ``uncover``, at every phase of
    the detector's 10-frame schedule) uncovered: the faces that appear are swapped within 2
    frames of being visible, although the detector runs on schedule only every 10th frame."""
    image = mosaic(read_image)
    covered = image.copy()
    covered[:, image.shape[1] // 2 :] = 128
    pipe.reset()
    counts, detected = [], []
    for i in range(uncover + 4):
        _, report = pipe.process(covered if i < uncover else image, i / 30)
        counts.append(report.swapped)
        detected.append(report.detected)
    print(f"\nfaces swapped per frame: {counts}, detector ran: {detected}")
    assert counts[:uncover] == [counts[0]] * uncover and counts[0] < 6
    assert min(counts[uncover + 2 :]) == 6
    assert not any(detected[1:uncover]), "a still picture runs the detector on schedule only"


def test_a_still_picture_runs_the_detector_every_tenth_frame(pipe, read_image):
    image = mosaic(read_image)
    pipe.reset()
    detected = [pipe.process(image, i / 30)[1].detected for i in range(21)]
    assert [i for i, d in enumerate(detected) if d] == [0, 10, 20]
