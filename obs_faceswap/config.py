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


#: Short names accepted in configuration → onnxruntime provider names, in preference order.
PROVIDERS: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
AUTO_ORDER = ("tensorrt", "cuda", "directml", "coreml", "cpu")
#: Process-wide variables the engine's and the CLI's entry points set before onnxruntime is
#: imported (:func:`obs_faceswap.runtime.set_process_environment`): thread pools that spin
#: while waiting fight over few cores (docs/performance-facts.md).
PROCESS_ENVIRONMENT: dict[str, str] = {"OMP_WAIT_POLICY": "PASSIVE"}
CPU_BACKENDS = ("auto", "onnxruntime", "opencv")


@dataclass(frozen=True)
class RuntimeConfig:
    """How sessions are created.

    Attributes:
        providers: short provider names in preference order, or ``("auto",)`` for every
            available one in :data:`AUTO_ORDER`. ``"tensorrt"`` is only used when named.
        threads: intra-op threads per session; 0 = number of CPU cores, at most 4.
        device_id: GPU index for CUDA / TensorRT / DirectML.
        cpu_backend: when a model ends up on the CPU: ``onnxruntime``, ``opencv`` (OpenCV's
            DNN module, for fixed-size models) or ``auto``: whichever runs the model faster
            here, measured at load with identical outputs required (OpenCV runs the 468-point
            mesh about twice as fast as onnxruntime on a 2-core x86 CPU).
        fp16: let TensorRT build half-precision engines (a model whose fp16 output has NaNs or
            is black falls back to fp32 by itself, see :class:`obs_faceswap.runtime.FixedShapeRunner`).
        trt_cache: directory for TensorRT engine and timing caches (default: the user cache),
            so an engine is built once per model and GPU, not at every start.
        cuda_graph: replay fixed-shape swap models as CUDA graphs on the CUDA provider (their
            inputs and outputs stay in the same device buffers).
    """

    providers: tuple[str, ...] = ("auto",)
    threads: int = 0
    device_id: int = 0
    cpu_backend: str = "auto"
    fp16: bool = True
    trt_cache: str | None = None
    cuda_graph: bool = False

    def __post_init__(self) -> None:
        for p in self.providers:
            if p != "auto" and p not in PROVIDERS:
                raise ConfigError(f"unknown execution provider {p!r}; choose from auto, {', '.join(PROVIDERS)}")
        if self.threads < 0:
            raise ConfigError(f"threads must be >= 0, got {self.threads}")
        if self.cpu_backend not in CPU_BACKENDS:
            raise ConfigError(f"runtime.cpu_backend must be one of {', '.join(CPU_BACKENDS)}; got {self.cpu_backend!r}")


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
        change_interval: between scheduled detections, every this many frames, run the
            detector if the picture outside the tracked faces has changed since its last run
            (something came into view); 0 = on schedule only.
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

    # Every 10th frame on a still picture; every 3rd while something outside the tracked
    # faces changes, so a face that comes into view is swapped within 2 frames (YuNet at 320
    # px costs ~2-4 ms on 2 cores: ~0.3 ms a frame instead of ~1 ms).
    detect_interval: int = 10
    change_interval: int = 3
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
        _range("tracking.change_interval", self.change_interval, 0, 1000)
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
        min_similarity: for ``reference`` mode, the identity similarity (cosine, 0..1) a face
            needs to count as that person; when no face reaches it, nothing is swapped.
    """

    mode: str = "largest"
    index: int = 0
    reference: str | None = None
    # Measured with the identity model (hse_faceres) on shared/media/faces (27 photos of 7
    # people): the same person scores 0.54-0.85 (5th percentile 0.61), different people
    # 0.39 median, 0.56 at the 95th percentile, 0.63 at most (look-alikes pass).
    min_similarity: float = 0.5

    def __post_init__(self) -> None:
        _choice("selection.mode", self.mode, SELECTION_MODES)
        _range("selection.index", self.index, 0, 63)
        _range("selection.min_similarity", self.min_similarity, 0.0, 1.0)
        if self.mode == "reference" and not self.reference:
            raise ConfigError("selection.mode 'reference' needs selection.reference (a photo path)")


@dataclass(frozen=True)
class MaskConfig:
    """What part of the swapped face is used.

    Attributes:
        feather: width of the soft edge as a fraction of the face width.
        keep_mouth: show the live mouth interior (real teeth, tongue) instead of the source's;
            the live lips around it take the source's lip colour.
        keep_eyes: show the live eyes (real blinks and gaze).
        trim_hair: cut the source's hair/fringe out of the forehead.
        erode: shrink the mask by this fraction of the face width before feathering.
        keep_occluders: what comes in front of the live face (a hand, a microphone, a strand
            of hair) stays in front of the swap. Off, the swap covers everything on the face:
            nothing of the live face can show through a misjudged "occluder".
        keep_glasses: with ``keep_occluders``, glasses the live face wears from the start stay in
            front of the swap too (their frame's pixels unchanged). Off by default: a face
            recognition model reads the wearer's own frames as the wearer (measured on faces/:
            5 of 6 swaps onto pichai_2.jpg read as Pichai with his glasses kept, 0 of 6 without),
            so the frames are painted over like the rest of the face.
        fade_beyond_pose: fade the swap out (smoothly, per face) when the live head turns further
            from the photo's view than its texture supports (about 60-85 degrees), instead of
            stretching the texture. Off by default: fading out shows the real face, which this
            product hides; off, the swap stays opaque and the unseen side is filled from the
            mirrored side and the surrounding skin.
    """

    feather: float = 0.04
    keep_mouth: bool = True
    keep_eyes: bool = False
    trim_hair: bool = True
    erode: float = 0.0
    keep_occluders: bool = True
    keep_glasses: bool = False
    fade_beyond_pose: bool = False

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


NEURAL_MASKS = ("box", "occlusion", "parsing", "mouth")


@dataclass(frozen=True)
class NeuralSwapperConfig:
    """Settings of the neural swappers (``.dfm`` files and the one-photo model family).

    Attributes:
        family: the one-photo family when the file name does not say it (``--model-family``).
        recognizer: ArcFace ``.onnx`` for the source embedding (``--recognizer``); default: the
            manifest's ``w600k_r50``.
        converter: embedding converter for SimSwap/GHOST; default: the manifest's for the family.
        morph: AMP ``.dfm`` models' morph value, 0..1 (DeepFaceLive's default 0.75).
        masks: any of ``box`` (always), ``occlusion``, ``parsing``, ``mouth``; combined by minimum.
        mouth_size: how far the kept live mouth reaches beyond the inner lips (fraction of the crop).
        occlusion_model: XSeg-format ``.onnx`` for the ``occlusion`` mask.
        parser_model: BiSeNet-format ``.onnx`` for the ``parsing`` mask.
        color: colour transfer of the swapped face to the live face: ``rct``, ``linear`` or ``none``.
        color_strength: 0..1.
        enhancer: GFPGAN/GPEN-format ``.onnx`` run on the swapped face (slow; see ``enhance_every``).
        enhance_every: run the enhancer every this many frames per face.
    """

    family: str | None = None
    recognizer: str | None = None
    converter: str | None = None
    morph: float = 0.75
    masks: tuple[str, ...] = ("box",)
    mouth_size: float = 0.1
    occlusion_model: str | None = None
    parser_model: str | None = None
    color: str = "rct"
    color_strength: float = 1.0
    enhancer: str | None = None
    enhance_every: int = 1

    def __post_init__(self) -> None:
        _range("neural.morph", self.morph, 0.0, 1.0)
        for m in self.masks:
            _choice("neural.masks", m, NEURAL_MASKS)
        _range("neural.mouth_size", self.mouth_size, 0.0, 0.5)
        _choice("neural.color", self.color, COLOR_MODES)
        _range("neural.color_strength", self.color_strength, 0.0, 1.0)
        _range("neural.enhance_every", self.enhance_every, 1, 1000)
        if "occlusion" in self.masks and not self.occlusion_model:
            raise ConfigError("the occlusion mask needs an XSeg model file (--occlusion-model FILE)")
        if "parsing" in self.masks and not self.parser_model:
            raise ConfigError("the parsing mask needs a BiSeNet model file (--parser-model FILE)")


SWAPPER_KINDS = ("photo", "model", "plugin")
TEXTURE_SIZES = (256, 512, 1024)


@dataclass(frozen=True)
class PhotoSwapperConfig:
    """The photo swapper's settings (:class:`obs_faceswap.swap.meshwarp.PhotoSwapper`).

    Attributes:
        texture_size: side of the square UV texture the photo is unwrapped into, pixels.
        mask: what part of the swapped face is used.
        shape: how much of the source's face shape is taken.
        color: colour transfer of the source skin to the live skin.
    """

    texture_size: int = 512
    mask: MaskConfig = field(default_factory=MaskConfig)
    shape: ShapeConfig = field(default_factory=ShapeConfig)
    color: ColorConfig = field(default_factory=ColorConfig)

    def __post_init__(self) -> None:
        if self.texture_size not in TEXTURE_SIZES:
            raise ConfigError(f"texture_size must be 256, 512 or 1024; got {self.texture_size}")


@dataclass(frozen=True)
class SwapperConfig:
    """Which swapper turns a tracked face into a swapped one (see :func:`obs_faceswap.swap.create_swapper`).

    Attributes:
        kind: ``photo`` (default: the face from a source photo, no neural generator),
            ``model`` (a face-swap model file at ``model``) or ``plugin`` (any swapper written
            against :class:`obs_faceswap.swap.Swapper`, built by the callable at ``plugin``).
        model: the model file, for ``model``.
        plugin: ``"package.module:factory"``, for ``plugin``; the factory is called as
            ``factory(config, context)`` and returns a :class:`~obs_faceswap.swap.Swapper`.
        photo: the photo swapper's settings.
        neural: the model swappers' settings (recognizer, morph, masks, colour, enhancer).
    """

    kind: str = "photo"
    model: str | None = None
    plugin: str | None = None
    photo: PhotoSwapperConfig = field(default_factory=PhotoSwapperConfig)
    neural: NeuralSwapperConfig = field(default_factory=NeuralSwapperConfig)

    def __post_init__(self) -> None:
        _choice("swapper.kind", self.kind, SWAPPER_KINDS)
        if self.kind == "model" and not self.model:
            raise ConfigError("swapper.kind 'model' needs swapper.model (a face-swap model file)")
        if self.kind == "plugin":
            module, _, name = (self.plugin or "").partition(":")
            if not module.strip() or not name.strip():
                raise ConfigError(
                    f"swapper.plugin must be 'package.module:factory' for swapper.kind 'plugin'; got {self.plugin!r}"
                )

    @property
    def needs_photo(self) -> bool:
        """``True`` when nothing can be swapped without a source photo (the photo swapper)."""
        return self.kind == "photo"


@dataclass(frozen=True)
class PipelineConfig:
    """Everything :class:`obs_faceswap.pipeline.Pipeline` needs, grouped by stage."""

    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    landmarks: LandmarkConfig = field(default_factory=LandmarkConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    swapper: SwapperConfig = field(default_factory=SwapperConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)
    badge: BadgeConfig = field(default_factory=BadgeConfig)
    enabled: bool = True


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
            raise ConfigError(f"unknown setting {_prefix + key!r}; valid here: {', '.join(_prefix + n for n in names)}")
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
