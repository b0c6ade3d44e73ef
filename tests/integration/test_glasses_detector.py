"""The glasses detector's contract on synthetic UV images of the canonical face model (real photos: test_glasses.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.geometry import load_canonical_face
from obs_faceswap.landmark_indices import LEFT_EYE, RIGHT_EYE
from obs_faceswap.swap.glasses import Glasses, find_glasses, glasses_layout


@pytest.fixture(scope="module")
def uv(store):
    return load_canonical_face(str(store.path("canonical_face"))).uv


def test_layout_rejects_wrong_shapes_and_sizes(uv):
    with pytest.raises(ValueError, match=r"uv must be \(468, 2\)"):
        glasses_layout(np.zeros((10, 2), np.float32), 128)
    with pytest.raises(ValueError, match="at least 16 texels"):
        glasses_layout(uv, 8)


def test_find_rejects_images_of_another_size(uv):
    layout = glasses_layout(uv, 64)
    with pytest.raises(ValueError, match=r"must be \(64, 64\)"):
        find_glasses(np.zeros((32, 32), np.float32), np.ones((32, 32), bool), layout)


def test_plain_skin_has_no_glasses(uv):
    layout = glasses_layout(uv, 128)
    g = find_glasses(np.full((128, 128), 60.0, np.float32), np.ones((128, 128), bool), layout)
    assert not g.found and not g.mask.any() and g.coverage == 0.0
    assert not Glasses.none(128).found


def test_a_drawn_frame_round_both_eyes_is_found_and_masked_without_the_eyes(uv):
    n = 256
    layout = glasses_layout(uv, n)
    img = np.full((n, n), 65.0, np.float32)
    for eye in (RIGHT_EYE, LEFT_EYE):
        pts = uv[list(eye)] * n
        c, half = pts.mean(axis=0), (pts.max(axis=0) - pts.min(axis=0)) / 2
        axes = (int(half[0] + 0.06 * n), int(half[1] + 0.06 * n))
        cv2.ellipse(img, (int(c[0]), int(c[1])), axes, 0, 0, 360, 10.0, 4)
    g = find_glasses(img, np.ones((n, n), bool), layout)
    assert g.found and g.coverage > 0.7  # (where a brow crosses the ring it does not count)
    drawn = img < 30
    assert g.mask[drawn].mean() > 0.9  # the frame ...
    assert not (g.mask & layout.keep).any()  # ... never the eyes
