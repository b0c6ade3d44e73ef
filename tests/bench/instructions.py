"""Benchmark: CPU instructions per frame of the whole pipeline, compared across git revisions.

Plain script, not a test::

    python -m tests.bench.instructions [--frames 30] [--size 720p] [REV ...]

Wall-clock FPS on a shared VM swings by ±15 % between minutes for the same code (and by 2-3x
between days), which hides the few per cent one optimisation gains. Instructions counted by
valgrind's callgrind do not: the same code gives the same count to about 0.03 %. Each
revision (default: ``HEAD`` and the working tree) is exported to a temporary directory and
run under ``valgrind --tool=callgrind --instr-atstart=no``: models load, the source photo is
set up and ten warm-up frames run uninstrumented (fast), then instrumentation is switched on
(``callgrind_control -i on``) for ``--frames`` frames of the Obama clip at the given size,
the same frames for every revision, the models on onnxruntime (``auto`` picks OpenCV's DNN
or onnxruntime by a timing, which would make the count differ between runs). Needs
``valgrind`` (``apt-get install valgrind``); revisions run two at a time (about 5 minutes
each here).

Instructions are a proxy: fewer is faster for the same memory traffic, and it is how a change
is judged here before the noisy ``obs-faceswap bench`` confirms it in alternating runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKTREE = "worktree"
PACKAGE = ("obs_faceswap", "models")  # the package and its manifest

# Runs inside valgrind, from the exported revision's directory (argv: root, frames, size).
CHILD = r"""
import os, subprocess, sys
root, frames, size = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# the revision's own package, not the editable install's
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, root)
import obs_faceswap
assert obs_faceswap.__file__.startswith(root), obs_faceswap.__file__
from obs_faceswap.bench import SIZES, load_clip, ping_pong, scale_cover
from obs_faceswap.config import PipelineConfig, RuntimeConfig
from obs_faceswap.models import ModelStore
from obs_faceswap.pipeline import Pipeline
warm = 10
store = ModelStore(os.environ.get("OBS_FACESWAP_MODELS"), media_dir=os.environ.get("OBS_FACESWAP_MEDIA"))
clip, fps = load_clip(str(store.path("obama")), warm + frames)
w, h = SIZES[size]
images = [scale_cover(clip[i], w, h) for i in ping_pong(len(clip), warm + frames)]
def instrument(flag):
    cmd = ["callgrind_control", "-i", flag, str(os.getpid())]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, timeout=120, check=True)
# one backend for the models: "auto" picks by a timing, which differs from run to run
config = PipelineConfig(runtime=RuntimeConfig(cpu_backend="onnxruntime"))
with Pipeline(config, store) as pipe:
    pipe.set_source(store.path("astronaut"))
    for k in range(warm):
        pipe.process(images[k], k / fps, inplace=True)
    instrument("on")
    for k in range(warm, warm + frames):
        pipe.process(images[k], k / fps, inplace=True)
    instrument("off")
"""


def export(rev: str, into: Path) -> Path:
    """The revision's files in ``into`` (the working tree as it is for :data:`WORKTREE`)."""
    into.mkdir(parents=True)
    if rev == WORKTREE:
        for d in PACKAGE:
            shutil.copytree(ROOT / d, into / d, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, *PACKAGE], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def count(root: Path, frames: int, size: str) -> int:
    """Instructions callgrind collected over the instrumented frames."""
    child = root / "child.py"
    child.write_text(CHILD)
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={root / 'callgrind.out'}",
            sys.executable,
            str(child),
            str(root),
            str(frames),
            size,
        ],
        capture_output=True,
        text=True,
    )
    m = re.search(r"Collected\s*:\s*([\d,]+)", out.stderr)
    if out.returncode != 0 or m is None:
        raise RuntimeError(f"callgrind run in {root} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return int(m.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("revs", nargs="*", default=["HEAD", WORKTREE], help=f"git revisions, or {WORKTREE!r}")
    ap.add_argument("--frames", type=int, default=30, help="instrumented frames (default 30)")
    ap.add_argument("--size", default="720p", help="frame size name (default 720p)")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("needs valgrind: apt-get install valgrind", file=sys.stderr)
        return 2
    shared = ROOT.parent / "shared"
    os.environ.setdefault("OBS_FACESWAP_MODELS", str(shared / "models"))
    os.environ.setdefault("OBS_FACESWAP_MEDIA", str(shared / "media"))
    with tempfile.TemporaryDirectory(prefix="obs-faceswap-instr-") as tmp:
        roots = [export(rev, Path(tmp) / f"r{i}") for i, rev in enumerate(args.revs)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = list(pool.map(lambda r: count(r, args.frames, args.size), roots))
    base = counts[0]
    print(f"{'revision':<24} {'instructions':>15} {'per frame':>13} {'vs first':>9}")
    for rev, n in zip(args.revs, counts, strict=True):
        print(f"{rev:<24} {n:>15,} {n / args.frames:>13,.0f} {n / base:>9.3f}")
    print(f"{args.frames} frames at {args.size} (Obama clip, astronaut.png, default settings), after 10 warm-up frames")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
