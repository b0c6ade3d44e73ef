"""Soak: real OBS with "Face Swap" swapping for a long time; memory slopes of OBS and engine.

Not a test (it runs for an hour by default). Samples the resident memory (VmRSS) of the OBS
process and of its engine process every ``--interval`` seconds, ignores the first
``--warmup`` minutes (models load, caches fill), and prints the least-squares slope of each in
MB/min. The issue's goal: under 0.1 MB/min attributable to the filter.

    .venv/bin/python -m tests.bench.soak_obs --minutes 60
    .venv/bin/python -m tests.bench.soak_obs --minutes 3 --warmup 0.5 --interval 5   # a quick look
    .venv/bin/python -m tests.bench.soak_obs --minutes 60 --control   # the same OBS without the filter

``--control`` plays the same clip in the same OBS without the filter: OBS's own slope, to
subtract (run it side by side with a soak, so both see the same machine).

Needs OBS_FACESWAP_MODELS / OBS_FACESWAP_MEDIA like the tests. Figures on a loaded machine are
noisy; a slope over a few minutes says little about an hour.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e.obs_harness import ASYNC_ID, RENDER_ID, FilterSpec, MediaSpec, ObsConfig, running_obs  # noqa: E402

FILTER = "Face Swap"


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (MB per minute) of ``(seconds, MB)`` points."""
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    return 60.0 * sum((t - mx) * (v - my) for t, v in points) / den if den else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=3.0, help="minutes ignored at the start")
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--kind", choices=("async", "render"), default="async")
    ap.add_argument("--mode", choices=("sync", "latency"), default="sync")
    ap.add_argument("--control", action="store_true", help="no filter: OBS's own memory slope")
    args = ap.parse_args(argv)
    models = os.environ.get("OBS_FACESWAP_MODELS")
    media = Path(os.environ.get("OBS_FACESWAP_MEDIA", ROOT.parent / "shared" / "media"))
    settings = {
        "source_photo": str(media / "astronaut.png"),
        "engine_python": sys.executable,
        "models_dir": models or "",
        "timing_mode": args.mode,
    }
    kind = ASYNC_ID if args.kind == "async" else RENDER_ID
    clip = media / "dfl_Obama_speaking.mp4"
    filters = [] if args.control else [FilterSpec(FILTER, kind, settings)]
    config = ObsConfig(media=[MediaSpec("Media", clip, filters)])
    with (
        tempfile.TemporaryDirectory(prefix="soak-obs-") as tmp,
        running_obs(Path(tmp), config, budget_s=args.minutes * 60 + 600) as obs,
    ):
        if not args.control:
            obs.wait_for(lambda: (s := obs.stats(FILTER)) and s["state"] == "running", 180, "the engine running")
        assert obs.proc is not None
        start = time.monotonic()
        end = start + args.minutes * 60
        obs_pts: list[tuple[float, float]] = []
        eng_pts: list[tuple[float, float]] = []
        engine_pids: set[int] = set()
        delays: set[object] = set()
        while time.monotonic() < end:
            t = time.monotonic() - start
            o = rss_mb(obs.proc.pid)
            pids = obs.engine_pids()
            engine_pids.update(pids)
            e = sum(v for p in pids if (v := rss_mb(p)) is not None) if pids else None
            s = {} if args.control else obs.stats(FILTER) or {}
            delays.add(s.get("delay_frames"))
            c = s.get("counters", {})
            print(
                f"t={t / 60:6.2f} min  OBS {o or 0:8.1f} MB  engine {e or 0:8.1f} MB  state {s.get('state')}  "
                f"swapped {c.get('swapped')} covered {c.get('covered')} late {c.get('late')} "
                f"delay {s.get('delay_frames')} frames restarts {s.get('restarts')}",
                flush=True,
            )
            if t >= args.warmup * 60:
                if o is not None:
                    obs_pts.append((t, o))
                if e is not None:
                    eng_pts.append((t, e))
            time.sleep(args.interval)
        print(
            f"\nsoak {args.minutes:g} min ({'control, no filter' if args.control else f'{args.kind}, {args.mode}'}), "
            f"{len(obs_pts)} samples after "
            f"{args.warmup:g} min warm-up, {len(engine_pids)} engine process(es):"
        )
        print(f"  OBS    memory slope {slope(obs_pts):+.3f} MB/min")
        print(f"  engine memory slope {slope(eng_pts):+.3f} MB/min")
        print(f"  synchronised delays seen (frames): {sorted(d for d in delays if d is not None)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
