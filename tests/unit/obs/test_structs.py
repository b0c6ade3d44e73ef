"""Every field offset of the ctypes libobs layouts, against the OBS headers.

The expected tables are transcribed from ``libobs/obs-source.h`` (obs_source_info) and
``libobs/obs-source.h``/``media-io`` (obs_source_frame) at OBS 28.0, 29.0, 30.0, 32.1 and
32.2 for 64-bit platforms; the 28/29 values were also checked against running OBS 29
(docs/obs-integration.md). Windows is LLP64 (``long`` = 4 bytes), which only moves the
frame's ``refs`` and what follows.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from obs_faceswap.obs import structs
from obs_faceswap.obs.libobs import PROTOTYPES, LibObs, LibObsError

# struct obs_source_info, x86-64 / arm64 (LP64 and LLP64 agree: only pointers, ints, uint32)
SOURCE_INFO_28 = {
    "id": 0,
    "type": 8,
    "output_flags": 12,
    "get_name": 16,
    "create": 24,
    "destroy": 32,
    "get_width": 40,
    "get_height": 48,
    "get_defaults": 56,
    "get_properties": 64,
    "update": 72,
    "activate": 80,
    "deactivate": 88,
    "show": 96,
    "hide": 104,
    "video_tick": 112,
    "video_render": 120,
    "filter_video": 128,
    "filter_audio": 136,
    "enum_active_sources": 144,
    "save": 152,
    "load": 160,
    "mouse_click": 168,
    "mouse_move": 176,
    "mouse_wheel": 184,
    "focus": 192,
    "key_click": 200,
    "filter_remove": 208,
    "type_data": 216,
    "free_type_data": 224,
    "audio_render": 232,
    "enum_all_sources": 240,
    "transition_start": 248,
    "transition_stop": 256,
    "get_defaults2": 264,
    "get_properties2": 272,
    "audio_mix": 280,
    "icon_type": 288,
    "media_play_pause": 296,
    "media_restart": 304,
    "media_stop": 312,
    "media_next": 320,
    "media_previous": 328,
    "media_get_duration": 336,
    "media_get_time": 344,
    "media_set_time": 352,
    "media_get_state": 360,
    "version": 368,
    "unversioned_id": 376,
    "missing_files": 384,
    "video_get_color_space": 392,
}
SOURCE_INFO_30 = {**SOURCE_INFO_28, "filter_add": 400}
SOURCE_INFO_32_2 = {**SOURCE_INFO_30, "get_dark_icon": 408, "get_light_icon": 416}

FRAME_LP64 = {
    "data": 0,
    "linesize": 64,
    "width": 96,
    "height": 100,
    "timestamp": 104,
    "format": 112,
    "color_matrix": 116,
    "full_range": 180,
    "max_luminance": 182,
    "color_range_min": 184,
    "color_range_max": 196,
    "flip": 208,
    "flags": 209,
    "trc": 210,
    "refs": 216,
    "prev_frame": 224,
}
FRAME_LLP64 = {**FRAME_LP64, "refs": 212, "prev_frame": 216}


def offsets(cls: type[ctypes.Structure]) -> dict[str, int]:
    return {name: getattr(cls, name).offset for name, *_ in cls._fields_}


@pytest.mark.parametrize(
    ("version", "table", "size"),
    [
        ((28, 0), SOURCE_INFO_28, 400),
        ((29, 1), SOURCE_INFO_28, 400),
        ((30, 0), SOURCE_INFO_30, 408),
        ((31, 1), SOURCE_INFO_30, 408),
        ((32, 1), SOURCE_INFO_30, 408),
        ((32, 2), SOURCE_INFO_32_2, 424),
        ((33, 0), SOURCE_INFO_32_2, 424),
    ],
)
def test_source_info_every_field_offset(version: tuple[int, int], table: dict[str, int], size: int) -> None:
    cls = structs.source_info_struct(*version)
    assert offsets(cls) == table
    assert ctypes.sizeof(cls) == size


def test_source_info_layouts_only_append() -> None:
    old = list(offsets(structs.source_info_struct(28, 0)).items())
    new = list(offsets(structs.source_info_struct(32, 2)).items())
    assert new[: len(old)] == old


def test_source_info_rejects_unverified_old_obs() -> None:
    with pytest.raises(ValueError, match="27.2"):
        structs.source_info_struct(27, 2)


@pytest.mark.parametrize(
    ("long_type", "table", "size"),
    [
        (ctypes.c_int64, FRAME_LP64, 232),
        (ctypes.c_int32, FRAME_LLP64, 224),
    ],
)
def test_source_frame_every_field_offset(long_type: type, table: dict[str, int], size: int) -> None:
    cls = structs.source_frame_struct(long_type)
    assert offsets(cls) == table
    assert ctypes.sizeof(cls) == size


def test_platform_frame_layout_matches_the_platform_long() -> None:
    expected = FRAME_LLP64 if sys.platform == "win32" else FRAME_LP64
    assert offsets(structs.ObsSourceFrame) == expected


def test_frame_fields_read_back_what_was_written() -> None:
    f = structs.ObsSourceFrame()
    raw = (ctypes.c_uint8 * ctypes.sizeof(f)).from_buffer(f)
    f.width, f.height, f.timestamp, f.format, f.full_range = 1280, 720, 123456789, 2, True
    f.color_range_min[0], f.color_range_max[2], f.refs = 0.0625, 0.94, 3
    assert int.from_bytes(bytes(raw[96:100]), "little") == 1280
    assert int.from_bytes(bytes(raw[104:112]), "little") == 123456789
    assert raw[112] == 2 and raw[180] == 1
    refs = (FRAME_LLP64 if sys.platform == "win32" else FRAME_LP64)["refs"]
    assert int.from_bytes(bytes(raw[refs : refs + 4]), "little") == 3


@pytest.mark.parametrize("v", [(28, 0, 0), (29, 0, 2), (30, 2, 3), (32, 2, 0)])
def test_version_packing_round_trips(v: tuple[int, int, int]) -> None:
    assert structs.unpack_version(structs.pack_version(*v)) == v
    assert structs.pack_version(29, 0, 2) == 486539266  # global.ini LastVersion of OBS 29.0.2


def test_aligned_vec4_is_16_byte_aligned() -> None:
    keep, addr = structs.aligned_vec4(1.0, 2.0, 3.0, 4.0)
    assert addr % 16 == 0
    v = structs.Vec4.from_address(addr)
    assert (v.x, v.y, v.z, v.w) == (1.0, 2.0, 3.0, 4.0)
    assert ctypes.sizeof(structs.Vec4) == 16
    del keep


def test_video_format_values_match_the_header() -> None:
    # enum video_format (media-io/video-io.h), OBS 28-29 values; 30+ only appends.
    assert [structs.VIDEO_FORMAT_NAMES[i] for i in range(22)] == [
        "NONE",
        "I420",
        "NV12",
        "YVYU",
        "YUY2",
        "UYVY",
        "RGBA",
        "BGRA",
        "BGRX",
        "Y800",
        "I444",
        "BGR3",
        "I422",
        "I40A",
        "I42A",
        "YUVA",
        "AYUV",
        "I010",
        "P010",
        "I210",
        "I412",
        "YA2L",
    ]


def test_every_issue_format_has_a_plane_layout() -> None:
    names = {structs.VIDEO_FORMAT_NAMES[f] for f in structs.PLANE_LAYOUT}
    assert {"I420", "NV12", "YUY2", "UYVY", "I422", "I444", "BGRA", "BGRX", "RGBA"} <= names


# --- the signature table against the real libobs ---------------------------------------


def _real_libobs() -> ctypes.CDLL:
    from obs_faceswap.obs.libobs import load_library

    try:
        return load_library()
    except LibObsError as e:
        pytest.fail(f"{e}. Install OBS Studio (`apt-get install -y obs-studio`) to run this test.", pytrace=False)


def test_every_prototype_is_exported_by_the_installed_libobs() -> None:
    lib = _real_libobs()
    missing = [name for name, *_ in PROTOTYPES if not hasattr(lib, name)]
    assert missing == []


def test_binding_reads_the_running_version() -> None:
    api = LibObs(_real_libobs())
    assert api.missing == []
    assert api.version[:2] >= (28, 0)
    obs = shutil.which("obs")
    if obs:
        out = subprocess.run([obs, "--version"], capture_output=True, text=True, timeout=30).stdout
        assert ".".join(map(str, api.version)) in out
    assert ctypes.sizeof(api.source_info_struct()) in (400, 408, 424)


class _FakeLib:
    """A library exporting only obs_get_version."""

    def __init__(self, version: int) -> None:
        fn = ctypes.CFUNCTYPE(ctypes.c_uint32)(lambda: version)
        self._keep = fn
        self.obs_get_version = fn


def test_missing_function_raises_only_when_called() -> None:
    api = LibObs(_FakeLib(structs.pack_version(29, 0, 2)))  # type: ignore[arg-type]
    assert "obs_source_release_frame" in api.missing
    with pytest.raises(LibObsError, match="obs_source_release_frame"):
        api.obs_source_release_frame(0, 0)


def test_too_old_obs_is_refused() -> None:
    with pytest.raises(LibObsError, match="too old"):
        LibObs(_FakeLib(structs.pack_version(27, 2, 4)))  # type: ignore[arg-type]


def test_struct_module_is_standard_library_only() -> None:
    src = Path(structs.__file__).read_text()
    assert "numpy" not in src and "import cv2" not in src
