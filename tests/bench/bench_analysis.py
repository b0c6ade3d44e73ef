"""Benchmark of the face-analysis stages: detectors, meshes and the tracker.

Run: ``python -m tests.bench.bench_analysis [--repeats N] [--warmup N]``. Reports the median
and minimum per stage in milliseconds, with the execution provider used. Not a pass/fail
test: numbers on a shared 2-core machine vary by +-30 %.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"


def _time(fn: Callable[[], object], warmup: int, repeats: int) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples), min(samples)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--models", default=os.environ.get("OBS_FACESWAP_MODELS", SHARED / "models"))
    ap.add_argument("--media", default=os.environ.get("OBS_FACESWAP_MEDIA", SHARED / "media"))
    args = ap.parse_args(argv)

    from obs_faceswap.config import DetectorConfig, LandmarkConfig, TrackingConfig
    from obs_faceswap.models import ModelStore
    from obs_faceswap.nets.detector import create_detector
    from obs_faceswap.nets.landmarks import Roi, create_landmarker
    from obs_faceswap.tracking import FaceTracker

    store = ModelStore(args.models, media_dir=args.media, allow_download=False, progress=False)
    cap = cv2.VideoCapture(str(Path(args.media) / "dfl_Obama_speaking.mp4"))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    frame = frames[0]
    rows: list[tuple[str, float, float]] = []
    provider = "?"

    for kind, size in (("yunet", 320), ("yunet", 640), ("scrfd", 320), ("scrfd", 640), ("blazeface", 128)):
        det = create_detector(DetectorConfig(kind=kind, input_size=size), store)
        provider = det.session.get_providers()[0]
        med, mn = _time(lambda d=det: d.detect(frame), args.warmup, args.repeats)
        rows.append((f"detect {kind} {size}", med, mn))

    dets = create_detector(DetectorConfig(), store).detect(frame)
    for kind in ("mesh468", "mesh478"):
        mesh = create_landmarker(LandmarkConfig(kind=kind), store)
        roi = Roi.from_keypoints(dets.xyxy[0], dets.keypoints[0], mesh.crop_scale)
        med, mn = _time(lambda m=mesh, r=roi: m.infer(frame, r), args.warmup, args.repeats)
        rows.append((f"landmarks {kind} (incl. crop)", med, mn))

    for interval in (1, 10):
        tracker = FaceTracker(
            create_detector(DetectorConfig(), store),
            create_landmarker(LandmarkConfig(), store),
            TrackingConfig(detect_interval=interval),
        )
        samples = []
        for i, f in enumerate(frames):
            t0 = time.perf_counter()
            tracker.update(f)
            if i >= args.warmup:
                samples.append((time.perf_counter() - t0) * 1e3)
        rows.append((f"tracker update, detect every {interval}", statistics.median(samples), min(samples)))

    h, w = frame.shape[:2]
    print(
        f"# face analysis, {w}x{h} frames, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, provider {provider}, median/min of {args.repeats}"
    )
    print(f"{'stage':40s} {'median ms':>10s} {'min ms':>8s}")
    for name, med, mn in rows:
        print(f"{name:40s} {med:10.2f} {mn:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
