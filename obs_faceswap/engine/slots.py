"""The shared-memory slot ring of one engine client: copy frames in, results back out.

Standard library only (runs on OBS's graphics thread inside OBS's embedded Python): each call
is a few ``ctypes.memmove`` calls and ``struct`` packs and never waits on the engine. The
engine process itself (spawn, pipes, watchdog) lives in :mod:`obs_faceswap.engine.process`;
:class:`~obs_faceswap.engine.client.EngineClient` joins the two.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from obs_faceswap.engine import protocol as P
from obs_faceswap.engine.shm import SharedBuffer

_memmove = ctypes.memmove
_now = time.monotonic
_ns = time.perf_counter_ns

# client-side slot states (the shared state word says what the engine did)
_FREE, _ENGINE, _RESULT, _ABANDONED = 0, 1, 2, 3

#: :meth:`SlotRing.apply_result` outcomes.
APPLIED, UNCHANGED, UNAVAILABLE = 1, 0, -1


@dataclass
class FrameView:
    """A frame in memory owned by someone else (an ``obs_source_frame``, a numpy buffer).

    Attributes:
        format: OBS ``video_format`` value (I420=1, NV12=2, YVYU=3, YUY2=4, UYVY=5, RGBA=6,
            BGRA=7, BGRX=8, Y800=9, I444=10, BGR3=11, I422=12).
        width, height: pixels.
        planes: addresses of ``data[0..]``, 0 where absent.
        linesizes: bytes per row of each plane.
        timestamp: ns (OBS's frame timestamp).
        color_matrix: OBS's 16-float YUV→RGB matrix from the frame (empty = BT.709 default).
        full_range: the frame's ``full_range``.
        range_min, range_max: the frame's ``color_range_min`` / ``color_range_max``.
    """

    format: int
    width: int
    height: int
    planes: tuple[int, ...]
    linesizes: tuple[int, ...]
    timestamp: int = 0
    color_matrix: tuple[float, ...] = ()
    full_range: bool = False
    range_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    range_max: tuple[float, float, float] = (1.0, 1.0, 1.0)


class _Geometry:
    """Per (format, size, linesizes, plane placement): where each plane goes in a slot."""

    __slots__ = ("key", "nplanes", "sizes", "offsets", "total", "span", "divs")

    def __init__(self, frame: FrameView) -> None:
        info = P.FORMATS[frame.format]
        n = len(info.planes)
        if len(frame.planes) < n or len(frame.linesizes) < n:
            raise ValueError(f"{info.name} needs {n} planes")
        rows, sizes = [], []
        for i in range(n):
            need = info.row_bytes(i, frame.width)
            ls = frame.linesizes[i]
            if ls < need or not frame.planes[i]:
                raise ValueError(f"{info.name} plane {i}: linesize {ls} < {need} or no data")
            rows.append(info.rows(i, frame.height))
            sizes.append(rows[-1] * ls)
        addrs = frame.planes[:n]
        total = sum(sizes)
        base = addrs[0]
        # OBS allocates a frame's planes in one block, in order, with small alignment gaps:
        # mirror that placement so one memmove copies the whole frame
        if all(addrs[i] >= addrs[i - 1] + sizes[i - 1] for i in range(1, n)) and (
            addrs[-1] + sizes[-1] - base <= total + 4096 * n
        ):
            self.offsets = tuple(a - base for a in addrs)
            self.span = addrs[-1] + sizes[-1] - base
        else:
            offs, o = [], 0
            for s in sizes:
                offs.append(o)
                o += s
            self.offsets = tuple(offs)
            self.span = 0
        self.key = _key(frame)
        self.nplanes = n
        self.sizes = tuple(sizes)
        self.total = self.offsets[-1] + sizes[-1]
        self.divs = info.planes


def _key(frame: FrameView) -> tuple[Any, ...]:
    return (frame.format, frame.width, frame.height, tuple(frame.linesizes))


class _Slot:
    __slots__ = ("index", "seg", "mv", "addr", "state", "seq", "geom", "ident", "t_submit", "failed")

    def __init__(self, index: int) -> None:
        self.index = index
        self.seg: SharedBuffer | None = None
        self.mv: memoryview | None = None
        self.addr = 0
        self.state = _FREE
        self.seq = 0
        self.geom: _Geometry | None = None
        self.ident: tuple[Any, ...] = ()
        self.t_submit = 0.0
        self.failed = False


_PLANE_COPY: list[Any] = []  # [function or None] once looked up


def plane_copy_function() -> Callable[[int, int, int, int, int, int], None] | None:
    """FFmpeg's ``av_image_copy_plane(dst, dst_linesize, src, src_linesize, bytewidth, height)``
    if libavutil is at hand, else None (then rectangles are copied row by row in Python).

    OBS itself links libavutil, so inside OBS the symbol is already in the process: one C call
    copies a rectangle of a plane instead of a Python loop over its rows. Set
    ``OBS_FACESWAP_NO_AVUTIL=1`` to force the pure-Python path.
    """
    if _PLANE_COPY:
        return _PLANE_COPY[0]  # type: ignore[no-any-return]
    fn = None
    if not os.environ.get("OBS_FACESWAP_NO_AVUTIL"):
        for candidate in _avutil_candidates():
            try:
                f = ctypes.CDLL(candidate).av_image_copy_plane
            except (OSError, AttributeError):
                continue
            f.restype = None
            f.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int)
            if _plane_copy_works(f):
                fn = f
                break
    _PLANE_COPY.append(fn)
    return fn


def _avutil_candidates() -> Iterator[str | None]:
    if sys.platform != "win32":
        yield None  # symbols already loaded into this process (OBS links FFmpeg)
    here = os.path.dirname(sys.executable)  # OBS's own bin directory inside OBS
    for pattern in ("avutil-*.dll", "libavutil*.dylib", "libavutil.so*"):
        yield from sorted(glob.glob(os.path.join(here, pattern)))
    import ctypes.util  # runs ldconfig on Linux: only when the cheap ways failed

    name = ctypes.util.find_library("avutil")
    if name:
        yield name


def _plane_copy_works(f: Any) -> bool:
    src = (ctypes.c_ubyte * 16)(*range(1, 17))
    dst = (ctypes.c_ubyte * 16)()
    f(ctypes.addressof(dst) + 5, 4, ctypes.addressof(src) + 5, 4, 2, 2)  # 2x2 box of a 4x4
    return list(dst) == [0, 0, 0, 0, 0, 6, 7, 0, 0, 10, 11, 0, 0, 0, 0, 0]


class SlotRing:
    """``slots`` shared-memory segments; frames go in by :meth:`submit`, results come back
    by :meth:`ready` / :meth:`apply`.

    Args:
        slots: how many frames may be in flight at once.
        send: writes one message to the engine (never blocks; a no-op while none runs).
        warn: reports a problem once per kind (the client's log).
        emit: reports a client event (the client's log).
    """

    def __init__(
        self, slots: int, send: Callable[[bytes], None], warn: Callable[[str, str], None], emit: Callable[[str], None]
    ) -> None:
        self._slots = [_Slot(i) for i in range(slots)]
        # ready/apply/discard (graphics thread) against close (the thread that stops an engine)
        self._lock = threading.Lock()
        self._free: list[int] = list(range(slots - 1, -1, -1))
        self._by_seq: dict[int, int] = {}
        self._seq = 0
        self._geoms: dict[tuple[Any, ...], _Geometry] = {}
        self.plane_copy = plane_copy_function()
        """Copies a rectangle of a plane in one C call (FFmpeg's ``av_image_copy_plane``), or
        None: rows are then copied by a Python loop."""
        self._ctypes_arrays: dict[int, Any] = {}
        self._send = send
        self._warn_once = warn
        self._emit = emit
        self.last_rects: list[tuple[int, int, int, int]] = []
        """The changed rectangles of the last result :meth:`apply` wrote (the face regions)."""

    # -- frames ----------------------------------------------------------------------------
    def submit(self, frame: FrameView, max_age: float | None) -> int | None:
        """Copy ``frame`` into a free slot and tell the engine (which must be running).

        Returns:
            The frame's sequence number, or None when no slot is free or the format is not
            supported.
        """
        geom = self._geoms.get(_key(frame))
        if geom is None or (geom.span and not self._same_span(geom, frame)):
            geom = self._geometry(frame)
            if geom is None:
                return None
        idx = self._take_slot()
        if idx is None:
            return None
        slot = self._slots[idx]
        try:
            if slot.seg is None or slot.seg.size < P.HEADER_SIZE + geom.total:
                self._allocate(slot, geom.total)
            base = slot.addr + P.HEADER_SIZE
            if geom.span:
                _memmove(base, frame.planes[0], geom.span)
            else:
                for i in range(geom.nplanes):
                    _memmove(base + geom.offsets[i], frame.planes[i], geom.sizes[i])
            self._seq += 1
            seq = self._seq
            mv = slot.mv
            assert mv is not None
            P.pack_frame(
                mv,
                frame.format,
                frame.width,
                frame.height,
                geom.key[3],
                geom.offsets,
                geom.sizes,
                frame.timestamp,
                frame.color_matrix,
                frame.range_min,
                frame.range_max,
                frame.full_range,
            )
            t = _ns()
            deadline = t + int(max_age * 1e9) if max_age else 0
            P.TIMES.pack_into(mv, P.TIMES_OFFSET, t, deadline, 0, 0, 0, 0, 0, 0, 0)
            P.pack_rects(mv, [])
            P.STATE.pack_into(mv, P.STATE_OFFSET, P.MAGIC, P.SUBMITTED, seq)
        except (OSError, ValueError) as e:  # shared memory refused, frame vanished...
            self._free.append(idx)
            self._warn_once(f"submit:{type(e).__name__}", f"cannot hand a frame to the engine: {e}")
            return None
        slot.state = _ENGINE
        slot.seq = seq
        slot.geom = geom
        slot.ident = (frame.planes, frame.timestamp)
        slot.t_submit = _now()
        slot.failed = False
        self._by_seq[seq] = idx
        self._send(P.encode_frame(idx, seq))
        return seq

    def ready(self, seq: int) -> bool:
        """Whether the result (or failure) for ``seq`` has arrived. Never waits."""
        with self._lock:
            return self._ready(seq)

    def _ready(self, seq: int) -> bool:
        idx = self._by_seq.get(seq)
        if idx is None:
            return False
        slot = self._slots[idx]
        if slot.state == _RESULT:
            return True
        return self._check_done(slot)

    def apply(self, seq: int, frame: FrameView) -> bool:
        """Write ``seq``'s changed region into ``frame`` and release the slot.

        ``frame`` must have the submitted format, size and linesizes; it may be a newer
        frame than the one submitted (then only the changed rectangle is copied).

        Returns:
            True if something was written; False when there is no usable result (not
            ready, skipped, failed, nothing changed, or a different geometry).
        """
        return self.apply_result(seq, frame) == APPLIED

    def apply_result(self, seq: int, frame: FrameView) -> int:
        """:meth:`apply` with the outcome: :data:`APPLIED`, :data:`UNCHANGED` (no face, no
        badge) or :data:`UNAVAILABLE` (not ready, skipped, failed, another geometry)."""
        with self._lock:
            return self._apply_result(seq, frame)

    def _apply_result(self, seq: int, frame: FrameView) -> int:
        """Like :meth:`apply`, telling "the engine found nothing to change" (:data:`UNCHANGED`:
        no face, no badge) apart from "no usable result" (:data:`UNAVAILABLE`: not ready,
        skipped, failed, another geometry), so a filter can fail closed on the latter only."""
        idx = self._by_seq.pop(seq, None)
        if idx is None:
            return UNAVAILABLE
        slot = self._slots[idx]
        if slot.state == _ENGINE and not self._check_done(slot):
            self._abandon(slot)
            return UNAVAILABLE
        out = UNAVAILABLE
        if not slot.failed and slot.mv is not None:
            st = P.STATE.unpack_from(slot.mv, P.STATE_OFFSET)
            if st[1] == P.DONE and st[2] == seq:
                geom = slot.geom
                if geom is not None and _key(frame) == geom.key:
                    rects = P.unpack_rects(slot.mv)
                    out = UNCHANGED
                    for x0, y0, x1, y1 in rects:
                        self._copy_back(slot, geom, frame, x0, y0, x1, y1)
                        out = APPLIED
                    self.last_rects = rects
        slot.state = _FREE
        self._free.append(idx)
        return out

    def discard(self, seq: int) -> None:
        """Forget ``seq`` (the engine skips it if it has not started on it yet)."""
        with self._lock:
            self._discard(seq)

    def _discard(self, seq: int) -> None:
        """Forget ``seq``: the engine skips it if it has not started on it yet, and the slot
        is reused once the engine is done with it."""
        idx = self._by_seq.pop(seq, None)
        if idx is None:
            return
        slot = self._slots[idx]
        if slot.state == _ENGINE and not self._check_done(slot):
            self._abandon(slot)
            return
        slot.state = _FREE
        self._free.append(idx)

    # -- engine lifecycle ------------------------------------------------------------------
    def attach_messages(self) -> list[bytes]:
        """What a newly started engine must be told: every allocated slot."""
        return [P.encode_attach(s.index, s.seg.name, s.seg.size) for s in self._slots if s.seg is not None]

    def fail_pending(self, free_abandoned: bool) -> None:
        """The engine died or is being killed: its pending frames have failed."""
        for s in self._slots:
            if s.state == _ENGINE:
                s.state = _RESULT
                s.failed = True
            elif free_abandoned and s.state == _ABANDONED:
                s.state = _FREE
                self._free.append(s.index)

    def reclaim(self) -> None:
        """Free abandoned slots the engine has finished with."""
        for s in self._slots:
            if s.state == _ABANDONED and self._check_done(s):
                s.state = _FREE
                self._free.append(s.index)

    def oldest_pending(self) -> float | None:
        """``time.monotonic()`` of the oldest frame the engine still owes, or None."""
        oldest = None
        for s in self._slots:
            if (
                (s.state == _ENGINE or s.state == _ABANDONED)
                and not self._check_done(s)
                and (oldest is None or s.t_submit < oldest)
            ):
                oldest = s.t_submit
        return oldest

    def close(self) -> None:
        """Unlink every segment. Safe while another thread still calls :meth:`ready`,
        :meth:`apply` or :meth:`discard` for frames of this client (they then find no result)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        for s in self._slots:
            self._drop_segment(s)
            s.state = _FREE
        self._free = [s.index for s in reversed(self._slots)]
        self._by_seq.clear()

    # -- internals -------------------------------------------------------------------------
    def _geometry(self, frame: FrameView) -> _Geometry | None:
        if frame.format not in P.FORMATS:
            self._warn_once(
                f"fmt{frame.format}",
                f"video format {P.FORMAT_NAMES.get(frame.format, frame.format)} is not supported; "
                "not swapped (the OBS filter covers such frames)",
            )
            return None
        try:
            geom = _Geometry(frame)
        except ValueError as e:
            self._warn_once(f"geom{_key(frame)}", f"unusable frame: {e}")
            return None
        if len(self._geoms) > 16:
            self._geoms.clear()
        self._geoms[geom.key] = geom
        return geom

    @staticmethod
    def _same_span(geom: _Geometry, frame: FrameView) -> bool:
        base = frame.planes[0]
        offs = geom.offsets
        planes = frame.planes
        return all(planes[i] - base == offs[i] for i in range(1, geom.nplanes))

    def _take_slot(self) -> int | None:
        if self._free:
            return self._free.pop()
        for s in self._slots:
            if s.state == _ABANDONED and self._check_done(s):
                s.state = _FREE
                return s.index
        return None

    def _abandon(self, slot: _Slot) -> None:
        # The engine may be writing into it: the slot waits for DONE before reuse. A deadline
        # in the past makes the engine skip the frame if it has not picked it up yet (it
        # reads the deadline just before starting; either way the outcome is consistent).
        slot.state = _ABANDONED
        if slot.mv is not None:
            P.DEADLINE.pack_into(slot.mv, P.DEADLINE_OFFSET, 1)

    def _check_done(self, slot: _Slot) -> bool:
        mv = slot.mv
        if mv is None:
            return False
        _, st, sq = P.STATE.unpack_from(mv, P.STATE_OFFSET)
        if sq == slot.seq and st >= P.DONE:
            if slot.state == _ENGINE:
                slot.state = _RESULT
            return True
        return False

    def _allocate(self, slot: _Slot, data_size: int) -> None:
        self._drop_segment(slot)
        # 1/8 headroom so a slightly larger frame (another linesize) reuses the slot
        seg = SharedBuffer.create(P.HEADER_SIZE + data_size + data_size // 8)
        slot.seg = seg
        slot.mv = seg.buf
        slot.addr = seg.address
        self._send(P.encode_attach(slot.index, seg.name, seg.size))

    def _drop_segment(self, slot: _Slot) -> None:
        seg, slot.seg = slot.seg, None
        slot.mv = None
        slot.addr = 0
        if seg is not None:
            try:
                seg.unlink()
            except OSError as e:
                self._emit(f"cannot remove shared memory {seg.name}: {e}")

    def _copy_back(self, slot: _Slot, geom: _Geometry, frame: FrameView, x0: int, y0: int, x1: int, y1: int) -> None:
        # Three ways, cheapest first: one av_image_copy_plane call per plane (just the
        # rectangle); without libavutil, one memmove of whole rows when the frame is the very
        # one submitted (it still holds the same pixels outside the rectangle); else one
        # slice assignment per row of the rectangle.
        src_base = slot.addr + P.HEADER_SIZE
        same = slot.ident == (frame.planes, frame.timestamp)
        lss = geom.key[3]
        copy2d = self.plane_copy
        for i in range(geom.nplanes):
            div_x, div_y, unit = geom.divs[i]
            ls = lss[i]
            r0 = y0 // div_y
            r1 = -(-y1 // div_y)
            start = r0 * ls
            b0 = (x0 // div_x) * unit
            b1 = -(-x1 // div_x) * unit
            if copy2d is not None:
                copy2d(frame.planes[i] + start + b0, ls, src_base + geom.offsets[i] + start + b0, ls, b1 - b0, r1 - r0)
                continue
            n = (r1 - r0) * ls
            if same:
                _memmove(frame.planes[i] + start, src_base + geom.offsets[i] + start, n)
                continue
            dst = memoryview(self._ctypes_array(n).from_address(frame.planes[i] + start)).cast("B")
            so = P.HEADER_SIZE + geom.offsets[i] + start
            src = slot.mv[so : so + n]  # type: ignore[index]
            w = b1 - b0
            # slice assignment is ~4x cheaper per row than a ctypes.memmove call
            for o in range(b0, n, ls):
                dst[o : o + w] = src[o : o + w]
            dst.release()
            src.release()

    def _ctypes_array(self, n: int) -> Any:
        t = self._ctypes_arrays.get(n)
        if t is None:
            if len(self._ctypes_arrays) > 64:
                self._ctypes_arrays.clear()
            t = self._ctypes_arrays[n] = ctypes.c_ubyte * n
        return t
