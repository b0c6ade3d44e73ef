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


@dataclass(frozen=True)
class MediaSource:
    """A media source (``ffmpeg_source``) of a scene collection and its filters (OBS's JSON)."""

    name: str
    path: Path
    filters: list[dict[str, Any]]
    looping: bool = True


def filter_json(kind: str, name: str, settings: dict[str, Any], enabled: bool = True) -> dict[str, Any]:
    """A filter saved in a scene collection (OBS creates it when the collection loads)."""
    return {"id": kind, "versioned_id": kind, "name": name, "enabled": enabled, "settings": settings}


def scene_collection(
    name: str,
    media: list[MediaSource],
    scripts: list[tuple[Path, dict[str, Any]]],
    bounds_wh: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """An OBS 28+ scene collection: one scene holding the media sources at its top-left corner
    (scaled to fit ``bounds_wh`` when given), and the scripts OBS loads with it."""
    bounds_type, bounds = (
        (2, {"x": float(bounds_wh[0]), "y": float(bounds_wh[1])}) if bounds_wh else (0, {"x": 0.0, "y": 0.0})
    )
    items = [
        {
            "name": m.name,
            "id": i,
            "visible": True,
            "locked": False,
            "rot": 0.0,
            "pos": {"x": 0.0, "y": 0.0},
            "scale": {"x": 1.0, "y": 1.0},
            "align": 5,
            "bounds_type": bounds_type,
            "bounds_align": 0,
            "bounds": bounds,
            "crop_left": 0,
            "crop_top": 0,
            "crop_right": 0,
            "crop_bottom": 0,
            "scale_filter": "disable",
            "blend_method": "default",
            "blend_type": "normal",
            "private_settings": {},
        }
        for i, m in enumerate(media, start=1)
    ]
    scene = {
        "id": "scene",
        "versioned_id": "scene",
        "name": "Scene",
        "enabled": True,
        "flags": 0,
        "mixers": 0,
        "filters": [],
        "hotkeys": {},
        "settings": {"id_counter": len(items), "custom_size": False, "items": items},
    }
    sources = [
        {
            "id": "ffmpeg_source",
            "versioned_id": "ffmpeg_source",
            "name": m.name,
            "enabled": True,
            "flags": 0,
            "mixers": 255,
            "muted": True,
            "volume": 1.0,
            "hotkeys": {},
            "filters": m.filters,
            "settings": {
                "local_file": str(m.path),
                "is_local_file": True,
                "looping": m.looping,
                "restart_on_activate": False,
                "close_when_inactive": False,
                "hw_decode": False,
                "clear_on_media_end": False,
            },
        }
        for m in media
    ]
    return {
        "name": name,
        "current_scene": "Scene",
        "current_program_scene": "Scene",
        "scene_order": [{"name": "Scene"}],
        "sources": [scene, *sources],
        "groups": [],
        "transitions": [],
        "current_transition": "Fade",
        "transition_duration": 300,
        "quick_transitions": [],
        "preview_locked": False,
        "scaling_enabled": False,
        "modules": {"scripts-tool": [{"path": str(p), "settings": s} for p, s in scripts]},
    }


def global_ini(*, version: int, profile: str, collection: str, collection_file: str, websocket_port: int | None) -> str:
    """OBS's global settings for a throw-away configuration: no first-run wizard, no prompts,
    obs-websocket on ``websocket_port`` without authentication (off when ``None``)."""
    websocket = (
        f"ServerEnabled=true\nServerPort={websocket_port}\nAlertsEnabled=false\nAuthRequired=false\nServerPassword=x\n"
        if websocket_port is not None
        else "ServerEnabled=false\n"
    )
    return (
        f"[General]\nFirstRun=true\nLastVersion={version}\n"
        "ConfirmOnExit=false\nEnableAutoUpdates=false\nWarnBeforeStartingRecord=false\nWarnBeforeStoppingRecord=false\n"
        f"[Basic]\nProfile={profile}\nProfileDir={profile}\nSceneCollection={collection}\n"
        f"SceneCollectionFile={collection_file}\nConfigOnNewProfile=false\n"
        "[BasicWindow]\nSysTrayEnabled=false\nSysTrayWhenStarted=false\n"
        f"[OBSWebSocket]\nFirstLoad=false\n{websocket}"
    )


def profile_ini(*, name: str, width: int, height: int, fps: int, recordings: Path, video_kbps: int) -> str:
    """An OBS profile: the canvas and output size, frame rate, and simple-mode x264 recording to mkv."""
    return (
        f"[General]\nName={name}\n"
        f"[Video]\nBaseCX={width}\nBaseCY={height}\nOutputCX={width}\nOutputCY={height}\n"
        f"FPSType=1\nFPSInt={fps}\nFPSCommon={fps}\nScaleType=bilinear\nColorFormat=NV12\nColorSpace=709\n"
        "ColorRange=Partial\n[Output]\nMode=Simple\n"
        f"[SimpleOutput]\nFilePath={recordings}\nRecFormat=mkv\nRecFormat2=mkv\nRecEncoder=x264\n"
        f"RecQuality=Stream\nVBitrate={video_kbps}\nStreamEncoder=x264\nPreset=veryfast\nFileNameWithoutSpace=true\n"
        "[Audio]\nSampleRate=48000\nChannelSetup=Stereo\n"
    )


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
    ini = global_ini(
        version=_version_number(version),
        profile="Demo",
        collection="obs-faceswap demo",
        collection_file="demo",
        websocket_port=None,
    )
    (base / "global.ini").write_text(ini, encoding="utf-8")
    (base / "user.ini").write_text(ini, encoding="utf-8")  # OBS 31+ reads the user's settings here
    (base / "basic" / "profiles" / "Demo" / "basic.ini").write_text(
        profile_ini(name="Demo", width=width, height=height, fps=30, recordings=recordings, video_kbps=4000),
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
    source = MediaSource(SOURCE_NAME, clip, [filter_json(FILTER_ID, FILTER_NAME, settings)])
    coll = scene_collection("obs-faceswap demo", [source], scripts, bounds_wh=(width, height))
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
