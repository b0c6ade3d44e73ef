"""The ``obs-faceswap`` command line: swap, demo, bench and models.

::

    obs-faceswap swap --source PHOTO --input VIDEO|IMAGE|webcam:N --output FILE [--preview]
    obs-faceswap demo [--output DIR]
    obs-faceswap preview --source PHOTO [--output sheet.png] [--targets IMAGE ...]
    obs-faceswap bench [--json] [--frames N] [--sizes 480p,720p,1080p]
    obs-faceswap models list|verify|fetch|path

Every expected failure (a missing or corrupt model, an unreadable input, a photo without a
face, a bad option value) is a :class:`~obs_faceswap.errors.FaceSwapError`: the command
prints one line ``obs-faceswap: error: ...`` on stderr and exits with status 2 (``-v`` adds
the traceback). Ctrl-C stops a run cleanly: the output file is still finalised with what was
processed, and the exit status is 130.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
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
    SELECTION_MODES,
    PipelineConfig,
    apply_updates,
)
from obs_faceswap.errors import ConfigError, FaceSwapError
from obs_faceswap.runtime import PROVIDERS

if TYPE_CHECKING:  # pragma: no cover
    from obs_faceswap.io import InputSource, VideoWriter
    from obs_faceswap.models import ModelStore
    from obs_faceswap.pipeline import Pipeline
    from obs_faceswap.types import FrameReport, ImageBGR

log = logging.getLogger("obs_faceswap.cli")

PROG = "obs-faceswap"
EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 2, 130

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
    "feather": "mask.feather",
    "erode": "mask.erode",
    "color": "color.mode",
    "color_strength": "color.strength",
    "shape": "shape.strength",
    "blend": "blend.mode",
    "opacity": "blend.opacity",
    "badge_text": "badge.text",
    "badge_corner": "badge.corner",
    "texture_size": "texture_size",
}
#: on/off flags: argparse dest → (field, value when the flag is given).
FLAG_OPTIONS: dict[str, tuple[str, bool]] = {
    "keep_eyes": ("mask.keep_eyes", True),
    "no_keep_mouth": ("mask.keep_mouth", False),
    "no_trim_hair": ("mask.trim_hair", False),
    "no_smoothing": ("tracking.smoothing", False),
    "badge": ("badge.enabled", True),
}


# -- argument parsing -----------------------------------------------------------------------
def _common_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common options")
    g.add_argument("--models", metavar="DIR", help="directory with the model files (searched first; "
                   "then $OBS_FACESWAP_MODELS, then the user cache)")
    g.add_argument("--media", metavar="DIR", help="directory with the sample media (demo, bench; "
                   "then $OBS_FACESWAP_MEDIA, then the user cache)")
    g.add_argument("--offline", action="store_true", help="never download; a missing file is an error")
    g.add_argument("--provider", metavar="NAME[,NAME]", default="auto",
                   help=f"execution providers in order of preference: auto or {', '.join(PROVIDERS)} "
                   "(default auto: the best available)")
    g.add_argument("--threads", type=int, default=0, metavar="N",
                   help="onnxruntime threads per model (default 0: number of cores, at most 4)")
    g.add_argument("--device-id", type=int, default=0, metavar="N", help="GPU index (default 0)")
    g.add_argument("--cpu-backend", choices=("auto", "onnxruntime", "opencv"), default="auto",
                   help="for models on the CPU: the faster of onnxruntime and OpenCV DNN, measured "
                        "at load (auto, default), or one of them")
    g.add_argument("-v", "--verbose", action="count", default=0,
                   help="more logging (-vv for debug); tracebacks on errors")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def _pipeline_options(p: argparse.ArgumentParser) -> None:
    """Options that change the face swap itself (shared by swap and demo)."""
    g = p.add_argument_group("detection and tracking")
    g.add_argument("--detector", choices=DETECTORS, help="face detector (default yunet)")
    g.add_argument("--detector-model", metavar="ONNX", help="use this detector file instead of the manifest's")
    g.add_argument("--det-threshold", type=float, metavar="P", help="minimum detection confidence (default 0.6)")
    g.add_argument("--det-size", type=int, metavar="PX", help="detector input size, long side (default 320)")
    g.add_argument("--landmarks", choices=LANDMARK_MODELS, help="landmark model (default mesh468)")
    g.add_argument("--landmarks-model", metavar="ONNX", help="use this landmark file instead of the manifest's")
    g.add_argument("--detect-interval", type=int, metavar="N",
                   help="run the detector every N frames, track in between (default 3)")
    g.add_argument("--max-faces", type=int, metavar="N", help="most faces tracked at once (default: no limit)")
    g.add_argument("--no-smoothing", action="store_true", help="turn off landmark smoothing")

    g = p.add_argument_group("which faces")
    g.add_argument("--select", choices=SELECTION_MODES,
                   help="largest (default), all, index (--face-index) or reference (--reference)")
    g.add_argument("--face-index", type=int, metavar="N", help="swap the N-th face from the left (0 = leftmost)")
    g.add_argument("--reference", metavar="PHOTO", help="swap only the face that looks like this person")

    g = p.add_argument_group("mask, colour and blending")
    g.add_argument("--feather", type=float, metavar="F", help="soft edge width, fraction of the face (default 0.04)")
    g.add_argument("--erode", type=float, metavar="F", help="shrink the mask by this fraction of the face width")
    g.add_argument("--keep-eyes", action="store_true", help="show the live eyes (real blinks and gaze)")
    g.add_argument("--no-keep-mouth", action="store_true", help="cover the mouth interior with the source's")
    g.add_argument("--no-trim-hair", action="store_true", help="keep the source's hair on the forehead")
    g.add_argument("--shape", type=float, metavar="F",
                   help="how much of the source's face proportions to take: 0 = the live face's, "
                        "1 = the source's (default 1)")
    g.add_argument("--color", choices=COLOR_MODES, help="colour transfer to the live skin (default rct)")
    g.add_argument("--color-strength", type=float, metavar="F", help="0 = source colours, 1 = full transfer")
    g.add_argument("--blend", choices=BLEND_MODES, help="compositing (default feather)")
    g.add_argument("--opacity", type=float, metavar="F", help="0..1 (default 1)")
    g.add_argument("--texture-size", type=int, choices=(256, 512, 1024), help="source texture size (default 512)")

    g = p.add_argument_group("disclosure")
    g.add_argument("--badge", action="store_true", help='burn a visible "face swap" badge into the output')
    g.add_argument("--badge-text", metavar="TEXT", help="badge text (implies --badge)")
    g.add_argument("--badge-corner", choices=CORNERS, help="badge corner (implies --badge; default bottom-right)")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and documentation)."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Real-time face swapping for OBS Studio and the command line. Files it writes are "
        "marked as face-swapped in their metadata.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("swap", parents=[common], help="swap a face photo into a video, image or webcam",
                       description="Swap the face in --source onto the faces of --input.")
    p.add_argument("--source", required=True, metavar="PHOTO", help="photo of the face to put in")
    p.add_argument("--input", "-i", required=True, metavar="VIDEO|IMAGE|webcam:N",
                   help="a video file, an image file or webcam:N (camera number N)")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="video (.mp4 .m4v .mov .mkv) or image (.png .jpg); keeps the input's audio and frame rate")
    p.add_argument("--preview", action="store_true", help="show the result in a window (q or Esc quits)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--no-audio", action="store_true", help="do not copy the input's audio")
    p.add_argument("--crf", type=int, default=18, metavar="Q", help="H.264 quality, lower is better (default 18)")
    _pipeline_options(p)
    p.set_defaults(func=cmd_swap)

    p = sub.add_parser("demo", parents=[common], help="swap a sample photo onto a sample clip",
                       description="Swap astronaut.png onto dfl_Obama_speaking.mp4 (downloaded if not found) "
                       "and write demo.mp4 and side_by_side.png, with the disclosure badge.")
    p.add_argument("--output", "-o", metavar="DIR", default="obs-faceswap-demo",
                   help="where to write the results (default ./obs-faceswap-demo)")
    p.add_argument("--max-frames", type=int, metavar="N", help="process only the first N frames")
    p.add_argument("--preview", action="store_true", help="show the result in a window (q or Esc quits)")
    _pipeline_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("preview", parents=[common], help="rate a source photo and render it onto sample faces",
                       description="Render --source onto sample faces (frames of the sample clip and the "
                       "sample photo, or --targets) as one contact sheet, and rate the photo (face size, pose, "
                       "occlusion, sharpness, lighting) with advice.")
    p.add_argument("--source", required=True, metavar="PHOTO", help="photo of the face to put in")
    p.add_argument("--output", "-o", metavar="FILE", default="preview.png",
                   help="contact sheet to write (.png or .jpg; default preview.png)")
    p.add_argument("--targets", nargs="+", metavar="IMAGE", help="your own sample pictures instead of the samples")
    _pipeline_options(p)
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("bench", parents=[common], help="per-stage timings and FPS at 480p, 720p, 1080p",
                       description="Benchmark the pipeline on dfl_Obama_speaking.mp4 scaled to each size "
                       "(video decoding excluded) and report per-stage ms, end-to-end FPS and the ratio of "
                       "pipeline time to raw model inference time.")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    p.add_argument("--sizes", default="480p,720p,1080p", metavar="LIST",
                   help="comma-separated sizes: 360p, 480p, 720p, 1080p, 1440p, 2160p or WxH")
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
    m.add_argument("names", nargs="*", metavar="NAME", help="what to verify (default: every file present, "
                   "and the default models must be present)")
    m.set_defaults(func=cmd_models_verify)
    m = msub.add_parser("fetch", parents=[common], help="download into the user cache (verified)")
    m.add_argument("names", nargs="*", metavar="NAME", help="what to fetch (default: the default models)")
    m.add_argument("--all", action="store_true", help="every file that has a public download")
    m.set_defaults(func=cmd_models_fetch)
    m = msub.add_parser("path", parents=[common], help="where a file is (or the search directories)")
    m.add_argument("name", nargs="?", metavar="NAME")
    m.set_defaults(func=cmd_models_path)
    return parser


def runtime_config(args: argparse.Namespace) -> Any:
    """The :class:`RuntimeConfig` for ``--provider``, ``--threads``, ``--device-id`` and
    ``--cpu-backend``."""
    from obs_faceswap.runtime import RuntimeConfig

    providers = tuple(p.strip().lower() for p in str(args.provider).split(",") if p.strip()) or ("auto",)
    if "auto" in providers and len(providers) > 1:
        raise ConfigError(f"--provider auto cannot be combined with other names, got {args.provider!r}")
    return RuntimeConfig(providers=providers, threads=args.threads, device_id=args.device_id,
                         cpu_backend=getattr(args, "cpu_backend", "auto"))


def build_config(args: argparse.Namespace, base: PipelineConfig | None = None) -> PipelineConfig:
    """Map parsed options onto a :class:`PipelineConfig` (defaults stay in ``config.py``).

    ``--reference`` implies ``--select reference``, ``--face-index`` implies ``--select index``,
    and ``--badge-text`` / ``--badge-corner`` imply ``--badge``.

    Raises:
        ConfigError: a value is out of range, or options contradict each other.
    """
    updates: dict[str, Any] = {}
    for dest, key in FIELD_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is not None:
            updates[key] = value
    for dest, (key, value) in FLAG_OPTIONS.items():
        if getattr(args, dest, False):
            updates[key] = value
    implied = None
    if getattr(args, "reference", None) is not None:
        implied = "reference"
    if getattr(args, "face_index", None) is not None:
        if implied:
            raise ConfigError("--reference and --face-index cannot be used together")
        implied = "index"
    if implied:
        chosen = getattr(args, "select", None)
        if chosen not in (None, implied):
            flag = "--reference" if implied == "reference" else "--face-index"
            raise ConfigError(f"{flag} needs --select {implied} (or no --select), got --select {chosen}")
        updates["selection.mode"] = implied
    if getattr(args, "badge_text", None) is not None or getattr(args, "badge_corner", None) is not None:
        updates["badge.enabled"] = True
    config: PipelineConfig = apply_updates(base or PipelineConfig(), updates)
    if hasattr(args, "provider"):
        config = apply_updates(config, {"runtime": runtime_config(args)})
    return config


def make_store(args: argparse.Namespace) -> ModelStore:
    """The model store for ``--models``, ``--media`` and ``--offline``."""
    from obs_faceswap.models import ModelStore

    return ModelStore(getattr(args, "models", None), media_dir=getattr(args, "media", None),
                      allow_download=not getattr(args, "offline", False),
                      progress=not getattr(args, "quiet", False))


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

    @property
    def pipeline_fps(self) -> float:
        return self.frames / self.pipeline_s if self.pipeline_s > 0 else 0.0

    @property
    def wall_fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> str:
        pct = 100.0 * self.frames_with_faces / self.frames if self.frames else 0.0
        ms = 1000.0 * self.pipeline_s / self.frames if self.frames else 0.0
        return (f"{self.frames} frame{'s' if self.frames != 1 else ''}, faces found in {pct:.0f}%, "
                f"swapped in {self.frames_swapped}; {self.wall_fps:.1f} FPS overall "
                f"(pipeline {ms:.1f} ms/frame = {self.pipeline_fps:.1f} FPS)")


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
            raise FaceSwapError(f"--preview needs a display and an OpenCV build with GUI support: "
                                f"{str(e).strip().splitlines()[-1]}") from e
        self._shown = False

    @staticmethod
    def check_display() -> None:
        """Refuse early when there is no display (OpenCV's Qt backend would abort the process)."""
        if (sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
                and not os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("QT_QPA_PLATFORM")):
            raise FaceSwapError("--preview needs a display (DISPLAY / WAYLAND_DISPLAY is not set); "
                                "use --output FILE instead")

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


def run_frames(pipe: Pipeline, reader: InputSource, writer: VideoWriter | None, *, max_frames: int | None = None,
               preview: Preview | None = None, progress: bool = True, on_frame: FrameHook | None = None,
               keep_input: bool = False) -> RunStats:
    """Process every frame of ``reader`` into ``writer`` (and/or the preview window).

    Ctrl-C or q/Esc in the preview stop the loop; what was processed so far stays in the
    writer, which the caller closes.

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
        Counts and timings.
    """
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from obs_faceswap.io import prefetch

    stats = RunStats()
    total = reader.frame_count
    if max_frames is not None:
        total = min(total, max_frames) if total is not None else max_frames
    frames = prefetch(reader) if reader.kind == "video" else iter(reader)
    t_start = time.perf_counter()
    bar = tqdm(total=total, unit="frame", desc=Path(reader.name).name[:30], file=sys.stderr,
               disable=None if progress else True, dynamic_ncols=True, leave=False)
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
                stats.frames_with_faces += bool(report.faces)
                stats.frames_swapped += report.swapped > 0
                if on_frame is not None:
                    on_frame(frame.index, frame.image, out, report)
                if writer is not None:
                    writer.write(out)
                if preview is not None and not preview.show(out):
                    stats.stopped_by_user = True
                    break
                bar.update(1)
                now = time.perf_counter()
                if now - last_postfix > 0.5:
                    last_postfix = now
                    bar.set_postfix(fps=f"{stats.frames / (now - t_start):.1f}",
                                    faces=len(report.faces), refresh=False)
    except KeyboardInterrupt:
        stats.interrupted = True
    finally:
        bar.close()
        if hasattr(frames, "close"):
            frames.close()  # stops the reader thread
        stats.wall_s = time.perf_counter() - t_start
    return stats


# -- commands -------------------------------------------------------------------------------
def _check_output(reader: InputSource, output: Path) -> None:
    from obs_faceswap.io import IMAGE_OUTPUT_EXTS, VIDEO_OUTPUT_EXTS

    ext = output.suffix.lower()
    if reader.kind == "image" and ext not in IMAGE_OUTPUT_EXTS:
        raise ConfigError(f"the input is an image, so --output must end in {', '.join(IMAGE_OUTPUT_EXTS)}; "
                          f"got {output}")
    if reader.kind != "image" and ext not in VIDEO_OUTPUT_EXTS:
        raise ConfigError(f"the input is a video, so --output must end in {', '.join(VIDEO_OUTPUT_EXTS)}; "
                          f"got {output}")
    if reader.path is not None and output.resolve() == reader.path.resolve():
        raise ConfigError(f"--output {output} is the input file; choose another name")


def cmd_swap(args: argparse.Namespace) -> int:
    """``obs-faceswap swap``."""
    from obs_faceswap.io import VideoWriter, open_input
    from obs_faceswap.pipeline import Pipeline

    if not args.output and not args.preview:
        raise ConfigError("give --output FILE, --preview, or both")
    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.preview:
        Preview.check_display()
    config = build_config(args)
    store = make_store(args)
    output = Path(args.output) if args.output else None
    with open_input(args.input) as reader:
        if output is not None:
            _check_output(reader, output)
        log.info("input %r", reader)
        with Pipeline(config, store, source=args.source) as pipe:
            log.info("running on %s", pipe.provider)
            preview = Preview() if args.preview else None
            try:
                if reader.kind == "image":
                    return _swap_image(pipe, reader, output, preview)
                writer = None
                if output is not None:
                    assert reader.fps is not None
                    keep_audio = reader.path is not None and not args.no_audio and reader.has_audio
                    audio = reader.path if keep_audio else None
                    writer = VideoWriter(output, reader.size, reader.fps, audio_from=audio, crf=args.crf)
                # On an error the writer still finalises what was processed (see VideoWriter.__exit__).
                with writer if writer is not None else contextlib.nullcontext():
                    stats = run_frames(pipe, reader, writer, max_frames=args.max_frames, preview=preview,
                                       progress=not args.quiet)
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
        return EXIT_INTERRUPTED
    return EXIT_OK


def _swap_image(pipe: Pipeline, reader: InputSource, output: Path | None, preview: Preview | None) -> int:
    from obs_faceswap.io import write_image

    frame = next(iter(reader))
    t0 = time.perf_counter()
    out, report = pipe.process(frame.image, None)
    ms = (time.perf_counter() - t0) * 1000
    if not report.faces:
        log.warning("no face found in %s; the output is the unchanged input", reader.name)
    if output is not None:
        write_image(output, out)
        capped = f", {report.left_out} left out (--max-faces)" if report.left_out else ""
        print(f"wrote {output}: {len(report.faces)} face(s) found, {report.swapped} swapped{capped} ({ms:.0f} ms)")
    if preview is not None:
        preview.show(out, wait_ms=0)
    return EXIT_OK


def side_by_side(original: ImageBGR, swapped: ImageBGR,
                 labels: tuple[str, str] = ("original", "face swapped")) -> ImageBGR:
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
                    stats = run_frames(pipe, reader, writer, max_frames=args.max_frames, preview=preview,
                                       progress=not args.quiet, on_frame=keep_representative, keep_input=True)
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
    return EXIT_INTERRUPTED if stats.interrupted else EXIT_OK


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

    cfg = bench.BenchConfig(sizes=bench.parse_sizes(args.sizes), warmup=args.warmup, frames=args.frames,
                            repeats=args.repeats)
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
        name = e.name + (" *" if e.get("default") else "")
        rows.append((name, e.kind, e.role, short, e.license[:40], str(path) if path else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])
    print("* = fetched by `obs-faceswap models fetch` without arguments")
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
        names = [n for n, e in store.entries.items() if e.url]
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", 0)
    _setup_logging(verbose)
    try:
        result: int = args.func(args)
        return result
    except FaceSwapError as e:
        if verbose:
            log.exception("details")
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:  # disk full, permission denied, ... on the user's files
        if verbose:
            log.exception("details")
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

