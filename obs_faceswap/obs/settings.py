"""The filter's settings: one table for defaults, the properties UI and the engine keys.

Standard library only. Choices and defaults come from :mod:`obs_faceswap.config` (itself
standard-library only) so the OBS UI can never offer a value the engine rejects.

OBS stores each setting under its ``key`` in the filter's ``obs_data``; :func:`engine_settings`
turns them into the flat ``"section.field"`` dictionary the engine process understands.
Settings with ``engine=None`` are the filter's own (interpreter, timing mode, delay).

Engine interpreter
------------------
The engine runs in a separate Python that has numpy, OpenCV and onnxruntime. The filter uses,
first found:

1. the "Engine Python" property, when set;
2. the ``OBS_FACESWAP_PYTHON`` environment variable;
3. the path written by an installer into ``obs_faceswap/obs/engine_python.txt`` (one line);
4. the virtual environment next to the package: ``<checkout>/.venv/bin/python``
   (``.venv\\Scripts\\python.exe`` on Windows), then ``<checkout>/venv/...``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obs_faceswap import config as cfg

SYNC = "sync"
LATENCY = "latency"
TIMING_MODES = ((SYNC, "Synchronised (hold frames, no ghosting)"), (LATENCY, "Lowest latency (never hold)"))
UNAVAILABLE_CHOICES = (
    ("cover", "Cover the face (mosaic)"),
    ("freeze", "Freeze the last swapped frame"),
    ("original", "Show the original (not private)"),
)
#: ``sync_frames`` value meaning "grow the hold until results arrive in time".
AUTO_FRAMES = 0
MAX_SYNC_FRAMES = 30

_PIPE = cfg.PipelineConfig()
_PHOTO = _PIPE.swapper.photo
_NEURAL = _PIPE.swapper.neural
_PROVIDER_LABELS = {
    "auto": "Automatic (best available)",
    "tensorrt": "TensorRT (NVIDIA)",
    "cuda": "CUDA (NVIDIA)",
    "directml": "DirectML (Windows)",
    "coreml": "Core ML (macOS)",
    "cpu": "CPU",
}


@dataclass(frozen=True)
class Setting:
    """One filter setting.

    Attributes:
        key: name in the filter's ``obs_data`` (and the property's name).
        label: what the properties dialog shows.
        kind: ``path``, ``dir``, ``bool``, ``int``, ``float``, ``text`` or ``list``.
        default: value OBS uses until the user changes it.
        engine: key the engine understands, or None for the filter's own settings.
        choices: for ``list``: ``(value, label)`` pairs.
        lo, hi, step: for ``int`` / ``float`` sliders.
        tooltip: longer description.
        file_filter: for ``path``: Qt file dialog filter.
    """

    key: str
    label: str
    kind: str
    default: Any
    engine: str | None = None
    choices: tuple[tuple[str, str], ...] = ()
    lo: float = 0.0
    hi: float = 1.0
    step: float = 1.0
    tooltip: str = ""
    file_filter: str = ""


def _labels(values: tuple[str, ...], labels: dict[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    labels = labels or {}
    return tuple((v, labels.get(v, v)) for v in values)


IMAGES = "Images (*.png *.jpg *.jpeg *.bmp *.webp);;All files (*.*)"

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "swap_enabled",
        "Swap faces",
        "bool",
        True,
        "enabled",
        tooltip="Also toggled by the 'Toggle Face Swap' hotkey. While off, frames pass "
        "through untouched (the synchronised delay stays, so audio stays in sync).",
    ),
    Setting(
        "source_photo",
        "Source photo",
        "path",
        "",
        "source",
        file_filter=IMAGES,
        tooltip="Photo of the face to put on the video (one clear, frontal face).",
    ),
    Setting(
        "model_file",
        "Face-swap model (optional)",
        "path",
        "",
        "swapper.model",
        file_filter="Models (*.onnx *.dfm);;All files (*.*)",
        tooltip="A DeepFaceLive .dfm, or a one-photo model (inswapper_128, HyperSwap, SimSwap, GHOST, "
        "BlendSwap, UniFace .onnx) used instead of the photo swapper. One-photo models still "
        "need the source photo; .dfm models carry their own face.",
    ),
    Setting(
        "model_recognizer",
        "Recognizer model (optional)",
        "path",
        "",
        "swapper.neural.recognizer",
        file_filter="Models (*.onnx);;All files (*.*)",
        tooltip="ArcFace w600k_r50.onnx for one-photo models; empty: the one in the models folder.",
    ),
    Setting(
        "model_morph",
        "Morph (AMP .dfm models)",
        "float",
        _NEURAL.morph,
        "swapper.neural.morph",
        lo=0.0,
        hi=1.0,
        step=0.05,
        tooltip="How much of the model's celebrity, 0..1 (DeepFaceLive: 0.75).",
    ),
    Setting(
        "model_keep_mouth",
        "Keep live mouth",
        "bool",
        False,
        "swapper.neural.masks",
        tooltip="Show the real mouth interior (teeth, tongue) through the swapped face.",
    ),
    Setting(
        "model_color",
        "Colour transfer",
        "list",
        _NEURAL.color,
        "swapper.neural.color",
        choices=_labels(
            cfg.COLOR_MODES, {"rct": "Reinhard (mean/std)", "linear": "Linear (covariance)", "none": "None"}
        ),
    ),
    Setting(
        "swapper_plugin",
        "Swapper plugin (advanced)",
        "text",
        "",
        "swapper.plugin",
        tooltip="package.module:factory of a swapper written against obs_faceswap.swap.Swapper, "
        "imported in the engine; used instead of the photo and the model file.",
    ),
    Setting(
        "detector",
        "Face detector",
        "list",
        _PIPE.detector.kind,
        "detector.kind",
        choices=_labels(
            cfg.DETECTORS,
            {
                "yunet": "YuNet (default)",
                "scrfd": "SCRFD (InsightFace det_*.onnx)",
                "blazeface": "BlazeFace (close-up, fastest)",
            },
        ),
    ),
    Setting(
        "landmarks",
        "Landmark model",
        "list",
        _PIPE.landmarks.kind,
        "landmarks.kind",
        choices=_labels(
            cfg.LANDMARK_MODELS, {"mesh468": "Face mesh, 468 points", "mesh478": "Face mesh, 478 points (eyes, lips)"}
        ),
    ),
    Setting(
        "provider",
        "Execution provider",
        "list",
        "auto",
        "runtime.providers",
        choices=_labels(("auto", *cfg.AUTO_ORDER), _PROVIDER_LABELS),
        tooltip="Where the models run. A GPU provider that fails to load falls back to CPU.",
    ),
    Setting(
        "selection_mode",
        "Faces to swap",
        "list",
        _PIPE.selection.mode,
        "selection.mode",
        choices=_labels(
            cfg.SELECTION_MODES,
            {
                "largest": "Largest face",
                "all": "All faces",
                "index": "N-th face from the left",
                "reference": "The person in a reference photo",
            },
        ),
    ),
    Setting(
        "selection_index",
        "Face number (0 = leftmost)",
        "int",
        _PIPE.selection.index,
        "selection.index",
        lo=0,
        hi=63,
        step=1,
    ),
    Setting("selection_reference", "Reference photo", "path", "", "selection.reference", file_filter=IMAGES),
    Setting(
        "mask_feather",
        "Mask feather",
        "float",
        _PHOTO.mask.feather,
        "swapper.photo.mask.feather",
        lo=0.0,
        hi=0.5,
        step=0.01,
        tooltip="Soft edge width, as a fraction of the face width.",
    ),
    Setting("mask_keep_mouth", "Keep live mouth", "bool", _PHOTO.mask.keep_mouth, "swapper.photo.mask.keep_mouth"),
    Setting("mask_keep_eyes", "Keep live eyes", "bool", _PHOTO.mask.keep_eyes, "swapper.photo.mask.keep_eyes"),
    Setting(
        "mask_keep_occluders",
        "Keep hands and objects in front of the face",
        "bool",
        _PHOTO.mask.keep_occluders,
        "swapper.photo.mask.keep_occluders",
    ),
    Setting(
        "mask_keep_glasses",
        "Keep the glasses you wear (shows their frames)",
        "bool",
        _PHOTO.mask.keep_glasses,
        "swapper.photo.mask.keep_glasses",
        tooltip="With 'Keep hands and objects', glasses worn from the start stay in front of the swap. "
        "Off: their frames are painted over (kept frames make the swap look more like you).",
    ),
    Setting(
        "mask_fade_beyond_pose",
        "Fade out beyond the photo's view (shows the live face)",
        "bool",
        _PHOTO.mask.fade_beyond_pose,
        "swapper.photo.mask.fade_beyond_pose",
    ),
    Setting(
        "shape_strength",
        "Face shape from photo",
        "float",
        _PHOTO.shape.strength,
        "swapper.photo.shape.strength",
        lo=0.0,
        hi=1.0,
        step=0.05,
        tooltip="How much of the photo's face proportions (eyes, nose, brows) the swapped face "
        "takes; live expressions and blinks are kept either way.",
    ),
    Setting(
        "color_mode",
        "Colour transfer",
        "list",
        _PHOTO.color.mode,
        "swapper.photo.color.mode",
        choices=_labels(
            cfg.COLOR_MODES, {"rct": "Reinhard (mean/std)", "linear": "Linear (covariance)", "none": "None"}
        ),
    ),
    Setting(
        "blend_mode",
        "Blending",
        "list",
        _PIPE.blend.mode,
        "blend.mode",
        choices=_labels(
            cfg.BLEND_MODES, {"feather": "Feathered alpha", "seamless": "Seamless (Poisson)", "multiband": "Multi-band"}
        ),
    ),
    Setting("opacity", "Opacity", "float", _PIPE.blend.opacity, "blend.opacity", lo=0.0, hi=1.0, step=0.01),
    Setting("smoothing", "Smooth landmarks", "bool", _PIPE.tracking.smoothing, "tracking.smoothing"),
    Setting(
        "detect_interval",
        "Detect faces every N frames",
        "int",
        _PIPE.tracking.detect_interval,
        "tracking.detect_interval",
        lo=1,
        hi=60,
        step=1,
    ),
    # The issue asks for the disclosure badge to be shown by default in OBS.
    Setting(
        "badge_enabled",
        "Show 'face swap' badge",
        "bool",
        True,
        "badge.enabled",
        tooltip="A visible disclosure burned into the video.",
    ),
    Setting("badge_text", "Badge text", "text", _PIPE.badge.text, "badge.text"),
    Setting("badge_corner", "Badge corner", "list", _PIPE.badge.corner, "badge.corner", choices=_labels(cfg.CORNERS)),
    Setting("models_dir", "Models folder (optional)", "dir", "", "models_dir"),
    Setting(
        "timing_mode",
        "Timing",
        "list",
        SYNC,
        None,
        choices=TIMING_MODES,
        tooltip="Synchronised: frames are held back so each one carries its own swap "
        "(offset audio by the delay shown). Lowest latency: never hold; a result is "
        "used only if it is at most one frame old.",
    ),
    Setting(
        "sync_frames", "Frames to hold (0 = automatic)", "int", AUTO_FRAMES, None, lo=0, hi=MAX_SYNC_FRAMES, step=1
    ),
    Setting(
        "unavailable",
        "When the swap is unavailable",
        "list",
        "cover",
        None,
        choices=UNAVAILABLE_CHOICES,
        tooltip="What a frame shows while the swap is on but no swapped result is there in time "
        "(engine starting, restarting or hung, result late, settings changing): a coarse "
        "mosaic over the last known face (the whole picture until a face was seen), the last "
        "swapped frame, or the original picture.",
    ),
    Setting(
        "engine_python",
        "Engine Python (optional)",
        "path",
        "",
        None,
        file_filter="Python (python python3 python.exe python3*);;All files (*)",
        tooltip="Interpreter of the environment where obs-faceswap is installed. Empty: "
        "OBS_FACESWAP_PYTHON, then the .venv next to the package.",
    ),
)

BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}

# Paths whose empty value means "not set" for the engine.
_OPTIONAL_PATHS = {
    "source",
    "swapper.model",
    "swapper.plugin",
    "selection.reference",
    "models_dir",
    "swapper.neural.recognizer",
}


def read(api: Any, data: int) -> dict[str, Any]:
    """Every setting's current value from an ``obs_data_t*`` (defaults included)."""
    out: dict[str, Any] = {}
    for s in SETTINGS:
        k = s.key.encode()
        if s.kind == "bool":
            out[s.key] = bool(api.obs_data_get_bool(data, k))
        elif s.kind == "int":
            out[s.key] = int(api.obs_data_get_int(data, k))
        elif s.kind == "float":
            out[s.key] = float(api.obs_data_get_double(data, k))
        else:
            raw = api.obs_data_get_string(data, k)
            out[s.key] = raw.decode("utf-8", "replace") if raw else ""
    return out


