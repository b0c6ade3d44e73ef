"""The texture is drawn from its pyramid level: a texel 1-2 output pixels (no aliasing shimmer),
each level made once per texture, and a cross-fade's blend the same as the blended texture's."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.swap.meshwarp import _MIP_LEVELS, _mip, _Track


def texture(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (512, 512, 4), dtype=np.uint8)


@pytest.mark.parametrize(
    ("texels_per_pixel", "level"), [(0.5, 0), (1.0, 0), (1.9, 0), (2.0, 1), (3.4, 1), (4.0, 2), (100.0, _MIP_LEVELS)]
)
def test_level_keeps_a_texel_within_one_to_two_pixels(texels_per_pixel: float, level: int) -> None:
    tex = texture(0)
    got, image = _mip(_Track(tex), tex, texels_per_pixel)
    assert got == level
    assert image.shape == (512 >> level, 512 >> level, 4)
    if level == 0:
        assert image is tex


def test_a_level_is_made_once_per_texture() -> None:
    tex = texture(1)
    track = _Track(tex)
    _, first = _mip(track, tex, 3.0)
    _, again = _mip(track, tex, 3.0)
    assert again is first
    np.testing.assert_array_equal(first, cv2.pyrDown(tex))
    _, other = _mip(track, texture(2), 3.0)
    assert other is not first


def test_a_cross_fade_is_blended_at_the_level() -> None:
    old, new = texture(3), texture(4)
    track = _Track(new)
    track.fade_from, track.fade_t = old, 0.25
    track.shown = cv2.addWeighted(old, 0.75, new, 0.25, 0.0)
    _, image = _mip(track, track.shown, 3.0)
    expected = cv2.pyrDown(track.shown).astype(np.int16)
    assert np.abs(image.astype(np.int16) - expected).max() <= 1  # rounding only
