"""A real engine process behind EngineClient: transport, formats, faults, clean shutdown.

Most tests inject small real processors (``tests/engine_processors.py``) at the engine's
processor seam, so transport, conversions and fault handling are tested independently of the
models; the last ones run the real face-swap pipeline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from obs_faceswap.engine import frames as F
from obs_faceswap.engine import protocol as P
from obs_faceswap.engine.client import SUPPORTED_FORMATS, EngineClient, FrameView
from obs_faceswap.runtime import OPENCV_PROVIDER
from obs_faceswap.video_formats import VideoFormat
from tests.engine_processors import default_rect

ROOT = Path(__file__).resolve().parents[2]
INVERT = "tests.engine_processors:invert"
C709 = F.ColorParams.standard("709", full_range=False)
C601_FULL = F.ColorParams.standard("601", full_range=True)
FORMATS = [
    VideoFormat.I420,
    VideoFormat.NV12,
    VideoFormat.YUY2,
    VideoFormat.UYVY,
    VideoFormat.YVYU,
    VideoFormat.I422,
    VideoFormat.I444,
    VideoFormat.BGRA,
    VideoFormat.BGRX,
    VideoFormat.RGBA,
    VideoFormat.Y800,
    VideoFormat.BGR3,
    VideoFormat.I010,
    VideoFormat.P010,
    VideoFormat.I210,
    VideoFormat.I412,
]


# -- helpers --------------------------------------------------------------------------------
def view(
    fb: F.FrameBuffer, ts: int = 0, color: F.ColorParams | None = None, planes: tuple[int, ...] | None = None
) -> FrameView:
    """The FrameView the OBS filter would build for ``fb`` (color None = empty matrix)."""
    if color is None:
        return FrameView(fb.format, fb.width, fb.height, planes or fb.addresses, fb.linesizes, timestamp=ts)
    return FrameView(
        fb.format,
        fb.width,
        fb.height,
        planes or fb.addresses,
        fb.linesizes,
        timestamp=ts,
        color_matrix=color.matrix + (0.0, 0.0, 0.0, 1.0),
        full_range=color.full_range,
        range_min=color.range_min,
        range_max=color.range_max,
    )


def engine_color(color: F.ColorParams | None) -> F.ColorParams:
    """The colour parameters the engine rebuilds from the float32 header fields."""
    if color is None:
        return F.ColorParams.from_obs((), False)
    f32 = [float(np.float32(v)) for v in color.matrix + (0.0, 0.0, 0.0, 1.0)]
    return F.ColorParams.from_obs(
        f32,
        color.full_range,
        [float(np.float32(v)) for v in color.range_min],
        [float(np.float32(v)) for v in color.range_max],
    )


def expected_result(before: F.FrameBuffer, color: F.ColorParams, rect: tuple[int, int, int, int]) -> F.FrameBuffer:
    """What the engine must write: the invert processor's output converted back in place."""
    fmt, w, h = before.format, before.width, before.height
    bgr = F.to_bgr(before.planes, fmt, w, h, color)
    x0, y0, x1, y1 = rect
    bgr[y0:y1, x0:x1] = 255 - bgr[y0:y1, x0:x1]
    a = F.align_roi(fmt, w, h, rect)
    out = before.copy()
    F.from_bgr(bgr[a[1] : a[3], a[0] : a[2]], out.planes, fmt, w, h, color, a)
    return out


def make_frame(fmt: int, img: np.ndarray, color: F.ColorParams, padding: int = 0) -> F.FrameBuffer:
    h, w = img.shape[:2]
    fb = F.FrameBuffer.allocate(fmt, w, h, padding=padding)
    F.from_bgr(img, fb.planes, fmt, w, h, color)
    return fb


