"""A fake libobs and a fake engine client: the clean seam for unit-testing the OBS filter.

:class:`FakeApi` has the attribute names of :class:`obs_faceswap.obs.libobs.LibObs` and keeps
what the filter did (frames released, settings updates, hotkeys, textures uploaded) for the
tests to check. Frames are real ``struct obs_source_frame`` ctypes objects with real plane
memory, so the filter reads them exactly as it does inside OBS. :class:`FakeClient` follows
``obs_faceswap.engine.client.EngineClient``'s contract; its "result" for a frame flips the
top bit of the frame's first row as the engine saw it at submit time, so a test can tell
whose result ended up in which frame.
"""

from __future__ import annotations

import ctypes
import itertools
import types
from dataclasses import dataclass, field
from typing import Any

from obs_faceswap.engine.client import SUPPORTED_FORMATS, EngineStatus, FrameView
from obs_faceswap.obs import structs
from obs_faceswap.video_formats import LAYOUTS, VideoFormat


@dataclass
class FakeFrame:
    """A ``struct obs_source_frame`` with its planes (kept alive here)."""

    struct: Any
    planes: list[Any]

    @property
    def addr(self) -> int:
        return ctypes.addressof(self.struct)

    def first(self) -> int:
        return self.planes[0][0]

    def row0(self) -> bytes:
        return bytes(self.planes[0][: self.struct.linesize[0]])


PLANE_SHAPES = {  # format -> [(bytes per row factor (num, den), rows div)]
    VideoFormat.I420: [((1, 1), 1), ((1, 2), 2), ((1, 2), 2)],
    VideoFormat.NV12: [((1, 1), 1), ((1, 1), 2)],
    VideoFormat.YUY2: [((2, 1), 1)],
    VideoFormat.UYVY: [((2, 1), 1)],
    VideoFormat.YVYU: [((2, 1), 1)],
    VideoFormat.I422: [((1, 1), 1), ((1, 2), 1), ((1, 2), 1)],
    VideoFormat.I444: [((1, 1), 1), ((1, 1), 1), ((1, 1), 1)],
    VideoFormat.BGRA: [((4, 1), 1)],
    VideoFormat.BGRX: [((4, 1), 1)],
    VideoFormat.RGBA: [((4, 1), 1)],
    VideoFormat.P010: [((2, 1), 1), ((2, 1), 2)],
}


