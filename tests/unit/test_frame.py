"""PlanesFrame: the engine's lazily converted frames give the pipeline the same pixels as a
full conversion, for every format, while converting only what is asked for."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.engine import frames as F
from obs_faceswap.frame import LazyFrame, resize_image, warp_image
from obs_faceswap.nets.landmarks import Roi
from obs_faceswap.video_formats import VideoFormat
from tests.unit.engine.test_frames import ALL_FORMATS, NAMES, make_frame

# A scaled or warped read goes through different (but equivalent) resampling than the full
# conversion: bilinear on subsampled planes vs on BGR. Mean absolute difference, 8-bit codes.
SCALED_MEAN_TOL = 3.0


@pytest.fixture(scope="module")
def photo(read_image):
    return cv2.resize(read_image("frec_two_people.jpg"), (1280, 720), interpolation=cv2.INTER_AREA)


def lazy_and_reference(fmt, photo, padding=0):
    color = F.ColorParams.standard("709", full_range=False)
    h, w = photo.shape[:2]
    fb = make_frame(fmt, photo, color, padding=padding)
    reference = F.to_bgr(fb.planes, fmt, w, h, color)
    frame = F.PlanesFrame(fb.planes, fmt, w, h, color, out=np.zeros((h, w, 3), np.uint8))
    return frame, reference


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=lambda f: NAMES[f])
def test_load_converts_exactly_the_box_and_nothing_else(fmt, photo):
    frame, reference = lazy_and_reference(fmt, photo, padding=32)
    assert isinstance(frame, LazyFrame)
    box = frame.load((301.4, 151.2, 700.7, 501.9))
    x0, y0, x1, y1 = box
    assert x0 <= 301 and y0 <= 151 and x1 >= 701 and y1 >= 502
    assert x1 - x0 <= 402 and y1 - y0 <= 353  # grown only to chroma blocks
    np.testing.assert_array_equal(frame.array[y0:y1, x0:x1], reference[y0:y1, x0:x1])
    outside = np.ones(photo.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert not frame.array[outside].any(), "pixels outside the loaded box were converted"
    assert frame.load((320, 160, 400, 300)) == F.align_roi(fmt, 1280, 720, (320, 160, 400, 300))
    assert len(frame.loaded) == 1, "a box inside a loaded one converts nothing"


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=lambda f: NAMES[f])
def test_resize_matches_scaling_the_full_conversion(fmt, photo):
    frame, reference = lazy_and_reference(fmt, photo)
    small = resize_image(frame, (320, 180))
    expected = resize_image(reference, (320, 180))
    assert small.shape == (180, 320, 3)
    assert np.abs(small.astype(int) - expected).mean() < SCALED_MEAN_TOL
    assert not frame.loaded, "resizing must not convert the full-size frame"


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=lambda f: NAMES[f])
@pytest.mark.parametrize("border", [cv2.BORDER_CONSTANT, cv2.BORDER_REPLICATE])
def test_warp_matches_warping_the_full_conversion(fmt, border, photo):
    frame, reference = lazy_and_reference(fmt, photo)
    # a rotated landmark crop around the left face, partly outside the frame at the top
    roi = Roi(cx=320.0, cy=60.0, size=300.0, angle=0.3)
    m = roi.crop_matrix(192)
    got = warp_image(frame, m, (192, 192), border)
    expected = warp_image(reference, m, (192, 192), border)
    assert np.abs(got.astype(int) - expected).mean() < SCALED_MEAN_TOL
    # an up-scaling warp (like a 224 px crop of a small face) converts at full resolution
    m2 = Roi(cx=900.0, cy=300.0, size=120.0, angle=-0.2).crop_matrix(224)
    got2 = warp_image(frame, m2, (224, 224), border)
    expected2 = warp_image(reference, m2, (224, 224), border)
    assert np.abs(got2.astype(int) - expected2).mean() < 1.0


def test_warp_entirely_outside_the_frame_is_black(photo):
    frame, _ = lazy_and_reference(VideoFormat.I420, photo)
    m = Roi(cx=-500.0, cy=-500.0, size=100.0, angle=0.0).crop_matrix(64)
    assert not warp_image(frame, m, (64, 64)).any()
