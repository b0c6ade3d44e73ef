"""The ``obs-faceswap`` command line: swap, demo, bench and models.

::

    obs-faceswap swap --source PHOTO --input VIDEO|IMAGE|webcam:N --output FILE [--preview]
    obs-faceswap demo [--output DIR]
    obs-faceswap preview --source PHOTO [--output sheet.png] [--targets IMAGE ...]
    obs-faceswap bench [--json] [--frames N] [--sizes 480p,720p,1080p]
    obs-faceswap models list|verify|fetch|path

Every expected failure (a missing or corrupt model, an unreadable input, a photo without a
face, a bad option value, an existing output without ``-y``) is a
:class:`~obs_faceswap.errors.FaceSwapError`: the command prints one line
``obs-faceswap: error: ...`` on stderr, naming the flags the user typed, and exits with
status 2 (``-v`` adds the traceback); an unexpected error is one line too, with status 1.
Ctrl-C or SIGTERM stops a run cleanly: the output file is still finalised with what was
processed, no temporary file is left, and the exit status is 130 (143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obs_faceswap import __version__
from obs_faceswap.config import (
    BLEND_MODES,
    COLOR_MODES,
    CORNERS,
    DETECTORS,
    LANDMARK_MODELS,
    PROVIDERS,
    SELECTION_MODES,
    PipelineConfig,
    RuntimeConfig,
    apply_updates,
)
from obs_faceswap.errors import ConfigError, FaceSwapError

if TYPE_CHECKING:  # pragma: no cover
    from obs_faceswap.io import InputSource, VideoWriter
    from obs_faceswap.models import ModelStore
    from obs_faceswap.pipeline import Pipeline
    from obs_faceswap.types import FrameReport, ImageBGR

log = logging.getLogger("obs_faceswap.cli")

PROG = "obs-faceswap"
EXIT_OK, EXIT_INTERNAL, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP), raised in the main thread so a run stops exactly as on Ctrl-C:
    the output is finalised and no temporary file is left."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


#: swap options that map one-to-one onto a ``PipelineConfig`` field (argparse dest → field).
FIELD_OPTIONS: dict[str, str] = {
    "detector": "detector.kind",
    "detector_model": "detector.model",
    "det_threshold": "detector.score_threshold",
    "det_size": "detector.input_size",
    "landmarks": "landmarks.kind",
    "landmarks_model": "landmarks.model",
    "detect_interval": "tracking.detect_interval",
    "max_faces": "tracking.max_faces",
    "select": "selection.mode",
    "face_index": "selection.index",
    "reference": "selection.reference",
    "reference_threshold": "selection.min_similarity",
    "feather": "swapper.photo.mask.feather",
    "erode": "swapper.photo.mask.erode",
    "color": "swapper.photo.color.mode",
    "color_strength": "swapper.photo.color.strength",
    "shape": "swapper.photo.shape.strength",
    "blend": "blend.mode",
    "opacity": "blend.opacity",
    "badge_text": "badge.text",
    "badge_corner": "badge.corner",
    "texture_size": "swapper.photo.texture_size",
    "model": "swapper.model",
    "model_family": "swapper.neural.family",
    "recognizer": "swapper.neural.recognizer",
    "converter": "swapper.neural.converter",
    "morph": "swapper.neural.morph",
    "mask": "swapper.neural.masks",
    "mouth_size": "swapper.neural.mouth_size",
    "occlusion_model": "swapper.neural.occlusion_model",
    "parser_model": "swapper.neural.parser_model",
    "enhancer": "swapper.neural.enhancer",
    "enhance_every": "swapper.neural.enhance_every",
}
#: with --model, these options set the neural swapper's field instead of the photo swapper's.
MODEL_REDIRECTS: dict[str, str] = {
    "color": "swapper.neural.color",
    "color_strength": "swapper.neural.color_strength",
}
#: on/off flags: argparse dest → (field, value when the flag is given).
FLAG_OPTIONS: dict[str, tuple[str, bool]] = {
    "keep_eyes": ("swapper.photo.mask.keep_eyes", True),
    "no_keep_mouth": ("swapper.photo.mask.keep_mouth", False),
    "no_trim_hair": ("swapper.photo.mask.trim_hair", False),
    "no_keep_occluders": ("swapper.photo.mask.keep_occluders", False),
    "keep_glasses": ("swapper.photo.mask.keep_glasses", True),
    "fade_beyond_pose": ("swapper.photo.mask.fade_beyond_pose", True),
    "no_smoothing": ("tracking.smoothing", False),
    "badge": ("badge.enabled", True),
}


# -- argument parsing -----------------------------------------------------------------------
def _common_options() -> argparse.ArgumentParser:
    """Options every command takes, anywhere on the line (``models --offline fetch`` too).

    They are added at every level (top, command, sub-action) with ``SUPPRESS`` defaults, so
    a level where an option is not given leaves the value from another level alone;
    :func:`_fill_common_defaults` sets the defaults afterwards.
    """
    p = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    g = p.add_argument_group("common options")
    g.add_argument(
        "--models",
        metavar="DIR",
        help="directory with the model files (searched first; then $OBS_FACESWAP_MODELS, then the user cache)",
    )
    g.add_argument(
        "--media",
        metavar="DIR",
        help="directory with the sample media (demo, bench; then $OBS_FACESWAP_MEDIA, then the user cache)",
    )
    g.add_argument(
        "--offline",
        action="store_true",
        help="never download; a missing file is an error (also $OBS_FACESWAP_OFFLINE=1)",
    )
    g.add_argument(
        "--provider",
        metavar="NAME[,NAME]",
        help=f"execution providers in order of preference: auto or {', '.join(PROVIDERS)} "
        "(default auto: the best available)",
    )
    g.add_argument(
        "--threads", type=int, metavar="N", help="onnxruntime threads per model (default 0: number of cores, at most 4)"
    )
    g.add_argument("--device-id", type=int, metavar="N", help="GPU index (default 0)")
    g.add_argument(
        "--cpu-backend",
        choices=("auto", "onnxruntime", "opencv"),
        help="for models on the CPU: the faster of onnxruntime and OpenCV DNN, measured "
        "at load (auto, default), or one of them",
    )
    g.add_argument("-v", "--verbose", action="count", help="more logging (-vv for debug); tracebacks on errors")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


#: Values of the common options when they are given nowhere on the command line.
COMMON_DEFAULTS: dict[str, object] = {
    "models": None,
    "media": None,
    "offline": False,
    "provider": "auto",
    "threads": 0,
    "device_id": 0,
    "cpu_backend": "auto",
    "verbose": 0,
    "quiet": False,
}


def _fill_common_defaults(args: argparse.Namespace) -> argparse.Namespace:
    for dest, value in COMMON_DEFAULTS.items():
        if not hasattr(args, dest):
            setattr(args, dest, value)
    return args


def _pipeline_options(p: argparse.ArgumentParser) -> None:
    """Options that change the face swap itself (shared by swap and demo)."""
    g = p.add_argument_group("detection and tracking")
    g.add_argument("--detector", choices=DETECTORS, help="face detector (default yunet)")
    g.add_argument("--detector-model", metavar="ONNX", help="use this detector file instead of the manifest's")
    g.add_argument("--det-threshold", type=float, metavar="P", help="minimum detection confidence (default 0.6)")
    g.add_argument("--det-size", type=int, metavar="PX", help="detector input size, long side (default 320)")
    g.add_argument("--landmarks", choices=LANDMARK_MODELS, help="landmark model (default mesh468)")
    g.add_argument("--landmarks-model", metavar="ONNX", help="use this landmark file instead of the manifest's")
    g.add_argument(
        "--detect-interval",
        type=int,
        metavar="N",
        help="run the detector every N frames, track in between (default 10; every 3rd while "
        "something new comes into view)",
    )
    g.add_argument("--max-faces", type=int, metavar="N", help="most faces tracked at once (default: no limit)")
    g.add_argument("--no-smoothing", action="store_true", help="turn off landmark smoothing")

    g = p.add_argument_group("which faces")
    g.add_argument(
        "--select",
        choices=SELECTION_MODES,
        help="largest (default), all, index (--face-index) or reference (--reference)",
    )
    g.add_argument("--face-index", type=int, metavar="N", help="swap the N-th face from the left (0 = leftmost)")
    g.add_argument(
        "--reference",
        metavar="PHOTO",
        help="swap only the face that looks like this person (nothing is swapped while no face does)",
    )
    g.add_argument(
        "--reference-threshold",
        type=float,
        metavar="S",
        help="identity similarity 0..1 a face needs to count as the --reference person (default 0.5; "
        "higher swaps fewer strangers, lower misses the person in poor light)",
    )

    g = p.add_argument_group("mask, colour and blending")
    g.add_argument("--feather", type=float, metavar="F", help="soft edge width, fraction of the face (default 0.04)")
    g.add_argument("--erode", type=float, metavar="F", help="shrink the mask by this fraction of the face width")
    g.add_argument("--keep-eyes", action="store_true", help="show the live eyes (real blinks and gaze)")
    g.add_argument("--no-keep-mouth", action="store_true", help="cover the mouth interior with the source's")
    g.add_argument(
        "--no-keep-occluders",
        action="store_true",
        help="swap over what is in front of the face too (hands, microphones); by default it stays in front",
    )
    g.add_argument(
        "--keep-glasses",
        action="store_true",
        help="keep the live face's own glasses in front of the swap (they give away who wears them)",
    )
    g.add_argument(
        "--fade-beyond-pose",
        action="store_true",
        help="fade the swap out where the head turns further than the photo shows (this shows the live face)",
    )
    g.add_argument("--no-trim-hair", action="store_true", help="keep the source's hair on the forehead")
    g.add_argument(
        "--shape",
        type=float,
        metavar="F",
        help="how much of the source's face proportions to take: 0 = the live face's, 1 = the source's (default 1)",
    )
    g.add_argument("--color", choices=COLOR_MODES, help="colour transfer to the live skin (default rct)")
    g.add_argument("--color-strength", type=float, metavar="F", help="0 = source colours, 1 = full transfer")
    g.add_argument("--blend", choices=BLEND_MODES, help="compositing (default feather)")
    g.add_argument("--opacity", type=float, metavar="F", help="0..1 (default 1)")
    g.add_argument("--texture-size", type=int, choices=(256, 512, 1024), help="source texture size (default 512)")

    g = p.add_argument_group("face-swap model (instead of the photo swapper)")
    g.add_argument(
        "--model",
        metavar="FILE",
        help="a .dfm (DeepFaceLive) or one-photo .onnx model (or a manifest name "
        "such as inswapper_128: the verified download): inswapper_128, "
        "HyperSwap, SimSwap, GHOST, BlendSwap, UniFace (recognised from the file)",
    )
    g.add_argument(
        "--model-family",
        metavar="NAME",
        help="the one-photo family when the file name does not say "
        "it (e.g. hyperswap_1a_256, simswap_256, ghost_2_256)",
    )
    g.add_argument(
        "--recognizer",
        metavar="FILE",
        help="ArcFace .onnx for the source embedding (default: w600k_r50 from the model store)",
    )
    g.add_argument(
        "--converter", metavar="FILE", help="embedding converter .onnx for SimSwap/GHOST (default: the model store's)"
    )
    g.add_argument(
        "--morph", type=float, metavar="F", help="AMP .dfm models: how much of the celebrity, 0..1 (default 0.75)"
    )
    g.add_argument(
        "--mask",
        metavar="LIST",
        help="masks for model swaps, combined by minimum: box, occlusion, parsing, mouth (e.g. box,mouth; default box)",
    )
    g.add_argument(
        "--mouth-size",
        type=float,
        metavar="F",
        help="how far the kept live mouth reaches beyond the lips, fraction of the face crop (default 0.1)",
    )
    g.add_argument("--occlusion-model", metavar="FILE", help="XSeg-format .onnx for --mask occlusion")
    g.add_argument("--parser-model", metavar="FILE", help="BiSeNet-format .onnx for --mask parsing")
    g.add_argument("--enhancer", metavar="FILE", help="GFPGAN/GPEN-format .onnx run on the swapped face (slow)")
    g.add_argument(
        "--enhance-every", type=int, metavar="N", help="run the enhancer every N-th frame per face (default 1)"
    )

    g = p.add_argument_group("disclosure")
    g.add_argument("--badge", action="store_true", help='burn a visible "face swap" badge into the output')
    g.add_argument("--badge-text", metavar="TEXT", help="badge text (implies --badge)")
    g.add_argument("--badge-corner", choices=CORNERS, help="badge corner (implies --badge; default bottom-right)")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and documentation)."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[common],
        description="Real-time face swapping for OBS Studio and the command line. Files it writes are "
        "marked as face-swapped in their metadata.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "swap",
        parents=[common],
        help="swap a face photo into a video, image or webcam",
        description="Swap the face in --source onto the faces of --input.",
    )
    p.add_argument(
        "--source",
        nargs="+",
        metavar="PHOTO",
        help="photo(s) of the face to put in (several photos of "
        "one person are averaged by one-photo models); not needed with a .dfm --model",
    )
    p.add_argument(
        "--input",
        "-i",
        required=True,
        metavar="VIDEO|IMAGE|webcam:N",
        help="a video file, an image file or webcam:N (camera number N)",
    )
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="video (.mp4 .m4v .mov .mkv) or image (.png .jpg); keeps the input's audio and frame rate",
    )
    p.add_argument("-y", "--overwrite", action="store_true", help="replace --output if it exists")
    p.add_argument("--preview", action="store_true", help="show the result in a window (q or Esc quits)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--no-audio", action="store_true", help="do not copy the input's audio")
    p.add_argument("--crf", type=int, default=18, metavar="Q", help="H.264 quality, lower is better (default 18)")
    _pipeline_options(p)
    p.set_defaults(func=cmd_swap)

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="swap a sample photo onto a sample clip",
        description="Swap astronaut.png onto dfl_Obama_speaking.mp4 (downloaded if not found) "
        "and write demo.mp4 and side_by_side.png, with the disclosure badge.",
    )
    p.add_argument(
        "--output",
        "-o",
        metavar="DIR",
        default="obs-faceswap-demo",
        help="where to write the results (default ./obs-faceswap-demo)",
    )
    p.add_argument("--max-frames", type=int, metavar="N", help="process only the first N frames")
    p.add_argument("--preview", action="store_true", help="show the result in a window (q or Esc quits)")
    _pipeline_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "preview",
        parents=[common],
        help="rate a source photo and render it onto sample faces",
        description="Render --source onto sample faces (frames of the sample clip and the "
        "sample photo, or --targets) as one contact sheet, and rate the photo (face size, pose, "
        "occlusion, sharpness, lighting) with advice.",
    )
    p.add_argument("--source", required=True, metavar="PHOTO", help="photo of the face to put in")
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        default="preview.png",
        help="contact sheet to write (.png or .jpg; default preview.png)",
    )
    p.add_argument("--targets", nargs="+", metavar="IMAGE", help="your own sample pictures instead of the samples")
    _pipeline_options(p)
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser(
        "bench",
        parents=[common],
        help="per-stage timings and FPS at 480p, 720p, 1080p",
        description="Benchmark the pipeline on dfl_Obama_speaking.mp4 scaled to each size "
        "(video decoding excluded) and report per-stage ms, end-to-end FPS and the ratio of "
        "pipeline time to raw model inference time.",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    p.add_argument(
        "--sizes",
        default="480p,720p,1080p",
        metavar="LIST",
        help="comma-separated sizes: 360p, 480p, 720p, 1080p, 1440p, 2160p or WxH",
    )
    p.add_argument("--frames", type=int, default=100, metavar="N", help="measured frames per repeat (default 100)")
    p.add_argument("--warmup", type=int, default=30, metavar="N", help="untimed frames first (default 30)")
    p.add_argument("--repeats", type=int, default=3, metavar="N", help="measured runs per size (default 3)")
    _pipeline_options(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("models", parents=[common], help="list, verify, fetch or locate model files")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    m = msub.add_parser("list", parents=[common], help="every file the manifest declares and its state")
    m.add_argument("--all", action="store_true", help="include the sample media")
    m.set_defaults(func=cmd_models_list)
    m = msub.add_parser("verify", parents=[common], help="check sizes and sha256 digests")
    m.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="what to verify (default: every file present, and the default models must be present)",
    )
    m.set_defaults(func=cmd_models_verify)
    m = msub.add_parser("fetch", parents=[common], help="download into the user cache (verified)")
    m.add_argument("names", nargs="*", metavar="NAME", help="what to fetch (default: the default models)")
    m.add_argument("--all", action="store_true", help="every file that has a public download")
    m.set_defaults(func=cmd_models_fetch)
    m = msub.add_parser("path", parents=[common], help="where a file is (or the search directories)")
    m.add_argument("name", nargs="?", metavar="NAME")
    m.set_defaults(func=cmd_models_path)
    _add_setup_commands(sub, common)
    return parser


# -- set-up commands: install-obs, uninstall-obs, doctor (issue 10) ----------------------------
def _add_setup_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    for name, func, text in (
        ("install-obs", cmd_install_obs, "add the Face Swap script to OBS and record the engine's Python"),
        ("uninstall-obs", cmd_uninstall_obs, "undo install-obs (OBS's configuration as it was)"),
    ):
        p = sub.add_parser(name, parents=[common], help=text, description=text + ". Close OBS first.")
        p.add_argument("--obs-config", metavar="DIR", help="OBS's configuration directory (default: found)")
        if name == "install-obs":
            p.add_argument(
                "--python",
                metavar="PATH",
                default=sys.executable,
                help="the interpreter that runs the engine (default: this one)",
            )
        p.set_defaults(func=func)
    p = sub.add_parser(
        "doctor",
        parents=[common],
        help="check OBS, Python, GPU providers, models, cameras",
        description="One table of checks, each with its fix. Exit status 1 when one fails.",
    )
    p.set_defaults(func=cmd_doctor)
    p = sub.add_parser(
        "obs-demo",
        parents=[common],
        help="start OBS with the sample clip and Face Swap on it",
        description="Start OBS Studio with its own demo configuration (your OBS settings are not "
        "touched): the sample clip with the Face Swap filter. In a window where there is a display; "
        "otherwise headless under Xvfb, recording --seconds of video.",
    )
    p.add_argument(
        "--output",
        "-o",
        metavar="DIR",
        default="obs-faceswap-obs-demo",
        help="where the demo's OBS configuration, recording and screenshot go",
    )
    p.add_argument("--seconds", type=int, default=10, metavar="N", help="length of the headless recording")
    p.add_argument("--headless", action="store_true", help="run under Xvfb even where there is a display")
    p.set_defaults(func=cmd_obs_demo)


def cmd_install_obs(args: argparse.Namespace) -> int:
    from obs_faceswap import install_obs

    loc = install_obs.locate(Path(args.obs_config) if args.obs_config else None)
    print(f"OBS configuration: {loc.config_dir} ({loc.kind})")
    for line in install_obs.install(loc, Path(args.python)).lines:
        print(line)
    return EXIT_OK


def cmd_uninstall_obs(args: argparse.Namespace) -> int:
    from obs_faceswap import install_obs

    loc = install_obs.locate(Path(args.obs_config) if args.obs_config else None)
    for line in install_obs.uninstall(loc).lines:
        print(line)
    return EXIT_OK


def cmd_obs_demo(args: argparse.Namespace) -> int:
    from obs_faceswap import obs_demo

    return obs_demo.main_run(make_store(args), Path(args.output), args.seconds, True if args.headless else None)


def cmd_doctor(args: argparse.Namespace) -> int:
    from obs_faceswap import doctor

    store = make_store(args)
    store.allow_download = False
    rows = doctor.run_all(store)
    print(doctor.format_table(rows))
    return 1 if any(r.status == doctor.FAIL for r in rows) else EXIT_OK


def runtime_config(args: argparse.Namespace) -> Any:
    """The :class:`RuntimeConfig` for ``--provider``, ``--threads``, ``--device-id`` and
    ``--cpu-backend``."""

    def opt(dest: str) -> Any:
        return getattr(args, dest, COMMON_DEFAULTS[dest])

    provider = str(opt("provider"))
    providers = tuple(p.strip().lower() for p in provider.split(",") if p.strip()) or ("auto",)
    if "auto" in providers and len(providers) > 1:
        raise ConfigError(f"--provider auto cannot be combined with other names, got {provider!r}")
    return RuntimeConfig(
        providers=providers, threads=opt("threads"), device_id=opt("device_id"), cpu_backend=opt("cpu_backend")
    )


#: With ``--face-index`` and no ``--max-faces``, track this many faces (the most allowed), so
#: that "the N-th face from the left" counts every face in the picture, not only the few with
#: the highest detection scores.
INDEX_MAX_FACES = 64


def _flag_names(message: str) -> str:
    """``message`` with configuration keys (``blend.opacity``) replaced by the command-line
    flags that set them (``--opacity``), so an error speaks the user's language."""
    flags = {key: "--" + dest.replace("_", "-") for dest, key in FIELD_OPTIONS.items()}
    flags.update({key: "--" + dest.replace("_", "-") for dest, (key, _) in FLAG_OPTIONS.items()})
    flags.update({key: "--" + dest.replace("_", "-") for dest, key in MODEL_REDIRECTS.items()})
    flags.update({f"runtime.{d}": "--" + d.replace("_", "-") for d in ("threads", "device_id", "cpu_backend")})
    flags["runtime.providers"] = "--provider"
    names: dict[str, str] = {}
    for key, flag in flags.items():
        parts = key.split(".")
        # Nested sections report their own path (``mask.feather`` inside ``swapper.photo``).
        for i in range(len(parts) - 1 if len(parts) > 1 else 1):
            names.setdefault(".".join(parts[i:]), flag)
    pattern = re.compile(
        r"(?<![\w.])(" + "|".join(re.escape(k) for k in sorted(names, key=len, reverse=True)) + r")(?![\w.])"
    )
    message = pattern.sub(lambda m: names[m.group(1)], message)
    # RuntimeConfig names only the field ("threads must be >= 0"), as the sentence's subject.
    head, sep, rest = message.partition(" ")
    bare = {key.removeprefix("runtime."): flag for key, flag in flags.items() if key.startswith("runtime.")}
    return bare[head] + sep + rest if head in bare else message


