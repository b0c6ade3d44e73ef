"""The OBS filter's logic against a fake libobs and a fake engine client.

What is checked here is what OBS cannot show quickly or deterministically: which frame gets
which result (no ghosting), that a held frame always goes back to libobs exactly once, that
nothing returns NULL by accident, and how settings, status, hotkeys and the registry behave.
Real OBS runs these paths in tests/e2e/.
"""

from __future__ import annotations

import ctypes
import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from obs_faceswap import config as cfg
from obs_faceswap.obs import filters, properties, structs
from obs_faceswap.obs import settings as st
from obs_faceswap.obs.filters import AsyncFaceSwap, RenderFaceSwap
from obs_faceswap.obs.registry import ASYNC_ID, RENDER_ID, Registry
from obs_faceswap.video_formats import VideoFormat
from tests.unit.fake_libobs import FakeApi, FakeEngineModule, FakeFrame, make_frame

SOURCE = 0x7000


def values(**overrides: Any) -> dict[str, Any]:
    v = st.defaults()
    v["engine_python"] = sys.executable
    v.update(overrides)
    return v


def new_async(
    api: FakeApi | None = None, engine: FakeEngineModule | None = None, **settings: Any
) -> tuple[AsyncFaceSwap, FakeApi, FakeEngineModule]:
    api = api or FakeApi()
    engine = engine or FakeEngineModule()
    return AsyncFaceSwap(api, SOURCE, values(**settings), engine_api=engine), api, engine


def joined(f: Any) -> None:
    """Wait for the background threads that stop engines (unload/destroy never wait)."""
    for t in f._closers:
        t.join(timeout=5)


def run(f: AsyncFaceSwap, frames: list[FakeFrame]) -> list[int | None]:
    return [f.filter_video(fr.addr) for fr in frames]


def by_addr(frames: list[FakeFrame]) -> dict[int, FakeFrame]:
    return {fr.addr: fr for fr in frames}


# --- synchronised mode ------------------------------------------------------------------


def test_sync_holds_frames_and_each_carries_its_own_result() -> None:
    f, api, engine = new_async(sync_frames=3)
    frames = [make_frame(10 + i, ts=i * 100) for i in range(10)]
    out = run(f, frames)
    assert out[:3] == [None, None, None]
    assert out[3:] == [fr.addr for fr in frames[:7]]  # frame N comes out at frame N+3
    for i, fr in enumerate(frames[:7]):
        assert fr.first() == (10 + i) ^ 0x80, "a frame carries another frame's result (ghosting)"
    assert all(fr.first() == 10 + i for i, fr in enumerate(frames[7:], start=7))  # still held
    assert f.status()["delay_frames"] == 3 and f.delay_ns == 300
    assert api.released == []


def test_sync_late_result_passes_the_frame_untouched_when_asked_and_auto_depth_grows() -> None:
    f, api, engine = new_async(sync_frames=0, unavailable="original", badge_enabled=False)
    client = engine.clients[0]
    client.ready_now = False
    f.video_tick(0.1)  # the engine reports "running": lateness now counts for the depth
    frames = [make_frame(i + 1) for i in range(12)]
    out = run(f, frames)
    released = [a for a in out if a is not None]
    assert released, "frames must keep flowing while results are late"
    for a in released:
        fr = by_addr(frames)[a]
        assert fr.row0() == bytes([frames.index(fr) + 1]) * len(fr.row0()), "a late frame was modified"
    assert f.counters.late >= filters.AUTO_LATE_LIMIT
    assert f.depth > filters.AUTO_START_DEPTH  # automatic hold grew
    assert set(client.discarded) >= {s for s in range(1, len(released) + 1)}


def test_fixed_depth_never_grows() -> None:
    f, _, engine = new_async(sync_frames=2)
    engine.clients[0].ready_now = False
    run(f, [make_frame(i) for i in range(20)])
    assert f.depth == 2


def test_lowering_the_depth_releases_frames_to_libobs_exactly_once() -> None:
    f, api, _ = new_async(sync_frames=5)
    frames = [make_frame(i) for i in range(5)]
    assert run(f, frames) == [None] * 5
    f.update(values(sync_frames=1))
    nxt = make_frame(99)
    out = f.filter_video(nxt.addr)
    assert out == frames[4].addr  # one frame out, one held: the older ones go back to libobs
    assert [fr for _, fr in api.released] == [x.addr for x in frames[:4]]
    assert [x.struct.refs for x in frames[:4]] == [1] * 4
    assert all(p == api.parent for p, _ in api.released)


