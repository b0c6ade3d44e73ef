"""Which result goes into which frame, and what a frame without one shows.

Standard library only; runs on OBS's graphics thread, so nothing here waits.

* **synchronised** – each frame is submitted, then held back ``depth`` frames; when it leaves,
  the result computed from *that* frame is written into it. ``depth`` is the "Frames to hold"
  setting or, when that is 0, adapts both ways (:class:`HoldDepth`): one more when results
  keep arriving late while the engine is healthy, one less after a long run in which every
  result was ready two frames early; it stays constant while the engine keeps up, so an audio
  offset set to the delay shown stays right.
* **lowest latency** – never hold. The newest result is written into the current frame only
  if it was computed from the previous frame or this one; at most one frame is in flight.

In both modes a frame that should carry a swap but gets none (late, no engine, failed) goes
through :meth:`~obs_faceswap.obs.cover.Guard.unavailable`: the face is covered.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from obs_faceswap.obs import settings as st
from obs_faceswap.obs.cover import Guard, Planes
from obs_faceswap.obs.diagnostics import Counters

log = logging.getLogger(__name__)

#: Depth the automatic synchronised mode starts from, its least and its most.
AUTO_START_DEPTH = 2
AUTO_MIN_DEPTH = 1
AUTO_MAX_DEPTH = 12
#: Late results among this many released frames make the automatic depth grow by one.
AUTO_WINDOW = 30
AUTO_LATE_LIMIT = 3
#: Released frames in a row whose successor-but-one was already ready make it shrink by one.
AUTO_SHRINK_AFTER = 300

#: ``apply_result`` outcomes (as in :mod:`obs_faceswap.engine.slots`).
APPLIED, UNCHANGED, UNAVAILABLE = 1, 0, -1


class Held:
    """A frame (or render buffer) the filter owns while the engine works on it."""

    __slots__ = ("frame", "view", "planes", "seq", "client", "index", "ts")

    def __init__(
        self, frame: Any, view: Any, planes: Planes | None, seq: int | None, client: Any, index: int, ts: int
    ) -> None:
        self.frame = frame
        self.view = view
        self.planes = planes
        self.seq = seq
        self.client = client
        self.index = index
        self.ts = ts


class HoldDepth:
    """The synchronised hold: fixed (``requested`` > 0) or automatic (adapts both ways)."""

    def __init__(self, requested: int) -> None:
        self.requested = requested
        self.depth = requested or AUTO_START_DEPTH
        self.released = self.late = self.early_run = 0

    def configure(self, requested: int) -> None:
        if requested != self.requested:
            self.requested = requested
            self.depth = requested or AUTO_START_DEPTH
            self.released = self.late = self.early_run = 0

    def note(self, late: bool, early: bool, healthy: bool) -> str:
        """One frame released: ``late`` (its result missed it), ``early`` (the frame two
        places behind it already has its result), ``healthy`` (the engine runs normally:
        lateness while it restarts or hangs says nothing about the depth needed).
        Returns a log message when the depth changed, else ""."""
        if self.requested != st.AUTO_FRAMES:
            return ""
        self.released += 1
        if late and healthy:
            self.late += 1
        self.early_run = self.early_run + 1 if (early and healthy) else 0
        if self.late >= AUTO_LATE_LIMIT and self.depth < AUTO_MAX_DEPTH:
            self.depth += 1
            self.released = self.late = self.early_run = 0
            return f"results arrive late, holding {self.depth} frames now"
        if self.early_run >= AUTO_SHRINK_AFTER and self.depth > AUTO_MIN_DEPTH:
            self.depth -= 1
            self.released = self.late = self.early_run = 0
            return f"results arrive early, holding {self.depth} frames now"
        if self.released >= AUTO_WINDOW:
            self.released = self.late = 0
        return ""


def apply_result(client: Any, seq: int, view: Any) -> int:
    fn = getattr(client, "apply_result", None)
    if fn is not None:
        return int(fn(seq, view))
    return APPLIED if client.apply(seq, view) else UNAVAILABLE


class Results:
    """Submits frames and writes results back for one filter (both timing modes).

    Args:
        name: the filter's name (log).
        get_client: the current engine client (or None).
        counters: returns the filter's :class:`Counters` (they may be reset).
        guard: covers frames without a result.
        log_once: ``(key, message)`` logged once per key.
    """

    def __init__(
        self,
        name: str,
        get_client: Callable[[], Any],
        counters: Callable[[], Counters],
        guard: Guard,
        log_once: Callable[[Any, str], None],
    ) -> None:
        self.name = name
        self.get_client = get_client
        self.counters = counters
        self.guard = guard
        self.log_once = log_once
        self.inflight: list[Held] = []  # submitted, result not used yet (lowest-latency mode)
        self.swap_on = True

    def submit(self, view: Any) -> tuple[int | None, Any]:
        client = self.get_client()
        if client is None or view is None or not self.swap_on:
            return None, None
        try:
            seq = client.submit(view)
        except Exception as e:
            self.log_once(("submit", type(e).__name__), f"submit failed: {e}")
            return None, None
        if seq is None:
            self.counters().unsubmitted += 1
            return None, None
        return seq, client

    def unavailable(self, planes: Planes | None) -> None:
        """No result for a frame that should carry one: fail closed."""
        if not self.swap_on or planes is None:
            return
        try:
            done = self.guard.unavailable(planes)
        except Exception as e:
            self.log_once(("cover", type(e).__name__), f"cannot cover the frame: {e}")
            return
        c = self.counters()
        if done == "cover":
            c.covered += 1
        elif done == "freeze":
            c.frozen += 1

    def _applied(self, client: Any, seq: int, view: Any, planes: Planes | None) -> None:
        r = apply_result(client, seq, view)
        if r == APPLIED:
            self.counters().swapped += 1
            self.guard.swapped(planes, list(getattr(client, "last_rects", ()) or ()))
        elif r == UNAVAILABLE:
            self.counters().failed += 1
            self.unavailable(planes)

    def finish(self, item: Held) -> bool:
        """Write ``item``'s own result into it, or cover it; True when its result was late.
        Never raises."""
        if item.seq is None:
            self.unavailable(item.planes)
            return False
        client = item.client
        try:
            if client.ready(item.seq):
                self._applied(client, item.seq, item.view, item.planes)
                return False
            client.discard(item.seq)
        except Exception as e:
            self.log_once(("apply", type(e).__name__), f"result not applied: {e}")
            self.unavailable(item.planes)
            return False
        self.counters().late += 1
        self.unavailable(item.planes)
        return True

    @staticmethod
    def is_ready(item: Held | None) -> bool:
        if item is None or item.seq is None:
            return False
        try:
            return bool(item.client.ready(item.seq))
        except Exception:
            return False

    def discard(self, item: Held) -> None:
        if item.seq is not None:
            with contextlib.suppress(Exception):
                item.client.discard(item.seq)
            item.seq = None

    def drop_inflight(self) -> None:
        items, self.inflight = self.inflight, []
        for it in items:
            self.discard(it)

    def latest(self, view: Any, planes: Planes | None, index: int) -> None:
        """Lowest-latency mode: never hold; apply the newest result if it is at most one frame
        old, and keep one frame in flight (submitted before anything is applied); a frame
        without such a result is covered."""
        client = self.get_client()
        if client is None or view is None:
            self.drop_inflight()
            self.unavailable(planes)
            return
        ready: Held | None = None
        pending: list[Held] = []
        for it in self.inflight:
            if it.client is not client or it.index < index - 1:
                self.discard(it)
                continue
            if self.is_ready(it):
                if ready is not None:
                    self.discard(ready)
                ready = it
            else:
                pending.append(it)
        if not pending:
            # Submit before applying: the engine must see the original pixels.
            seq, c = self.submit(view)
            if seq is not None:
                pending.append(Held(None, None, None, seq, c, index, 0))
        self.inflight = pending
        if ready is None or ready.seq is None:
            self.unavailable(planes)
            return
        try:
            self._applied(client, ready.seq, view, planes)
        except Exception as e:
            self.log_once(("apply", type(e).__name__), f"result not applied: {e}")
            self.unavailable(planes)
