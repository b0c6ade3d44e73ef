"""The engine process: frames from shared memory → processor → changed region back.

Run as ``python -m obs_faceswap.engine`` by :class:`~obs_faceswap.engine.client.EngineClient`.
One thread reads control messages from stdin into a queue; the main thread attaches slots,
applies settings and processes frames:

1. planes → BGR (:mod:`obs_faceswap.engine.frames`, with the frame's colour matrix/range);
2. ``processor.process(bgr, timestamp)`` -- the face-swap pipeline, or any object built by
   a factory with the same signature (tests inject small real processors here);
3. the region ``report.changed_xyxy`` (grown to whole chroma blocks) is converted back to
   the frame's own format and written into the slot; then the slot's state word flips to
   DONE, which is all the client looks at.

Frames are processed in order; a frame whose deadline has passed (the client's ``max_age``,
or a frame the client discarded) is skipped: a result nobody can use is never computed.

Status (state, provider, fps, latency, errors) goes to the client as JSON lines on stdout;
logging goes to stderr. The process exits by itself when stdin reaches EOF or the parent
process disappears, so no orphan is left behind.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import inspect
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from obs_faceswap.config import PipelineConfig, apply_updates
from obs_faceswap.engine import frames as F
from obs_faceswap.engine import protocol as P
from obs_faceswap.engine.shm import SharedBuffer
from obs_faceswap.errors import ConfigError, EngineError, FaceSwapError

log = logging.getLogger(__name__)

#: Settings the engine handles itself; every other key is a ``section.field`` of the config.
SPECIAL_KEYS = frozenset({"source", "source_stamp", "models_dir", "enabled"})


class Processor(Protocol):
    """What the engine drives (:class:`obs_faceswap.pipeline.Pipeline` is one).

    ``process`` gets a BGR frame the engine owns and reuses two frames later (converting
    into fresh multi-megabyte arrays every frame costs milliseconds of page faults): a
    processor may modify it (``inplace=True`` is passed when ``process`` accepts it) but must
    copy anything it keeps beyond the next frame. A processor with a true
    ``accepts_lazy_frames`` attribute gets a :class:`~obs_faceswap.engine.frames.PlanesFrame`
    instead and writes its output into ``frame.array`` inside the boxes it loaded.
    """

    @property
    def provider(self) -> str: ...

    def process(self, frame: Any, timestamp: float | None = None) -> tuple[Any, Any]: ...

    def update(self, config: PipelineConfig) -> None: ...

    def set_source(self, source: str | Path) -> None: ...

    def close(self) -> None: ...


ProcessorFactory = Callable[[PipelineConfig, Any, "str | None"], Processor]


def pipeline_factory(config: PipelineConfig, store: Any, source: str | None) -> Processor:
    """The default processor: the face-swap :class:`~obs_faceswap.pipeline.Pipeline`."""
    from obs_faceswap.pipeline import Pipeline  # heavy: imported when first needed

    return Pipeline(config, store, source)


def load_factory(spec: str) -> ProcessorFactory:
    """``"package.module:callable"`` → the callable.

    Raises:
        EngineError: the module or attribute does not exist.
    """
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise EngineError(f"processor must look like 'package.module:callable', got {spec!r}")
    try:
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as e:
        raise EngineError(f"cannot load processor {spec!r}: {e}") from e


def _truthy(v: object) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


@dataclass
class _Attached:
    seg: SharedBuffer
    planes: dict[tuple[Any, ...], list[Any]]


class EngineServer:
    """The engine's state: slots, settings, the processor and statistics.

    Args:
        factory: builds the processor, called like ``Pipeline(config, store, source)``.
        out: binary stream for status lines (the client's end of the engine's stdout).
        store_factory: builds the model store from ``models_dir`` (None → default lookup).
    """

    def __init__(
        self, factory: ProcessorFactory, out: IO[bytes], store_factory: Callable[[str | None], Any] | None = None
    ) -> None:
        self.factory = factory
        self.out = out
        self.store_factory = store_factory or _default_store
        self.processor: Processor | None = None
        self._inplace = False
        self._lazy = False
        self.config: PipelineConfig | None = None
        self.source: str | None = None
        self._source_stamp: object = None  # the client's (inode, size, mtime) of the photo
        self.models_dir: str | None = None
        self.enabled = True
        self.state = "starting"
        self.message = ""
        self.source_note = ""  # what to change about the source photo ("" when it is good)
        self._noted: tuple[object, ...] | None = None  # what source_note was worked out for
        self.slots: dict[int, _Attached] = {}
        self.pending: collections.deque[tuple[int, int]] = collections.deque()
        self._colors: dict[tuple[Any, ...], F.ColorParams] = {}
        self._scratch: F.Scratch = {}
        self._bgr_pool: list[np.ndarray] = []
        self._bgr_next = 0
        self._done_times: collections.deque[float] = collections.deque(maxlen=120)
        self._latencies: collections.deque[float] = collections.deque(maxlen=60)
        self._last_stats = 0.0
        self._last_fps = -1.0
        self._errors_seen: set[str] = set()
        self._frame_error = ""
        self._out_lock = threading.Lock()

    # -- messages --------------------------------------------------------------------------
    def handle(self, msg: tuple[Any, ...]) -> bool:
        """Handle one control message; False on quit."""
        kind = msg[0]
        if kind == "F":
            self.pending.append((msg[1], msg[2]))
        elif kind == "A":
            self._attach(msg[1], msg[2], msg[3])
        elif kind == "S":
            self.apply_settings(msg[1])
        elif kind == "Q":
            return False
        return True

    def _attach(self, slot: int, name: str, size: int) -> None:
        old = self.slots.pop(slot, None)
        if old is not None:
            old.planes.clear()
            old.seg.close()
        try:
            seg = SharedBuffer.attach(name)
        except OSError as e:
            log.error("cannot attach shared memory %s for slot %d: %s", name, slot, e)
            self._set_error(f"cannot attach shared memory: {e}")
            return
        self.slots[slot] = _Attached(seg, {})

    # -- settings --------------------------------------------------------------------------
    def apply_settings(self, settings: dict[str, Any]) -> None:
        """Build or update the processor from the client's flat settings.

        An invalid setting leaves the last good configuration running and reports the
        reason; without a working processor the state is ``error``.
        """
        self.enabled = _truthy(settings.get("enabled", True))
        problems: list[str] = []
        updates = {k: v for k, v in settings.items() if k not in SPECIAL_KEYS}
        config = self.config
        try:
            config = apply_updates(PipelineConfig(), updates)
        except (ConfigError, TypeError, ValueError) as e:
            problems.append(f"invalid setting: {e}")
        source = str(settings.get("source") or "").strip() or None
        models_dir = str(settings.get("models_dir") or "").strip() or None
        # Which swapper and whether it can be built are the swapper factory's business (the
        # processor calls it); only a photo swapper cannot start without a photo.
        needs_photo = config is None or config.swapper.needs_photo
        if source is None:
            if needs_photo:
                problems.append("no source photo chosen: pick a photo of the face to swap in")
        elif not Path(source).is_file():
            problems.append(f"source photo not found: {source}")
            source = None

        if config is not None and (source is not None or not needs_photo):
            try:
                if self.processor is None or models_dir != self.models_dir:
                    self._build(config, source, models_dir)
                    self._source_stamp = settings.get("source_stamp")
                else:
                    if config != self.config:
                        self.processor.update(config)
                        self.config = config
                    stamp = settings.get("source_stamp")
                    if source is not None and (source != self.source or stamp != self._source_stamp):
                        # a re-chosen or replaced photo at the same path is read again
                        self.processor.set_source(source)
                        self.source = source
                        self._source_stamp = stamp
            except Exception as e:  # the user must see every failure, not just ours
                problems.append(_describe(e))
                log.error("settings not applied: %s", _describe(e))
        swapper = getattr(self.processor, "swapper", None)
        if source is None and not needs_photo and getattr(swapper, "needs_source", False):
            name = Path(str(config.swapper.model)).name if config is not None and config.swapper.model else "the model"
            problems.append(
                f"{name} needs a source photo: pick a photo of the face to swap in "
                f"(only .dfm models carry their own face)"
            )
        noted = (id(self.processor), self.source, self._source_stamp, self.config)
        if noted != self._noted:  # (rating a photo reads all of it: not on every slider move)
            self._noted = noted
            self.source_note = _source_note(self.processor)
        if self.processor is None:
            self._set_state("error", "; ".join(problems) or "no processor")
        else:
            msg = "; ".join(problems)
            if msg:
                msg += " (keeping the previous configuration)"
            self._set_state("running", msg)

    def _build(self, config: PipelineConfig, source: str | None, models_dir: str | None) -> None:
        self._set_state("loading", "")
        t = time.perf_counter()
        store = self.store_factory(models_dir)
        processor = self.factory(config, store, source)
        old, self.processor = self.processor, processor
        if old is not None:
            _close_quietly(old)
        try:
            self._inplace = "inplace" in inspect.signature(processor.process).parameters
        except (TypeError, ValueError):
            self._inplace = False
        self._lazy = bool(getattr(processor, "accepts_lazy_frames", False))
        self.config, self.source, self.models_dir = config, source, models_dir
        log.info("processor ready in %.2f s (provider %s)", time.perf_counter() - t, self._provider())

    # -- frames ----------------------------------------------------------------------------
    def next_frame(self) -> tuple[int, int] | None:
        """The pending frame to process now, marking the ones not worth processing SKIPPED."""
        now = time.perf_counter_ns()
        while self.pending:
            slot, seq = self.pending.popleft()
            att = self.slots.get(slot)
            if att is None:
                continue
            mv = att.seg.buf
            _, st, sq = P.STATE.unpack_from(mv, P.STATE_OFFSET)
            if st != P.SUBMITTED or sq != seq:
                continue  # stale message (the client reused the slot) -- not ours to touch
            deadline = P.TIMES.unpack_from(mv, P.TIMES_OFFSET)[1]
            if (deadline and now > deadline) or not self.enabled or self.processor is None:
                self._finish(mv, seq, P.SKIPPED)
                continue
            return slot, seq
        return None

    def process(self, slot: int, seq: int) -> None:
        """Process the frame in ``slot`` and write back its changed region."""
        att = self.slots[slot]
        mv = att.seg.buf
        try:
            rects = self._process(att, mv)
        except Exception as e:
            text = _describe(e)
            if text not in self._errors_seen:  # per-frame errors: log each kind once
                self._errors_seen.add(text)
                log.exception("frame %d failed", seq)
            self._frame_error = f"processing failed: {text}"
            self._finish(mv, seq, P.FAILED)
            self.emit_stats(force=True)
            return
        if self._frame_error:
            self._frame_error = ""
            self.emit_stats(force=True)
        self._finish(mv, seq, P.DONE, rects)
        done = time.perf_counter_ns()
        submit = P.TIMES.unpack_from(mv, P.TIMES_OFFSET)[0]
        self._done_times.append(done / 1e9)
        self._latencies.append((done - submit) / 1e6)

    def _process(self, att: _Attached, mv: memoryview) -> list[tuple[int, int, int, int]]:
        h = P.unpack_frame(mv)
        key = (h.format, h.width, h.height, h.linesizes, h.offsets)
        planes = att.planes.get(key)
        if planes is None:
            att.planes.clear()
            data = mv[P.HEADER_SIZE :]
            planes = F.plane_arrays(data, h.format, h.width, h.height, h.linesizes, h.offsets)
            att.planes[key] = planes
        ckey = (h.color_matrix, h.full_range, h.range_min, h.range_max)
        color = self._colors.get(ckey)
        if color is None:
            if len(self._colors) > 32:
                self._colors.clear()
            color = self._colors[ckey] = F.ColorParams.from_obs(*ckey)
        ts = h.timestamp / 1e9 if h.timestamp else None
        assert self.processor is not None
        bgr: Any
        lazy: F.PlanesFrame | None = None
        if self._lazy:
            # the pipeline converts only what it looks at (a small copy for detection, the
            # landmark crop, the face box): a fraction of a full-frame conversion
            lazy = F.PlanesFrame(planes, h.format, h.width, h.height, color, out=self._bgr_buffer(h))
            bgr = lazy.array
            out, report = self.processor.process(lazy, ts)
        elif self._inplace:
            bgr = F.to_bgr(planes, h.format, h.width, h.height, color, out=self._bgr_buffer(h), scratch=self._scratch)
            out, report = self.processor.process(bgr, ts, inplace=True)  # type: ignore[call-arg]
        else:
            bgr = F.to_bgr(planes, h.format, h.width, h.height, color, out=self._bgr_buffer(h), scratch=self._scratch)
            out, report = self.processor.process(bgr, ts)
        boxes = list(getattr(report, "changed_boxes", None) or [])
        changed = getattr(report, "changed_xyxy", None)
        if not boxes and changed is not None:
            boxes = [changed]
        if not boxes:
            return []
        if not isinstance(out, np.ndarray) or out.shape != bgr.shape or out.dtype != np.uint8:
            raise EngineError(f"processor returned {getattr(out, 'shape', type(out))}, expected {bgr.shape} uint8")
        aligned = [F.align_roi(h.format, h.width, h.height, b) for b in boxes]
        rects = merge_rects([r for r in aligned if r[2] > r[0] and r[3] > r[1]], P.MAX_RECTS)
        for x0, y0, x1, y1 in rects:
            if lazy is not None:  # a merged rect may reach pixels the pipeline never loaded
                lazy.fill((x0, y0, x1, y1))
            F.from_bgr(out[y0:y1, x0:x1], planes, h.format, h.width, h.height, color, (x0, y0, x1, y1))
        return rects

    def _bgr_buffer(self, h: P.FrameHeader) -> np.ndarray:
        shape = (h.height, h.width, 3)
        if not self._bgr_pool or self._bgr_pool[0].shape != shape:
            self._bgr_pool = [np.empty(shape, np.uint8) for _ in range(2)]
        self._bgr_next ^= 1
        return self._bgr_pool[self._bgr_next]

    @staticmethod
    def _finish(mv: memoryview, seq: int, state: int, rects: list[tuple[int, int, int, int]] | None = None) -> None:
        submit, deadline = P.TIMES.unpack_from(mv, P.TIMES_OFFSET)[:2]
        rects = rects or []
        x0, y0, x1, y1 = rects[0] if rects else (0, 0, 0, 0)
        P.pack_rects(mv, rects)
        P.TIMES.pack_into(mv, P.TIMES_OFFSET, submit, deadline, time.perf_counter_ns(), x0, y0, x1, y1, 0, 0)
        # the state word last: once the client sees it, the planes and rect are complete
        P.STATE.pack_into(mv, P.STATE_OFFSET, P.MAGIC, state, seq)

    # -- status ----------------------------------------------------------------------------
    def _provider(self) -> str:
        try:
            return str(self.processor.provider) if self.processor is not None else ""
        except Exception:  # a provider property must not take the engine down
            return ""

    def _set_state(self, state: str, message: str) -> None:
        self.state, self.message = state, message
        self.emit_stats(force=True)

    def _set_error(self, message: str) -> None:
        self._set_state(self.state if self.processor is not None else "error", message)

    def emit_stats(self, force: bool = False) -> None:
        """Send a status line: on changes (``force``), else at most twice a second when the
        statistics changed."""
        now = time.monotonic()
        if not force and now - self._last_stats < 0.5:
            return
        self._last_stats = now
        fps = self._fps()
        if not force and fps == self._last_fps:
            return
        self._last_fps = fps
        lat = sorted(self._latencies)
        message = self._frame_error or self.message
        state = self.state
        if state == "running" and not self.enabled:
            state = "disabled"
        self.send(
            P.encode_status(
                state=state,
                message=message,
                source_note=self.source_note,
                provider=self._provider(),
                fps=round(fps, 2),
                latency_ms=round(lat[len(lat) // 2], 2) if lat else 0.0,
                pid=os.getpid(),
            )
        )

    def _fps(self) -> float:
        now = time.perf_counter_ns() / 1e9
        recent = [t for t in self._done_times if now - t <= 2.0]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def send(self, line: bytes) -> None:
        with self._out_lock:
            self.out.write(line)
            self.out.flush()

    def close(self) -> None:
        if self.processor is not None:
            _close_quietly(self.processor)
            self.processor = None
        for att in self.slots.values():
            att.planes.clear()
            att.seg.close()
        self.slots.clear()


def merge_rects(rects: list[tuple[int, int, int, int]], most: int) -> list[tuple[int, int, int, int]]:
    """Overlapping rectangles merged, then the pair whose union adds the fewest pixels merged
    until at most ``most`` remain (the result covers every input rectangle)."""

    def union(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))

    def area(r: tuple[int, int, int, int]) -> int:
        return (r[2] - r[0]) * (r[3] - r[1])

    out = list(rects)
    while len(out) > 1:
        best: tuple[int, int, int] | None = None
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                cost = -1 if overlap else area(union(a, b)) - area(a) - area(b)
                if best is None or cost < best[0]:
                    best = (cost, i, j)
        assert best is not None
        cost, i, j = best
        if cost >= 0 and len(out) <= most:
            break
        merged = union(out[i], out[j])
        out = [r for k, r in enumerate(out) if k not in (i, j)] + [merged]
    return out


def _describe(e: BaseException) -> str:
    if isinstance(e, FaceSwapError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def _source_note(processor: object) -> str:
    """The source photo's advice from a processor that rates its photo ("" otherwise).

    Never raises: the rating is advice, not a reason to stop swapping.
    """
    rate = getattr(processor, "source_rating", None)
    if rate is None:
        return ""
    try:
        rating = rate()
    except Exception as e:  # noqa: BLE001 - reported, never fatal
        log.warning("source photo not rated: %s", _describe(e))
        return ""
    return str(rating.summary()) if rating is not None else ""


def _close_quietly(processor: Processor) -> None:
    try:
        processor.close()
    except Exception:
        log.exception("closing the processor failed")


def _default_store(models_dir: str | None) -> Any:
    from obs_faceswap.models import ModelStore

    return ModelStore(models_dir, progress=False)


# -- process main --------------------------------------------------------------------------
def _parent_alive(pid: int) -> bool:
    if pid <= 0:
        return True
    if sys.platform == "win32":
        import ctypes

        k32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = k32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ok = k32.GetExitCodeProcess(handle, ctypes.byref(code))
        k32.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    return os.getppid() == pid


class _Inbox:
    """Messages from stdin, filled by a reader thread."""

    def __init__(self) -> None:
        self.items: collections.deque[tuple[Any, ...]] = collections.deque()
        self.cond = threading.Condition()

    def put(self, item: tuple[Any, ...]) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify()

    def take(self, timeout: float | None) -> list[tuple[Any, ...]]:
        with self.cond:
            if not self.items and timeout != 0:
                self.cond.wait(timeout)
            out = list(self.items)
            self.items.clear()
        return out


def _read_stdin(fd: int, inbox: _Inbox) -> None:
    # os.read on the raw descriptor, not sys.stdin.buffer: a daemon thread blocked inside a
    # BufferedReader holds its lock, and interpreter shutdown then aborts the process
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            try:
                inbox.put(P.decode_message(line))
            except (ValueError, UnicodeDecodeError) as e:
                log.error("ignoring a bad control message: %s", e)
    inbox.put(("Q",))  # EOF: the client is gone


def _watch_parent(pid: int, inbox: _Inbox, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        if not _parent_alive(pid):
            log.warning("parent process %d is gone; exiting", pid)
            inbox.put(("Q",))
            # the main thread may be stuck inside a model; do not outlive the parent
            if not stop.wait(5.0):
                os._exit(0)
            return


def run(server: EngineServer, fd: int, parent_pid: int = 0) -> int:
    """Serve the control messages arriving on file descriptor ``fd`` until quit, EOF or the
    parent process is gone. Returns the exit code."""
    inbox = _Inbox()
    stop = threading.Event()
    threading.Thread(target=_read_stdin, args=(fd, inbox), name="stdin", daemon=True).start()
    if parent_pid:
        threading.Thread(target=_watch_parent, args=(parent_pid, inbox, stop), name="parent", daemon=True).start()
    try:
        while True:
            msgs = inbox.take(0 if server.pending else 1.0)
            for m in msgs:
                if not server.handle(m):
                    return 0
            job = server.next_frame()
            if job is not None:
                server.process(*job)
            server.emit_stats()
    except BrokenPipeError:
        return 0  # the client closed our stdout: it is gone
    finally:
        stop.set()
        server.close()


def lower_priority(amount: int) -> None:
    """Run below OBS's priority: when CPU is short, OBS's own rendering and encoding must win
    (a dropped stream frame is worse than a swap result that comes a frame later)."""
    if amount <= 0:
        return
    try:
        if sys.platform == "win32":
            import ctypes

            below_normal = 0x4000
            k32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
            k32.SetPriorityClass(k32.GetCurrentProcess(), below_normal)
        else:
            os.nice(amount)
    except (OSError, AttributeError) as e:  # not allowed here: carry on at normal priority
        log.warning("cannot lower the engine's priority: %s", e)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m obs_faceswap.engine``."""
    ap = argparse.ArgumentParser(
        prog="python -m obs_faceswap.engine",
        description="obs-faceswap engine process (started by the OBS "
        "filter; speaks a private protocol on stdin/stdout)",
    )
    ap.add_argument("--parent-pid", type=int, default=0, help="exit when this process is gone")
    ap.add_argument(
        "--processor",
        default=os.environ.get("OBS_FACESWAP_ENGINE_PROCESSOR", ""),
        help="module:callable building the processor (default: the pipeline)",
    )
    ap.add_argument("--log-level", default=os.environ.get("OBS_FACESWAP_LOG", "INFO"))
    ap.add_argument(
        "--nice",
        type=int,
        default=int(os.environ.get("OBS_FACESWAP_ENGINE_NICE", "5")),
        help="lower the engine's CPU priority by this much (default 5; 0 = as OBS)",
    )
    args = ap.parse_args(argv)
    lower_priority(args.nice)

    # The protocol owns the real stdout; anything printed (by us or a library, even from C)
    # goes to stderr instead of corrupting it.
    proto = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")

    server: EngineServer | None = None
    try:
        factory = load_factory(args.processor) if args.processor else pipeline_factory
        server = EngineServer(factory, proto)
        server.emit_stats(force=True)
        return run(server, sys.stdin.fileno(), args.parent_pid)
    except EngineError as e:
        proto.write(P.encode_status(state="error", message=str(e), pid=os.getpid()))
        log.error("%s", e)
        return 2
    except BrokenPipeError:
        return 0
