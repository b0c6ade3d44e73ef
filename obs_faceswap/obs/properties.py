"""The properties dialog of both filters, built through libobs' properties API.

Standard library only. The first rows are the status line (engine state, provider, FPS,
delay) and the last error; OBS does not refresh properties by itself, so a "Refresh status"
button re-reads the status and returns true (OBS then redraws the dialog), and the filter
calls ``obs_source_update_properties`` when the engine state changes.
"""

from __future__ import annotations

from typing import Any

from obs_faceswap.obs import settings as st
from obs_faceswap.obs import structs

GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "grp_face",
        "Face",
        (
            "swap_enabled",
            "source_photo",
            "model_file",
            "model_recognizer",
            "model_morph",
            "model_keep_mouth",
            "model_color",
        ),
    ),
    (
        "grp_detect",
        "Detection and tracking",
        (
            "detector",
            "landmarks",
            "selection_mode",
            "selection_index",
            "selection_reference",
            "detect_interval",
            "smoothing",
        ),
    ),
    (
        "grp_mask",
        "Mask and blending",
        (
            "shape_strength",
            "mask_feather",
            "mask_keep_mouth",
            "mask_keep_eyes",
            "mask_keep_occluders",
            "mask_keep_glasses",
            "mask_fade_beyond_pose",
            "color_mode",
            "blend_mode",
            "opacity",
        ),
    ),
    ("grp_badge", "Disclosure", ("badge_enabled", "badge_text", "badge_corner")),
    (
        "grp_engine",
        "Engine and timing",
        ("timing_mode", "sync_frames", "unavailable", "provider", "engine_python", "models_dir", "swapper_plugin"),
    ),
)

#: Properties whose visibility depends on another setting: name → (setting, shown when).
DEPENDENT = {
    "selection_index": ("selection_mode", ("index",)),
    "selection_reference": ("selection_mode", ("reference",)),
    "sync_frames": ("timing_mode", (st.SYNC,)),
}
#: Shown only while no face-swap model is chosen (the photo swapper's own controls) ...
PHOTO_ONLY = (
    "shape_strength",
    "mask_feather",
    "mask_keep_mouth",
    "mask_keep_eyes",
    "mask_keep_occluders",
    "mask_keep_glasses",
    "mask_fade_beyond_pose",
    "color_mode",
)
#: ... and only while one is.
MODEL_ONLY = ("model_recognizer", "model_morph", "model_keep_mouth", "model_color")
#: Settings whose change shows or hides other properties (get the modified callback).
CONTROLLERS = tuple(sorted({c for c, _ in DEPENDENT.values()} | {"model_file"}))


def _add(api: Any, props: int, s: st.Setting) -> int:
    key, label = s.key.encode(), s.label.encode()
    if s.kind == "bool":
        p = api.obs_properties_add_bool(props, key, label)
    elif s.kind == "int":
        p = api.obs_properties_add_int_slider(props, key, label, int(s.lo), int(s.hi), int(s.step))
    elif s.kind == "float":
        p = api.obs_properties_add_float_slider(props, key, label, float(s.lo), float(s.hi), float(s.step))
    elif s.kind == "path":
        p = api.obs_properties_add_path(props, key, label, structs.OBS_PATH_FILE, s.file_filter.encode() or None, None)
    elif s.kind == "dir":
        p = api.obs_properties_add_path(props, key, label, structs.OBS_PATH_DIRECTORY, None, None)
    elif s.kind == "list":
        p = api.obs_properties_add_list(props, key, label, structs.OBS_COMBO_TYPE_LIST, structs.OBS_COMBO_FORMAT_STRING)
        for value, text in s.choices:
            api.obs_property_list_add_string(p, text.encode(), value.encode())
    else:
        p = api.obs_properties_add_text(props, key, label, structs.OBS_TEXT_DEFAULT)
    if s.tooltip and p:
        api.obs_property_set_long_description(p, s.tooltip.encode())
    return int(p or 0)


def build(api: Any, status: tuple[str, str] | None, refresh_cb: int, modified_cb: int) -> int:
    """A new ``obs_properties_t*`` (OBS takes ownership).

    Args:
        api: the libobs binding.
        status: ``(status line, last error)`` of the instance, or None without an instance.
        refresh_cb: address of the "Refresh status" ``obs_property_clicked_t``.
        modified_cb: address of the ``obs_property_modified2_t`` that shows/hides
            dependent properties.
    """
    props = api.obs_properties_create()
    line, error = status or ("Engine: not started (add the filter to a source)", "")
    p = api.obs_properties_add_text(props, b"status", line.encode(), structs.OBS_TEXT_INFO)
    e = api.obs_properties_add_text(props, b"last_error", f"Last error: {error}".encode(), structs.OBS_TEXT_INFO)
    if e:
        api.obs_property_text_set_info_type(e, structs.OBS_TEXT_INFO_ERROR)
        api.obs_property_set_visible(e, bool(error))
        if error:
            api.obs_property_set_long_description(e, error.encode())
    if p:
        api.obs_property_set_long_description(p, line.encode())
    api.obs_properties_add_button2(props, b"refresh_status", b"Refresh status", refresh_cb, None)
    for gkey, glabel, keys in GROUPS:
        group = api.obs_properties_create()
        for k in keys:
            prop = _add(api, group, st.BY_KEY[k])
            if k in CONTROLLERS and prop:
                api.obs_property_set_modified_callback2(prop, modified_cb, None)
        api.obs_properties_add_group(props, gkey.encode(), glabel.encode(), structs.OBS_GROUP_NORMAL, group)
    return int(props)


def refresh_status(api: Any, props: int, status: tuple[str, str]) -> None:
    """Rewrite the status rows of an open dialog (in a clicked/modified callback)."""
    line, error = status
    p = api.obs_properties_get(props, b"status")
    if p:
        api.obs_property_set_description(p, line.encode())
        api.obs_property_set_long_description(p, line.encode())
    e = api.obs_properties_get(props, b"last_error")
    if e:
        api.obs_property_set_description(e, f"Last error: {error}".encode())
        api.obs_property_set_visible(e, bool(error))


def apply_visibility(api: Any, props: int, values: dict[str, Any]) -> None:
    """Show only the properties that matter for the current choices."""
    for name, (controller, shown_when) in DEPENDENT.items():
        p = api.obs_properties_get(props, name.encode())
        if p:
            api.obs_property_set_visible(p, values.get(controller) in shown_when)
    with_model = bool(str(values.get("model_file") or "").strip())
    for names, visible in ((PHOTO_ONLY, not with_model), (MODEL_ONLY, with_model)):
        for name in names:
            p = api.obs_properties_get(props, name.encode())
            if p:
                api.obs_property_set_visible(p, visible)


def all_keys() -> list[str]:
    """Every setting shown in the dialog, in order (a test checks none is forgotten)."""
    return [k for _, _, keys in GROUPS for k in keys]
