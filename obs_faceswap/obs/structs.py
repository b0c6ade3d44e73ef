"""ctypes layouts of the libobs structures and constants the filter uses.

Standard library only: this module runs inside OBS's embedded Python.

Layouts are versioned because OBS only ever *appends* to ``struct obs_source_info``:

========  =========================================  ==================
OBS       last field                                 size (64-bit)
========  =========================================  ==================
28 – 29   ``video_get_color_space``                  400
30 – 32.1 ``filter_add``                             408
32.2 +    ``get_dark_icon``, ``get_light_icon``      424
========  =========================================  ==================

``obs_register_source_s(info, size)`` zero-fills what a smaller struct leaves out and
rejects a larger one, so the layout must match the *running* OBS (or be older).
``struct obs_source_frame`` is unchanged from 28.0 to 32.2; its ``refs`` field is a C
``long``, 8 bytes on Linux/macOS and 4 on Windows. Every offset is checked by
``tests/unit/obs/test_structs.py`` against the table read from the OBS headers.
"""

from __future__ import annotations

import ctypes
import sys
from ctypes import (
    c_bool,
    c_char_p,
    c_float,
    c_int,
    c_int32,
    c_int64,
    c_long,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)

from obs_faceswap.video_formats import FORMAT_NAMES, FORMATS

# --- source types and output flags (obs-source.h) --------------------------------------
OBS_SOURCE_TYPE_INPUT = 0
OBS_SOURCE_TYPE_FILTER = 1

OBS_SOURCE_VIDEO = 1 << 0
OBS_SOURCE_AUDIO = 1 << 1
OBS_SOURCE_ASYNC = 1 << 2
OBS_SOURCE_ASYNC_VIDEO = OBS_SOURCE_ASYNC | OBS_SOURCE_VIDEO
OBS_SOURCE_CUSTOM_DRAW = 1 << 3
OBS_SOURCE_CAP_DISABLED = 1 << 10
OBS_SOURCE_SRGB = 1 << 15

# --- enum video_format: one definition, in obs_faceswap.video_formats ------------------
#: OBS's name of every ``video_format`` value.
VIDEO_FORMAT_NAMES: dict[int, str] = FORMAT_NAMES

#: The formats the async filter hands to the engine: per plane, the vertical subsampling
#: (rows = height // div, rounded up), from the one table of plane layouts. Frames in other
#: formats are covered (:mod:`obs_faceswap.obs.cover` knows the layout of every format).
PLANE_LAYOUT: dict[int, tuple[int, ...]] = {f: info.row_divisors for f, info in FORMATS.items()}

# --- graphics (graphics/graphics.h, obs.h) ---------------------------------------------
GS_RGBA = 3
GS_BGRX = 4
GS_BGRA = 5
GS_ZS_NONE = 0
GS_DYNAMIC = 1 << 1
GS_CLEAR_COLOR = 1 << 0
GS_BLEND_ZERO = 0
GS_BLEND_ONE = 1
GS_FLIP_V = 1 << 1
OBS_EFFECT_DEFAULT = 0
OBS_NO_DIRECT_RENDERING = 0
OBS_ALLOW_DIRECT_RENDERING = 1

# --- properties (obs-properties.h) ------------------------------------------------------
OBS_PATH_FILE = 0
OBS_PATH_DIRECTORY = 2
OBS_TEXT_DEFAULT = 0
OBS_TEXT_INFO = 3  # OBS 28+
OBS_TEXT_INFO_NORMAL = 0
OBS_TEXT_INFO_WARNING = 1
OBS_TEXT_INFO_ERROR = 2
OBS_COMBO_TYPE_EDITABLE = 1
OBS_COMBO_TYPE_LIST = 2
OBS_COMBO_FORMAT_INT = 1
OBS_COMBO_FORMAT_STRING = 3
OBS_GROUP_NORMAL = 1

# --- logging (util/base.h) -------------------------------------------------------------
LOG_ERROR = 100
LOG_WARNING = 200
LOG_INFO = 300
LOG_DEBUG = 400

# --- tasks (obs.h) ---------------------------------------------------------------------
OBS_TASK_UI = 0
OBS_TASK_GRAPHICS = 1


def pack_version(major: int, minor: int = 0, patch: int = 0) -> int:
    """``obs_get_version()``'s encoding: ``major << 24 | minor << 16 | patch``."""
    return (major << 24) | (minor << 16) | patch


