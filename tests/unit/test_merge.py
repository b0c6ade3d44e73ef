"""Colour transfer and paste-back (obs_faceswap.merge) on synthetic data."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.config import BlendConfig
from obs_faceswap.masks import box_mask
from obs_faceswap.merge import (
    LabStats,
    _blend_inplace,
    color_transfer,
    lab_stats,
    linear_matrix,
    match_colours,
    medians,
    paste_back,
    rct_matrix,
    result_box,
    to_lab,
)
from obs_faceswap.types import SwapResult

SKIN_A = np.array([70.0, 12.0, 18.0])  # a light skin tone in L*a*b*
SKIN_B = np.array([45.0, 20.0, 28.0])  # a darker, warmer one


def lab_image(mean: np.ndarray, std: np.ndarray, shape=(64, 64), corr: float = 0.0, seed: int = 0) -> np.ndarray:
    """BGR uint8 image whose L*a*b* values are Gaussian with the given mean/std."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((*shape, 3))
    if corr:
        z[..., 1] = corr * z[..., 0] + np.sqrt(1 - corr**2) * z[..., 1]
    lab = (mean + z * std).astype(np.float32)
    bgr = cv2.cvtColor(lab, cv2.COLOR_Lab2BGR)
    return cv2.convertScaleAbs(bgr, alpha=255.0)


def stats(img: np.ndarray, mask: np.ndarray | None = None) -> LabStats:
    s = lab_stats(img, mask)
    assert s is not None
    return s


def test_rct_moves_mean_and_std_to_the_target():
    src = lab_image(SKIN_A, np.array([6.0, 2.0, 3.0]), seed=1)
    dst = lab_image(SKIN_B, np.array([4.0, 3.0, 2.0]), seed=2)
    out = color_transfer(src, dst, "rct")
    got, want = stats(out), stats(dst)
    np.testing.assert_allclose(got.mean, want.mean, atol=0.8)
    np.testing.assert_allclose(got.std, want.std, rtol=0.15, atol=0.4)
    assert np.linalg.norm(stats(src).mean - want.mean) > 20  # it really had to move


def test_linear_transfer_matches_the_full_covariance():
    src = lab_image(SKIN_A, np.array([6.0, 3.0, 3.0]), corr=0.0, seed=3)
    dst = lab_image(SKIN_B, np.array([6.0, 3.0, 3.0]), corr=0.8, seed=4)
    out = color_transfer(src, dst, "linear")
    got, want = stats(out), stats(dst)
    np.testing.assert_allclose(got.mean, want.mean, atol=0.8)
    np.testing.assert_allclose(got.cov, want.cov, atol=0.15 * np.abs(want.cov).max())
    # RCT cannot create the L-a correlation; the linear map does.
    rct = stats(color_transfer(src, dst, "rct"))
    corr = lambda c: c[0, 1] / np.sqrt(c[0, 0] * c[1, 1])  # noqa: E731
    assert corr(got.cov) > 0.6 and abs(corr(rct.cov)) < 0.2


def test_masks_restrict_the_statistics():
    src = lab_image(SKIN_A, np.array([5.0, 2.0, 2.0]), seed=5)
    dst = lab_image(SKIN_B, np.array([5.0, 2.0, 2.0]), seed=6)
    # Outliers outside the masks (think hair and eyes) must not count.
    src[:16] = (255, 0, 255)
    dst[:, :16] = (0, 255, 0)
    m_src = np.zeros(src.shape[:2], np.uint8)
    m_src[16:] = 255
    m_dst = np.zeros(dst.shape[:2], np.uint8)
    m_dst[:, 16:] = 255
    out = color_transfer(src, dst, "rct", image_mask=m_src, target_mask=m_dst)
    np.testing.assert_allclose(stats(out, m_src).mean, stats(dst, m_dst).mean, atol=0.8)


@pytest.mark.parametrize("fn", [rct_matrix, linear_matrix])
def test_strength_interpolates_between_identity_and_full_transfer(fn):
    a = LabStats(SKIN_A, np.diag([36.0, 4.0, 9.0]), 100)
    b = LabStats(SKIN_B, np.diag([16.0, 9.0, 4.0]), 100)
    np.testing.assert_allclose(fn(a, b, 0.0), np.hstack([np.eye(3), np.zeros((3, 1))]), atol=1e-12)
    full, half = fn(a, b, 1.0), fn(a, b, 0.5)
    apply = lambda m, x: m[:, :3] @ x + m[:, 3]  # noqa: E731
    np.testing.assert_allclose(apply(full, SKIN_A), SKIN_B, atol=1e-9)
    np.testing.assert_allclose(apply(half, SKIN_A), (SKIN_A + SKIN_B) / 2, atol=1e-9)


