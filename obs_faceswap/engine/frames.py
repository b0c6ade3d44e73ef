"""OBS frame planes ↔ BGR images, respecting the frame's colour matrix and range.

Every pixel format an OBS async source delivers in 8 bits is handled: planar I420, I422,
I444, semi-planar NV12, packed YUY2 / UYVY / YVYU, Y800 (grey) and BGRA / BGRX / RGBA / BGR3.
A frame's planes are 2-D ``uint8`` arrays ``(rows, linesize)``: padding at the end of a row
is kept and never touched.

The 10/12-bit formats I010, P010 (4:2:0), I210 (4:2:2) and I412 (4:4:4) -- 16-bit
little-endian samples -- are converted through their 8-bit twins (I420, NV12, I422, I444):
the region read is narrowed to 8 bits (masked, then shifted: ``>> 2`` for 10 bits, the top
byte for P010), and a region written back is widened by bit replication (``c << 2 | c >> 6``
for 10 bits), so it reads back as the same 8-bit code. Pixels outside a written region keep
every bit; inside it the low bits are gone (at most one 8-bit code of error).

Colour follows OBS exactly. OBS hands every frame a 4×4 row-major ``color_matrix`` plus
``color_range_min/max`` (``libobs/media-io/video-matrices.c``), and its shaders
(``libobs/data/format_conversion.effect``, ``YUV_to_RGB``) compute, with ``y, u, v`` the
8-bit codes divided by 255::

    yuv = clamp(yuv, range_min, range_max)          # only for limited-range frames
    r = dot(matrix[0:3], yuv) + matrix[3]           # and g from row 1, b from row 2

:class:`ColorParams` turns that into one 3×4 matrix for :func:`cv2.transform` (YUV → BGR)
and its exact inverse (BGR → YUV), working on 8-bit codes. The clamp is a lookup table on
the planes. Chroma is upsampled by pixel replication (each chroma sample covers its 2×1 or
2×2 block) and downsampled by averaging the block, so YUV → BGR → YUV returns the input to
within rounding: pixels a processor did not change survive a round trip.

Converting only a region (``roi``) is supported both ways; regions are aligned to the
format's chroma blocks with :func:`align_roi`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap.engine import protocol as P
from obs_faceswap.errors import FrameFormatError
from obs_faceswap.frame import LazyFrame, clip_box, warp_source_box
from obs_faceswap.types import Box
from obs_faceswap.video_formats import VideoFormat

# uint8 images and planes (typed loosely: OpenCV's stubs return ndarray of any dtype)
U8 = npt.NDArray[Any]


# (Kb, Kr) of the colour spaces OBS builds matrices for (video-matrices.c)
_KBKR = {"601": (0.114, 0.299), "709": (0.0722, 0.2126)}

# 16-bit formats → the 8-bit format with the same planes and subsampling
_WIDE_TWIN: dict[int, int] = {
    VideoFormat.I010: VideoFormat.I420,
    VideoFormat.P010: VideoFormat.NV12,
    VideoFormat.I210: VideoFormat.I422,
    VideoFormat.I412: VideoFormat.I444,
}

# byte index of Y0, Y1, U, V inside a packed 4:2:2 macropixel
_PACKED: dict[int, tuple[int, int, int, int]] = {
    VideoFormat.YUY2: (0, 2, 1, 3),
    VideoFormat.UYVY: (1, 3, 0, 2),
    VideoFormat.YVYU: (0, 2, 3, 1),
}


def _obs_matrix(
    kb: float, kr: float, full_range: bool
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """OBS's ``initialize_matrix`` for 8 bits: (12 matrix floats, range_min, range_max)."""
    if full_range:
        lo, hi = (0.0, 0.0, 0.0), (255.0, 255.0, 255.0)
        black = (0.0, 128.0, 128.0)
    else:
        lo, hi = (16.0, 16.0, 16.0), (235.0, 240.0, 240.0)
        black = (16.0, 128.0, 128.0)
    ys = 255.0 / (hi[0] - lo[0])
    us = 255.0 / ((hi[1] - lo[1]) / 2.0)
    vs = 255.0 / ((hi[2] - lo[2]) / 2.0)
    kg = 1.0 - kb - kr
    m = np.array(
        [
            [ys, 0.0, vs * (1.0 - kr)],
            [ys, us * (kb - 1.0) * kb / kg, vs * (kr - 1.0) * kr / kg],
            [ys, us * (1.0 - kb), 0.0],
        ]
    )
    off = m @ (-np.array(black) / 255.0)
    mat = tuple(float(x) for x in np.hstack([m, off[:, None]]).ravel())
    if full_range:
        return mat, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    return mat, tuple(x / 255.0 for x in lo), tuple(x / 255.0 for x in hi)


