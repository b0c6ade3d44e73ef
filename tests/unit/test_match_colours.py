"""match_colours (the neural swaps' colour transfer) equals color_transfer inside the result's mask."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.masks import box_mask
from obs_faceswap.merge import color_transfer, match_colours
from obs_faceswap.types import SwapResult


def _smooth(rng: np.random.Generator, lo: int, hi: int) -> np.ndarray:
    small = rng.integers(lo, hi, (6, 6, 3), dtype=np.uint8)
    return np.asarray(cv2.resize(small, (128, 128), interpolation=cv2.INTER_CUBIC), np.uint8)


@pytest.mark.parametrize("mode", ["rct", "linear"])
@pytest.mark.parametrize("strength", [1.0, 0.4])
def test_match_colours_equals_color_transfer_with_the_mask_as_selection(mode, strength):
    rng = np.random.default_rng(7)
    crop, live = _smooth(rng, 40, 200), _smooth(rng, 90, 250)  # the live face is brighter
    mask = box_mask(128)
    result = SwapResult(crop, mask, np.array([[3, 0, 10], [0, 3, 20]], np.float32), live=live)
    inside = np.asarray(mask > 127, np.uint8)
    want = color_transfer(crop, live, mode, image_mask=inside, target_mask=inside, strength=strength)
    got = match_colours(result, mode, strength).crop
    assert np.abs(got.astype(np.int16) - want.astype(np.int16)).max() <= 1
    assert np.abs(got.astype(np.int16) - crop.astype(np.int16)).mean() > 5  # it did transfer


def test_match_colours_leaves_a_result_with_a_tiny_mask_unchanged():
    rng = np.random.default_rng(8)
    crop, live = _smooth(rng, 40, 200), _smooth(rng, 90, 250)
    mask = np.zeros((128, 128), np.uint8)
    mask[60:63, 60:63] = 255  # 9 pixels: too few for statistics
    result = SwapResult(crop, mask, np.array([[3, 0, 10], [0, 3, 20]], np.float32), live=live)
    assert match_colours(result) is result
