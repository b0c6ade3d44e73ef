"""Frozen configuration dataclasses, built at the edges (CLI flags, OBS settings) and passed in.

Every dataclass validates itself in ``__post_init__`` and raises :class:`ConfigError` naming
the field, the bad value and what is allowed. :func:`apply_updates` builds a new
configuration from flat ``"section.field": value`` updates (what the OBS filter and the
engine's control channel send), so there is one place that parses settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from obs_faceswap.errors import ConfigError
from obs_faceswap.runtime import RuntimeConfig

DETECTORS = ("yunet", "scrfd", "blazeface")
LANDMARK_MODELS = ("mesh468", "mesh478")
SELECTION_MODES = ("largest", "all", "index", "reference")
COLOR_MODES = ("rct", "linear", "none")
BLEND_MODES = ("feather", "seamless", "multiband")
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _range(name: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi):
        raise ConfigError(f"{name} must be in [{lo}, {hi}]; got {value!r}")


@dataclass(frozen=True)
class DetectorConfig:
    """Face detector.

    Attributes:
        kind: ``yunet`` (default, any input size), ``scrfd`` (InsightFace format, so users'
            ``det_10g.onnx`` work too) or ``blazeface`` (fast, selfie-distance faces only).
        model: explicit ``.onnx`` path overriding the manifest's default for ``kind``.
        score_threshold: minimum confidence.
        nms_iou: IoU above which overlapping boxes are suppressed.
        input_size: long side of the image the detector sees, pixels (YuNet rounds to 32).
    """

    kind: str = "yunet"
    model: str | None = None
    score_threshold: float = 0.6
    nms_iou: float = 0.3
    input_size: int = 320

    def __post_init__(self) -> None:
        _choice("detector.kind", self.kind, DETECTORS)
        _range("detector.score_threshold", self.score_threshold, 0.0, 1.0)
        _range("detector.nms_iou", self.nms_iou, 0.0, 1.0)
        _range("detector.input_size", self.input_size, 64, 2048)


@dataclass(frozen=True)
class LandmarkConfig:
    """Dense landmarks: ``mesh468`` (default) or ``mesh478`` (refined lips, eyes, irises)."""

    kind: str = "mesh468"
    model: str | None = None

    def __post_init__(self) -> None:
        _choice("landmarks.kind", self.kind, LANDMARK_MODELS)


@dataclass(frozen=True)
class TrackingConfig:
    """Detect-then-track and smoothing.

    Attributes:
        detect_interval: run the detector every this many frames (1 = every frame); in between
            the next landmark crop comes from the current landmarks.
        presence_threshold: a track whose face-presence score drops below this is dropped and
            the detector runs on the same frame.
        smoothing: One Euro filtering of the mesh points.
        min_cutoff: One Euro minimum cutoff frequency, Hz (lower = smoother when still).
        beta: One Euro speed coefficient (higher = less lag when moving); speed is measured
            in face sizes per second, so the value does not depend on the face's pixel size.
        d_cutoff: cutoff for the derivative, Hz.
        max_faces: most faces tracked at once; 0 = no limit (the default: ``--select all``
            means every face). Faces beyond a limit are counted in ``FrameReport.left_out``.
    """

    # Every 3rd frame: a face that comes into view is swapped within 2 frames (YuNet at 320
    # px costs ~2-4 ms on 2 cores, so ~1 ms a frame).
    detect_interval: int = 3
    presence_threshold: float = 0.5
    smoothing: bool = True
    # Tuned on a synthetic clip (tests/integration/test_tracking.py): jitter on still
    # frames cut ~6x, about half a frame of lag at 27 px/s on a 235 px face.
    min_cutoff: float = 0.5
    beta: float = 120.0
    d_cutoff: float = 1.0
    max_faces: int = 0

    def __post_init__(self) -> None:
        _range("tracking.detect_interval", self.detect_interval, 1, 1000)
        _range("tracking.presence_threshold", self.presence_threshold, 0.0, 1.0)
        _range("tracking.min_cutoff", self.min_cutoff, 1e-3, 1e3)
        _range("tracking.beta", self.beta, 0.0, 1e3)
        _range("tracking.d_cutoff", self.d_cutoff, 1e-3, 1e3)
        _range("tracking.max_faces", self.max_faces, 0, 64)


@dataclass(frozen=True)
class SelectionConfig:
    """Which faces get swapped.

    Attributes:
        mode: ``largest``, ``all``, ``index`` (n-th face from the left) or ``reference``
            (the face most similar to the photo at ``reference``).
        index: for ``index`` mode, 0 = leftmost.
        reference: photo of the person to swap, for ``reference`` mode.
    """

    mode: str = "largest"
    index: int = 0
    reference: str | None = None

    def __post_init__(self) -> None:
        _choice("selection.mode", self.mode, SELECTION_MODES)
        _range("selection.index", self.index, 0, 63)
        if self.mode == "reference" and not self.reference:
            raise ConfigError("selection.mode 'reference' needs selection.reference (a photo path)")


@dataclass(frozen=True)
class MaskConfig:
    """What part of the swapped face is used.

    Attributes:
        feather: width of the soft edge as a fraction of the face width.
        keep_mouth: show the live mouth interior (real teeth, tongue) instead of the source's.
        keep_eyes: show the live eyes (real blinks and gaze).
        trim_hair: cut the source's hair/fringe out of the forehead.
        erode: shrink the mask by this fraction of the face width before feathering.
    """

    feather: float = 0.04
    keep_mouth: bool = True
    keep_eyes: bool = False
    trim_hair: bool = True
    erode: float = 0.0

    def __post_init__(self) -> None:
        _range("mask.feather", self.feather, 0.0, 0.5)
        _range("mask.erode", self.erode, 0.0, 0.3)


@dataclass(frozen=True)
class ShapeConfig:
    """How much of the source's face shape the swapped face takes.

    The texture alone keeps the live face's proportions (eye spacing, nose, brows), which an
    identity model — and a viewer — reads as the live person. The inner face is moved towards
    the source's proportions (the face outline stays, so the paste edge does not move), as an
    offset from the live face's running average shape, so live expressions and blinks carry
    over unchanged.

    Attributes:
        strength: 0 = live proportions, 1 = the source's.
        adapt_frames: frames over which the live face's average shape follows it (an
            exponential average); shorter adapts faster to a new person, longer keeps the
            live expression changes more faithfully.
    """

    strength: float = 1.0
    adapt_frames: int = 60

    def __post_init__(self) -> None:
        _range("shape.strength", self.strength, 0.0, 1.0)
        _range("shape.adapt_frames", self.adapt_frames, 1, 10000)


@dataclass(frozen=True)
class ColorConfig:
    """Colour transfer of the source skin to the live skin, in L*a*b*.

    Attributes:
        mode: ``rct`` (Reinhard mean/std per channel), ``linear`` (mean and full covariance,
            Monge-Kantorovich) or ``none``.
        strength: 0 = source colours, 1 = full transfer.
        interval: re-estimate the live skin statistics every this many frames.
    """

    mode: str = "rct"
    strength: float = 1.0
    interval: int = 10

    def __post_init__(self) -> None:
        _choice("color.mode", self.mode, COLOR_MODES)
        _range("color.strength", self.strength, 0.0, 1.0)
        _range("color.interval", self.interval, 1, 1000)


@dataclass(frozen=True)
class BlendConfig:
    """Compositing onto the frame: ``feather`` (alpha), ``seamless`` (Poisson) or
    ``multiband`` (Laplacian pyramid); ``opacity`` scales the mask."""

    mode: str = "feather"
    opacity: float = 1.0

    def __post_init__(self) -> None:
        _choice("blend.mode", self.mode, BLEND_MODES)
        _range("blend.opacity", self.opacity, 0.0, 1.0)


@dataclass(frozen=True)
class BadgeConfig:
    """A visible disclosure burned into the output ("face swap" in a corner)."""

    enabled: bool = False
    text: str = "face swap"
    corner: str = "bottom-right"

    def __post_init__(self) -> None:
        _choice("badge.corner", self.corner, CORNERS)
        if len(self.text) > 64:
            raise ConfigError(f"badge.text is limited to 64 characters, got {len(self.text)}")


@dataclass(frozen=True)
class PipelineConfig:
    """Everything :class:`obs_faceswap.pipeline.Pipeline` needs, grouped by stage."""

    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    landmarks: LandmarkConfig = field(default_factory=LandmarkConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    shape: ShapeConfig = field(default_factory=ShapeConfig)
    color: ColorConfig = field(default_factory=ColorConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)
    badge: BadgeConfig = field(default_factory=BadgeConfig)
    texture_size: int = 512
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.texture_size not in (256, 512, 1024):
            raise ConfigError(f"texture_size must be 256, 512 or 1024; got {self.texture_size}")


def apply_updates(config: Any, updates: dict[str, Any], _prefix: str = "") -> Any:
    """A copy of ``config`` with ``{"section.field": value}`` (or nested dict) updates applied.

    Values are coerced to the field's current type (``"0.5"`` → 0.5, ``1`` → True, lists →
    tuples). Unknown keys raise :class:`ConfigError` listing the valid ones.
    """
    nested: dict[str, Any] = {}
    for key, value in updates.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        elif isinstance(value, dict):
            nested.setdefault(head, {}).update(value)
        else:
            nested[head] = value
    names = {f.name: f for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    for key, value in nested.items():
        if key not in names:
            raise ConfigError(
                f"unknown setting {_prefix + key!r}; valid here: {', '.join(_prefix + n for n in names)}"
            )
        current = getattr(config, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = apply_updates(current, value, f"{_prefix}{key}.")
        else:
            changes[key] = _coerce(_prefix + key, value, current)
    try:
        return dataclasses.replace(config, **changes)
    except TypeError as e:
        raise ConfigError(str(e)) from e


def _coerce(name: str, value: Any, current: Any) -> Any:
    if value is None or current is None:
        return value
    try:
        if isinstance(current, bool):
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, tuple):
            return tuple(value.split(",")) if isinstance(value, str) else tuple(value)
        if isinstance(current, str):
            return str(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name}: cannot use {value!r} as {type(current).__name__}") from e
    return value
