"""The engine's wire format, shared memory, and the server's frame/settings handling in-process.

The server is driven exactly like the client drives it (slot header + planes in a shared
segment, then "A"/"S"/"F" messages), with a small real processor injected at the factory seam.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from obs_faceswap.engine import frames as F
from obs_faceswap.engine import protocol as P
from obs_faceswap.engine.server import EngineServer, load_factory
from obs_faceswap.engine.shm import SharedBuffer
from obs_faceswap.errors import EngineError
from obs_faceswap.video_formats import VideoFormat
from tests import engine_processors as procs

COLOR = F.ColorParams.standard("709", full_range=False)
M16 = COLOR.matrix + (0.0, 0.0, 0.0, 1.0)


# -- messages and headers -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (P.encode_frame(3, 12345678901), ("F", 3, 12345678901)),
        (P.encode_attach(7, "ofs1a2b_deadbeef", 4096), ("A", 7, "ofs1a2b_deadbeef", 4096)),
        (
            P.encode_settings({"source": "/a b/\nphoto.png", "blend.opacity": 0.5}),
            ("S", {"source": "/a b/\nphoto.png", "blend.opacity": 0.5}),
        ),
        (P.QUIT, ("Q",)),
    ],
)
def test_messages_round_trip(data, expected):
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert P.decode_message(data) == expected


@pytest.mark.parametrize("line", [b"X 1 2\n", b"F 1\n", b"S [1, 2]\n", b"S {bad json\n", b"A 1\n"])
def test_bad_messages_raise_value_error(line):
    with pytest.raises(ValueError):
        P.decode_message(line)


def test_status_lines():
    line = P.encode_status(state="running", fps=29.5)
    d = P.decode_status(line)
    assert d == {"state": "running", "fps": 29.5, "protocol": P.PROTOCOL_VERSION}
    assert P.decode_status(b"some library printed this\n") is None
    assert P.decode_status(b"[1, 2]\n") is None


def test_frame_header_round_trip():
    buf = bytearray(P.HEADER_SIZE)
    P.pack_frame(
        buf,
        VideoFormat.NV12,
        1921,
        1081,
        (1952, 1952),
        (0, 2110112),
        (2110112, 1056608),
        2**63 + 5,
        M16,
        (0.1, 0.2, 0.3),
        (0.7, 0.8, 0.9),
        True,
    )
    h = P.unpack_frame(buf)
    assert (h.format, h.width, h.height) == (VideoFormat.NV12, 1921, 1081)
    assert h.linesizes == (1952, 1952) and h.offsets == (0, 2110112)
    assert h.sizes == (2110112, 1056608) and h.timestamp == 2**63 + 5
    np.testing.assert_allclose(h.color_matrix, M16, rtol=1e-6)
    np.testing.assert_allclose(h.range_min, (0.1, 0.2, 0.3), rtol=1e-6)
    assert h.full_range is True


def test_format_table_matches_obs_plane_sizes():
    # OBS (video-frame.c): I420 chroma planes are ((w+1)/2) x ((h+1)/2); YUY2 rows are
    # ((w+1)/2)*4 bytes; NV12's UV plane has (h+1)/2 rows of ((w+1)/2)*2 bytes
    i420 = P.FORMATS[VideoFormat.I420]
    assert [i420.row_bytes(i, 641) for i in range(3)] == [641, 321, 321]
    assert [i420.rows(i, 361) for i in range(3)] == [361, 181, 181]
    assert P.FORMATS[VideoFormat.YUY2].row_bytes(0, 641) == 1284
    assert P.FORMATS[VideoFormat.NV12].row_bytes(1, 641) == 642
    assert P.FORMATS[VideoFormat.BGR3].row_bytes(0, 5) == 15


# -- shared memory --------------------------------------------------------------------------
def test_shared_buffer_create_attach_unlink():
    seg = SharedBuffer.create(10000)
    try:
        assert seg.size >= 10000 and len(seg.name) <= 30
        other = SharedBuffer.attach(seg.name)
        other.buf[5:8] = b"abc"
        assert bytes(seg.buf[5:8]) == b"abc"
        import ctypes

        assert ctypes.string_at(seg.address + 5, 3) == b"abc"
        other.close()
        other.close()  # idempotent
        if sys.platform.startswith("linux"):
            assert os.path.exists(f"/dev/shm/{seg.name}")
    finally:
        name = seg.name
        seg.unlink()
        seg.unlink()
    if sys.platform.startswith("linux"):
        assert not os.path.exists(f"/dev/shm/{name}")
    with pytest.raises(FileNotFoundError):
        SharedBuffer.attach(name)


def test_shared_memory_never_starts_the_resource_tracker():
    # In OBS the tracker would spawn sys.executable (= OBS itself); in the engine it would
    # unlink the client's segments. Checked in a fresh interpreter.
    code = (
        "from multiprocessing import resource_tracker as rt\n"
        "from obs_faceswap.engine.shm import SharedBuffer\n"
        "a = SharedBuffer.create(4096); b = SharedBuffer.attach(a.name)\n"
        "b.close(); a.unlink()\n"
        "print(rt._resource_tracker._pid)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"
    assert "leaked" not in out.stderr and "Warning" not in out.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="segments are files on Linux")
def test_segments_of_dead_processes_are_removed():
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(dead.stdout)  # exited: its pid is free (reuse within this test is unlikely)
    orphan = f"/dev/shm/ofs{dead_pid:x}_0badf00d"
    other = "/dev/shm/ofsnotapid_12345678"
    mine = SharedBuffer.create(4096)
    try:
        for path in (orphan, other):
            with open(path, "wb") as f:
                f.write(b"x")
        from obs_faceswap.engine.shm import remove_stale_segments

        removed = remove_stale_segments()
        assert f"ofs{dead_pid:x}_0badf00d" in removed
        assert not os.path.exists(orphan)
        assert os.path.exists(other)  # not ours by name: left alone
        assert os.path.exists(f"/dev/shm/{mine.name}")  # alive owner: left alone
    finally:
        mine.unlink()
        for path in (orphan, other):
            if os.path.exists(path):
                os.unlink(path)


# -- the server, in-process -----------------------------------------------------------------
class Slot:
    """What the client does for one slot, written out by hand."""

    def __init__(self, fb: F.FrameBuffer) -> None:
        self.fb = fb
        self.seg = SharedBuffer.create(P.HEADER_SIZE + fb.data.size)

    def submit(self, seq: int, deadline_ns: int = 0, timestamp: int = 0) -> None:
        fb = self.fb
        self.seg.buf[P.HEADER_SIZE : P.HEADER_SIZE + fb.data.size] = fb.data.tobytes()
        sizes = tuple(ls * rows for (rows, ls) in F.plane_layout(fb.format, fb.width, fb.height, fb.linesizes))
        P.pack_frame(
            self.seg.buf,
            fb.format,
            fb.width,
            fb.height,
            fb.linesizes,
            fb.offsets,
            sizes,
            timestamp,
            M16,
            COLOR.range_min,
            COLOR.range_max,
            False,
        )
        P.TIMES.pack_into(self.seg.buf, P.TIMES_OFFSET, time.perf_counter_ns(), deadline_ns, 0, 0, 0, 0, 0, 0, 0)
        P.STATE.pack_into(self.seg.buf, P.STATE_OFFSET, P.MAGIC, P.SUBMITTED, seq)

    def state(self) -> tuple[int, int]:
        _, st, seq = P.STATE.unpack_from(self.seg.buf, P.STATE_OFFSET)
        return st, seq

    def rect(self) -> tuple[int, int, int, int]:
        return tuple(P.TIMES.unpack_from(self.seg.buf, P.TIMES_OFFSET)[3:7])  # type: ignore[return-value]

    def result(self) -> F.FrameBuffer:
        out = self.fb.copy()
        out.data[:] = np.frombuffer(self.seg.buf, np.uint8, out.data.size, P.HEADER_SIZE)
        return out

    def close(self) -> None:
        self.seg.unlink()


@pytest.fixture
def photo_frame(read_image):
    img = cv2.resize(read_image("astronaut.png"), (641, 361))
    fb = F.FrameBuffer.allocate(VideoFormat.I420, 641, 361, padding=5)
    F.from_bgr(img, fb.planes, VideoFormat.I420, 641, 361, COLOR)
    return fb


@pytest.fixture
def server():
    out = io.BytesIO()
    s = EngineServer(procs.invert, out, store_factory=lambda models_dir: None)
    yield s
    s.close()


def statuses(server: EngineServer) -> list[dict]:
    return [json.loads(x) for x in server.out.getvalue().splitlines()]  # type: ignore[attr-defined]


def test_server_processes_a_frame_and_writes_back_only_the_region(server, photo_frame, media):
    slot = Slot(photo_frame)
    try:
        server.handle(("A", 0, slot.seg.name, slot.seg.size))
        server.handle(("S", {"source": str(media("astronaut.png"))}))
        assert statuses(server)[-1]["state"] == "running"
        slot.submit(1, timestamp=5_000_000_000)
        server.handle(("F", 0, 1))
        job = server.next_frame()
        assert job == (0, 1)
        server.process(*job)
        assert slot.state() == (P.DONE, 1)
        want = procs.default_rect(641, 361)
        rect = slot.rect()
        assert rect == F.align_roi(VideoFormat.I420, 641, 361, want)
        out = slot.result()
        x0, y0, x1, y1 = rect
        # everything outside the aligned rect is byte-identical (planes and padding)
        info = P.FORMATS[VideoFormat.I420]
        for i, (p, q) in enumerate(zip(out.planes, photo_frame.planes, strict=True)):
            dx, dy, _ = info.planes[i]
            mask = np.ones(p.shape, bool)
            mask[y0 // dy : -(-y1 // dy), x0 // dx : -(-x1 // dx)] = False
            np.testing.assert_array_equal(p[mask], q[mask])
        # inside the requested rect the colours are inverted
        before = F.to_bgr(photo_frame.planes, VideoFormat.I420, 641, 361, COLOR)
        after = F.to_bgr(out.planes, VideoFormat.I420, 641, 361, COLOR)
        wx0, wy0, wx1, wy1 = want
        err = np.abs(after[wy0:wy1, wx0:wx1].astype(int) - (255 - before[wy0:wy1, wx0:wx1]))
        assert np.median(err) <= 2
    finally:
        server.close()
        slot.close()


def test_server_processes_in_order_and_skips_late_or_cancelled_frames(server, photo_frame, media):
    a, b, c = Slot(photo_frame), Slot(photo_frame), Slot(photo_frame)
    try:
        for i, s in enumerate((a, b, c)):
            server.handle(("A", i, s.seg.name, s.seg.size))
        server.handle(("S", {"source": str(media("astronaut.png"))}))
        # no deadlines (synchronised mode): every frame, in order
        a.submit(1)
        b.submit(2)
        server.handle(("F", 0, 1))
        server.handle(("F", 1, 2))
        for expect in ((0, 1), (1, 2)):
            job = server.next_frame()
            assert job == expect
            server.process(*job)  # type: ignore[misc]
        assert a.state() == (P.DONE, 1) and b.state() == (P.DONE, 2)
        # a deadline in the past (max_age exceeded, or the client cancelled): skipped
        a.submit(3, deadline_ns=time.perf_counter_ns() - 1)
        b.submit(4, deadline_ns=time.perf_counter_ns() + 10**10)
        c.submit(5)
        P.DEADLINE.pack_into(c.seg.buf, P.DEADLINE_OFFSET, 1)  # what EngineClient.discard writes
        for slot, seq in ((0, 3), (1, 4), (2, 5)):
            server.handle(("F", slot, seq))
        assert server.next_frame() == (1, 4)
        assert server.next_frame() is None
        assert a.state() == (P.SKIPPED, 3) and c.state() == (P.SKIPPED, 5)
        assert b.state() == (P.SUBMITTED, 4)  # picked, not yet processed
        # a message for a slot the client already reused is ignored, not written
        a.submit(7)
        server.handle(("F", 0, 6))
        assert server.next_frame() is None
        assert a.state() == (P.SUBMITTED, 7)
    finally:
        server.close()
        for s in (a, b, c):
            s.close()


def test_server_reports_processing_failures(photo_frame, media):
    server = EngineServer(procs.raises, io.BytesIO(), store_factory=lambda d: None)
    slot = Slot(photo_frame)
    try:
        server.handle(("A", 0, slot.seg.name, slot.seg.size))
        server.handle(("S", {"source": str(media("astronaut.png"))}))
        slot.submit(1)
        server.handle(("F", 0, 1))
        server.process(*server.next_frame())  # type: ignore[misc]
        assert slot.state() == (P.FAILED, 1)
        last = statuses(server)[-1]
        assert last["state"] == "running"
        assert "processor exploded" in last["message"]
    finally:
        server.close()
        slot.close()


def test_settings_errors_keep_the_last_good_configuration(server, media, tmp_path):
    photo = str(media("astronaut.png"))
    server.handle(("S", {"source": photo, "blend.opacity": 0.5}))
    assert statuses(server)[-1] == {**statuses(server)[-1], "state": "running", "message": ""}
    proc = server.processor
    assert server.config is not None and server.config.blend.opacity == 0.5

    server.handle(("S", {"source": photo, "blend.opacity": 7}))  # out of range
    last = statuses(server)[-1]
    assert last["state"] == "running" and "blend.opacity" in last["message"]
    assert server.config.blend.opacity == 0.5 and server.processor is proc

    server.handle(("S", {"source": photo, "no.such": 1}))
    assert "unknown setting" in statuses(server)[-1]["message"]

    server.handle(("S", {"source": photo, "swapper.kind": "model", "swapper.model": "/x/model.dfm"}))
    assert "face-swap model not found: /x/model.dfm" in statuses(server)[-1]["message"]

    noface = tmp_path / "noface.png"
    cv2.imwrite(str(noface), np.zeros((64, 64, 3), np.uint8))
    server.handle(("S", {"source": str(noface)}))
    last = statuses(server)[-1]
    assert last["state"] == "running" and "no face" in last["message"]
    assert server.source == photo

    server.handle(("S", {"source": photo, "detector.kind": "scrfd", "enabled": False}))
    last = statuses(server)[-1]
    assert last["state"] == "disabled" and last["message"] == ""
    assert server.config.detector.kind == "scrfd"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "no source photo"),
        ({"source": "/nonexistent/photo.png"}, "source photo not found: /nonexistent/photo.png"),
        (
            {"source": "PHOTO", "swapper.kind": "model", "swapper.model": "/m/face.dfm"},
            "face-swap model not found: /m/face.dfm",
        ),
        ({"source": "PHOTO", "swapper.photo.mask.feather": "wide"}, "cannot use 'wide'"),
    ],
)
def test_settings_without_a_good_configuration_are_an_error(server, media, settings, message):
    settings = {k: (str(media("astronaut.png")) if v == "PHOTO" else v) for k, v in settings.items()}
    server.handle(("S", settings))
    last = statuses(server)[-1]
    assert last["state"] == "error"
    assert message in last["message"]
    assert server.processor is None


def test_a_swapper_that_needs_no_photo_runs_without_one(server):
    server.handle(("S", {"swapper.kind": "plugin", "swapper.plugin": "tests.swappers:invert"}))
    last = statuses(server)[-1]
    assert last["state"] == "running" and last["message"] == ""
    assert server.processor is not None and server.source is None
    assert server.config is not None and server.config.swapper.plugin == "tests.swappers:invert"


def test_an_unusable_swapper_plugin_is_reported_naming_it(server):
    server.handle(("S", {"swapper.kind": "plugin", "swapper.plugin": "tests.swappers:not_a_swapper"}))
    last = statuses(server)[-1]
    assert last["state"] == "error" and server.processor is None
    assert "swapper plugin 'tests.swappers:not_a_swapper'" in last["message"]


def test_model_load_failure_is_reported(media, monkeypatch):
    monkeypatch.setenv("OFS_TEST_FAIL_LOAD", "yunet.onnx is corrupt: sha256 0000")
    server = EngineServer(procs.invert, io.BytesIO(), store_factory=lambda d: None)
    server.handle(("S", {"source": str(media("astronaut.png"))}))
    states = [s["state"] for s in statuses(server)]
    assert states[-2:] == ["loading", "error"]
    assert "yunet.onnx is corrupt" in statuses(server)[-1]["message"]


def test_load_factory_errors():
    assert load_factory("tests.engine_processors:invert") is procs.invert
    for spec in ("nocolon", "no.such.module:x", "tests.engine_processors:nope"):
        with pytest.raises(EngineError, match="processor"):
            load_factory(spec)


def test_client_side_modules_import_only_the_standard_library():
    # they run inside OBS's embedded Python, where numpy & co. are not installed
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import obs_faceswap.engine.client, obs_faceswap.engine.protocol, obs_faceswap.engine.shm\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before if not m.startswith('__')}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'obs_faceswap'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_merge_rects_keeps_far_apart_rects_and_merges_overlaps():
    from obs_faceswap.engine.server import merge_rects

    face, badge = (400, 100, 800, 600), (10, 10, 120, 40)
    assert sorted(merge_rects([face, badge], 4)) == sorted([face, badge])
    assert merge_rects([(0, 0, 10, 10), (5, 5, 20, 20)], 4) == [(0, 0, 20, 20)]
    many = [(i * 100, 0, i * 100 + 10, 10) for i in range(6)]
    out = merge_rects(many, 4)
    assert len(out) == 4
    for r in many:  # every input is still covered
        assert any(o[0] <= r[0] and o[1] <= r[1] and r[2] <= o[2] and r[3] <= o[3] for o in out)


def test_rects_round_trip_through_the_header():
    buf = bytearray(P.HEADER_SIZE)
    P.TIMES.pack_into(buf, P.TIMES_OFFSET, 1, 2, 3, 4, 5, 60, 70, 0, 0)
    P.pack_rects(buf, [(4, 5, 60, 70), (100, 8, 120, 30), (1, 1, 2, 2)])
    assert P.unpack_rects(buf) == [(4, 5, 60, 70), (100, 8, 120, 30), (1, 1, 2, 2)]
    P.pack_rects(buf, [])
    assert P.unpack_rects(buf) == [(4, 5, 60, 70)]
