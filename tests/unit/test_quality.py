"""Quality metrics (tests.quality) on synthetic data with known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.types import SwapResult
from tests import quality

# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula", test data.
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, -1.3802, -84.2814), (50.0, 0.0, -82.7485), 1.0000),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


@pytest.mark.parametrize("lab1, lab2, expected", SHARMA)
def test_ciede2000_matches_published_test_data(lab1, lab2, expected):
    assert quality.delta_e2000(lab1, lab2) == pytest.approx(expected, abs=1e-4)
    assert quality.delta_e2000(lab2, lab1) == pytest.approx(expected, abs=1e-4)


def test_cie76_is_euclidean():
    assert quality.delta_e76((50, 0, 0), (53, 4, 0)) == pytest.approx(5.0)


def disc_mask(shape, soft: bool) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.circle(m, (shape[1] // 2, shape[0] // 2), 40, 255, -1)
    if soft:
        m = cv2.erode(m, np.ones((13, 13), np.uint8))
        m = cv2.GaussianBlur(m, (0, 0), 3)
    return m


def test_seam_ratio_flags_a_hard_colour_step_and_passes_a_feathered_one():
    rng = np.random.default_rng(0)
    frame = np.clip(120 + rng.normal(0, 4, (120, 160, 3)), 0, 255).astype(np.uint8)
    patch = np.clip(frame.astype(int) + 12, 0, 255).astype(np.uint8)  # a slightly brighter face

    def ratio(soft: bool) -> float:
        mask = disc_mask(frame.shape[:2], soft)
        a = mask[..., None].astype(np.float64) / 255
        out = (patch * a + frame * (1 - a)).round().astype(np.uint8)
        return quality.seam_gradient_ratio(frame, out, mask)

    assert ratio(soft=False) > 3
    assert ratio(soft=True) < 1.5
    np.testing.assert_allclose(quality.seam_gradient_ratio(frame, frame, disc_mask((120, 160), True)), 1)


def test_changed_outside_counts_only_pixels_beyond_the_dilated_mask():
    frame = np.zeros((50, 60, 3), np.uint8)
    mask = np.zeros((50, 60), np.uint8)
    mask[10:20, 10:20] = 255
    out = frame.copy()
    out[10:20, 10:20] = 9
    out[21, 15] = 9  # one pixel next to the mask: inside the 2-px dilation
    assert quality.changed_outside(frame, out, mask, dilate=2) == 0
    out[40, 50] = 1
    assert quality.changed_outside(frame, out, mask, dilate=2) == 1


def test_frame_mask_places_the_crop_mask():
    r = SwapResult(
        np.zeros((4, 5, 3), np.uint8), np.full((4, 5), 200, np.uint8), np.array([[1, 0, 7], [0, 1, 3]], np.float32)
    )
    m = quality.frame_mask((20, 30), r)
    assert m.shape == (20, 30)
    assert (m[3:7, 7:12] == 200).all() and m.sum() == 200 * 20


def test_mean_embedding_is_normalised():
    e = quality.mean_embedding([[1.0, 0.0], [0.0, 1.0]])
    assert np.linalg.norm(e) == pytest.approx(1.0)
    assert e[0] == pytest.approx(e[1])


def synthetic_face(size: int = 256) -> np.ndarray:
    """468 mesh points: the face oval a circle, the cheeks two small circles, everything else
    (eyes, brows, lips) collapsed to one point high on the forehead."""
    from obs_faceswap.landmark_indices import FACE_OVAL, LEFT_CHEEK, RIGHT_CHEEK

    c = size / 2
    lm = np.zeros((468, 3), np.float32)
    lm[:, :2] = (c, c - 70)
    for idx, (cx, cy, r) in (
        (FACE_OVAL, (c, c, 90)),
        (RIGHT_CHEEK, (c - 40, c + 10, 15)),
        (LEFT_CHEEK, (c + 40, c + 10, 15)),
    ):
        t = np.linspace(0, 2 * np.pi, len(idx), endpoint=False)
        lm[list(idx), 0] = cx + r * np.cos(t)
        lm[list(idx), 1] = cy + r * np.sin(t)
    return lm


def skin_with_gradient(size: int = 256, slope: float = 0.3) -> np.ndarray:
    """A skin-coloured image whose L* falls off from left to right (light from the left)."""
    lab = np.zeros((size, size, 3), np.float32)
    lab[..., 0] = 75 - slope * (np.arange(size, dtype=np.float32)[None, :] - size / 2)
    lab[..., 1], lab[..., 2] = 15, 18
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2BGR) * 255, 0, 255).astype(np.uint8)


def test_lighting_match_sees_a_flattened_gradient_but_not_an_offset():
    lm = synthetic_face()
    live = skin_with_gradient()
    mask = np.full(live.shape[:2], 255, np.uint8)
    lab = cv2.cvtColor(live.astype(np.float32) / 255, cv2.COLOR_BGR2Lab)
    flat_lab = lab.copy()
    flat_lab[..., 0] = 75
    flat = np.clip(cv2.cvtColor(flat_lab, cv2.COLOR_Lab2BGR) * 255, 0, 255).astype(np.uint8)
    brighter = np.clip(live.astype(np.int16) + 12, 0, 255).astype(np.uint8)
    flattened = quality.lighting_match(live, flat, mask, lm)
    assert flattened.live_range > 25  # 0.3 L* per pixel: about 30 between the outer stripes
    assert flattened.error > 12
    assert quality.lighting_match(live, brighter, mask, lm).error < 2
    assert quality.lighting_match(live, live, mask, lm).error == 0


def test_contrast_kept_is_one_for_the_same_face_and_low_for_a_washed_out_one():
    lm = synthetic_face()
    rng = np.random.default_rng(0)
    face = np.clip(skin_with_gradient().astype(np.int16) + rng.integers(-25, 25, (256, 256, 1)), 0, 255).astype(
        np.uint8
    )
    mask = np.full(face.shape[:2], 255, np.uint8)
    washed = cv2.addWeighted(face, 0.5, np.full_like(face, 180), 0.5, 0)
    assert quality.contrast_kept(face, face, face, mask, lm) == pytest.approx(1.0)
    assert quality.contrast_kept(face, washed, face, mask, lm) < 0.6


def test_bluer_than_both_counts_only_blue_beyond_both_faces():
    def bgr(lab: tuple[float, float, float]) -> np.ndarray:
        px = np.array([[lab]], np.float32)
        return np.clip(cv2.cvtColor(px, cv2.COLOR_Lab2BGR) * 255, 0, 255).astype(np.uint8)

    live = np.tile(bgr((60, 5, -5)), (40, 40, 1))  # skin under a blue light: b* -5 already
    source = np.tile(bgr((60, 15, 20)), (40, 40, 1))
    mask = np.full((40, 40), 255, np.uint8)
    slightly = live.copy()
    slightly[10:20, 10:20] = bgr((60, 5, -7))
    much = live.copy()
    much[10:20, 10:20] = bgr((60, 5, -25))
    assert quality.bluer_than_both(live, slightly, mask, source) == 0
    assert quality.bluer_than_both(live, much, mask, source) == 100
    assert quality.foreign_blue_pixels(live, slightly, mask, source) == 0  # excused: live is blue
