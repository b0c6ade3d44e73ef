"""End to end: while the swap is on, OBS's own recording never shows the real face.

One OBS launch (10 fps, 512x388) plays a clip with a checkerboard drawn on the speaker's nose
(tests/e2e/privacy.py) through "Face Swap"; OBS records its output while the test goes
through the phases of issue 9 — steady swapping, a source-photo change, an engine SIGKILL,
SIGSTOP/SIGCONT, a setting storm — in both timing modes, with a colour patch per phase. Every
recorded frame is then checked for the checkerboard: 0 frames of the real face in every phase
with the swap on, while the control phase (swap off) shows it in nearly every frame.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e import privacy as pv
from tests.e2e.checks import FILTER, SOURCE, set_filter, settle, wait_state, wait_swapping
from tests.e2e.conftest import OTHER_PHOTO, PHOTO, VIDEO, Identity
from tests.e2e.obs_harness import ASYNC_ID, RENDER_ID, FilterSpec, MediaSpec, Obs, ObsConfig, running_obs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: The checkerboard stands for "the real face"; but a small high-contrast patch on the nose
#: that jumps with the detector's box is exactly what the photo swapper keeps in front of the
#: swap as an occluder (issue 8). This test is about the engine's faults, so the swap covers
#: everything on the face; keeping occluders is tested in tests/integration/test_occlusion.py.
SETTINGS = {"mask_keep_occluders": False}


@pytest.fixture(scope="module")
def marked_clip(identity: Identity, media: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pv.make_marked_clip(media(VIDEO), tmp_path_factory.mktemp("privacy") / "marked.mp4", identity)


@pytest.fixture(scope="module")
def obs(
    obs_installed: None,
    marked_clip: Path,
    filter_settings: Callable[..., dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Obs]:
    spec = FilterSpec(FILTER, ASYNC_ID, filter_settings(**SETTINGS))
    config = ObsConfig(media=[MediaSpec(SOURCE, marked_clip, [spec])])
    with running_obs(tmp_path_factory.mktemp("obs-privacy"), config, budget_s=600) as o:
        wait_state(o, "running", timeout=150)
        pv.add_phase_patch(o, pv.PHASES[0][1])
        yield o


COUNTS: list[tuple[int, dict[str, int]]] = []
#: The filter under test ("Face Swap", or "Face Swap (any source)" for the render filter).
CURRENT = {"name": FILTER}
RENDER_FILTER = "Face Swap (any source)"


def stats(obs: Obs) -> dict[str, Any] | None:
    return obs.stats(CURRENT["name"])


def setf(obs: Obs, settings: dict[str, Any]) -> None:
    set_filter(obs, settings, name=CURRENT["name"])


def swapping(obs: Obs, frames: int, timeout: float = 90) -> dict[str, Any]:
    return wait_swapping(obs, frames=frames, timeout=timeout, name=CURRENT["name"])


def phase(obs: Obs, k: int) -> None:
    s = stats(obs)
    COUNTS.append((k, dict(s["counters"]) if s else {}))
    pv.set_phase_patch(obs, pv.PHASES[k][1])


def wait_engine(obs: Obs, old_pid: int | None = None, timeout: float = 120) -> dict[str, Any]:
    return obs.wait_for(
        lambda: (s := stats(obs)) and s["state"] == "running" and (old_pid is None or s["pid"] != old_pid) and s,
        timeout,
        "the engine running",
    )


def noticed(obs: Obs, what: str) -> None:
    """The status stops saying "running" within about a second (the stats file the test reads
    is itself written once a second)."""
    t0 = time.monotonic()
    s = obs.wait_for(
        lambda: (s := stats(obs)) and s["state"] != "running" and s, 10, f"the status to notice {what}", interval=0.05
    )
    took = time.monotonic() - t0
    print(f"\n  status after {what}: {s['state']!r} within {took:.2f} s ({s['message'][:80]})")
    assert took < 3.0, f"the status said 'running' for {took:.1f} s after {what}"


def run_phases(obs: Obs, media: Callable[[str], Path], mode: str) -> Path:
    setf(obs, {"timing_mode": mode, "swap_enabled": False})
    obs.wait_for(lambda: (s := stats(obs)) and s["mode"] == mode and not s["swap_enabled"], 15, "swap off")
    phase(obs, 0)
    settle(1.0)
    obs.call("StartRecord")
    settle(3.0)  # control: the real face, as recorded
    setf(obs, {"swap_enabled": True})  # the first frames after this are covered until results arrive
    phase(obs, 1)
    swapping(obs, 10)
    settle(3.0)
    phase(obs, 2)
    setf(obs, {"source_photo": str(media(OTHER_PHOTO))})
    settle(4.0)
    phase(obs, 3)
    pid = int(wait_engine(obs)["pid"])
    os.kill(pid, signal.SIGKILL)
    noticed(obs, "SIGKILL")
    wait_engine(obs, pid)
    swapping(obs, 5)
    settle(2.0)
    phase(obs, 4)
    pid = int(wait_engine(obs)["pid"])
    os.kill(pid, signal.SIGSTOP)
    try:
        noticed(obs, "SIGSTOP")
        settle(1.0)
    finally:
        os.kill(pid, signal.SIGCONT)
    swapping(obs, 5)
    settle(2.0)
    phase(obs, 5)
    for i in range(20):  # a burst of changes, as a slider or a script makes them
        setf(
            obs,
            {
                "opacity": 0.8 + (i % 5) * 0.05,
                "mask_feather": 0.05 + (i % 4) * 0.02,
                "source_photo": str(media(PHOTO if i % 2 else OTHER_PHOTO)),
            },
        )
        time.sleep(0.05)
    settle(4.0)
    phase(obs, 6)
    settle(1.0)
    path = Path(obs.call("StopRecord")["outputPath"])
    obs.wait_for(lambda: not obs.call("GetRecordStatus")["outputActive"], 30, "recording to stop")
    setf(obs, {"source_photo": str(media(PHOTO)), "opacity": 1.0, "mask_feather": 0.1})
    return path


@pytest.mark.parametrize(
    ("kind", "mode"),
    [("async", "sync"), ("async", "latency"), ("render", "sync")],
    ids=["async-sync", "async-latency", "render-sync"],
)
def test_recording_never_shows_the_real_face(
    obs: Obs, media: Callable[[str], Path], filter_settings: Callable[..., dict[str, Any]], kind: str, mode: str
) -> None:
    COUNTS.clear()
    if kind == "render":
        obs.call("SetSourceFilterEnabled", {"sourceName": SOURCE, "filterName": FILTER, "filterEnabled": False})
        obs.call(
            "CreateSourceFilter",
            {
                "sourceName": SOURCE,
                "filterName": RENDER_FILTER,
                "filterKind": RENDER_ID,
                "filterSettings": filter_settings(**SETTINGS),
            },
        )
        CURRENT["name"] = RENDER_FILTER
        wait_state(obs, "running", timeout=150, name=RENDER_FILTER)
    try:
        path = run_phases(obs, media, mode)
    finally:
        if kind == "render":
            CURRENT["name"] = FILTER
            obs.call("RemoveSourceFilter", {"sourceName": SOURCE, "filterName": RENDER_FILTER})
            obs.call("SetSourceFilterEnabled", {"sourceName": SOURCE, "filterName": FILTER, "filterEnabled": True})
    mode = f"{kind}-{mode}"
    keep = os.environ.get("OBS_FACESWAP_E2E_KEEP")  # a folder to keep the recordings in, to look at
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / f"privacy_{mode}.mkv")
    frames = pv.read_video(path)
    assert len(frames) > 100, f"recording {path} has only {len(frames)} frames"
    by_phase: dict[int, list[float]] = {}
    badge: dict[int, int] = {}
    for f in frames:
        k = pv.phase_of(f)
        if k is None or k == len(pv.PHASES) - 1:
            continue
        by_phase.setdefault(k, []).append(pv.marker_response(f))
        badge[k] = badge.get(k, 0) + pv.badge_present(f)
    control = np.array(by_phase.get(0, []))
    assert len(control) >= 15, "too few control frames recorded"
    threshold = 0.35 * float(np.median(control))
    print(f"\n[{mode}] recording {path}")
    print(f"[{mode}] marker threshold {threshold:.1f} (control median {np.median(control):.1f})")
    shown: dict[str, int] = {}
    for k, values in sorted(by_phase.items()):
        n_real = int(sum(v > threshold for v in values))
        name = pv.PHASES[k][0]
        print(
            f"[{mode}] {name:<24} frames {len(values):4d}  real face {n_real:4d}  with badge {badge[k]:4d}  "
            f"max marker {max(values):.1f}"
        )
        shown[name] = n_real
    assert shown[pv.PHASES[0][0]] >= 0.9 * len(control), "the detector misses the real face (control phase)"
    for (k, c0), (_, c1) in zip(COUNTS, COUNTS[1:], strict=False):
        d = {key: c1.get(key, 0) - c0.get(key, 0) for key in ("frames", "swapped", "covered", "late", "unsubmitted")}
        print(f"[{mode}] filter counters during {pv.PHASES[k][0]:<24} {d}")
    COUNTS.clear()
    leaks = {name: n for name, n in shown.items() if name != pv.PHASES[0][0] and n}
    assert not leaks, f"[{mode}] frames showing the real face while the swap was on: {leaks} ({path})"
    missing = {pv.PHASES[k][0]: len(v) - badge[k] for k, v in by_phase.items() if k and badge[k] < len(v)}
    assert not missing, f"[{mode}] frames without the disclosure badge: {missing}"
    for k in range(1, len(pv.PHASES) - 1):
        assert k in by_phase, f"[{mode}] no frame recorded in phase {pv.PHASES[k][0]!r}"


def test_status_names_the_delay_to_set_as_audio_offset(obs: Obs) -> None:
    set_filter(obs, {"timing_mode": "sync", "swap_enabled": True})
    s = wait_swapping(obs, frames=10, timeout=60)
    assert s["delay_frames"] >= 1 and s["delay_ms"] > 0
    with contextlib.suppress(Exception):
        obs.call("SetInputSettings", {"inputName": pv.PATCH_INPUT, "inputSettings": {}, "overlay": True})
