"""The neural swap path on an NVIDIA GPU, in one command: per-stage ms, FPS and GPU busy %.

Builds the inswapper_128 stand-in (:mod:`tests.bench.bench_model`: its exact signature, 9.8 GFLOPs
of random-weight convolutions), then for each GPU variant — CUDA with I/O binding, CUDA with
CUDA graphs, TensorRT (fp16 engines) when this onnxruntime has it — runs the same measurement as
``obs-faceswap bench --model ... --provider ...`` at each size, while ``nvidia-smi`` samples the
GPU's utilisation every 100 ms. Only samples taken during a size's timed frames count towards
its busy %. Prints one table; ``--json FILE`` keeps every figure.

Usage (from the repository root, on the GPU machine; ``tests/bench/gpu_check.sh`` installs the
wheels first)::

    OBS_FACESWAP_MODELS=... OBS_FACESWAP_MEDIA=... python -m tests.bench.gpu_check [--sizes 720p,1080p]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from obs_faceswap import bench
from obs_faceswap.config import NeuralSwapperConfig, PipelineConfig, RuntimeConfig, SwapperConfig
from obs_faceswap.models import ModelStore
from obs_faceswap.runtime import import_onnxruntime, set_process_environment
from tests.bench import bench_model

#: (label, runtime settings) of each variant; TensorRT only where the provider exists.
VARIANTS: tuple[tuple[str, RuntimeConfig], ...] = (
    ("cuda", RuntimeConfig(providers=("cuda",), cpu_backend="onnxruntime")),
    ("cuda+graph", RuntimeConfig(providers=("cuda",), cpu_backend="onnxruntime", cuda_graph=True)),
    ("tensorrt-fp16", RuntimeConfig(providers=("tensorrt", "cuda"), cpu_backend="onnxruntime", fp16=True)),
)
#: Not run by default: the same measurement on the CPU (a smoke test of this script anywhere).
CPU_VARIANT = ("cpu", RuntimeConfig(providers=("cpu",)))


class GpuSampler:
    """``nvidia-smi`` utilisation samples (every 100 ms), stamped with ``time.perf_counter()``."""

    def __init__(self, device_id: int = 0) -> None:
        self.samples: list[tuple[float, float]] = []
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self.device_id = device_id

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi") is None:
            return self
        self._proc = subprocess.Popen(
            [
                "nvidia-smi",
                "-i",
                str(self.device_id),
                "--query-gpu=utilization.gpu",
                "--format=csv,noheader,nounits",
                "-lms",
                "100",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self.samples.append((time.perf_counter(), float(line.strip())))
            except ValueError:
                continue

    def busy_pct(self, t0: float, t1: float) -> float | None:
        """Mean utilisation of the samples taken between ``t0`` and ``t1`` (None without any)."""
        inside = [u for t, u in self.samples if t0 <= t <= t1]
        return round(float(np.mean(inside)), 1) if inside else None

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            finally:
                if self._thread is not None:
                    self._thread.join(timeout=5)


def card_name(device_id: int = 0) -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "-i", str(device_id), "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return out.stdout.strip() or "unknown GPU"
    except (OSError, subprocess.SubprocessError):
        return "no nvidia-smi"


def run_variant(
    label: str,
    runtime: RuntimeConfig,
    model: Path,
    recognizer: Path,
    store: ModelStore,
    cfg: bench.BenchConfig,
    clip: list[Any],
    fps: float,
    sampler: GpuSampler,
) -> list[dict[str, Any]]:
    """Every size of one variant: bench's per-size figures plus the GPU busy % and the provider used."""
    from obs_faceswap.pipeline import Pipeline

    neural = NeuralSwapperConfig(recognizer=str(recognizer))
    config = PipelineConfig(swapper=SwapperConfig(kind="model", model=str(model), neural=neural), runtime=runtime)
    rows = []
    with Pipeline(config, store) as pipe:
        pipe.set_source(store.path(cfg.source))
        runner = getattr(pipe.swapper, "_runner", None)
        swap_provider = runner.provider if runner is not None else "?"
        for name, width, height in cfg.sizes:
            t0 = time.perf_counter()
            r = bench._bench_size(pipe, clip, fps, name, width, height, cfg, None)
            t1 = time.perf_counter()
            # the warm-up frames come first: count only the timed part (its share of the wall time)
            timed = cfg.frames * cfg.repeats / (cfg.warmup + cfg.frames * cfg.repeats)
            r["gpu_busy_pct"] = sampler.busy_pct(t1 - (t1 - t0) * timed, t1)
            r["variant"], r["landmark_provider"], r["swap_provider"] = label, pipe.provider, swap_provider
            rows.append(r)
    latency = bench.model_latency(str(model), dataclasses.replace(runtime, providers=runtime.providers[:1]))
    for r in rows:
        r["model_alone"] = latency
    return rows


