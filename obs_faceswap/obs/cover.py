"""Fail closed: cover the face (coarse mosaic), restore a frozen frame, draw the badge.

Standard library only, on the raw plane bytes of an OBS frame (or the render filter's BGRA
buffer), cheap enough for OBS's graphics thread: a mosaic costs one ``ctypes.string_at`` and
one short Python loop per block row, then one ``ctypes.memmove`` per pixel row of the region
(one per block row when the region spans whole rows); the badge is pre-rendered per format and
size into row byte strings and copied with one ``memmove`` per row.

Which frames: the filter calls :meth:`Guard.swapped` for every frame that carries its swap
result and :meth:`Guard.unavailable` for every frame that would otherwise show the original
(late result, no engine, engine starting/restarting/hung, setting change, no free slot). The
"When the swap is unavailable" setting picks what happens then: ``cover`` (default) mosaics
the last known face regions, grown with the time since they were seen, or the **whole frame**
when none is known (at start) or they are older than :data:`FORGET_AFTER_S` -- the OBS side
has no face detector, and a central region would miss a face off-centre; ``freeze`` repeats
the last swapped frame (falling back to ``cover`` when there is none of the same size);
``original`` shows the frame as it is. The disclosure badge is drawn on every such frame.

Formats: every ``video_format`` libobs has (:data:`obs_faceswap.video_formats.LAYOUTS`), also
those the engine does not swap, whose frames the filter always covers: 16-bit little-endian
samples for the 10/12/16-bit formats (black, grey and white by bit replication: 8-bit 16 is
10-bit 64), V210 groups of 6 pixels made one colour per mosaic block, R10L words, AYUV bytes
(V, U, Y, A); alpha planes are left as they are by the mosaic and made opaque under the badge.
"""

from __future__ import annotations

import ctypes
import functools
from typing import NamedTuple

from obs_faceswap.video_formats import LAYOUTS, FormatInfo, VideoFormat

COVER, FREEZE, ORIGINAL = "cover", "freeze", "original"
FALLBACKS = (COVER, FREEZE, ORIGINAL)

#: Known face regions are grown by this fraction of their size on each side ...
MARGIN = 0.35
#: ... and by this fraction more per second since they were last seen ...
GROWTH_PER_S = 0.5
#: ... and forgotten (whole frame covered) after this many seconds.
FORGET_AFTER_S = 3.0
#: Mean difference (0..255) of sampled bytes that means "another picture" (a scene cut, a new
#: source): the last face regions say nothing about it, the whole frame is covered.
CUT_THRESHOLD = 32
#: Mosaic blocks across a face region, and across the whole frame.
BLOCKS_PER_FACE = 6
BLOCKS_PER_FRAME = 10

# OBS video_format → per plane (pixels per unit across, rows per plane row, bytes per unit):
# every format whose layout is known -- also those the engine does not swap (10-bit, alpha,
# OBS 30+ formats), so that a frame in any of them can still be covered.
LAYOUT: dict[int, tuple[tuple[int, int, int], ...]] = {int(f): info.planes for f, info in LAYOUTS.items()}
_YUV_PACKED_Y = {3: (0, 2), 4: (0, 2), 5: (1, 3)}  # byte positions of the two lumas
_RGB = (6, 7, 8, 11)
# V210: four little-endian 32-bit words of three 10-bit samples (bits 0, 10, 20) for 6 pixels
_V210_ORDER = ("U", 0, "V", 1, "U", 2, "V", 3, "U", 4, "V", 5)


class Planes(NamedTuple):
    """Where a frame's pixels are: OBS ``video_format``, size, plane addresses and linesizes."""

    format: int
    width: int
    height: int
    planes: tuple[int, ...]
    linesizes: tuple[int, ...]

    def key(self) -> tuple[int, int, int, tuple[int, ...]]:
        return (self.format, self.width, self.height, self.linesizes)


