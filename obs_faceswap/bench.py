"""``obs-faceswap bench``: per-stage timings, end-to-end FPS and model-time overhead.

The clip (``dfl_Obama_speaking.mp4``, one talking face) is decoded once into memory, then
each benchmark size is produced by scaling every frame to cover the target size and
cropping the centre (the face stays undistorted). Decoding and scaling are outside the
timed region; only :meth:`Pipeline.process` is timed, with the pipeline working in place as
the engine does. Each size starts with ``warmup`` untimed frames (JIT compilation, session
warm-up, tracker lock-on), then ``repeats`` runs of ``frames`` timed frames. Frames are
played forwards then backwards when more are needed than the clip has, so there is no
jump cut that would restart tracking.

Reported per size (like opencv_zoo's ``benchmark/``: one config, median and spread):

* per-stage median and p90 over the frames where the stage ran, and how often it ran;
* end-to-end FPS: timed frames / timed seconds (median of the repeats, and each repeat);
* ``ratio``: pipeline time / raw onnxruntime inference time on the same frames (the time
  spent inside ``session.run``, from the report's ``inference`` entry);
* the execution provider and the machine.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from obs_faceswap.config import PipelineConfig
from obs_faceswap.errors import ConfigError, InputError
from obs_faceswap.models import ModelStore
from obs_faceswap.types import ImageBGR

log = logging.getLogger(__name__)

#: Named sizes (width, height), 16:9.
SIZES: dict[str, tuple[int, int]] = {
    "360p": (640, 360),
    "480p": (854, 480),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "1440p": (2560, 1440),
    "2160p": (3840, 2160),
}
#: The issue's targets with one face: (minimum FPS, goal FPS) per size; pipeline/model ratio.
FPS_TARGETS: dict[str, tuple[float, float]] = {"720p": (60.0, 100.0), "1080p": (45.0, 80.0)}
RATIO_TARGET = 1.3
# Stages shown first, in pipeline order; any other stage the report has follows.
STAGE_ORDER = ("detect", "landmarks", "smooth", "track", "select", "swap", "merge", "badge")


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark's settings.

    Attributes:
        sizes: ``(name, width, height)`` per measured size.
        warmup: untimed frames before each size.
        frames: timed frames per repeat.
        repeats: timed runs per size.
        source: manifest name of the source photo.
        clip: manifest name of the clip.
    """

    sizes: tuple[tuple[str, int, int], ...] = tuple((k, *SIZES[k]) for k in ("480p", "720p", "1080p"))
    warmup: int = 30
    frames: int = 100
    repeats: int = 3
    source: str = "astronaut"
    clip: str = "obama"

    def __post_init__(self) -> None:
        if not self.sizes:
            raise ConfigError("bench needs at least one size")
        if self.warmup < 0 or self.frames < 1 or self.repeats < 1:
            raise ConfigError(
                f"bench needs warmup >= 0, frames >= 1, repeats >= 1; got {self.warmup}, {self.frames}, {self.repeats}"
            )


def parse_sizes(text: str) -> tuple[tuple[str, int, int], ...]:
    """``"480p,720p,1920x1080"`` → ``(("480p", 854, 480), ("720p", 1280, 720), ("1920x1080", 1920, 1080))``.

    Raises:
        ConfigError: an unknown name or a malformed ``WxH``.
    """
    out = []
    for item in (t.strip().lower() for t in text.split(",")):
        if not item:
            continue
        if item in SIZES:
            out.append((item, *SIZES[item]))
            continue
        m = re.fullmatch(r"(\d{2,5})x(\d{2,5})", item)
        if not m:
            raise ConfigError(f"unknown size {item!r}: use {', '.join(SIZES)} or WxH")
        out.append((item, int(m.group(1)), int(m.group(2))))
    if not out:
        raise ConfigError("no sizes given")
    return tuple(out)