def set_defaults(api: Any, data: int) -> None:
    """Register every setting's default on an ``obs_data_t*``."""
    for s in SETTINGS:
        k = s.key.encode()
        if s.kind == "bool":
            api.obs_data_set_default_bool(data, k, bool(s.default))
        elif s.kind == "int":
            api.obs_data_set_default_int(data, k, int(s.default))
        elif s.kind == "float":
            api.obs_data_set_default_double(data, k, float(s.default))
        else:
            api.obs_data_set_default_string(data, k, str(s.default).encode())


def defaults() -> dict[str, Any]:
    """Every setting's default value."""
    return {s.key: s.default for s in SETTINGS}


def engine_settings(values: dict[str, Any]) -> dict[str, Any]:
    """The engine's flat settings from the filter's values.

    Empty optional paths become None; the provider choice becomes a preference list
    ending in CPU so a GPU that fails to load falls back instead of stopping the engine.
    """
    out: dict[str, Any] = {}
    for s in SETTINGS:
        if s.engine is None:
            continue
        v = values.get(s.key, s.default)
        if s.engine in _OPTIONAL_PATHS:
            v = str(v).strip() or None
        elif s.engine == "runtime.providers":
            v = v if v in ("auto", "cpu") else f"{v},cpu"
        elif s.engine == "swapper.neural.masks":
            v = "box,mouth" if v else "box"
        out[s.engine] = v
    # The swapper is chosen by what is filled in: a plugin, else a model file, else the photo.
    out["swapper.kind"] = "plugin" if out.get("swapper.plugin") else "model" if out.get("swapper.model") else "photo"
    return out