def test_frames_keep_flowing_without_an_engine_and_keep_the_delay() -> None:
    engine = FakeEngineModule()
    api = FakeApi()
    f = AsyncFaceSwap(api, SOURCE, values(sync_frames=2, engine_python="/nonexistent/python"), engine_api=engine)
    assert f.client is None and "does not exist" in f.error
    frames = [make_frame(i) for i in range(6)]
    out = run(f, frames)
    assert out == [None, None] + [fr.addr for fr in frames[:4]]
    assert all(fr.row0() == bytes([i]) * len(fr.row0()) for i, fr in enumerate(frames))
    status, error = f.status_lines()
    assert "Engine: error" in status and "does not exist" in error


def test_missing_client_module_passes_through() -> None:
    api = FakeApi()
    f = AsyncFaceSwap(
        api,
        SOURCE,
        values(timing_mode="latency"),
        engine_api=None,
        engine_error="engine client unavailable: ImportError",
    )
    fr = make_frame(5)
    assert f.filter_video(fr.addr) == fr.addr
    assert "ImportError" in f.status_lines()[1]


def test_submit_errors_never_lose_a_frame() -> None:
    f, api, engine = new_async(sync_frames=1)
    engine.clients[0].raise_on_submit = True
    frames = [make_frame(i) for i in range(4)]
    assert run(f, frames) == [None] + [fr.addr for fr in frames[:3]]
    f2, _, engine2 = new_async(timing_mode="latency")
    engine2.clients[0].raise_on_submit = True
    fr = make_frame(1)
    assert f2.filter_video(fr.addr) == fr.addr


def test_orphaned_frames_are_released_not_returned() -> None:
    """libobs dropped its frame cache: a held frame has only our reference left."""
    f, api, _ = new_async(sync_frames=2)
    frames = [make_frame(i) for i in range(2)]
    run(f, frames)
    frames[0].struct.refs = 1  # free_async_cache() decremented it
    out = f.filter_video(make_frame(7).addr)
    assert out is None  # the orphan went back; the queue holds depth frames again
    assert api.released == [(api.parent, frames[0].addr)]
    assert frames[0].struct.refs == 0


def test_a_format_the_engine_lacks_is_covered_logged_once_and_shown_in_the_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    f, _, engine = new_async(timing_mode="latency", badge_enabled=False)
    with caplog.at_level(logging.WARNING, logger="obs_faceswap.obs.filters"):
        for _ in range(3):
            fr = make_frame(3, fmt=VideoFormat.YUVA)
            before = bytes(fr.planes[0])
            assert f.filter_video(fr.addr) == fr.addr
            assert bytes(fr.planes[0]) == before  # a flat frame: its mosaic is itself ...
    assert f.counters.covered == 3  # ... but it went through the cover
    assert sum("YUVA not supported: covered" in r.getMessage() for r in caplog.records) == 1
    assert engine.clients[0].seen == {}
    assert "format YUVA not supported: covered" in f.status_lines()[0]
    assert f.status()["frame_format"] == "YUVA"


@pytest.mark.parametrize("fmt", sorted(structs.PLANE_LAYOUT))
def test_frame_view_mirrors_the_obs_frame(fmt: int) -> None:
    f, _, _ = new_async()
    fr = make_frame(1, fmt=fmt, ts=123, full_range=fmt == VideoFormat.I422)
    view = f.frame_view(fr.addr)
    n = len(structs.PLANE_LAYOUT[fmt])
    assert view.format == fmt and (view.width, view.height) == (64, 48)
    assert view.planes == tuple(ctypes.addressof(p) for p in fr.planes[:n])
    assert view.linesizes == tuple(fr.struct.linesize[i] for i in range(n))
    assert view.timestamp == 123 and view.full_range == (fmt == VideoFormat.I422)
    assert view.color_matrix[:4] == pytest.approx((1.164, 0.0, 1.793, -0.973), abs=1e-6)
    assert view.range_min[0] == pytest.approx(16 / 255) and view.range_max[0] == pytest.approx(235 / 255)


