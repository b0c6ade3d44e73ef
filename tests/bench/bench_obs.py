"""Benchmark: the Face Swap filter inside real OBS (headless), at 720p and 1080p.

Reports, per resolution:

* the time the filter's callbacks spend on OBS's threads (``filter_video``, ``video_tick``,
  ``video_render``, ``update``): median, 99th percentile and max over a steady-state window
  (target: p99 under 1 ms for the async filter);
* the added delay in each timing mode (synchronised: held frames and ms; lowest latency: 0);
* OBS's rendered and skipped frame counts (``GetStats``) with and without the filter
  (target: no more skipped frames than without it), plus how many frames came back swapped.

Each configuration is one OBS launch: warm up until the engine runs, reset the filter's
counters, measure for ``--seconds``, read ``GetStats`` deltas and the filter's stats file.
The stats file is written after the timed part of ``video_tick``, so it does not count.

    .venv/bin/python -m tests.bench.bench_obs --seconds 20 --sizes 720,1080 --out bench.json

Timings on a shared 2-core VM with software OpenGL are noisy; compare configurations run
in the same invocation, not across machines.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e.obs_harness import (  # noqa: E402
    ASYNC_ID,
    RENDER_ID,
    FilterSpec,
    MediaSpec,
    ObsConfig,
    obs_version,
    running_obs,
    stats_stem,
)

SIZES = {720: (1280, 720), 1080: (1920, 1080)}
FILTER = "Face Swap"


def make_clip(src: Path, size: tuple[int, int], out: Path) -> Path:
    """The test video scaled (and padded) to ``size``, H.264 in I420 like a typical camera file."""
    w, h = size
    vf = f"scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(src),
            "-vf",
            vf,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "18",
            "-pix_fmt",
            "yuv420p",
            "-an",
            str(out),
        ],
        check=True,
        timeout=600,
    )
    return out


def measure(
    workdir: Path,
    clip: Path,
    size: tuple[int, int],
    fps: int,
    seconds: float,
    filt: FilterSpec | None,
    warmup_timeout: float = 180.0,
) -> dict[str, Any]:
    """One OBS launch: steady-state GetStats deltas and the filter's callback timings."""
    media = [MediaSpec("Media", clip, [filt] if filt else [])]
    config = ObsConfig(media=media, width=size[0], height=size[1], fps=fps)
    result: dict[str, Any] = {}
    with running_obs(workdir, config, budget_s=warmup_timeout + seconds + 120) as obs:
        if filt is not None:
            obs.wait_for(
                lambda: (s := obs.stats(filt.name)) and s["state"] == "running", warmup_timeout, "engine running"
            )
            time.sleep(5.0)  # tracking, colour statistics and the automatic hold settle
            (obs.stats_dir / (stats_stem(filt.name) + ".reset")).write_text("")
            obs.wait_for(
                lambda: (s := obs.stats(filt.name)) and s["counters"]["frames"] < fps * 3, 10, "the stats reset"
            )
        else:
            time.sleep(5.0)
        before = obs.call("GetStats")
        time.sleep(seconds)
        after = obs.call("GetStats")
        if filt is not None:
            time.sleep(1.2)  # one more stats write covering the window
            result["filter"] = obs.stats(filt.name)
    for key in ("renderTotalFrames", "renderSkippedFrames", "outputTotalFrames", "outputSkippedFrames"):
        result[key] = after[key] - before[key]
    result["averageFrameRenderTime_ms"] = after["averageFrameRenderTime"]
    result["cpuUsage"] = after["cpuUsage"]
    result["obs_exit_code"] = obs.exit_code
    result["memory_leaks_0"] = "Number of memory leaks: 0" in obs.log_text()
    return result


def micro(size: tuple[int, int], mode: str, frames: int, fps: int, python: str, photo: Path) -> dict[str, Any]:
    """The async filter's own cost per frame with the real engine client, outside OBS.

    libobs is faked (tests/unit/fake_libobs.py); frames are real I420 ``obs_source_frame``
    structs; a real engine process changes a face-sized rectangle of each frame
    (``tests.engine_processors:invert``), so submit copies the whole frame and apply copies
    the changed rows back, as with the face-swap pipeline. Nothing else competes for the GIL
    or the CPU here except the engine process.
    """
    import types

    from obs_faceswap.engine import client as engine_client
    from obs_faceswap.engine import frames as F
    from obs_faceswap.obs import settings as st
    from obs_faceswap.obs import structs
    from obs_faceswap.obs.filters import AsyncFaceSwap
    from obs_faceswap.video_formats import VideoFormat
    from tests.unit.fake_libobs import FakeApi

    w, h = size
    os.environ["OFS_TEST_RECT"] = f"{w * 3 // 8},{h // 4},{w * 5 // 8},{h * 3 // 4}"

    def factory(python: str | None, settings: dict[str, Any], **kw: Any) -> Any:
        return engine_client.EngineClient(python, settings, processor="tests.engine_processors:invert", **kw)

    engine = types.SimpleNamespace(
        EngineClient=factory, FrameView=engine_client.FrameView, SUPPORTED_FORMATS=engine_client.SUPPORTED_FORMATS
    )
    v = st.defaults()
    v.update(engine_python=python, source_photo=str(photo), timing_mode=mode)
    api = FakeApi()
    f = AsyncFaceSwap(api, 0x7000, v, engine_api=engine)
    pool = []
    for k in range(12):
        fb = F.FrameBuffer.allocate(VideoFormat.I420, w, h)
        fb.data[:] = 16 + 8 * k
        s = structs.ObsSourceFrame()
        for i, (a, ls) in enumerate(zip(fb.addresses, fb.linesizes, strict=True)):
            s.data[i], s.linesize[i] = a, ls
        s.width, s.height, s.format, s.refs = w, h, VideoFormat.I420, 2
        pool.append((fb, s))
    try:
        deadline = time.monotonic() + 120
        while f.status()["state"] != "running":
            if time.monotonic() > deadline:
                raise RuntimeError(f"engine not running: {f.status()}")
            f.video_tick(0.0)
            time.sleep(0.02)
        interval = 1.0 / fps
        for n in range(frames + fps):  # the first second is warm-up
            if n == fps:
                f.timers = {k: type(t)() for k, t in f.timers.items()}
                f.counters = type(f.counters)()
            t_next = time.perf_counter() + interval
            f.video_tick(interval)
            fb, s = pool[n % len(pool)]
            s.timestamp = n * int(interval * 1e9)
            s.refs = 2
            f.filter_video(ctypes.addressof(s))
            time.sleep(max(0.0, t_next - time.perf_counter()))
        out = {k: t.summary() for k, t in f.timers.items() if t.count}
        return {"callbacks": out, "counters": f.counters.as_dict(), "delay_frames": f.delay_frames()}
    finally:
        f.filter_remove(api.parent)
        f.destroy()