def build_config(args: argparse.Namespace, base: PipelineConfig | None = None) -> PipelineConfig:
    """Map parsed options onto a :class:`PipelineConfig` (defaults stay in ``config.py``).

    ``--reference`` implies ``--select reference``, ``--face-index`` implies ``--select index``
    (and, without ``--max-faces``, tracking every face so the count from the left is right),
    and ``--badge-text`` / ``--badge-corner`` imply ``--badge``.

    Raises:
        ConfigError: a value is out of range, or options contradict each other; the message
            names the flags, not the configuration keys.
    """
    updates: dict[str, Any] = {}
    with_model = getattr(args, "model", None) is not None
    for dest, key in FIELD_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is not None:
            updates[MODEL_REDIRECTS.get(dest, key) if with_model else key] = value
    if with_model:
        updates["swapper.kind"] = "model"
    elif any(getattr(args, d, None) is not None for d in ("recognizer", "morph", "mask", "enhancer", "model_family")):
        raise ConfigError("--recognizer, --morph, --mask, --enhancer and --model-family need --model FILE")
    for dest, (key, value) in FLAG_OPTIONS.items():
        if getattr(args, dest, False):
            updates[key] = value
    implied = None
    if getattr(args, "reference", None) is not None:
        implied = "reference"
    elif getattr(args, "reference_threshold", None) is not None:
        raise ConfigError("--reference-threshold needs --reference PHOTO")
    face_index = getattr(args, "face_index", None)
    if face_index is not None:
        if implied:
            raise ConfigError("--reference and --face-index cannot be used together")
        implied = "index"
        max_faces = getattr(args, "max_faces", None)
        if max_faces is None:
            updates["tracking.max_faces"] = INDEX_MAX_FACES
        elif face_index >= max_faces:
            raise ConfigError(
                f"--face-index {face_index} needs --max-faces {face_index + 1} or more "
                f"(faces are counted from 0), got --max-faces {max_faces}"
            )
    if implied:
        chosen = getattr(args, "select", None)
        if chosen not in (None, implied):
            flag = "--reference" if implied == "reference" else "--face-index"
            raise ConfigError(f"{flag} needs --select {implied} (or no --select), got --select {chosen}")
        updates["selection.mode"] = implied
    if getattr(args, "badge_text", None) is not None or getattr(args, "badge_corner", None) is not None:
        updates["badge.enabled"] = True
    try:
        config: PipelineConfig = apply_updates(base or PipelineConfig(), updates)
        return apply_updates(config, {"runtime": runtime_config(args)})  # type: ignore[no-any-return]
    except ConfigError as e:
        raise ConfigError(_flag_names(str(e))) from e