# --- lowest-latency mode ------------------------------------------------------------------


def test_latency_applies_a_result_only_to_the_next_frame() -> None:
    f, api, engine = new_async(timing_mode="latency")
    client = engine.clients[0]
    client.ready_now = False
    a, b = make_frame(1), make_frame(2)
    assert f.filter_video(a.addr) == a.addr  # submitted, nothing to apply yet
    client.finish()
    assert f.filter_video(b.addr) == b.addr
    assert client.seen[2] == 2, "the engine must get the original pixels (submit before apply)"
    assert b.first() == 1 ^ 0x80  # frame 1's result on frame 2: one frame old
    assert a.first() == 1
    assert f.status()["delay_frames"] == 0 and f.delay_ns == 0
    assert client.max_age == pytest.approx(0.2)  # two frame intervals at 10 fps


def test_latency_drops_results_older_than_one_frame() -> None:
    f, _, engine = new_async(timing_mode="latency")
    client = engine.clients[0]
    client.ready_now = False
    frames = [make_frame(i + 1) for i in range(3)]
    f.filter_video(frames[0].addr)  # seq 1 in flight
    f.filter_video(frames[1].addr)  # still in flight: nothing new submitted
    client.finish()
    f.filter_video(frames[2].addr)  # seq 1 is now two frames old
    assert frames[2].first() == 3
    assert 1 in client.discarded


def test_switching_to_latency_hands_held_frames_back() -> None:
    f, api, _ = new_async(sync_frames=3)
    frames = [make_frame(i) for i in range(3)]
    run(f, frames)
    f.update(values(timing_mode="latency"))
    fr = make_frame(9)
    assert f.filter_video(fr.addr) == fr.addr
    assert [a for _, a in api.released] == [x.addr for x in frames]


# --- lifecycle ------------------------------------------------------------------------------


def test_filter_remove_releases_held_frames_once() -> None:
    f, api, engine = new_async(sync_frames=3)
    frames = [make_frame(i) for i in range(3)]
    run(f, frames)
    f.filter_remove(0x5555)
    assert [(p, a) for p, a in api.released] == [(0x5555, x.addr) for x in frames]
    api.parent = None  # libobs clears filter_parent after filter_remove
    f.suspend()
    api.enabled = False
    f.video_tick(0.1)
    f.destroy()
    joined(f)
    assert len(api.released) == 3
    assert engine.clients[0].closed


def test_disabling_the_filter_releases_held_frames() -> None:
    f, api, _ = new_async(sync_frames=2)
    frames = [make_frame(i) for i in range(2)]
    run(f, frames)
    api.enabled = False
    f.video_tick(0.1)
    assert [a for _, a in api.released] == [x.addr for x in frames]
    assert f.counters.dropped == 2 and not f.held


def test_unload_then_load_passes_through_and_restarts_the_engine() -> None:
    f, api, engine = new_async(sync_frames=2)
    run(f, [make_frame(i) for i in range(2)])
    f.suspend()
    joined(f)
    assert f.passthrough and engine.clients[0].closed and len(api.released) == 2
    fr = make_frame(5)
    assert f.filter_video(fr.addr) == fr.addr
    f.resume(engine, "")
    assert not f.passthrough and len(engine.clients) == 2 and engine.clients[1].started


def test_destroy_with_a_stray_frame_warns_instead_of_touching_a_dead_parent(caplog: pytest.LogCaptureFixture) -> None:
    f, api, _ = new_async(sync_frames=2)
    run(f, [make_frame(1)])
    with caplog.at_level(logging.WARNING):
        f.destroy()
    assert api.released == [] and "held frames at destroy" in caplog.text


# --- settings, status, hotkey ---------------------------------------------------------


def test_only_changed_settings_reach_the_engine_live() -> None:
    f, _, engine = new_async()
    client = engine.clients[0]
    f.update(values(opacity=0.5, mask_keep_eyes=True))
    assert client.updates == [{"blend.opacity": 0.5, "swapper.photo.mask.keep_eyes": True}]
    f.update(values(opacity=0.5, mask_keep_eyes=True, timing_mode="latency"))
    assert len(client.updates) == 1  # timing is the filter's own setting
    assert len(engine.clients) == 1


