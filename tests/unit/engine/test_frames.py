"""OBS frame planes ↔ BGR: colour matrices, ranges, every format, regions, odd sizes, padding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.engine import frames as F
from obs_faceswap.engine import protocol as P
from obs_faceswap.errors import FrameFormatError
from obs_faceswap.video_formats import VideoFormat

YUV_FORMATS = [
    VideoFormat.I420,
    VideoFormat.NV12,
    VideoFormat.I422,
    VideoFormat.I444,
    VideoFormat.YUY2,
    VideoFormat.UYVY,
    VideoFormat.YVYU,
]
RGB_FORMATS = [VideoFormat.BGRA, VideoFormat.BGRX, VideoFormat.RGBA, VideoFormat.BGR3]
ALL_FORMATS = YUV_FORMATS + RGB_FORMATS + [VideoFormat.Y800]
NAMES = {f: P.FORMAT_NAMES[f] for f in ALL_FORMATS}

# YUV → RGB matrices OBS computes (libobs/media-io/video-matrices.c precomputed tables, 8 bit)
OBS_601_LIMITED = (
    1.164384,
    0.000000,
    1.596027,
    -0.874202,
    1.164384,
    -0.391762,
    -0.812968,
    0.531668,
    1.164384,
    2.017232,
    0.000000,
    -1.085631,
)
OBS_709_LIMITED = (
    1.164384,
    0.000000,
    1.792741,
    -0.972945,
    1.164384,
    -0.213249,
    -0.532909,
    0.301483,
    1.164384,
    2.112402,
    0.000000,
    -1.133402,
)

# 100 % colour bars, BGR, and their published 8-bit Y'CbCr codes (limited range)
BARS_BGR = [
    (255, 255, 255),
    (0, 255, 255),
    (255, 255, 0),
    (0, 255, 0),
    (255, 0, 255),
    (0, 0, 255),
    (255, 0, 0),
    (0, 0, 0),
]
BARS_601 = [
    (235, 128, 128),
    (210, 16, 146),
    (170, 166, 16),
    (145, 54, 34),
    (106, 202, 222),
    (81, 90, 240),
    (41, 240, 110),
    (16, 128, 128),
]
BARS_709 = [
    (235, 128, 128),
    (219, 16, 138),
    (188, 154, 16),
    (173, 42, 26),
    (78, 214, 230),
    (63, 102, 240),
    (32, 240, 118),
    (16, 128, 128),
]

# YUV → BGR → YUV changes a code by at most 1 (8-bit rounding) ... unless subsampled chroma
# shared by a 2x1 / 2x2 block puts one of its pixels outside the RGB gamut (dark or bright
# pixels next to saturated ones): BGR clips there. Measured on the photo below: 0.01 % of the
# bytes, by at most 7 codes.
ROUND_TRIP_TOL = 1
GAMUT_CLIP_TOL = 8
GAMUT_CLIP_FRACTION = 1e-3


@pytest.fixture(scope="module")
def photo(read_image):
    """A natural 1280x720 BGR image (smooth skin, hard edges, saturated colours)."""
    return cv2.resize(read_image("astronaut.png"), (1280, 720), interpolation=cv2.INTER_AREA)


def bars_image(block_w: int = 16, block_h: int = 8) -> np.ndarray:
    row = np.concatenate([np.full((block_h, block_w, 3), c, np.uint8) for c in BARS_BGR], axis=1)
    return row


def make_frame(fmt: int, bgr: np.ndarray, color: F.ColorParams, padding: int = 0) -> F.FrameBuffer:
    h, w = bgr.shape[:2]
    fb = F.FrameBuffer.allocate(fmt, w, h, padding=padding)
    F.from_bgr(bgr, fb.planes, fmt, w, h, color)
    return fb


def yuv_at(fb: F.FrameBuffer, x: int, y: int) -> tuple[int, int, int]:
    """(Y, U, V) codes of pixel (x, y), read straight from the planes."""
    p = fb.planes
    fmt = fb.format
    if fmt in (VideoFormat.I420, VideoFormat.I422, VideoFormat.I444):
        sx, sy = (2, 2) if fmt == VideoFormat.I420 else (2, 1) if fmt == VideoFormat.I422 else (1, 1)
        return int(p[0][y, x]), int(p[1][y // sy, x // sx]), int(p[2][y // sy, x // sx])
    if fmt == VideoFormat.NV12:
        return int(p[0][y, x]), int(p[1][y // 2, 2 * (x // 2)]), int(p[1][y // 2, 2 * (x // 2) + 1])
    packed = {VideoFormat.YUY2: (0, 2, 1, 3), VideoFormat.UYVY: (1, 3, 0, 2), VideoFormat.YVYU: (0, 2, 3, 1)}
    iy0, iy1, iu, iv = packed[fmt]
    mp = p[0][y, 4 * (x // 2) : 4 * (x // 2) + 4]
    return int(mp[iy0 if x % 2 == 0 else iy1]), int(mp[iu]), int(mp[iv])


# -- colour ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("space", "expected"), [("601", OBS_601_LIMITED), ("709", OBS_709_LIMITED)])
def test_standard_matrix_equals_obs_table(space, expected):
    c = F.ColorParams.standard(space, full_range=False)
    np.testing.assert_allclose(c.matrix, expected, atol=2e-6)
    np.testing.assert_allclose(c.range_min, (16 / 255,) * 3)
    np.testing.assert_allclose(c.range_max, (235 / 255, 240 / 255, 240 / 255))


@pytest.mark.parametrize("fmt", YUV_FORMATS, ids=lambda f: NAMES[f])
@pytest.mark.parametrize(("space", "bars"), [("601", BARS_601), ("709", BARS_709)])
def test_colour_bars_encode_to_published_codes(fmt, space, bars):
    color = F.ColorParams.standard(space, full_range=False)
    img = bars_image()
    fb = make_frame(fmt, img, color)
    for i, expected in enumerate(bars):
        got = yuv_at(fb, 16 * i + 8, 4)
        assert np.abs(np.subtract(got, expected)).max() <= 1, (i, got, expected)


@pytest.mark.parametrize(("space", "bars"), [("601", BARS_601), ("709", BARS_709)])
def test_published_codes_decode_to_colour_bars(space, bars):
    color = F.ColorParams.standard(space, full_range=False)
    fb = F.FrameBuffer.allocate(VideoFormat.I444, len(bars), 1)
    for i, (y, u, v) in enumerate(bars):
        fb.planes[0][0, i], fb.planes[1][0, i], fb.planes[2][0, i] = y, u, v
    bgr = F.to_bgr(fb.planes, VideoFormat.I444, len(bars), 1, color)
    assert np.abs(bgr[0].astype(int) - np.array(BARS_BGR)).max() <= 2


def test_full_range_601_matches_jpeg_ycbcr(photo):
    # OpenCV's BGR2YCrCb is the JFIF (full-range BT.601) transform: an independent reference
    color = F.ColorParams.standard("601", full_range=True)
    fb = make_frame(VideoFormat.I444, photo, color)
    ref = cv2.cvtColor(photo, cv2.COLOR_BGR2YCrCb)
    p = fb.planes
    assert np.abs(p[0][:, :1280].astype(int) - ref[..., 0]).max() <= 1
    assert np.abs(p[1][:, :1280].astype(int) - ref[..., 2]).max() <= 1  # Cb
    assert np.abs(p[2][:, :1280].astype(int) - ref[..., 1]).max() <= 1  # Cr


def test_limited_601_i420_matches_opencv_decoder(photo):
    # OpenCV's YUV2BGR_I420 decodes BT.601 limited range with replicated chroma
    color = F.ColorParams.standard("601", full_range=False)
    fb = F.FrameBuffer.allocate(VideoFormat.I420, 1280, 720, align=1)
    F.from_bgr(photo, fb.planes, VideoFormat.I420, 1280, 720, color)
    ours = F.to_bgr(fb.planes, VideoFormat.I420, 1280, 720, color)
    ref = cv2.cvtColor(fb.data[: 1280 * 720 * 3 // 2].reshape(1080, 1280), cv2.COLOR_YUV2BGR_I420)
    assert np.abs(ours.astype(int) - ref).max() <= 2


def reference_bgr(y: int, u: int, v: int, kb: float, kr: float) -> np.ndarray:
    """Textbook limited-range Y'CbCr → R'G'B' (ITU-R BT.601 / BT.709 equations), 8 bit."""
    yn, pb, pr = (y - 16) / 219, (u - 128) / 224, (v - 128) / 224
    kg = 1 - kb - kr
    r = yn + 2 * (1 - kr) * pr
    b = yn + 2 * (1 - kb) * pb
    g = (yn - kr * r - kb * b) / kg
    return np.clip(np.round(np.array([b, g, r]) * 255), 0, 255)


@pytest.mark.parametrize("yuv", [(81, 90, 240), (145, 54, 34), (120, 170, 90), (200, 100, 150)])
def test_601_and_709_decode_like_the_textbook_equations(yuv):
    fb = F.FrameBuffer.allocate(VideoFormat.I444, 1, 1)
    fb.planes[0][0, 0], fb.planes[1][0, 0], fb.planes[2][0, 0] = yuv
    got601 = F.to_bgr(fb.planes, VideoFormat.I444, 1, 1, F.ColorParams.standard("601"))[0, 0]
    got709 = F.to_bgr(fb.planes, VideoFormat.I444, 1, 1, F.ColorParams.standard("709"))[0, 0]
    ref601 = reference_bgr(*yuv, kb=0.114, kr=0.299)
    ref709 = reference_bgr(*yuv, kb=0.0722, kr=0.2126)
    assert np.abs(got601 - ref601).max() <= 1
    assert np.abs(got709 - ref709).max() <= 1
    assert np.abs(ref601 - ref709).max() >= 4  # the two matrices really differ here


def test_limited_range_clamps_like_obs():
    # OBS clamps limited-range codes to 16..235 / 16..240 before the matrix
    color = F.ColorParams.standard("709", full_range=False)
    fb = F.FrameBuffer.allocate(VideoFormat.I444, 2, 1)
    fb.planes[0][0, :2] = (0, 16)
    fb.planes[1][0, :2] = (128, 128)
    fb.planes[2][0, :2] = (128, 128)
    bgr = F.to_bgr(fb.planes, VideoFormat.I444, 2, 1, color)
    np.testing.assert_array_equal(bgr[0, 0], bgr[0, 1])
    np.testing.assert_array_equal(bgr[0, 0], (0, 0, 0))


def test_from_obs_uses_frame_matrix_and_defaults():
    m16 = OBS_601_LIMITED + (0.0, 0.0, 0.0, 1.0)
    c = F.ColorParams.from_obs(m16, False, (16 / 255,) * 3, (235 / 255, 240 / 255, 240 / 255))
    np.testing.assert_allclose(c.yuv_to_bgr, F.ColorParams.standard("601").yuv_to_bgr, atol=1e-4)
    # empty and all-zero matrices (RGB sources) mean OBS's default: BT.709 in the frame's range
    for empty in ((), (0.0,) * 16):
        d = F.ColorParams.from_obs(empty, True)
        assert d == F.ColorParams.standard("709", full_range=True)
    # a limited frame that left its range at [0, 1] still gets the limited clamp
    e = F.ColorParams.from_obs(m16, False)
    assert e.clamp_luts is not None and int(e.clamp_luts[0][0]) == 16


def test_unknown_colorspace_and_singular_matrix_raise():
    with pytest.raises(ValueError, match="colorspace"):
        F.ColorParams.standard("2020")
    with pytest.raises(ValueError, match="singular"):
        F.ColorParams((1.0, 0, 0, 0) * 3)


def test_y800_range():
    for full, (lo, hi) in ((False, (16, 235)), (True, (0, 255))):
        color = F.ColorParams.standard("709", full_range=full)
        fb = F.FrameBuffer.allocate(VideoFormat.Y800, 2, 1)
        fb.planes[0][0, :2] = (lo, hi)
        bgr = F.to_bgr(fb.planes, VideoFormat.Y800, 2, 1, color)
        np.testing.assert_array_equal(bgr[0], [(0, 0, 0), (255, 255, 255)])
        F.from_bgr(bgr, fb.planes, VideoFormat.Y800, 2, 1, color)
        np.testing.assert_array_equal(fb.planes[0][0, :2], (lo, hi))


# -- round trips ----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=lambda f: NAMES[f])
@pytest.mark.parametrize(("w", "h"), [(1280, 720), (641, 361)])
def test_round_trip_every_format(fmt, w, h, photo):
    """planes → BGR → planes returns the planes (what keeps unchanged pixels unchanged)."""
    color = F.ColorParams.standard("709", full_range=False)
    img = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
    fb = make_frame(fmt, img, color, padding=7)
    bgr = F.to_bgr(fb.planes, fmt, w, h, color)
    assert bgr.shape == (h, w, 3)
    again = fb.copy()
    F.from_bgr(bgr, again.planes, fmt, w, h, color)
    diff = np.abs(again.data.astype(int) - fb.data)
    if fmt in RGB_FORMATS:
        assert diff.max() == 0
    elif P.FORMATS[fmt].sub_x == 1:  # I444, Y800
        assert diff.max() <= ROUND_TRIP_TOL
    else:
        assert diff.max() <= GAMUT_CLIP_TOL
        assert (diff > ROUND_TRIP_TOL).mean() < GAMUT_CLIP_FRACTION
    # and the image itself: exact for RGB, close for 4:4:4, chroma-blurred for 4:2:x
    err = np.abs(bgr.astype(int) - img)
    if fmt in RGB_FORMATS:
        assert err.max() == 0
    elif fmt == VideoFormat.I444:
        assert err.max() <= 2
    elif fmt != VideoFormat.Y800:
        assert err.mean() < 3.0


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=lambda f: NAMES[f])
def test_region_conversion_matches_full_frame(fmt, photo):
    color = F.ColorParams.standard("601", full_range=True)
    w, h = 641, 361
    fb = make_frame(fmt, cv2.resize(photo, (w, h)), color, padding=3)
    full = F.to_bgr(fb.planes, fmt, w, h, color)
    for roi in [(0, 0, w, h), (100, 50, 300, 200), (101, 51, 299, 199), (w - 5, h - 3, w, h)]:
        x0, y0, x1, y1 = roi
        part = F.to_bgr(fb.planes, fmt, w, h, color, roi)
        np.testing.assert_array_equal(part, full[y0:y1, x0:x1])


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=lambda f: NAMES[f])
def test_output_buffer_and_scratch_reuse(fmt, photo):
    color = F.ColorParams.standard("709", full_range=False)
    frames = [make_frame(fmt, cv2.resize(np.roll(photo, 50 * i, axis=1), (641, 361)), color) for i in range(2)]
    scratch: F.Scratch = {}
    out = np.empty((361, 641, 3), np.uint8)
    for fb in frames:  # the second frame reuses the first one's intermediates
        ref = F.to_bgr(fb.planes, fmt, 641, 361, color)
        got = F.to_bgr(fb.planes, fmt, 641, 361, color, out=out, scratch=scratch)
        assert got is out
        np.testing.assert_array_equal(got, ref)
    assert scratch or P.FORMATS[fmt].sub_x == 1 or not P.FORMATS[fmt].yuv
    # an unusable output buffer is ignored, not written
    small = np.zeros((10, 10, 3), np.uint8)
    got = F.to_bgr(frames[0].planes, fmt, 641, 361, color, out=small)
    assert got is not small and got.shape == (361, 641, 3) and not small.any()


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=lambda f: NAMES[f])
@pytest.mark.parametrize("roi", [(101, 51, 299, 199), (0, 0, 7, 5), (630, 350, 641, 361)])
def test_region_write_touches_only_the_aligned_region(fmt, roi, photo):
    color = F.ColorParams.standard("709", full_range=False)
    w, h = 641, 361
    fb = make_frame(fmt, cv2.resize(photo, (w, h)), color, padding=9)
    for p in fb.planes:
        p[:, p.shape[1] - 9 :] = 0xAB  # mark the row padding (allocated with padding=9)
    before = fb.copy()
    x0, y0, x1, y1 = F.align_roi(fmt, w, h, roi)
    patch = np.full((y1 - y0, x1 - x0, 3), (10, 200, 30), np.uint8)
    F.from_bgr(patch, fb.planes, fmt, w, h, color, (x0, y0, x1, y1))
    info = P.FORMATS[fmt]
    for i, (p, q) in enumerate(zip(fb.planes, before.planes, strict=True)):
        div_x, div_y, unit = info.planes[i]
        r0, r1 = y0 // div_y, -(-y1 // div_y)
        b0, b1 = (x0 // div_x) * unit, -(-x1 // div_x) * unit
        changed = p != q
        inside = np.zeros_like(changed)
        inside[r0:r1, b0:b1] = True
        assert not changed[~inside].any(), f"plane {i} changed outside the region"
        assert changed[inside].any(), f"plane {i} unchanged inside the region"
        assert (p[:, p.shape[1] - 9 :] == 0xAB).all(), "row padding was written"
    got = F.to_bgr(fb.planes, fmt, w, h, color, (x0, y0, x1, y1))
    expect: tuple[int, ...] = (10, 200, 30)
    if fmt == VideoFormat.Y800:
        expect = (cv2.cvtColor(patch[:1, :1], cv2.COLOR_BGR2GRAY)[0, 0],) * 3
    assert np.abs(got.astype(int) - expect).max() <= 3


def test_bgra_keeps_alpha():
    fb = F.FrameBuffer.allocate(VideoFormat.BGRA, 4, 2)
    fb.planes[0][:, 3:16:4] = 77
    F.from_bgr(np.full((2, 4, 3), 200, np.uint8), fb.planes, VideoFormat.BGRA, 4, 2, F.ColorParams.standard())
    assert (fb.planes[0][:, 3:16:4] == 77).all()
    assert (fb.planes[0][:, 0:16:4] == 200).all()


def test_rgba_channel_order():
    fb = F.FrameBuffer.allocate(VideoFormat.RGBA, 1, 1)
    fb.planes[0][0, :4] = (250, 20, 5, 255)  # R, G, B, A
    bgr = F.to_bgr(fb.planes, VideoFormat.RGBA, 1, 1, F.ColorParams.standard())
    np.testing.assert_array_equal(bgr[0, 0], (5, 20, 250))


# -- geometry and errors --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "roi", "expected"),
    [
        (VideoFormat.I420, (3, 5, 10, 11), (2, 4, 10, 12)),
        (VideoFormat.I420, (-10, -10, 5000, 5000), (0, 0, 641, 361)),  # clipped; odd edges stay
        (VideoFormat.I420, (639, 359, 700, 400), (638, 358, 641, 361)),
        (VideoFormat.I422, (3, 5, 10, 11), (2, 5, 10, 11)),
        (VideoFormat.YUY2, (3, 5, 10, 11), (2, 5, 10, 11)),
        (VideoFormat.I444, (3, 5, 10, 11), (3, 5, 10, 11)),
        (VideoFormat.BGRA, (3, 5, 10, 11), (3, 5, 10, 11)),
        (VideoFormat.I420, (700, 0, 800, 10), (0, 0, 0, 0)),  # outside: empty
        (VideoFormat.I420, None, (0, 0, 641, 361)),
    ],
)
def test_align_roi(fmt, roi, expected):
    assert F.align_roi(fmt, 641, 361, roi) == expected


def test_unsupported_format_is_a_clear_error():
    with pytest.raises(FrameFormatError, match="not supported.*I420"):
        F.align_roi(VideoFormat.YUVA, 10, 10, None)  # alpha: covered by the filter, never swapped
    with pytest.raises(FrameFormatError, match="not supported"):
        F.FrameBuffer.allocate(99, 10, 10)


def test_misaligned_region_and_wrong_shapes_raise():
    color = F.ColorParams.standard()
    fb = F.FrameBuffer.allocate(VideoFormat.I420, 16, 16)
    with pytest.raises(FrameFormatError, match="aligned"):
        F.from_bgr(np.zeros((4, 4, 3), np.uint8), fb.planes, VideoFormat.I420, 16, 16, color, (1, 1, 5, 5))
    with pytest.raises(FrameFormatError, match="uint8"):
        F.from_bgr(np.zeros((4, 4, 3), np.uint8), fb.planes, VideoFormat.I420, 16, 16, color, (0, 0, 6, 4))
    with pytest.raises(FrameFormatError, match="outside"):
        F.to_bgr(fb.planes, VideoFormat.I420, 16, 16, color, (0, 0, 17, 4))
    with pytest.raises(FrameFormatError, match="linesize"):
        F.plane_layout(VideoFormat.I420, 16, 16, (8, 8, 8))
    with pytest.raises(FrameFormatError, match="planes"):
        F.to_bgr(fb.planes[:1], VideoFormat.I420, 16, 16, color)


def test_plane_arrays_view_a_shared_buffer_with_offsets():
    fb = F.FrameBuffer.allocate(VideoFormat.NV12, 33, 17, align=64)
    assert fb.linesizes == (64, 64)
    views = F.plane_arrays(fb.data, VideoFormat.NV12, 33, 17, fb.linesizes, fb.offsets)
    assert [v.shape for v in views] == [(17, 64), (9, 64)]
    views[1][8, 0] = 99
    assert fb.data[fb.offsets[1] + 8 * 64] == 99
    with pytest.raises(FrameFormatError, match="overruns"):
        F.plane_arrays(fb.data[:100], VideoFormat.NV12, 33, 17, fb.linesizes, fb.offsets)
