"""End to end: lifecycle events never crash or hang OBS, leak, or leave an engine behind.

Each test has its own OBS launch so that it can check what only an exit shows: OBS quit
cleanly on SIGINT, its log says "Number of memory leaks: 0", and no engine process is left.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.checks import FILTER, SOURCE, counters, settle, wait_frames, wait_state, wait_swapping
from tests.e2e.conftest import VIDEO
from tests.e2e.obs_harness import ASYNC_ID, FilterSpec, MediaSpec, Obs, ObsConfig

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # each starts or drives real OBS: seconds


@pytest.fixture
def obs(
    obs_installed: None, media: Callable[[str], Path], filter_settings: Callable[..., dict[str, Any]], tmp_path: Path
) -> Iterator[Obs]:
    def spec() -> list[MediaSpec]:
        return [MediaSpec(SOURCE, media(VIDEO), [FilterSpec(FILTER, ASYNC_ID, filter_settings())])]

    o = Obs(tmp_path / "obs", ObsConfig(media=spec(), extra_collections={"C2": spec()}))
    timer = o.watchdog(150)
    try:
        o.start()
        wait_state(o, "running", timeout=90)
        wait_swapping(o, frames=5)
        yield o
    finally:
        timer.cancel()
        o.stop()
        o.kill_engines()


def exits_cleanly(obs: Obs) -> None:
    """Stop OBS and check what the issue asks of every lifecycle event."""
    seen = obs.seen_engine_pids | set(obs.engine_pids())
    code = obs.stop()
    log = obs.log_text()
    assert not obs.killed, "OBS hung on exit (killed after the timeout)\n" + obs.exit_report()
    assert code == 0, f"OBS exited with {code}\n" + obs.exit_report()
    assert "Number of memory leaks: 0" in log, "OBS reported leaks:\n" + obs.log_tail(15)
    assert obs.engines_after_exit() == [], "an engine process outlived OBS"
    alive = [p for p in seen if _alive(p)]
    assert not alive, f"engine processes still running: {alive}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with contextlib.suppress(OSError):
        # A zombie is dead for our purpose (its parent has not reaped it yet).
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


def engine_pid(obs: Obs) -> int:
    return int(wait_state(obs, "running")["pid"])


def test_script_reload_three_times(obs: Obs) -> None:
    for n in range(1, 4):
        old = engine_pid(obs)
        obs.call("TriggerHotkeyByName", {"hotkeyName": "obs_faceswap_test.reload"})
        obs.wait_for(lambda n=n: obs.log_text().count("obs_script_reload -> True") >= n, 30, f"reload {n}")
        assert obs.responsive()
        obs.wait_for(lambda old=old: old not in obs.engine_pids(), 15, "the old engine to stop")
        new = obs.wait_for(
            lambda old=old: (s := obs.stats(FILTER)) and s["state"] == "running" and s["pid"] != old and s["pid"],
            90,
            "the engine after the reload",
        )
        assert new in obs.engine_pids()
        wait_swapping(obs, frames=5)
    log = obs.log_text()
    assert log.count("[obs-faceswap] loaded (OBS") == 4  # first load + three reloads
    assert log.count("[obs-faceswap] registered 'Face Swap' (") == 1  # types registered once
    assert len(obs.engine_pids()) == 1
    exits_cleanly(obs)


def test_scene_collection_switch(obs: Obs) -> None:
    first = engine_pid(obs)
    obs.call("SetCurrentSceneCollection", {"sceneCollectionName": "C2"})
    obs.wait_for(lambda: obs.call("GetSceneCollectionList")["currentSceneCollectionName"] == "C2", 30, "C2")
    obs.wait_for(lambda: first not in obs.engine_pids(), 20, "C's engine to stop")
    second = obs.wait_for(
        lambda: (s := obs.stats(FILTER)) and s["state"] == "running" and s["pid"] != first and s["pid"],
        90,
        "C2's engine",
    )
    wait_swapping(obs, frames=5)
    obs.call("SetCurrentSceneCollection", {"sceneCollectionName": "C"})
    obs.wait_for(lambda: obs.call("GetSceneCollectionList")["currentSceneCollectionName"] == "C", 30, "C")
    obs.wait_for(lambda: second not in obs.engine_pids(), 20, "C2's engine to stop")
    wait_state(obs, "running")
    wait_swapping(obs, frames=5)
    assert obs.responsive()
    assert len(obs.engine_pids()) == 1
    exits_cleanly(obs)


def test_filter_remove_and_readd(obs: Obs, filter_settings: Callable[..., dict[str, Any]]) -> None:
    old = engine_pid(obs)
    obs.call("RemoveSourceFilter", {"sourceName": SOURCE, "filterName": FILTER})
    obs.wait_for(lambda: old not in obs.engine_pids(), 20, "the engine to stop with its filter")
    assert obs.responsive()
    assert "held frames released" in obs.log_text()
    obs.call(
        "CreateSourceFilter",
        {"sourceName": SOURCE, "filterName": FILTER, "filterKind": ASYNC_ID, "filterSettings": filter_settings()},
    )
    obs.wait_for(
        lambda: (s := obs.stats(FILTER)) and s["state"] == "running" and s["pid"] != old,
        90,
        "the re-added filter's engine",
    )
    wait_swapping(obs, frames=5)
    assert len(obs.engine_pids()) == 1
    exits_cleanly(obs)


def test_filter_disable_enable(obs: Obs) -> None:
    pid = engine_pid(obs)
    before = counters(obs)
    obs.call("SetSourceFilterEnabled", {"sourceName": SOURCE, "filterName": FILTER, "filterEnabled": False})
    settle(2.5)
    during = counters(obs)
    settle(1.5)
    # libobs stops calling the filter; the frames it held were handed back, not leaked.
    assert counters(obs)["frames"] == during["frames"]
    assert during["dropped"] > before["dropped"]
    assert obs.responsive()
    obs.call("SetSourceFilterEnabled", {"sourceName": SOURCE, "filterName": FILTER, "filterEnabled": True})
    wait_frames(obs, frames=5)
    wait_swapping(obs, frames=5)
    assert obs.stats(FILTER)["pid"] == pid  # the engine stayed up
    exits_cleanly(obs)


def test_obs_exit_while_swapping(obs: Obs) -> None:
    wait_swapping(obs, frames=3)
    assert len(obs.engine_pids()) == 1
    exits_cleanly(obs)