def test_changing_the_interpreter_restarts_the_engine_once_typing_stops(tmp_path: Path) -> None:
    """Typing a path is a storm of updates: one engine at a time, the new one only once the
    setting stopped changing (and the old one has quit)."""
    now = [0]
    api, engine = FakeApi(), FakeEngineModule()
    f = AsyncFaceSwap(api, SOURCE, values(), engine_api=engine, clock=lambda: now[0])
    other = tmp_path / "python3"
    other.write_text("")
    typed = str(other)
    for i in range(1, len(typed) + 1):  # one update per keystroke, 50 ms apart
        f.update(values(engine_python=typed[:i]))
        now[0] += 50_000_000
        f.video_tick(0.05)
    assert len(engine.clients) == 1 and engine.clients[0].closed and f.client is None
    joined(f)
    now[0] += int(1.1e9)
    f.video_tick(0.1)
    assert len(engine.clients) == 2 and engine.clients[1].python == typed
    f.close_engine(wait=True)


def test_engine_settings_mapping() -> None:
    e = st.engine_settings(values(source_photo="/a.png", provider="cuda", selection_reference="", detect_interval=5))
    assert e["source"] == "/a.png" and e["swapper.model"] is None and e["selection.reference"] is None
    assert e["swapper.kind"] == "photo" and e["swapper.plugin"] is None
    assert e["runtime.providers"] == "cuda,cpu"
    assert e["tracking.detect_interval"] == 5 and e["enabled"] is True
    assert e["badge.enabled"] is True  # shown by default in OBS
    assert st.engine_settings(values(provider="cpu"))["runtime.providers"] == "cpu"
    assert e["swapper.photo.mask.keep_glasses"] is False  # painted over unless the streamer keeps them
    assert st.engine_settings(values(mask_keep_glasses=True))["swapper.photo.mask.keep_glasses"] is True
    # every engine key is a real PipelineConfig field (or an engine-level key)
    pipeline_keys = {k for k in e if "." in k}
    cfg.apply_updates(
        cfg.PipelineConfig(), {k: e[k] for k in pipeline_keys if e[k] is not None and k != "runtime.providers"}
    )


def test_the_swapper_kind_follows_what_is_filled_in() -> None:
    assert st.engine_settings(values(source_photo="/a.png"))["swapper.kind"] == "photo"
    e = st.engine_settings(values(source_photo="/a.png", model_file="/m/face.dfm"))
    assert e["swapper.kind"] == "model" and e["swapper.model"] == "/m/face.dfm"
    e = st.engine_settings(values(model_file="/m/face.dfm", swapper_plugin=" tests.swappers:invert "))
    assert e["swapper.kind"] == "plugin" and e["swapper.plugin"] == "tests.swappers:invert"
    config = cfg.apply_updates(cfg.PipelineConfig(), {k: v for k, v in e.items() if k.startswith("swapper.")})
    assert config.swapper == cfg.SwapperConfig(kind="plugin", model="/m/face.dfm", plugin="tests.swappers:invert")


def test_setting_choices_and_defaults_match_the_config() -> None:
    p = cfg.PipelineConfig()
    assert [v for v, _ in st.BY_KEY["detector"].choices] == list(cfg.DETECTORS)
    assert [v for v, _ in st.BY_KEY["blend_mode"].choices] == list(cfg.BLEND_MODES)
    assert st.BY_KEY["mask_feather"].default == p.swapper.photo.mask.feather
    assert st.BY_KEY["detect_interval"].default == p.tracking.detect_interval


def test_interpreter_resolution_order(tmp_path: Path) -> None:
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").write_text("")
    env_py = tmp_path / "env-python"
    env_py.write_text("")
    assert st.resolve_interpreter("", {}, tmp_path)[0] == str(venv / "python")
    assert st.resolve_interpreter("", {"OBS_FACESWAP_PYTHON": str(env_py)}, tmp_path)[0] == str(env_py)
    assert st.resolve_interpreter(str(env_py), {}, tmp_path)[0] == str(env_py)
    path, why = st.resolve_interpreter("/no/such/python", {}, tmp_path)
    assert path is None and "does not exist" in why
    path, why = st.resolve_interpreter("", {}, tmp_path / "empty")
    assert path is None and "Engine Python" in why