def test_transfer_with_too_few_pixels_or_mode_none_changes_nothing():
    src = lab_image(SKIN_A, np.array([5.0, 2.0, 2.0]))
    dst = lab_image(SKIN_B, np.array([5.0, 2.0, 2.0]))
    tiny = np.zeros(src.shape[:2], np.uint8)
    tiny[0, :3] = 255
    np.testing.assert_array_equal(color_transfer(src, dst, "rct", image_mask=tiny), src)
    np.testing.assert_array_equal(color_transfer(src, dst, "none"), src)
    with pytest.raises(ValueError, match="rct, linear or none"):
        color_transfer(src, dst, "histogram")


def test_lab_conversion_round_trips():
    img = lab_image(SKIN_A, np.array([8.0, 4.0, 4.0]))
    back = cv2.convertScaleAbs(cv2.cvtColor(to_lab(img), cv2.COLOR_Lab2BGR), alpha=255.0)
    assert np.abs(back.astype(int) - img).max() <= 1


# --- paste-back -------------------------------------------------------------------------


def scene(seed: int = 0):
    """A textured frame and a differently textured 60x50 crop with a soft elliptic mask."""
    rng = np.random.default_rng(seed)
    frame = cv2.resize(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), (160, 120), interpolation=cv2.INTER_CUBIC)
    crop = cv2.resize(rng.integers(0, 255, (6, 5, 3), dtype=np.uint8), (50, 60), interpolation=cv2.INTER_CUBIC)
    mask = np.zeros((60, 50), np.uint8)
    cv2.ellipse(mask, (25, 30), (18, 24), 0, 0, 360, 255, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 3)
    mask[mask < 3] = 0
    return frame, crop, mask


def at(x: float, y: float) -> np.ndarray:
    return np.array([[1, 0, x], [0, 1, y]], np.float32)


def frame_mask(shape, result: SwapResult) -> np.ndarray:
    return cv2.warpAffine(result.mask, result.transform, (shape[1], shape[0]), flags=cv2.INTER_LINEAR, borderValue=0)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["feather", "seamless", "multiband"])
def test_paste_back_changes_nothing_outside_the_mask(mode):
    frame, crop, mask = scene()
    result = SwapResult(crop, mask, at(40, 30))
    out = frame.copy()
    box = paste_back(out, result, BlendConfig(mode=mode))
    outside = frame_mask(frame.shape, result) == 0
    np.testing.assert_array_equal(out[outside], frame[outside])
    assert box is not None
    x0, y0, x1, y1 = box
    changed = np.nonzero((out != frame).any(axis=2))
    assert changed[0].size > 500
    assert changed[1].min() >= x0 and changed[1].max() < x1
    assert changed[0].min() >= y0 and changed[0].max() < y1


def test_feather_blend_is_the_exact_alpha_blend():
    frame, crop, mask = scene(1)
    out = frame.copy()
    paste_back(out, SwapResult(crop, mask, at(40, 30)), BlendConfig(opacity=0.6))
    a = np.round(mask.astype(np.float64) * 153 / 255) / 255  # opacity 0.6 = 153/255
    want = crop * a[..., None] + frame[30:90, 40:90] * (1 - a[..., None])
    assert np.abs(out[30:90, 40:90].astype(float) - want).max() <= 0.5 + 1e-9
    full = mask == 255
    out = frame.copy()
    paste_back(out, SwapResult(crop, mask, at(40, 30)), BlendConfig())
    np.testing.assert_array_equal(out[30:90, 40:90][full], crop[full])


def test_zero_opacity_or_empty_mask_changes_nothing():
    frame, crop, mask = scene()
    out = frame.copy()
    assert paste_back(out, SwapResult(crop, mask, at(40, 30)), BlendConfig(opacity=0.0)) is None
    assert paste_back(out, SwapResult(crop, np.zeros_like(mask), at(40, 30))) is None
    np.testing.assert_array_equal(out, frame)


