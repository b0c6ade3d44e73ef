"""Five-point face alignment for neural swappers, enhancers and mask models: pure functions.

The template constants and the least-squares similarity fit (Umeyama) live in
:mod:`obs_faceswap.geometry` (one fit for the whole project); this module adds what the crop-based
models need around them: a warp that returns the crop *and* its matrix, the inverse (crop → frame)
transform for paste-back, and the frame region a crop reads.

Example:
    >>> crop, m = warp_face(frame, face.keypoints, "arcface_128", 128)   # doctest: +SKIP
    >>> to_frame = invert(m)                                             # crop pixels → frame pixels
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap.frame import LazyFrame, warp_image, warp_source_box
from obs_faceswap.geometry import TEMPLATES, similarity_to_template
from obs_faceswap.types import Box, FloatArray, ImageBGR

__all__ = ["TEMPLATES", "crop_reads", "estimate", "invert", "template_points", "warp_face"]


def template_points(template: str, size: int) -> FloatArray:
    """The five template points of ``template`` in pixels of a ``size`` × ``size`` crop.

    Raises:
        KeyError: unknown template name (the message lists the known ones).
    """
    if template not in TEMPLATES:
        raise KeyError(f"unknown alignment template {template!r}; known: {', '.join(TEMPLATES)}")
    return np.asarray(TEMPLATES[template] * np.float32(size), np.float32)


def estimate(points: npt.ArrayLike, template: str, size: int) -> FloatArray:
    """``(2, 3)`` float32 similarity (frame → crop) putting the five ``points`` on ``template``."""
    template_points(template, size)  # validates the name
    return similarity_to_template(points, template, size)


def warp_face(
    image: ImageBGR | LazyFrame, points: npt.ArrayLike, template: str, size: int
) -> tuple[ImageBGR, FloatArray]:
    """Cut the face with five ``points`` out of ``image``, aligned to ``template``.

    Args:
        image: ``(H, W, 3)`` uint8 BGR frame (or a lazily converted one).
        points: ``(5, 2)`` keypoints in frame pixels (image-left eye first).
        template: a name from :data:`TEMPLATES`.
        size: crop side in pixels.

    Returns:
        ``(crop, matrix)``: the ``(size, size, 3)`` uint8 crop (edges replicated) and the
        ``(2, 3)`` float32 frame → crop matrix.
    """
    m = estimate(points, template, size)
    return warp_image(image, m, (size, size), cv2.BORDER_REPLICATE), m


def invert(matrix: npt.ArrayLike) -> FloatArray:
    """The inverse of a ``(2, 3)`` affine matrix (crop → frame for paste-back)."""
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64)).astype(np.float32)


def crop_reads(matrix: npt.ArrayLike, size: int, frame_hw: tuple[int, int]) -> Box | None:
    """The ``(x0, y0, x1, y1)`` frame region a ``size`` crop made with ``matrix`` reads (clipped)."""
    return warp_source_box(matrix, (size, size), frame_hw[1], frame_hw[0])