def test_status_changes_are_logged_once_and_refresh_the_dialog(caplog: pytest.LogCaptureFixture) -> None:
    f, api, engine = new_async()
    client = engine.clients[0]
    with caplog.at_level(logging.INFO, logger="obs_faceswap.obs.filters"):
        for _ in range(5):
            f.video_tick(0.1)
        client.state, client.message = "restarting", "engine was killed by SIGKILL; restarting in 1 s"
        for _ in range(5):
            f.video_tick(0.1)
    lines = [r.getMessage() for r in caplog.records if "engine" in r.getMessage()]
    assert sum("running" in s for s in lines) == 1 and sum("SIGKILL" in s for s in lines) == 1
    assert api.update_properties == 2 and client.polls == 10
    status, error = f.status_lines()
    assert status.startswith("Engine: restarting") and "SIGKILL" in error


def test_status_line_shows_provider_fps_and_delay() -> None:
    f, _, _ = new_async(sync_frames=3)
    line, error = f.status_lines()
    assert "CPUExecutionProvider" in line and "25.0 fps" in line and "delay 3 frames" in line
    assert error == ""


def test_hotkey_lives_on_the_parent_and_toggles_the_setting() -> None:
    f, api, _ = new_async()
    f.set_hotkey_callback(0xCAFE, 7)
    f.video_tick(0.1)
    ((hid, (src, name, desc, cb, data)),) = api.hotkeys.items()
    assert src == api.parent and name == "obs_faceswap.toggle:Face Swap" and (cb, data) == (0xCAFE, 7)
    f.toggle_swap()
    assert api.source_updates == [{"swap_enabled": False}]
    f.filter_remove(api.parent)
    assert api.unregistered == [hid]


# --- properties ---------------------------------------------------------------------


def test_properties_show_every_setting_once_with_the_status_first() -> None:
    api = FakeApi()
    props = properties.build(api, ("Engine: running · CPU", "boom"), 1, 2)
    all_props = api.all_props(props)
    names = [p["name"] for p in all_props if p["kind"] != "group"]
    assert names[:3] == ["status", "last_error", "refresh_status"]
    assert sorted(names[3:]) == sorted(s.key for s in st.SETTINGS)
    assert sorted(properties.all_keys()) == sorted(s.key for s in st.SETTINGS)
    status = next(p for p in all_props if p["name"] == "status")
    assert status["desc"] == "Engine: running · CPU" and status["text_type"] == structs.OBS_TEXT_INFO
    err = next(p for p in all_props if p["name"] == "last_error")
    assert err["visible"] and "boom" in err["desc"] and err["info_type"] == structs.OBS_TEXT_INFO_ERROR
    det = next(p for p in all_props if p["name"] == "detector")
    assert [v for _, v in det["items"]] == list(cfg.DETECTORS)
    assert all(p.get("modified") == 2 for p in all_props if p["name"] in properties.CONTROLLERS)


def test_refresh_and_visibility_callbacks_rewrite_the_dialog() -> None:
    api = FakeApi()
    props = properties.build(api, ("Engine: starting", ""), 1, 2)
    properties.refresh_status(api, props, ("Engine: running", ""))
    assert api.props[api.obs_properties_get(props, b"status")]["desc"] == "Engine: running"
    properties.apply_visibility(api, props, values(selection_mode="reference", timing_mode="latency"))
    assert api.props[api.obs_properties_get(props, b"selection_reference")]["visible"]
    assert not api.props[api.obs_properties_get(props, b"selection_index")]["visible"]
    assert not api.props[api.obs_properties_get(props, b"sync_frames")]["visible"]


# --- render filter ----------------------------------------------------------------------


