"""Per-instance logic of the two filters: "Face Swap" (async) and "Face Swap (any source)".

Standard library only (this runs inside OBS's embedded Python). Nothing here blocks on the
engine: frames are copied into the engine's shared memory with ``submit`` and results are
taken with ``ready``/``apply`` when they are there. **Fail closed**: while the swap is on, a
frame that gets no swap result in time (engine starting, restarting, hung or misconfigured,
result late, settings changing) shows the face covered, the last swapped frame or the
original, as the "When the swap is unavailable" setting says (:mod:`obs_faceswap.obs.cover`),
with the disclosure badge drawn by the filter itself; the status line says why.

The parts: :mod:`~obs_faceswap.obs.engine_link` (the engine process: start, settings, stop),
:mod:`~obs_faceswap.obs.timing` (which result goes into which frame, the hold depth),
:mod:`~obs_faceswap.obs.cover` (mosaic, freeze, badge), :mod:`~obs_faceswap.obs.hotkey`,
:mod:`~obs_faceswap.obs.diagnostics` (timings, counters, the stats file for tests).

Threads (OBS 29): ``filter_video``, ``video_tick``, ``video_render`` and the deferred
``update`` run on the graphics thread; ``filter_video`` runs while libobs holds the parent's
async and filter mutexes, so it must stay well under a millisecond. ``filter_remove`` and
properties callbacks run on the UI thread, hotkeys on the hotkey thread, ``destroy`` on
whichever thread drops the last reference (at exit, OBS 29 does it on the graphics thread), so
nothing here waits for an engine process to quit: that happens on a background thread, joined
when the script unloads. The held-frame queue's lock is never held across a libobs call that
can wait for a libobs lock (that would deadlock with the graphics thread, which holds the async
mutex while it waits for our lock); frames are handed back outside ``filter_video`` under a
separate release lock that ``filter_remove`` also takes (see :class:`AsyncFaceSwap`).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from obs_faceswap.obs import cover, structs
from obs_faceswap.obs import settings as st
from obs_faceswap.obs.diagnostics import CallbackTimer, Counters, Diagnostics, thread_ns
from obs_faceswap.obs.engine_link import SLOTS, EngineLink
from obs_faceswap.obs.hotkey import HOTKEY_PREFIX, INVALID_HOTKEY_ID, ToggleHotkey
from obs_faceswap.obs.timing import (
    AUTO_LATE_LIMIT,
    AUTO_MAX_DEPTH,
    AUTO_START_DEPTH,
    AUTO_WINDOW,
    Held,
    HoldDepth,
    Results,
)
from obs_faceswap.video_formats import VideoFormat

__all__ = [
    "AUTO_LATE_LIMIT",
    "AUTO_MAX_DEPTH",
    "AUTO_START_DEPTH",
    "AUTO_WINDOW",
    "HOTKEY_PREFIX",
    "INVALID_HOTKEY_ID",
    "SLOTS",
    "AsyncFaceSwap",
    "CallbackTimer",
    "Counters",
    "FilterBase",
    "Held",
    "RenderFaceSwap",
    "load_engine_api",
]

log = logging.getLogger(__name__)

_thread_ns = thread_ns


def load_engine_api() -> tuple[Any, str]:
    """The engine client module, or ``(None, reason)`` when it cannot be imported."""
    try:
        from obs_faceswap.engine import client
    except Exception as e:  # ImportError, or an error inside the module: pass through
        return None, f"engine client unavailable: {type(e).__name__}: {e}"
    return client, ""


class FilterBase:
    """Settings, status and lifecycle shared by both filter kinds.

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

    def __init__(
        self,
        api: Any,
        source: int,
        values: dict[str, Any],
        *,
        engine_api: Any,
        engine_error: str = "",
        env: dict[str, str] | None = None,
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self.api = api
        self.source = source
        self.clock = clock
        self.name = api.source_name(source) if source else ""
        self.diag = Diagnostics(self.name, clock)
        self.guard = cover.Guard(clock)
        self.link = EngineLink(self.name, engine_api, engine_error, env, clock, self._frame_interval_s)
        self.hotkey = ToggleHotkey(api, self.name)
        self.results = Results(
            self.name, lambda: self.link.client, lambda: self.diag.counters, self.guard, self._log_once
        )
        self.values: dict[str, Any] = {}
        self.mode = st.SYNC
        self.hold = HoldDepth(st.sync_frames(values))
        self.swap_on = True
        self.passthrough = False
        self.healthy = False  # the engine reports "running" (late results then mean the depth is short)
        self.lock = threading.Lock()
        self.index = 0
        self.delay_ns = 0
        self._status_key: tuple[Any, ...] | None = None
        self._logged: set[Any] = set()
        self.supported = frozenset(getattr(engine_api, "SUPPORTED_FORMATS", ()) or ())
        self.frame_format = ""  # OBS's name of the last frame's format (async filter)
        self.format_note = ""  # why that frame could not be swapped, and what it showed
        self._apply_values(values)
        self.link.configure(self.values, self.mode == st.LATENCY)

    # --- views of the parts (kept for callers and tests) ------------------------------
    @property
    def client(self) -> Any:
        return self.link.client

    @property
    def error(self) -> str:
        return self.link.error

    @property
    def engine_api(self) -> Any:
        return self.link.engine_api

    @property
    def counters(self) -> Counters:
        return self.diag.counters

    @property
    def timers(self) -> dict[str, CallbackTimer]:
        return self.diag.timers

    @property
    def depth(self) -> int:
        return self.hold.depth

    @property
    def _closers(self) -> list[threading.Thread]:
        return self.link.closers

    def close_engine(self, wait: bool = True) -> None:
        """Stop the engine process (blocking up to the client's timeout when ``wait``)."""
        self.link.close(wait)

    # --- settings --------------------------------------------------------------------
    def _apply_values(self, values: dict[str, Any]) -> None:
        self.values = dict(values)
        self.mode = st.timing_mode(values)
        self.hold.configure(st.sync_frames(values))
        self.swap_on = bool(values.get("swap_enabled", True))
        self.results.swap_on = self.swap_on
        self.guard.configure(
            str(values.get("unavailable", cover.COVER)),
            bool(values.get("badge_enabled", True)),
            str(values.get("badge_text", "") or ""),
            str(values.get("badge_corner", "bottom-right")),
        )

    def update(self, values: dict[str, Any]) -> None:
        """New settings: apply live; the engine gets them coalesced, a new interpreter is
        started once the setting stops changing (never more than one engine)."""
        t0, c0 = self.clock(), _thread_ns()
        try:
            self._apply_values(values)
            self.link.update(self.values, self.mode == st.LATENCY, active=not self.passthrough)
        finally:
            self.timers["update"].add(self.clock() - t0, _thread_ns() - c0)

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
    def status(self) -> dict[str, Any]:
        """Everything the status line and the stats file show."""
        s = self.link.status()
        if s is None:
            state = "error" if self.error else ("starting" if self.link.start_pending else "stopped")
            message = self.error
            provider, fps, latency, restarts, pid = "", 0.0, 0.0, 0, None
            source_note = ""
        else:
            state = str(getattr(s, "state", "?"))
            message = str(getattr(s, "message", "") or "")
            provider = str(getattr(s, "provider", "") or "")
            fps = float(getattr(s, "fps", 0.0) or 0.0)
            latency = float(getattr(s, "latency_ms", 0.0) or 0.0)
            restarts = int(getattr(s, "restarts", 0) or 0)
            pid = getattr(s, "pid", None)
            source_note = str(getattr(s, "source_note", "") or "")
        delay_frames = self.depth if self.mode == st.SYNC else 0
        delay_ms = self.delay_ns / 1e6 or delay_frames * self._frame_interval_ms()
        return {
            "name": self.name,
            "kind": self.kind,
            "state": state,
            "message": message,
            "provider": provider,
            "fps": fps,
            "latency_ms": latency,
            "restarts": restarts,
            "pid": pid,
            "mode": self.mode,
            "swap_enabled": self.swap_on,
            "delay_frames": delay_frames,
            "delay_ms": delay_ms,
            "passthrough": self.passthrough,
            "unavailable": self.guard.fallback,
            "frame_format": self.frame_format,
            "format_note": self.format_note,
            "source_note": source_note,
        }

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
            parts.append(f"delay {s['delay_frames']} frames ≈ {s['delay_ms']:.0f} ms (set the audio offset to this)")
        else:
            parts.append("no added delay")
        if s["restarts"]:
            parts.append(f"restarts {s['restarts']}")
        if s["source_note"]:
            parts.append(s["source_note"])
        if not s["swap_enabled"]:
            parts.append("swap off")
        elif s["format_note"]:
            parts.append(s["format_note"])
        elif s["state"] != "running":
            parts.append(
                {"cover": "face covered", "freeze": "last swapped frame shown", "original": "original shown"}.get(
                    s["unavailable"], ""
                )
            )
        return " · ".join(p for p in parts if p), s["message"]

    def _frame_interval_s(self) -> float:
        try:
            return float(self.api.obs_get_frame_interval_ns()) / 1e9
        except Exception:
            return 0.0

    def _frame_interval_ms(self) -> float:
        return self._frame_interval_s() * 1e3

    def tick_status(self) -> None:
        """Poll the engine; log and refresh the properties once per state change."""
        self.link.tick()
        s = self.status()
        self.healthy = s["state"] == "running"
        key = (s["state"], s["message"], s["provider"], s["restarts"], s["format_note"], s["source_note"])
        if key != self._status_key:
            self._status_key = key
            log.info(
                "Face Swap %r: engine %s%s%s%s",
                self.name,
                s["state"],
                f" ({s['provider']})" if s["provider"] else "",
                f", restarts {s['restarts']}" if s["restarts"] else "",
                f": {s['message']}" if s["message"] else "",
            )
            if s["source_note"]:
                log.info("Face Swap %r: %s", self.name, s["source_note"])
            with contextlib.suppress(Exception):
                # Properties do not refresh by themselves; this makes an open dialog reload.
                self.api.obs_source_update_properties(self.source)

    def stats_if_due(self) -> None:
        """The diagnostics file (only when OBS_FACESWAP_STATS_DIR is set), written after the
        timed part of ``video_tick`` so its cost does not show in the timings it reports."""
        self.diag.write_if_due(self.status)

    def _log_once(self, key: Any, msg: str) -> None:
        if key in self._logged:
            return
        self._logged.add(key)
        log.warning("Face Swap %r: %s", self.name, msg)

    # --- frames ----------------------------------------------------------------------
    def _released(self, item: Held, behind: Held | None) -> None:
        """``item`` leaves the hold (synchronised mode): result or cover; adapt the depth."""
        late = self.results.finish(item)
        msg = self.hold.note(late, self.results.is_ready(behind), self.healthy)
        if msg:
            log.info("Face Swap %r: %s", self.name, msg)

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
        self.hotkey.set_callback(callback_addr, data)

    def suspend(self) -> None:
        """Script unloading: pass frames through; the engine stops in the background.

        ``script_unload`` runs on OBS's UI thread (also at exit, before the scene data is
        cleared): the registry waits for the closing threads once, for all filters together.
        """
        self.passthrough = True
        self.results.drop_inflight()
        self.close_engine(wait=False)

    def resume(self, engine_api: Any, engine_error: str) -> None:
        """Script loaded again: use the (maybe reloaded) client and restart the engine
        (as soon as the previous one has quit)."""
        self.link.set_api(engine_api, engine_error)
        self.supported = frozenset(getattr(engine_api, "SUPPORTED_FORMATS", ()) or ())
        self.passthrough = False
        if self.link.client is None:
            self.link.want_start()

    def filter_remove(self, parent: int | None) -> None:
        self.hotkey.drop()

    def destroy(self) -> None:
        # libobs may destroy a filter on its graphics thread (OBS 29 does at exit when it
        # drops the last scene reference there): stopping the engine must not stall it.
        # The closing thread is not a daemon; the registry joins it at unload.
        self.passthrough = True
        self.hotkey.drop()
        self.results.drop_inflight()
        self.close_engine(wait=False)
        log.info("Face Swap %r destroyed (%s thread)", self.name, threading.current_thread().name)


class AsyncFaceSwap(FilterBase):
    """ "Face Swap" for cameras and media sources: edits each ``obs_source_frame`` in place.

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
        if self.engine_api is None:
            return None
        if planes is None or (self.supported and fmt not in self.supported):
            self._unswappable(fmt)
            return None
        n = len(planes)
        return self.engine_api.FrameView(
            fmt,
            f.width,
            f.height,
            tuple(f.data[:n]),
            tuple(f.linesize[:n]),
            timestamp=f.timestamp,
            color_matrix=tuple(f.color_matrix),
            full_range=bool(f.full_range),
            range_min=tuple(f.color_range_min),
            range_max=tuple(f.color_range_max),
        )

    def _unswappable(self, fmt: int) -> None:
        """A frame the engine cannot swap (its format): it is covered like any frame without a
        result (``filter_video`` drops it when not even its layout is known); say so."""
        name = structs.VIDEO_FORMAT_NAMES.get(fmt, str(fmt))
        if self.guard.fallback == cover.ORIGINAL:
            shown = "shown as it is (When the swap is unavailable: original)"
        elif fmt in cover.LAYOUT:
            shown = "covered"
        else:
            shown = "not shown (its pixel layout is unknown)"
        self.format_note = f"format {name} not supported: {shown}"
        if ("fmt", fmt, shown) not in self._logged:
            self._logged.add(("fmt", fmt, shown))
            log.warning("Face Swap %r: video %s", self.name, self.format_note)

    def _drop_uncoverable(self, frame: int) -> bool:
        """While the swap is on, a frame in a format whose pixels cannot even be covered (a
        value newer than this plugin knows) is handed back to libobs and not shown -- the
        source keeps showing its last frame -- unless the user chose to show the original.
        True when ``frame`` was dropped."""
        f = self.frame_struct.from_address(frame)
        if f.format in cover.LAYOUT or not self.swap_on:
            return False
        self.frame_format = structs.VIDEO_FORMAT_NAMES.get(f.format, str(f.format))
        self._unswappable(f.format)
        if self.guard.fallback == cover.ORIGINAL:
            return False
        parent = self.api.obs_filter_get_parent(self.source)
        if not parent:
            return False
        self.api.obs_source_release_frame(parent, frame)
        self.counters.dropped += 1
        return True

    def frame_planes(self, frame: int) -> cover.Planes | None:
        """Where an ``obs_source_frame*``'s pixels are (for covering it), None if unknown."""
        f = self.frame_struct.from_address(frame)
        layout = cover.LAYOUT.get(f.format)
        if layout is None:
            return None
        n = len(layout)
        return cover.Planes(f.format, f.width, f.height, tuple(f.data[:n]), tuple(f.linesize[:n]))

    def _orphaned(self, frame: int) -> bool:
        return int(self.frame_struct.from_address(frame).refs) <= 1

    def filter_video(self, frame: int) -> int | None:
        """libobs' ``filter_video``: the frame to show now, or None while holding it.

        Never raises, and never returns None except when ``frame`` was taken into the queue.
        """
        t0, c0 = self.clock(), _thread_ns()
        try:
            try:
                if frame and self._drop_uncoverable(frame):
                    return None
            except Exception as e:  # the frame was not handed back: show it, as before
                self._log_once(("drop", type(e).__name__), f"frame in an unknown format not dropped: {e}")
            if self.passthrough or not frame:
                if self.held:  # a frame that slipped in while the script was unloading
                    self._release(self._take_held(), self.api.obs_filter_get_parent(self.source))
                if frame and self.swap_on:
                    # Script unloaded (reloading, or OBS exiting): no engine, still no real face.
                    try:
                        self.results.unavailable(self.frame_planes(frame))
                    except Exception as e:
                        self._log_once(("suspended", type(e).__name__), f"frame not covered: {e}")
                return frame
            self.index += 1
            self.counters.frames += 1
            view = planes = None
            ts = 0
            try:
                fs = self.frame_struct.from_address(frame)
                ts = fs.timestamp
                self.frame_format = structs.VIDEO_FORMAT_NAMES.get(fs.format, str(fs.format))
                # always: a frame held while the swap was off may leave after it is turned on
                planes = self.frame_planes(frame)
                if self.swap_on and self.client is not None:
                    view = self.frame_view(frame)
                    if view is not None:
                        self.format_note = ""
                elif self.swap_on and fs.format not in self.supported and self.supported:
                    self._unswappable(fs.format)  # no engine yet: say why it will stay covered
            except Exception as e:
                self._log_once(("view", type(e).__name__), f"frame not readable: {e}")
            if self.mode == st.LATENCY:
                if self.held:
                    # Switched from synchronised: show this frame, drop the older ones.
                    self._release(self._take_held(), self.api.obs_filter_get_parent(self.source))
                self.results.latest(view, planes, self.index)
                self.delay_ns = 0
                return frame
            return self._sync(frame, view, planes, ts)
        finally:
            self.timers["filter_video"].add(self.clock() - t0, _thread_ns() - c0)

    def _sync(self, frame: int, view: Any, planes: cover.Planes | None, ts: int) -> int | None:
        seq, client = self.results.submit(view)
        item = Held(frame, view, planes, seq, client, self.index, ts)
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
        self._released(out, self.held[1] if len(self.held) > 1 else None)
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
            self.results.discard(it)
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
            if self.hotkey.id is None and not self.parent_gone:
                self.hotkey.ensure(self.api.obs_filter_get_parent(self.source))
            enabled = bool(self.api.obs_source_enabled(self.source))
            if not enabled:
                # libobs has no disable callback and stops calling filter_video: free now.
                if self.held:
                    self._release_all_outside()
                self.results.drop_inflight()
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
        self.hotkey.drop()
        self.results.drop_inflight()
        log.info(
            "Face Swap %r removed from its source (%d held frames released, %s thread)",
            self.name,
            len(items),
            threading.current_thread().name,
        )

    def suspend(self) -> None:
        self.passthrough = True
        self._release_all_outside()
        super().suspend()

    def destroy(self) -> None:
        self.passthrough = True
        with self.release_lock:
            left = self._take_held()
        if left:
            # filter_remove always comes first; a frame here has no parent to go back to.
            log.warning("Face Swap %r: %d held frames at destroy", self.name, len(left))
        super().destroy()


class RenderFaceSwap(FilterBase):
    """ "Face Swap (any source)": reads the rendered source back from the GPU.

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
            if self.hotkey.id is None and not self.removed:
                self.hotkey.ensure(self.api.obs_filter_get_parent(self.source))
            self.tick_status()
        finally:
            self.timers["video_tick"].add(self.clock() - t0, _thread_ns() - c0)
        self.stats_if_due()

    def _wanted(self) -> bool:
        # Synchronised: always (the delay stays constant); lowest latency: while the swap is
        # on (with or without an engine: a frame without a result is covered).
        return not self.passthrough and (self.mode == st.SYNC or self.swap_on)

    def video_render(self, effect: int | None) -> None:
        t0, c0 = self.clock(), _thread_ns()
        try:
            if not self._wanted():
                self.have_output = False
                if not (self.passthrough and self.swap_on):  # suspended with the swap on: draw nothing
                    self.api.obs_source_skip_video_filter(self.source)
                return
            with self.lock:
                if self.tick != self.done_tick:
                    self.done_tick = self.tick
                    try:
                        self._process()
                    except Exception as e:
                        self.have_output = False
                        self._log_once(("render", type(e).__name__), f"render path failed: {e}")
                drawn = self.have_output and self._draw()
            if not drawn and not self.swap_on:
                self.api.obs_source_skip_video_filter(self.source)
            # swap on and nothing to draw yet (the first held frames, a failed read-back):
            # draw nothing rather than the unfiltered source (fail closed)
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
        if not api.obs_source_process_filter_begin(self.source, structs.GS_BGRA, structs.OBS_NO_DIRECT_RENDERING):
            return False
        api.gs_texrender_reset(self.texrender)
        if not api.gs_texrender_begin(self.texrender, w, h):
            return False
        api.gs_clear(structs.GS_CLEAR_COLOR, self._clear_color[1], 0.0, 0)
        api.gs_ortho(0.0, float(w), 0.0, float(h), -100.0, 100.0)
        api.gs_blend_state_push()
        api.gs_blend_function(structs.GS_BLEND_ONE, structs.GS_BLEND_ZERO)
        api.obs_source_process_filter_end(self.source, api.obs_get_base_effect(structs.OBS_EFFECT_DEFAULT), w, h)
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

    def _planes(self, buf: Any) -> cover.Planes:
        w, h = self.size
        return cover.Planes(VideoFormat.BGRA, w, h, (ctypes.addressof(buf),), (w * 4,))

    def _view(self, buf: Any) -> Any:
        if self.engine_api is None:
            return None
        w, h = self.size
        return self.engine_api.FrameView(
            VideoFormat.BGRA,
            w,
            h,
            (ctypes.addressof(buf),),
            (w * 4,),
            timestamp=int(self.api.obs_get_video_frame_time()),
            full_range=True,
        )

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
        planes = self._planes(buf)
        ts = int(api.obs_get_video_frame_time())
        if self.mode == st.LATENCY:
            self._flush_held()
            self.results.latest(view, planes, self.index)
            self.delay_ns = 0
            out = buf
        else:
            seq, client = self.results.submit(view)
            self.held.append(Held(buf, view, planes, seq, client, self.index, ts))
            if len(self.held) <= self.depth:
                return  # keep drawing the previous output (or skip at start)
            while len(self.held) > self.depth + 1:
                old = self.held.popleft()
                self.results.discard(old)
                self.pool.append(old.frame)
            item = self.held.popleft()
            self._released(item, self.held[1] if len(self.held) > 1 else None)
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
            self.results.discard(it)
            self.pool.append(it.frame)

    def _flush_all(self) -> None:
        self._flush_held()
        self.results.drop_inflight()

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
        self.hotkey.drop()

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
