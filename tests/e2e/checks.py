"""Small helpers shared by the end-to-end tests (waiting on the filter's stats, images)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from tests.e2e.obs_harness import Obs

FILTER = "Face Swap"
SOURCE = "Media"


def counters(obs: Obs, name: str = FILTER) -> dict[str, int]:
    s = obs.stats(name)
    return dict(s["counters"]) if s else {}


def wait_state(obs: Obs, state: str, timeout: float = 90.0, name: str = FILTER) -> dict[str, Any]:
    """Wait until the filter's engine reports ``state``; returns the stats."""
    return obs.wait_for(
        lambda: (s := obs.stats(name)) and s["state"] == state and s,
        timeout,
        f"engine state {state!r} of {name!r} (stats: {obs.stats(name)})",
    )


def wait_swapping(obs: Obs, frames: int = 8, timeout: float = 90.0, name: str = FILTER) -> dict[str, Any]:
    """Wait until ``frames`` more frames came back swapped; returns the stats."""
    start = counters(obs, name).get("swapped", 0)
    return obs.wait_for(
        lambda: (s := obs.stats(name)) and s["counters"]["swapped"] >= start + frames and s,
        timeout,
        f"{frames} more swapped frames from {name!r} (stats: {obs.stats(name)})",
    )


def wait_frames(obs: Obs, frames: int = 8, timeout: float = 30.0, name: str = FILTER) -> dict[str, Any]:
    """Wait until ``frames`` more frames went through the filter (swapped or not)."""
    start = counters(obs, name).get("frames", 0)
    return obs.wait_for(
        lambda: (s := obs.stats(name)) and s["counters"]["frames"] >= start + frames and s,
        timeout,
        f"{frames} more frames through {name!r}",
    )


def set_filter(obs: Obs, settings: dict[str, Any], source: str = SOURCE, name: str = FILTER) -> None:
    obs.call(
        "SetSourceFilterSettings",
        {"sourceName": source, "filterName": name, "filterSettings": settings, "overlay": True},
    )


def filter_settings_now(obs: Obs, source: str = SOURCE, name: str = FILTER) -> dict[str, Any]:
    return dict(obs.call("GetSourceFilter", {"sourceName": source, "filterName": name})["filterSettings"])


def settle(seconds: float) -> None:
    """Let a few frames (10 fps in the tests) pass."""
    time.sleep(seconds)


def expand(box: np.ndarray, shape: tuple[int, ...], margin: float) -> tuple[int, int, int, int]:
    """``box`` (xyxy) grown by ``margin`` of its size on every side, clipped to ``shape``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    h, w = shape[:2]
    return (max(0, int(x0 - mx)), max(0, int(y0 - my)), min(w, int(x1 + mx) + 1), min(h, int(y1 + my) + 1))