def test_render_filter_reads_back_holds_and_uploads_each_frame_with_its_result() -> None:
    api, engine = FakeApi(), FakeEngineModule()
    f = RenderFaceSwap(api, SOURCE, values(sync_frames=2), engine_api=engine)
    for tick in range(1, 7):
        ctypes.memset(api.stage_image, tick, ctypes.sizeof(api.stage_image))
        f.video_tick(0.1)
        f.video_render(None)
        f.video_render(None)  # a second view in the same tick: no second readback
    assert len(api.uploads) == 4  # frames 1..4 came out, 5 and 6 are held
    for i, img in enumerate(api.uploads, start=1):
        assert img[:4] == bytes([i ^ 0x80]) * 4, "a frame carries another frame's result"
        assert img[-1] == i
    assert len(engine.clients[0].seen) == 6
    # two ticks before the first output: nothing is drawn, never the unfiltered source
    assert api.draws >= 8 and api.skips == 0


def test_render_filter_skips_when_idle_in_latency_mode_and_frees_gpu_on_destroy() -> None:
    api, engine = FakeApi(), FakeEngineModule()
    f = RenderFaceSwap(api, SOURCE, values(timing_mode="latency", swap_enabled=False), engine_api=engine)
    f.video_tick(0.1)
    f.video_render(None)
    assert api.skips == 1 and api.uploads == []
    f.update(values(timing_mode="latency"))
    f.video_tick(0.1)
    f.video_render(None)
    assert len(api.uploads) == 1
    f.destroy()
    assert sorted(api.destroyed) == ["stage", "texrender", "texture"] and api.graphics_entered == 1


# --- registry and trampolines ---------------------------------------------------------


def make_registry() -> tuple[Registry, FakeApi, FakeEngineModule]:
    reg, api, engine = Registry(), FakeApi(), FakeEngineModule()
    reg.load(api, engine_loader=lambda: (engine, ""))
    return reg, api, engine


def test_registry_registers_both_types_once_and_reenables_on_reload() -> None:
    reg, api, engine = make_registry()
    assert len(api.registered) == 2
    info = structs.source_info_struct(29, 0)
    a = info.from_buffer_copy(api.registered[0])
    r = info.from_buffer_copy(api.registered[1])
    assert a.id == ASYNC_ID.encode() and r.id == RENDER_ID.encode()
    assert a.type == r.type == structs.OBS_SOURCE_TYPE_FILTER
    assert a.output_flags == structs.OBS_SOURCE_ASYNC_VIDEO and r.output_flags == structs.OBS_SOURCE_VIDEO
    assert a.filter_video and not a.video_render and r.video_render and not r.filter_video
    assert all(getattr(a, n) for n in ("get_name", "create", "destroy", "update", "video_tick", "filter_remove"))
    name = ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.c_void_p)(a.get_name)(a.type_data)
    assert name == b"Face Swap"
    reg.unload()
    reg.load(api, engine_loader=lambda: (engine, ""))
    assert len(api.registered) == 2
    assert api.enabled_types == [
        (ASYNC_ID.encode(), False),
        (RENDER_ID.encode(), False),
        (ASYNC_ID.encode(), True),
        (RENDER_ID.encode(), True),
    ]


def test_trampolines_create_dispatch_and_survive_exceptions() -> None:
    reg, api, engine = make_registry()
    settings = api.new_data({"engine_python": sys.executable, "sync_frames": 1})
    reg.cb["get_defaults"](settings)
    assert api.defaults[settings]["badge_enabled"] is True
    iid = reg.cb["create"](settings, SOURCE)
    assert iid and isinstance(reg.instances[iid], AsyncFaceSwap)
    fr = [make_frame(i) for i in range(3)]
    assert reg.cb["filter_video"](iid, fr[0].addr) is None
    assert reg.cb["filter_video"](iid, fr[1].addr) == fr[0].addr
    inst = reg.instances[iid]
    inst.filter_video = lambda frame: 1 / 0  # type: ignore[method-assign]
    assert reg.cb["filter_video"](iid, fr[2].addr) == fr[2].addr  # never NULL by accident
    assert reg.cb["filter_video"](12345, fr[2].addr) == fr[2].addr  # unknown instance
    props = reg.cb["get_properties"](iid)
    assert api.props[props]["kind"] == "properties"
    assert reg.cb["get_properties"](None)  # no instance (type defaults)
    assert reg.cb["refresh"](props, 0, iid) is True
    reg.cb["destroy"](iid)
    joined(inst)
    assert iid not in reg.instances and engine.clients[0].closed