def test_crop_partly_off_frame_is_clipped_and_fully_off_frame_is_ignored():
    frame, crop, mask = scene()
    out = frame.copy()
    box = paste_back(out, SwapResult(crop, mask, at(130, -20)))
    assert box is not None
    x0, y0, x1, y1 = box
    assert x0 >= 130 and y0 == 0 and x1 == 160 and y1 <= 40
    assert (out != frame).any()
    out = frame.copy()
    assert paste_back(out, SwapResult(crop, mask, at(500, 500))) is None
    np.testing.assert_array_equal(out, frame)


def test_general_affine_transform_warps_crop_and_mask():
    frame = np.zeros((120, 160, 3), np.uint8)
    crop = np.full((20, 20, 3), 200, np.uint8)
    mask = np.full((20, 20), 255, np.uint8)
    # Scale 2 and rotate 90 degrees about the crop's origin, then move to (100, 30).
    t = np.array([[0, -2, 100], [2, 0, 30]], np.float32)
    out = frame.copy()
    box = paste_back(out, SwapResult(crop, mask, t))
    assert box is not None
    # Crop pixel centres 0..19 land on x' = 100 - 2y in [62, 100] and y' = 30 + 2x in [30, 68].
    painted = (out[..., 0] > 100).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(painted)
    assert abs(x - 62) <= 1 and abs(y - 30) <= 1 and abs(w - 39) <= 2 and abs(h - 39) <= 2
    assert out[50, 80, 0] == 200  # the middle is fully the crop


def test_seamless_clone_of_the_frame_onto_itself_is_a_no_op():
    frame, _, mask = scene(2)
    crop = frame[30:90, 40:90].copy()
    out = frame.copy()
    paste_back(out, SwapResult(crop, mask, at(40, 30)), BlendConfig(mode="seamless"))
    assert np.abs(out.astype(int) - frame).max() <= 2  # placement is exact, not off by one


def test_multiband_blend_of_identical_images_is_a_no_op():
    frame, _, mask = scene(3)
    crop = frame[30:90, 40:90].copy()
    out = frame.copy()
    paste_back(out, SwapResult(crop, mask, at(40, 30)), BlendConfig(mode="multiband"))
    assert np.abs(out.astype(int) - frame).max() <= 1


def test_bad_frame_raises():
    _, crop, mask = scene()
    with pytest.raises(ValueError, match="uint8"):
        paste_back(np.zeros((10, 10, 3), np.float32), SwapResult(crop, mask, at(0, 0)))


# -- Paste-back of resampled (neural) results: one BGRA warp of the mask's support, one blend pass.
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


# -- match_colours (the neural swaps' colour transfer) equals color_transfer inside the result's mask.
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


def test_rct_lightness_ratio_scales_l_by_the_ratio_of_means_within_its_bounds():
    """``lightness="ratio"``: L* + 16 scales by the means' ratio (not the spreads'), clipped."""
    from obs_faceswap.merge import _LIGHTNESS_GAIN, LabStats, rct_matrix

    def stats(mean_l: float, std_l: float) -> LabStats:
        return LabStats(np.array([mean_l, 15.0, 18.0]), np.diag([std_l**2, 4.0, 4.0]), 100)

    near = rct_matrix(stats(60, 18), stats(64, 6), lightness="ratio")
    assert near[0, 0] == pytest.approx(80 / 76)
    assert near[0, 0] * 60 + near[0, 3] == pytest.approx(64)  # the mean still maps onto the mean
    assert rct_matrix(stats(60, 18), stats(64, 6))[0, 0] == pytest.approx(0.4)  # "std": squashed (1/3, floored)
    assert rct_matrix(stats(40, 5), stats(85, 5), lightness="ratio")[0, 0] == pytest.approx(_LIGHTNESS_GAIN[1])
    assert rct_matrix(stats(85, 5), stats(40, 5), lightness="ratio")[0, 0] == pytest.approx(_LIGHTNESS_GAIN[0])
    with pytest.raises(ValueError, match="lightness"):
        rct_matrix(stats(60, 5), stats(60, 5), lightness="bright")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_medians_equal_numpys_median_bit_for_bit(dtype):
    rng = np.random.default_rng(3)
    for n in [*range(1, 40), 1316, 1317]:
        for x in (rng.normal(50, 20, (n, 3)), rng.integers(0, 5, (n, 3)), rng.normal(0, 1, n)):
            x = x.astype(dtype)
            got, want = medians(x), np.median(x, axis=0)
            assert got.dtype == want.dtype and np.array_equal(got, want), (n, got, want)
