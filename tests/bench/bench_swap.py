"""Benchmark: the default photo swapper's per-frame parts and the blend modes.

Plain script, not a test: ``.venv/bin/python tests/bench/bench_swap.py [--frames N]``.

astronaut.png is the source; frames of dfl_Obama_speaking.mp4 are scaled to 720p and 1080p
widths (face about 370 / 550 px wide, as in docs/performance-facts.md) with their landmarks
scaled alike, so only the swapper and the merge are timed. Printed per frame (median / p99,
ms): ``render`` (draw order + rasterise + one BGRA remap), ``mask``, ``swap`` (everything
``PhotoSwapper.swap`` does, including the colour update every ``color.interval`` frames),
``colour update`` (one texture re-colouring, alone) and ``paste`` per blend mode. Timings on
a shared 2-core VM are noisy (±30 %).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from obs_faceswap.config import BlendConfig  # noqa: E402
from obs_faceswap.geometry import load_canonical_face  # noqa: E402
from obs_faceswap.merge import paste_back  # noqa: E402
from obs_faceswap.models import ModelStore  # noqa: E402
from obs_faceswap.nets.detector import YuNet  # noqa: E402
from obs_faceswap.nets.landmarks import FaceMesh, Roi  # noqa: E402
from obs_faceswap.sources import analyse_source  # noqa: E402
from obs_faceswap.swap import raster  # noqa: E402
from obs_faceswap.swap.meshwarp import PhotoSwapper  # noqa: E402
from obs_faceswap.types import Face  # noqa: E402

MEDIA = Path(os.environ.get("OBS_FACESWAP_MEDIA") or ROOT.parent / "shared" / "media")
MODELS = Path(os.environ.get("OBS_FACESWAP_MODELS") or ROOT.parent / "shared" / "models")
WIDTHS = {"native": 512, "720p": 1280, "1080p": 1920}


def stats(values: list[float]) -> str:
    a = np.array(values) * 1e3
    return f"{np.median(a):7.2f}  {np.percentile(a, 99):7.2f}"


def clip_faces(store: ModelStore, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    det, mesh = YuNet(store.path("yunet")), FaceMesh(store.path("mesh468"))
    cap = cv2.VideoCapture(str(MEDIA / "dfl_Obama_speaking.mp4"))
    out = []
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            break
        d = det.detect(frame)
        if len(d) == 0:
            continue
        lm, _ = mesh.infer(frame, Roi.from_keypoints(d.xyxy[0], d.keypoints[0]))
        lm, _ = mesh.infer(frame, Roi.from_landmarks(lm))
        out.append((frame, lm))
    cap.release()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    store = ModelStore(MODELS, media_dir=MEDIA, allow_download=False, progress=False)
    canonical = load_canonical_face(str(store.path("canonical_face")))
    photo = cv2.imread(str(MEDIA / "astronaut.png"))
    t = time.perf_counter()
    det, mesh = YuNet(store.path("yunet")), FaceMesh(store.path("mesh468"))
    slm = analyse_source(photo, det, mesh).landmarks
    swapper = PhotoSwapper.from_photo(photo, slm, canonical)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"source prepared (detect, mesh, unwrap, incl. JIT/cache load) in "
        f"{time.perf_counter() - t:.2f} s"
    )
    t = time.perf_counter()
    PhotoSwapper.from_photo(photo, slm, canonical)
    print(f"unwrap alone: {1e3 * (time.perf_counter() - t):.0f} ms")
    clip = clip_faces(store, args.frames)
    print(f"{'':8s} {'part':16s} {'median':>7s}  {'p99':>7s}   (ms)")
    for name, width in WIDTHS.items():
        s = width / clip[0][0].shape[1]
        frames = [(cv2.resize(f, None, fx=s, fy=s), lm * s) for f, lm in clip]
        t_render, t_mask, t_swap, t_colour = [], [], [], []
        t_paste: dict[str, list[float]] = {m: [] for m in ("feather", "seamless", "multiband")}
        swapper.reset()
        for frame, lm in frames:
            face = Face(0, lm)
            t0 = time.perf_counter()
            r = swapper.swap(frame, face)
            t_swap.append(time.perf_counter() - t0)
            assert r is not None
            for mode, acc in t_paste.items():
                out = frame.copy()
                t0 = time.perf_counter()
                paste_back(out, r, BlendConfig(mode=mode))
                acc.append(time.perf_counter() - t0)
            # The parts, on the same geometry as swap() uses.
            x0, y0 = r.transform[:, 2].astype(int)
            h, w = r.mask.shape
            dst = lm[:, :2] - np.array([x0, y0], np.float32)
            tex = swapper._tracks[0].texture
            t0 = time.perf_counter()
            order, _ = raster.draw_order(dst, lm[:, 2], canonical.triangles, swapper._uv_sign, ~swapper._mouth)
            mx, my, _ = raster.rasterise(dst, swapper._uv_px, canonical.triangles, (w, h), order)
            rendered = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            t1 = time.perf_counter()
            swapper._mask(np.ascontiguousarray(rendered[..., 3]), dst, float(w))
            t2 = time.perf_counter()
            t_render.append(t1 - t0)
            t_mask.append(t2 - t1)
        for frame, lm in frames[:10]:
            swapper._tracks[0].age = 0
            t0 = time.perf_counter()
            swapper._texture_for(swapper._track(0), frame, lm)
            t_colour.append(time.perf_counter() - t0)
        face_w = np.ptp(frames[0][1][:, 0])
        label = f"{name} {frames[0][0].shape[1]}x{frames[0][0].shape[0]}, face {face_w:.0f} px"
        print(label)
        print(f"{'':8s} {'render':16s} {stats(t_render)}")
        print(f"{'':8s} {'mask':16s} {stats(t_mask)}")
        print(f"{'':8s} {'swap (all)':16s} {stats(t_swap)}")
        print(f"{'':8s} {'colour update':16s} {stats(t_colour)}   every color.interval frames")
        for mode, acc in t_paste.items():
            print(f"{'':8s} {'paste ' + mode:16s} {stats(acc)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