def scale_cover(image: ImageBGR, width: int, height: int) -> ImageBGR:
    """Scale ``image`` uniformly to cover ``width``×``height`` and crop the centre."""
    import cv2

    h, w = image.shape[:2]
    s = max(width / w, height / h)
    sw, sh = max(width, round(w * s)), max(height, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    big = cv2.resize(image, (sw, sh), interpolation=interp)
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    return np.ascontiguousarray(big[y0 : y0 + height, x0 : x0 + width])


def ping_pong(n_available: int, n_needed: int, start: int = 0) -> list[int]:
    """Frame indices ``0, 1, ..., n-1, n-2, ..., 0, 1, ...`` from position ``start``."""
    if n_available < 1:
        return []
    if n_available == 1:
        return [0] * n_needed
    period = 2 * n_available - 2
    out = []
    for k in range(start, start + n_needed):
        p = k % period
        out.append(p if p < n_available else period - p)
    return out


def load_clip(path: str, max_frames: int) -> tuple[list[ImageBGR], float]:
    """Decode up to ``max_frames`` frames (timing excluded) and the clip's frame rate."""
    from obs_faceswap.io import open_input

    frames: list[ImageBGR] = []
    with open_input(path) as reader:
        fps = float(reader.fps or 30)
        for f in reader:
            frames.append(f.image)
            if len(frames) >= max_frames:
                break
    if not frames:  # pragma: no cover - open_input already refuses empty videos
        raise InputError(f"{path} has no frames")
    return frames, fps


def _stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, np.float64)
    return {
        "median_ms": round(float(np.median(a)), 3),
        "p90_ms": round(float(np.percentile(a, 90)), 3),
        "min_ms": round(float(a.min()), 3),
        "mean_ms": round(float(a.mean()), 3),
    }


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    import cv2

    from obs_faceswap.runtime import import_onnxruntime

    ort = import_onnxruntime()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "onnxruntime": ort.__version__,
        "available_providers": list(ort.get_available_providers()),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
    }


def run_benchmark(
    store: ModelStore, bench: BenchConfig | None = None, config: PipelineConfig | None = None, *, progress: bool = False
) -> dict[str, Any]:
    """Run the benchmark and return its results as plain data (what ``--json`` prints).

    Args:
        store: where models and media come from.
        bench: sizes, warm-up and repeats.
        config: pipeline settings (defaults: one face, detector every 10th frame).
        progress: log a line per size at INFO level and show a tqdm bar.

    Returns:
        ``{"machine", "provider", "config", "sizes": [{"name", "width", "height", "fps",
        "fps_repeats", "total_ms", "inference_ms", "ratio", "stages", "faces_pct", ...}]}``.

    Raises:
        ModelError / InputError: a model or the media cannot be used.
        NoFaceError: the source photo has no face.
    """
    from obs_faceswap.pipeline import Pipeline

    bench = bench or BenchConfig()
    config = config or PipelineConfig()
    per_size = bench.warmup + bench.frames * bench.repeats
    clip, fps = load_clip(str(store.path(bench.clip)), per_size)
    source = store.path(bench.source)

    results: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with Pipeline(config, store) as pipe:
        pipe.set_source(source)
        source_ms = (time.perf_counter() - t0) * 1000
        provider = pipe.provider
        bar = None
        if progress:
            import sys

            from tqdm import tqdm

            bar = tqdm(total=per_size * len(bench.sizes), unit="frame", file=sys.stderr, leave=False, disable=None)
        try:
            for name, width, height in bench.sizes:
                results.append(_bench_size(pipe, clip, fps, name, width, height, bench, bar))
                log.info("%s: %.1f FPS", name, results[-1]["fps"])
        finally:
            if bar is not None:
                bar.close()
    latency = None
    if config.swapper.kind == "model" and config.swapper.model:
        latency = model_latency(config.swapper.model, config.runtime)
    return {
        "machine": machine_info(),
        "provider": provider,
        "model_latency": latency,
        "bench": {k: v for k, v in asdict(bench).items() if k != "sizes"},
        "pipeline_config": _config_summary(config),
        "source_setup_ms": round(source_ms, 1),
        "targets": {
            "fps": {k: {"minimum": v[0], "goal": v[1]} for k, v in FPS_TARGETS.items()},
            "ratio_max": RATIO_TARGET,
        },
        "sizes": results,
    }


