"""Covering a frame in every pixel format OBS knows, including those the engine does not swap.

A real face photo is written into each format (16-bit samples for the 10/12/16-bit ones, V210
groups, R10L words, AYUV bytes, alpha planes) by encoders written here independently of
:mod:`obs_faceswap.obs.cover`; the mosaic, the badge and the filter's fail-closed path then
run on those raw planes, and the test reads the luma back out to check that the face's fine
detail is gone inside the covered rectangle and that not one byte outside it changed.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest

from obs_faceswap.obs import cover
from obs_faceswap.obs import settings as st
from obs_faceswap.obs.filters import AsyncFaceSwap
from obs_faceswap.video_formats import LAYOUTS, SUPPORTED_FORMATS, FormatInfo, VideoFormat, format_name
from tests.unit.fake_libobs import FakeApi, FakeEngineModule, FakeFrame, make_frame

W, H = 192, 144  # V210 groups of 6 pixels fit exactly
RECT = (48, 24, 144, 120)  # the face
BLOCK = 16
ALPHA8 = 200
ALL = sorted(LAYOUTS)
UNSWAPPED = [f for f in ALL if f not in SUPPORTED_FORMATS]
_PACKED422 = {VideoFormat.YUY2: (0, 2, 1, 3), VideoFormat.UYVY: (1, 3, 0, 2), VideoFormat.YVYU: (0, 2, 3, 1)}
_RGB8 = {VideoFormat.BGRA: (0, 1, 2), VideoFormat.BGRX: (0, 1, 2), VideoFormat.RGBA: (2, 1, 0)}


def ids(fmt: int) -> str:
    return format_name(fmt)


@pytest.fixture(scope="module")
def face(read_image: Callable[[str], np.ndarray]) -> np.ndarray:
    """The face of a real photo, W x H BGR."""
    img = read_image("frec_obama.jpg")
    h, w = img.shape[:2]
    side = min(h, w)
    crop = img[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2]
    return cv2.resize(crop, (W, H), interpolation=cv2.INTER_AREA)


# --- independent encoders / decoders of each layout -----------------------------------------------
def wide(v8: np.ndarray, info: FormatInfo) -> np.ndarray:
    """8-bit codes as ``info``'s 16-bit samples (bit replication, high-aligned for ``msb``)."""
    v = v8.astype(np.uint32)
    if info.bits == 10:
        s = (v << 2) | (v >> 6)
    elif info.bits == 12:
        s = (v << 4) | (v >> 4)
    else:
        s = v * 257
    if info.msb:
        s <<= 16 - info.bits
    return s.astype("<u2")


def samples(v8: np.ndarray, info: FormatInfo) -> bytes:
    return wide(v8, info).tobytes() if info.wide else v8.astype(np.uint8).tobytes()


