"""``obs-faceswap obs-demo``: OBS Studio with a ready scene — the sample clip with Face Swap on it.

The demo gets its own OBS configuration (a profile, a scene collection holding a looping media
source with the "Face Swap" filter, and the script) in ``DIR/config``, and starts OBS with
``XDG_CONFIG_HOME`` pointing there, so the user's own OBS settings are never touched.

* With a display: OBS opens in a window; close it when done.
* Without one (or with ``--headless``): OBS runs under Xvfb, records ``--seconds`` of the
  program output to ``DIR/recordings/*.mkv``, grabs a screenshot of its window, and quits.

Linux only for now (Windows and macOS: ``obs-faceswap install-obs`` and add the filter by hand).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obs_faceswap.errors import ConfigError, FaceSwapError
from obs_faceswap.install_obs import SCRIPT_FILE, find_executable, obs_version
from obs_faceswap.models import ModelStore

STOPPER = Path(__file__).resolve().parent / "obs_demo_stopper.py"
SOURCE_NAME = "Sample clip"
FILTER_NAME = "Face Swap"
FILTER_ID = "obs_faceswap_filter"  # the async-source filter (media sources are async)


@dataclass(frozen=True)
class DemoResult:
    """What the demo left behind (headless runs)."""

    recording: Path | None
    screenshot: Path | None
    swapped_frames: int | None
    obs_exit: int
    properties_screenshot: Path | None = None


def _version_number(version: str | None) -> int:
    parts = [int(p) for p in (version or "29.0.0").split(".")[:3]]
    major, minor, patch = (parts + [0, 0, 0])[:3]
    return (major << 24) | (minor << 16) | patch


def demo_models_dir(store: ModelStore, target: Path) -> Path:
    """One directory with every default model (links to the verified files), for the filter's setting."""
    target.mkdir(parents=True, exist_ok=True)
    for name, e in store.entries.items():
        if e.kind == "models" and e.get("default"):
            src = store.path(name)
            link = target / e.file
            if link.is_symlink() or link.exists():
                link.unlink()
            try:
                link.symlink_to(src)
            except OSError:
                shutil.copy2(src, link)
    return target


def scene_collection(
    clip: Path, filter_settings: dict[str, Any], scripts: list[tuple[Path, dict[str, Any]]], width: int, height: int
) -> dict[str, Any]:
    """An OBS 28+ scene collection: one scene, the looping clip scaled to the canvas, Face Swap on it."""
    item = {
        "name": SOURCE_NAME,
        "id": 1,
        "visible": True,
        "locked": False,
        "rot": 0.0,
        "pos": {"x": 0.0, "y": 0.0},
        "scale": {"x": 1.0, "y": 1.0},
        "align": 5,
        "bounds_type": 2,
        "bounds_align": 0,
        "bounds": {"x": float(width), "y": float(height)},
        "crop_left": 0,
        "crop_top": 0,
        "crop_right": 0,
        "crop_bottom": 0,
        "scale_filter": "disable",
        "blend_method": "default",
        "blend_type": "normal",
        "private_settings": {},
    }
    scene = {
        "id": "scene",
        "versioned_id": "scene",
        "name": "Scene",
        "enabled": True,
        "flags": 0,
        "mixers": 0,
        "filters": [],
        "hotkeys": {},
        "settings": {"id_counter": 1, "custom_size": False, "items": [item]},
    }
    media = {
        "id": "ffmpeg_source",
        "versioned_id": "ffmpeg_source",
        "name": SOURCE_NAME,
        "enabled": True,
        "flags": 0,
        "mixers": 255,
        "muted": True,
        "volume": 1.0,
        "hotkeys": {},
        "filters": [
            {
                "id": FILTER_ID,
                "versioned_id": FILTER_ID,
                "name": FILTER_NAME,
                "enabled": True,
                "settings": filter_settings,
            }
        ],
        "settings": {
            "local_file": str(clip),
            "is_local_file": True,
            "looping": True,
            "restart_on_activate": False,
            "close_when_inactive": False,
            "hw_decode": False,
            "clear_on_media_end": False,
        },
    }
    return {
        "name": "obs-faceswap demo",
        "current_scene": "Scene",
        "current_program_scene": "Scene",
        "scene_order": [{"name": "Scene"}],
        "sources": [scene, media],
        "groups": [],
        "transitions": [],
        "current_transition": "Fade",
        "transition_duration": 300,
        "quick_transitions": [],
        "preview_locked": False,
        "scaling_enabled": False,
        "modules": {"scripts-tool": [{"path": str(p), "settings": s} for p, s in scripts]},
    }


