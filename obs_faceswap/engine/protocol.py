"""Wire format between the OBS filter (client) and the engine process (server).

Standard library only: this module is imported inside OBS's embedded Python.

Two channels carry everything:

* **Shared memory**, one segment per *slot*. A slot starts with a fixed :data:`HEADER_SIZE`
  byte header, followed by the frame's planes stored with the frame's **own** linesizes, so
  the client copies a plane (or, when OBS allocated the planes back to back, the whole frame)
  with one ``memmove``. The engine writes the changed region back into the same planes, in
  the frame's own format, and then flips the slot's state word: completion never needs the
  pipe, so the client learns about results by reading one word (:meth:`ready`).
* **Pipes.** Client → engine on the engine's stdin, one ASCII line per message::

      A <slot> <segment-name> <size>   a slot's shared-memory segment (sent when (re)allocated)
      F <slot> <seq>                   a frame is waiting in <slot>
      S <json object>                  the full settings dictionary
      Q                                quit

  Engine → client on stdout, one JSON object per line (:func:`encode_status`). The engine's
  logging goes to stderr, which the client forwards to its log.

Header layout (little endian), offsets in bytes::

      0  STATE   magic u32, state u32, seq u64         -- written last by whoever hands over
     16  TIMES   submit_ns i64, deadline_ns i64, done_ns i64,
                 changed rect x0 y0 x1 y1 (i32 x4), error u32, reserved u32
     64  FRAME   format i32, width u32, height u32, nplanes u32, linesize u32 x4,
                 offset u64 x4, size u64 x4, timestamp u64, color matrix f32 x16,
                 range_min f32 x3, range_max f32 x3, full_range u8
    320  RECTS   count u32 of further changed rects, then up to 3 x (x0 y0 x1 y1 i32)

The changed region is up to :data:`MAX_RECTS` rectangles (a face and a badge in another
corner are two small rectangles, not one that spans the frame): the first in TIMES, the others
in RECTS.

Times are ``time.perf_counter_ns()``: one system-wide monotonic clock on Linux
(CLOCK_MONOTONIC), Windows (QueryPerformanceCounter) and macOS, so both processes can
compare them.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

# The frame formats are part of the wire format: one definition, in video_formats.
from obs_faceswap.video_formats import FORMAT_NAMES as FORMAT_NAMES
from obs_faceswap.video_formats import FORMATS as FORMATS
from obs_faceswap.video_formats import FormatInfo as FormatInfo
from obs_faceswap.video_formats import VideoFormat as VideoFormat

PROTOCOL_VERSION = 1
MAGIC = 0x4F465331  # "OFS1"

MAX_PLANES = 4

# -- slot header ---------------------------------------------------------------------------
HEADER_SIZE = 512

#: Slot states (the ``state`` word at offset 0).
FREE = 0
SUBMITTED = 1
DONE = 2  # processed; the changed rect (maybe empty) is written back
SKIPPED = 3  # not processed (deadline passed or cancelled, engine disabled)
FAILED = 4  # processing raised; the planes may be partly written, do not apply

STATE = struct.Struct("<IIQ")
STATE_OFFSET = 0
TIMES = struct.Struct("<qqq4iII")
TIMES_OFFSET = 16
DEADLINE = struct.Struct("<q")  # the deadline_ns field alone (the client cancels with 1)
DEADLINE_OFFSET = TIMES_OFFSET + 8
FRAME = struct.Struct("<iIII4I4Q4QQ16f3f3fB")
FRAME_OFFSET = 64

RECTS = struct.Struct("<I12i")
RECTS_OFFSET = 320
#: Most changed rectangles one result carries (one in TIMES, the rest in RECTS).
MAX_RECTS = 4

assert STATE.size <= TIMES_OFFSET and TIMES_OFFSET + TIMES.size <= FRAME_OFFSET
assert FRAME_OFFSET + FRAME.size <= RECTS_OFFSET and RECTS_OFFSET + RECTS.size <= HEADER_SIZE


def pack_rects(buf: Any, rects: list[tuple[int, int, int, int]]) -> None:
    """Write the changed rectangles beyond the first (which goes in TIMES)."""
    extra = rects[1:MAX_RECTS]
    flat = [v for r in extra for v in r] + [0] * (12 - 4 * len(extra))
    RECTS.pack_into(buf, RECTS_OFFSET, len(extra), *flat)


def unpack_rects(buf: Any) -> list[tuple[int, int, int, int]]:
    """Every changed rectangle of a result: the one in TIMES, then those in RECTS."""
    t = TIMES.unpack_from(buf, TIMES_OFFSET)
    out = [(t[3], t[4], t[5], t[6])] if t[5] > t[3] and t[6] > t[4] else []
    v = RECTS.unpack_from(buf, RECTS_OFFSET)
    n = min(int(v[0]), MAX_RECTS - 1)
    out += [(v[1 + 4 * i], v[2 + 4 * i], v[3 + 4 * i], v[4 + 4 * i]) for i in range(n)]
    return [r for r in out if r[2] > r[0] and r[3] > r[1]]


@dataclass(frozen=True)
class FrameHeader:
    """The FRAME part of a slot header, as the engine reads it."""

    format: int
    width: int
    height: int
    linesizes: tuple[int, ...]
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    timestamp: int
    color_matrix: tuple[float, ...]
    range_min: tuple[float, float, float]
    range_max: tuple[float, float, float]
    full_range: bool


def pack_frame(
    buf: Any,
    fmt: int,
    width: int,
    height: int,
    linesizes: tuple[int, ...],
    offsets: tuple[int, ...],
    sizes: tuple[int, ...],
    timestamp: int,
    color_matrix: tuple[float, ...],
    range_min: tuple[float, float, float],
    range_max: tuple[float, float, float],
    full_range: bool,
) -> None:
    """Write the FRAME part of a header (tuples shorter than 4 / 16 are zero padded)."""
    n = len(linesizes)
    pad = (0,) * (MAX_PLANES - n)
    matrix = tuple(color_matrix) if len(color_matrix) == 16 else (0.0,) * 16
    FRAME.pack_into(
        buf,
        FRAME_OFFSET,
        fmt,
        width,
        height,
        n,
        *linesizes,
        *pad,
        *offsets,
        *pad,
        *sizes,
        *pad,
        timestamp,
        *matrix,
        *range_min,
        *range_max,
        1 if full_range else 0,
    )


def unpack_frame(buf: Any) -> FrameHeader:
    v = FRAME.unpack_from(buf, FRAME_OFFSET)
    n = v[3]
    if not 0 < n <= MAX_PLANES:
        raise ValueError(f"slot header has {n} planes")
    return FrameHeader(
        format=v[0],
        width=v[1],
        height=v[2],
        linesizes=tuple(v[4 : 4 + n]),
        offsets=tuple(v[8 : 8 + n]),
        sizes=tuple(v[12 : 12 + n]),
        timestamp=v[16],
        color_matrix=tuple(v[17:33]),
        range_min=(v[33], v[34], v[35]),
        range_max=(v[36], v[37], v[38]),
        full_range=bool(v[39]),
    )


# -- pipe messages -------------------------------------------------------------------------
def encode_attach(slot: int, name: str, size: int) -> bytes:
    return b"A %d %s %d\n" % (slot, name.encode("ascii"), size)


def encode_frame(slot: int, seq: int) -> bytes:
    return b"F %d %d\n" % (slot, seq)


def encode_settings(settings: dict[str, Any]) -> bytes:
    # json escapes newlines inside strings, so one object is always one line
    return b"S " + json.dumps(settings, default=str).encode("utf-8") + b"\n"


QUIT = b"Q\n"


def decode_message(line: bytes) -> tuple[Any, ...]:
    """Parse one client → engine line into ``("A", slot, name, size)``, ``("F", slot, seq)``,
    ``("S", dict)`` or ``("Q",)``.

    Raises:
        ValueError: the line is not a valid message.
    """
    line = line.rstrip(b"\r\n")
    kind = line[:1]
    if kind == b"F":
        _, slot, seq = line.split()
        return ("F", int(slot), int(seq))
    if kind == b"A":
        _, slot, name, size = line.split()
        return ("A", int(slot), name.decode("ascii"), int(size))
    if kind == b"S":
        settings = json.loads(line[2:].decode("utf-8"))
        if not isinstance(settings, dict):
            raise ValueError("settings must be a JSON object")
        return ("S", settings)
    if kind == b"Q":
        return ("Q",)
    raise ValueError(f"unknown message {line[:40]!r}")


def encode_status(**fields: Any) -> bytes:
    """One engine → client status line, e.g. ``encode_status(state="running", fps=29.8)``."""
    fields.setdefault("protocol", PROTOCOL_VERSION)
    return json.dumps(fields, separators=(",", ":")).encode("utf-8") + b"\n"


def decode_status(line: bytes) -> dict[str, Any] | None:
    """The status dictionary of a line, or None for a line that is not one."""
    try:
        d = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return d if isinstance(d, dict) else None
