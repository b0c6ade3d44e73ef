"""Benchmark: engine-side cost of a frame in OBS's own pixel format, with the real pipeline.

Plain script: ``.venv/bin/python tests/bench/bench_engine_frames.py [--frames N]``.

Compares, per frame (median ms over the clip), two ways of feeding the pipeline a frame that
arrives as I420 / NV12 / YUY2 or 10-bit I010 / P010 (BT.709 limited, like a webcam or media source in OBS):

* ``full``: convert the whole frame to BGR, run the pipeline, convert the changed box back;
* ``lazy``: hand the pipeline a :class:`PlanesFrame`, which converts only a small copy for the
  detector, the landmark crop and the face box, then convert the changed box back.

dfl_Obama_speaking.mp4 scaled to 720p and 1080p, astronaut.png as the source photo.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from obs_faceswap.config import PipelineConfig  # noqa: E402
from obs_faceswap.engine import frames as F  # noqa: E402
from obs_faceswap.models import ModelStore  # noqa: E402
from obs_faceswap.pipeline import Pipeline  # noqa: E402
from obs_faceswap.video_formats import VideoFormat  # noqa: E402

MEDIA = Path(os.environ.get("OBS_FACESWAP_MEDIA") or ROOT.parent / "shared" / "media")
MODELS = Path(os.environ.get("OBS_FACESWAP_MODELS") or ROOT.parent / "shared" / "models")
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
FORMATS = {
    "I420": VideoFormat.I420,
    "NV12": VideoFormat.NV12,
    "YUY2": VideoFormat.YUY2,
    "I010": VideoFormat.I010,
    "P010": VideoFormat.P010,
}


def clip(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(MEDIA / "dfl_Obama_speaking.mp4"))
    out = []
    while len(out) < n:
        ok, f = cap.read()
        if not ok:
            break
        out.append(cv2.resize(f, size, interpolation=cv2.INTER_LINEAR))
    return out


def run(mode: str, fmt: int, frames: list[np.ndarray], color: F.ColorParams) -> float:
    h, w = frames[0].shape[:2]
    bufs = []
    for f in frames:
        fb = F.FrameBuffer.allocate(fmt, w, h)
        F.from_bgr(f, fb.planes, fmt, w, h, color)
        bufs.append(fb)
    pipe = Pipeline(PipelineConfig(), ModelStore(MODELS, allow_download=False), source=MEDIA / "astronaut.png")
    out = np.empty((h, w, 3), np.uint8)
    scratch: dict = {}
    times = []
    for i, fb in enumerate(bufs):
        planes = fb.planes
        t0 = time.perf_counter()
        if mode == "full":
            bgr = F.to_bgr(planes, fmt, w, h, color, out=out, scratch=scratch)
            res, report = pipe.process(bgr, i / 30, inplace=True)
        else:
            res, report = pipe.process(F.PlanesFrame(planes, fmt, w, h, color, out), i / 30)
        if report.changed_xyxy is not None:
            x0, y0, x1, y1 = F.align_roi(fmt, w, h, report.changed_xyxy)
            F.from_bgr(res[y0:y1, x0:x1], planes, fmt, w, h, color, (x0, y0, x1, y1))
        times.append(time.perf_counter() - t0)
    return float(np.median(times[10:]) * 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: " + ", ".join(SIZES))
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated: " + ", ".join(FORMATS))
    args = ap.parse_args()
    color = F.ColorParams.standard("709", full_range=False)
    print(f"{'size':6} {'format':6} {'full ms':>8} {'lazy ms':>8} {'ratio':>6}")
    for name in args.sizes.split(","):
        frames = clip(args.frames, SIZES[name])
        for fname in args.formats.split(","):
            fmt = FORMATS[fname]
            full = run("full", fmt, frames, color)
            lazy = run("lazy", fmt, frames, color)
            print(f"{name:6} {fname:6} {full:8.2f} {lazy:8.2f} {full / lazy:6.2f}x")


if __name__ == "__main__":
    main()
