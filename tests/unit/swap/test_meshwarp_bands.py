"""The re-estimated texture is built a band of rows per frame: a band of an upsampled field
must equal the same rows of the whole field upsampled (no seams between bands)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.swap.meshwarp import _band_resize


@pytest.mark.parametrize("size", [256, 512, 1024, 500])
def test_a_band_of_the_upsampled_field_equals_the_whole_field_upsampled(size: int) -> None:
    small = np.random.default_rng(size).normal(0, 10, (128, 128, 3)).astype(np.float32)
    whole = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    third = -(-size // 3)
    bands = [(0, third), (third, 2 * third), (2 * third, size), (0, size), (7, 9), (size - 1, size)]
    for r0, r1 in bands:
        np.testing.assert_array_equal(_band_resize(small, size, r0, r1), whole[r0:r1], err_msg=f"rows {r0}:{r1}")
