"""OBS's pixel formats: the one ``video_format`` enum and how each format lays out its planes.

Standard library only: the OBS filter (inside OBS's embedded Python), the engine client and
the engine process all import it. Values are libobs' ``enum video_format``
(``media-io/video-io.h``); OBS 30+ only appends to it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class VideoFormat(enum.IntEnum):
    """libobs' ``enum video_format``. Members compare equal to the plain ints libobs hands over."""

    NONE = 0
    I420 = 1
    NV12 = 2
    YVYU = 3
    YUY2 = 4
    UYVY = 5
    RGBA = 6
    BGRA = 7
    BGRX = 8
    Y800 = 9
    I444 = 10
    BGR3 = 11
    I422 = 12
    I40A = 13
    I42A = 14
    YUVA = 15
    AYUV = 16
    I010 = 17
    P010 = 18
    I210 = 19
    I412 = 20
    YA2L = 21
    P216 = 22  # OBS 30+
    P416 = 23  # OBS 30+
    V210 = 24  # OBS 30+
    R10L = 25  # OBS 30+


#: Every value's OBS name (``{1: "I420", ...}``), for messages about any format libobs sends.
FORMAT_NAMES: dict[int, str] = {f.value: f.name for f in VideoFormat}


def format_name(fmt: int) -> str:
    """OBS's name of ``fmt`` (``"I420"``), or the number for a value this OBS enum lacks."""
    return FORMAT_NAMES.get(int(fmt), str(fmt))


@dataclass(frozen=True)
class FormatInfo:
    """How one OBS pixel format lays out its planes.

    Attributes:
        name: OBS's name (``I420``...).
        planes: per plane ``(div_x, div_y, unit_bytes)``: the plane has ``ceil(height /
            div_y)`` rows of ``ceil(width / div_x)`` units of ``unit_bytes`` bytes.
        sub_x, sub_y: chroma subsampling; a changed region is aligned to these.
        yuv: whether the colour matrix and range apply.
        bits: significant bits per sample (8; 10, 12 or 16 for formats stored in 16-bit
            little-endian words).
        msb: the ``bits`` sit in the high bits of each 16-bit word (P010, P216, P416) rather
            than the low ones (I010, I210, I412, YA2L).
        alpha: the index of the alpha plane (I40A, I42A, YUVA, YA2L), or -1.
    """

    name: str
    planes: tuple[tuple[int, int, int], ...]
    sub_x: int
    sub_y: int
    yuv: bool
    bits: int = 8
    msb: bool = False
    alpha: int = -1

    def rows(self, plane: int, height: int) -> int:
        return -(-height // self.planes[plane][1])

    def row_bytes(self, plane: int, width: int) -> int:
        div_x, _, unit = self.planes[plane]
        return -(-width // div_x) * unit

    @property
    def row_divisors(self) -> tuple[int, ...]:
        """Per plane, the vertical subsampling (rows = ``ceil(height / div)``)."""
        return tuple(div_y for _, div_y, _ in self.planes)

    @property
    def wide(self) -> bool:
        """Samples are 16-bit little-endian words (``bits`` > 8)."""
        return self.bits > 8

    def code(self, value8: int) -> int:
        """The sample that stands for the 8-bit code ``value8`` in this format (bit replication:
        255 becomes 1023 in 10 bits; ``msb`` formats shift it to the top of the word)."""
        if self.bits <= 8:
            return value8
        v = 0
        got = 0
        while got < self.bits:  # replicate the 8 bits downwards until ``bits`` are filled
            v = (v << 8) | value8
            got += 8
        v >>= got - self.bits
        return v << (16 - self.bits) if self.msb else v


def _info(
    fmt: VideoFormat,
    planes: tuple[tuple[int, int, int], ...],
    sub_x: int,
    sub_y: int,
    yuv: bool,
    bits: int = 8,
    msb: bool = False,
    alpha: int = -1,
) -> tuple[int, FormatInfo]:
    return fmt, FormatInfo(fmt.name, planes, sub_x, sub_y, yuv, bits, msb, alpha)


_P8, _P16 = (1, 1, 1), (1, 1, 2)

#: The formats the engine converts, and their plane layouts.
FORMATS: dict[int, FormatInfo] = dict(
    [
        _info(VideoFormat.I420, (_P8, (2, 2, 1), (2, 2, 1)), 2, 2, True),
        _info(VideoFormat.NV12, (_P8, (2, 2, 2)), 2, 2, True),
        _info(VideoFormat.I422, (_P8, (2, 1, 1), (2, 1, 1)), 2, 1, True),
        _info(VideoFormat.I444, (_P8, _P8, _P8), 1, 1, True),
        _info(VideoFormat.YUY2, ((2, 1, 4),), 2, 1, True),
        _info(VideoFormat.UYVY, ((2, 1, 4),), 2, 1, True),
        _info(VideoFormat.YVYU, ((2, 1, 4),), 2, 1, True),
        _info(VideoFormat.Y800, (_P8,), 1, 1, True),
        _info(VideoFormat.BGRA, ((1, 1, 4),), 1, 1, False),
        _info(VideoFormat.BGRX, ((1, 1, 4),), 1, 1, False),
        _info(VideoFormat.RGBA, ((1, 1, 4),), 1, 1, False),
        _info(VideoFormat.BGR3, ((1, 1, 3),), 1, 1, False),
        # 10/12-bit: converted to 8 bits for the swap, the changed region written back wide
        _info(VideoFormat.I010, (_P16, (2, 2, 2), (2, 2, 2)), 2, 2, True, 10),
        _info(VideoFormat.P010, (_P16, (2, 2, 4)), 2, 2, True, 10, True),
        _info(VideoFormat.I210, (_P16, (2, 1, 2), (2, 1, 2)), 2, 1, True, 10),
        _info(VideoFormat.I412, (_P16, _P16, _P16), 1, 1, True, 12),
    ]
)

#: What the engine accepts (the OBS filter covers frames in other formats while the swap is on).
SUPPORTED_FORMATS: frozenset[int] = frozenset(FORMATS)

#: Every format whose planes are known (for covering a frame the engine cannot swap):
#: :data:`FORMATS` plus the alpha, packed and OBS 30+ formats. AYUV is packed V, U, Y, A
#: bytes (OBS uploads it as BGRA); V210 packs 6 pixels in 16 bytes (four 32-bit words of
#: three 10-bit samples); R10L is one 32-bit word of 10-bit R, G, B per pixel.
LAYOUTS: dict[int, FormatInfo] = {
    **FORMATS,
    **dict(
        [
            _info(VideoFormat.I40A, (_P8, (2, 2, 1), (2, 2, 1), _P8), 2, 2, True, alpha=3),
            _info(VideoFormat.I42A, (_P8, (2, 1, 1), (2, 1, 1), _P8), 2, 1, True, alpha=3),
            _info(VideoFormat.YUVA, (_P8, _P8, _P8, _P8), 1, 1, True, alpha=3),
            _info(VideoFormat.AYUV, ((1, 1, 4),), 1, 1, True),
            _info(VideoFormat.YA2L, (_P16, _P16, _P16, _P16), 1, 1, True, 12, alpha=3),
            _info(VideoFormat.P216, (_P16, (2, 1, 4)), 2, 1, True, 16, True),
            _info(VideoFormat.P416, (_P16, (1, 1, 4)), 1, 1, True, 16, True),
            _info(VideoFormat.V210, ((6, 1, 16),), 6, 1, True, 10),
            _info(VideoFormat.R10L, ((1, 1, 4),), 1, 1, False, 10),
        ]
    ),
}
