"""Per-instance logic of the two filters: "Face Swap" (async) and "Face Swap (any source)".

Standard library only (this runs inside OBS's embedded Python). Nothing here blocks on the
engine: frames are copied into the engine's shared memory with ``submit`` and results are
taken with ``ready``/``apply`` when they are there; a missing, crashed, hung or misconfigured
engine only means frames pass through untouched while the status line says why.

Threads (OBS 29): ``filter_video``, ``video_tick``, ``video_render`` and the deferred
``update`` run on the graphics thread; ``filter_video`` runs while libobs holds the parent's
async and filter mutexes, so it must stay well under a millisecond. ``filter_remove`` and
properties callbacks run on the UI thread, hotkeys on the hotkey thread, ``destroy`` on
whichever thread drops the last reference (at exit, OBS 29 does it on the graphics thread), so
nothing here waits for an engine process to quit: that happens on a background thread.
The held-frame queue's lock is never held across a libobs call that can wait for a libobs
lock (that would deadlock with the graphics thread, which holds the async mutex while it
waits for our lock); frames are handed back outside ``filter_video`` under a separate
release lock that ``filter_remove`` also takes (see :class:`AsyncFaceSwap`).

Timing modes:

* **synchronised** – each frame is submitted, then held back ``depth`` frames; when it leaves,
  the result computed from *that* frame is written into it (or it passes through untouched
  if the result is late). ``depth`` is the "Frames to hold" setting, or grows automatically
  from 2 when results keep arriving late. The added delay stays constant while the filter is
  enabled — also when the engine is down or the swap is toggled off — so an audio offset set
  once stays right.
* **lowest latency** – never hold. The newest result is written into the current frame only
  if it was computed from the previous frame or this one; at most one frame is in flight.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable
from typing import Any

from obs_faceswap.obs import settings as st
from obs_faceswap.obs import structs
from obs_faceswap.video_formats import VideoFormat

log = logging.getLogger(__name__)

_thread_ns = time.thread_time_ns

#: Frames the engine may hold for one filter at once (shared-memory slots).
SLOTS = 8
#: Depth the automatic synchronised mode starts from and the most it grows to.
AUTO_START_DEPTH = 2
AUTO_MAX_DEPTH = 12
#: Late results among this many released frames make the automatic depth grow by one.
AUTO_WINDOW = 30
AUTO_LATE_LIMIT = 3
STATS_INTERVAL_NS = 1_000_000_000
HOTKEY_PREFIX = "obs_faceswap.toggle:"
#: obs_hotkey_id's "invalid" value ((size_t)-1).
INVALID_HOTKEY_ID = (1 << (8 * ctypes.sizeof(ctypes.c_size_t))) - 1


def load_engine_api() -> tuple[Any, str]:
    """The engine client module, or ``(None, reason)`` when it cannot be imported."""
    try:
        from obs_faceswap.engine import client
    except Exception as e:  # ImportError, or an error inside the module: pass through
        return None, f"engine client unavailable: {type(e).__name__}: {e}"
    return client, ""


class CallbackTimer:
    """Wall and thread-CPU durations (ns) of the last ``size`` calls of one callback.

    Wall time is what OBS's thread lost; CPU time is the part spent running our code (the
    rest is waiting for the GIL or for a CPU on a busy machine).
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.wall = array("q", bytes(8 * size))
        self.cpu = array("q", bytes(8 * size))
        self.count = 0

    def add(self, wall_ns: int, cpu_ns: int = 0) -> None:
        i = self.count % self.size
        self.wall[i] = wall_ns
        self.cpu[i] = cpu_ns
        self.count += 1

    def summary(self) -> dict[str, float]:
        """``n`` and median / 99th percentile / max in µs (``cpu_*`` for CPU time)."""
        n = min(self.count, self.size)
        out: dict[str, float] = {"n": self.count}
        for prefix, buf in (("", self.wall), ("cpu_", self.cpu)):
            vals = sorted(buf[:n]) if n else [0]
            m = len(vals)
            out[prefix + "p50_us"] = vals[m // 2] / 1e3
            out[prefix + "p99_us"] = vals[min(m - 1, (m * 99) // 100)] / 1e3
            out[prefix + "max_us"] = vals[-1] / 1e3
        return out


class Held:
    """A frame (or render buffer) the filter owns while the engine works on it."""

    __slots__ = ("frame", "view", "seq", "client", "index", "ts")

    def __init__(self, frame: Any, view: Any, seq: int | None, client: Any, index: int, ts: int) -> None:
        self.frame = frame
        self.view = view
        self.seq = seq
        self.client = client
        self.index = index
        self.ts = ts


class Counters:
    """What happened to frames, for the status line and the benchmark."""

    __slots__ = ("frames", "swapped", "late", "failed", "unsubmitted", "dropped")

    def __init__(self) -> None:
        self.frames = self.swapped = self.late = self.failed = self.unsubmitted = self.dropped = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


class FilterBase:
    """Settings, engine process, status and hotkey shared by both filter kinds.

    Args:
        api: :class:`obs_faceswap.obs.libobs.LibObs` (or a fake with the same names).
        source: this filter's ``obs_source_t*``.
        values: settings as read by :func:`obs_faceswap.obs.settings.read`.
        engine_api: the engine client module (``EngineClient``, ``FrameView``,
            ``SUPPORTED_FORMATS``), or None when unavailable.
        engine_error: why ``engine_api`` is None.
        env: extra environment for the engine process.
        clock: ``time.perf_counter_ns`` (tests pass a fake).
    """

    kind = "base"

    def __init__(self, api: Any, source: int, values: dict[str, Any], *, engine_api: Any,
                 engine_error: str = "", env: dict[str, str] | None = None,
                 clock: Callable[[], int] = time.perf_counter_ns) -> None:
        self.api = api
        self.source = source
        self.engine_api = engine_api
        self.engine_api_error = engine_error
        self.env = env
        self.clock = clock
        self.values = dict(values)
        self.mode = st.timing_mode(values)
        self.requested_frames = st.sync_frames(values)
        self.depth = self.requested_frames or AUTO_START_DEPTH
        self.swap_on = bool(values.get("swap_enabled", True))
        self.passthrough = False
        self.client: Any = None
        self.client_python: str | None = None
        self.error = ""
        self.lock = threading.Lock()
        self.counters = Counters()
        self.timers = {n: CallbackTimer() for n in ("filter_video", "video_tick", "video_render", "update")}
        self.index = 0
        self.inflight: list[Held] = []  # submitted, result not used yet (lowest-latency mode)
        self.delay_ns = 0
        self.window_released = 0
        self.window_late = 0
        self.hotkey_id: int | None = None
        self._hotkey_cb: tuple[int, int] | None = None
        self._status_key: tuple[Any, ...] | None = None
        self._stats_dir = os.environ.get("OBS_FACESWAP_STATS_DIR", "")
        self._stats_next = 0
        self._unsupported_logged: set[int] = set()
        self._closers: list[threading.Thread] = []
        self.name = api.source_name(source) if source else ""
        self.supported = frozenset(getattr(engine_api, "SUPPORTED_FORMATS", ()) or ())
        self._start_engine()

    # --- engine ----------------------------------------------------------------------
    def _start_engine(self) -> None:
        if self.engine_api is None:
            self.error = self.engine_api_error or "engine client unavailable"
            return
        python, origin = st.resolve_interpreter(str(self.values.get("engine_python", "")))
        if python is None:
            self.error = origin
            return
        try:
            client = self.engine_api.EngineClient(
                python, st.engine_settings(self.values), slots=SLOTS, env=self.env, log=self._engine_log)
            client.start()
        except Exception as e:
            self.error = f"engine could not start with {python}: {e}"
            log.warning("Face Swap %r: %s", self.name, self.error)
            return
        self.client = client
        self.client_python = python
        self.error = ""
        self._apply_max_age()
        log.info("Face Swap %r: starting engine with %s (from %s)", self.name, python, origin)

    def _apply_max_age(self) -> None:
        # Lowest latency: a result more than ~2 frames old is never used, so the engine may
        # skip such frames and stay current. Synchronised: let it finish every frame, so a
        # result that misses its release shows up as "late" and the automatic hold grows.
        client = self.client
        if client is None:
            return
        try:
            if self.mode == st.LATENCY:
                interval = float(self.api.obs_get_frame_interval_ns()) / 1e9 or 1 / 30
                client.max_age = 2.0 * interval
            else:
                client.max_age = None
        except Exception as e:
            self._log_once(("max_age", type(e).__name__), "cannot set max_age: %s", e)

    def _engine_log(self, text: str) -> None:
        # The client reports its own events ("[client] ...") and forwards the engine's log
        # lines ("LEVEL logger: message"); keep the engine's level in OBS's log.
        try:
            head = str(text).split(" ", 1)[0]
            level = {"ERROR": logging.ERROR, "CRITICAL": logging.ERROR, "WARNING": logging.WARNING,
                     "DEBUG": logging.DEBUG}.get(head, logging.INFO)
            log.log(level, "Face Swap %r engine: %s", self.name, text)
        except Exception:  # logging must never break the client
            pass

    def _retire(self, client: Any) -> None:
        """Close a client without blocking the calling (maybe graphics) thread."""
        if client is None:
            return
        t = threading.Thread(target=_close_quietly, args=(client,), name="obs-faceswap-close")
        t.start()
        self._closers.append(t)

    def close_engine(self, wait: bool = True) -> None:
        """Stop the engine process (blocking up to the client's timeout when ``wait``)."""
        with self.lock:
            client, self.client = self.client, None
        if client is not None:
            if wait:
                _close_quietly(client)
            else:
                self._retire(client)
        if wait:
            for t in self._closers:
                t.join(timeout=5.0)
            self._closers.clear()

    # --- settings --------------------------------------------------------------------
    def update(self, values: dict[str, Any]) -> None:
        """New settings: apply live; restart the engine only if its interpreter changed."""
        t0, c0 = self.clock(), _thread_ns()
        try:
            self._update(values)
        finally:
            self.timers["update"].add(self.clock() - t0, _thread_ns() - c0)

    def _update(self, values: dict[str, Any]) -> None:
        old, self.values = self.values, dict(values)
        self.mode = st.timing_mode(values)
        self._apply_max_age()
        req = st.sync_frames(values)
        if req != self.requested_frames:
            self.requested_frames = req
            self.depth = req or AUTO_START_DEPTH
            self.window_released = self.window_late = 0
        self.swap_on = bool(values.get("swap_enabled", True))
        if self.passthrough:
            return
        if self.client is None or old.get("engine_python") != values.get("engine_python"):
            self._retire(self.client)
            self.client = None
            self._start_engine()
        else:
            new_e, old_e = st.engine_settings(values), st.engine_settings(old)
            diff = {k: v for k, v in new_e.items() if old_e.get(k) != v}
            if diff:
                try:
                    self.client.update_settings(diff)
                except Exception as e:
                    log.warning("Face Swap %r: settings not sent to the engine: %s", self.name, e)

    def toggle_swap(self) -> None:
        """Hotkey: flip "Swap faces" through OBS so the properties dialog shows it too."""
        data = self.api.obs_data_create()
        try:
            self.api.obs_data_set_bool(data, b"swap_enabled", not self.swap_on)
            # Deferred by libobs to the next video tick, where update() applies it.
            self.api.obs_source_update(self.source, data)
        finally:
            self.api.obs_data_release(data)
        log.info("Face Swap %r: swap %s by hotkey", self.name, "off" if self.swap_on else "on")

    # --- status ----------------------------------------------------------------------
    def engine_status(self) -> Any:
        client = self.client
        if client is None:
            return None
        try:
            return client.status
        except Exception:
            return None

    def status(self) -> dict[str, Any]:
        """Everything the status line and the stats file show."""
        s = self.engine_status()
        if s is None:
            state, message = ("error" if self.error else "stopped"), self.error
            provider, fps, latency, restarts, pid = "", 0.0, 0.0, 0, None
        else:
            state = str(getattr(s, "state", "?"))
            message = str(getattr(s, "message", "") or "")
            provider = str(getattr(s, "provider", "") or "")
            fps = float(getattr(s, "fps", 0.0) or 0.0)
            latency = float(getattr(s, "latency_ms", 0.0) or 0.0)
            restarts = int(getattr(s, "restarts", 0) or 0)
            pid = getattr(s, "pid", None)
        return {"name": self.name, "kind": self.kind, "state": state, "message": message,
                "provider": provider, "fps": fps, "latency_ms": latency, "restarts": restarts,
                "pid": pid, "mode": self.mode, "swap_enabled": self.swap_on,
                "delay_frames": self.delay_frames(), "delay_ms": self.delay_ns / 1e6,
                "passthrough": self.passthrough}

    def delay_frames(self) -> int:
        return self.depth if self.mode == st.SYNC else 0

    def status_lines(self) -> tuple[str, str]:
        """``(status, last_error)`` for the properties dialog."""
        s = self.status()
        parts = [f"Engine: {s['state']}"]
        if s["provider"]:
            parts.append(s["provider"])
        if s["fps"]:
            parts.append(f"{s['fps']:.1f} fps")
        if s["latency_ms"]:
            parts.append(f"engine {s['latency_ms']:.0f} ms")
        if s["mode"] == st.SYNC:
            ms = s["delay_ms"] or s["delay_frames"] * self._frame_interval_ms()
            parts.append(f"delay {s['delay_frames']} frames ≈ {ms:.0f} ms (offset audio by this)")
        else:
            parts.append("no added delay")
        if s["restarts"]:
            parts.append(f"restarts {s['restarts']}")
        if not s["swap_enabled"]:
            parts.append("swap off")
        return " · ".join(parts), s["message"]

    def _frame_interval_ms(self) -> float:
        try:
            return float(self.api.obs_get_frame_interval_ns()) / 1e6
        except Exception:
            return 0.0

    def tick_status(self) -> None:
        """Poll the engine; log and refresh the properties once per state change."""
        client = self.client
        if client is not None:
            try:
                client.poll()
            except Exception as e:
                self._log_once(("poll", str(e)), "engine poll failed: %s", e)
        s = self.status()
        key = (s["state"], s["message"], s["provider"], s["restarts"])
        if key != self._status_key:
            self._status_key = key
            log.info("Face Swap %r: engine %s%s%s%s", self.name, s["state"],
                     f" ({s['provider']})" if s["provider"] else "",
                     f", restarts {s['restarts']}" if s["restarts"] else "",
                     f": {s['message']}" if s["message"] else "")
            with contextlib.suppress(Exception):
                # Properties do not refresh by themselves; this makes an open dialog reload.
                self.api.obs_source_update_properties(self.source)

    def stats_if_due(self) -> None:
        """Write the diagnostics file once a second (only when OBS_FACESWAP_STATS_DIR is set).

        Called after the timed part of ``video_tick``: the file is for tests and the
        benchmark, and its cost must not show up in the callback timings it reports.
        """
        if not self._stats_dir:
            return
        now = self.clock()
        if now < self._stats_next:
            return
        self._stats_next = now + STATS_INTERVAL_NS
        reset = os.path.join(self._stats_dir, self._stats_stem() + ".reset")
        if os.path.exists(reset):
            # The benchmark asks for a clean window once the engine is warm.
            with contextlib.suppress(OSError):
                os.remove(reset)
            self.timers = {k: CallbackTimer() for k in self.timers}
            self.counters = Counters()
        self.write_stats()

    def _stats_stem(self) -> str:
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in (self.name or "filter"))

    def write_stats(self) -> None:
        """Diagnostics for tests and the benchmark (only when OBS_FACESWAP_STATS_DIR is set)."""
        s = self.status()
        s["counters"] = self.counters.as_dict()
        s["callbacks"] = {k: t.summary() for k, t in self.timers.items()}
        s["time"] = time.time()
        path = os.path.join(self._stats_dir, f"{self._stats_stem()}.json")
        tmp = path + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(s, f)
            os.replace(tmp, path)
        except OSError as e:
            self._log_once(("stats", str(e)), "cannot write stats: %s", e)

    def _log_once(self, key: Any, msg: str, *args: Any) -> None:
        if key in self._unsupported_logged:
            return
        self._unsupported_logged.add(key)
        log.warning("Face Swap %r: " + msg, self.name, *args)

    # --- engine results ----------------------------------------------------------------
    def _submit(self, view: Any) -> tuple[int | None, Any]:
        client = self.client
        if client is None or view is None or not self.swap_on:
            return None, None
        try:
            seq = client.submit(view)
        except Exception as e:
            self._log_once(("submit", type(e).__name__), "submit failed: %s", e)
            return None, None
        if seq is None:
            self.counters.unsubmitted += 1
            return None, None
        return seq, client

    def _drop_inflight(self) -> None:
        items, self.inflight = self.inflight, []
        for it in items:
            self._discard(it)

    def _latest(self, view: Any) -> None:
        """Lowest-latency mode: never hold; apply the newest result if it is at most one frame
        old, and keep one frame in flight (submitted before anything is applied)."""
        client = self.client
        if client is None or view is None:
            self._drop_inflight()
            return
        ready: Held | None = None
        pending: list[Held] = []
        for it in self.inflight:
            if it.client is not client or it.index < self.index - 1:
                self._discard(it)
                continue
            try:
                is_ready = client.ready(it.seq)
            except Exception:
                is_ready = False
            if is_ready:
                if ready is not None:
                    self._discard(ready)
                ready = it
            else:
                pending.append(it)
        if not pending:
            # Submit before applying: the engine must see the original pixels.
            seq, c = self._submit(view)
            if seq is not None:
                pending.append(Held(None, None, seq, c, self.index, 0))
        self.inflight = pending
        if ready is not None:
            try:
                if client.apply(ready.seq, view):
                    self.counters.swapped += 1
                else:
                    self.counters.failed += 1
            except Exception as e:
                self._log_once(("apply", type(e).__name__), "result not applied: %s", e)
        self.delay_ns = 0

    def _finish(self, item: Held) -> None:
        """Write ``item``'s own result into it, or let it pass untouched (never raises)."""
        if item.seq is None:
            return
        client = item.client
        try:
            if client.ready(item.seq):
                if client.apply(item.seq, item.view):
                    self.counters.swapped += 1
                else:
                    self.counters.failed += 1
                return
            client.discard(item.seq)
        except Exception as e:
            self._log_once(("apply", type(e).__name__), "result not applied: %s", e)
            return
        self.counters.late += 1
        self._note_late()

    def _discard(self, item: Held) -> None:
        if item.seq is not None:
            with contextlib.suppress(Exception):
                item.client.discard(item.seq)
            item.seq = None

    def _note_released(self) -> None:
        self.window_released += 1
        if self.window_released >= AUTO_WINDOW:
            self.window_released = self.window_late = 0

    def _note_late(self) -> None:
        if self.requested_frames != st.AUTO_FRAMES:
            return
        self.window_late += 1
        if self.window_late >= AUTO_LATE_LIMIT and self.depth < AUTO_MAX_DEPTH:
            self.depth += 1
            self.window_released = self.window_late = 0
            log.info("Face Swap %r: results arrive late, holding %d frames now", self.name, self.depth)

    # --- libobs callbacks (the subclasses implement the ones their kind uses) -----------
    def video_tick(self, seconds: float) -> None:
        self.tick_status()
        self.stats_if_due()

    def filter_video(self, frame: int) -> int | None:
        return frame

    def video_render(self, effect: int | None) -> None:
        self.api.obs_source_skip_video_filter(self.source)

    # --- lifecycle -------------------------------------------------------------------
    def set_hotkey_callback(self, callback_addr: int, data: int) -> None:
        """Where the toggle hotkey calls back; registered once the parent is known."""
        self._hotkey_cb = (callback_addr, data)

    def hotkey_name(self) -> str:
        """``obs_faceswap.toggle:<filter name>`` (unique per parent source)."""
        return f"{HOTKEY_PREFIX}{self.name}"

    def ensure_hotkey(self, parent: int | None) -> None:
        """Register the toggle hotkey on the parent source (filters cannot own hotkeys).

        libobs refuses hotkeys on private sources, and every filter is one, so the hotkey
        belongs to the camera/media source: it shows up in Settings → Hotkeys under that
        source and its binding is saved with it.
        """
        if self.hotkey_id is not None or not parent or self._hotkey_cb is None:
            return
        addr, data = self._hotkey_cb
        try:
            hid = int(self.api.obs_hotkey_register_source(
                parent, self.hotkey_name().encode(), f"Toggle Face Swap ({self.name})".encode(), addr, data))
        except Exception as e:
            self._log_once(("hotkey", str(e)), "hotkey not registered: %s", e)
            self.hotkey_id = INVALID_HOTKEY_ID
            return
        self.hotkey_id = hid
        if hid == INVALID_HOTKEY_ID:
            self._log_once(("hotkey", hid), "libobs refused the toggle hotkey")

    def drop_hotkey(self) -> None:
        hid, self.hotkey_id = self.hotkey_id, None
        if hid is not None and hid != INVALID_HOTKEY_ID:
            with contextlib.suppress(Exception):
                self.api.obs_hotkey_unregister(hid)

    def suspend(self) -> None:
        """Script unloading: pass frames through; the engine stops in the background.

        ``script_unload`` runs on OBS's UI thread (also at exit, before the scene data is
        cleared): it must not wait seconds for engine processes to quit.
        """
        self.passthrough = True
        self.close_engine(wait=False)

    def resume(self, engine_api: Any, engine_error: str) -> None:
        """Script loaded again: use the (maybe reloaded) client and restart the engine."""
        self.engine_api = engine_api
        self.engine_api_error = engine_error
        self.supported = frozenset(getattr(engine_api, "SUPPORTED_FORMATS", ()) or ())
        self.passthrough = False
        if self.client is None:
            self._start_engine()

    def filter_remove(self, parent: int | None) -> None:
        self.drop_hotkey()

    def destroy(self) -> None:
        # libobs may destroy a filter on its graphics thread (OBS 29 does at exit when it
        # drops the last scene reference there): stopping the engine must not stall it.
        # The closing thread is not a daemon, so Python's shutdown waits for it.
        self.passthrough = True
        self.drop_hotkey()
        self.close_engine(wait=False)
        log.info("Face Swap %r destroyed (%s thread)", self.name, threading.current_thread().name)


def _close_quietly(client: Any) -> None:
    try:
        client.close(timeout=2.0)
    except Exception as e:
        log.warning("engine close failed: %s", e)


class AsyncFaceSwap(FilterBase):
    """"Face Swap" for cameras and media sources: edits each ``obs_source_frame`` in place.

    Frame ownership: a frame returned as None from ``filter_video`` belongs to this filter
    until it is returned later or handed back with ``obs_source_release_frame(parent, f)``.
    Frames are handed back on the graphics thread inside ``filter_video`` (the parent is
    alive: it is calling us) or, elsewhere, under :attr:`release_lock`, which
    ``filter_remove`` also takes: libobs calls ``filter_remove`` before it frees the parent,
    so a release that started first finishes while the parent still exists, and none starts
    afterwards (:attr:`parent_gone`).

    libobs drops a source's frame cache when the source outputs a NULL frame or falls 30
    frames behind; a held frame then has only our reference left (``refs == 1``). Returning
    such an orphan would leak it (libobs decrements without freeing), so orphans are
    released instead.
    """

    kind = "async"

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.held: deque[Held] = deque()
        self.release_lock = threading.Lock()
        self.parent_gone = False
        super().__init__(*args, **kw)
        self.frame_struct = self.api.frame_struct

    def frame_view(self, frame: int) -> Any:
        """A FrameView of an ``obs_source_frame*``, or None for formats the engine lacks."""
        f = self.frame_struct.from_address(frame)
        fmt = f.format
        planes = structs.PLANE_LAYOUT.get(fmt)
        if planes is None or (self.supported and fmt not in self.supported) or self.engine_api is None:
            if fmt not in self._unsupported_logged:
                self._unsupported_logged.add(fmt)
                log.warning("Face Swap %r: %s frames pass through untouched (format not supported)",
                            self.name, structs.VIDEO_FORMAT_NAMES.get(fmt, str(fmt)))
            return None
        n = len(planes)
        return self.engine_api.FrameView(
            fmt, f.width, f.height, tuple(f.data[:n]), tuple(f.linesize[:n]), timestamp=f.timestamp,
            color_matrix=tuple(f.color_matrix), full_range=bool(f.full_range),
            range_min=tuple(f.color_range_min), range_max=tuple(f.color_range_max))

    def _orphaned(self, frame: int) -> bool:
        return int(self.frame_struct.from_address(frame).refs) <= 1

    def filter_video(self, frame: int) -> int | None:
        """libobs' ``filter_video``: the frame to show now, or None while holding it.

        Never raises, and never returns None except when ``frame`` was taken into the queue.
        """
        t0, c0 = self.clock(), _thread_ns()
        try:
            if self.passthrough or not frame:
                if self.held:  # a frame that slipped in while the script was unloading
                    self._release(self._take_held(), self.api.obs_filter_get_parent(self.source))
                return frame
            self.index += 1
            self.counters.frames += 1
            try:
                view = self.frame_view(frame) if (self.client is not None and self.swap_on) else None
                ts = self.frame_struct.from_address(frame).timestamp
            except Exception as e:
                self._log_once(("view", type(e).__name__), "frame not readable: %s", e)
                view, ts = None, 0
            if self.mode == st.LATENCY:
                if self.held:
                    # Switched from synchronised: show this frame, drop the older ones.
                    self._release(self._take_held(), self.api.obs_filter_get_parent(self.source))
                self._latest(view)
                return frame
            return self._sync(frame, view, ts)
        finally:
            self.timers["filter_video"].add(self.clock() - t0, _thread_ns() - c0)

    def _sync(self, frame: int, view: Any, ts: int) -> int | None:
        seq, client = self._submit(view)
        item = Held(frame, view, seq, client, self.index, ts)
        drop: list[Held] = []
        out: Held | None = None
        with self.lock:
            if len(self.held) and any(self._orphaned(h.frame) for h in self.held):
                keep = deque(h for h in self.held if not self._orphaned(h.frame))
                drop = [h for h in self.held if h not in keep]
                self.held = keep
            self.held.append(item)
            if len(self.held) > self.depth:
                while len(self.held) > self.depth + 1:  # depth was lowered: drop the oldest
                    drop.append(self.held.popleft())
                out = self.held.popleft()
        if drop:
            # Inside filter_video the parent is alive (it is calling us): no release lock.
            self._release(drop, self.api.obs_filter_get_parent(self.source))
        if out is None:
            return None
        self._finish(out)
        self._note_released()
        if ts and out.ts and ts >= out.ts:
            self.delay_ns = ts - out.ts
        return int(out.frame)

    def _take_held(self) -> list[Held]:
        with self.lock:
            items = list(self.held)
            self.held.clear()
        return items

    def _release(self, items: list[Held], parent: int | None) -> None:
        """Give frames back to libobs (never with :attr:`lock` held)."""
        for it in items:
            self._discard(it)
            if parent:
                self.api.obs_source_release_frame(parent, it.frame)
            else:
                log.warning("Face Swap %r: a held frame has no parent to go back to", self.name)
            self.counters.dropped += 1

    def _release_all_outside(self) -> int:
        """Hand every held frame back from a thread that is not inside ``filter_video``."""
        with self.release_lock:
            if self.parent_gone:
                return 0
            parent = self.api.obs_filter_get_parent(self.source)
            items = self._take_held()
            self._release(items, parent)
            return len(items)

    def video_tick(self, seconds: float) -> None:
        if self.passthrough:
            return  # unloaded or destroyed: keep OBS's tick (which holds source references) short
        t0, c0 = self.clock(), _thread_ns()
        try:
            if self.hotkey_id is None and not self.parent_gone:
                self.ensure_hotkey(self.api.obs_filter_get_parent(self.source))
            enabled = bool(self.api.obs_source_enabled(self.source))
            if not enabled:
                # libobs has no disable callback and stops calling filter_video: free now.
                if self.held:
                    self._release_all_outside()
                self._drop_inflight()
            self.tick_status()
        finally:
            self.timers["video_tick"].add(self.clock() - t0, _thread_ns() - c0)
        self.stats_if_due()

    def filter_remove(self, parent: int | None) -> None:
        with self.release_lock:
            parent = parent or self.api.obs_filter_get_parent(self.source)
            items = self._take_held()
            self._release(items, parent)
            self.parent_gone = True
        self.drop_hotkey()
        self._drop_inflight()
        log.info("Face Swap %r removed from its source (%d held frames released, %s thread)", self.name,
                 len(items), threading.current_thread().name)

    def suspend(self) -> None:
        self.passthrough = True
        self._release_all_outside()
        self._drop_inflight()
        super().suspend()

    def destroy(self) -> None:
        self.passthrough = True
        with self.release_lock:
            left = self._take_held()
        if left:
            # filter_remove always comes first; a frame here has no parent to go back to.
            log.warning("Face Swap %r: %d held frames at destroy", self.name, len(left))
        self._drop_inflight()
        super().destroy()


class RenderFaceSwap(FilterBase):
    """"Face Swap (any source)": reads the rendered source back from the GPU.

    Each video tick the target is rendered into a texture, copied to a staging surface and
    mapped (BGRA), submitted like an async frame, and the chosen buffer (with its result
    written in) is uploaded to a texture and drawn. Later renders in the same tick
    (projectors, screenshots) draw the same texture without reading back again. The map
    right after the copy stalls the GPU pipeline; on llvmpipe this costs 6.8 ms at 720p.
    """

    kind = "render"

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.size = (0, 0)
        self.texrender: int | None = None
        self.stage: int | None = None
        self.out_tex: int | None = None
        self.pool: list[Any] = []
        self.held: deque[Held] = deque()
        self.tick = 0
        self.removed = False
        self.done_tick = -1
        self.have_output = False
        self._clear_color = structs.aligned_vec4(0.0, 0.0, 0.0, 0.0)
        super().__init__(*args, **kw)

    def video_tick(self, seconds: float) -> None:
        if self.passthrough:
            return
        t0, c0 = self.clock(), _thread_ns()
        try:
            self.tick += 1
            if self.hotkey_id is None and not self.removed:
                self.ensure_hotkey(self.api.obs_filter_get_parent(self.source))
            self.tick_status()
        finally:
            self.timers["video_tick"].add(self.clock() - t0, _thread_ns() - c0)
        self.stats_if_due()

    def _wanted(self) -> bool:
        if self.passthrough:
            return False
        if self.mode == st.SYNC:
            return True
        return self.client is not None and self.swap_on

    def video_render(self, effect: int | None) -> None:
        t0, c0 = self.clock(), _thread_ns()
        try:
            if not self._wanted():
                self.have_output = False
                self.api.obs_source_skip_video_filter(self.source)
                return
            with self.lock:
                if self.tick != self.done_tick:
                    self.done_tick = self.tick
                    try:
                        self._process()
                    except Exception as e:
                        self.have_output = False
                        self._log_once(("render", type(e).__name__), "render path failed: %s", e)
                drawn = self.have_output and self._draw()
            if not drawn:
                self.api.obs_source_skip_video_filter(self.source)
        finally:
            self.timers["video_render"].add(self.clock() - t0, _thread_ns() - c0)

    def _ensure(self, w: int, h: int) -> None:
        api = self.api
        if self.size == (w, h) and self.texrender:
            return
        self._free_gpu()
        self.size = (w, h)
        self.texrender = api.gs_texrender_create(structs.GS_BGRA, structs.GS_ZS_NONE)
        self.stage = api.gs_stagesurface_create(w, h, structs.GS_BGRA)
        self.out_tex = api.gs_texture_create(w, h, structs.GS_BGRA, 1, None, structs.GS_DYNAMIC)
        self._flush_all()
        self.pool = []
        self.have_output = False

    def _buffer(self) -> Any:
        w, h = self.size
        return self.pool.pop() if self.pool else ctypes.create_string_buffer(w * h * 4)

    def _readback(self, buf: Any) -> bool:
        api = self.api
        w, h = self.size
        if not api.obs_source_process_filter_begin(self.source, structs.GS_BGRA,
                                                    structs.OBS_NO_DIRECT_RENDERING):
            return False
        api.gs_texrender_reset(self.texrender)
        if not api.gs_texrender_begin(self.texrender, w, h):
            return False
        api.gs_clear(structs.GS_CLEAR_COLOR, self._clear_color[1], 0.0, 0)
        api.gs_ortho(0.0, float(w), 0.0, float(h), -100.0, 100.0)
        api.gs_blend_state_push()
        api.gs_blend_function(structs.GS_BLEND_ONE, structs.GS_BLEND_ZERO)
        api.obs_source_process_filter_end(self.source, api.obs_get_base_effect(structs.OBS_EFFECT_DEFAULT),
                                          w, h)
        api.gs_blend_state_pop()
        api.gs_texrender_end(self.texrender)
        api.gs_stage_texture(self.stage, api.gs_texrender_get_texture(self.texrender))
        data = ctypes.POINTER(ctypes.c_uint8)()
        linesize = ctypes.c_uint32()
        if not api.gs_stagesurface_map(self.stage, ctypes.byref(data), ctypes.byref(linesize)):
            return False
        try:
            src = ctypes.cast(data, ctypes.c_void_p).value
            if not src:
                return False
            row = w * 4
            if linesize.value == row:
                ctypes.memmove(buf, src, row * h)
            else:
                dst = ctypes.addressof(buf)
                for y in range(h):
                    ctypes.memmove(dst + y * row, src + y * linesize.value, row)
        finally:
            api.gs_stagesurface_unmap(self.stage)
        return True

    def _view(self, buf: Any) -> Any:
        if self.engine_api is None:
            return None
        w, h = self.size
        return self.engine_api.FrameView(VideoFormat.BGRA, w, h, (ctypes.addressof(buf),), (w * 4,),
                                         timestamp=int(self.api.obs_get_video_frame_time()),
                                         full_range=True)

    def _process(self) -> None:
        api = self.api
        target = api.obs_filter_get_target(self.source)
        w, h = int(api.obs_source_get_base_width(target)), int(api.obs_source_get_base_height(target))
        if not (w and h):
            self.have_output = False
            return
        self._ensure(w, h)
        buf = self._buffer()
        if not self._readback(buf):
            self.pool.append(buf)
            self.have_output = False
            return
        self.index += 1
        self.counters.frames += 1
        view = self._view(buf) if (self.client is not None and self.swap_on) else None
        ts = int(api.obs_get_video_frame_time())
        if self.mode == st.LATENCY:
            self._flush_held()
            self._latest(view)
            out = buf
        else:
            seq, client = self._submit(view)
            self.held.append(Held(buf, view, seq, client, self.index, ts))
            if len(self.held) <= self.depth:
                return  # keep drawing the previous output (or skip at start)
            while len(self.held) > self.depth + 1:
                old = self.held.popleft()
                self._discard(old)
                self.pool.append(old.frame)
            item = self.held.popleft()
            self._finish(item)
            self._note_released()
            self.delay_ns = max(0, ts - item.ts)
            out = item.frame
        api.gs_texture_set_image(self.out_tex, ctypes.addressof(out), w * 4, False)
        self.have_output = True
        self.pool.append(out)

    def _draw(self) -> bool:
        api = self.api
        w, h = self.size
        effect = api.obs_get_base_effect(structs.OBS_EFFECT_DEFAULT)
        image = api.gs_effect_get_param_by_name(effect, b"image")
        if not (effect and image and self.out_tex):
            return False
        api.gs_effect_set_texture(image, self.out_tex)
        while api.gs_effect_loop(effect, b"Draw"):
            api.gs_draw_sprite(self.out_tex, 0, w, h)
        return True

    def _flush_held(self) -> None:
        while self.held:
            it = self.held.popleft()
            self._discard(it)
            self.pool.append(it.frame)

    def _flush_all(self) -> None:
        self._flush_held()
        self._drop_inflight()

    def _free_gpu(self) -> None:
        api = self.api
        if self.texrender:
            api.gs_texrender_destroy(self.texrender)
        if self.stage:
            api.gs_stagesurface_destroy(self.stage)
        if self.out_tex:
            api.gs_texture_destroy(self.out_tex)
        self.texrender = self.stage = self.out_tex = None
        self.size = (0, 0)

    def filter_remove(self, parent: int | None) -> None:
        self.removed = True
        self.drop_hotkey()

    def suspend(self) -> None:
        self.passthrough = True
        with self.lock:
            self._flush_all()
        super().suspend()

    def destroy(self) -> None:
        self.passthrough = True
        with self.lock:
            self._flush_all()
        super().destroy()
        if self.texrender or self.stage or self.out_tex:
            # destroy may run on any thread, outside the graphics context: enter it.
            self.api.obs_enter_graphics()
            try:
                self._free_gpu()
            finally:
                self.api.obs_leave_graphics()
