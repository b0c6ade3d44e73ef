"""The libobs functions the filter calls, bound through ctypes from one signature table.

Standard library only (this runs inside OBS's embedded Python).

Why ctypes and not SWIG ``obspython``: a ctypes call releases the GIL while the C function
runs, a SWIG call does not. A SWIG call that waits for a libobs lock (graphics, sources,
filters) while OBS's graphics thread holds that lock and waits for the GIL inside one of our
callbacks deadlocks OBS (reproduced twice, see docs/obs-integration.md). So *every* libobs
call here goes through ctypes.

Each prototype is tagged with the OBS version that added it; a function the running libobs
does not export becomes a stub that raises :class:`LibObsError` only when called, so an
optional feature fails with a clear message instead of the whole script failing to load.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import Callable, Sequence
from ctypes import (
    POINTER,
    c_bool,
    c_char_p,
    c_double,
    c_float,
    c_int,
    c_longlong,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Any

from obs_faceswap.errors import FaceSwapError
from obs_faceswap.obs import structs

log = logging.getLogger(__name__)


class LibObsError(FaceSwapError):
    """libobs cannot be found, is too old, or lacks a function the filter needs."""


# name, restype, argtypes, first OBS version that exports it
Prototype = tuple[str, Any, Sequence[Any], tuple[int, int]]

V28 = (28, 0)

PROTOTYPES: tuple[Prototype, ...] = (
    # core
    ("obs_get_version", c_uint32, (), V28),
    ("obs_get_version_string", c_char_p, (), V28),
    ("obs_register_source_s", None, (c_void_p, c_size_t), V28),
    ("obs_enable_source_type", None, (c_char_p, c_bool), V28),
    ("obs_get_frame_interval_ns", c_uint64, (), V28),
    ("obs_get_video_frame_time", c_uint64, (), V28),
    ("obs_queue_task", None, (c_int, c_void_p, c_void_p, c_bool), V28),
    ("obs_enter_graphics", None, (), V28),
    ("obs_leave_graphics", None, (), V28),
    ("gs_get_context", c_void_p, (), V28),
    # sources and filters
    ("obs_source_get_name", c_char_p, (c_void_p,), V28),
    ("obs_source_get_id", c_char_p, (c_void_p,), V28),
    ("obs_source_enabled", c_bool, (c_void_p,), V28),
    ("obs_source_active", c_bool, (c_void_p,), V28),
    ("obs_source_showing", c_bool, (c_void_p,), V28),
    ("obs_filter_get_parent", c_void_p, (c_void_p,), V28),
    ("obs_filter_get_target", c_void_p, (c_void_p,), V28),
    ("obs_source_release_frame", None, (c_void_p, c_void_p), V28),
    ("obs_source_update", None, (c_void_p, c_void_p), V28),
    ("obs_source_update_properties", None, (c_void_p,), V28),
    ("obs_source_get_settings", c_void_p, (c_void_p,), V28),
    ("obs_source_get_base_width", c_uint32, (c_void_p,), V28),
    ("obs_source_get_base_height", c_uint32, (c_void_p,), V28),
    ("obs_source_process_filter_begin", c_bool, (c_void_p, c_int, c_int), V28),
    ("obs_source_process_filter_end", None, (c_void_p, c_void_p, c_uint32, c_uint32), V28),
    ("obs_source_skip_video_filter", None, (c_void_p,), V28),
    # obs_data
    ("obs_data_create", c_void_p, (), V28),
    ("obs_data_release", None, (c_void_p,), V28),
    ("obs_data_get_string", c_char_p, (c_void_p, c_char_p), V28),
    ("obs_data_get_int", c_longlong, (c_void_p, c_char_p), V28),
    ("obs_data_get_double", c_double, (c_void_p, c_char_p), V28),
    ("obs_data_get_bool", c_bool, (c_void_p, c_char_p), V28),
    ("obs_data_set_string", None, (c_void_p, c_char_p, c_char_p), V28),
    ("obs_data_set_int", None, (c_void_p, c_char_p, c_longlong), V28),
    ("obs_data_set_double", None, (c_void_p, c_char_p, c_double), V28),
    ("obs_data_set_bool", None, (c_void_p, c_char_p, c_bool), V28),
    ("obs_data_set_default_string", None, (c_void_p, c_char_p, c_char_p), V28),
    ("obs_data_set_default_int", None, (c_void_p, c_char_p, c_longlong), V28),
    ("obs_data_set_default_double", None, (c_void_p, c_char_p, c_double), V28),
    ("obs_data_set_default_bool", None, (c_void_p, c_char_p, c_bool), V28),
    # properties
    ("obs_properties_create", c_void_p, (), V28),
    ("obs_properties_get", c_void_p, (c_void_p, c_char_p), V28),
    ("obs_properties_add_bool", c_void_p, (c_void_p, c_char_p, c_char_p), V28),
    ("obs_properties_add_int", c_void_p, (c_void_p, c_char_p, c_char_p, c_int, c_int, c_int), V28),
    ("obs_properties_add_int_slider", c_void_p, (c_void_p, c_char_p, c_char_p, c_int, c_int, c_int), V28),
    ("obs_properties_add_float_slider", c_void_p, (c_void_p, c_char_p, c_char_p, c_double, c_double, c_double), V28),
    ("obs_properties_add_text", c_void_p, (c_void_p, c_char_p, c_char_p, c_int), V28),
    ("obs_properties_add_path", c_void_p, (c_void_p, c_char_p, c_char_p, c_int, c_char_p, c_char_p), V28),
    ("obs_properties_add_list", c_void_p, (c_void_p, c_char_p, c_char_p, c_int, c_int), V28),
    ("obs_properties_add_button2", c_void_p, (c_void_p, c_char_p, c_char_p, c_void_p, c_void_p), V28),
    ("obs_properties_add_group", c_void_p, (c_void_p, c_char_p, c_char_p, c_int, c_void_p), V28),
    ("obs_property_list_add_string", c_size_t, (c_void_p, c_char_p, c_char_p), V28),
    ("obs_property_list_add_int", c_size_t, (c_void_p, c_char_p, c_longlong), V28),
    ("obs_property_set_description", None, (c_void_p, c_char_p), V28),
    ("obs_property_set_long_description", None, (c_void_p, c_char_p), V28),
    ("obs_property_set_modified_callback2", None, (c_void_p, c_void_p, c_void_p), V28),
    ("obs_property_set_visible", None, (c_void_p, c_bool), V28),
    ("obs_property_int_set_suffix", None, (c_void_p, c_char_p), V28),
    ("obs_property_float_set_suffix", None, (c_void_p, c_char_p), V28),
    ("obs_property_text_set_info_type", None, (c_void_p, c_int), V28),
    # hotkeys
    ("obs_hotkey_register_source", c_size_t, (c_void_p, c_char_p, c_char_p, c_void_p, c_void_p), V28),
    ("obs_hotkey_unregister", None, (c_size_t,), V28),
    # graphics (callers must hold the graphics context)
    ("obs_get_base_effect", c_void_p, (c_int,), V28),
    ("gs_texrender_create", c_void_p, (c_int, c_int), V28),
    ("gs_texrender_destroy", None, (c_void_p,), V28),
    ("gs_texrender_reset", None, (c_void_p,), V28),
    ("gs_texrender_begin", c_bool, (c_void_p, c_uint32, c_uint32), V28),
    ("gs_texrender_end", None, (c_void_p,), V28),
    ("gs_texrender_get_texture", c_void_p, (c_void_p,), V28),
    ("gs_stagesurface_create", c_void_p, (c_uint32, c_uint32, c_int), V28),
    ("gs_stagesurface_destroy", None, (c_void_p,), V28),
    ("gs_stage_texture", None, (c_void_p, c_void_p), V28),
    ("gs_stagesurface_map", c_bool, (c_void_p, POINTER(POINTER(c_uint8)), POINTER(c_uint32)), V28),
    ("gs_stagesurface_unmap", None, (c_void_p,), V28),
    ("gs_texture_create", c_void_p, (c_uint32, c_uint32, c_int, c_uint32, c_void_p, c_uint32), V28),
    ("gs_texture_destroy", None, (c_void_p,), V28),
    ("gs_texture_set_image", None, (c_void_p, c_void_p, c_uint32, c_bool), V28),
    ("gs_clear", None, (c_uint32, c_void_p, c_float, c_uint8), V28),
    ("gs_ortho", None, (c_float, c_float, c_float, c_float, c_float, c_float), V28),
    ("gs_blend_state_push", None, (), V28),
    ("gs_blend_state_pop", None, (), V28),
    ("gs_blend_function", None, (c_int, c_int), V28),
    ("gs_effect_get_param_by_name", c_void_p, (c_void_p, c_char_p), V28),
    ("gs_effect_set_texture", None, (c_void_p, c_void_p), V28),
    ("gs_effect_loop", c_bool, (c_void_p, c_char_p), V28),
    ("gs_draw_sprite", None, (c_void_p, c_uint32, c_uint32, c_uint32), V28),
)


def _missing(name: str, since: tuple[int, int]) -> Callable[..., Any]:
    def stub(*_args: Any, **_kw: Any) -> Any:
        raise LibObsError(f"libobs has no {name}() (added in OBS {since[0]}.{since[1]})")

    stub.__name__ = name
    return stub


def _candidates() -> list[str | None]:
    """Where libobs may be, most likely first, for the running platform."""
    override = os.environ.get("OBS_FACESWAP_LIBOBS")
    names: list[str | None] = [override] if override else []
    if sys.platform == "win32":
        names += ["obs.dll", "obs"]
    elif sys.platform == "darwin":
        # Inside OBS the framework is already loaded: the global namespace resolves it.
        names += [None, "@rpath/libobs.framework/libobs", "libobs.framework/libobs"]
    else:
        names += ["libobs.so.0", None, ctypes.util.find_library("obs")]
    return names


def load_library() -> ctypes.CDLL:
    """The loaded libobs (inside OBS: the already loaded image).

    Raises:
        LibObsError: when no candidate exports ``obs_get_version``.
    """
    tried: list[str | None] = []
    for name in _candidates():
        if name in tried:
            continue
        tried.append(name)
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if hasattr(lib, "obs_get_version"):
            return lib
    raise LibObsError(
        "libobs not found (tried "
        + ", ".join(str(n or "the process's global symbols") for n in tried)
        + "); this module only works inside OBS Studio or where libobs is installed"
    )


class LibObs:
    """libobs functions as attributes, named as in C, with argtypes/restype from the table.

    Args:
        lib: the loaded library (default :func:`load_library`).

    Attributes:
        version: ``(major, minor, patch)`` of the running libobs.
        missing: names of prototypes the library does not export.
    """

    def __init__(self, lib: ctypes.CDLL | None = None) -> None:
        self.lib = lib if lib is not None else load_library()
        self.missing: list[str] = []
        for name, restype, argtypes, since in PROTOTYPES:
            try:
                fn = getattr(self.lib, name)
            except AttributeError:
                setattr(self, name, _missing(name, since))
                self.missing.append(name)
                continue
            fn.restype = restype
            fn.argtypes = list(argtypes)
            setattr(self, name, fn)
        self.version = structs.unpack_version(int(self.obs_get_version()))
        if self.version[:2] < structs.MIN_OBS_VERSION:
            raise LibObsError(f"OBS {'.'.join(map(str, self.version))} is too old; obs-faceswap needs OBS 28 or newer")
        self._blog = self._bind_blog()

    def _bind_blog(self) -> Callable[[int, bytes], None] | None:
        # blog() is variadic. Passing one "%s" argument through a fixed prototype is the
        # same call on x86-64 SysV and Windows x64; Apple arm64 passes variadic arguments on
        # the stack, so there the caller falls back to Python's own logging.
        if sys.platform == "darwin" and os.uname().machine == "arm64":
            return None
        try:
            fn = self.lib.blog
        except AttributeError:
            return None
        fn.restype = None
        fn.argtypes = [c_int, c_char_p, c_char_p]

        def blog(level: int, message: bytes) -> None:
            fn(level, b"%s", message)

        return blog

    def blog(self, level: int, message: str) -> bool:
        """Write one line to OBS's log; False when this platform cannot call ``blog``."""
        if self._blog is None:
            return False
        self._blog(level, message.encode("utf-8", "replace"))
        return True

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the table does not bind (those are set in __init__).
        raise AttributeError(f"libobs binding has no {name!r}; add it to PROTOTYPES")

    @property
    def frame_struct(self) -> type[ctypes.Structure]:
        """``struct obs_source_frame`` of this platform."""
        return structs.ObsSourceFrame

    def source_info_struct(self) -> type[ctypes.Structure]:
        """``struct obs_source_info`` of the running OBS version."""
        return structs.source_info_struct(*self.version[:2])

    # --- small conveniences over the raw calls -----------------------------------------
    def source_name(self, source: int | None) -> str:
        """A source's name, or ``""``."""
        if not source:
            return ""
        raw = self.obs_source_get_name(source)
        return raw.decode("utf-8", "replace") if raw else ""

    def data_str(self, data: int, key: str) -> str:
        raw = self.obs_data_get_string(data, key.encode())
        return raw.decode("utf-8", "replace") if raw else ""
