"""Frames whose pixels are converted on demand.

The pipeline needs few of a frame's pixels: the detector sees the frame scaled down to
~320 px, the landmark model a 192 px rotated crop, and the swapper and merge only the face's
box. When a frame arrives in another pixel format (the OBS engine gets I420, NV12, YUY2, ...),
converting all of it to BGR costs more than the rest of the pipeline's pixel work
(docs/performance-facts.md: "only the face region needs converting").

A :class:`LazyFrame` gives exactly those three kinds of access. Stages call
:func:`resize_image` and :func:`warp_image`, which work on plain BGR arrays and lazy frames
alike; the pipeline calls :meth:`LazyFrame.load` for the boxes it reads and writes, then
works on :attr:`LazyFrame.array`, whose pixels are valid inside every loaded box.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap.errors import InputError
from obs_faceswap.types import Box, ImageBGR


class LazyFrame(ABC):
    """A frame of ``shape = (H, W, 3)`` BGR pixels produced on demand.

    Implementations convert from their own storage; :attr:`array` is a full-size BGR
    buffer that is valid only inside the boxes passed to :meth:`load` since the frame
    arrived (writes into it there are the pipeline's output).
    """

    shape: tuple[int, int, int]

    @property
    @abstractmethod
    def array(self) -> ImageBGR:
        """The full-size BGR buffer (valid inside loaded boxes)."""

    @abstractmethod
    def load(self, box: Sequence[float]) -> Box:
        """Make ``array`` valid inside ``box`` (x0, y0, x1, y1; clipped). Returns the
        clipped integer box actually loaded (which may be larger, aligned)."""

    @abstractmethod
    def resize(self, size: tuple[int, int]) -> ImageBGR:
        """The whole frame scaled to ``size = (w, h)``, like ``cv2.resize(..., INTER_LINEAR)``."""

    @abstractmethod
    def warp(self, matrix: npt.ArrayLike, size: tuple[int, int], border: int = cv2.BORDER_CONSTANT) -> ImageBGR:
        """``cv2.warpAffine(frame, matrix, size, INTER_LINEAR, border)`` of the whole frame."""


def image_shape(image: ImageBGR | LazyFrame) -> tuple[int, ...]:
    return tuple(image.shape)


def resize_image(image: ImageBGR | LazyFrame, size: tuple[int, int]) -> ImageBGR:
    """Scale a BGR image or a lazy frame to ``size = (w, h)`` (bilinear)."""
    if isinstance(image, LazyFrame):
        return image.resize(size)
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), np.uint8)


def warp_image(
    image: ImageBGR | LazyFrame, matrix: npt.ArrayLike, size: tuple[int, int], border: int = cv2.BORDER_CONSTANT
) -> ImageBGR:
    """Affine crop of a BGR image or a lazy frame (bilinear)."""
    if isinstance(image, LazyFrame):
        return image.warp(matrix, size, border)
    out = cv2.warpAffine(image, np.asarray(matrix, np.float64), size, flags=cv2.INTER_LINEAR, borderMode=border)
    return np.asarray(out, np.uint8)


def clip_box(box: npt.ArrayLike, width: int, height: int, margin: float = 0.0) -> Box | None:
    """Integer box grown by ``margin`` × its size on each side, clipped to the frame; None if empty."""
    x0, y0, x1, y1 = np.asarray(box, np.float64).reshape(4).tolist()
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    b = (
        max(0, int(np.floor(x0 - mx))),
        max(0, int(np.floor(y0 - my))),
        min(width, int(np.ceil(x1 + mx))),
        min(height, int(np.ceil(y1 + my))),
    )
    return b if b[2] > b[0] and b[3] > b[1] else None


def warp_source_box(matrix: npt.ArrayLike, size: tuple[int, int], width: int, height: int) -> Box | None:
    """The frame pixels an affine crop of ``size`` reads (its corners mapped back, +2 px)."""
    inv = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    w, h = size
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64)
    pts = corners @ inv[:, :2].T + inv[:, 2]
    lo, hi = pts.min(axis=0) - 2, pts.max(axis=0) + 2
    return clip_box((lo[0], lo[1], hi[0], hi[1]), width, height)


def read_image(path: str | Path) -> ImageBGR:
    """Read a photo as BGR uint8 (non-ASCII paths work on Windows too).

    Raises:
        InputError: the file does not exist, is empty or is not an image OpenCV can decode.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"image not found: {p}")
    data = np.fromfile(str(p), dtype=np.uint8)
    if data.size == 0:
        raise InputError(f"{p} is empty (0 bytes)")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read {p} as an image (unsupported format or damaged file)")
    return np.asarray(img, np.uint8)
