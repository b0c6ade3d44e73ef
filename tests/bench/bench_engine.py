"""Benchmark: what the OBS-side engine client costs per frame, and the round trip.

Plain script, not a test: ``.venv/bin/python tests/bench/bench_engine.py [--frames N]``.

For 720p and 1080p I420 frames (a real photo, BT.709 limited) it drives a real engine process
with a trivial processor (inverts a face-sized box, so the changed region is realistic) at
30 fps, the way the OBS filter does in each timing mode, and prints per call (median / p99):

* ``submit``  -- copy the planes into shared memory + header + one pipe write;
* ``apply``   -- copy the changed region back: *same frame* (synchronised mode: whole rows,
  one memmove per plane) and *newer frame* (lowest-latency mode: one copy per row of the box);
* ``ready`` and ``poll`` -- the per-tick checks;
* round trip -- submit → result visible to ``ready`` (includes the engine's conversions);

plus the engine-side conversions (whole frame → BGR, box → I420) measured in this process, and
the cost of one ``ctypes.memmove`` call here. Timings on a shared 2-core VM are noisy.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from obs_faceswap.engine import frames as F  # noqa: E402
from obs_faceswap.engine.client import EngineClient, FrameView  # noqa: E402
from obs_faceswap.video_formats import VideoFormat  # noqa: E402

MEDIA = Path(os.environ.get("OBS_FACESWAP_MEDIA") or ROOT.parent / "shared" / "media")
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
FPS = 30.0


def face_box(w: int, h: int) -> tuple[int, int, int, int]:
    """A face-sized changed region (≈ 29 % of the width, as in performance-facts.md)."""
    s = int(0.29 * w)
    x0, y0 = (w - s) // 2 + 1, (h - s) // 2 + 1
    return x0, y0, x0 + s, y0 + s


def stats(values: list[float]) -> str:
    if not values:
        return "      -        -"
    a = np.array(values) * 1e3
    return f"{np.median(a):7.3f}  {np.percentile(a, 99):7.3f}"


def make_view(fb: F.FrameBuffer, ts: int, color: F.ColorParams) -> FrameView:
    return FrameView(
        fb.format,
        fb.width,
        fb.height,
        fb.addresses,
        fb.linesizes,
        timestamp=ts,
        color_matrix=color.matrix + (0.0, 0.0, 0.0, 1.0),
        full_range=color.full_range,
        range_min=color.range_min,
        range_max=color.range_max,
    )


def wait_ready(client: EngineClient, seq: int, timeout: float = 5.0) -> float | None:
    """Seconds until ``ready(seq)``; polls like a busy video thread would (every 0.5 ms)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if client.ready(seq):
            return time.perf_counter() - t0
        time.sleep(0.0005)
    return None


def run_mode(name: str, w: int, h: int, frames: int, same_frame: bool) -> dict[str, list[float]]:
    img = cv2.resize(cv2.imread(str(MEDIA / "astronaut.png")), (w, h))
    color = F.ColorParams.standard("709", full_range=False)
    bufs = []
    for i in range(4):  # a few distinct buffers, like OBS's frame cache
        fb = F.FrameBuffer.allocate(VideoFormat.I420, w, h)
        F.from_bgr(np.roll(img, 5 * i, axis=1), fb.planes, VideoFormat.I420, w, h, color)
        bufs.append(fb)
    box = face_box(w, h)
    client = EngineClient(
        None,
        {"source": str(MEDIA / "astronaut.png")},
        processor="tests.engine_processors:invert",
        env={"OFS_TEST_RECT": ",".join(map(str, box))},
    )
    client.max_age = 3 / FPS
    out: dict[str, list[float]] = {k: [] for k in ("submit", "apply", "ready", "poll", "rtt")}
    try:
        client.start()
        end = time.monotonic() + 60
        while client.status.state != "running" and time.monotonic() < end:
            client.poll()
            time.sleep(0.01)
        if client.status.state != "running":
            raise SystemExit(f"engine did not start: {client.status}")
        prev: tuple[int, int] | None = None
        t_next = time.perf_counter()
        for i in range(frames + 10):
            fb = bufs[i % len(bufs)]
            ts = (i + 1) * 33_333_333
            fv = make_view(fb, ts, color)
            t = time.perf_counter()
            client.poll()
            t_poll = time.perf_counter() - t
            t = time.perf_counter()
            seq = client.submit(fv)
            t_submit = time.perf_counter() - t
            if seq is None:
                continue
            if same_frame:  # synchronised: this frame's own result goes back into it
                rtt = wait_ready(client, seq)
                t = time.perf_counter()
                client.ready(seq)
                t_ready = time.perf_counter() - t
                t = time.perf_counter()
                ok = client.apply(seq, fv)
                t_apply = time.perf_counter() - t
            else:  # lowest latency: the previous frame's result goes into this frame
                rtt = None
                t_ready = t_apply = None
                ok = False
                if prev is not None:
                    t = time.perf_counter()
                    r = client.ready(prev[0])
                    t_ready = time.perf_counter() - t
                    if r:
                        t = time.perf_counter()
                        ok = client.apply(prev[0], fv)
                        t_apply = time.perf_counter() - t
                    else:
                        client.discard(prev[0])
                prev = (seq, i)
                rtt = wait_ready(client, seq) if i % 2 else None  # sample the round trip
            if i >= 10:  # warm-up done
                out["submit"].append(t_submit)
                out["poll"].append(t_poll)
                if t_ready is not None:
                    out["ready"].append(t_ready)
                if ok and t_apply is not None:
                    out["apply"].append(t_apply)
                if rtt is not None:
                    out["rtt"].append(rtt)
            t_next += 1 / FPS
            time.sleep(max(0.0, t_next - time.perf_counter()))
    finally:
        client.close()
    return out


