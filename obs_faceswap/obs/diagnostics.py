"""Diagnostics of one filter: callback timings, frame counters, and the stats file.

Standard library only. Timings and counters are always kept (a few integer stores per
callback); the stats file is written only when the environment variable
``OBS_FACESWAP_STATS_DIR`` names a directory (tests, the benchmark): once a second, after the
timed part of ``video_tick``, as ``<filter name>.json``; a file ``<filter name>.reset`` there
asks for a clean window (the benchmark does once the engine is warm). Nothing of this is on
the product path unless the variable is set.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from array import array
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

STATS_DIR_VAR = "OBS_FACESWAP_STATS_DIR"
STATS_INTERVAL_NS = 1_000_000_000
CALLBACKS = ("filter_video", "video_tick", "video_render", "update")

thread_ns = time.thread_time_ns


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


class Counters:
    """What happened to frames, for the status line and the benchmark.

    ``covered``: frames shown with the face covered (or frozen) because no result was there.
    """

    __slots__ = ("frames", "swapped", "late", "failed", "unsubmitted", "dropped", "covered", "frozen")

    def __init__(self) -> None:
        self.frames = self.swapped = self.late = self.failed = self.unsubmitted = self.dropped = 0
        self.covered = self.frozen = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


def stats_stem(name: str) -> str:
    """The stats file's name (without extension) for a filter called ``name``."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in (name or "filter"))


class Diagnostics:
    """Timers and counters of one filter, and its stats file when enabled.

    Args:
        name: the filter's name (names the stats file).
        clock: ``time.perf_counter_ns`` (tests pass a fake).
        stats_dir: where to write the stats file; None reads ``OBS_FACESWAP_STATS_DIR``; ""
            writes none.
    """

    def __init__(self, name: str, clock: Callable[[], int], stats_dir: str | None = None) -> None:
        self.name = name
        self.clock = clock
        self.stats_dir = os.environ.get(STATS_DIR_VAR, "") if stats_dir is None else stats_dir
        self.next_write = 0
        self.timers = {n: CallbackTimer() for n in CALLBACKS}
        self.counters = Counters()
        self._failed = False

    def write_if_due(self, status: Callable[[], dict[str, Any]]) -> None:
        """Write the stats file once a second (only when enabled)."""
        if not self.stats_dir:
            return
        now = self.clock()
        if now < self.next_write:
            return
        self.next_write = now + STATS_INTERVAL_NS
        reset = os.path.join(self.stats_dir, stats_stem(self.name) + ".reset")
        if os.path.exists(reset):
            with contextlib.suppress(OSError):
                os.remove(reset)
            self.timers = {k: CallbackTimer() for k in self.timers}
            self.counters = Counters()
        self.write(status())

    def write(self, s: dict[str, Any]) -> None:
        s["counters"] = self.counters.as_dict()
        s["callbacks"] = {k: t.summary() for k, t in self.timers.items()}
        s["time"] = time.time()
        path = os.path.join(self.stats_dir, f"{stats_stem(self.name)}.json")
        tmp = path + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(s, f)
            os.replace(tmp, path)
        except OSError as e:
            if not self._failed:
                self._failed = True
                log.warning("Face Swap %r: cannot write stats: %s", self.name, e)