def v210_words(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``(h, w)`` 10-bit Y and ``(h, w // 2)`` U, V → ``(h, w // 6 * 4)`` V210 words."""
    h, w = y.shape
    g = w // 6
    out = np.zeros((h, g, 4), np.uint32)
    yy = y.reshape(h, g, 6).astype(np.uint32)
    uu = u.reshape(h, g, 3).astype(np.uint32)
    vv = v.reshape(h, g, 3).astype(np.uint32)
    out[..., 0] = uu[..., 0] | yy[..., 0] << 10 | vv[..., 0] << 20
    out[..., 1] = yy[..., 1] | uu[..., 1] << 10 | yy[..., 2] << 20
    out[..., 2] = vv[..., 1] | yy[..., 3] << 10 | uu[..., 2] << 20
    out[..., 3] = yy[..., 4] | vv[..., 2] << 10 | yy[..., 5] << 20
    return out.reshape(h, g * 4)


def encode(fmt: int, bgr: np.ndarray) -> list[bytes]:
    """``bgr`` (H x W) as the tight planes of ``fmt``."""
    info = LAYOUTS[fmt]
    ycc = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
    y, v, u = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    a = np.full_like(y, ALPHA8)
    if fmt in _RGB8:
        out = np.empty((H, W, 4), np.uint8)
        for k, c in enumerate(_RGB8[fmt]):
            out[..., k] = bgr[..., c]
        out[..., 3] = 255
        return [out.tobytes()]
    if fmt == VideoFormat.BGR3:
        return [bgr.tobytes()]
    if fmt == VideoFormat.R10L:
        b, g, r = (wide(bgr[..., k], info).astype(np.uint32) for k in range(3))
        return [(r << 22 | g << 12 | b << 2).astype("<u4").tobytes()]
    if fmt == VideoFormat.AYUV:
        return [np.stack([v, u, y, a], axis=-1).tobytes()]
    if fmt == VideoFormat.V210:
        return [v210_words(wide(y, info), wide(u[:, ::2], info), wide(v[:, ::2], info)).astype("<u4").tobytes()]
    if fmt in _PACKED422:
        out = np.empty((H, W // 2, 4), np.uint8)
        iy0, iy1, iu, iv = _PACKED422[fmt]
        out[..., iy0], out[..., iy1], out[..., iu], out[..., iv] = y[:, 0::2], y[:, 1::2], u[:, ::2], v[:, ::2]
        return [out.tobytes()]
    sx, sy = info.sub_x, info.sub_y
    us, vs = u[::sy, ::sx], v[::sy, ::sx]
    planes = [samples(y, info)]
    if len(info.planes) == 1:  # Y800
        return planes
    if info.planes[1][2] // (2 if info.wide else 1) == 2:  # semi-planar: interleaved U, V
        planes.append(samples(np.stack([us, vs], axis=-1), info))
    else:
        planes += [samples(us, info), samples(vs, info)]
    if info.alpha >= 0:
        planes.append(samples(a, info))
    return planes


def luma(fmt: int, planes: list[bytes]) -> np.ndarray:
    """The frame's luma (or green for RGB formats) per pixel, on an 8-bit scale."""
    info = LAYOUTS[fmt]
    p0 = planes[0]
    if fmt in _RGB8:
        return np.frombuffer(p0, np.uint8).reshape(H, W, 4)[..., 1].astype(float)
    if fmt == VideoFormat.BGR3:
        return np.frombuffer(p0, np.uint8).reshape(H, W, 3)[..., 1].astype(float)
    if fmt == VideoFormat.R10L:
        return ((np.frombuffer(p0, "<u4").reshape(H, W) >> 12) & 0x3FF) / 4.0
    if fmt == VideoFormat.AYUV:
        return np.frombuffer(p0, np.uint8).reshape(H, W, 4)[..., 2].astype(float)
    if fmt == VideoFormat.V210:
        words = np.frombuffer(p0, "<u4").reshape(H, W // 6, 4)
        s = np.stack([(words >> sh) & 0x3FF for sh in (0, 10, 20)], axis=-1).reshape(H, W // 6, 12)
        return s[..., [1, 3, 5, 7, 9, 11]].reshape(H, W) / 4.0
    if fmt in _PACKED422:
        px = np.frombuffer(p0, np.uint8).reshape(H, W // 2, 4)
        iy0, iy1, _, _ = _PACKED422[fmt]
        return np.stack([px[..., iy0], px[..., iy1]], axis=-1).reshape(H, W).astype(float)
    if info.wide:
        s = np.frombuffer(p0, "<u2").reshape(H, W).astype(float)
        return s / (1 << (16 - 8)) if info.msb else s / (1 << (info.bits - 8))
    return np.frombuffer(p0, np.uint8).reshape(H, W).astype(float)


def frame_in(fmt: int, bgr: np.ndarray) -> FakeFrame:
    fr = make_frame(0, fmt, W, H)
    for buf, data in zip(fr.planes, encode(fmt, bgr), strict=True):
        assert len(data) == ctypes.sizeof(buf), (format_name(fmt), len(data), ctypes.sizeof(buf))
        ctypes.memmove(buf, data, len(data))
    return fr


def planes_of(fr: FakeFrame) -> cover.Planes:
    s, n = fr.struct, len(fr.planes)
    return cover.Planes(s.format, s.width, s.height, tuple(s.data[:n]), tuple(s.linesize[:n]))


def snapshot(fr: FakeFrame) -> list[bytes]:
    return [bytes(b) for b in fr.planes]


def outside(fmt: int, planes: list[bytes], rect: tuple[int, int, int, int]) -> list[bytes]:
    """The planes with the bytes that hold ``rect`` blanked (what must not change)."""
    info = LAYOUTS[fmt]
    x0, y0, x1, y1 = rect
    out = []
    for i, ((dx, dy, unit), data) in enumerate(zip(info.planes, planes, strict=True)):
        ls = info.row_bytes(i, W)
        a = np.frombuffer(data, np.uint8).reshape(-1, ls).copy()
        a[y0 // dy : -(-y1 // dy), (x0 // dx) * unit : -(-x1 // dx) * unit] = 0
        out.append(a.tobytes())
    return out


def detail(lum: np.ndarray) -> float:
    """The fraction of neighbouring pixel pairs that differ by more than one code: nearly all
    of them in a real face; in a mosaic only those across block edges (about 2 / block)."""
    return float(((np.abs(np.diff(lum, axis=0)) > 1).mean() + (np.abs(np.diff(lum, axis=1)) > 1).mean()) / 2)


# --- the mosaic ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ALL, ids=ids)
def test_mosaic_removes_the_faces_detail_and_nothing_outside_changes(fmt: int, face: np.ndarray) -> None:
    info = LAYOUTS[fmt]
    fr = frame_in(fmt, face)
    before = snapshot(fr)
    x0, y0, x1, y1 = RECT
    lum0 = luma(fmt, before)[y0:y1, x0:x1]
    assert detail(lum0) > 0.5  # a real face: plenty of fine detail to hide
    cover.mosaic(planes_of(fr), RECT, BLOCK)
    after = snapshot(fr)
    assert outside(fmt, after, RECT) == outside(fmt, before, RECT), "bytes outside the covered rect changed"
    if info.alpha >= 0:
        assert after[info.alpha] == before[info.alpha], "the alpha plane must be left as it is"
    lum1 = luma(fmt, after)[y0:y1, x0:x1]
    # every block is one luma value: no detail is left inside a block ...
    bw = max(1, BLOCK // info.planes[0][0]) * info.planes[0][0]
    for by in range(0, y1 - y0, BLOCK):
        for bx in range(0, x1 - x0, bw):
            blk = lum1[by : by + BLOCK, bx : bx + bw]
            assert np.ptp(blk) == 0, f"{format_name(fmt)}: block at {(bx + x0, by + y0)} still has detail"
    # ... and what is left is the block edges
    assert detail(lum1) < 0.15


@pytest.mark.parametrize("fmt", ALL, ids=ids)
def test_whole_frame_cover_leaves_no_face_detail(fmt: int, face: np.ndarray) -> None:
    fr = frame_in(fmt, face)
    lum0 = luma(fmt, snapshot(fr))
    guard = cover.Guard(lambda: 0)
    guard.configure(cover.COVER, False, "", "bottom-right")
    assert guard.unavailable(planes_of(fr)) == cover.COVER
    lum1 = luma(fmt, snapshot(fr))
    assert detail(lum0) > 0.5 and detail(lum1) < 0.15
    changed_rows = int((np.abs(lum1 - lum0).max(axis=1) > 2).sum())
    assert changed_rows > 0.9 * H


@pytest.mark.parametrize("fmt", ALL, ids=ids)
def test_badge_is_light_on_dark_opaque_and_only_in_its_box(fmt: int) -> None:
    info = LAYOUTS[fmt]
    grey = np.full((H, W, 3), 128, np.uint8)
    fr = frame_in(fmt, grey)
    before = snapshot(fr)
    box = cover.draw_badge(planes_of(fr), "face swap", "bottom-right")
    assert box is not None and box[2] <= W and box[3] <= H and box[0] > W // 3 and box[1] > H // 2
    after = snapshot(fr)
    assert outside(fmt, after, box) == outside(fmt, before, box)
    lum = luma(fmt, after)[box[1] : box[3], box[0] : box[2]]
    assert lum.max() >= 225 and lum.min() <= 30, f"{format_name(fmt)}: {lum.min()}..{lum.max()}"
    assert (lum <= 30).mean() > 0.5  # a dark box with light text
    if info.alpha >= 0:
        dx, dy, unit = info.planes[info.alpha]
        a = np.frombuffer(after[info.alpha], "<u2" if info.wide else np.uint8).reshape(H, W)
        top = (1 << info.bits) - 1
        assert (a[box[1] : box[3], box[0] : box[2]] == top).all(), "the badge must be opaque"


@pytest.mark.parametrize("fmt", [VideoFormat.I010, VideoFormat.P010, VideoFormat.YA2L, VideoFormat.V210], ids=ids)
def test_wide_formats_black_grey_and_white_codes(fmt: int) -> None:
    info = LAYOUTS[fmt]
    assert info.code(16) == {10: 64, 12: 257}[info.bits] << (6 if info.msb else 0)
    assert info.code(128) == {10: 514, 12: 2056}[info.bits] << (6 if info.msb else 0)
    assert info.code(255) == ((1 << info.bits) - 1) << (6 if info.msb else 0)


def test_freeze_restores_a_wide_frame_exactly(face: np.ndarray) -> None:
    guard = cover.Guard(lambda: 0)
    guard.configure(cover.FREEZE, False, "", "bottom-right")
    a = frame_in(VideoFormat.P010, face)
    guard.swapped(planes_of(a), [RECT])
    b = frame_in(VideoFormat.P010, np.ascontiguousarray(face[:, ::-1]))
    assert guard.unavailable(planes_of(b)) == cover.FREEZE
    assert snapshot(b) == snapshot(a)


# --- the filter: a format the engine does not swap is covered, an unknown one is not shown -------
def values(**overrides: Any) -> dict[str, Any]:
    v = st.defaults()
    v["engine_python"] = sys.executable
    v.update(overrides)
    return v


def new_async(**settings: Any) -> tuple[AsyncFaceSwap, FakeApi, FakeEngineModule]:
    api, engine = FakeApi(), FakeEngineModule()
    return AsyncFaceSwap(api, 0x7000, values(**settings), engine_api=engine), api, engine


@pytest.mark.parametrize("mode", [st.SYNC, st.LATENCY])
@pytest.mark.parametrize("fmt", UNSWAPPED, ids=ids)
def test_filter_covers_every_frame_of_a_format_the_engine_lacks(fmt: int, mode: str, face: np.ndarray) -> None:
    f, _, engine = new_async(timing_mode=mode, sync_frames=1)
    frames = [frame_in(fmt, np.roll(face, 3 * i, axis=1)) for i in range(4)]
    lum0 = [luma(fmt, snapshot(fr)) for fr in frames]
    out = [f.filter_video(fr.addr) for fr in frames]
    shown = [i for i, fr in enumerate(frames) if fr.addr in out]
    assert shown
    for i in shown:
        assert detail(lum0[i]) > 0.5
        assert detail(luma(fmt, snapshot(frames[i]))) < 0.15, "the real face is shown"
    assert f.counters.covered == len(shown) and f.counters.swapped == 0
    assert engine.clients[0].seen == {}  # never handed to the engine
    assert f.status()["format_note"] == f"format {format_name(fmt)} not supported: covered"


def test_filter_with_fallback_original_shows_an_unswappable_frame_and_says_so(face: np.ndarray) -> None:
    f, _, _ = new_async(timing_mode=st.LATENCY, unavailable=cover.ORIGINAL, badge_enabled=False)
    fr = frame_in(VideoFormat.I40A, face)
    before = snapshot(fr)
    assert f.filter_video(fr.addr) == fr.addr
    assert snapshot(fr) == before
    assert "I40A not supported: shown as it is" in f.status_lines()[0]


@pytest.mark.parametrize("fmt", [26, 99, VideoFormat.NONE], ids=lambda f: f"format{int(f)}")
def test_frames_in_an_unknown_format_are_not_shown_while_the_swap_is_on(
    fmt: int, caplog: pytest.LogCaptureFixture
) -> None:
    f, api, _ = new_async(timing_mode=st.SYNC, sync_frames=1)
    frames = [make_frame(7, VideoFormat.I420) for _ in range(3)]
    for fr in frames:
        fr.struct.format = fmt  # what a newer OBS might send: no layout known
    with caplog.at_level(logging.WARNING, logger="obs_faceswap.obs.filters"):
        out = [f.filter_video(fr.addr) for fr in frames]
    assert out == [None, None, None], "a frame that cannot be covered must not be shown"
    assert api.released == [(api.parent, fr.addr) for fr in frames]  # handed back, not leaked
    assert f.counters.dropped == 3
    note = f"format {format_name(fmt)} not supported: not shown (its pixel layout is unknown)"
    assert f.status()["format_note"] == note and note in f.status_lines()[0]
    assert sum(note in r.getMessage() for r in caplog.records) == 1


def test_unknown_format_frames_pass_when_the_swap_is_off_or_the_user_chose_original() -> None:
    for settings in ({"swap_enabled": False}, {"unavailable": cover.ORIGINAL}):
        f, api, _ = new_async(timing_mode=st.LATENCY, **settings)
        fr = make_frame(7, VideoFormat.I420)
        fr.struct.format = 26
        assert f.filter_video(fr.addr) == fr.addr
        assert api.released == []


def test_a_format_change_covers_the_whole_frame_not_the_last_face_regions(face: np.ndarray) -> None:
    """A source that switches format (a new file, a camera mode) shows another picture: the last
    face regions, seen in the old format, say nothing about where the face is now."""
    guard = cover.Guard(lambda: 0)
    guard.configure(cover.COVER, False, "", "bottom-right")
    guard.swapped(planes_of(frame_in(VideoFormat.I010, face)), [RECT])
    same = frame_in(VideoFormat.I010, face)
    guard.unavailable(planes_of(same))
    assert detail(luma(VideoFormat.I010, snapshot(same))[:, :12]) > 0.5  # only the (grown) face region was covered
    other = frame_in(VideoFormat.I40A, face)
    guard.unavailable(planes_of(other))
    assert detail(luma(VideoFormat.I40A, snapshot(other))) < 0.15  # the whole frame