def model_latency(path: str, runtime: Any, *, warmup: int = 3, runs: int = 20) -> list[dict[str, Any]]:
    """Raw latency of the swap model alone on every provider this onnxruntime offers here.

    Each provider gets its own session (fixed shapes, I/O binding on CUDA/TensorRT, exactly as
    the swapper runs it) and random inputs of the declared shapes; a provider that falls back to
    another is reported as such, not timed twice.

    Returns:
        ``[{"provider", "median_ms", "p90_ms", "min_ms"} or {"provider", "error"}]``.
    """
    import dataclasses

    from obs_faceswap.config import AUTO_ORDER, PROVIDERS
    from obs_faceswap.runtime import FixedShapeRunner, create_session, import_onnxruntime

    available = import_onnxruntime().get_available_providers()
    out: list[dict[str, Any]] = []
    for short in ("tensorrt", *AUTO_ORDER[1:]):
        name = PROVIDERS[short]
        if name not in available:
            continue
        cfg = dataclasses.replace(runtime, providers=(short,), cpu_backend="onnxruntime")
        try:
            sess = create_session(path, cfg)
            used = str(sess.get_providers()[0])
            if used != name:
                out.append({"provider": name, "error": f"fell back to {used}"})
                continue
            rng = np.random.default_rng(0)
            feed = {}
            for i in sess.get_inputs():
                shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
                dtype = np.float16 if "float16" in str(i.type) else np.float32
                feed[i.name] = rng.random(shape, dtype=np.float32).astype(dtype)
            runner = FixedShapeRunner(sess, cfg, path)
            for _ in range(warmup):
                runner.run(feed)
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                runner.run(feed)
                times.append((time.perf_counter() - t) * 1000)
            out.append({"provider": name, **_stats(times)})
        except Exception as e:  # noqa: BLE001 - a provider that cannot run the model is a result too
            out.append({"provider": name, "error": str(e).splitlines()[0][:200]})
    return out


def _config_summary(config: PipelineConfig) -> dict[str, Any]:
    return {
        "detector": config.detector.kind,
        "detector_input": config.detector.input_size,
        "landmarks": config.landmarks.kind,
        "detect_interval": config.tracking.detect_interval,
        "selection": config.selection.mode,
        "swapper": config.swapper.kind,
        "model": config.swapper.model,
        "color": config.swapper.photo.color.mode,
        "blend": config.blend.mode,
        "badge": config.badge.enabled,
        "providers": list(config.runtime.providers),
        "threads": config.runtime.threads,
    }


