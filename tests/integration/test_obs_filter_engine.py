"""The OBS filter with the real engine process and client, without OBS.

libobs is faked (tests/unit/fake_libobs.py) but everything from the ``obs_source_frame``
struct onwards is real: the filter builds FrameViews of real frames in every format the
issue names, the client copies them into shared memory, a real engine process inverts a
rectangle (``tests/engine_processors.py``) and the filter writes the result back. Each frame
has its own grey level, so a frame showing another frame's result is caught.
"""

from __future__ import annotations

import ctypes
import sys
import time
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from obs_faceswap.engine import client as engine_client
from obs_faceswap.engine import frames as F
from obs_faceswap.engine import protocol as P
from obs_faceswap.obs import settings as st
from obs_faceswap.obs import structs
from obs_faceswap.obs.filters import AsyncFaceSwap
from obs_faceswap.video_formats import VideoFormat
from tests.engine_processors import default_rect
from tests.unit.fake_libobs import FakeApi

W, H = 96, 64
COLOR = F.ColorParams.standard("709", full_range=False)
FORMATS = [
    VideoFormat.I420,
    VideoFormat.NV12,
    VideoFormat.YUY2,
    VideoFormat.UYVY,
    VideoFormat.I422,
    VideoFormat.I444,
    VideoFormat.BGRA,
    VideoFormat.BGRX,
    VideoFormat.RGBA,
    VideoFormat.I010,
    VideoFormat.P010,
]


#: Frames stay alive until the filter has handed them back (libobs owns them in OBS).
_ALIVE: list[ObsFrame] = []


class ObsFrame:
    """A FrameBuffer presented as libobs' ``struct obs_source_frame``."""

    def __init__(self, fmt: int, grey: int, ts: int) -> None:
        _ALIVE.append(self)
        self.grey = grey
        self.fb = F.FrameBuffer.allocate(fmt, W, H)
        F.from_bgr(np.full((H, W, 3), grey, np.uint8), self.fb.planes, fmt, W, H, COLOR)
        s = structs.ObsSourceFrame()
        for i, (a, ls) in enumerate(zip(self.fb.addresses, self.fb.linesizes, strict=True)):
            s.data[i], s.linesize[i] = a, ls
        s.width, s.height, s.format, s.timestamp, s.refs = W, H, fmt, ts, 2
        yuv = fmt not in (VideoFormat.BGRA, VideoFormat.BGRX, VideoFormat.RGBA)
        s.full_range = not yuv
        if yuv:
            for i, v in enumerate(COLOR.matrix + (0.0, 0.0, 0.0, 1.0)):
                s.color_matrix[i] = v
            for i in range(3):
                s.color_range_min[i], s.color_range_max[i] = COLOR.range_min[i], COLOR.range_max[i]
        self.struct = s

    @property
    def addr(self) -> int:
        return ctypes.addressof(self.struct)

    def bgr(self) -> np.ndarray:
        rgb = (VideoFormat.BGRA, VideoFormat.BGRX, VideoFormat.RGBA)
        color = COLOR if self.fb.format not in rgb else F.ColorParams.from_obs((), True)
        return F.to_bgr(self.fb.planes, self.fb.format, W, H, color)


def engine_module() -> Any:
    def factory(python: str | None, settings: dict[str, Any], **kw: Any) -> engine_client.EngineClient:
        return engine_client.EngineClient(python, settings, processor="tests.engine_processors:invert", **kw)

    return types.SimpleNamespace(
        EngineClient=factory, FrameView=engine_client.FrameView, SUPPORTED_FORMATS=engine_client.SUPPORTED_FORMATS
    )


@pytest.fixture
def make_filter(media: Any) -> Iterator[Any]:
    made: list[AsyncFaceSwap] = []

    def make(**settings: Any) -> AsyncFaceSwap:
        v = st.defaults()
        v.update(engine_python=sys.executable, source_photo=str(media("astronaut.png")), **settings)
        f = AsyncFaceSwap(FakeApi(), 0x7000, v, engine_api=engine_module())
        made.append(f)
        deadline = time.monotonic() + 60
        while f.status()["state"] not in ("running", "disabled"):
            assert time.monotonic() < deadline, f"engine not running: {f.status()}"
            f.video_tick(0.01)
            time.sleep(0.01)
        return f

    yield make
    for f in made:
        f.filter_remove(f.api.parent)
        f.destroy()
    _ALIVE.clear()


def inside(img: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = default_rect(W, H)
    return img[y0 + 4 : y1 - 4, x0 + 4 : x1 - 4].reshape(-1, 3).astype(np.int16)


def outside(img: np.ndarray) -> np.ndarray:
    return img[:4].reshape(-1, 3).astype(np.int16)


def feed(f: AsyncFaceSwap, frames: list[ObsFrame], wait_s: float = 0.05) -> list[int | None]:
    out = []
    for fr in frames:
        f.video_tick(0.033)
        out.append(f.filter_video(fr.addr))
        time.sleep(wait_s)  # a frame interval; the inverting engine needs a few ms
        f.video_tick(0.033)
    return out


@pytest.mark.slow
def test_synchronised_frames_carry_their_own_result_in_every_format(make_filter: Any) -> None:
    # One engine for all formats, switched mid-stream like a camera changing its format.
    f = make_filter(sync_frames=3)
    ts = 0
    for fmt in FORMATS:
        name = P.FORMAT_NAMES[fmt]
        frames = []
        for k in range(8):
            ts += 33_000_000
            frames.append(ObsFrame(fmt, 40 + 20 * k, ts))
        out = feed(f, frames)
        assert out[3:] == [fr.addr for fr in frames[:5]], name
        for fr in frames[:5]:
            img = fr.bgr()
            assert np.abs(inside(img) - (255 - fr.grey)).max() <= 3, f"{name}: not this frame's own result"
            assert np.abs(outside(img) - fr.grey).max() <= 2, f"{name}: pixels outside the region moved"
    assert f.counters.late == 0
    assert f.counters.swapped == 5 * len(FORMATS) + 3 * (len(FORMATS) - 1)
    assert f.status()["delay_ms"] == pytest.approx(99.0, abs=0.1)


def test_lowest_latency_applies_the_previous_frames_result(make_filter: Any) -> None:
    f = make_filter(timing_mode="latency")
    frames = [ObsFrame(VideoFormat.I420, 40 + 20 * k, ts=(k + 1) * 33_000_000) for k in range(6)]
    assert feed(f, frames) == [fr.addr for fr in frames]
    swapped = [k for k in range(1, 6) if np.abs(inside(frames[k].bgr()) - (255 - frames[k - 1].grey)).max() <= 3]
    assert swapped, "no frame got the previous frame's result"
    for k in swapped:
        assert np.abs(outside(frames[k].bgr()) - frames[k].grey).max() <= 2
    assert np.abs(inside(frames[0].bgr()) - frames[0].grey).max() <= 2  # nothing to apply yet


def test_disabled_swap_passes_frames_untouched_with_the_same_delay(make_filter: Any) -> None:
    f = make_filter(sync_frames=2, swap_enabled=False)
    frames = [ObsFrame(VideoFormat.NV12, 60 + 10 * k, ts=k) for k in range(5)]
    out = feed(f, frames, wait_s=0.02)
    assert out == [None, None] + [fr.addr for fr in frames[:3]]
    for fr in frames:
        assert np.abs(fr.bgr().astype(np.int16) - fr.grey).max() <= 2