def summarize(name: str, r: dict[str, Any]) -> str:
    line = (
        f"  {name:<22} rendered {r['renderTotalFrames']:>5}  skipped {r['renderSkippedFrames']:>4}"
        f"  avg render {r['averageFrameRenderTime_ms']:.1f} ms"
    )
    f = r.get("filter")
    if f:
        c = f["counters"]
        cb = {k: v for k, v in f["callbacks"].items() if v["n"]}
        line += (
            f"  | delay {f['delay_frames']} fr / {f['delay_ms']:.0f} ms"
            f"  swapped {c['swapped']}/{c['frames']} late {c['late']} unsubmitted {c['unsubmitted']}"
            f"  engine {f['fps']:.1f} fps {f['latency_ms']:.0f} ms"
        )
        for k, v in cb.items():
            line += (
                f"\n      {k:<13} wall p50 {v['p50_us']:7.1f} p99 {v['p99_us']:8.1f} max {v['max_us']:8.1f} us"
                f" | cpu p50 {v['cpu_p50_us']:7.1f} p99 {v['cpu_p99_us']:7.1f} us"
            )
    return line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window per configuration")
    ap.add_argument("--sizes", default="720,1080", help="comma-separated: 720, 1080")
    ap.add_argument("--fps", type=int, default=30)
    shared = ROOT.parent / "shared"
    ap.add_argument("--media", type=Path, default=Path(os.environ.get("OBS_FACESWAP_MEDIA", shared / "media")))
    ap.add_argument("--models", type=Path, default=Path(os.environ.get("OBS_FACESWAP_MODELS", shared / "models")))
    ap.add_argument("--python", default=sys.executable, help="engine interpreter")
    ap.add_argument("--render", action="store_true", help="also measure 'Face Swap (any source)'")
    ap.add_argument("--out", type=Path, help="write all numbers as JSON here")
    ap.add_argument(
        "--micro-frames",
        type=int,
        default=300,
        help="frames for the outside-OBS measurement of the filter's own cost (0 = skip)",
    )
    ap.add_argument("--no-obs", action="store_true", help="only the outside-OBS measurement")
    args = ap.parse_args(argv)

    video, photo = args.media / "dfl_Obama_speaking.mp4", args.media / "astronaut.png"
    base = {"source_photo": str(photo), "engine_python": args.python, "models_dir": str(args.models)}
    configs: list[tuple[str, FilterSpec | None]] = [
        ("no filter", None),
        ("sync (auto hold)", FilterSpec(FILTER, ASYNC_ID, {**base, "timing_mode": "sync"})),
        ("lowest latency", FilterSpec(FILTER, ASYNC_ID, {**base, "timing_mode": "latency"})),
    ]
    if args.render:
        configs.append(("any source, sync", FilterSpec(FILTER, RENDER_ID, {**base, "timing_mode": "sync"})))
    report: dict[str, Any] = {
        "obs": ".".join(map(str, obs_version())),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "fps": args.fps,
        "seconds": args.seconds,
        "results": {},
    }
    print(
        f"OBS {report['obs']} on {report['machine']} ({report['cpus']} CPUs), {args.fps} fps, "
        f"{args.seconds:.0f} s per configuration"
    )
    with tempfile.TemporaryDirectory(prefix="bench-obs-") as tmp:
        for label in (int(s) for s in args.sizes.split(",")):
            size = SIZES[label]
            print(f"{label}p ({size[0]}x{size[1]}):")
            if args.micro_frames:
                for mode in ("sync", "latency"):
                    m = micro(size, mode, args.micro_frames, args.fps, args.python, photo)
                    report["results"].setdefault(f"{label}p", {})[f"outside OBS, {mode}"] = m
                    print(
                        f"  outside OBS, {mode:<8} (real engine client, face-sized change): "
                        f"swapped {m['counters']['swapped']}/{m['counters']['frames']}"
                    )
                    for k, v in m["callbacks"].items():
                        print(
                            f"      {k:<13} wall p50 {v['p50_us']:7.1f} p99 {v['p99_us']:8.1f} "
                            f"max {v['max_us']:8.1f} us | cpu p50 {v['cpu_p50_us']:7.1f} "
                            f"p99 {v['cpu_p99_us']:7.1f} us",
                            flush=True,
                        )
            if args.no_obs:
                continue
            clip = make_clip(video, size, Path(tmp) / f"clip{label}.mp4")
            for name, filt in configs:
                r = measure(Path(tmp) / f"{label}-{name.replace(' ', '_')}", clip, size, args.fps, args.seconds, filt)
                report["results"].setdefault(f"{label}p", {})[name] = r
                print(summarize(name, r), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