def make_store(args: argparse.Namespace) -> ModelStore:
    """The model store for ``--models``, ``--media`` and ``--offline``."""
    from obs_faceswap.models import ModelStore

    offline = getattr(args, "offline", False) or os.environ.get("OBS_FACESWAP_OFFLINE", "") not in ("", "0")
    return ModelStore(
        getattr(args, "models", None),
        media_dir=getattr(args, "media", None),
        allow_download=not offline,
        progress=not getattr(args, "quiet", False),
    )


# -- the frame loop -------------------------------------------------------------------------
@dataclass
class RunStats:
    """What a run did: counts and times (all times in seconds)."""

    frames: int = 0
    frames_with_faces: int = 0
    frames_swapped: int = 0
    pipeline_s: float = 0.0
    wall_s: float = 0.0
    interrupted: bool = False
    stopped_by_user: bool = False
    #: The loop ended because the input had no more frames (not Ctrl-C, q, --max-frames).
    input_exhausted: bool = False
    #: The signal that stopped the run (SIGINT or SIGTERM), 0 when none did.
    signal: int = 0
    #: Frames in which faces were found but none looked like the --reference person.
    reference_misses: int = 0
    #: The highest similarity to the --reference person of any face in those frames.
    reference_best: float | None = None
    reference_threshold: float | None = None

    @property
    def pipeline_fps(self) -> float:
        return self.frames / self.pipeline_s if self.pipeline_s > 0 else 0.0

    @property
    def wall_fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def exit_status(self) -> int:
        """0, or 128 + the signal that stopped the run (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + self.signal if self.interrupted else EXIT_OK

    def summary(self) -> str:
        pct = 100.0 * self.frames_with_faces / self.frames if self.frames else 0.0
        ms = 1000.0 * self.pipeline_s / self.frames if self.frames else 0.0
        text = (
            f"{self.frames} frame{'s' if self.frames != 1 else ''}, faces found in {pct:.0f}%, "
            f"swapped in {self.frames_swapped}; {self.wall_fps:.1f} FPS overall "
            f"(pipeline {ms:.1f} ms/frame = {self.pipeline_fps:.1f} FPS)"
        )
        if self.reference_misses:
            text += "\n" + reference_miss_message(self.reference_misses, self.reference_best, self.reference_threshold)
        return text


def reference_miss_message(frames: int, best: float | None, threshold: float | None) -> str:
    """Why faces were left alone in reference mode, with the numbers to adjust."""
    where = "in the picture" if frames == 1 else f"in {frames} frames with faces"
    numbers = f" (best similarity {best:.2f}" if best is not None else " ("
    numbers += f"; --reference-threshold {threshold:.2f})" if threshold is not None else ")"
    return (
        f"no face looked like the --reference person {where}, so they were not swapped{numbers}. "
        "Use a clearer photo of the person, or lower --reference-threshold"
    )


class Preview:
    """An OpenCV window showing the output; ``show`` returns False once the user quits."""

    TITLE = "obs-faceswap (q or Esc to quit)"

    def __init__(self) -> None:
        import cv2

        self.check_display()
        self._cv2 = cv2
        try:
            cv2.namedWindow(self.TITLE, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            raise FaceSwapError(
                f"--preview needs a display and an OpenCV build with GUI support: {str(e).strip().splitlines()[-1]}"
            ) from e
        self._shown = False

    @staticmethod
    def check_display() -> None:
        """Refuse early when there is no display (OpenCV's Qt backend would abort the process)."""
        if (
            sys.platform.startswith("linux")
            and not os.environ.get("DISPLAY")
            and not os.environ.get("WAYLAND_DISPLAY")
            and not os.environ.get("QT_QPA_PLATFORM")
        ):
            raise FaceSwapError(
                "--preview needs a display (DISPLAY / WAYLAND_DISPLAY is not set); use --output FILE instead"
            )

    def show(self, frame: ImageBGR, wait_ms: int = 1) -> bool:
        cv2 = self._cv2
        cv2.imshow(self.TITLE, frame)
        key = cv2.waitKey(wait_ms) & 0xFF
        if key in (ord("q"), 27):
            return False
        if self._shown and cv2.getWindowProperty(self.TITLE, cv2.WND_PROP_VISIBLE) < 1:
            return False  # the window was closed
        self._shown = True
        return True

    def close(self) -> None:
        try:
            self._cv2.destroyWindow(self.TITLE)
            self._cv2.waitKey(1)
        except self._cv2.error:
            pass


FrameHook = Callable[[int, "ImageBGR", "ImageBGR", "FrameReport"], None]


def run_frames(
    pipe: Pipeline,
    reader: InputSource,
    writer: VideoWriter | None,
    *,
    max_frames: int | None = None,
    preview: Preview | None = None,
    progress: bool = True,
    on_frame: FrameHook | None = None,
    keep_input: bool = False,
) -> RunStats:
    """Process every frame of ``reader`` into ``writer`` (and/or the preview window).

    Ctrl-C, SIGTERM or q/Esc in the preview stop the loop; what was processed so far stays in
    the writer, which the caller closes. Frames go to the writer with their input timestamps
    (so it keeps a variable frame rate's timing) and whether a face was swapped in them (for
    the disclosure metadata); when the whole input was read, the writer is told to keep the
    audio to its end, and a file that gave fewer frames than it declares is reported.

    Args:
        pipe: the pipeline.
        reader: frames in.
        writer: frames out, or None (preview only).
        max_frames: stop after this many frames.
        preview: a window to show results in.
        progress: show a tqdm progress bar on stderr (hidden when stderr is not a terminal).
        on_frame: called as ``on_frame(index, input, output, report)`` after each frame.
        keep_input: leave input frames untouched (``on_frame`` needs the original); otherwise
            the pipeline works in place, saving a frame copy.

    Returns:
        Counts and timings; faces that did not look like the ``--reference`` person.
    """
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from obs_faceswap.io import prefetch

    stats = RunStats()
    matcher = pipe.matcher
    if matcher is not None:
        stats.reference_threshold = matcher.min_similarity
    total = reader.frame_count
    if max_frames is not None:
        total = min(total, max_frames) if total is not None else max_frames
    frames = prefetch(reader) if reader.kind == "video" else iter(reader)
    t_start = time.perf_counter()
    bar = tqdm(
        total=total,
        unit="frame",
        desc=Path(reader.name).name[:30],
        file=sys.stderr,
        disable=None if progress else True,
        dynamic_ncols=True,
        leave=False,
    )
    last_postfix = 0.0
    try:
        with logging_redirect_tqdm():
            for frame in frames:
                if max_frames is not None and stats.frames >= max_frames:
                    break
                t0 = time.perf_counter()
                out, report = pipe.process(frame.image, frame.time_s, inplace=not keep_input)
                stats.pipeline_s += time.perf_counter() - t0
                stats.frames += 1
                # Faces, but none like the --reference person: counted, and said in the summary.
                best = matcher.last_best if matcher is not None else None
                unmatched = best is not None and not report.faces
                stats.frames_with_faces += bool(report.faces) or unmatched
                stats.frames_swapped += report.swapped > 0
                if best is not None and unmatched:
                    stats.reference_misses += 1
                    stats.reference_best = max(stats.reference_best or -1.0, best)
                if on_frame is not None:
                    on_frame(frame.index, frame.image, out, report)
                if writer is not None:
                    writer.write(out, frame.time_s, synthetic=report.swapped > 0)
                if preview is not None and not preview.show(out):
                    stats.stopped_by_user = True
                    break
                bar.update(1)
                now = time.perf_counter()
                if now - last_postfix > 0.5:
                    last_postfix = now
                    bar.set_postfix(fps=f"{stats.frames / (now - t_start):.1f}", faces=len(report.faces), refresh=False)
            else:
                stats.input_exhausted = True
    except KeyboardInterrupt as e:
        stats.interrupted = True
        stats.signal = e.signum if isinstance(e, Terminated) else signal.SIGINT
    finally:
        bar.close()
        if hasattr(frames, "close"):
            frames.close()  # stops the reader thread
        stats.wall_s = time.perf_counter() - t_start
    if stats.input_exhausted and writer is not None:
        writer.whole_input = True  # keep the audio to its end
    if stats.input_exhausted:
        _check_complete(reader, stats.frames)
    return stats


def _check_complete(reader: InputSource, frames: int) -> None:
    """Warn when a file gave fewer frames than it declares (truncated or damaged)."""
    expected = reader.frame_count if reader.kind == "video" else None
    # The count comes from the container's index or from duration x rate (an estimate):
    # a frame or two (or 2 %) short is normal.
    if expected is not None and expected - frames > max(2, expected // 50):
        log.warning(
            "%s: read %d of the %d frames the file declares; it looks truncated or damaged, so the output ends early",
            reader.name,
            frames,
            expected,
        )


# -- commands -------------------------------------------------------------------------------
def _check_output(reader: InputSource, output: Path) -> None:
    from obs_faceswap.io import IMAGE_OUTPUT_EXTS, VIDEO_OUTPUT_EXTS

    ext = output.suffix.lower()
    if reader.kind == "image" and ext not in IMAGE_OUTPUT_EXTS:
        raise ConfigError(
            f"the input is an image, so --output must end in {', '.join(IMAGE_OUTPUT_EXTS)}; got {output}"
        )
    if reader.kind != "image" and ext not in VIDEO_OUTPUT_EXTS:
        raise ConfigError(f"the input is a video, so --output must end in {', '.join(VIDEO_OUTPUT_EXTS)}; got {output}")
    if reader.path is not None and output.resolve() == reader.path.resolve():
        raise ConfigError(f"--output {output} is the input file; choose another name")


def _check_overwrite(output: Path, input_spec: str, overwrite: bool) -> None:
    if output.exists() and Path(input_spec).exists() and output.resolve() == Path(input_spec).resolve():
        raise ConfigError(f"--output {output} is the input file; choose another name")
    if output.is_dir():
        raise ConfigError(f"--output {output} is a directory; give a file name")
    if output.exists() and not overwrite:
        raise ConfigError(
            f"--output {output} already exists; add -y (--overwrite) to replace it, or choose another name"
        )


def cmd_swap(args: argparse.Namespace) -> int:
    """``obs-faceswap swap``."""
    from obs_faceswap.io import VideoWriter, open_input, output_rate
    from obs_faceswap.pipeline import Pipeline

    if not args.output and not args.preview:
        raise ConfigError("give --output FILE, --preview, or both")
    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.preview:
        Preview.check_display()
    config = build_config(args)
    output = Path(args.output) if args.output else None
    if not args.source and config.swapper.kind != "model":
        raise ConfigError("give --source PHOTO (the face to put in), or a face-swap --model FILE")
    if output is not None:
        _check_overwrite(output, args.input, args.overwrite)
    store = make_store(args)
    with open_input(args.input) as reader:
        if output is not None:
            _check_output(reader, output)
        log.info("input %r", reader)
        with Pipeline(config, store, source=args.source or None) as pipe:
            if pipe.swapper.needs_source and not args.source:
                raise ConfigError(
                    f"{Path(str(config.swapper.model)).name} needs --source PHOTO (a photo of the person "
                    f"to put in); only .dfm models carry their own face"
                )
            log.info("running on %s", pipe.provider)
            rating = pipe.source_rating()
            note = rating.summary() if rating is not None else ""
            if note:
                log.warning("%s (`obs-faceswap preview --source PHOTO` shows it on sample faces)", note)
            preview = Preview() if args.preview else None
            try:
                if reader.kind == "image":
                    return _swap_image(pipe, reader, output, preview)
                writer = None
                if output is not None:
                    assert reader.fps is not None
                    keep_audio = reader.path is not None and not args.no_audio and reader.has_audio
                    audio = reader.path if keep_audio else None
                    writer = VideoWriter(output, reader.size, output_rate(reader), audio_from=audio, crf=args.crf)
                # On an error the writer still finalises what was processed (see VideoWriter.__exit__).
                with writer if writer is not None else contextlib.nullcontext():
                    stats = run_frames(
                        pipe, reader, writer, max_frames=args.max_frames, preview=preview, progress=not args.quiet
                    )
                written = writer.close() if writer is not None else None  # idempotent: the path
            finally:
                if preview is not None:
                    preview.close()
    if written is not None:
        print(f"wrote {written}: {stats.summary()}")
    else:
        print(stats.summary())
    if stats.interrupted:
        print("interrupted: the output holds the frames processed so far", file=sys.stderr)
    return stats.exit_status


def _swap_image(pipe: Pipeline, reader: InputSource, output: Path | None, preview: Preview | None) -> int:
    from obs_faceswap.disclosure import metadata as disclosure_metadata
    from obs_faceswap.io import write_image

    frame = next(iter(reader))
    t0 = time.perf_counter()
    out, report = pipe.process(frame.image, None)
    ms = (time.perf_counter() - t0) * 1000
    matcher = pipe.matcher
    best = matcher.last_best if matcher is not None else None
    unmatched = best is not None and not report.faces
    if unmatched and matcher is not None:
        log.warning(reference_miss_message(1, best, matcher.min_similarity))
    elif not report.faces:
        log.warning("no face found in %s; the output is the unchanged input", reader.name)
    if output is not None:
        write_image(output, out, disclosure_metadata("image", swapped=report.swapped > 0))
        found = f"{len(report.faces)} face(s) found" if not unmatched else "no face like the --reference person"
        capped = f", {report.left_out} left out (--max-faces)" if report.left_out else ""
        print(f"wrote {output}: {found}, {report.swapped} swapped{capped} ({ms:.0f} ms)")
    if preview is not None:
        preview.show(out, wait_ms=0)
    return EXIT_OK


def side_by_side(
    original: ImageBGR, swapped: ImageBGR, labels: tuple[str, str] = ("original", "face swapped")
) -> ImageBGR:
    """``original | swapped`` with a label strip above each half."""
    import cv2
    import numpy as np

    h, w = original.shape[:2]
    strip = max(24, h // 14)
    canvas = np.full((h + strip, 2 * w, 3), 32, np.uint8)
    canvas[strip:, :w] = original
    canvas[strip:, w:] = swapped
    scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, int(strip * 0.5), 1)
    for i, text in enumerate(labels):
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        org = (i * w + (w - tw) // 2, (strip + th) // 2)
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), 1, cv2.LINE_AA)
    return canvas


def cmd_demo(args: argparse.Namespace) -> int:
    """``obs-faceswap demo``: astronaut.png onto dfl_Obama_speaking.mp4."""
    from obs_faceswap.io import VideoWriter, open_input, write_image
    from obs_faceswap.pipeline import Pipeline

    if args.preview:
        Preview.check_display()
    store = make_store(args)
    source = store.path("astronaut")
    clip = store.path("obama")
    args.badge = True  # the demo always shows the disclosure badge
    config = build_config(args)
    out_dir = Path(args.output).absolute()
    video_out, png_out = out_dir / "demo.mp4", out_dir / "side_by_side.png"

    with open_input(clip) as reader:
        n = reader.frame_count or 0
        if args.max_frames:
            n = min(n, args.max_frames) if n else args.max_frames
        target = max(0, n // 2)
        chosen: dict[str, Any] = {}

        def keep_representative(index: int, original: ImageBGR, output: ImageBGR, report: FrameReport) -> None:
            # The middle frame if it was swapped, else the first swapped one after it,
            # else the last swapped one before it.
            if report.swapped and (index >= target and "after" not in chosen):
                chosen["after"] = (original, output)
            elif report.swapped and index < target:
                chosen["before"] = (original, output)
            elif not chosen and index == target:
                chosen["fallback"] = (original, output)

        with Pipeline(config, store, source=source) as pipe:
            preview = Preview() if args.preview else None
            audio = clip if reader.has_audio else None
            writer = VideoWriter(video_out, reader.size, reader.fps or 30, audio_from=audio)
            try:
                with writer:
                    stats = run_frames(
                        pipe,
                        reader,
                        writer,
                        max_frames=args.max_frames,
                        preview=preview,
                        progress=not args.quiet,
                        on_frame=keep_representative,
                        keep_input=True,
                    )
            finally:
                if preview is not None:
                    preview.close()
            written = writer.close()  # idempotent: the path, or None when nothing was written
    pair = chosen.get("after") or chosen.get("before") or chosen.get("fallback")
    if pair is not None:
        write_image(png_out, side_by_side(*pair))
    print(f"source photo: {source}\nclip:         {clip}")
    if written is not None:
        print(f"wrote {written}")
    if pair is not None:
        print(f"wrote {png_out}")
    print(stats.summary())
    return stats.exit_status


def cmd_preview(args: argparse.Namespace) -> int:
    """``obs-faceswap preview``: the source photo on sample faces, and its rating."""
    from obs_faceswap.frame import read_image
    from obs_faceswap.io import write_image
    from obs_faceswap.pipeline import Pipeline
    from obs_faceswap.preview import run_preview, sample_faces

    store = make_store(args)
    source = read_image(args.source)
    targets = [read_image(t) for t in args.targets] if args.targets else sample_faces(store)
    with Pipeline(build_config(args), store, source=args.source) as pipe:
        sheet, rating = run_preview(pipe, source, targets)
    write_image(args.output, sheet)
    print("\n".join(rating.lines()))
    print(f"wrote {args.output}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    """``obs-faceswap bench``."""
    import json

    from obs_faceswap import bench

    cfg = bench.BenchConfig(
        sizes=bench.parse_sizes(args.sizes), warmup=args.warmup, frames=args.frames, repeats=args.repeats
    )
    result = bench.run_benchmark(make_store(args), cfg, build_config(args), progress=not args.quiet and not args.json)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(bench.format_table(result))
    return EXIT_OK


def cmd_models_list(args: argparse.Namespace) -> int:
    store = make_store(args)
    rows = [("name", "kind", "role", "state", "licence", "path")]
    for e, path, state in store.status():
        if e.kind != "models" and not args.all:
            continue
        short = state if state in ("ok", "missing") else "CORRUPT"
        if short == "missing" and e.get("on_demand"):
            short = "on demand"  # face-swap weights: `models fetch NAME` when wanted
        name = e.name + (" *" if e.get("default") else "")
        rows.append((name, e.kind, e.role, short, e.license[:40], str(path) if path else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])
    print(
        "* = fetched by `obs-faceswap models fetch` without arguments; on demand = `obs-faceswap models fetch "
        "NAME` (see the licence)"
    )
    return EXIT_OK


def cmd_models_verify(args: argparse.Namespace) -> int:
    store = make_store(args)
    names = args.names or [n for n, e in store.entries.items() if e.kind == "models"]
    failures = 0
    for name in names:
        e = store.entry(name)
        p = store.locate(name)
        if p is None:
            if args.names or e.get("default"):
                failures += 1
                print(f"MISSING  {name}: {store._missing_message(e)}")
            else:
                print(f"missing  {name} (optional)")
            continue
        try:
            store.verify_file(e, p)
            print(f"ok       {name}: {p}")
        except FaceSwapError as err:
            failures += 1
            print(f"CORRUPT  {name}: {err}")
    if failures:
        raise FaceSwapError(f"{failures} of {len(names)} file(s) missing or corrupt (see above)")
    return EXIT_OK


def cmd_models_fetch(args: argparse.Namespace) -> int:
    store = make_store(args)
    if args.names:
        names = list(args.names)
    elif args.all:
        names = [n for n, e in store.entries.items() if e.url or e.get("convert")]
    else:
        names = [n for n, e in store.entries.items() if e.get("default")]
    for name in names:
        print(f"{name}: {store.path(name)}")  # found and verified, or downloaded into the cache
    return EXIT_OK


def cmd_models_path(args: argparse.Namespace) -> int:
    store = make_store(args)
    if args.name:
        store.entry(args.name)
        p = store.locate(args.name)
        if p is None:
            raise FaceSwapError(store._missing_message(store.entry(args.name)))
        store.verify_file(store.entry(args.name), p)
        print(p)
        return EXIT_OK
    for kind in ("models", "media"):
        for label, d in store.search_dirs(kind):
            print(f"{kind:6}  {label:22}  {d}")
    return EXIT_OK


# -- entry point ----------------------------------------------------------------------------
def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    elif verbose:  # embedded (tests, another program): leave their handlers alone
        logging.getLogger("obs_faceswap").setLevel(level)
    if verbose < 2:
        # OpenCV's and its FFmpeg's own messages ("moov atom not found", "camera index out of
        # range") duplicate the clear errors raised here; -vv shows them. FFmpeg's level is read
        # once, when OpenCV first opens a video, so it must be set before that.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
        os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
        try:
            import cv2

            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        except (ImportError, AttributeError):  # pragma: no cover
            pass


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse a command line (common options may stand anywhere; their defaults filled in)."""
    return _fill_common_defaults(build_parser().parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 error, 130 interrupted)."""
    from obs_faceswap.runtime import set_process_environment

    set_process_environment()  # before anything imports onnxruntime
    args = parse_args(argv)
    verbose = getattr(args, "verbose", 0)
    _setup_logging(verbose)
    # SIGTERM (a service manager, `kill`, a closed terminal's SIGHUP) stops a run like Ctrl-C:
    # the output is finalised and no temporary file is left. Only the main thread may do this.
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if signum is not None:
                previous[signum] = signal.signal(signum, _raise_terminated)
    try:
        result: int = args.func(args)
        return result
    except FaceSwapError as e:
        if verbose:
            log.exception("details")
        print(f"{PROG}: error: {_flag_names(str(e))}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:  # disk full, permission denied, ... on the user's files
        if verbose:
            log.exception("details")
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:
        # A bug, or bad input that slipped past the checks: one line, the traceback with -v.
        if verbose:
            log.exception("details")
        print(
            f"{PROG}: internal error: {type(e).__name__}: {e} (run again with -v for the details, "
            "and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    except KeyboardInterrupt as e:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 128 + e.signum if isinstance(e, Terminated) else EXIT_INTERRUPTED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
