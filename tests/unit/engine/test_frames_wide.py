"""10/12-bit frames (I010, P010, I210, I412) ↔ BGR: through their 8-bit twins, regions written
back wide, every bit outside a written region kept."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from obs_faceswap.engine import frames as F
from obs_faceswap.video_formats import FORMATS, SUPPORTED_FORMATS, VideoFormat, format_name

WIDE = [VideoFormat.I010, VideoFormat.P010, VideoFormat.I210, VideoFormat.I412]
TWIN = {
    VideoFormat.I010: VideoFormat.I420,
    VideoFormat.P010: VideoFormat.NV12,
    VideoFormat.I210: VideoFormat.I422,
    VideoFormat.I412: VideoFormat.I444,
}
#: YUV → BGR → YUV of an 8-bit code: at most 1 (rounding), except where subsampled chroma
#: shared by a block puts one of its pixels outside the RGB gamut (as in test_frames.py).
ROUND_TRIP_TOL = 1
GAMUT_CLIP_FRACTION = 1e-3
C709 = F.ColorParams.standard("709", full_range=False)
W, H = 321, 181  # odd: partial chroma blocks at the right and bottom edges


def ids(fmt: int) -> str:
    return format_name(fmt)


@pytest.fixture(scope="module")
def photo(read_image: Callable[[str], np.ndarray]) -> np.ndarray:
    return cv2.resize(read_image("frec_obama.jpg"), (W, H), interpolation=cv2.INTER_AREA)


def wide_frame(fmt: int, bgr: np.ndarray, seed: int = 0) -> tuple[F.FrameBuffer, F.FrameBuffer]:
    """``bgr`` as a 10/12-bit frame with real low bits (noise below the 8-bit code), and the
    8-bit twin frame holding exactly those 8-bit codes."""
    info = FORMATS[fmt]
    twin = F.FrameBuffer.allocate(TWIN[fmt], W, H, padding=8)
    F.from_bgr(bgr, twin.planes, TWIN[fmt], W, H, C709)
    fb = F.FrameBuffer.allocate(fmt, W, H, padding=8)
    rng = np.random.default_rng(seed)
    for p8, p16 in zip(twin.planes, fb.planes, strict=True):
        codes = p8.astype(np.uint32)
        low = rng.integers(0, 1 << (info.bits - 8), codes.shape, dtype=np.uint32)
        v = (codes << (info.bits - 8)) | low
        if info.msb:
            v <<= 16 - info.bits
        words = p16.view("<u2")
        words[:, : v.shape[1]] = v[:, : words.shape[1]].astype(np.uint16)
    return fb, twin


def narrowed(fb: F.FrameBuffer) -> list[np.ndarray]:
    info = FORMATS[fb.format]
    out = []
    for p in fb.planes:
        w = p.view("<u2").astype(np.uint32)
        out.append((w >> 8) if info.msb else ((w & ((1 << info.bits) - 1)) >> (info.bits - 8)))
    return out


def test_the_common_10_bit_formats_are_swapped() -> None:
    assert {VideoFormat.I010, VideoFormat.P010, VideoFormat.I210, VideoFormat.I412} <= SUPPORTED_FORMATS
    assert VideoFormat.YA2L not in SUPPORTED_FORMATS  # 12-bit with alpha: covered, not swapped


@pytest.mark.parametrize("fmt", WIDE, ids=ids)
def test_wide_frame_reads_as_its_top_8_bits(fmt: int, photo: np.ndarray) -> None:
    fb, twin = wide_frame(fmt, photo)
    np.testing.assert_array_equal(F.to_bgr(fb.planes, fmt, W, H, C709), F.to_bgr(twin.planes, twin.format, W, H, C709))
    roi = (31, 17, 200, 150)
    np.testing.assert_array_equal(
        F.to_bgr(fb.planes, fmt, W, H, C709, roi), F.to_bgr(twin.planes, twin.format, W, H, C709, roi)
    )


@pytest.mark.parametrize("fmt", [VideoFormat.I010, VideoFormat.I210, VideoFormat.I412], ids=ids)
def test_bits_above_the_sample_are_masked(fmt: int, photo: np.ndarray) -> None:
    fb, twin = wide_frame(fmt, photo)
    for p in fb.planes:
        p.view("<u2")[:] |= np.uint16(0xF000 if FORMATS[fmt].bits == 12 else 0xFC00)
    np.testing.assert_array_equal(F.to_bgr(fb.planes, fmt, W, H, C709), F.to_bgr(twin.planes, twin.format, W, H, C709))


@pytest.mark.parametrize("fmt", WIDE, ids=ids)
def test_region_written_back_round_trips_and_nothing_outside_changes(fmt: int, photo: np.ndarray) -> None:
    fb, twin = wide_frame(fmt, photo, seed=1)
    before = fb.copy()
    roi = F.align_roi(fmt, W, H, (61, 33, 250, 170))
    x0, y0, x1, y1 = roi
    bgr = F.to_bgr(fb.planes, fmt, W, H, C709, roi)
    F.from_bgr(bgr, fb.planes, fmt, W, H, C709, roi)
    # the same round trip as the 8-bit twin's, code for code
    F.from_bgr(F.to_bgr(twin.planes, twin.format, W, H, C709, roi), twin.planes, twin.format, W, H, C709, roi)
    for i, (n, p8) in enumerate(zip(narrowed(fb), twin.planes, strict=True)):
        cols = FORMATS[twin.format].row_bytes(i, W)  # one byte per sample in the twin
        np.testing.assert_array_equal(n[:, :cols], p8[:, :cols])
    info = FORMATS[fmt]
    diffs = []
    for (dx, dy, unit), p0, p1, n0, n1 in zip(
        info.planes, before.planes, fb.planes, narrowed(before), narrowed(fb), strict=True
    ):
        k = unit // 2
        c0, c1, r0, r1 = (x0 // dx) * k, -(-x1 // dx) * k, y0 // dy, -(-y1 // dy)
        inside = np.zeros(p0.view("<u2").shape, bool)
        inside[r0:r1, c0:c1] = True
        # outside the region every bit (and the row padding) is kept
        w0, w1 = p0.view("<u2"), p1.view("<u2")
        np.testing.assert_array_equal(w1[~inside], w0[~inside])
        # inside: the 8-bit codes survive the round trip
        diffs.append(np.abs(n1[inside].astype(int) - n0[inside].astype(int)))
        # and what was written is the code widened by bit replication (255 → all ones)
        top = (1 << info.bits) - 1
        v = w1[inside].astype(np.uint32) >> (16 - info.bits if info.msb else 0)
        assert (v <= top).all()
        np.testing.assert_array_equal(v >> (info.bits - 8), n1[inside])
        np.testing.assert_array_equal(v & ((1 << (info.bits - 8)) - 1), v >> 8)  # low bits = top bits
    diff = np.concatenate(diffs)
    assert (diff > ROUND_TRIP_TOL).mean() <= GAMUT_CLIP_FRACTION, f"{format_name(fmt)}: max diff {diff.max()}"


@pytest.mark.parametrize("fmt", WIDE, ids=ids)
def test_written_swap_reads_back_within_one_code(fmt: int, photo: np.ndarray) -> None:
    """A changed region (another image) written into a wide frame reads back within a code."""
    fb, _ = wide_frame(fmt, photo)
    other = cv2.GaussianBlur(np.ascontiguousarray(photo[::-1, ::-1]), (0, 0), 1.0)
    roi = F.align_roi(fmt, W, H, (100, 40, 220, 160))
    x0, y0, x1, y1 = roi
    F.from_bgr(other[y0:y1, x0:x1], fb.planes, fmt, W, H, C709, roi)
    ref = F.FrameBuffer.allocate(TWIN[fmt], W, H)
    F.from_bgr(other[y0:y1, x0:x1], ref.planes, TWIN[fmt], W, H, C709, roi)
    got = F.to_bgr(fb.planes, fmt, W, H, C709, roi)
    want = F.to_bgr(ref.planes, TWIN[fmt], W, H, C709, roi)
    np.testing.assert_array_equal(got, want)  # exactly what the 8-bit path shows
    assert np.abs(got.astype(int) - other[y0:y1, x0:x1]).mean() < 2.0


@pytest.mark.parametrize("fmt", WIDE, ids=ids)
def test_scaled_region_matches_the_8_bit_twin(fmt: int, photo: np.ndarray) -> None:
    fb, twin = wide_frame(fmt, photo)
    for box in [(0, 0, W, H), F.align_roi(fmt, W, H, (40, 20, 240, 170))]:
        got = F.scaled_region(fb.planes, fmt, W, H, C709, box, (96, 64)).astype(int)
        want = F.scaled_region(twin.planes, twin.format, W, H, C709, box, (96, 64)).astype(int)
        assert got.shape == (64, 96, 3)
        assert np.abs(got - want).mean() < 1.0 and np.abs(got - want).max() <= 4


def test_10_bit_limited_range_levels_with_obs_10_bit_range() -> None:
    """OBS gives 10-bit frames a range of 64..940 / 1023: black and white land on 0 and 255."""
    lo, hi = (64 / 1023,) * 3, (940 / 1023, 960 / 1023, 960 / 1023)
    base = F.ColorParams.standard("709", full_range=False)
    c = F.ColorParams.from_obs(base.matrix, False, lo, hi)
    fb = F.FrameBuffer.allocate(VideoFormat.P010, 8, 2)
    y, uv = fb.planes[0].view("<u2"), fb.planes[1].view("<u2")
    y[:, :4], y[:, 4:8] = 64 << 6, 940 << 6
    uv[:] = 512 << 6
    bgr = F.to_bgr(fb.planes, VideoFormat.P010, 8, 2, c)
    assert np.abs(bgr[:, :4].astype(int)).max() <= 1 and bgr[:, 4:].min() >= 254
