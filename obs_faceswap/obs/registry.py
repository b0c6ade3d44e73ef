"""Source-type registration and the C callbacks, kept alive across script reloads.

Standard library only. libobs cannot unregister a source type, and callbacks keep arriving
after ``script_unload`` (on exit the order is ``filter_remove`` → ``script_unload`` →
``destroy``). So the ``obs_source_info`` structs, every ``CFUNCTYPE`` object and every string
handed to libobs live in one :class:`Registry` stored outside the reloadable modules (a
private entry in ``sys.modules``): a reload re-executes the script file, finds the same
registry, re-enables the source types and adopts the live filter instances.

The C callbacks are thin trampolines: they look the instance up by the integer id that
``create`` returned as libobs' ``data`` pointer and call its method, catching every
exception (an exception escaping a ctypes callback would only be printed, and a
``filter_video`` that returned NULL by accident would leak the frame).
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
import traceback
import types
from collections.abc import Callable
from typing import Any

from obs_faceswap.obs import engine_link, filters, properties, structs
from obs_faceswap.obs import settings as st

log = logging.getLogger(__name__)

ASYNC_ID = "obs_faceswap_filter"
RENDER_ID = "obs_faceswap_render_filter"
#: id → (display name, output flags, type_data tag, instance class name)
TYPES: dict[str, tuple[str, int, int, str]] = {
    ASYNC_ID: ("Face Swap", structs.OBS_SOURCE_ASYNC_VIDEO, 1, "AsyncFaceSwap"),
    RENDER_ID: ("Face Swap (any source)", structs.OBS_SOURCE_VIDEO, 2, "RenderFaceSwap"),
}
_STATE_MODULE = "_obs_faceswap_state"


class Registry:
    """Everything that must outlive one execution of the script file."""

    def __init__(self) -> None:
        self.api: Any = None
        self.loaded = False
        self.registered: dict[str, Any] = {}
        self.instances: dict[int, filters.FilterBase] = {}
        self.next_id = 1
        self.lock = threading.Lock()
        self.engine_api: Any = None
        self.engine_error = "script not loaded"
        self.classes: dict[str, type[filters.FilterBase]] = {}
        self.keep: list[Any] = []
        self._errors_logged: set[str] = set()
        self.names: dict[int, Any] = {}
        self.cb = self._make_callbacks()

    # --- the C callbacks (created once, never garbage collected) -----------------------
    def _report(self, where: str) -> None:
        # Log each distinct failure once: a per-frame error must not flood the log.
        text = traceback.format_exc()
        key = where + text.splitlines()[-1] if text else where
        if key not in self._errors_logged:
            self._errors_logged.add(key)
            log.error("%s failed:\n%s", where, text)

    def _guarded(
        self, where: str, fn: Callable[..., Any], fallback: Callable[..., Any] | None = None
    ) -> Callable[..., Any]:
        """``fn`` such that nothing escapes into C: an exception is logged once and the
        callback returns ``fallback(*args)`` (None when no fallback)."""

        def call(*args: Any) -> Any:
            try:
                return fn(*args)
            except BaseException:
                self._report(where)
                if fallback is None:
                    return None
                try:
                    return fallback(*args)
                except BaseException:
                    self._report(where + " fallback")
                    return None

        return call

    def _instance_call(self, method: str, *, when: Callable[..., bool] | None = None) -> Callable[..., Any]:
        """A callback ``(data, *args)`` that calls ``instance.<method>(*args)`` when the
        instance exists (and ``when(*args)`` holds)."""
        inst = self.instances

        def call(data: int | None, *args: Any) -> Any:
            i = inst.get(data or 0)
            if i is None or (when is not None and not when(*args)):
                return None
            return getattr(i, method)(*args)

        return call

    # --- the C callbacks (created once, never garbage collected) -----------------------
    def _make_callbacks(self) -> dict[str, Any]:
        reg = self
        inst = self.instances
        g = self._guarded

        def get_name(type_data: int | None) -> int | None:
            buf = reg.names.get(type_data or 0)
            return ctypes.addressof(buf) if buf is not None else None

        def destroy(data: int | None) -> None:
            i = inst.pop(data or 0, None)
            if i is not None:
                i.destroy()

        def get_defaults(settings: int | None) -> None:
            if settings and reg.api is not None:
                st.set_defaults(reg.api, settings)

        def get_properties(data: int | None) -> int | None:
            i = inst.get(data or 0)
            return properties.build(reg.api, i.status_lines() if i else None, reg.addr("refresh"), reg.addr("modified"))

        def update(data: int | None, settings: int | None) -> None:
            i = inst.get(data or 0)
            if i is not None and settings:
                i.update(st.read(reg.api, settings))

        def skip_filter(data: int | None, _effect: int | None) -> None:
            # Nothing drawn: draw the source unfiltered rather than leave a hole -- unless the
            # swap is on (fail closed: a hole for one frame, never the real face).
            i = inst.get(data or 0)
            if i is not None and not (i.swap_on and not i.passthrough):
                reg.api.obs_source_skip_video_filter(i.source)

        def filter_video(data: int | None, frame: int | None) -> int | None:
            i = inst.get(data or 0)
            if i is None or not frame:
                return frame
            return i.filter_video(frame)

        def same_frame(_data: int | None, frame: int | None) -> int | None:
            return frame  # never NULL by accident: that would leak the frame

        def hotkey(data: int | None, _id: int, _hotkey: int | None, pressed: bool) -> None:
            i = inst.get(data or 0)
            if i is not None and pressed:
                i.toggle_swap()

        def refresh(props: int | None, _prop: int | None, data: int | None) -> bool:
            i = inst.get(data or 0)
            if i is not None and props:
                properties.refresh_status(reg.api, props, i.status_lines())
            return True

        def modified(_priv: int | None, props: int | None, _prop: int | None, settings: int | None) -> bool:
            if props and settings:
                properties.apply_visibility(reg.api, props, st.read(reg.api, settings))
            return True

        def false(*_args: Any) -> bool:
            return False

        return {
            "get_name": structs.GET_NAME(g("get_name", get_name)),
            "create": structs.CREATE(g("create", reg.create)),
            "destroy": structs.DESTROY(g("destroy", destroy)),
            "get_defaults": structs.GET_DEFAULTS(g("get_defaults", get_defaults)),
            "get_properties": structs.GET_PROPERTIES(g("get_properties", get_properties)),
            "update": structs.UPDATE(g("update", update)),
            "video_tick": structs.VIDEO_TICK(g("video_tick", self._instance_call("video_tick"))),
            "video_render": structs.VIDEO_RENDER(g("video_render", self._instance_call("video_render"), skip_filter)),
            "filter_video": structs.FILTER_VIDEO(g("filter_video", filter_video, same_frame)),
            "filter_remove": structs.FILTER_REMOVE(g("filter_remove", self._instance_call("filter_remove"))),
            "hotkey": structs.HOTKEY_FUNC(g("hotkey", hotkey)),
            "refresh": structs.PROPERTY_CLICKED(g("refresh", refresh, false)),
            "modified": structs.PROPERTY_MODIFIED2(g("modified", modified, false)),
        }

    def addr(self, name: str) -> int:
        """The C address of one callback."""
        return ctypes.cast(self.cb[name], ctypes.c_void_p).value or 0

    # --- instances ---------------------------------------------------------------------
    def create(self, settings: int | None, source: int | None) -> int | None:
        api = self.api
        if api is None or not source:
            return None
        raw = api.obs_source_get_id(source)
        type_id = raw.decode() if raw else ASYNC_ID
        cls = self.classes.get(type_id) or getattr(filters, TYPES[type_id][3])
        values = st.read(api, settings) if settings else st.defaults()
        # The client passes OBS's environment on and puts this package on PYTHONPATH.
        instance = cls(api, source, values, engine_api=self.engine_api, engine_error=self.engine_error)
        if not self.loaded:
            instance.suspend()
        with self.lock:
            iid = self.next_id
            self.next_id += 1
            self.instances[iid] = instance
        instance.set_hotkey_callback(self.addr("hotkey"), iid)
        log.info("Face Swap %r created (%s)", instance.name, type_id)
        return iid

    # --- script lifecycle --------------------------------------------------------------
    def load(self, api: Any, engine_loader: Callable[[], tuple[Any, str]] = filters.load_engine_api) -> None:
        """Register (first load) or re-enable (reload) the source types; adopt instances."""
        self.api = api
        self.engine_api, self.engine_error = engine_loader()
        if self.engine_api is None:
            log.warning("%s; filters will pass frames through", self.engine_error)
        self.classes = {tid: getattr(filters, spec[3]) for tid, spec in TYPES.items()}
        for type_id, (name, flags, tag, _cls) in TYPES.items():
            if type_id in self.registered:
                api.obs_enable_source_type(type_id.encode(), True)
            else:
                self._register(type_id, name, flags, tag)
        self.loaded = True
        for instance in list(self.instances.values()):
            try:
                instance.resume(self.engine_api, self.engine_error)
            except Exception:
                log.exception("Face Swap %r: could not resume", instance.name)
        log.info("loaded (OBS %s, %d live filters)", ".".join(map(str, api.version)), len(self.instances))

    def unload(self) -> None:
        """Pass every filter through, stop engines, hide the types from the Add menu."""
        self.loaded = False
        # Quick: frames go back to libobs now, engines stop on background threads.
        for instance in list(self.instances.values()):
            _suspend_quietly(instance)
        if self.api is not None:
            for type_id in self.registered:
                self.api.obs_enable_source_type(type_id.encode(), False)
        # Wait for the engines to quit (they were asked at once, in parallel): at exit, OBS
        # must not tear down while our threads still run, nor leave processes or shared
        # memory behind. An engine that ignores the request is killed within ~3 s.
        left = engine_link.join_all(timeout=4.0)
        if left:
            log.warning("%d engines were still stopping when the script unloaded", left)
        log.info(
            "unloaded (%d live filters pass frames through, %s thread)",
            len(self.instances),
            threading.current_thread().name,
        )

    def _register(self, type_id: str, name: str, flags: int, tag: int) -> None:
        api = self.api
        info_cls = api.source_info_struct()
        info = info_cls()
        id_bytes = ctypes.create_string_buffer(type_id.encode())
        name_buf = ctypes.create_string_buffer(name.encode())
        info.id = ctypes.cast(id_bytes, ctypes.c_char_p)
        info.type = structs.OBS_SOURCE_TYPE_FILTER
        info.output_flags = flags
        info.type_data = tag
        self.names[tag] = name_buf
        for field in (
            "get_name",
            "create",
            "destroy",
            "get_defaults",
            "get_properties",
            "update",
            "video_tick",
            "filter_remove",
        ):
            setattr(info, field, self.addr(field))
        if flags & structs.OBS_SOURCE_ASYNC:
            info.filter_video = self.addr("filter_video")
        else:
            info.video_render = self.addr("video_render")
        api.obs_register_source_s(ctypes.addressof(info), ctypes.sizeof(info))
        # libobs copies the struct but keeps our id pointer as unversioned_id: keep it all.
        self.keep += [info, id_bytes, name_buf]
        self.registered[type_id] = info
        log.info("registered %r (%s, %d-byte obs_source_info)", name, type_id, ctypes.sizeof(info))


def _suspend_quietly(instance: filters.FilterBase) -> None:
    try:
        instance.suspend()
    except Exception:
        log.exception("Face Swap %r: could not stop", instance.name)


def get_registry() -> Registry:
    """The process-wide registry (created on first use, survives script reloads)."""
    mod = sys.modules.get(_STATE_MODULE)
    if mod is None:
        mod = types.ModuleType(_STATE_MODULE)
        mod.__doc__ = "obs-faceswap state that must survive OBS script reloads"
        sys.modules[_STATE_MODULE] = mod
    reg = getattr(mod, "registry", None)
    if reg is None:
        reg = Registry()
        mod.registry = reg  # type: ignore[attr-defined]
    return reg
