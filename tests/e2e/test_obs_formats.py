"""End to end: a 10-bit clip (and one with alpha) in a real OBS 29 media source never shows the face.

The marked speaker clip of tests/e2e/privacy.py (a checkerboard on the nose stands for "the real
face") is transcoded to 10-bit 4:2:0 (``yuv420p10le``, what 10-bit cameras, capture cards and
HDR files deliver) and to 4:2:0 with alpha (``yuva420p``). One OBS launch plays them through
"Face Swap" while OBS records its output; the filter's stats file says which pixel format OBS
handed it. Phases (a colour patch per phase): swap off (control: the checkerboard must be
seen), swapping the 10-bit frames, the engine frozen (SIGSTOP: the 10-bit frames covered), the
alpha clip (a format the engine does not swap: covered, the status saying why). With the swap
on, no recorded frame may show the checkerboard.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e import privacy as pv
from tests.e2e.checks import FILTER, SOURCE, set_filter, settle, wait_state, wait_swapping
from tests.e2e.conftest import VIDEO, Identity
from tests.e2e.obs_harness import ASYNC_ID, FilterSpec, MediaSpec, Obs, ObsConfig, running_obs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SETTINGS = {"mask_keep_occluders": False}  # as in test_obs_privacy: the swap covers the whole face
#: phase → (name, patch colour BGR)
PHASES = [
    ("control (swap off, 10-bit)", (255, 255, 255)),
    ("10-bit swapped", (0, 0, 255)),
    ("10-bit, engine stopped", (255, 0, 0)),
    ("alpha clip (not swappable)", (0, 255, 0)),
    ("end", (0, 0, 0)),
]


def transcode(src: Path, out: Path, pix_fmt: str, codec: list[str]) -> Path:
    cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(src), *codec, "-pix_fmt", pix_fmt, str(out)]
    subprocess.run(cmd, check=True, timeout=300)
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=pix_fmt",
            "-of",
            "csv=p=0",
            str(out),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == pix_fmt, f"{out}: {probe.stdout!r}"
    return out


@pytest.fixture(scope="module")
def clips(
    identity: Identity, media: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("formats")
    marked = pv.make_marked_clip(media(VIDEO), d / "marked.mp4", identity)
    return {
        "10bit": transcode(marked, d / "marked_10bit.mkv", "yuv420p10le", ["-c:v", "libx264", "-qp", "0"]),
        "alpha": transcode(marked, d / "marked_alpha.mkv", "yuva420p", ["-c:v", "ffv1"]),
    }


@pytest.fixture(scope="module")
def obs(
    obs_installed: None,
    clips: dict[str, Path],
    filter_settings: Callable[..., dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Obs]:
    spec = FilterSpec(FILTER, ASYNC_ID, filter_settings(**SETTINGS))
    config = ObsConfig(media=[MediaSpec(SOURCE, clips["10bit"], [spec])])
    with running_obs(tmp_path_factory.mktemp("obs-formats"), config, budget_s=480) as o:
        wait_state(o, "running", timeout=150)
        pv.add_phase_patch(o, PHASES[0][1])
        yield o


def phase(obs: Obs, k: int) -> None:
    pv.set_phase_patch(obs, PHASES[k][1])


def phase_of(frame: np.ndarray) -> int | None:
    c = frame[pv.PATCH // 2, pv.PATCH // 2].astype(int)
    best = min(range(len(PHASES)), key=lambda k: int(np.abs(c - np.array(PHASES[k][1])).sum()))
    return best if np.abs(c - np.array(PHASES[best][1])).sum() < 120 else None


def frame_format(obs: Obs, name: str, timeout: float = 30) -> dict[str, Any]:
    """Wait until the filter reports frames of format ``name``; returns the stats."""
    return obs.wait_for(
        lambda: (s := obs.stats(FILTER)) and s.get("frame_format") == name and s,
        timeout,
        f"{name} frames reaching the filter (stats: {obs.stats(FILTER)})",
    )


def test_10_bit_and_alpha_clips_never_show_the_real_face(obs: Obs, clips: dict[str, Path]) -> None:
    set_filter(obs, {"timing_mode": "sync", "swap_enabled": False})
    obs.wait_for(lambda: (s := obs.stats(FILTER)) and not s["swap_enabled"], 15, "swap off")
    s = obs.wait_for(lambda: (s := obs.stats(FILTER)) and s.get("frame_format") and s, 15, "a frame format")
    delivered = s["frame_format"]
    print(f"\n  OBS {obs.call('GetVersion')['obsVersion']} hands the filter {delivered} frames for yuv420p10le")
    assert delivered == "I010", f"expected I010 from a yuv420p10le media source, got {delivered}"
    phase(obs, 0)
    settle(1.0)
    obs.call("StartRecord")
    settle(3.0)
    set_filter(obs, {"swap_enabled": True})
    phase(obs, 1)
    swapped = wait_swapping(obs, frames=10, timeout=90)
    assert swapped["format_note"] == "", swapped["format_note"]
    settle(3.0)
    phase(obs, 2)
    pid = int(obs.stats(FILTER)["pid"])  # type: ignore[index]
    os.kill(pid, signal.SIGSTOP)
    try:
        obs.wait_for(lambda: (s := obs.stats(FILTER)) and s["state"] != "running", 10, "the status to notice")
        settle(2.0)
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_swapping(obs, frames=3, timeout=60)
    phase(obs, 3)
    obs.call("SetInputSettings", {"inputName": SOURCE, "inputSettings": {"local_file": str(clips["alpha"])}})
    s = frame_format(obs, "I40A")
    covered0 = s["counters"]["covered"]
    settle(3.0)
    s = obs.stats(FILTER) or {}
    print(f"  alpha clip: {s.get('frame_format')} frames, status: {s.get('format_note')!r}")
    assert s["format_note"] == "format I40A not supported: covered"
    assert s["counters"]["covered"] > covered0 + 10
    phase(obs, 4)
    settle(1.0)
    path = Path(obs.call("StopRecord")["outputPath"])
    obs.wait_for(lambda: not obs.call("GetRecordStatus")["outputActive"], 30, "recording to stop")
    keep = os.environ.get("OBS_FACESWAP_E2E_KEEP")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / "formats.mkv")

    frames = pv.read_video(path)
    assert len(frames) > 60, f"recording {path} has only {len(frames)} frames"
    by_phase: dict[int, list[float]] = {}
    badge: dict[int, int] = {}
    blank: dict[int, int] = {}
    for f in frames:
        k = phase_of(f)
        if k is None or k == len(PHASES) - 1:
            continue
        if f[pv.PATCH + 2 :].mean() < 5:  # the media source shows nothing while it opens a file
            blank[k] = blank.get(k, 0) + 1
            continue
        by_phase.setdefault(k, []).append(pv.marker_response(f))
        badge[k] = badge.get(k, 0) + pv.badge_present(f)
    control = np.array(by_phase.get(0, []))
    assert len(control) >= 15, "too few control frames recorded"
    threshold = 0.35 * float(np.median(control))
    shown = {}
    for k, values in sorted(by_phase.items()):
        n_real = int(sum(v > threshold for v in values))
        shown[PHASES[k][0]] = n_real
        print(
            f"  {PHASES[k][0]:<28} frames {len(values):4d}  real face {n_real:4d}  with badge {badge[k]:4d}"
            f"  blank {blank.get(k, 0)}"
        )
    assert shown[PHASES[0][0]] >= 0.9 * len(control), "the detector misses the real face (control phase)"
    leaks = {name: n for name, n in shown.items() if name != PHASES[0][0] and n}
    assert not leaks, f"frames showing the real face while the swap was on: {leaks} ({path})"
    for k in range(1, len(PHASES) - 1):
        assert len(by_phase.get(k, [])) >= 5, f"too few frames recorded in phase {PHASES[k][0]!r}"
    assert badge[3] == len(by_phase[3]), "covered frames of the alpha clip must carry the disclosure badge"
    assert sum(blank.values()) <= 5, f"blank frames: {blank}"