def make_frame(
    value: int, fmt: int = VideoFormat.I420, w: int = 64, h: int = 48, ts: int = 0, full_range: bool = False
) -> FakeFrame:
    """A frame whose every byte is ``value``, as libobs hands it to a filter (refs = 2:
    one for the source's frame cache, one taken by ``filter_frame``)."""
    f = structs.ObsSourceFrame()
    planes = []
    if fmt in PLANE_SHAPES:
        shapes = [(w * num // den, h // div) for (num, den), div in PLANE_SHAPES[fmt]]
    else:  # any other format OBS knows: its tightest plane layout
        info = LAYOUTS[fmt]
        shapes = [(info.row_bytes(i, w), info.rows(i, h)) for i in range(len(info.planes))]
    for i, (ls, rows) in enumerate(shapes):
        buf = (ctypes.c_uint8 * (ls * rows))()
        ctypes.memset(buf, value, ctypes.sizeof(buf))
        planes.append(buf)
        f.data[i] = ctypes.addressof(buf)
        f.linesize[i] = ls
    f.width, f.height, f.format, f.timestamp = w, h, fmt, ts
    f.full_range = full_range
    for i, v in enumerate((1.164, 0.0, 1.793, -0.973)):
        f.color_matrix[i] = v
    f.color_range_min[0], f.color_range_max[0] = 16 / 255, 235 / 255
    f.refs = 2
    return FakeFrame(f, planes)


class FakeApi:
    """The libobs calls the filter makes, recorded."""

    version = (29, 0, 2)
    frame_struct = structs.ObsSourceFrame
    _blog = None

    def __init__(self) -> None:
        self.parent: int | None = 0x5000
        self.target = 0x6000
        self.enabled = True
        self.released: list[tuple[int, int]] = []
        self.source_updates: list[dict[str, Any]] = []
        self.hotkeys: dict[int, tuple[Any, ...]] = {}
        self.unregistered: list[int] = []
        self.update_properties = 0
        self.data: dict[int, dict[str, Any]] = {}
        self.defaults: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self.interval_ns = 100_000_000
        self.frame_time = 1_000_000_000
        self.registered: list[bytes] = []
        self.enabled_types: list[tuple[bytes, bool]] = []
        self.source_ids: dict[int, bytes] = {}
        # graphics
        self.size = (32, 16)
        self.stage_image = (ctypes.c_uint8 * (32 * 16 * 4))()
        self.uploads: list[bytes] = []
        self.draws = 0
        self.skips = 0
        self.graphics_entered = 0
        self.destroyed: list[str] = []
        self._loop = False
        self.props: dict[int, dict[str, Any]] = {}

    # -- helpers for tests -----------------------------------------------------------
    def new_data(self, values: dict[str, Any] | None = None) -> int:
        i = next(self._ids)
        self.data[i] = dict(values or {})
        self.defaults[i] = {}
        return i

    def source_name(self, source: int | None) -> str:
        return "Face Swap" if source else ""

    def source_info_struct(self) -> type[ctypes.Structure]:
        return structs.source_info_struct(*self.version[:2])

    def blog(self, level: int, message: str) -> bool:
        return False

    # -- core ------------------------------------------------------------------------
    def obs_register_source_s(self, addr: int, size: int) -> None:
        self.registered.append(ctypes.string_at(addr, size))

    def obs_enable_source_type(self, type_id: bytes, enabled: bool) -> None:
        self.enabled_types.append((type_id, enabled))

    def obs_source_get_id(self, source: int) -> bytes:
        return self.source_ids.get(source, b"obs_faceswap_filter")

    def obs_get_frame_interval_ns(self) -> int:
        return self.interval_ns

    def obs_get_video_frame_time(self) -> int:
        self.frame_time += self.interval_ns
        return self.frame_time

    def obs_enter_graphics(self) -> None:
        self.graphics_entered += 1

    def obs_leave_graphics(self) -> None:
        pass

    # -- sources ---------------------------------------------------------------------
    def obs_filter_get_parent(self, source: int) -> int | None:
        return self.parent

    def obs_filter_get_target(self, source: int) -> int:
        return self.target

    def obs_source_enabled(self, source: int) -> bool:
        return self.enabled

    def obs_source_release_frame(self, parent: int, frame: int) -> None:
        f = structs.ObsSourceFrame.from_address(frame)
        f.refs -= 1
        self.released.append((parent, frame))

    def obs_source_update(self, source: int, data: int) -> None:
        self.source_updates.append(dict(self.data[data]))

    def obs_source_update_properties(self, source: int) -> None:
        self.update_properties += 1

    def obs_source_get_base_width(self, source: int) -> int:
        return self.size[0]

    def obs_source_get_base_height(self, source: int) -> int:
        return self.size[1]

    def obs_source_skip_video_filter(self, source: int) -> None:
        self.skips += 1

    # -- obs_data ----------------------------------------------------------------------
    def obs_data_create(self) -> int:
        return self.new_data()

    def obs_data_release(self, data: int) -> None:
        pass

    def _get(self, data: int, key: bytes, zero: Any) -> Any:
        k = key.decode()
        if k in self.data[data]:
            return self.data[data][k]
        return self.defaults[data].get(k, zero)

    def obs_data_get_string(self, data: int, key: bytes) -> bytes:
        return str(self._get(data, key, "")).encode()

    def obs_data_get_int(self, data: int, key: bytes) -> int:
        return int(self._get(data, key, 0))

    def obs_data_get_double(self, data: int, key: bytes) -> float:
        return float(self._get(data, key, 0.0))

    def obs_data_get_bool(self, data: int, key: bytes) -> bool:
        return bool(self._get(data, key, False))

    def _set(self, data: int, key: bytes, value: Any) -> None:
        self.data[data][key.decode()] = value.decode() if isinstance(value, bytes) else value

    def _set_default(self, data: int, key: bytes, value: Any) -> None:
        self.defaults[data][key.decode()] = value.decode() if isinstance(value, bytes) else value

    obs_data_set_string = obs_data_set_int = obs_data_set_double = obs_data_set_bool = _set
    obs_data_set_default_string = obs_data_set_default_int = _set_default
    obs_data_set_default_double = obs_data_set_default_bool = _set_default

    # -- hotkeys -----------------------------------------------------------------------
    def obs_hotkey_register_source(self, source: int, name: bytes, desc: bytes, cb: int, data: int) -> int:
        hid = next(self._ids)
        self.hotkeys[hid] = (source, name.decode(), desc.decode(), cb, data)
        return hid

    def obs_hotkey_unregister(self, hid: int) -> None:
        self.unregistered.append(hid)
        self.hotkeys.pop(hid, None)

    # -- properties --------------------------------------------------------------------
    def _prop(self, props: int, name: bytes, desc: bytes, kind: str, **extra: Any) -> int:
        pid = next(self._ids)
        p = {
            "id": pid,
            "name": name.decode(),
            "desc": desc.decode(),
            "kind": kind,
            "visible": True,
            "items": [],
            "parent": props,
            **extra,
        }
        self.props[pid] = p
        self.props[props]["children"].append(pid)
        return pid

    def obs_properties_create(self) -> int:
        pid = next(self._ids)
        self.props[pid] = {"id": pid, "kind": "properties", "children": []}
        return pid

    def obs_properties_get(self, props: int, name: bytes) -> int | None:
        for c in self.props[props]["children"]:
            p = self.props[c]
            if p.get("name") == name.decode():
                return c
            if p["kind"] == "group":
                found = self.obs_properties_get(p["content"], name)
                if found:
                    return found
        return None

    def obs_properties_add_bool(self, props: int, name: bytes, desc: bytes) -> int:
        return self._prop(props, name, desc, "bool")

    def obs_properties_add_int_slider(self, props: int, name: bytes, desc: bytes, lo: int, hi: int, step: int) -> int:
        return self._prop(props, name, desc, "int", lo=lo, hi=hi, step=step)

    def obs_properties_add_float_slider(
        self, props: int, name: bytes, desc: bytes, lo: float, hi: float, step: float
    ) -> int:
        return self._prop(props, name, desc, "float", lo=lo, hi=hi, step=step)

    def obs_properties_add_text(self, props: int, name: bytes, desc: bytes, kind: int) -> int:
        return self._prop(props, name, desc, "text", text_type=kind)

    def obs_properties_add_path(
        self, props: int, name: bytes, desc: bytes, kind: int, filt: bytes | None, default: bytes | None
    ) -> int:
        return self._prop(props, name, desc, "path", path_type=kind)

    def obs_properties_add_list(self, props: int, name: bytes, desc: bytes, kind: int, fmt: int) -> int:
        return self._prop(props, name, desc, "list")

    def obs_properties_add_button2(self, props: int, name: bytes, text: bytes, cb: int, priv: Any) -> int:
        return self._prop(props, name, text, "button", callback=cb)

    def obs_properties_add_group(self, props: int, name: bytes, desc: bytes, kind: int, content: int) -> int:
        return self._prop(props, name, desc, "group", content=content)

    def obs_property_list_add_string(self, p: int, text: bytes, value: bytes) -> int:
        self.props[p]["items"].append((text.decode(), value.decode()))
        return len(self.props[p]["items"]) - 1

    def obs_property_set_description(self, p: int, desc: bytes) -> None:
        self.props[p]["desc"] = desc.decode()

    def obs_property_set_long_description(self, p: int, desc: bytes) -> None:
        self.props[p]["tooltip"] = desc.decode()

    def obs_property_set_modified_callback2(self, p: int, cb: int, priv: Any) -> None:
        self.props[p]["modified"] = cb

    def obs_property_set_visible(self, p: int, visible: bool) -> None:
        self.props[p]["visible"] = bool(visible)

    def obs_property_text_set_info_type(self, p: int, kind: int) -> None:
        self.props[p]["info_type"] = kind

    def all_props(self, props: int) -> list[dict[str, Any]]:
        out = []
        for c in self.props[props]["children"]:
            p = self.props[c]
            out.append(p)
            if p["kind"] == "group":
                out += self.all_props(p["content"])
        return out

    # -- graphics ----------------------------------------------------------------------
    def gs_texrender_create(self, fmt: int, zs: int) -> int:
        return next(self._ids)

    def gs_stagesurface_create(self, w: int, h: int, fmt: int) -> int:
        return next(self._ids)

    def gs_texture_create(self, w: int, h: int, fmt: int, levels: int, data: Any, flags: int) -> int:
        return next(self._ids)

    def gs_texrender_destroy(self, t: int) -> None:
        self.destroyed.append("texrender")

    def gs_stagesurface_destroy(self, s: int) -> None:
        self.destroyed.append("stage")

    def gs_texture_destroy(self, t: int) -> None:
        self.destroyed.append("texture")

    def obs_source_process_filter_begin(self, source: int, fmt: int, direct: int) -> bool:
        return True

    def obs_source_process_filter_end(self, source: int, effect: int, w: int, h: int) -> None:
        pass

    def gs_texrender_reset(self, t: int) -> None:
        pass

    def gs_texrender_begin(self, t: int, w: int, h: int) -> bool:
        return True

    def gs_texrender_end(self, t: int) -> None:
        pass

    def gs_clear(self, flags: int, color: int, depth: float, stencil: int) -> None:
        assert color % 16 == 0

    def gs_ortho(self, *args: float) -> None:
        pass

    def gs_blend_state_push(self) -> None:
        pass

    def gs_blend_state_pop(self) -> None:
        pass

    def gs_blend_function(self, src: int, dst: int) -> None:
        pass

    def obs_get_base_effect(self, kind: int) -> int:
        return 77

    def gs_texrender_get_texture(self, t: int) -> int:
        return 88

    def gs_stage_texture(self, stage: int, tex: int) -> None:
        pass

    def gs_stagesurface_map(self, stage: int, data_ref: Any, linesize_ref: Any) -> bool:
        ptr = data_ref._obj
        addr = ctypes.c_void_p(ctypes.addressof(self.stage_image))
        ctypes.memmove(ctypes.addressof(ptr), ctypes.addressof(addr), ctypes.sizeof(ctypes.c_void_p))
        linesize_ref._obj.value = self.size[0] * 4
        return True

    def gs_stagesurface_unmap(self, stage: int) -> None:
        pass

    def gs_texture_set_image(self, tex: int, addr: int, linesize: int, flip: bool) -> None:
        self.uploads.append(ctypes.string_at(addr, linesize * self.size[1]))

    def gs_effect_get_param_by_name(self, effect: int, name: bytes) -> int:
        return 99

    def gs_effect_set_texture(self, param: int, tex: int) -> None:
        pass

    def gs_effect_loop(self, effect: int, tech: bytes) -> bool:
        self._loop = not self._loop
        return self._loop

    def gs_draw_sprite(self, tex: int, flip: int, w: int, h: int) -> None:
        self.draws += 1


@dataclass
class FakeClient:
    """``EngineClient``'s contract, recorded. ``ready_now`` controls when results arrive."""

    python: str | None
    settings: dict[str, Any]
    slots: int = 8
    env: dict[str, str] | None = None
    log: Any = None
    started: bool = False
    closed: bool = False
    accepting: bool = True
    ready_now: bool = True
    raise_on_submit: bool = False
    max_age: float | None = None
    seen: dict[int, int] = field(default_factory=dict)  # seq -> first byte at submit
    pending: set[int] = field(default_factory=set)
    ready_seqs: set[int] = field(default_factory=set)
    applied: list[tuple[int, int]] = field(default_factory=list)  # (seq, plane0 address)
    discarded: list[int] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    polls: int = 0
    last_rects: list[tuple[int, int, int, int]] = field(default_factory=list)
    state: str = "running"
    message: str = ""
    source_note: str = ""
    _seq: int = 0

    def start(self) -> None:
        self.started = True

    def submit(self, view: FrameView) -> int | None:
        if self.raise_on_submit:
            raise OSError("shared memory refused")
        if not self.accepting or self.state != "running" or view.format not in SUPPORTED_FORMATS:
            return None
        self._seq += 1
        self.seen[self._seq] = ctypes.c_uint8.from_address(view.planes[0]).value
        (self.ready_seqs if self.ready_now else self.pending).add(self._seq)
        return self._seq

    def finish(self, seq: int | None = None) -> None:
        """Results arrive (for ``seq`` or for everything pending)."""
        done = set(self.pending) if seq is None else {seq}
        self.pending -= done
        self.ready_seqs |= done

    def ready(self, seq: int) -> bool:
        return seq in self.ready_seqs

    def apply(self, seq: int, view: FrameView) -> bool:
        return self.apply_result(seq, view) == 1

    def apply_result(self, seq: int, view: FrameView) -> int:
        """Writes row 0 (the "face" is the top row): 1 applied, -1 no usable result."""
        if seq not in self.ready_seqs:
            return -1
        self.ready_seqs.discard(seq)
        row = view.linesizes[0]
        ctypes.memset(view.planes[0], self.seen[seq] ^ 0x80, row)
        self.applied.append((seq, view.planes[0]))
        self.last_rects = [(0, 0, view.width, 2)]
        return 1

    def discard(self, seq: int) -> None:
        self.discarded.append(seq)
        self.ready_seqs.discard(seq)
        self.pending.discard(seq)

    def update_settings(self, settings: dict[str, Any]) -> None:
        self.updates.append(dict(settings))
        self.settings.update(settings)

    def poll(self) -> None:
        self.polls += 1

    @property
    def status(self) -> EngineStatus:
        return EngineStatus(self.state, self.message, "CPUExecutionProvider", 25.0, 30.0, 0, 4242, self.source_note)

    def close(self, timeout: float = 2.0) -> None:
        self.closed = True


class FakeEngineModule(types.SimpleNamespace):
    """Stands in for ``obs_faceswap.engine.client``; remembers the clients it made."""

    def __init__(self) -> None:
        super().__init__(FrameView=FrameView, SUPPORTED_FORMATS=SUPPORTED_FORMATS)
        self.clients: list[FakeClient] = []

        def factory(python: str | None, settings: dict[str, Any], **kw: Any) -> FakeClient:
            c = FakeClient(python, dict(settings), **kw)
            self.clients.append(c)
            return c

        self.EngineClient = factory
