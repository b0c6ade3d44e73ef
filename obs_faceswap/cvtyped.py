"""OpenCV calls whose stubs type results as a generic ``MatLike``, with the array types they
really return (for ``mypy --strict``; no copies, no behaviour change)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt


def u8(image: object) -> npt.NDArray[np.uint8]:
    """``image`` (an OpenCV result that is uint8) as a typed array (no copy)."""
    return np.asarray(image, np.uint8)


def f32(image: object) -> npt.NDArray[np.float32]:
    """``image`` (an OpenCV result that is float32) as a typed array (no copy)."""
    return np.asarray(image, np.float32)


def above(image: npt.NDArray[np.uint8], value: float) -> npt.NDArray[np.uint8]:
    """255 where the uint8 ``image`` is above ``value``, else 0: ``cv2.compare(image, value,
    CMP_GT)``, whose stub takes no scalar."""
    return u8(cv2.threshold(image, value, 255, cv2.THRESH_BINARY)[1])


def zero(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """255 where the uint8 ``image`` is 0, else 0: ``cv2.compare(image, 0, CMP_EQ)``."""
    return u8(cv2.threshold(image, 0, 255, cv2.THRESH_BINARY_INV)[1])
