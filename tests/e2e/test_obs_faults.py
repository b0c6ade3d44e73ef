"""End to end: faults never crash OBS, leak, or leave an engine or shared memory behind.

Each test has its own OBS launch and ends with OBS's own exit: exit code 0, "Number of memory
leaks: 0" in its log, no engine process and no ``/dev/shm/ofs<obs pid>_*`` segment left.

``OBS_FACESWAP_EXIT_RUNS`` (default 1) sets how many launch → resolution changes → exit rounds
each filter kind gets here; tests/bench/exits_obs.py runs the issue's 20 in a row.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.checks import FILTER, SOURCE, counters, set_filter, settle, wait_frames, wait_state, wait_swapping
from tests.e2e.conftest import PHOTO, VIDEO
from tests.e2e.obs_harness import ASYNC_ID, RENDER_ID, FilterSpec, MediaSpec, Obs, ObsConfig
from tests.e2e.test_obs_lifecycle import _alive

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXIT_RUNS = int(os.environ.get("OBS_FACESWAP_EXIT_RUNS", "1"))


def shm_left(obs_pid: int) -> list[str]:
    prefix = f"ofs{obs_pid:x}_"
    return [n for n in os.listdir("/dev/shm") if n.startswith(prefix)]


def stop_and_check(obs: Obs) -> None:
    """OBS exits by itself, cleanly, with nothing left behind."""
    assert obs.proc is not None
    pid = obs.proc.pid
    seen = obs.seen_engine_pids | set(obs.engine_pids())
    code = obs.stop()
    assert not obs.killed, "OBS hung on exit\n" + obs.exit_report()
    assert code == 0, f"OBS exited with {code}\n" + obs.exit_report()
    assert "Number of memory leaks: 0" in obs.log_text(), "OBS reported leaks:\n" + obs.log_tail(15)
    assert obs.engines_after_exit() == [], "an engine process outlived OBS"
    assert not [p for p in seen if _alive(p)], "engine processes still running"
    assert shm_left(pid) == [], f"shared memory left in /dev/shm: {shm_left(pid)}"


def launch(workdir: Path, kind: str, settings: dict[str, Any], media: Callable[[str], Path]) -> Obs:
    config = ObsConfig(
        media=[MediaSpec(SOURCE, media(VIDEO), [FilterSpec(FILTER, kind, settings)])],
        extra_collections={"C2": [MediaSpec(SOURCE, media(VIDEO), [FilterSpec(FILTER, kind, settings)])]},
    )
    o = Obs(workdir, config)
    o.start()
    return o


@pytest.mark.parametrize("kind", [ASYNC_ID, RENDER_ID], ids=["async", "render"])
def test_exits_after_resolution_changes(
    kind: str,
    obs_installed: None,
    media: Callable[[str], Path],
    filter_settings: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    for run in range(EXIT_RUNS):
        o = launch(tmp_path / f"obs{run}", kind, filter_settings(), media)
        timer = o.watchdog(240)
        try:
            wait_state(o, "running", timeout=150)
            wait_swapping(o, frames=3, timeout=90)
            for w, h in ((640, 480), (400, 300), (512, 388)):
                o.call("SetVideoSettings", {"baseWidth": w, "baseHeight": h, "outputWidth": w, "outputHeight": h})
                wait_frames(o, frames=5, timeout=30)
            stop_and_check(o)
        finally:
            timer.cancel()
            o.stop()
            o.kill_engines()


def test_faults_keep_obs_running_and_clean(
    obs_installed: None, media: Callable[[str], Path], filter_settings: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    shutil.copy(media(PHOTO), photo)
    o = launch(tmp_path / "obs", ASYNC_ID, filter_settings(source_photo=str(photo)), media)
    timer = o.watchdog(420)
    try:
        wait_state(o, "running", timeout=150)
        wait_swapping(o, frames=5, timeout=90)

        # A bad photo keeps the previous configuration -- also after the engine restarts.
        bad = tmp_path / "bad.png"
        bad.write_bytes(b"this is not an image")
        set_filter(o, {"source_photo": str(bad)})
        s = o.wait_for(
            lambda: (s := o.stats(FILTER)) and "keeping the previous" in s["message"] and s,
            60,
            "the bad photo reported",
        )
        pid = int(s["pid"])
        os.kill(pid, signal.SIGKILL)
        s = o.wait_for(
            lambda: (
                (s := o.stats(FILTER))
                and s["state"] == "running"
                and s["pid"] != pid
                and "keeping the previous" in s["message"]
                and s
            ),
            120,
            "a restart that keeps the config",
        )
        assert "INFO" not in s["message"]
        before = counters(o)["swapped"]
        wait_swapping(o, frames=5, timeout=90)
        assert counters(o)["swapped"] > before
        restart_line = [ln for ln in o.log_text().splitlines() if "killed by SIGKILL" in ln]
        assert restart_line and not any(" INFO " in ln.split("SIGKILL", 1)[1] for ln in restart_line), restart_line

        # The bad file fixed in place and chosen again: read again, the message clears.
        shutil.copy(media(PHOTO), bad)
        set_filter(o, {"source_photo": str(bad)})
        o.wait_for(
            lambda: (s := o.stats(FILTER)) and s["state"] == "running" and not s["message"],
            30,
            "the fixed photo read again",
        )

        # A deleted photo is noticed (and the loaded face stays in use).
        bad.unlink()
        o.wait_for(lambda: (s := o.stats(FILTER)) and "not found" in s["message"], 30, "the deleted photo noticed")
        set_filter(o, {"source_photo": str(photo)})
        o.wait_for(lambda: (s := o.stats(FILTER)) and s["state"] == "running" and not s["message"], 30, "photo back")

        # Typing an interpreter path: never more than one engine.
        python = filter_settings()["engine_python"]
        most = 0
        for i in range(4, len(python) + 1, 3):
            set_filter(o, {"engine_python": python[:i]})
            time.sleep(0.08)
            most = max(most, len(o.engine_pids()))
        set_filter(o, {"engine_python": python})
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            most = max(most, len(o.engine_pids()))
            time.sleep(0.1)
        assert most <= 1, f"{most} engines alive at once while typing the interpreter path"
        wait_state(o, "running", timeout=120)
        wait_swapping(o, frames=5, timeout=90)

        # Scene-collection switch and back.
        o.call("SetCurrentSceneCollection", {"sceneCollectionName": "C2"})
        settle(3.0)
        wait_state(o, "running", timeout=120)
        o.call("SetCurrentSceneCollection", {"sceneCollectionName": "C"})
        settle(3.0)
        wait_state(o, "running", timeout=120)
        assert o.responsive()
        stop_and_check(o)
    finally:
        timer.cancel()
        o.stop()
        o.kill_engines()
