"""Fail closed: a frame that should carry a swap but gets none never shows the original.

Against the fake libobs and fake engine client (tests/unit/fake_libobs.py); the real OBS
runs are in tests/e2e/test_obs_privacy.py.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

import pytest

from obs_faceswap.engine import process as proc_mod
from obs_faceswap.engine import protocol as P
from obs_faceswap.engine.process import EngineProcess, error_line
from obs_faceswap.engine.slots import SlotRing
from obs_faceswap.obs import cover, structs, timing
from obs_faceswap.obs import settings as st
from obs_faceswap.obs.filters import AsyncFaceSwap, RenderFaceSwap
from obs_faceswap.video_formats import VideoFormat
from tests.unit.fake_libobs import PLANE_SHAPES, FakeApi, FakeEngineModule, FakeFrame, make_frame

SOURCE = 0x7000
W, H = 160, 120


def values(**overrides: Any) -> dict[str, Any]:
    v = st.defaults()
    v["engine_python"] = sys.executable
    v.update(overrides)
    return v


def textured(i: int, fmt: int = VideoFormat.I420) -> FakeFrame:
    """A frame with detail everywhere (a mosaic must change it)."""
    fr = make_frame(0, fmt, W, H)
    for p, buf in enumerate(fr.planes):
        n = ctypes.sizeof(buf)
        data = bytes(((k * 7 + (k // 13) * 31 + i + p * 50) % 200) + 20 for k in range(n))
        ctypes.memmove(buf, data, n)
    return fr


def snapshot(fr: FakeFrame) -> list[bytes]:
    return [bytes(b) for b in fr.planes]


def plane0_rows(fr: FakeFrame) -> list[bytes]:
    ls = fr.struct.linesize[0]
    data = bytes(fr.planes[0])
    return [data[y * ls : (y + 1) * ls] for y in range(H)]


# --- the cover module on raw planes -----------------------------------------------------------


@pytest.mark.parametrize(
    "fmt", sorted(PLANE_SHAPES.keys() & cover.LAYOUT.keys()), ids=lambda f: structs.VIDEO_FORMAT_NAMES.get(f, str(f))
)
def test_mosaic_changes_exactly_the_region_into_flat_blocks(fmt: int) -> None:
    fr = textured(3, fmt)
    before = snapshot(fr)
    s = fr.struct
    layout = cover.LAYOUT[fmt]
    p = cover.Planes(fmt, W, H, tuple(s.data[: len(layout)]), tuple(s.linesize[: len(layout)]))
    cover.mosaic(p, (40, 20, 104, 84), 16)
    after = snapshot(fr)
    assert after != before
    dx, dy, unit = layout[0]
    ls = s.linesize[0]
    # outside the region: untouched (plane 0)
    for y in list(range(0, 20)) + list(range(84, H)):
        assert after[0][y * ls : (y + 1) * ls] == before[0][y * ls : (y + 1) * ls]
    # inside: each 16x16 block is one colour (plane 0)
    for by in range(20, 84, 16):
        for bx in range(40, 104, 16):
            block = {
                after[0][y * ls + (x // dx) * unit : y * ls + (x // dx) * unit + unit]
                for y in range(by, by + 16)
                for x in range(bx, bx + 16, dx)
            }
            assert len(block) == 1


def test_badge_is_drawn_in_its_corner_in_every_format() -> None:
    for fmt in sorted(PLANE_SHAPES.keys() & cover.LAYOUT.keys()):
        fr = make_frame(128, fmt, 320, 240)
        s = fr.struct
        n = len(cover.LAYOUT[fmt])
        p = cover.Planes(fmt, 320, 240, tuple(s.data[:n]), tuple(s.linesize[:n]))
        box = cover.draw_badge(p, "face swap", "bottom-right")
        assert box is not None and box[2] <= 320 and box[3] <= 240 and box[0] > 160 and box[1] > 120
        ls = s.linesize[0]
        data = bytes(fr.planes[0])
        inside = data[box[1] * ls : box[3] * ls]
        assert inside.count(b"\x80") < len(inside), structs.VIDEO_FORMAT_NAMES.get(fmt)
        assert data[: box[1] * ls] == b"\x80" * (box[1] * ls)  # nothing above it changed


def test_badge_font_spells_the_text() -> None:
    bits = cover.badge_bits("FS", 1)
    assert len(bits) == 7 + 4 and len(bits[0]) == 4 + 11
    assert bits[2][2:7] == [1, 1, 1, 1, 1]  # F's top bar


# --- the filter: what a frame without a result shows ----------------------------------------


def new_async(**settings: Any) -> tuple[AsyncFaceSwap, FakeApi, FakeEngineModule]:
    api, engine = FakeApi(), FakeEngineModule()
    return AsyncFaceSwap(api, SOURCE, values(**settings), engine_api=engine), api, engine


@pytest.mark.parametrize("mode", [st.SYNC, st.LATENCY])
def test_no_result_at_start_covers_the_whole_frame_and_draws_the_badge(mode: str) -> None:
    f, _, engine = new_async(timing_mode=mode, sync_frames=1)
    engine.clients[0].ready_now = False
    frames = [textured(i) for i in range(6)]
    before = [snapshot(fr) for fr in frames]
    out = [f.filter_video(fr.addr) for fr in frames]
    shown = [i for i, fr in enumerate(frames) if fr.addr in out]
    assert shown
    for i in shown:
        rows, orig = plane0_rows(frames[i]), before[i][0]
        ls = frames[i].struct.linesize[0]
        changed = sum(rows[y] != orig[y * ls : (y + 1) * ls] for y in range(H))
        assert changed > H * 0.9, "the original picture is shown while the swap is unavailable"
    assert f.counters.covered == len(shown) and f.counters.swapped == 0


def test_after_a_swap_only_the_last_face_region_is_covered() -> None:
    f, _, engine = new_async(sync_frames=1, badge_enabled=False)
    client = engine.clients[0]
    first = [textured(i) for i in range(3)]
    for fr in first:
        f.filter_video(fr.addr)
    assert f.counters.swapped >= 1  # the fake "face" is rows 0..1
    client.ready_now = False
    late = [textured(10 + i) for i in range(3)]
    before = [snapshot(fr) for fr in late]
    out = [f.filter_video(fr.addr) for fr in late]
    i = next(k for k, fr in enumerate(late) if fr.addr in out)
    rows = plane0_rows(late[i])
    ls = late[i].struct.linesize[0]
    orig = [before[i][0][y * ls : (y + 1) * ls] for y in range(H)]
    assert rows[0] != orig[0], "the last face region must be covered"
    assert rows[H // 2 :] == orig[H // 2 :], "far from the face the picture stays"


def test_freeze_repeats_the_last_swapped_frame() -> None:
    f, _, engine = new_async(sync_frames=1, unavailable="freeze")
    client = engine.clients[0]
    good = [textured(i) for i in range(3)]
    for fr in good:
        f.filter_video(fr.addr)
    client.ready_now = False
    late = [textured(20 + i) for i in range(4)]
    out = [f.filter_video(fr.addr) for fr in late]
    assert out[0] == good[-1].addr  # submitted before the engine stalled: swapped
    frozen = snapshot(good[-1])
    shown = [fr for fr in late if fr.addr in out]
    assert shown and all(snapshot(fr) == frozen for fr in shown)
    assert f.counters.frozen == len(shown)


def test_original_shows_the_frame_with_the_badge() -> None:
    f, _, engine = new_async(sync_frames=1, unavailable="original")
    engine.clients[0].ready_now = False
    frames = [textured(i) for i in range(4)]
    before = [snapshot(fr) for fr in frames]
    out = [f.filter_video(fr.addr) for fr in frames]
    i = next(k for k, fr in enumerate(frames) if fr.addr in out)
    rows = plane0_rows(frames[i])
    ls = frames[i].struct.linesize[0]
    orig = [before[i][0][y * ls : (y + 1) * ls] for y in range(H)]
    assert rows[: H // 2] == orig[: H // 2]  # the picture itself is the original ...
    assert rows[H // 2 :] != orig[H // 2 :]  # ... with the badge in the bottom-right corner


def test_no_engine_at_all_still_covers() -> None:
    api, engine = FakeApi(), FakeEngineModule()
    f = AsyncFaceSwap(api, SOURCE, values(sync_frames=1, engine_python="/nonexistent/python"), engine_api=engine)
    fr = [textured(i) for i in range(3)]
    before = snapshot(fr[0])
    f.filter_video(fr[0].addr)
    assert f.filter_video(fr[1].addr) == fr[0].addr and snapshot(fr[0]) != before
    assert "face covered" in f.status_lines()[0]


def test_swap_off_shows_the_original_untouched() -> None:
    f, _, engine = new_async(sync_frames=1, swap_enabled=False)
    frames = [textured(i) for i in range(3)]
    before = [snapshot(fr) for fr in frames]
    out = [f.filter_video(fr.addr) for fr in frames]
    assert all(snapshot(fr) == b for fr, b, a in zip(frames, before, out, strict=True) if fr.addr in out)
    assert f.counters.covered == 0


def test_render_filter_covers_the_read_back_frame() -> None:
    api, engine = FakeApi(), FakeEngineModule()
    f = RenderFaceSwap(api, SOURCE, values(sync_frames=1), engine_api=engine)
    engine.clients[0].ready_now = False
    for _ in range(4):
        f.video_tick(0.1)
        f.video_render(None)
    assert f.counters.covered >= 2 and api.uploads


# --- the hold depth -----------------------------------------------------------------------------


def test_auto_depth_grows_when_late_shrinks_when_early_and_stays_while_keeping_up() -> None:
    h = timing.HoldDepth(st.AUTO_FRAMES)
    assert h.depth == timing.AUTO_START_DEPTH
    for _ in range(3):
        h.note(late=True, early=False, healthy=True)
    assert h.depth == timing.AUTO_START_DEPTH + 1
    for _ in range(2000):  # on time, but not two frames early: constant
        h.note(late=False, early=False, healthy=True)
    assert h.depth == timing.AUTO_START_DEPTH + 1
    for _ in range(timing.AUTO_SHRINK_AFTER):
        h.note(late=False, early=True, healthy=True)
    assert h.depth == timing.AUTO_START_DEPTH
    for _ in range(50):  # late while the engine restarts or hangs says nothing about the depth
        h.note(late=True, early=False, healthy=False)
    assert h.depth == timing.AUTO_START_DEPTH
    fixed = timing.HoldDepth(4)
    for _ in range(50):
        fixed.note(late=True, early=False, healthy=True)
    assert fixed.depth == 4


# --- the engine process: restart reasons, coalesced settings -----------------------------------


def test_restart_reason_never_quotes_an_info_line() -> None:
    assert error_line(["INFO obs_faceswap.engine: processor ready in 1.2 s"]) == ""
    assert (
        error_line(["ERROR obs_faceswap.engine: cannot read photo", "INFO x: bye"])
        == "ERROR obs_faceswap.engine: cannot read photo"
    )
    assert (
        error_line(["Traceback (most recent call last):", '  File "x.py"', "KeyError: 'cls_8'"]) == "KeyError: 'cls_8'"
    )


def test_a_settings_storm_reaches_the_engine_as_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(proc_mod, "_now", lambda: now[0])
    ring = SlotRing(2, lambda b: None, lambda k, t: None, lambda t: None)
    p = EngineProcess(
        sys.executable,
        {"source": "a.png"},
        ring,
        env=None,
        emit=lambda t, e: None,
        processor=None,
        hang_timeout=10,
        start_timeout=10,
        backoff_initial=1,
        backoff_max=2,
    )
    r, w = os.pipe()
    os.set_blocking(r, False)
    p._fd = w
    try:
        for i in range(40):  # typing, sliding: one change every 20 ms
            p.update_settings({"blend.opacity": i / 40})
            now[0] += 0.02
            p.poll()
        now[0] += 0.5
        p.poll()
        sent = os.read(r, 1 << 16).decode().splitlines()
    finally:
        os.close(r)
        os.close(w)
    settings = [P.decode_message(s.encode())[1] for s in sent if s.startswith("S ")]
    assert len(settings) <= 2  # the max-wait flush during the storm, then the latest
    assert settings[-1]["blend.opacity"] == 39 / 40


def test_a_scene_cut_covers_the_whole_frame_not_the_old_face_region() -> None:
    f, _, engine = new_async(sync_frames=1, badge_enabled=False)
    first = [textured(i) for i in range(3)]  # alive while the filter holds one of them
    for fr in first:
        f.filter_video(fr.addr)
    engine.clients[0].ready_now = False
    cut = [textured(100 + i) for i in range(3)]  # another picture: its upper half is bright
    for fr in cut:
        ctypes.memset(ctypes.addressof(fr.planes[0]), 250, W * H // 2)
    before = [snapshot(fr) for fr in cut]
    out = [f.filter_video(fr.addr) for fr in cut]
    i = next(k for k, fr in enumerate(cut) if fr.addr in out)
    ls = cut[i].struct.linesize[0]
    rows = plane0_rows(cut[i])
    assert rows[H - 1] != before[i][0][(H - 1) * ls : H * ls], "after a cut the whole frame is covered"


def test_frames_held_while_the_swap_was_off_are_covered_once_it_is_on() -> None:
    f, _, engine = new_async(sync_frames=2, swap_enabled=False)
    held = [textured(i) for i in range(2)]
    before = [snapshot(fr) for fr in held]
    for fr in held:
        assert f.filter_video(fr.addr) is None
    f.update(values(sync_frames=2, swap_enabled=True))
    engine.clients[0].ready_now = False
    nxt = [textured(10 + i) for i in range(2)]
    out = [f.filter_video(fr.addr) for fr in nxt]
    assert out == [held[0].addr, held[1].addr]
    assert all(snapshot(fr) != b for fr, b in zip(held, before, strict=True)), "held original frames shown"


def test_a_replaced_or_deleted_photo_is_sent_again(tmp_path: Any) -> None:
    photo = tmp_path / "p.png"
    photo.write_bytes(b"one")
    now = [0]
    api, engine = FakeApi(), FakeEngineModule()
    f = AsyncFaceSwap(api, SOURCE, values(source_photo=str(photo)), engine_api=engine, clock=lambda: now[0])
    client = engine.clients[0]
    assert client.settings["source_stamp"]
    now[0] += int(1.5e9)
    f.video_tick(0.1)
    assert client.updates == []  # unchanged: nothing sent
    photo.write_bytes(b"two, longer")
    now[0] += int(1.5e9)
    f.video_tick(0.1)
    assert len(client.updates) == 1 and client.updates[0]["source_stamp"]
    photo.unlink()
    now[0] += int(1.5e9)
    f.video_tick(0.1)
    assert client.updates[-1] == {"source_stamp": None}


def test_a_suspended_filter_still_covers_while_the_swap_is_on() -> None:
    """Script reload or OBS exit: the engine is gone for a moment, the face stays hidden."""
    f, api, _ = new_async(sync_frames=1)
    f.suspend()
    fr = textured(1)
    before = snapshot(fr)
    assert f.filter_video(fr.addr) == fr.addr  # never held while suspended
    assert snapshot(fr) != before
    f.update(values(sync_frames=1, swap_enabled=False))
    fr2 = textured(2)
    before2 = snapshot(fr2)
    assert f.filter_video(fr2.addr) == fr2.addr and snapshot(fr2) == before2