def _bench_size(
    pipe: Any, clip: list[ImageBGR], fps: float, name: str, width: int, height: int, bench: BenchConfig, bar: Any
) -> dict[str, Any]:
    pipe.reset()
    order = ping_pong(len(clip), bench.warmup + bench.frames * bench.repeats)
    for k in range(bench.warmup):
        frame = scale_cover(clip[order[k]], width, height)
        pipe.process(frame, k / fps, inplace=True)
        if bar is not None:
            bar.update(1)

    wall: list[float] = []
    stages: dict[str, list[float]] = {}
    inference: list[float] = []
    faces = swapped = 0
    repeat_fps: list[float] = []
    k = bench.warmup
    for _ in range(bench.repeats):
        run_s = 0.0
        for _ in range(bench.frames):
            frame = scale_cover(clip[order[k]], width, height)  # not timed
            t = time.perf_counter()
            _, report = pipe.process(frame, k / fps, inplace=True)
            dt = time.perf_counter() - t
            k += 1
            run_s += dt
            wall.append(dt * 1000)
            for stage, ms in report.timings_ms.items():
                if stage == "inference":
                    inference.append(ms)
                elif stage != "total":
                    stages.setdefault(stage, []).append(ms)
            faces += bool(report.faces)
            swapped += report.swapped > 0
            if bar is not None:
                bar.update(1)
        repeat_fps.append(bench.frames / run_s)

    n = len(wall)
    ordered = [s for s in STAGE_ORDER if s in stages] + sorted(s for s in stages if s not in STAGE_ORDER)
    stage_stats = {}
    for s in ordered:
        st = _stats(stages[s])
        st["ran_pct"] = round(100.0 * len(stages[s]) / n, 1)
        st["per_frame_ms"] = round(sum(stages[s]) / n, 3)  # what it adds to the average frame
        stage_stats[s] = st
    total_wall = sum(wall)
    total_inf = sum(inference)
    return {
        "name": name,
        "width": width,
        "height": height,
        "frames": n,
        "fps": round(float(np.median(repeat_fps)), 2),
        "fps_repeats": [round(f, 2) for f in repeat_fps],
        "total_ms": _stats(wall),
        "inference_ms": _stats(inference) if inference else None,
        "ratio": round(total_wall / total_inf, 3) if total_inf > 0 else None,
        "stages": stage_stats,
        "faces_pct": round(100.0 * faces / n, 1),
        "swapped_pct": round(100.0 * swapped / n, 1),
    }


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report: a stage × size table of ``median / p90`` ms."""
    sizes = result["sizes"]
    stages: list[str] = []
    for r in sizes:
        stages += [s for s in r["stages"] if s not in stages]
    head = ["per frame (ms), median / p90"] + [f"{r['name']} {r['width']}x{r['height']}" for r in sizes]
    rows: list[list[str]] = []
    for s in stages:
        row = [s]
        for r in sizes:
            st = r["stages"].get(s)
            if st is None:
                row.append("-")
            else:
                ran = "" if st["ran_pct"] >= 99.5 else f" ({st['ran_pct']:.0f}% of frames)"
                row.append(f"{st['median_ms']:.2f} / {st['p90_ms']:.2f}{ran}")
        rows.append(row)
    rows.append(["end to end"] + [f"{r['total_ms']['median_ms']:.2f} / {r['total_ms']['p90_ms']:.2f}" for r in sizes])
    rows.append(
        ["raw model inference"]
        + [
            f"{r['inference_ms']['median_ms']:.2f} / {r['inference_ms']['p90_ms']:.2f}" if r["inference_ms"] else "-"
            for r in sizes
        ]
    )
    rows.append(["FPS (median of repeats)"] + [f"{r['fps']:.1f}" + _target_mark(r["name"], r["fps"]) for r in sizes])
    rows.append(
        ["pipeline / model time"]
        + [
            (f"{r['ratio']:.2f}" + ("" if r["ratio"] <= RATIO_TARGET else " (> 1.3)")) if r["ratio"] else "-"
            for r in sizes
        ]
    )
    rows.append(["frames with a face"] + [f"{r['faces_pct']:.0f}%" for r in sizes])
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    m = result["machine"]
    b = result["bench"]
    if result.get("model_latency"):
        lines.append("")
        lines.append(f"swap model alone ({result['pipeline_config'].get('model')}), per provider:")
        for row in result["model_latency"]:
            if "error" in row:
                lines.append(f"  {row['provider']}: {row['error']}")
            else:
                lines.append(
                    f"  {row['provider']}: {row['median_ms']:.2f} ms median, {row['p90_ms']:.2f} p90 "
                    f"({1000 / row['median_ms']:.0f} inferences/s)"
                )
    lines.append("")
    lines.append(
        f"provider {result['provider']}; {m['cpu']} ({m['cpu_count']} cores); onnxruntime "
        f"{m['onnxruntime']}, OpenCV {m['opencv']}"
    )
    lines.append(
        f"{b['warmup']} warm-up + {b['repeats']} x {b['frames']} timed frames per size; "
        f"decoding excluded; source photo set-up {result['source_setup_ms']:.0f} ms"
    )
    lines.append(
        "targets (one face): >= 60 FPS at 720p (goal 100), >= 45 at 1080p (goal 80); "
        f"pipeline / model time < {RATIO_TARGET}"
    )
    return "\n".join(lines)


def _target_mark(name: str, fps: float) -> str:
    if name not in FPS_TARGETS:
        return ""
    lo, goal = FPS_TARGETS[name]
    return " (goal met)" if fps >= goal else " (target met)" if fps >= lo else f" (below {lo:.0f})"
