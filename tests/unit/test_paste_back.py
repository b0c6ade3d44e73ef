"""Paste-back of resampled (neural) results: one BGRA warp of the mask's support, one blend pass."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.config import BlendConfig
from obs_faceswap.masks import box_mask
from obs_faceswap.merge import _blend_inplace, paste_back, result_box
from obs_faceswap.types import SwapResult

#: Largest difference from the two-warp reference (levels), and the share of pixels that may differ.
MAX_LEVELS = 1
MAX_DIFFERENT = 0.002


def _paste_with_separate_warps(frame: np.ndarray, result: SwapResult, opacity: int) -> None:
    """The reference the BGRA paste-back must equal: crop and mask warped separately over the
    whole crop's frame box (crop edges replicated, mask zero outside), then alpha-blended."""
    box = result_box(frame.shape, result)
    assert box is not None
    x0, y0, x1, y1 = box
    m = result.transform.astype(np.float64).copy()
    m[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    crop = cv2.warpAffine(result.crop, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = cv2.warpAffine(result.mask, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    _blend_inplace(frame[y0:y1, x0:x1], crop, mask, opacity)


@pytest.mark.parametrize("mask_reaches_border", [False, True])
@pytest.mark.parametrize(
    ("angle", "scale", "shift", "opacity"),
    [
        (0.0, 7.03, (494.7, 33.6), 1.0),  # a 1080p face: 128 px crop to ~900 px
        (23.0, 3.1, (40.2, -60.7), 1.0),  # rotated, partly above the frame
        (-71.0, 0.45, (310.3, 200.9), 0.6),  # shrunk (a small face), with opacity
        (180.0, 2.0, (700.5, 500.5), 1.0),  # upside down, partly off the right and bottom
    ],
)
def test_resampled_paste_back_matches_separate_warps_of_crop_and_mask(
    angle, scale, shift, opacity, mask_reaches_border
):
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 255, (540, 720, 3), dtype=np.uint8)
    # a smooth crop, like a face: then a coordinate rounded differently moves a value by a level at most
    crop = cv2.resize(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), (128, 128), interpolation=cv2.INTER_CUBIC)
    if mask_reaches_border:  # e.g. a model mask: the zero border must act along the crop's edge
        mask = np.zeros((128, 128), np.uint8)
        mask[3:128, 10:120] = 255
        mask = cv2.GaussianBlur(mask, (0, 0), 4)
    else:
        mask = box_mask(128)
    rot = cv2.getRotationMatrix2D((0, 0), angle, scale)
    rot[:, 2] = shift
    result = SwapResult(crop, mask, rot.astype(np.float32))
    assert not result.is_translation
    want = frame.copy()
    _paste_with_separate_warps(want, result, round(opacity * 255))
    got = frame.copy()
    box = paste_back(got, result, BlendConfig(opacity=opacity))
    # Only the box origin differs from the reference's, and OpenCV's fixed-point coordinates can
    # round a rare pixel the other way there: equal within a level, nearly everywhere exactly.
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert diff.max() <= MAX_LEVELS
    assert (diff > 0).any(axis=2).sum() <= MAX_DIFFERENT * (diff.shape[0] * diff.shape[1])
    changed = np.nonzero((got != frame).any(axis=2))
    assert box is not None and changed[0].size > 100
    x0, y0, x1, y1 = box
    assert changed[1].min() >= x0 and changed[1].max() < x1
    assert changed[0].min() >= y0 and changed[0].max() < y1
    # and inside what result_box promised (what the pipeline loads of a lazily converted frame)
    wx0, wy0, wx1, wy1 = result_box(frame.shape, result)
    assert wx0 <= x0 and wy0 <= y0 and x1 <= wx1 and y1 <= wy1


@pytest.mark.parametrize("mode", ["seamless", "multiband"])
def test_resampled_paste_back_with_other_blend_modes_changes_only_the_masked_region(mode):
    rng = np.random.default_rng(4)
    frame = cv2.resize(rng.integers(0, 255, (9, 12, 3), dtype=np.uint8), (480, 360), interpolation=cv2.INTER_CUBIC)
    crop = cv2.resize(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), (128, 128), interpolation=cv2.INTER_CUBIC)
    rot = cv2.getRotationMatrix2D((0, 0), 17.0, 2.2)
    rot[:, 2] = (150.3, 20.8)
    result = SwapResult(crop, box_mask(128), rot.astype(np.float32))
    out = frame.copy()
    box = paste_back(out, result, BlendConfig(mode=mode))
    outside = cv2.warpAffine(result.mask, rot, (480, 360), flags=cv2.INTER_LINEAR) == 0
    np.testing.assert_array_equal(out[outside], frame[outside])
    assert box is not None and (out != frame).any(axis=2).sum() > 10000