def wait_for(client: EngineClient, cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        client.poll()
        if cond():
            return True
        time.sleep(0.005)
    client.poll()
    return cond()


def wait_running(client: EngineClient, timeout: float = 30.0) -> None:
    ok = wait_for(client, lambda: client.status.state == "running", timeout)
    assert ok, f"engine not running: {client.status}"


def round_trip(client: EngineClient, frame: FrameView, timeout: float = 20.0) -> int:
    seq = client.submit(frame)
    assert seq is not None, client.status
    assert wait_for(client, lambda: client.ready(seq), timeout), client.status
    return seq


def shm_names(pid: int) -> list[str]:
    prefix = f"ofs{pid:x}_"
    return [n for n in os.listdir("/dev/shm") if n.startswith(prefix)]


def process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" in f.read()  # a zombie has exited
    except FileNotFoundError:
        return True


@pytest.fixture(scope="module")
def photo(read_image) -> np.ndarray:
    return cv2.resize(read_image("astronaut.png"), (641, 361), interpolation=cv2.INTER_AREA)


@pytest.fixture
def make_client(media) -> Iterator[Callable[..., EngineClient]]:
    clients: list[EngineClient] = []

    def make(
        processor: str | None = INVERT, python: str | None = None, settings: dict | None = None, **kw
    ) -> EngineClient:
        lines: list[str] = []
        s = {"source": str(media("astronaut.png"))} if settings is None else settings
        c = EngineClient(python, s, processor=processor, log=lines.append, **kw)
        c.lines = lines  # type: ignore[attr-defined]
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture(scope="module")
def engine(media) -> Iterator[EngineClient]:
    """One running engine with the invert processor, shared by the format tests."""
    c = EngineClient(None, {"source": str(media("astronaut.png"))}, processor=INVERT)
    c.start()
    wait_running(c)
    yield c
    c.close()


# -- transport and formats ------------------------------------------------------------------
@pytest.fixture(params=["avutil", "python"])
def copy_path(request, engine, monkeypatch):
    """Run a test with each way of copying a rectangle back into a newer frame."""
    if request.param == "python":
        monkeypatch.setattr(engine, "plane_copy", None)
    else:
        assert engine.plane_copy is not None, "libavutil (FFmpeg) not found; OBS always has it"
    return request.param


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: P.FORMAT_NAMES[f])
@pytest.mark.parametrize("color", [None, C601_FULL], ids=["default709", "601full"])
def test_every_format_changes_exactly_the_region(engine, photo, fmt, color, copy_path):
    ecolor = engine_color(color)
    before = make_frame(fmt, photo, ecolor, padding=5)
    want = expected_result(before, ecolor, default_rect(641, 361))

    # applied to the very frame it came from (whole-row copies)
    fb = before.copy()
    seq = round_trip(engine, view(fb, ts=1000, color=color))
    assert engine.apply(seq, view(fb, ts=1000, color=color))
    np.testing.assert_array_equal(fb.data, want.data)

    # applied to another buffer holding the same picture (rectangle copies)
    fb = before.copy()
    seq = round_trip(engine, view(fb, ts=2000, color=color))
    other = before.copy()
    assert engine.apply(seq, view(other, ts=3000, color=color))
    np.testing.assert_array_equal(other.data, want.data)
    np.testing.assert_array_equal(fb.data, before.data)  # submit never writes the frame