@dataclass(frozen=True)
class ColorParams:
    """A frame's YUV ↔ RGB conversion, in OBS's convention.

    Attributes:
        matrix: 12 floats, rows R, G, B of ``[Y U V 1]`` for values in ``[0, 1]`` (the first
            three rows of OBS's 16-float ``color_matrix``).
        range_min, range_max: clamp applied to normalised Y, U, V before the matrix (limited
            range); ignored when ``full_range``.
        full_range: whether the codes span 0..255 (JPEG / "full") or 16..235/240.
    """

    matrix: tuple[float, ...]
    range_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    range_max: tuple[float, float, float] = (1.0, 1.0, 1.0)
    full_range: bool = False

    def __post_init__(self) -> None:
        if len(self.matrix) != 12:
            raise ValueError(f"matrix must have 12 floats, got {len(self.matrix)}")
        if abs(float(np.linalg.det(self._m3))) < 1e-6:
            raise ValueError(f"colour matrix is singular: {self.matrix}")

    @classmethod
    def standard(cls, colorspace: str = "709", full_range: bool = False) -> ColorParams:
        """The matrix OBS uses for ``"601"`` or ``"709"``, limited or full range.

        Raises:
            ValueError: unknown colour space.
        """
        if colorspace not in _KBKR:
            raise ValueError(f"colorspace must be one of {', '.join(_KBKR)}; got {colorspace!r}")
        mat, lo, hi = _obs_matrix(*_KBKR[colorspace], full_range)
        return cls(mat, lo, hi, full_range)  # type: ignore[arg-type]

    @classmethod
    def from_obs(
        cls,
        color_matrix: Sequence[float],
        full_range: bool,
        range_min: Sequence[float] = (0.0, 0.0, 0.0),
        range_max: Sequence[float] = (1.0, 1.0, 1.0),
    ) -> ColorParams:
        """From an ``obs_source_frame``'s fields.

        An empty or degenerate matrix (RGB sources often leave it zeroed) means OBS's
        default, BT.709 in the frame's range. A limited-range frame whose range is the
        no-op ``[0, 1]`` gets the standard 16..235/240 clamp.
        """
        if len(color_matrix) in (12, 16):
            mat = tuple(float(x) for x in color_matrix[:12])
            m3 = np.array(mat).reshape(3, 4)[:, :3]
            if abs(float(np.linalg.det(m3))) > 1e-6:
                lo = tuple(float(x) for x in range_min)
                hi = tuple(float(x) for x in range_max)
                if not full_range and lo == (0.0, 0.0, 0.0) and hi == (1.0, 1.0, 1.0):
                    lo, hi = (16 / 255, 16 / 255, 16 / 255), (235 / 255, 240 / 255, 240 / 255)
                return cls(mat, lo, hi, bool(full_range))  # type: ignore[arg-type]
        return cls.standard("709", bool(full_range))

    # -- derived (cached) -----------------------------------------------------------------
    @cached_property
    def _m3(self) -> npt.NDArray[np.float64]:
        return np.array(self.matrix, np.float64).reshape(3, 4)[:, :3]

    @cached_property
    def yuv_to_bgr(self) -> npt.NDArray[np.float32]:
        """3×4 matrix for :func:`cv2.transform`: 8-bit ``(Y, U, V)`` → 8-bit ``(B, G, R)``."""
        m = np.array(self.matrix, np.float64).reshape(3, 4).copy()
        m[:, 3] *= 255.0  # the offset is in normalised units; the codes are 0..255
        out: npt.NDArray[np.float32] = m[::-1].astype(np.float32)  # rows R, G, B → B, G, R
        return out

    @cached_property
    def bgr_to_yuv(self) -> npt.NDArray[np.float32]:
        """3×4 matrix for :func:`cv2.transform`: 8-bit ``(B, G, R)`` → 8-bit ``(Y, U, V)``."""
        fwd = np.eye(4)
        fwd[:3] = self.yuv_to_bgr.astype(np.float64)
        inv = np.linalg.inv(fwd)[:3]
        return inv.astype(np.float32)

    @cached_property
    def clamp_luts(self) -> tuple[U8, U8] | None:
        """Lookup tables clamping Y and (U, V) codes; None for full range (nothing to do)."""
        if self.full_range:
            return None
        lo = [int(round(v * 255.0)) for v in self.range_min]
        hi = [int(round(v * 255.0)) for v in self.range_max]
        codes = np.arange(256)
        y = np.clip(codes, lo[0], hi[0]).astype(np.uint8)
        uv = np.stack([np.clip(codes, lo[1], hi[1]), np.clip(codes, lo[2], hi[2])], axis=-1)
        return y, uv.astype(np.uint8).reshape(1, 256, 2)

    @cached_property
    def grey_luts(self) -> tuple[U8, U8]:
        """(Y800 code → grey, grey → Y800 code); OBS expands limited Y800 by 255/219."""
        codes = np.arange(256, dtype=np.float64)
        if self.full_range:
            ident = codes.astype(np.uint8)
            return ident, ident
        fwd = np.clip(np.round((codes - 16.0) * 255.0 / 219.0), 0, 255).astype(np.uint8)
        inv = np.clip(np.round(codes * 219.0 / 255.0 + 16.0), 0, 255).astype(np.uint8)
        return fwd, inv


