"""swap/blink.py: the rendered lids shut where the mesh under-reads a blink, and only there."""

from __future__ import annotations

import numpy as np
import pytest

from obs_faceswap.swap.blink import (
    CORNERS,
    LOWER_LIDS,
    OPEN_SHARE,
    SHUT_SHARE,
    UPPER_LIDS,
    UPPER_RINGS,
    EyeBaseline,
    close_lids,
    closing_share,
    eye_openness,
)


def eyes_mesh(gap: float, width: float = 30.0) -> np.ndarray:
    """A (468, 3) mesh whose two eyes are ``width`` wide with lids ``gap`` apart."""
    pts = np.zeros((468, 3), np.float32)
    for k, x0 in enumerate((100.0, 200.0)):
        a, b = CORNERS[k]
        pts[a, :2], pts[b, :2] = (x0, 100.0), (x0 + width, 100.0)
        for j, (u, lo) in enumerate(zip(UPPER_LIDS[k], LOWER_LIDS[k], strict=True)):
            x = x0 + width * (j + 1) / 8
            pts[u, :2], pts[lo, :2] = (x, 100.0 - gap / 2), (x, 100.0 + gap / 2)
    return pts


def test_openness_is_lid_gap_over_eye_width() -> None:
    np.testing.assert_allclose(eye_openness(eyes_mesh(9.0)), [0.3, 0.3])


@pytest.mark.parametrize(
    ("share_of_open", "rendered"),
    [
        (1.0, 1.0),
        (OPEN_SHARE, OPEN_SHARE),
        ((OPEN_SHARE + SHUT_SHARE) / 2, OPEN_SHARE / 2),
        (SHUT_SHARE, 0.0),
        (0.3, 0.0),
    ],
)
def test_rendered_openness_falls_from_the_mesh_s_to_shut(share_of_open: float, rendered: float) -> None:
    mesh = eyes_mesh(9.0 * share_of_open)
    out = close_lids(mesh, closing_share(eye_openness(mesh), [0.3, 0.3]))
    np.testing.assert_allclose(eye_openness(out), [0.3 * rendered] * 2, atol=1e-5)


def test_open_eyes_are_left_alone() -> None:
    mesh = eyes_mesh(9.0)
    assert close_lids(mesh, closing_share([0.3, 0.29], [0.3, 0.3])) is mesh


def test_only_the_blinking_eye_shuts() -> None:
    share = closing_share([0.3, 0.15], [0.3, 0.3])
    assert share[0] == 0.0 and share[1] == 1.0


def test_baseline_follows_open_eyes_and_ignores_blinks() -> None:
    base = EyeBaseline()
    for _ in range(5):
        base.update(np.array([0.3, 0.3]))
    for _ in range(3):  # a blink
        before = base.update(np.array([0.1, 0.1]))
    np.testing.assert_allclose(before, [0.3, 0.3])
    for _ in range(50):  # wider open: followed quickly
        base.update(np.array([0.4, 0.4]))
    assert base.value is not None and base.value.min() > 0.39


def test_the_band_above_the_lid_moves_down_with_it() -> None:
    """The lash band between the lid and the ring above it keeps its height as the lid shuts."""
    mesh = eyes_mesh(9.0)
    ring = np.array(UPPER_RINGS)
    mesh[ring, 1] = mesh[np.array(UPPER_LIDS), 1] - 3.0
    out = close_lids(mesh, [1.0, 0.5])
    band = out[np.array(UPPER_LIDS), 1] - out[ring, 1]
    np.testing.assert_allclose(band, 3.0, atol=1e-5)
    np.testing.assert_allclose(out[ring[0], 1], 100.0 + 4.5 - 3.0, atol=1e-5)
