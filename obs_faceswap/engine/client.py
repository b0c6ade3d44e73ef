"""The OBS side of the engine: start the engine process, hand it frames, take results back.

Standard library only: this module runs inside OBS's embedded Python (no numpy there) and
on OBS's graphics thread, so the per-frame calls are a few ``ctypes.memmove`` calls and
``struct`` packs, and **nothing here ever waits** on the engine:

* :meth:`EngineClient.submit` copies the frame's planes into a free shared-memory slot
  (one ``memmove`` per plane; one for the whole frame when its planes are back to back),
  writes a header and a one-line notice to the engine's stdin (a non-blocking write);
* :meth:`EngineClient.ready` reads the slot's state word;
* :meth:`EngineClient.apply` copies the changed region back: one C call per plane for the
  rectangle (FFmpeg's ``av_image_copy_plane``, which OBS always has loaded); without
  libavutil, one ``memmove`` of the changed rows per plane when the result goes into the
  very frame it came from (same plane addresses and timestamp), else one slice assignment
  per row of the rectangle;
* :meth:`EngineClient.poll` (call it from ``video_tick``) reads the engine's status lines
  gathered by a reader thread, runs the watchdog and restarts a dead engine with back-off.

Two reader threads (stdout, stderr) do blocking reads only -- blocked in I/O they do not
hold the GIL -- and just append lines to deques.

Timing modes are built on top by the filter: *synchronised* (hold frame N, submit it,
release it once ``ready``/``apply``) and *lowest latency* (submit frame N and apply the
newest ready result of frame N-1 to it). :attr:`EngineClient.max_age` tells the engine how
old a frame may get before its result is useless, so it skips those instead of falling
behind.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import glob
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from obs_faceswap.engine import protocol as P
from obs_faceswap.engine.shm import SharedBuffer, remove_stale_segments
from obs_faceswap.video_formats import SUPPORTED_FORMATS

__all__ = ["SUPPORTED_FORMATS", "EngineClient", "EngineStatus", "FrameView"]

log = logging.getLogger(__name__)


_memmove = ctypes.memmove
_now = time.monotonic
_ns = time.perf_counter_ns

# client-side slot states (the shared state word says what the engine did)
_FREE, _ENGINE, _RESULT, _ABANDONED = 0, 1, 2, 3

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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


@dataclass(frozen=True)
class EngineStatus:
    """What the properties view shows.

    Attributes:
        state: ``stopped`` | ``starting`` | ``loading`` | ``running`` | ``error`` |
            ``restarting`` | ``disabled``.
        message: the reason / last error, "" when fine.
        provider: execution provider the engine uses (``CPUExecutionProvider``...).
        fps: frames the engine processed per second, recently.
        latency_ms: submit → result ready, recent median.
        restarts: how many times the engine was restarted.
        pid: the engine's process id while one runs.
    """

    state: str
    message: str
    provider: str
    fps: float
    latency_ms: float
    restarts: int
    pid: int | None


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
                addrs[-1] + sizes[-1] - base <= total + 4096 * n):
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
    __slots__ = ("index", "seg", "mv", "addr", "state", "seq", "geom", "ident", "t_submit",
                 "failed")

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
            f.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                          ctypes.c_int, ctypes.c_int)
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


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"engine was killed by {name}"
    return f"engine exited with code {code}"


class EngineClient:
    """Runs ``python -m obs_faceswap.engine`` and talks to it through shared memory.

    Args:
        python: the engine venv's interpreter (None → ``sys.executable``, for tests; inside
            OBS ``sys.executable`` is OBS itself, so the filter always passes a path).
        settings: flat settings (``source``, ``model``, ``models_dir``, ``enabled`` and any
            ``section.field`` of :class:`~obs_faceswap.config.PipelineConfig`).
        slots: shared-memory slots, i.e. frames that may be in flight at once.
        env: extra environment variables for the engine.
        log: receives one line per engine log line and per client event.
        processor: ``"module:callable"`` building the engine's processor instead of the
            face-swap pipeline (tests, tools); called like ``Pipeline(config, store, source)``.
        hang_timeout: a frame pending longer than this (s) means the engine hung: it is
            killed and restarted.
        start_timeout: longest time (s) the engine may take to start and load its models.
        backoff_initial, backoff_max: restart delays double from the first to the cap (s).
    """

    def __init__(self, python: str | None, settings: dict[str, object], *, slots: int = 8,
                 env: dict[str, str] | None = None, log: Callable[[str], None] | None = None,
                 processor: str | None = None, hang_timeout: float = 10.0,
                 start_timeout: float = 120.0, backoff_initial: float = 1.0,
                 backoff_max: float = 30.0) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.python = python or sys.executable
        self.max_age: float | None = None
        """Seconds after submit after which a frame's result is useless: the engine skips
        such frames instead of falling behind (lowest-latency mode). None: every frame is
        processed, in order (synchronised mode). Discarded frames are always skipped."""
        self._settings: dict[str, object] = dict(settings)
        self._env = dict(env or {})
        self._log_cb = log
        self._processor = processor
        self.hang_timeout = hang_timeout
        self.start_timeout = start_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max

        self._slots = [_Slot(i) for i in range(slots)]
        self._free: list[int] = list(range(slots - 1, -1, -1))
        self._by_seq: dict[int, int] = {}
        self._seq = 0
        self._geoms: dict[tuple[Any, ...], _Geometry] = {}
        self.plane_copy = plane_copy_function()
        """Copies a rectangle of a plane in one C call (FFmpeg's ``av_image_copy_plane``), or
        None: rows are then copied by a Python loop."""
        self._ctypes_arrays: dict[int, Any] = {}
        self._warned: set[str] = set()

        self._proc: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._outbuf = bytearray()
        self._threads: list[threading.Thread] = []
        # bounded: if nobody calls poll() for a long time, old lines are dropped
        self._lines: collections.deque[bytes] = collections.deque(maxlen=1000)
        self._errlines: collections.deque[str] = collections.deque(maxlen=1000)
        self._last_err: collections.deque[str] = collections.deque(maxlen=8)
        self._kill_reason = ""
        self._t_start = 0.0
        self._t_state = 0.0
        self._next_start: float | None = None
        self._failures = 0
        self._closed = False
        self._started = False

        self._state = "stopped"  # process-level: stopped / starting / restarting / up
        self._engine_state = ""  # what the engine reported: loading / running / error / ...
        self._message = ""
        self._provider = ""
        self._fps = 0.0
        self._latency = 0.0
        self._restarts = 0
        self._pid: int | None = None
        self._status_cache: EngineStatus | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Spawn the engine and return at once (idempotent while it runs)."""
        if self._closed:
            raise RuntimeError("EngineClient is closed")
        if self._proc is not None:
            return
        self._started = True
        removed = remove_stale_segments()
        if removed:
            self._emit(f"removed {len(removed)} shared-memory segments left by a crashed OBS")
        self._spawn()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the engine (ask, then terminate, then kill), join the reader threads and
        unlink every shared-memory segment. Idempotent; never raises."""
        if self._closed:
            return
        self._closed = True
        proc = self._proc
        if proc is not None:
            self._send(P.QUIT)
            try:
                if proc.stdin is not None:
                    proc.stdin.close()  # EOF: the engine exits by itself
            except OSError:
                pass
            self._fd = -1
            try:
                proc.wait(max(0.0, timeout))
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    try:
                        proc.wait(5.0)
                    except subprocess.TimeoutExpired:
                        self._emit(f"engine pid {proc.pid} did not die after SIGKILL")
        for t in self._threads:
            t.join(timeout=max(0.5, timeout))
        self._threads.clear()
        for stream in (proc.stdout, proc.stderr) if proc is not None else ():
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._proc = None
        self._pid = None
        self._forward_stderr(limit=None)
        for s in self._slots:
            self._drop_segment(s)
            s.state = _FREE
        self._by_seq.clear()
        self._state = "stopped"
        self._engine_state = ""
        self._status_cache = None

    def __enter__(self) -> EngineClient:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- frames ----------------------------------------------------------------------------
    def submit(self, frame: FrameView) -> int | None:
        """Copy ``frame`` into a free slot and tell the engine.

        Returns:
            The frame's sequence number, or None when the engine is not running and ready,
            no slot is free, or the format is not supported (the filter passes the frame
            through untouched).
        """
        if self._engine_state != "running" or self._fd < 0 or not self._enabled():
            return None
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
            P.pack_frame(mv, frame.format, frame.width, frame.height, geom.key[3],
                         geom.offsets, geom.sizes, frame.timestamp, frame.color_matrix,
                         frame.range_min, frame.range_max, frame.full_range)
            t = _ns()
            deadline = t + int(self.max_age * 1e9) if self.max_age else 0
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
        idx = self._by_seq.pop(seq, None)
        if idx is None:
            return False
        slot = self._slots[idx]
        if slot.state == _ENGINE and not self._check_done(slot):
            self._abandon(slot)
            return False
        ok = False
        if not slot.failed and slot.mv is not None:
            st = P.STATE.unpack_from(slot.mv, P.STATE_OFFSET)
            if st[1] == P.DONE and st[2] == seq:
                geom = slot.geom
                if geom is not None and _key(frame) == geom.key:
                    for x0, y0, x1, y1 in P.unpack_rects(slot.mv):
                        self._copy_back(slot, geom, frame, x0, y0, x1, y1)
                        ok = True
        slot.state = _FREE
        self._free.append(idx)
        return ok

    def discard(self, seq: int) -> None:
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

    # -- settings / status -----------------------------------------------------------------
    def update_settings(self, settings: dict[str, object]) -> None:
        """Merge ``settings`` into the current ones and send them to the engine (which
        applies them live, keeping the last good configuration on an invalid one)."""
        self._settings.update(settings)
        self._status_cache = None
        if self._fd >= 0:
            self._send(P.encode_settings(self._settings))

    @property
    def settings(self) -> dict[str, object]:
        return dict(self._settings)

    @property
    def status(self) -> EngineStatus:
        st = self._status_cache
        if st is None:
            st = self._status_cache = self._make_status()
        return st

    def poll(self) -> None:
        """Housekeeping; cheap, call it every ``video_tick``: forward engine log lines, read
        status lines, flush pending writes, kill a hung engine, restart a dead one."""
        if self._closed:
            return
        if self._errlines:
            self._forward_stderr(limit=50)
        while self._lines:
            self._on_status_line(self._lines.popleft())
        if self._outbuf and self._fd >= 0:
            self._flush()
        proc = self._proc
        now = _now()
        if proc is not None:
            code = proc.poll()
            if code is not None:
                self._on_exit(code, now)
            elif not self._kill_reason:
                self._watchdog(proc, now)
        elif self._next_start is not None and now >= self._next_start and self._started:
            self._next_start = None
            self._restarts += 1
            self._spawn()
        for s in self._slots:
            if s.state == _ABANDONED and self._check_done(s):
                s.state = _FREE
                self._free.append(s.index)

    # -- internals: process ----------------------------------------------------------------
    def _spawn(self) -> None:
        cmd = [self.python, "-m", "obs_faceswap.engine", "--parent-pid", str(os.getpid())]
        if self._processor:
            cmd += ["--processor", self._processor]
        env = dict(os.environ)
        env.update(self._env)
        # run the same obs_faceswap as this client: the protocol must match
        paths = [_PACKAGE_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        env.setdefault("PYTHONIOENCODING", "utf-8")
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        else:
            kwargs["start_new_session"] = True  # keep OBS's terminal signals away from it
        self._kill_reason = ""
        self._engine_state = ""
        self._status_cache = None
        self._t_start = self._t_state = _now()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, close_fds=True, **kwargs)
        except (OSError, ValueError) as e:
            reason = f"cannot start the engine with Python interpreter {self.python!r}: {e}"
            self._schedule_restart(reason, _now())
            return
        self._proc = proc
        self._pid = proc.pid
        self._state = "starting"
        self._message = ""
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self._fd = proc.stdin.fileno()
        # Windows before 3.12 cannot make a pipe non-blocking: it stays blocking there, which
        # is safe because at most `slots` frame notices can be outstanding (a few hundred bytes)
        with contextlib.suppress(OSError):
            os.set_blocking(self._fd, False)
        self._outbuf.clear()
        self._lines.clear()
        for name, stream, sink in (("stdout", proc.stdout, self._lines),
                                   ("stderr", proc.stderr, None)):
            t = threading.Thread(target=self._reader, args=(stream, sink),
                                 name=f"obs-faceswap-engine-{proc.pid}-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        self._threads = [t for t in self._threads if t.is_alive()]
        # a new engine knows nothing: tell it every slot, then the settings
        for s in self._slots:
            if s.seg is not None:
                self._send(P.encode_attach(s.index, s.seg.name, s.seg.size))
        self._send(P.encode_settings(self._settings))
        self._emit(f"engine started (pid {proc.pid}): {' '.join(cmd)}")

    def _reader(self, stream: IO[bytes], sink: collections.deque[bytes] | None) -> None:
        # Runs in its own thread: blocking reads only, tiny per-line work.
        try:
            for line in stream:
                if sink is not None:
                    sink.append(line)
                else:
                    text = line.decode("utf-8", "replace").rstrip()
                    self._errlines.append(text)
                    self._last_err.append(text)
        except (OSError, ValueError):  # closed under us by close()
            pass

    def _on_exit(self, code: int, now: float) -> None:
        reason = self._kill_reason or _describe_exit(code)
        if not self._kill_reason and code != 0:
            last = self._last_error_line()
            if last:
                reason += f": {last}"
        proc = self._proc
        self._proc = None
        self._pid = None
        self._fd = -1
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        for s in self._slots:  # a dead engine writes nothing more
            if s.state == _ENGINE:
                s.state = _RESULT
                s.failed = True
            elif s.state == _ABANDONED:
                s.state = _FREE
                self._free.append(s.index)
        if now - self._t_start > 60.0:
            self._failures = 0  # it ran fine for a while: restart quickly
        self._schedule_restart(reason, now)

    def _schedule_restart(self, reason: str, now: float) -> None:
        delay = min(self.backoff_max, self.backoff_initial * (2 ** self._failures))
        self._failures += 1
        self._next_start = now + delay
        self._state = "restarting"
        self._engine_state = ""
        self._message = f"{reason}; restarting in {delay:g} s"
        self._fps = 0.0
        self._status_cache = None
        self._emit(self._message)

    def _watchdog(self, proc: subprocess.Popen[bytes], now: float) -> None:
        if self._engine_state in ("", "starting", "loading"):
            if now - self._t_state > self.start_timeout:
                self._kill(proc, f"engine did not finish starting within {self.start_timeout:g} s")
            return
        oldest = None
        for s in self._slots:
            if ((s.state == _ENGINE or s.state == _ABANDONED) and not self._check_done(s)
                    and (oldest is None or s.t_submit < oldest)):
                oldest = s.t_submit
        if oldest is not None and now - oldest > self.hang_timeout:
            self._kill(proc, f"engine hung (no result for {now - oldest:.1f} s)")

    def _kill(self, proc: subprocess.Popen[bytes], reason: str) -> None:
        self._kill_reason = reason + "; killed it"
        # its pending frames have failed as far as the filter is concerned; the slots are not
        # reused before the next engine runs, by when this one is certainly dead
        for s in self._slots:
            if s.state == _ENGINE:
                s.state = _RESULT
                s.failed = True
        self._engine_state = ""
        self._state = "restarting"
        self._message = self._kill_reason
        self._status_cache = None
        with contextlib.suppress(OSError):
            proc.kill()  # SIGKILL / TerminateProcess: does not wait

    # -- internals: pipe -------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if self._fd < 0:
            return
        if self._outbuf:
            self._outbuf += data
            self._flush()
            return
        try:
            n = os.write(self._fd, data)
        except BlockingIOError:
            n = 0
        except OSError:  # broken pipe: the engine is gone, poll() notices
            self._fd = -1
            return
        if n < len(data):
            self._outbuf += data[n:]

    def _flush(self) -> None:
        try:
            n = os.write(self._fd, self._outbuf)
        except BlockingIOError:
            return
        except OSError:
            self._fd = -1
            return
        del self._outbuf[:n]

    def _on_status_line(self, line: bytes) -> None:
        d = P.decode_status(line)
        if d is None:
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                self._emit(f"engine stdout: {text}")
            return
        if d.get("protocol") != P.PROTOCOL_VERSION:
            if self._proc is not None and not self._kill_reason:
                self._kill(self._proc, f"engine speaks protocol {d.get('protocol')}, expected "
                           f"{P.PROTOCOL_VERSION} (an obs_faceswap of another version?)")
            return
        state = str(d.get("state", self._engine_state))
        if state != self._engine_state:
            self._t_state = _now()
            self._engine_state = state
        self._state = "up"
        self._message = str(d.get("message", ""))
        self._provider = str(d.get("provider", self._provider))
        self._fps = float(d.get("fps", 0.0))
        self._latency = float(d.get("latency_ms", self._latency))
        self._status_cache = None

    def _make_status(self) -> EngineStatus:
        if self._state == "up":
            state = self._engine_state or "starting"
            if state == "running" and not self._enabled():
                state = "disabled"
        else:
            state = self._state
        return EngineStatus(state, self._message, self._provider,
                            self._fps if self._state == "up" else 0.0, self._latency,
                            self._restarts, self._pid)

    def _enabled(self) -> bool:
        v = self._settings.get("enabled", True)
        if isinstance(v, str):
            return v.strip().lower() in ("1", "true", "yes", "on")
        return bool(v)

    # -- internals: slots ------------------------------------------------------------------
    def _geometry(self, frame: FrameView) -> _Geometry | None:
        if frame.format not in P.FORMATS:
            self._warn_once(f"fmt{frame.format}", f"video format "
                            f"{P.FORMAT_NAMES.get(frame.format, frame.format)} is not supported; "
                            "frames pass through")
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

    def _copy_back(self, slot: _Slot, geom: _Geometry, frame: FrameView, x0: int, y0: int,
                   x1: int, y1: int) -> None:
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
                copy2d(frame.planes[i] + start + b0, ls, src_base + geom.offsets[i] + start + b0,
                       ls, b1 - b0, r1 - r0)
                continue
            n = (r1 - r0) * ls
            if same:
                _memmove(frame.planes[i] + start, src_base + geom.offsets[i] + start, n)
                continue
            dst = memoryview(self._ctypes_array(n).from_address(frame.planes[i] + start)).cast("B")
            so = P.HEADER_SIZE + geom.offsets[i] + start
            src = slot.mv[so:so + n]  # type: ignore[index]
            w = b1 - b0
            # slice assignment is ~4x cheaper per row than a ctypes.memmove call
            for o in range(b0, n, ls):
                dst[o:o + w] = src[o:o + w]
            dst.release()
            src.release()

    def _ctypes_array(self, n: int) -> Any:
        t = self._ctypes_arrays.get(n)
        if t is None:
            if len(self._ctypes_arrays) > 64:
                self._ctypes_arrays.clear()
            t = self._ctypes_arrays[n] = ctypes.c_ubyte * n
        return t

    # -- internals: logging ----------------------------------------------------------------
    def _last_error_line(self) -> str:
        for text in reversed(self._last_err):
            if text.strip() and not text.startswith(" "):
                return text.strip()[:300]
        return ""

    def _forward_stderr(self, limit: int | None) -> None:
        n = 0
        while self._errlines and (limit is None or n < limit):
            self._emit(self._errlines.popleft(), engine=True)
            n += 1

    def _emit(self, text: str, engine: bool = False) -> None:
        if self._log_cb is not None:
            with contextlib.suppress(Exception):  # a log callback must never break the filter
                self._log_cb(text if engine else f"[client] {text}")
        elif not engine:
            log.info("%s", text)
        else:
            log.debug("engine: %s", text)

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._emit(text)