# -- geometry ------------------------------------------------------------------------------
def format_info(fmt: int) -> P.FormatInfo:
    """The layout of an OBS pixel format.

    Raises:
        FrameFormatError: the format is not handled (names it and lists the handled ones).
    """
    try:
        return P.FORMATS[fmt]
    except KeyError:
        names = ", ".join(P.FORMAT_NAMES[f] for f in sorted(P.FORMATS))
        raise FrameFormatError(
            f"video format {P.FORMAT_NAMES.get(fmt, fmt)} is not supported; supported: {names}"
        ) from None


def align_roi(fmt: int, width: int, height: int, roi: Sequence[int] | None) -> Box:
    """``roi`` clipped to the frame and grown to whole chroma blocks of ``fmt``.

    Args:
        roi: ``(x0, y0, x1, y1)`` (may reach outside the frame) or None for the whole frame.

    Returns:
        An aligned ``(x0, y0, x1, y1)``; ``x0 == x1`` when nothing is left.
    """
    info = format_info(fmt)
    if roi is None:
        return 0, 0, width, height
    sx, sy = info.sub_x, info.sub_y
    x0, y0, x1, y1 = (int(v) for v in roi)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(width, x1), min(height, y1)
    if x1 <= x0 or y1 <= y0:
        return 0, 0, 0, 0
    x0 -= x0 % sx
    y0 -= y0 % sy
    x1 = min(width, -(-x1 // sx) * sx)
    y1 = min(height, -(-y1 // sy) * sy)
    return x0, y0, x1, y1


def plane_layout(fmt: int, width: int, height: int, linesizes: Sequence[int] | None = None) -> list[tuple[int, int]]:
    """``(rows, linesize)`` of each plane; ``linesizes`` default to the tightest rows.

    Raises:
        FrameFormatError: unknown format, or a linesize shorter than a row of pixels.
    """
    info = format_info(fmt)
    out = []
    for i in range(len(info.planes)):
        need = info.row_bytes(i, width)
        ls = need if linesizes is None else int(linesizes[i])
        if ls < need:
            raise FrameFormatError(f"{info.name} {width}x{height}: plane {i} linesize {ls} < {need} bytes per row")
        out.append((info.rows(i, height), ls))
    return out


def plane_arrays(
    buffer: object, fmt: int, width: int, height: int, linesizes: Sequence[int], offsets: Sequence[int]
) -> list[U8]:
    """2-D ``(rows, linesize)`` views of the planes stored in ``buffer`` at ``offsets``."""
    flat = np.frombuffer(buffer, dtype=np.uint8)  # type: ignore[call-overload]
    planes = []
    layout = plane_layout(fmt, width, height, linesizes)
    for (rows, ls), off in zip(layout, offsets[: len(layout)], strict=True):
        if off + rows * ls > flat.size:
            raise FrameFormatError(f"plane at offset {off} ({rows}x{ls}) overruns the buffer")
        planes.append(flat[off : off + rows * ls].reshape(rows, ls))
    return planes


@dataclass
class FrameBuffer:
    """A frame in OBS's memory layout, owned by numpy (tests, benchmarks, the CLI).

    Attributes:
        format, width, height: as in ``obs_source_frame``.
        data: the bytes of all planes, back to back (each plane starts 64-byte aligned).
        linesizes, offsets: per plane.
    """

    format: int
    width: int
    height: int
    data: U8
    linesizes: tuple[int, ...]
    offsets: tuple[int, ...]

    @classmethod
    def allocate(cls, fmt: int, width: int, height: int, *, align: int = 32, padding: int = 0) -> FrameBuffer:
        """Zeroed planes with linesizes rounded up to ``align`` plus ``padding`` bytes."""
        info = format_info(fmt)
        linesizes, offsets, total = [], [], 0
        for i in range(len(info.planes)):
            ls = -(-info.row_bytes(i, width) // align) * align + padding
            linesizes.append(ls)
            offsets.append(total)
            total += -(-(ls * info.rows(i, height)) // 64) * 64
        return cls(fmt, width, height, np.zeros(total, np.uint8), tuple(linesizes), tuple(offsets))

    @property
    def planes(self) -> list[U8]:
        return plane_arrays(self.data, self.format, self.width, self.height, self.linesizes, self.offsets)

    @property
    def addresses(self) -> tuple[int, ...]:
        base = int(self.data.ctypes.data)
        return tuple(base + off for off in self.offsets)

    def copy(self) -> FrameBuffer:
        return FrameBuffer(self.format, self.width, self.height, self.data.copy(), self.linesizes, self.offsets)


# -- conversions ---------------------------------------------------------------------------
Scratch = dict[str, U8]


def _buffer(scratch: Scratch | None, name: str, shape: tuple[int, ...]) -> U8 | None:
    """A reusable intermediate from ``scratch`` (None without one: OpenCV allocates).

    Reusing intermediates halves a 1080p conversion here: fresh multi-megabyte arrays are
    page-faulted in on every frame.
    """
    if scratch is None:
        return None
    a = scratch.get(name)
    if a is None or a.shape != shape:
        a = scratch[name] = np.empty(shape, np.uint8)
    return a


def _upsample(chroma: U8, sx: int, sy: int, w: int, h: int, scratch: Scratch | None) -> U8:
    if sx == 1 and sy == 1:
        return chroma
    rows, cols = chroma.shape[:2]
    size = (cols * sx, rows * sy)
    up = cv2.resize(chroma, size, dst=_buffer(scratch, "up", (size[1], size[0], 2)), interpolation=cv2.INTER_NEAREST)
    return up[:h, :w]


def _downsample(chroma: U8, sx: int, sy: int) -> U8:
    """Average whole sx×sy blocks; a partial block at an odd edge repeats the edge pixel."""
    if sx == 1 and sy == 1:
        return chroma
    h, w = chroma.shape[:2]
    pad_x, pad_y = (-w) % sx, (-h) % sy
    if pad_x or pad_y:
        chroma = cv2.copyMakeBorder(chroma, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE)
    return cv2.resize(chroma, ((w + pad_x) // sx, (h + pad_y) // sy), interpolation=cv2.INTER_AREA)


def _samples16(plane: U8) -> U8:
    """A ``(rows, linesize)`` uint8 plane seen as ``(rows, linesize // 2)`` little-endian words
    (an odd linesize -- OBS never makes one -- leaves its last byte out)."""
    rows, ls = plane.shape
    if ls % 2 == 0:
        return plane.view("<u2")
    words: U8 = np.ndarray((rows, ls // 2), "<u2", buffer=plane, strides=(ls, 2))
    return words


def _narrow(words: U8, info: P.FormatInfo) -> U8:
    """16-bit samples → their top 8 significant bits (uint8)."""
    if info.msb:
        return (words >> (16 - 8)).astype(np.uint8)
    mask = (1 << info.bits) - 1
    return ((words & mask) >> (info.bits - 8)).astype(np.uint8)


def _widen(codes: U8, info: P.FormatInfo) -> U8:
    """8-bit codes → 16-bit samples of ``info`` (bit replication; see :meth:`FormatInfo.code`)."""
    v = codes.astype(np.uint16)
    wide = (v << (info.bits - 8)) | (v >> (16 - info.bits))
    return wide << (16 - info.bits) if info.msb else wide


def _wide_region(planes: Sequence[U8], info: P.FormatInfo, box: Box) -> list[U8]:
    """The planes of the aligned region ``box`` of a 16-bit frame, as 8-bit planes of its twin."""
    x0, y0, x1, y1 = box
    out = []
    for (dx, dy, unit), p in zip(info.planes, planes, strict=True):
        k = unit // 2  # samples per unit
        px0, px1, py0, py1 = x0 // dx, -(-x1 // dx), y0 // dy, -(-y1 // dy)
        out.append(_narrow(_samples16(p)[py0:py1, px0 * k : px1 * k], info))
    return out


def to_bgr(
    planes: Sequence[U8],
    fmt: int,
    width: int,
    height: int,
    color: ColorParams,
    roi: Sequence[int] | None = None,
    *,
    out: U8 | None = None,
    scratch: Scratch | None = None,
) -> U8:
    """Convert a frame (or the region ``roi`` of it) to BGR.

    Args:
        planes: ``(rows, linesize)`` uint8 arrays, see :func:`plane_arrays`.
        fmt: OBS video format.
        width, height: frame size in pixels.
        color: the frame's colour parameters (ignored for RGB formats).
        roi: ``(x0, y0, x1, y1)``; None for the whole frame.
        out: a ``(y1 - y0, x1 - x0, 3)`` uint8 array to write into (whole frames only).
        scratch: a dictionary this function keeps its intermediate arrays in between calls
            (pass the same one every frame to avoid reallocating them).

    Returns:
        ``(y1 - y0, x1 - x0, 3)`` uint8 BGR (``out`` when given and usable).

    Raises:
        FrameFormatError: unsupported format or malformed planes.
    """
    info = format_info(fmt)
    if len(planes) != len(info.planes):
        raise FrameFormatError(f"{info.name} needs {len(info.planes)} planes, got {len(planes)}")
    if roi is None:
        rx0, ry0, rx1, ry1 = 0, 0, width, height
    else:
        rx0, ry0, rx1, ry1 = (int(v) for v in roi)
        if not (0 <= rx0 < rx1 <= width and 0 <= ry0 < ry1 <= height):
            raise FrameFormatError(f"roi {tuple(roi)} is outside the {width}x{height} frame")
    x0, y0, x1, y1 = align_roi(fmt, width, height, (rx0, ry0, rx1, ry1))
    w, h = x1 - x0, y1 - y0
    cropped = (x0, y0, x1, y1) != (rx0, ry0, rx1, ry1)
    if fmt in _WIDE_TWIN:
        small = _wide_region(planes, info, (x0, y0, x1, y1))
        sub = (rx0 - x0, ry0 - y0, rx1 - x0, ry1 - y0)
        return to_bgr(small, _WIDE_TWIN[fmt], w, h, color, sub, out=out, scratch=scratch)
    if out is not None and (cropped or out.shape != (h, w, 3) or out.dtype != np.uint8):
        out = None

    bgr: U8
    if not info.yuv:
        p = planes[0][y0:y1]
        if fmt == VideoFormat.BGR3:
            bgr = p[:, 3 * x0 : 3 * x1].reshape(h, w, 3)
            if out is None:
                bgr = bgr.copy()
                return bgr
            np.copyto(out, bgr)
            return out
        px = p[:, 4 * x0 : 4 * x1].reshape(h, w, 4)
        code = cv2.COLOR_RGBA2BGR if fmt == VideoFormat.RGBA else cv2.COLOR_BGRA2BGR
        bgr = cv2.cvtColor(px, code, dst=out)
        return bgr  # RGB formats are never subsampled: nothing to crop

    if fmt == VideoFormat.Y800:
        grey = cv2.LUT(planes[0][y0:y1, x0:x1], color.grey_luts[0])
        bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR, dst=out)
        return bgr

    sx, sy = info.sub_x, info.sub_y
    cx0, cy0 = x0 // sx, y0 // sy
    cx1, cy1 = -(-x1 // sx), -(-y1 // sy)
    cw, ch = cx1 - cx0, cy1 - cy0
    y: U8
    uv: U8
    if fmt in _PACKED:
        iy0, iy1, iu, iv = _PACKED[fmt]
        px = planes[0][y0:y1, 4 * cx0 : 4 * cx1].reshape(h, cw, 4)
        yy = _buffer(scratch, "yy", (h, cw, 2))
        uv = _buffer(scratch, "uv", (h, cw, 2))  # type: ignore[assignment]
        if yy is None or uv is None:
            yy, uv = np.empty((h, cw, 2), np.uint8), np.empty((h, cw, 2), np.uint8)
        cv2.mixChannels([px], [yy, uv], [iy0, 0, iy1, 1, iu, 2, iv, 3])
        y = yy.reshape(h, 2 * cw)[:, :w]
    elif fmt == VideoFormat.NV12:
        y = planes[0][y0:y1, x0:x1]
        uv = planes[1][cy0:cy1, 2 * cx0 : 2 * cx1].reshape(ch, cw, 2)
    else:  # I420, I422, I444
        y = planes[0][y0:y1, x0:x1]
        uv = cv2.merge(
            [planes[1][cy0:cy1, cx0:cx1], planes[2][cy0:cy1, cx0:cx1]], dst=_buffer(scratch, "uv", (ch, cw, 2))
        )

    luts = color.clamp_luts
    if luts is not None:
        y = cv2.LUT(y, luts[0], dst=_buffer(scratch, "y", (h, w)))
        uv = cv2.LUT(uv, luts[1], dst=_buffer(scratch, "uvc", uv.shape))
    uv = _upsample(uv, sx, sy, w, h, scratch)
    yuv = cv2.merge([y, uv], dst=_buffer(scratch, "yuv", (h, w, 3)))
    bgr = cv2.transform(yuv, color.yuv_to_bgr, dst=out)
    if cropped:
        bgr = bgr[ry0 - y0 : ry1 - y0, rx0 - x0 : rx1 - x0].copy()
    return bgr


def from_bgr(
    bgr: U8,
    planes: Sequence[U8],
    fmt: int,
    width: int,
    height: int,
    color: ColorParams,
    roi: Sequence[int] | None = None,
) -> None:
    """Write a BGR image into the region ``roi`` of a frame's planes, in the frame's format.

    Only the bytes of ``roi`` change (row padding and, for BGRA / BGRX / RGBA, the fourth
    byte are kept).

    Args:
        bgr: ``(y1 - y0, x1 - x0, 3)`` uint8.
        planes: the frame's writable ``(rows, linesize)`` planes.
        roi: region to write, aligned to the format's chroma blocks (see :func:`align_roi`);
            None for the whole frame.

    Raises:
        FrameFormatError: unsupported format, a misaligned ``roi`` or a ``bgr`` of the
            wrong shape.
    """
    info = format_info(fmt)
    x0, y0, x1, y1 = (0, 0, width, height) if roi is None else (int(v) for v in roi)
    if (x0, y0, x1, y1) != align_roi(fmt, width, height, (x0, y0, x1, y1)):
        raise FrameFormatError(f"roi {(x0, y0, x1, y1)} is not aligned to {info.name}'s chroma")
    w, h = x1 - x0, y1 - y0
    if bgr.shape != (h, w, 3) or bgr.dtype != np.uint8:
        raise FrameFormatError(f"bgr must be ({h}, {w}, 3) uint8, got {bgr.shape} {bgr.dtype}")
    if len(planes) != len(info.planes):
        raise FrameFormatError(f"{info.name} needs {len(info.planes)} planes, got {len(planes)}")

    if fmt in _WIDE_TWIN:
        twin = _WIDE_TWIN[fmt]
        small = [np.empty((rows, ls), np.uint8) for rows, ls in plane_layout(twin, w, h)]
        from_bgr(bgr, small, twin, w, h, color)
        for (dx, dy, unit), p, codes in zip(info.planes, planes, small, strict=True):
            px0, py0 = (x0 // dx) * (unit // 2), y0 // dy
            rows, cols = codes.shape
            _samples16(p)[py0 : py0 + rows, px0 : px0 + cols] = _widen(codes, info)
        return

    if not info.yuv:
        p = planes[0][y0:y1]
        if fmt == VideoFormat.BGR3:
            p[:, 3 * x0 : 3 * x1] = bgr.reshape(h, 3 * w)
        else:
            px = p[:, 4 * x0 : 4 * x1].reshape(h, w, 4)
            px[:, :, :3] = bgr[:, :, ::-1] if fmt == VideoFormat.RGBA else bgr
        return

    if fmt == VideoFormat.Y800:
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        planes[0][y0:y1, x0:x1] = cv2.LUT(grey, color.grey_luts[1])
        return

    m = color.bgr_to_yuv
    y = cv2.transform(bgr, m[0:1])  # (h, w) -- one output channel
    uv = cv2.transform(bgr, m[1:3])  # (h, w, 2)
    sx, sy = info.sub_x, info.sub_y
    uv = _downsample(uv, sx, sy)
    cx0, cy0 = x0 // sx, y0 // sy
    cx1, cy1 = cx0 + uv.shape[1], cy0 + uv.shape[0]
    if fmt in _PACKED:
        iy0, iy1, iu, iv = _PACKED[fmt]
        px = planes[0][y0:y1, 4 * cx0 : 4 * cx1].reshape(h, cx1 - cx0, 4)
        if w % 2:  # odd frame width: the last macropixel's second luma is padding
            y = cv2.copyMakeBorder(y, 0, 0, 0, 1, cv2.BORDER_REPLICATE)
        px[:, :, iy0] = y[:, 0::2]
        px[:, :, iy1] = y[:, 1::2]
        px[:, :, iu] = uv[:, :, 0]
        px[:, :, iv] = uv[:, :, 1]
        return
    planes[0][y0:y1, x0:x1] = y
    if fmt == VideoFormat.NV12:
        planes[1][cy0:cy1, 2 * cx0 : 2 * cx1] = uv.reshape(cy1 - cy0, 2 * (cx1 - cx0))
    else:
        planes[1][cy0:cy1, cx0:cx1] = uv[:, :, 0]
        planes[2][cy0:cy1, cx0:cx1] = uv[:, :, 1]


# -- lazy access for the pipeline ----------------------------------------------------------
def scaled_region(
    planes: Sequence[U8], fmt: int, width: int, height: int, color: ColorParams, box: Box, size: tuple[int, int]
) -> U8:
    """BGR of the region ``box`` (aligned to chroma blocks) scaled to about ``size``.

    Each plane is scaled on its own, in its own format (a packed 4:2:2 macropixel or an
    NV12 chroma pair is one multi-channel pixel), and only the small result is converted:
    far cheaper than converting the region at full resolution and scaling the BGR.

    Returns:
        ``(h, w, 3)`` uint8 with ``(w, h) == size``.
    """
    info = format_info(fmt)
    x0, y0, x1, y1 = box
    if fmt in _WIDE_TWIN:
        # scale in 16 bits (cheap: only the small result is narrowed), then convert as the twin
        twin = _WIDE_TWIN[fmt]
        w, h = size
        cw, ch = max(info.sub_x, -(-w // info.sub_x) * info.sub_x), max(info.sub_y, -(-h // info.sub_y) * info.sub_y)
        small = []
        for (dx, dy, unit), p in zip(info.planes, planes, strict=True):
            k = unit // 2
            px0, px1, py0, py1 = x0 // dx, -(-x1 // dx), y0 // dy, -(-y1 // dy)
            img = _samples16(p)[py0:py1, px0 * k : px1 * k]
            if not info.msb:
                img = img & np.uint16((1 << info.bits) - 1)
            if k > 1:
                img = img.reshape(py1 - py0, px1 - px0, k)
            nw, nh = -(-cw // dx), -(-ch // dy)
            r = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
            small.append(_narrow(r.reshape(nh, nw * k), info))
        bgr = to_bgr(small, twin, cw, ch, color)
        if (cw, ch) != (w, h):
            bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_LINEAR)
        return bgr
    if fmt in _PACKED:
        # a macropixel holds two luma samples: scaling it as one pixel would pair up luma
        # samples that end up far apart. Split into I422 planes first.
        iy0, iy1, iu, iv = _PACKED[fmt]
        cx0, cx1 = x0 // 2, -(-x1 // 2)
        px = planes[0][y0:y1, 4 * cx0 : 4 * cx1].reshape(y1 - y0, cx1 - cx0, 4)
        yy = np.empty((y1 - y0, cx1 - cx0, 2), np.uint8)
        u = np.empty((y1 - y0, cx1 - cx0), np.uint8)
        v = np.empty_like(u)
        cv2.mixChannels([px], [yy, u, v], [iy0, 0, iy1, 1, iu, 2, iv, 3])
        split = [yy.reshape(y1 - y0, -1)[:, x0 - 2 * cx0 : x1 - 2 * cx0], u, v]
        return scaled_region(split, VideoFormat.I422, x1 - x0, y1 - y0, color, (0, 0, x1 - x0, y1 - y0), size)
    sx, sy = info.sub_x, info.sub_y
    w, h = size
    # convert at the nearest size the subsampling allows, then fix up the last pixel or two
    cw, ch = max(sx, -(-w // sx) * sx), max(sy, -(-h // sy) * sy)
    small = []
    for (dx, dy, unit), p in zip(info.planes, planes, strict=True):
        px0, px1, py0, py1 = x0 // dx, -(-x1 // dx), y0 // dy, -(-y1 // dy)
        img = p[py0:py1, px0 * unit : px1 * unit]
        if unit > 1:
            img = img.reshape(py1 - py0, px1 - px0, unit)
        nw, nh = -(-cw // dx), -(-ch // dy)
        r = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        small.append(r.reshape(nh, nw * unit))
    bgr = to_bgr(small, fmt, cw, ch, color)
    if (cw, ch) != (w, h):
        bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_LINEAR)
    return bgr


class PlanesFrame(LazyFrame):
    """A frame in an OBS pixel format, converted to BGR only where the pipeline looks.

    Args:
        planes: the frame's ``(rows, linesize)`` planes (see :func:`plane_arrays`).
        fmt, width, height: the OBS format and size.
        color: the frame's colour parameters.
        out: a ``(height, width, 3)`` uint8 buffer that :attr:`array` exposes; pixels are
            written into it by :meth:`load` (and by the pipeline inside loaded boxes).
    """

    #: warps read the source at about this many times the output's resolution
    OVERSAMPLE = 2.0

    def __init__(self, planes: Sequence[U8], fmt: int, width: int, height: int, color: ColorParams, out: U8) -> None:
        if out.shape != (height, width, 3) or out.dtype != np.uint8:
            raise FrameFormatError(f"output buffer must be ({height}, {width}, 3) uint8, got {out.shape}")
        self.planes, self.format, self.width, self.height = planes, fmt, width, height
        self.color = color
        self.shape = (height, width, 3)
        self._out = out
        self.loaded: list[Box] = []

    @property
    def array(self) -> U8:
        return self._out

    def load(self, box: Sequence[float]) -> Box:
        b = clip_box(box, self.width, self.height)
        if b is None:
            return (0, 0, 0, 0)
        b = align_roi(self.format, self.width, self.height, b)
        for lx0, ly0, lx1, ly1 in self.loaded:
            if lx0 <= b[0] and ly0 <= b[1] and b[2] <= lx1 and b[3] <= ly1:
                return b
        x0, y0, x1, y1 = b
        self._out[y0:y1, x0:x1] = to_bgr(self.planes, self.format, self.width, self.height, self.color, b)
        self.loaded.append(b)
        return b

    def fill(self, box: Sequence[float]) -> Box:
        """Like :meth:`load`, but pixels already loaded (maybe since modified) are kept."""
        b = clip_box(box, self.width, self.height)
        if b is None:
            return (0, 0, 0, 0)
        b = align_roi(self.format, self.width, self.height, b)
        x0, y0, x1, y1 = b
        keep = np.zeros((y1 - y0, x1 - x0), bool)
        for lx0, ly0, lx1, ly1 in self.loaded:
            if lx0 <= x0 and ly0 <= y0 and x1 <= lx1 and y1 <= ly1:
                return b
            keep[max(ly0, y0) - y0 : max(min(ly1, y1) - y0, 0), max(lx0, x0) - x0 : max(min(lx1, x1) - x0, 0)] = True
        fresh = to_bgr(self.planes, self.format, self.width, self.height, self.color, b)
        np.copyto(self._out[y0:y1, x0:x1], fresh, where=~keep[..., None])
        self.loaded.append(b)
        return b

    def resize(self, size: tuple[int, int]) -> U8:
        return scaled_region(
            self.planes, self.format, self.width, self.height, self.color, (0, 0, self.width, self.height), size
        )

    def warp(self, matrix: npt.ArrayLike, size: tuple[int, int], border: int = cv2.BORDER_CONSTANT) -> U8:
        m = np.asarray(matrix, np.float64)
        src = warp_source_box(m, size, self.width, self.height)
        if src is None:  # the crop lies entirely outside the frame
            return np.zeros((size[1], size[0], 3), np.uint8)
        src = align_roi(self.format, self.width, self.height, src)
        x0, y0, x1, y1 = src
        # frame pixels per output pixel along the crop's axes
        scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
        s = min(1.0, self.OVERSAMPLE * scale)
        if s > 0.75:  # little to gain: convert at full resolution
            self.load(src)
            return cv2.warpAffine(self._out, m, size, flags=cv2.INTER_LINEAR, borderMode=border)
        w, h = max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s))
        small = scaled_region(self.planes, self.format, self.width, self.height, self.color, src, (w, h))
        # small pixel q (centres) <-> frame pixel p = x0 + (q + 0.5) * (x1 - x0) / w - 0.5
        kx, ky = (x1 - x0) / w, (y1 - y0) / h
        a = np.array([[kx, 0.0, x0 + 0.5 * kx - 0.5], [0.0, ky, y0 + 0.5 * ky - 0.5], [0.0, 0.0, 1.0]])
        m_small = m @ a
        return cv2.warpAffine(small, m_small, size, flags=cv2.INTER_LINEAR, borderMode=border)