def test_result_applied_to_a_newer_frame_changes_only_the_rectangle(engine, photo, copy_path):
    color = C709
    first = make_frame(VideoFormat.I420, photo, color)
    newer = make_frame(VideoFormat.I420, np.roll(photo, 40, axis=1), color)
    seq = round_trip(engine, view(first, ts=1, color=color))
    target = newer.copy()
    assert engine.apply(seq, view(target, ts=2, color=color))
    result = expected_result(first, engine_color(color), default_rect(641, 361))
    x0, y0, x1, y1 = F.align_roi(VideoFormat.I420, 641, 361, default_rect(641, 361))
    for i, (got, new, res) in enumerate(zip(target.planes, newer.planes, result.planes, strict=True)):
        dx, dy, _ = P.FORMATS[VideoFormat.I420].planes[i]
        inside = np.zeros(got.shape, bool)
        inside[y0 // dy : -(-y1 // dy), x0 // dx : -(-x1 // dx)] = True
        np.testing.assert_array_equal(got[inside], res[inside])
        np.testing.assert_array_equal(got[~inside], new[~inside])


def test_planes_in_separate_buffers(engine, photo, copy_path):
    """Planes that do not lie back to back (another producer than OBS) are copied one by one."""
    color = C709
    fb = make_frame(VideoFormat.I420, photo, color)
    want = expected_result(fb, engine_color(color), default_rect(641, 361))
    separate = [p.copy() for p in fb.planes][::-1]  # reversed order in memory too
    addrs = tuple(int(p.ctypes.data) for p in separate[::-1])
    seq = round_trip(engine, view(fb, ts=1, color=color, planes=addrs))
    assert engine.apply(seq, view(fb, ts=1, color=color, planes=addrs))  # whole rows
    for got, exp in zip(separate[::-1], want.planes, strict=True):
        np.testing.assert_array_equal(got, exp)
    separate = [p.copy() for p in fb.planes][::-1]
    addrs = tuple(int(p.ctypes.data) for p in separate[::-1])
    seq = round_trip(engine, view(fb, ts=2, color=color, planes=addrs))
    assert engine.apply(seq, view(fb, ts=3, color=color, planes=addrs))  # rectangles
    for got, exp in zip(separate[::-1], want.planes, strict=True):
        np.testing.assert_array_equal(got, exp)


def test_720p_i420_and_geometry_mismatch(engine, read_image):
    img = cv2.resize(read_image("astronaut.png"), (1280, 720))
    fb = make_frame(VideoFormat.I420, img, C709)
    want = expected_result(fb, engine_color(C709), default_rect(1280, 720))
    seq = round_trip(engine, view(fb, ts=5, color=C709))
    smaller = make_frame(VideoFormat.I420, img[:360, :640].copy(), C709)
    keep = smaller.copy()
    assert not engine.apply(seq, view(smaller, ts=6, color=C709))  # other size: untouched
    np.testing.assert_array_equal(smaller.data, keep.data)
    seq = round_trip(engine, view(fb, ts=7, color=C709))
    assert engine.apply(seq, view(fb, ts=7, color=C709))
    np.testing.assert_array_equal(fb.data, want.data)


def test_unsupported_formats_pass_through(engine):
    buf = np.zeros(64 * 64 * 4, np.uint8)
    for fmt in (13, 21, 0):  # I40A, YA2L, NONE (the OBS filter covers these)
        assert fmt not in SUPPORTED_FORMATS
        fv = FrameView(fmt, 32, 32, (int(buf.ctypes.data),) * 3, (64, 32, 32))
        assert engine.submit(fv) is None
    bad = FrameView(VideoFormat.I420, 64, 64, (int(buf.ctypes.data), 0, 0), (64, 32, 32))
    assert engine.submit(bad) is None  # missing planes
    assert engine.status.state == "running"


# -- timing modes ---------------------------------------------------------------------------
def frames_stream(photo: np.ndarray, n: int) -> list[F.FrameBuffer]:
    return [make_frame(VideoFormat.I420, np.roll(photo, 7 * i, axis=1), C709) for i in range(n)]


@pytest.mark.slow
def test_synchronised_mode_each_frame_gets_its_own_result(make_client, photo):
    client = make_client()
    client.start()
    wait_running(client)
    hold = 3
    client.max_age = hold / 30
    stream = frames_stream(photo, 24)
    originals = [fb.copy() for fb in stream]
    held: list[tuple[int | None, int]] = []
    applied = []
    t0 = time.monotonic()
    for i, fb in enumerate(stream):
        client.poll()
        held.append((client.submit(view(fb, ts=i + 1, color=C709)), i))
        while held and (len(held) > hold or (held[0][0] is not None and client.ready(held[0][0]))):
            seq, j = held.pop(0)
            if seq is not None and client.apply(seq, view(stream[j], ts=j + 1, color=C709)):
                applied.append(j)
        time.sleep(max(0.0, t0 + (i + 1) / 30 - time.monotonic()))
    for seq, j in held:
        if (
            seq is not None
            and wait_for(client, lambda s=seq: client.ready(s), 5.0)
            and client.apply(seq, view(stream[j], ts=j + 1, color=C709))
        ):
            applied.append(j)
    assert len(applied) >= len(stream) // 2, f"only {len(applied)} results: {client.status}"
    ecolor = engine_color(C709)
    for j in range(len(stream)):
        if j in applied:
            want = expected_result(originals[j], ecolor, default_rect(641, 361))
            np.testing.assert_array_equal(stream[j].data, want.data)
        else:  # passed through untouched
            np.testing.assert_array_equal(stream[j].data, originals[j].data)
    # statistics arrive with the engine's next status line (every half second while busy)
    assert wait_for(client, lambda: client.status.fps > 0, 1.5), client.status
    assert client.status.latency_ms > 0


@pytest.mark.slow
def test_lowest_latency_mode_applies_the_previous_frames_result(make_client, photo):
    client = make_client()
    client.start()
    wait_running(client)
    client.max_age = 1.5 / 30
    stream = frames_stream(photo, 16)
    originals = [fb.copy() for fb in stream]
    seqs: dict[int, int] = {}
    applied: dict[int, int] = {}
    for i, fb in enumerate(stream):
        client.poll()
        # submit the clean frame first, then paste the previous frame's result into it
        seq = client.submit(view(fb, ts=i + 1, color=C709))
        prev = seqs.pop(i - 1, None)
        if prev is not None:
            wait_for(client, lambda p=prev: client.ready(p), 0.5)  # the test paces, not OBS
            if client.apply(prev, view(fb, ts=i + 1, color=C709)):
                applied[i] = i - 1
        for old in [s for k, s in seqs.items() if k < i - 1]:
            client.discard(old)
        if seq is not None:
            seqs[i] = seq
        time.sleep(1 / 30)
    assert len(applied) >= len(stream) // 2, client.status
    rect = default_rect(641, 361)
    x0, y0, x1, y1 = F.align_roi(VideoFormat.I420, 641, 361, rect)
    ecolor = engine_color(C709)
    for i, j in applied.items():
        res = expected_result(originals[j], ecolor, rect)
        for k, (got, new, r) in enumerate(zip(stream[i].planes, originals[i].planes, res.planes, strict=True)):
            dx, dy, _ = P.FORMATS[VideoFormat.I420].planes[k]
            inside = np.zeros(got.shape, bool)
            inside[y0 // dy : -(-y1 // dy), x0 // dx : -(-x1 // dx)] = True
            np.testing.assert_array_equal(got[inside], r[inside])
            np.testing.assert_array_equal(got[~inside], new[~inside])


@pytest.mark.slow
def test_deadline_skips_frames_the_engine_cannot_finish_in_time(make_client, photo):
    client = make_client(env={"OFS_TEST_SLEEP": "1.0"})
    client.start()
    wait_running(client)
    client.max_age = 0.5
    fbs = [make_frame(VideoFormat.I420, photo, C709) for _ in range(3)]
    seqs = [client.submit(view(fb, ts=i + 1, color=C709)) for i, fb in enumerate(fbs)]
    assert None not in seqs
    assert wait_for(client, lambda: all(client.ready(s) for s in seqs), 10.0)  # type: ignore[arg-type]
    results = [
        client.apply(s, view(fb, ts=i + 1, color=C709))  # type: ignore[arg-type]
        for i, (s, fb) in enumerate(zip(seqs, fbs, strict=True))
    ]
    # the first is processed (1 s); by then the others are past their 0.5 s deadline
    assert results == [True, False, False]


@pytest.mark.slow
def test_discarded_frames_are_not_processed(make_client, photo, tmp_path):
    done_log = tmp_path / "processed.txt"
    client = make_client(env={"OFS_TEST_SLEEP": "0.3", "OFS_TEST_LOG": str(done_log)})
    client.start()
    wait_running(client)
    fbs = [make_frame(VideoFormat.I420, photo, C709) for _ in range(3)]
    seqs = [client.submit(view(fb, ts=(i + 1) * 10**9, color=C709)) for i, fb in enumerate(fbs)]
    assert None not in seqs
    client.discard(seqs[1])  # type: ignore[arg-type]  # the engine is still busy with the first
    assert wait_for(client, lambda: client.ready(seqs[2]), 10.0)  # type: ignore[arg-type]
    assert client.apply(seqs[0], view(fbs[0], ts=10**9, color=C709))  # type: ignore[arg-type]
    assert client.apply(seqs[2], view(fbs[2], ts=3 * 10**9, color=C709))  # type: ignore[arg-type]
    assert done_log.read_text().split() == ["1.0", "3.0"]  # timestamps, in seconds


# -- faults ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_killed_engine_is_restarted_after_backoff(make_client, photo):
    client = make_client()
    client.start()
    wait_running(client)
    pid = client.status.pid
    assert pid is not None
    fb = make_frame(VideoFormat.I420, photo, C709)
    seq = round_trip(client, view(fb, color=C709))
    assert client.apply(seq, view(fb, color=C709))

    client.update_settings({})  # no-op update must not disturb anything
    slow = client.submit(view(fb, ts=9, color=C709))
    os.kill(pid, signal.SIGKILL)
    assert wait_for(client, lambda: client.status.state == "restarting", 5.0)
    st = client.status
    assert "SIGKILL" in st.message and "restarting in 1 s" in st.message, st
    if slow is not None:  # pending when it died: reported as failed, never applied
        assert client.ready(slow)
        keep = fb.copy()
        assert not client.apply(slow, view(fb, ts=9, color=C709))
        np.testing.assert_array_equal(fb.data, keep.data)
    assert client.submit(view(fb, color=C709)) is None  # frames pass through meanwhile
    t_dead = time.monotonic()
    wait_running(client, 15.0)
    assert time.monotonic() - t_dead >= 0.8  # the back-off was respected
    st = client.status
    assert st.restarts == 1 and st.pid not in (None, pid) and st.message == ""
    seq = round_trip(client, view(fb, ts=10, color=C709))
    assert client.apply(seq, view(fb, ts=10, color=C709))
    assert process_gone(pid)


@pytest.mark.slow
def test_backoff_doubles_on_repeated_crashes(make_client):
    client = make_client(processor="tests.no_such_module:factory", backoff_initial=0.2)
    client.start()
    delays = []
    for _ in range(3):
        assert wait_for(client, lambda: client.status.state == "restarting", 20.0)
        delays.append(client.status.message.rsplit("restarting in ", 1)[1])
        restarts = client.status.restarts
        assert wait_for(client, lambda r=restarts: client.status.restarts > r, 20.0)
    assert delays == ["0.2 s", "0.4 s", "0.8 s"]
    assert "cannot load processor" in client.status.message or any("cannot load processor" in x for x in client.lines)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_hung_engine_is_killed_by_the_watchdog(make_client, photo, tmp_path):
    flag = tmp_path / "hang"
    flag.touch()
    client = make_client(env={"OFS_TEST_HANG_IF_EXISTS": str(flag)}, hang_timeout=1.0)
    client.start()
    wait_running(client)
    pid = client.status.pid
    fb = make_frame(VideoFormat.I420, photo, C709)
    seq = client.submit(view(fb, color=C709))
    assert seq is not None
    t0 = time.monotonic()
    assert wait_for(client, lambda: client.status.state == "restarting", 10.0)
    assert time.monotonic() - t0 >= 0.9
    assert "hung" in client.status.message, client.status
    assert client.ready(seq) and not client.apply(seq, view(fb, color=C709))
    flag.unlink()  # the next engine does not hang
    wait_running(client, 15.0)
    assert client.status.pid != pid and client.status.restarts == 1
    seq = round_trip(client, view(fb, ts=3, color=C709))
    assert client.apply(seq, view(fb, ts=3, color=C709))
    assert wait_for(client, lambda: process_gone(pid), 5.0)  # type: ignore[arg-type]


def test_bad_interpreter_is_reported_not_raised(make_client, photo):
    client = make_client(python="/nonexistent/bin/python3")
    client.start()  # must not raise
    st = client.status
    assert st.state == "restarting"
    assert "/nonexistent/bin/python3" in st.message and "No such file" in st.message
    fb = make_frame(VideoFormat.I420, photo, C709)
    assert client.submit(view(fb, color=C709)) is None
    client.poll()
    client.close()
    assert client.status.state == "stopped"


def test_interpreter_without_the_engine_dependencies(make_client, tmp_path):
    # a Python that cannot import numpy: the engine dies at import, the reason is shown
    fake = tmp_path / "python"
    fake.write_text(
        f"#!/bin/sh\nexec {sys.executable} -S -I -c "
        '\'import sys; sys.stderr.write("ModuleNotFoundError: No module named numpy\\n");'
        " sys.exit(1)'\n"
    )
    fake.chmod(0o755)
    client = make_client(python=str(fake))
    client.start()
    assert wait_for(client, lambda: client.status.state == "restarting", 10.0)
    assert "exited with code 1: ModuleNotFoundError: No module named numpy" in client.status.message


def test_missing_source_photo_then_fixed_live(make_client, photo, media):
    client = make_client(settings={"source": "/nonexistent/me.png"})
    client.start()
    assert wait_for(client, lambda: client.status.state == "error", 20.0)
    st = client.status
    assert st.message == "source photo not found: /nonexistent/me.png" and st.pid is not None
    fb = make_frame(VideoFormat.I420, photo, C709)
    assert client.submit(view(fb, color=C709)) is None
    client.update_settings({"source": str(media("astronaut.png"))})
    wait_running(client, 20.0)
    assert client.status.restarts == 0 and client.status.pid == st.pid
    seq = round_trip(client, view(fb, color=C709))
    assert client.apply(seq, view(fb, color=C709))


def test_disable_and_invalid_settings_live(make_client, photo):
    client = make_client()
    client.start()
    wait_running(client)
    fb = make_frame(VideoFormat.I420, photo, C709)
    client.update_settings({"enabled": False})
    assert client.status.state == "disabled"
    assert client.submit(view(fb, color=C709)) is None
    client.update_settings({"enabled": True, "blend.opacity": 3.0})
    assert wait_for(client, lambda: "blend.opacity" in client.status.message, 10.0)
    assert client.status.state == "running"  # keeps the last good configuration
    seq = round_trip(client, view(fb, color=C709))
    assert client.apply(seq, view(fb, color=C709))


def test_processing_errors_pass_frames_through(make_client, photo):
    client = make_client(processor="tests.engine_processors:raises")
    client.start()
    wait_running(client)
    fb = make_frame(VideoFormat.I420, photo, C709)
    keep = fb.copy()
    seq = round_trip(client, view(fb, color=C709))
    assert not client.apply(seq, view(fb, color=C709))
    np.testing.assert_array_equal(fb.data, keep.data)
    assert wait_for(client, lambda: "processor exploded" in client.status.message, 10.0)
    assert client.status.state == "running" and client.status.restarts == 0


def test_slots_run_out_then_come_back(make_client, photo, tmp_path):
    flag = tmp_path / "hang"
    flag.touch()
    client = make_client(env={"OFS_TEST_HANG_IF_EXISTS": str(flag)}, slots=2)
    client.start()
    wait_running(client)
    fb = make_frame(VideoFormat.I420, photo, C709)
    a = client.submit(view(fb, ts=1, color=C709))
    b = client.submit(view(fb, ts=2, color=C709))
    assert a is not None and b is not None
    assert client.submit(view(fb, ts=3, color=C709)) is None  # both slots busy
    client.discard(a)  # abandoned: the engine still owns it, so it is not reused yet
    assert client.submit(view(fb, ts=4, color=C709)) is None
    flag.unlink()
    assert wait_for(client, lambda: client.ready(b), 10.0)  # type: ignore[arg-type]
    client.discard(b)  # type: ignore[arg-type]
    c = client.submit(view(fb, ts=5, color=C709))
    assert c is not None
    assert wait_for(client, lambda: client.ready(c), 10.0)
    assert client.apply(c, view(fb, ts=5, color=C709))


# -- lifecycle ------------------------------------------------------------------------------
def test_close_leaves_no_process_and_no_shared_memory(make_client, photo):
    others = set(shm_names(os.getpid()))  # segments of other clients in this test process
    client = make_client()
    client.start()
    wait_running(client)
    pid = client.status.pid
    fbs = [make_frame(fmt, photo, C709) for fmt in (VideoFormat.I420, VideoFormat.BGRA, VideoFormat.NV12)]
    seqs = [client.submit(view(fb, ts=i + 1, color=C709)) for i, fb in enumerate(fbs)]
    assert None not in seqs  # three frames in flight: three slots, three segments
    ours = set(shm_names(os.getpid())) - others
    assert len(ours) == 3
    client.close()
    client.close()  # idempotent
    assert process_gone(pid)  # type: ignore[arg-type]
    assert set(shm_names(os.getpid())) & ours == set()
    assert client.status.state == "stopped" and client.status.pid is None
    assert client.submit(view(fbs[0], color=C709)) is None
    assert not [t for t in threading.enumerate() if f"obs-faceswap-engine-{pid}-" in t.name]


@pytest.mark.slow
@pytest.mark.parametrize("hung", [False, True], ids=["idle", "hung"])
def test_engine_exits_when_its_parent_dies(media, tmp_path, hung):
    """No orphan: an idle engine sees stdin EOF; a hung one notices its parent is gone."""
    flag = tmp_path / "hang"
    if hung:
        flag.touch()
    script = textwrap.dedent(f"""
        import sys, time
        from obs_faceswap.engine.client import EngineClient, FrameView
        c = EngineClient(None, {{"source": {str(media("astronaut.png"))!r}}},
                         processor={INVERT!r}, env={{"OFS_TEST_HANG_IF_EXISTS": {str(flag)!r}}})
        c.start()
        while c.status.state != "running":
            c.poll(); time.sleep(0.01)
        buf = bytearray(64 * 48 * 4)
        import ctypes
        addr = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))
        assert c.submit(FrameView(7, 64, 48, (addr,), (256,))) is not None
        print(c.status.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = parent.stdout.readline()  # type: ignore[union-attr]
        engine_pid = int(line)
        assert not process_gone(engine_pid)
        parent.kill()  # SIGKILL: no close(), no cleanup
        parent.wait(10)
        end = time.monotonic() + 15
        while time.monotonic() < end and not process_gone(engine_pid):
            time.sleep(0.05)
        assert process_gone(engine_pid), "engine outlived its parent"
    finally:
        parent.kill()
        # a SIGKILLed parent cannot unlink its segments: remove them for the next tests
        for name in shm_names(parent.pid):
            os.unlink(f"/dev/shm/{name}")


# -- the real pipeline ----------------------------------------------------------------------
def obama_frame(media, index: int = 30) -> np.ndarray:
    cap = cv2.VideoCapture(str(media("dfl_Obama_speaking.mp4")))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


@pytest.mark.slow
def test_real_pipeline_swaps_a_face_in_an_i420_frame(make_client, media):
    client = make_client(processor=None, settings={"source": str(media("astronaut.png"))})
    client.start()
    wait_running(client, 120.0)
    assert client.status.provider in ("CPUExecutionProvider", OPENCV_PROVIDER)  # no GPU here
    img = obama_frame(media)
    h, w = img.shape[:2]
    fb = make_frame(VideoFormat.I420, img, C709)
    before = fb.copy()
    applied = False
    for i in range(5):  # the first frames run detection + warm-up
        seq = round_trip(client, view(fb, ts=(i + 1) * 33_000_000, color=C709), 60.0)
        applied = client.apply(seq, view(fb, ts=(i + 1) * 33_000_000, color=C709))
        if applied:
            break
    assert applied, client.status
    changed = np.zeros((h, w), bool)
    changed |= before.planes[0][:, :w] != fb.planes[0][:, :w]
    ys, xs = np.nonzero(changed)
    # the face of dfl_Obama_speaking.mp4 (512x388) is ~145 px wide around x≈250, y≈200
    assert 90 < xs.max() - xs.min() < 260 and 90 < ys.max() - ys.min() < 260
    assert 150 < xs.mean() < 350 and 120 < ys.mean() < 300
    assert changed.mean() < 0.3  # the rest of the frame is untouched
    st = client.status
    assert st.state == "running" and st.message == ""
    # The photo's rating reaches the client (OBS shows it in the status line): astronaut.png's
    # face is 94 px wide; johansson_1.jpg rates good on every aspect.
    assert st.source_note.startswith("source photo poor: face size: the face is 94 px wide"), st
    client.update_settings({"source": str(media("faces/johansson_1.jpg"))})
    assert wait_for(client, lambda: client.status.source_note == "", 60.0), client.status
    assert client.status.state == "running" and client.status.message == ""


@pytest.mark.slow
def test_real_pipeline_with_a_corrupt_model(make_client, media, tmp_path, models_dir):
    bad = tmp_path / "models"
    bad.mkdir()
    good = (models_dir / "yunet_n_dynamic.onnx").read_bytes()
    (bad / "yunet_n_dynamic.onnx").write_bytes(good[: len(good) // 2] + b"\0" * (len(good) // 2))
    client = make_client(processor=None, settings={"source": str(media("astronaut.png")), "models_dir": str(bad)})
    client.start()
    assert wait_for(client, lambda: client.status.state == "error", 120.0), client.status
    msg = client.status.message
    assert "yunet_n_dynamic.onnx" in msg and "corrupt" in msg and "sha256" in msg
    assert client.status.restarts == 0
    client.update_settings({"models_dir": ""})  # back to the good models, live
    wait_running(client, 120.0)


@pytest.mark.slow
def test_real_pipeline_with_the_badge_changes_only_the_face_and_the_badge(make_client, media):
    """The face and a badge in the opposite corner come back as two rectangles: nothing between
    them is touched (they are converted separately, never as one frame-spanning box)."""
    client = make_client(
        processor=None,
        settings={"source": str(media("astronaut.png")), "badge.enabled": True, "badge.corner": "top-left"},
    )
    client.start()
    wait_running(client, 120.0)
    img = cv2.resize(obama_frame(media), (1280, 720), interpolation=cv2.INTER_LINEAR)
    fb = make_frame(VideoFormat.I420, img, C709)
    before = fb.copy()
    applied = False
    for i in range(5):
        seq = round_trip(client, view(fb, ts=(i + 1) * 33_000_000, color=C709), 60.0)
        applied = client.apply(seq, view(fb, ts=(i + 1) * 33_000_000, color=C709))
        if applied:
            break
    assert applied, client.status
    y_changed = before.planes[0][:720, :1280] != fb.planes[0][:720, :1280]
    ys, xs = np.nonzero(y_changed)
    in_badge = (xs < 300) & (ys < 80)
    assert in_badge.sum() > 500, "the badge is missing"
    fx, fy = xs[~in_badge], ys[~in_badge]
    assert len(fx) > 20000, "the face was not swapped"
    # the face of the clip scaled to 720p is ~360 px wide, around (640, 360)
    assert fx.min() > 380 and fx.max() < 900 and fy.min() > 100 and fy.max() < 650
    # between them, e.g. the whole band left of the face and below the badge: untouched
    assert not y_changed[100:, : fx.min()].any()


@pytest.mark.slow
def test_plugin_swapper_runs_in_the_engine_process(make_client, media):
    """A swapper written against the protocol alone (tests/swappers.py), chosen by setting: the
    engine's real pipeline builds it through the factory, and its inverted face comes back."""
    from tests.swappers import INVERT as INVERT_FACE

    client = make_client(processor=None, settings={"swapper.kind": "plugin", "swapper.plugin": INVERT_FACE})
    client.start()
    wait_running(client, 120.0)  # no source photo needed: this swapper says so
    img = obama_frame(media)
    h, w = img.shape[:2]
    fb = make_frame(VideoFormat.I420, img, C709)
    before = fb.copy()
    applied = False
    for i in range(5):
        seq = round_trip(client, view(fb, ts=(i + 1) * 33_000_000, color=C709), 60.0)
        applied = client.apply(seq, view(fb, ts=(i + 1) * 33_000_000, color=C709))
        if applied:
            break
    assert applied, client.status
    ys, xs = np.nonzero(before.planes[0][:h, :w] != fb.planes[0][:h, :w])
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    # the face box of dfl_Obama_speaking.mp4 (512x388): ~110 px wide around x≈270
    assert 90 < x1 - x0 < 260 and 150 < (x0 + x1) / 2 < 350
    # inside the box (away from its chroma-shared edge) the pixels are the input's inverse
    c = engine_color(C709)
    got = F.to_bgr(fb.planes, VideoFormat.I420, w, h, c).astype(int)[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2]
    src = F.to_bgr(before.planes, VideoFormat.I420, w, h, c).astype(int)[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2]
    assert np.abs(got - (255 - src)).mean() < 4.0
    # and nothing outside it changed
    changed = before.planes[0][:h, :w] != fb.planes[0][:h, :w]
    changed[y0:y1, x0:x1] = False
    assert not changed.any()
    st = client.status
    assert st.state == "running" and st.message == ""