def conversions(w: int, h: int, repeats: int = 20) -> tuple[list[float], list[float]]:
    img = cv2.resize(cv2.imread(str(MEDIA / "astronaut.png")), (w, h))
    color = F.ColorParams.standard("709", full_range=False)
    fb = F.FrameBuffer.allocate(VideoFormat.I420, w, h)
    F.from_bgr(img, fb.planes, VideoFormat.I420, w, h, color)
    box = F.align_roi(VideoFormat.I420, w, h, face_box(w, h))
    full, back = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        bgr = F.to_bgr(fb.planes, VideoFormat.I420, w, h, color)
        full.append(time.perf_counter() - t)
        x0, y0, x1, y1 = box
        t = time.perf_counter()
        F.from_bgr(bgr[y0:y1, x0:x1], fb.planes, VideoFormat.I420, w, h, color, box)
        back.append(time.perf_counter() - t)
    return full, back


def memmove_cost(n: int = 20000) -> float:
    a = (ctypes.c_ubyte * 4096)()
    b = (ctypes.c_ubyte * 4096)()
    pa, pb = ctypes.addressof(a), ctypes.addressof(b)
    t = time.perf_counter()
    for _ in range(n):
        ctypes.memmove(pa, pb, 64)
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150, help="frames per mode (default 150)")
    args = ap.parse_args()
    print(
        f"# engine client benchmark -- {platform.node()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, OpenCV {cv2.__version__}"
    )
    print(f"# ctypes.memmove call overhead here: {memmove_cost() * 1e6:.2f} µs")
    print(
        f"# {args.frames} frames per mode at {FPS:g} fps, I420 BT.709, trivial processor; times in ms, median / p99\n"
    )
    print(
        f"| {'size':5} | {'mode':27} | {'submit':>16} | {'apply':>16} | {'ready':>16} | "
        f"{'poll':>16} | {'round trip':>16} |"
    )
    print("|" + "---|" * 7)
    for label, (w, h) in SIZES.items():
        for mode, same in (("sync (apply to same frame)", True), ("low latency (newer frame)", False)):
            r = run_mode(mode, w, h, args.frames, same)
            print(
                f"| {label:5} | {mode:27} | {stats(r['submit'])} | {stats(r['apply'])} | "
                f"{stats(r['ready'])} | {stats(r['poll'])} | {stats(r['rtt'])} |",
                flush=True,
            )
    print("\nengine side (this process), ms median / p99:")
    for label, (w, h) in SIZES.items():
        full, back = conversions(w, h)
        box = face_box(w, h)
        print(
            f"  {label}: whole frame I420→BGR {stats(full)};  face box "
            f"{box[2] - box[0]}x{box[3] - box[1]} BGR→I420 {stats(back)}"
        )


if __name__ == "__main__":
    main()