def write_config(
    out: Path, store: ModelStore, *, seconds: int, headless: bool, python: str, width: int = 1280, height: int = 720
) -> Path:
    """Write the demo's OBS configuration under ``out/config``; returns the XDG_CONFIG_HOME to use."""
    clip, photo = store.path("obama"), store.path("astronaut")
    models = demo_models_dir(store, out / "models")
    xdg = out / "config"
    base = xdg / "obs-studio"
    if base.exists():
        shutil.rmtree(base)
    (base / "basic" / "profiles" / "Demo").mkdir(parents=True)
    (base / "basic" / "scenes").mkdir(parents=True)
    recordings = out / "recordings"
    recordings.mkdir(parents=True, exist_ok=True)
    found = find_executable()
    version = obs_version(*found) if found else None
    ini = (
        "[General]\nFirstRun=true\n"
        f"LastVersion={_version_number(version)}\n"
        "ConfirmOnExit=false\nEnableAutoUpdates=false\nWarnBeforeStartingRecord=false\nWarnBeforeStoppingRecord=false\n"
        "[Basic]\nProfile=Demo\nProfileDir=Demo\nSceneCollection=obs-faceswap demo\nSceneCollectionFile=demo\n"
        "ConfigOnNewProfile=false\n"
        "[BasicWindow]\nSysTrayEnabled=false\nSysTrayWhenStarted=false\n"
        "[OBSWebSocket]\nFirstLoad=false\nServerEnabled=false\n"
    )
    (base / "global.ini").write_text(ini, encoding="utf-8")
    (base / "user.ini").write_text(ini, encoding="utf-8")  # OBS 31+ reads the user's settings here
    (base / "basic" / "profiles" / "Demo" / "basic.ini").write_text(
        "[General]\nName=Demo\n"
        f"[Video]\nBaseCX={width}\nBaseCY={height}\nOutputCX={width}\nOutputCY={height}\n"
        "FPSType=1\nFPSInt=30\nFPSCommon=30\nScaleType=bilinear\nColorFormat=NV12\nColorSpace=709\n"
        "ColorRange=Partial\n[Output]\nMode=Simple\n"
        f"[SimpleOutput]\nFilePath={recordings}\nRecFormat=mkv\nRecFormat2=mkv\nRecEncoder=x264\n"
        "RecQuality=Stream\nVBitrate=4000\nStreamEncoder=x264\nPreset=veryfast\nFileNameWithoutSpace=true\n"
        "[Audio]\nSampleRate=48000\nChannelSetup=Stereo\n",
        encoding="utf-8",
    )
    settings = {"source_photo": str(photo), "engine_python": python, "models_dir": str(models), "timing_mode": "sync"}
    scripts: list[tuple[Path, dict[str, Any]]] = [(SCRIPT_FILE, {})]
    if headless:
        scripts.append(
            (
                STOPPER,
                {
                    "max_seconds": seconds + 180,
                    "source": SOURCE_NAME,
                    "show_filters_when": str(out / "show_filters"),
                    "stop_when": str(out / "stop"),
                },
            )
        )
    coll = scene_collection(clip, settings, scripts, width, height)
    (base / "basic" / "scenes" / "demo.json").write_text(json.dumps(coll, indent=4), encoding="utf-8")
    return xdg