def test_render_type_creates_the_render_filter() -> None:
    reg, api, _ = make_registry()
    api.source_ids[SOURCE + 1] = RENDER_ID.encode()
    iid = reg.cb["create"](api.new_data({"engine_python": sys.executable}), SOURCE + 1)
    assert isinstance(reg.instances[iid], RenderFaceSwap)
    reg.cb["destroy"](iid)


def test_obs_package_imports_only_the_standard_library() -> None:
    code = textwrap.dedent("""
        import sys
        import obs_faceswap.obs.script, obs_faceswap.obs.registry, obs_faceswap.obs.filters
        import obs_faceswap.engine.client
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'cv2', 'onnxruntime', 'scipy', 'numba'))
        print(heavy)
    """)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_script_file_finds_its_package_from_anywhere(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[3] / "obs_faceswap" / "obs" / "obs_faceswap_filter.py"
    code = textwrap.dedent(f"""
        import importlib.util, sys
        sys.path = [p for p in sys.path if 'work/main' not in p or 'site-packages' in p]
        spec = importlib.util.spec_from_file_location('obs_faceswap_filter', {str(script)!r})
        m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
        import obs_faceswap
        print(callable(m.script_load), callable(m.script_unload), 'Face Swap' in m.script_description())
        print(obs_faceswap.__file__)
    """)
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    assert first == "True True True"
    assert Path(second).resolve().parent == script.parent.parent


def test_stats_file_is_written_after_the_timed_tick_and_can_be_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("OBS_FACESWAP_STATS_DIR", str(tmp_path))
    f, _, _ = new_async(sync_frames=1)
    run(f, [make_frame(i) for i in range(4)])
    f.video_tick(0.1)
    s = json.loads((tmp_path / "Face_Swap.json").read_text())
    assert s["counters"]["frames"] == 4 and s["callbacks"]["filter_video"]["n"] == 4
    assert s["callbacks"]["video_tick"]["n"] == 1 and s["state"] == "running"
    assert {"p99_us", "cpu_p99_us", "max_us"} <= set(s["callbacks"]["filter_video"])
    (tmp_path / "Face_Swap.reset").write_text("")
    f.diag.next_write = 0
    f.video_tick(0.1)
    s = json.loads((tmp_path / "Face_Swap.json").read_text())
    assert s["counters"]["frames"] == 0 and not (tmp_path / "Face_Swap.reset").exists()


def test_photo_only_controls_hide_when_a_model_file_is_chosen() -> None:
    api = FakeApi()
    props = properties.build(api, ("Engine: running", ""), 1, 2)

    def visible(name: str) -> bool:
        return bool(api.props[api.obs_properties_get(props, name.encode())]["visible"])

    properties.apply_visibility(api, props, values(model_file=""))
    assert visible("shape_strength") and visible("mask_keep_eyes") and not visible("model_morph")
    properties.apply_visibility(api, props, values(model_file="/models/celeb.dfm"))
    assert not any(visible(n) for n in properties.PHOTO_ONLY)
    assert all(visible(n) for n in properties.MODEL_ONLY)
    assert "model_file" in properties.CONTROLLERS


def test_model_settings_reach_the_engine() -> None:
    out = st.engine_settings(values(model_file="/m/celeb.dfm", model_keep_mouth=True, model_morph=0.4))
    assert out["swapper.kind"] == "model" and out["swapper.model"] == "/m/celeb.dfm"
    assert out["swapper.neural.masks"] == "box,mouth" and out["swapper.neural.morph"] == 0.4
    assert out["swapper.neural.recognizer"] is None


def test_the_source_photos_advice_is_in_the_status_line_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Where the streamer picks the photo, OBS says what to change about it (the engine rates
    it; an engine error stays in "Last error", not mixed with the advice)."""
    f, _, engine = new_async(timing_mode="latency")
    note = "source photo poor: occlusion: use a photo without glasses"
    engine.clients[0].source_note = note
    with caplog.at_level(logging.INFO, logger="obs_faceswap.obs.filters"):
        f.tick_status()
        f.tick_status()
    status, error = f.status_lines()
    assert note in status and error == ""
    assert f.status()["source_note"] == note
    assert sum(note in r.getMessage() for r in caplog.records) == 1
    engine.clients[0].source_note = ""
    assert "source photo" not in f.status_lines()[0]
