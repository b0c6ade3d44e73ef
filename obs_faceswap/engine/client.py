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

The parts: :class:`~obs_faceswap.engine.slots.SlotRing` (shared-memory slots, copy in and
back), :class:`~obs_faceswap.engine.process.EngineProcess` (spawn, pipes, reader threads,
watchdog, restarts, status, coalesced settings); this class joins them behind one interface.

Timing modes are built on top by the filter: *synchronised* (hold frame N, submit it,
release it once ``ready``/``apply``) and *lowest latency* (submit frame N and apply the
newest ready result of frame N-1 to it). :attr:`EngineClient.max_age` tells the engine how
old a frame may get before its result is useless, so it skips those instead of falling
behind.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable

from obs_faceswap.engine.process import EngineProcess, EngineStatus
from obs_faceswap.engine.shm import remove_stale_segments
from obs_faceswap.engine.slots import APPLIED, UNAVAILABLE, UNCHANGED, FrameView, SlotRing, plane_copy_function
from obs_faceswap.video_formats import SUPPORTED_FORMATS

__all__ = [
    "APPLIED",
    "SUPPORTED_FORMATS",
    "UNAVAILABLE",
    "UNCHANGED",
    "EngineClient",
    "EngineStatus",
    "FrameView",
    "plane_copy_function",
]

log = logging.getLogger(__name__)


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
            killed and restarted (after 1 s the status already says "not responding").
        start_timeout: longest time (s) the engine may take to start and load its models.
        backoff_initial, backoff_max: restart delays double from the first to the cap (s).
    """

    def __init__(
        self,
        python: str | None,
        settings: dict[str, object],
        *,
        slots: int = 8,
        env: dict[str, str] | None = None,
        log: Callable[[str], None] | None = None,
        processor: str | None = None,
        hang_timeout: float = 10.0,
        start_timeout: float = 120.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
    ) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.python = python or sys.executable
        self.max_age: float | None = None
        """Seconds after submit after which a frame's result is useless: the engine skips
        such frames instead of falling behind (lowest-latency mode). None: every frame is
        processed, in order (synchronised mode). Discarded frames are always skipped."""
        self._log_cb = log
        self._warned: set[str] = set()
        self.ring = SlotRing(slots, self._send, self._warn_once, self._emit)
        self.process = EngineProcess(
            self.python,
            settings,
            self.ring,
            env=env,
            emit=self._emit2,
            processor=processor,
            hang_timeout=hang_timeout,
            start_timeout=start_timeout,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Spawn the engine and return at once (idempotent while it runs)."""
        if self.process.closed:
            raise RuntimeError("EngineClient is closed")
        if self.process.started:
            return
        removed = remove_stale_segments()
        if removed:
            self._emit(f"removed {len(removed)} shared-memory segments left by a crashed OBS")
        self.process.spawn()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the engine (ask, then terminate, then kill), join the reader threads and
        unlink every shared-memory segment. Idempotent; never raises."""
        if self.process.closed:
            return
        # Unlink the shared memory first: the engine keeps its own mapping until it quits,
        # and should OBS exit before the engine has quit, nothing is left in /dev/shm.
        self.ring.close()
        self.process.stop(timeout)

    def __enter__(self) -> EngineClient:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- frames ----------------------------------------------------------------------------
    def submit(self, frame: FrameView) -> int | None:
        """Copy ``frame`` into a free slot and tell the engine.

        Returns:
            The frame's sequence number, or None when the engine is not running and ready
            (or not responding), no slot is free, or the format is not supported.
        """
        if not self.process.accepting:
            return None
        return self.ring.submit(frame, self.max_age)

    def ready(self, seq: int) -> bool:
        """Whether the result (or failure) for ``seq`` has arrived. Never waits."""
        return self.ring.ready(seq)

    def apply(self, seq: int, frame: FrameView) -> bool:
        """Write ``seq``'s changed region into ``frame`` and release the slot.

        ``frame`` must have the submitted format, size and linesizes; it may be a newer
        frame than the one submitted (then only the changed rectangle is copied).

        Returns:
            True if something was written; False when there is no usable result (not
            ready, skipped, failed, nothing changed, or a different geometry).
        """
        return self.ring.apply(seq, frame)

    def apply_result(self, seq: int, frame: FrameView) -> int:
        """:meth:`apply` with the outcome: ``APPLIED``, ``UNCHANGED`` (the engine found no
        face and drew nothing) or ``UNAVAILABLE`` (no usable result)."""
        return self.ring.apply_result(seq, frame)

    def discard(self, seq: int) -> None:
        """Forget ``seq``: the engine skips it if it has not started on it yet, and the slot
        is reused once the engine is done with it."""
        self.ring.discard(seq)

    @property
    def last_rects(self) -> list[tuple[int, int, int, int]]:
        """The changed rectangles (face regions, badge) of the last applied result."""
        return self.ring.last_rects

    @property
    def plane_copy(self) -> Callable[[int, int, int, int, int, int], None] | None:
        return self.ring.plane_copy

    @plane_copy.setter
    def plane_copy(self, fn: Callable[[int, int, int, int, int, int], None] | None) -> None:
        self.ring.plane_copy = fn

    # -- settings / status -----------------------------------------------------------------
    def update_settings(self, settings: dict[str, object]) -> None:
        """Merge ``settings`` into the current ones; the engine gets them coalesced (a burst
        of changes becomes one message) and applies them live, keeping the last good
        configuration on an invalid one (also across restarts)."""
        self.process.update_settings(settings)

    @property
    def settings(self) -> dict[str, object]:
        return dict(self.process.settings)

    @property
    def status(self) -> EngineStatus:
        return self.process.status

    def poll(self) -> None:
        """Housekeeping; cheap, call it every ``video_tick``: forward engine log lines, read
        status lines, send coalesced settings, flush pending writes, flag a stalled engine,
        kill a hung one, restart a dead one."""
        self.process.poll()

    # -- internals: logging ----------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        self.process.send(data)

    def _emit2(self, text: str, engine: bool) -> None:
        self._emit(text, engine)

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