def _start_xvfb(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    xvfb = shutil.which("Xvfb")
    if not xvfb:
        raise ConfigError(
            "no display and no Xvfb: install it (Debian/Ubuntu: apt-get install -y xvfb) or run obs-demo on a desktop"
        )
    r, w = os.pipe()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [xvfb, "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            pass_fds=(w,),
            stdout=subprocess.DEVNULL,
            stderr=out,
            start_new_session=True,
        )
    os.close(w)
    buf = b""
    deadline = time.monotonic() + 30
    try:
        while not buf.endswith(b"\n"):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise ConfigError(f"Xvfb did not start (see {log})")
            buf += os.read(r, 64)
    finally:
        os.close(r)
    return proc, ":" + buf.decode().strip()


def _obs_env(xdg: Path, display: str | None, stats: Path) -> dict[str, str]:
    # OpenCV's Qt variables and the venv's Python ones would break OBS's own Qt and Python.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "QT_"))}
    env.update(XDG_CONFIG_HOME=str(xdg), OBS_FACESWAP_STATS_DIR=str(stats))
    if display is not None:
        env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", LIBGL_ALWAYS_SOFTWARE="1")
    return env


def run(
    store: ModelStore, out: Path, *, seconds: int = 10, headless: bool | None = None, python: str = sys.executable
) -> DemoResult:
    """Start OBS with the demo scene (see the module docstring).

    Raises:
        ConfigError: OBS (or Xvfb, headless) is not installed, or this platform is not supported.
        ModelNotFoundError, DownloadError: a model or the sample media cannot be obtained.
    """
    if not sys.platform.startswith("linux"):
        raise ConfigError(
            "obs-demo runs on Linux only for now; elsewhere run `obs-faceswap install-obs`, open "
            "OBS and add Face Swap to a source (Filters → +)"
        )
    found = find_executable()
    if found is None or found[0] != "linux":
        raise ConfigError("OBS Studio not found on PATH: install it (Debian/Ubuntu: apt-get install -y obs-studio)")
    obs = found[1]
    if headless is None:
        headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    out = out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    xdg = write_config(out, store, seconds=seconds, headless=headless, python=python)
    stats = out / "stats"
    stats.mkdir(exist_ok=True)
    cmd = [str(obs), "--multi", "--collection", "obs-faceswap demo", "--profile", "Demo", "--scene", "Scene"]
    if not headless:
        print(f"starting OBS with the demo scene (its configuration is in {xdg}); close OBS when done")
        return DemoResult(None, None, None, subprocess.run(cmd, env=_obs_env(xdg, None, stats), check=False).returncode)
    xvfb, display = _start_xvfb(out / "xvfb.log")
    shot, props = out / "obs_window.png", out / "obs_filter_properties.png"
    for f in ("show_filters", "stop"):
        (out / f).unlink(missing_ok=True)
    try:
        with open(out / "obs.log", "wb") as log:
            proc = subprocess.Popen(
                [*cmd, "--startrecording"],
                env=_obs_env(xdg, display, stats),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=out,
            )
        try:
            started = time.monotonic()
            _grab_when_swapping(display, stats, shot, timeout=120)
            (out / "show_filters").touch()  # the stopper script opens the Filters dialog
            time.sleep(3.0)
            _grab(display, props)
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
            (out / "stop").touch()  # stop recording, then quit
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(timeout=10)
    finally:
        xvfb.kill()
        xvfb.wait(timeout=10)
    recs = sorted((out / "recordings").glob("*.mkv"), key=lambda p: p.stat().st_mtime)
    return DemoResult(
        recs[-1] if recs else None,
        shot if shot.is_file() else None,
        _swapped(stats),
        code,
        props if props.is_file() else None,
    )


def _swapped(stats: Path) -> int | None:
    try:
        data = json.loads((stats / "Face_Swap.json").read_text(encoding="utf-8"))
        return int(data["counters"]["swapped"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _grab_when_swapping(display: str, stats: Path, shot: Path, timeout: float) -> None:
    """A screenshot of OBS's window once the filter has swapped a few frames."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (_swapped(stats) or 0) < 15:
        time.sleep(0.5)
    _grab(display, shot)


def _grab(display: str, shot: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if not ffmpeg:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run(
        [
            ffmpeg,
            "-loglevel",
            "error",
            "-y",
            "-f",
            "x11grab",
            "-video_size",
            "1280x800",
            "-i",
            display,
            "-frames:v",
            "1",
            str(shot),
        ],
        check=False,
        timeout=60,
        capture_output=True,
    )


def main_run(store: ModelStore, out: Path, seconds: int, headless: bool | None) -> int:
    """The CLI's body: run and report."""
    try:
        result = run(store, out, seconds=seconds, headless=headless)
    except FaceSwapError:
        raise
    if result.recording is None and result.screenshot is None:
        return result.obs_exit
    print(f"OBS exited with {result.obs_exit}")
    if result.swapped_frames is not None:
        print(f"Face Swap swapped {result.swapped_frames} frames")
    if result.recording:
        print(f"recording:  {result.recording}")
    if result.screenshot:
        print(f"screenshot: {result.screenshot}")
    if result.properties_screenshot:
        print(f"screenshot: {result.properties_screenshot}")
    return 0 if result.recording and result.swapped_frames else 2
