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
    """

    name: str
    planes: tuple[tuple[int, int, int], ...]
    sub_x: int
    sub_y: int
    yuv: bool

    def rows(self, plane: int, height: int) -> int:
        return -(-height // self.planes[plane][1])

    def row_bytes(self, plane: int, width: int) -> int:
        div_x, _, unit = self.planes[plane]
        return -(-width // div_x) * unit

    @property
    def row_divisors(self) -> tuple[int, ...]:
        """Per plane, the vertical subsampling (rows = ``ceil(height / div)``)."""
        return tuple(div_y for _, div_y, _ in self.planes)


def _info(
    fmt: VideoFormat, planes: tuple[tuple[int, int, int], ...], sub_x: int, sub_y: int, yuv: bool
) -> tuple[int, FormatInfo]:
    return fmt, FormatInfo(fmt.name, planes, sub_x, sub_y, yuv)


#: The formats the engine converts, and their plane layouts.
FORMATS: dict[int, FormatInfo] = dict(
    [
        _info(VideoFormat.I420, ((1, 1, 1), (2, 2, 1), (2, 2, 1)), 2, 2, True),
        _info(VideoFormat.NV12, ((1, 1, 1), (2, 2, 2)), 2, 2, True),
        _info(VideoFormat.I422, ((1, 1, 1), (2, 1, 1), (2, 1, 1)), 2, 1, True),
        _info(VideoFormat.I444, ((1, 1, 1), (1, 1, 1), (1, 1, 1)), 1, 1, True),
        _info(VideoFormat.YUY2, ((2, 1, 4),), 2, 1, True),
        _info(VideoFormat.UYVY, ((2, 1, 4),), 2, 1, True),
        _info(VideoFormat.YVYU, ((2, 1, 4),), 2, 1, True),
        _info(VideoFormat.Y800, ((1, 1, 1),), 1, 1, True),
        _info(VideoFormat.BGRA, ((1, 1, 4),), 1, 1, False),
        _info(VideoFormat.BGRX, ((1, 1, 4),), 1, 1, False),
        _info(VideoFormat.RGBA, ((1, 1, 4),), 1, 1, False),
        _info(VideoFormat.BGR3, ((1, 1, 3),), 1, 1, False),
    ]
)

#: What the engine accepts (the OBS filter passes other formats through untouched).
SUPPORTED_FORMATS: frozenset[int] = frozenset(FORMATS)