def sync_frames(values: dict[str, Any]) -> int:
    """Held frames requested (0 = automatic), clamped to the allowed range."""
    return max(0, min(MAX_SYNC_FRAMES, int(values.get("sync_frames", AUTO_FRAMES))))


def timing_mode(values: dict[str, Any]) -> str:
    """``sync`` or ``latency`` (anything else falls back to ``sync``)."""
    mode = values.get("timing_mode", SYNC)
    return mode if mode in (SYNC, LATENCY) else SYNC


# --- engine interpreter ----------------------------------------------------------------


def package_parent() -> Path:
    """The directory that contains the ``obs_faceswap`` package (a checkout's root)."""
    return Path(__file__).resolve().parent.parent.parent


def _venv_python(root: Path) -> list[Path]:
    if sys.platform == "win32":
        return [root / d / "Scripts" / "python.exe" for d in (".venv", "venv")]
    return [root / d / "bin" / n for d in (".venv", "venv") for n in ("python", "python3")]


def resolve_interpreter(
    setting: str, environ: dict[str, str] | None = None, root: Path | None = None
) -> tuple[str | None, str]:
    """The engine interpreter and where it came from.

    Args:
        setting: the "Engine Python" property ("" = not set).
        environ: environment to read ``OBS_FACESWAP_PYTHON`` from (default ``os.environ``).
        root: directory containing the package (default :func:`package_parent`).

    Returns:
        ``(path, origin)``; ``path`` is None when nothing usable was found, and ``origin``
        then says what was tried, for the status line.
    """
    env = os.environ if environ is None else environ
    root = package_parent() if root is None else root
    setting = setting.strip()
    if setting:
        p = Path(setting).expanduser()
        if p.is_file():
            return str(p), "the Engine Python setting"
        return None, f"Engine Python {setting!r} does not exist"
    from_env = env.get("OBS_FACESWAP_PYTHON", "").strip()
    if from_env:
        if Path(from_env).is_file():
            return from_env, "OBS_FACESWAP_PYTHON"
        return None, f"OBS_FACESWAP_PYTHON={from_env!r} does not exist"
    recorded = Path(__file__).resolve().parent / "engine_python.txt"
    if recorded.is_file():
        line = recorded.read_text(encoding="utf-8").strip()
        if line and Path(line).is_file():
            return line, str(recorded)
    for cand in _venv_python(root):
        if cand.is_file():
            return str(cand), f"the virtual environment in {root}"
    return None, (
        "no engine Python found: set 'Engine Python' to the python of the "
        f"environment where obs-faceswap is installed (looked in {root}/.venv)"
    )