def unpack_version(v: int) -> tuple[int, int, int]:
    """Inverse of :func:`pack_version`."""
    return (v >> 24) & 0xFF, (v >> 16) & 0xFF, v & 0xFFFF


# --- function pointer types ------------------------------------------------------------
# Every callback field is declared c_void_p in the struct and filled with the address of
# one of these CFUNCTYPE objects; the objects themselves are kept alive by the registry.
# Pointer-returning callbacks return c_void_p (an int address), never c_char_p: ctypes
# cannot return a pointer to Python-owned bytes from a callback.
GET_NAME = ctypes.CFUNCTYPE(c_void_p, c_void_p)
CREATE = ctypes.CFUNCTYPE(c_void_p, c_void_p, c_void_p)
DESTROY = ctypes.CFUNCTYPE(None, c_void_p)
GET_SIZE = ctypes.CFUNCTYPE(c_uint32, c_void_p)
GET_DEFAULTS = ctypes.CFUNCTYPE(None, c_void_p)
GET_PROPERTIES = ctypes.CFUNCTYPE(c_void_p, c_void_p)
UPDATE = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)
VOID_DATA = ctypes.CFUNCTYPE(None, c_void_p)
VIDEO_TICK = ctypes.CFUNCTYPE(None, c_void_p, c_float)
VIDEO_RENDER = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)
FILTER_VIDEO = ctypes.CFUNCTYPE(c_void_p, c_void_p, c_void_p)
FILTER_REMOVE = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)
HOTKEY_FUNC = ctypes.CFUNCTYPE(None, c_void_p, ctypes.c_size_t, c_void_p, c_bool)
PROPERTY_CLICKED = ctypes.CFUNCTYPE(c_bool, c_void_p, c_void_p, c_void_p)
PROPERTY_MODIFIED2 = ctypes.CFUNCTYPE(c_bool, c_void_p, c_void_p, c_void_p, c_void_p)
TASK_FUNC = ctypes.CFUNCTYPE(None, c_void_p)

#: Fields of ``struct obs_source_info`` in declaration order, with the OBS version that
#: appended them. ``("id", c_char_p)`` etc. are data fields; everything else is a pointer.
SOURCE_INFO_FIELDS: tuple[tuple[str, object, tuple[int, int]], ...] = (
    ("id", c_char_p, (28, 0)),
    ("type", c_int, (28, 0)),
    ("output_flags", c_uint32, (28, 0)),
    ("get_name", c_void_p, (28, 0)),
    ("create", c_void_p, (28, 0)),
    ("destroy", c_void_p, (28, 0)),
    ("get_width", c_void_p, (28, 0)),
    ("get_height", c_void_p, (28, 0)),
    ("get_defaults", c_void_p, (28, 0)),
    ("get_properties", c_void_p, (28, 0)),
    ("update", c_void_p, (28, 0)),
    ("activate", c_void_p, (28, 0)),
    ("deactivate", c_void_p, (28, 0)),
    ("show", c_void_p, (28, 0)),
    ("hide", c_void_p, (28, 0)),
    ("video_tick", c_void_p, (28, 0)),
    ("video_render", c_void_p, (28, 0)),
    ("filter_video", c_void_p, (28, 0)),
    ("filter_audio", c_void_p, (28, 0)),
    ("enum_active_sources", c_void_p, (28, 0)),
    ("save", c_void_p, (28, 0)),
    ("load", c_void_p, (28, 0)),
    ("mouse_click", c_void_p, (28, 0)),
    ("mouse_move", c_void_p, (28, 0)),
    ("mouse_wheel", c_void_p, (28, 0)),
    ("focus", c_void_p, (28, 0)),
    ("key_click", c_void_p, (28, 0)),
    ("filter_remove", c_void_p, (28, 0)),
    ("type_data", c_void_p, (28, 0)),
    ("free_type_data", c_void_p, (28, 0)),
    ("audio_render", c_void_p, (28, 0)),
    ("enum_all_sources", c_void_p, (28, 0)),
    ("transition_start", c_void_p, (28, 0)),
    ("transition_stop", c_void_p, (28, 0)),
    ("get_defaults2", c_void_p, (28, 0)),
    ("get_properties2", c_void_p, (28, 0)),
    ("audio_mix", c_void_p, (28, 0)),
    ("icon_type", c_int, (28, 0)),
    ("media_play_pause", c_void_p, (28, 0)),
    ("media_restart", c_void_p, (28, 0)),
    ("media_stop", c_void_p, (28, 0)),
    ("media_next", c_void_p, (28, 0)),
    ("media_previous", c_void_p, (28, 0)),
    ("media_get_duration", c_void_p, (28, 0)),
    ("media_get_time", c_void_p, (28, 0)),
    ("media_set_time", c_void_p, (28, 0)),
    ("media_get_state", c_void_p, (28, 0)),
    ("version", c_uint32, (28, 0)),
    ("unversioned_id", c_char_p, (28, 0)),
    ("missing_files", c_void_p, (28, 0)),
    ("video_get_color_space", c_void_p, (28, 0)),
    ("filter_add", c_void_p, (30, 0)),
    ("get_dark_icon", c_void_p, (32, 2)),
    ("get_light_icon", c_void_p, (32, 2)),
)