def format_rows(card: str, rows: list[dict[str, Any]]) -> str:
    head = ["variant", "size", "swap on", "detect", "landmarks", "swap", "merge", "total ms", "FPS", "GPU busy %"]
    body = []
    for r in rows:
        st = r["stages"]

        def ms(stage: str, st: dict[str, Any] = st) -> str:
            return f"{st[stage]['per_frame_ms']:.2f}" if stage in st else "-"

        busy = r.get("gpu_busy_pct")
        body.append(
            [
                r["variant"],
                r["name"],
                r["swap_provider"].replace("ExecutionProvider", ""),
                ms("detect"),
                ms("landmarks"),
                ms("swap"),
                ms("merge"),
                f"{r['total_ms']['median_ms']:.2f}",
                f"{r['fps']:.1f}",
                "-" if busy is None else f"{busy:.0f}",
            ]
        )
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [f"GPU: {card}", "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    lines.append(
        "stage columns: ms per frame (averaged over all timed frames, so detect every k-th frame "
        "counts 1/k); total: median per frame"
    )
    seen = set()
    for r in rows:
        for m in r["model_alone"]:
            key = (r["variant"], m["provider"])
            if key not in seen:
                seen.add(key)
                what = m.get("error") or f"{m['median_ms']:.2f} ms median"
                lines.append(f"swap model alone, {r['variant']} on {m['provider']}: {what}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", default="720p,1080p")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument(
        "--variants",
        default=",".join(v for v, _ in VARIANTS),
        help="comma list of cuda, cuda+graph, tensorrt-fp16 (and cpu: a smoke test)",
    )
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    set_process_environment()
    ort = import_onnxruntime()
    available = ort.get_available_providers()
    print(f"onnxruntime {ort.__version__}: {', '.join(available)}", flush=True)
    wanted = set(args.variants.split(","))
    variants = [(lbl, rt) for lbl, rt in (*VARIANTS, CPU_VARIANT) if lbl in wanted]
    if "TensorrtExecutionProvider" not in available:
        variants = [(lbl, rt) for lbl, rt in variants if "tensorrt" not in rt.providers]
    if "CUDAExecutionProvider" not in available and wanted != {"cpu"}:
        print("CUDAExecutionProvider is not available: install onnxruntime-gpu (and CUDA/cuDNN); nothing to check")
        return 2
    cfg = bench.BenchConfig(
        sizes=bench.parse_sizes(args.sizes), warmup=args.warmup, frames=args.frames, repeats=args.repeats
    )
    store = ModelStore()
    clip, fps = bench.load_clip(str(store.path(cfg.clip)), cfg.warmup + cfg.frames * cfg.repeats)
    card = card_name()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d, GpuSampler() as sampler:
        model, recognizer, gflops = bench_model.build(Path(d))
        print(f"stand-in swap model: {gflops:.2f} GFLOPs per face; {card}", flush=True)
        for label, runtime in variants:
            t = time.perf_counter()
            try:
                rows += run_variant(label, runtime, model, recognizer, store, cfg, clip, fps, sampler)
            except Exception as e:  # noqa: BLE001 - one variant failing must not hide the others
                print(f"{label}: failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}", flush=True)
                continue
            print(f"{label}: done in {time.perf_counter() - t:.0f} s", flush=True)
    print(format_rows(card, rows))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"card": card, "onnxruntime": ort.__version__, "gflops": gflops, "rows": rows}, indent=1)
        )
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