def signature(p: Planes) -> bytes:
    """A few hundred bytes sampled from 8 rows of the first plane (for :func:`is_cut`)."""
    layout = LAYOUT.get(p.format)
    if layout is None or not p.planes or not p.planes[0]:
        return b""
    dx, _dy, unit = layout[0]
    rb = (p.width // dx) * unit
    ls = p.linesizes[0]
    rows = [ctypes.string_at(p.planes[0] + (p.height * (k + 1) // 9) * ls, rb) for k in range(8)]
    info = LAYOUTS[p.format]
    if info.wide and unit == 2:  # 16-bit samples: compare their top 8 significant bits
        shift = 8 if info.msb else info.bits - 8
        mask = 0xFFFF if info.msb else (1 << info.bits) - 1
        step = max(1, (rb // 2) // 48)
        return bytes(((v & mask) >> shift) & 0xFF for r in rows for v in memoryview(r).cast("H")[::step])
    step = max(1, rb // 48)
    return b"".join(r[::step] for r in rows)


def is_cut(a: bytes, b: bytes) -> bool:
    """Whether two signatures look like different pictures."""
    if not a or len(a) != len(b):
        return True
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) > CUT_THRESHOLD * len(a)


def supported(fmt: int) -> bool:
    return fmt in LAYOUT


def _even(v: int) -> int:
    return v - (v & 1)


def grow(rect: tuple[int, int, int, int], frac: float, w: int, h: int) -> tuple[int, int, int, int]:
    """``rect`` grown by ``frac`` of its size on each side, clipped, corners on even pixels."""
    x0, y0, x1, y1 = rect
    mx, my = int((x1 - x0) * frac), int((y1 - y0) * frac)
    return (_even(max(0, x0 - mx)), _even(max(0, y0 - my)), min(w, _even(x1 + mx + 1)), min(h, _even(y1 + my + 1)))


def mosaic(p: Planes, rect: tuple[int, int, int, int], block: int) -> None:
    """Replace ``rect`` of the frame by blocks of ``block`` pixels, each the colour of its
    centre pixel (identity is gone, the scene's colours stay)."""
    info = LAYOUTS.get(p.format)
    if info is None:
        return
    block = max(2, _even(block))
    x0, y0, x1, y1 = rect
    x0, y0, x1, y1 = max(0, _even(x0)), max(0, _even(y0)), min(p.width, x1), min(p.height, y1)
    if x0 and info.sub_x > 2:  # V210: start on a whole 6-pixel group
        x0 -= x0 % info.sub_x
    if x1 <= x0 or y1 <= y0:
        return
    for i, ((dx, dy, unit), addr, ls) in enumerate(zip(info.planes, p.planes, p.linesizes, strict=False)):
        if not addr or i == info.alpha:  # alpha is left as it is
            continue
        b0 = (x0 // dx) * unit
        b1 = (-(-x1 // dx)) * unit
        r0, r1 = y0 // dy, -(-y1 // dy)
        nbytes = b1 - b0
        bw = max(1, block // dx) * unit
        bh = max(1, block // dy)
        half = (bw // unit // 2) * unit
        for r in range(r0, r1, bh):
            rr = min(r + bh, r1)
            src = ctypes.string_at(addr + ((r + rr) // 2) * ls + b0, nbytes)
            parts = []
            for b in range(0, nbytes, bw):
                m = min(b + half, nbytes - unit)
                parts.append(_flat(p.format, src[m : m + unit]) * (min(bw, nbytes - b) // unit))
            _fill_rows(addr, ls, r, rr, b0, b"".join(parts))


def _flat(fmt: int, unit: bytes) -> bytes:
    """A packed unit holding several pixels made one colour (its first luma everywhere):
    otherwise a mosaic block would repeat the unit's own detail (6 pixels wide for V210)."""
    if fmt in _YUV_PACKED_Y:
        a, b = _YUV_PACKED_Y[fmt]
        out = bytearray(unit)
        out[b] = unit[a]
        return bytes(out)
    if fmt == VideoFormat.V210:
        words = [int.from_bytes(unit[k : k + 4], "little") for k in range(0, 16, 4)]
        samples = [(words[k // 3] >> (10 * (k % 3))) & 0x3FF for k in range(12)]
        y, u, v = samples[1], samples[0], samples[2]
        return _v210_unit([y] * 6, u, v)
    return unit


def _v210_unit(ys: list[int], u: int, v: int) -> bytes:
    """One V210 group of 6 pixels with lumas ``ys`` and one chroma pair for all of them."""
    samples = [u if s == "U" else v if s == "V" else ys[int(s)] for s in _V210_ORDER]
    words = [samples[k] | samples[k + 1] << 10 | samples[k + 2] << 20 for k in range(0, 12, 3)]
    return b"".join(w.to_bytes(4, "little") for w in words)


def _fill_rows(addr: int, ls: int, r0: int, r1: int, b0: int, pat: bytes) -> None:
    """Write ``pat`` at byte ``b0`` of rows ``r0..r1``: one read and one write of the band
    (Python slice assignments in between are far cheaper than a ctypes call per row)."""
    n = len(pat)
    span = (r1 - r0 - 1) * ls + b0 + n
    base = addr + r0 * ls
    if b0 == 0 and n == ls:
        ctypes.memmove(base, pat * (r1 - r0), span)
        return
    band = bytearray(ctypes.string_at(base, span))
    for o in range(b0, span, ls):
        band[o : o + n] = pat
    ctypes.memmove(base, bytes(band), span)


def _write_rows(addr: int, ls: int, r0: int, b0: int, rows: tuple[bytes, ...]) -> None:
    """Write ``rows[i]`` at byte ``b0`` of row ``r0 + i`` (one read, one write of the band)."""
    if not rows:
        return
    n = len(rows[0])
    span = (len(rows) - 1) * ls + b0 + n
    base = addr + r0 * ls
    band = bytearray(ctypes.string_at(base, span))
    o = b0
    for data in rows:
        band[o : o + n] = data
        o += ls
    ctypes.memmove(base, bytes(band), span)


# -- the badge -------------------------------------------------------------------------------
_FONT: dict[str, tuple[int, ...]] = {
    "A": (14, 17, 17, 31, 17, 17, 17),
    "B": (30, 17, 17, 30, 17, 17, 30),
    "C": (14, 17, 16, 16, 16, 17, 14),
    "D": (30, 17, 17, 17, 17, 17, 30),
    "E": (31, 16, 16, 30, 16, 16, 31),
    "F": (31, 16, 16, 30, 16, 16, 16),
    "G": (14, 17, 16, 23, 17, 17, 15),
    "H": (17, 17, 17, 31, 17, 17, 17),
    "I": (14, 4, 4, 4, 4, 4, 14),
    "J": (7, 2, 2, 2, 2, 18, 12),
    "K": (17, 18, 20, 24, 20, 18, 17),
    "L": (16, 16, 16, 16, 16, 16, 31),
    "M": (17, 27, 21, 21, 17, 17, 17),
    "N": (17, 17, 25, 21, 19, 17, 17),
    "O": (14, 17, 17, 17, 17, 17, 14),
    "P": (30, 17, 17, 30, 16, 16, 16),
    "Q": (14, 17, 17, 17, 21, 18, 13),
    "R": (30, 17, 17, 30, 20, 18, 17),
    "S": (15, 16, 16, 14, 1, 1, 30),
    "T": (31, 4, 4, 4, 4, 4, 4),
    "U": (17, 17, 17, 17, 17, 17, 14),
    "V": (17, 17, 17, 17, 17, 10, 4),
    "W": (17, 17, 17, 21, 21, 21, 10),
    "X": (17, 17, 10, 4, 10, 17, 17),
    "Y": (17, 17, 17, 10, 4, 4, 4),
    "Z": (31, 1, 2, 4, 8, 16, 31),
    "0": (14, 17, 19, 21, 25, 17, 14),
    "1": (4, 12, 4, 4, 4, 4, 14),
    "2": (14, 17, 1, 2, 4, 8, 31),
    "3": (31, 2, 4, 2, 1, 17, 14),
    "4": (2, 6, 10, 18, 31, 2, 2),
    "5": (31, 16, 30, 1, 1, 17, 14),
    "6": (6, 8, 16, 30, 17, 17, 14),
    "7": (31, 1, 2, 4, 8, 8, 8),
    "8": (14, 17, 17, 14, 17, 17, 14),
    "9": (14, 17, 17, 15, 1, 2, 12),
    " ": (0,) * 7,
    "-": (0, 0, 0, 31, 0, 0, 0),
    ".": (0, 0, 0, 0, 0, 12, 12),
    ",": (0, 0, 0, 0, 12, 4, 8),
    ":": (0, 12, 12, 0, 12, 12, 0),
    "!": (4, 4, 4, 4, 4, 0, 4),
    "?": (14, 17, 1, 2, 4, 0, 4),
    "/": (0, 1, 2, 4, 8, 16, 0),
    "(": (2, 4, 8, 8, 8, 4, 2),
    ")": (8, 4, 2, 2, 2, 4, 8),
    "'": (4, 4, 8, 0, 0, 0, 0),
    "_": (0, 0, 0, 0, 0, 0, 31),
    "+": (0, 4, 4, 31, 4, 4, 0),
}
_LIGHT, _DARK = 235, 24


def badge_bits(text: str, scale: int) -> list[list[int]]:
    """The badge as rows of 0/1 pixels: light text (5x7 font, ``scale`` times) on a dark box."""
    glyphs = [_FONT.get(c.upper(), _FONT["?"]) for c in (text or " ")]
    pad = 2 * scale
    width = pad * 2 + len(glyphs) * 6 * scale - scale
    rows = [[0] * width for _ in range(pad)]
    for gy in range(7):
        row = [0] * pad
        for gi, g in enumerate(glyphs):
            bits = g[gy]
            for gx in range(5):
                row += [(bits >> (4 - gx)) & 1] * scale
            if gi < len(glyphs) - 1:
                row += [0] * scale
        row += [0] * pad
        rows += [row] * scale
    rows += [[0] * width for _ in range(pad)]
    return rows


def _samples(info: FormatInfo, value8: int, n: int) -> bytes:
    """``n`` samples standing for the 8-bit code ``value8`` (16-bit little-endian when wide)."""
    if not info.wide:
        return bytes((value8,)) * n
    return info.code(value8).to_bytes(2, "little") * n


def _unit(fmt: int, plane: int, px: list[int]) -> bytes:
    """Bytes of one unit of ``plane`` whose pixels are ``px`` (0 dark, 1 light)."""
    info = LAYOUTS[fmt]
    luma = [_LIGHT if px[min(i, len(px) - 1)] else _DARK for i in range(max(1, info.planes[plane][0]))]
    if fmt in _RGB:
        v = luma[0]
        return bytes((v, v, v)) if fmt == 11 else bytes((v, v, v, 255))
    if fmt == VideoFormat.R10L:  # grey: the same 10-bit value at bits 22, 12 and 2
        g = info.code(luma[0])
        return (g << 22 | g << 12 | g << 2).to_bytes(4, "little")
    if fmt == VideoFormat.AYUV:  # bytes V, U, Y, A
        return bytes((128, 128, luma[0], 255))
    if fmt == VideoFormat.V210:
        return _v210_unit([info.code(v) for v in luma], info.code(128), info.code(128))
    if fmt in _YUV_PACKED_Y:
        out = bytearray(b"\x80\x80\x80\x80")
        for i, pos in enumerate(_YUV_PACKED_Y[fmt]):
            out[pos] = luma[i]
        return bytes(out)
    n = info.planes[plane][2] // (2 if info.wide else 1)
    if plane == info.alpha:
        return _samples(info, 255, n)  # the badge is opaque
    if plane == 0:
        return _samples(info, luma[0], n)
    return _samples(info, 128, n)  # chroma: neutral grey


@functools.lru_cache(maxsize=8)
def badge_rows(fmt: int, text: str, scale: int) -> tuple[int, int, tuple[tuple[bytes, ...], ...]]:
    """``(width, height, rows per plane)`` of the badge in ``fmt`` (width and height even)."""
    bits = badge_bits(text, scale)
    group = 6 if LAYOUTS[fmt].sub_x == 6 else 2  # whole V210 groups, else whole chroma pairs
    w = -(-len(bits[0]) // group) * group
    bits = [r + [0] * (w - len(r)) for r in bits]
    if len(bits) & 1:
        bits.append([0] * w)
    planes = []
    for i, (dx, dy, _unit_bytes) in enumerate(LAYOUT[fmt]):
        rows = []
        for y in range(0, len(bits), dy):
            row = bits[y]
            rows.append(b"".join(_unit(fmt, i, row[x : x + dx]) for x in range(0, w, dx)))
        planes.append(tuple(rows))
    return w, len(bits), tuple(planes)


def badge_scale(height: int) -> int:
    """Glyph scale for a frame ``height`` pixels tall (text ≈ 2.2 % of it, like the engine's)."""
    return max(1, round(height * 0.022 / 7))


def badge_place(p: Planes, corner: str, bw: int, bh: int) -> tuple[int, int] | None:
    margin = _even(max(4, p.height // 60))
    if bw + 2 * margin > p.width or bh + 2 * margin > p.height:
        return None
    x = margin if corner.endswith("left") else _even(p.width - bw - margin)
    y = margin if corner.startswith("top") else _even(p.height - bh - margin)
    return x, y


def draw_badge(p: Planes, text: str, corner: str) -> tuple[int, int, int, int] | None:
    """Draw the disclosure badge into the frame; returns where (None: did not fit)."""
    if p.format not in LAYOUT:
        return None
    bw, bh, rows = badge_rows(p.format, text, badge_scale(p.height))
    at = badge_place(p, corner, bw, bh)
    if at is None:
        return None
    x, y = at
    x -= x % LAYOUTS[p.format].sub_x
    for (dx, dy, unit), addr, ls, prow in zip(LAYOUT[p.format], p.planes, p.linesizes, rows, strict=False):
        if not addr:
            continue
        _write_rows(addr, ls, y // dy, (x // dx) * unit, prow)
    return (x, y, x + bw, y + bh)


# -- what the filter uses --------------------------------------------------------------------
class Guard:
    """Per filter: the last known face regions, the frozen frame, the badge settings.

    Args:
        clock: ``time.perf_counter_ns``.
    """

    def __init__(self, clock: object) -> None:
        self.clock = clock
        self.fallback = COVER
        self.badge = True
        self.badge_text = "face swap"
        self.badge_corner = "bottom-right"
        self.regions: list[tuple[int, int, int, int]] = []
        self.seen_ns = 0
        self.seen_sig = b""
        self.size = (0, 0, 0)  # format, width, height of the frame the regions were seen in
        self._frozen: tuple[tuple[int, int, int, tuple[int, ...]], ctypes.Array[ctypes.c_char]] | None = None

    def configure(self, fallback: str, badge: bool, text: str, corner: str) -> None:
        self.fallback = fallback if fallback in FALLBACKS else COVER
        self.badge, self.badge_text, self.badge_corner = badge, text or "face swap", corner
        if self.fallback != FREEZE:
            self._frozen = None

    def forget(self) -> None:
        """A scene cut or a new source: the old regions say nothing about the new picture."""
        self.regions = []
        self.seen_sig = b""
        self._frozen = None

    def swapped(self, p: Planes | None, rects: list[tuple[int, int, int, int]]) -> None:
        """``p`` carries its swap result; ``rects`` are the regions the engine changed."""
        if p is None:
            return
        if rects:
            self.regions = list(rects)
            self.seen_ns = self.clock()  # type: ignore[operator]
            self.size = (p.format, p.width, p.height)
            self.seen_sig = signature(p)
        if self.fallback == FREEZE:
            self._freeze(p)

    def unavailable(self, p: Planes | None) -> str:
        """``p`` has no swap result: cover / restore it as configured and draw the badge.

        Returns what was done: ``covered``, ``frozen`` or ``original``.
        """
        if p is None or p.format not in LAYOUT:
            return ORIGINAL
        done = ORIGINAL
        if self.fallback == FREEZE and self._thaw(p):
            done = FREEZE
        elif self.fallback != ORIGINAL:
            self.cover(p)
            done = COVER
        if self.badge and done != FREEZE:
            draw_badge(p, self.badge_text, self.badge_corner)
        return done

    def cover(self, p: Planes) -> None:
        age = (self.clock() - self.seen_ns) / 1e9 if self.regions else 0.0  # type: ignore[operator]
        if (
            not self.regions
            or self.size != (p.format, p.width, p.height)  # another format: another picture (source)
            or age > FORGET_AFTER_S
            or is_cut(self.seen_sig, signature(p))
        ):
            mosaic(p, (0, 0, p.width, p.height), max(16, p.width // BLOCKS_PER_FRAME))
            return
        frac = MARGIN + GROWTH_PER_S * age
        for r in self.regions:
            g = grow(r, frac, p.width, p.height)
            mosaic(p, g, max(8, (g[2] - g[0]) // BLOCKS_PER_FACE))

    def _freeze(self, p: Planes) -> None:
        layout = LAYOUT.get(p.format)
        if layout is None:
            return
        sizes = [ls * -(-p.height // dy) for (_dx, dy, _u), ls in zip(layout, p.linesizes, strict=False)]
        key = p.key()
        buf = self._frozen[1] if self._frozen is not None and self._frozen[0] == key else None
        if buf is None:
            buf = ctypes.create_string_buffer(sum(sizes))
        o = ctypes.addressof(buf)
        for addr, n in zip(p.planes, sizes, strict=False):
            ctypes.memmove(o, addr, n)
            o += n
        self._frozen = (key, buf)

    def _thaw(self, p: Planes) -> bool:
        if self._frozen is None or self._frozen[0] != p.key():
            return False
        layout = LAYOUT[p.format]
        o = ctypes.addressof(self._frozen[1])
        for (_dx, dy, _u), addr, ls in zip(layout, p.planes, p.linesizes, strict=False):
            n = ls * -(-p.height // dy)
            ctypes.memmove(addr, o, n)
            o += n
        return True