#: Oldest OBS whose layout this module knows; older versions are refused.
MIN_OBS_VERSION = (28, 0)

_source_info_cache: dict[int, type[ctypes.Structure]] = {}


def source_info_struct(major: int, minor: int = 0) -> type[ctypes.Structure]:
    """The ``struct obs_source_info`` layout of OBS ``major.minor``.

    Args:
        major, minor: the running OBS version (``obs_get_version()``).

    Returns:
        A ``ctypes.Structure`` subclass holding exactly the fields that version declares.

    Raises:
        ValueError: for OBS older than 28.0 (layout not verified).
    """
    if (major, minor) < MIN_OBS_VERSION:
        raise ValueError(f"OBS {major}.{minor} is older than the oldest supported (28.0)")
    # Collapse to the version that last changed the layout so each layout is one class.
    fields = [(n, t) for n, t, since in SOURCE_INFO_FIELDS if since <= (major, minor)]
    cls = _source_info_cache.get(len(fields))
    if cls is None:
        last = SOURCE_INFO_FIELDS[len(fields) - 1][2]
        cls = type(f"obs_source_info_{last[0]}_{last[1]}", (ctypes.Structure,), {"_fields_": fields})
        _source_info_cache[len(fields)] = cls
    return cls


MAX_AV_PLANES = 8


def source_frame_struct(long_type: type = c_long) -> type[ctypes.Structure]:
    """``struct obs_source_frame`` (OBS 28.0 – 32.2) with ``refs`` of C type ``long_type``.

    ``long`` is 8 bytes on Linux/macOS (LP64) and 4 on Windows (LLP64); the default follows
    the running platform. Tests build the other variant explicitly.
    """

    class obs_source_frame(ctypes.Structure):
        _fields_ = [
            # uint8_t *data[8], read as plain addresses (ints): what FrameView wants.
            ("data", c_void_p * MAX_AV_PLANES),
            ("linesize", c_uint32 * MAX_AV_PLANES),
            ("width", c_uint32),
            ("height", c_uint32),
            ("timestamp", c_uint64),
            ("format", c_int),
            ("color_matrix", c_float * 16),
            ("full_range", c_bool),
            ("max_luminance", c_uint16),
            ("color_range_min", c_float * 3),
            ("color_range_max", c_float * 3),
            ("flip", c_bool),
            ("flags", c_uint8),
            ("trc", c_uint8),
            ("refs", long_type),
            ("prev_frame", c_bool),
        ]

    return obs_source_frame


#: The frame layout of the running platform.
ObsSourceFrame = source_frame_struct(c_int32 if sys.platform == "win32" else c_int64)


class Vec4(ctypes.Structure):
    """``struct vec4`` (graphics/vec4.h): four floats, 16-byte aligned for SSE in libobs.

    ctypes cannot align a structure to 16 bytes, so :func:`aligned_vec4` places one inside
    a larger buffer at an aligned address.
    """

    _fields_ = [("x", c_float), ("y", c_float), ("z", c_float), ("w", c_float)]


def aligned_vec4(x: float = 0.0, y: float = 0.0, z: float = 0.0, w: float = 0.0) -> tuple[object, int]:
    """A zero-copy ``struct vec4`` at a 16-byte aligned address.

    Returns:
        ``(keepalive, address)``: keep ``keepalive`` referenced while ``address`` is used
        (``gs_clear`` reads the colour with aligned SSE loads).
    """
    buf = ctypes.create_string_buffer(32)
    addr = (ctypes.addressof(buf) + 15) & ~15
    v = Vec4.from_address(addr)
    v.x, v.y, v.z, v.w = x, y, z, w
    return buf, addr
