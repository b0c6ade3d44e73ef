"""The one place that creates onnxruntime sessions.

Provider preference is TensorRT → CUDA → DirectML → CoreML → CPU, or what the configuration
names. A provider that is unavailable or fails to initialise falls back to the next one with
**one** warning naming the cause; if nothing can run the model, :class:`ProviderError`.

Thread pools fight over few cores: spinning is switched off (``allow_spinning = 0`` here, and
``OMP_WAIT_POLICY=PASSIVE`` by :func:`set_process_environment`, which the engine's and the
CLI's entry points call before onnxruntime is imported), which measured 10.6 ms →
13.2/19.9 ms per 1080p frame when left on (docs/performance-facts.md). Importing this module
changes nothing process-wide: it is imported by library code, tests and (through the
configuration) the OBS script.

The settings types (:class:`~obs_faceswap.config.RuntimeConfig`, provider names) live in
:mod:`obs_faceswap.config`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from obs_faceswap.config import AUTO_ORDER, PROCESS_ENVIRONMENT, PROVIDERS, RuntimeConfig
from obs_faceswap.errors import ModelLoadError, ProviderError

log = logging.getLogger(__name__)

#: Name reported by sessions that run on OpenCV's DNN module.
OPENCV_PROVIDER = "OpenCV-DNN (CPU)"

__all__ = [
    "AUTO_ORDER", "OPENCV_PROVIDER", "PROVIDERS", "RuntimeConfig", "create_session", "inference_clock",
    "resolve_providers", "set_process_environment",
]


def set_process_environment() -> None:
    """Set the process-wide variables onnxruntime reads at import (thread-pool waiting).

    Call it from a program's entry point (the engine process, the CLI) before onnxruntime is
    imported; never from library code. Variables the user already set are kept.
    """
    for key, value in PROCESS_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


class InferenceClock(threading.local):
    """Per-thread total of time spent inside ``session.run`` (raw model inference).

    The pipeline resets it at the start of a frame and reads it at the end, which gives the
    "pipeline time / raw model time" ratio on exactly the inputs the pipeline used.
    """

    def __init__(self) -> None:
        self.ms = 0.0
        self.calls = 0

    def reset(self) -> None:
        self.ms = 0.0
        self.calls = 0


inference_clock = InferenceClock()


class TimedSession:
    """An ``onnxruntime.InferenceSession`` whose ``run`` adds its duration to :data:`inference_clock`."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def run(self, output_names: Any, input_feed: Any, run_options: Any = None) -> Any:
        t0 = time.perf_counter()
        try:
            return self._session.run(output_names, input_feed, run_options)
        finally:
            inference_clock.ms += (time.perf_counter() - t0) * 1000.0
            inference_clock.calls += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


_warned: set[str] = set()
_warn_lock = threading.Lock()
_dlls_preloaded = False


def _warn_once(key: str, msg: str) -> None:
    with _warn_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(msg)


def import_onnxruntime() -> Any:
    """Import onnxruntime, with a clear error when neither package is installed."""
    global _dlls_preloaded
    try:
        import onnxruntime
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ProviderError(
            "onnxruntime is not installed: pip install 'obs-faceswap[cpu]' (or [cuda] for NVIDIA GPUs)"
        ) from e
    if not _dlls_preloaded:
        _dlls_preloaded = True
        preload = getattr(onnxruntime, "preload_dlls", None)
        if preload is not None and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            try:  # onnxruntime >= 1.21: load CUDA/cuDNN from pip packages if present
                preload()
            except Exception as e:  # noqa: BLE001 - only a hint; session creation decides
                log.debug("onnxruntime.preload_dlls() failed: %s", e)
    onnxruntime.set_default_logger_severity(3)
    return onnxruntime


def resolve_providers(config: RuntimeConfig, available: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The (provider, options) list to try, most preferred first, always ending with CPU."""
    wanted = list(AUTO_ORDER[1:]) if config.providers == ("auto",) else list(config.providers)
    out: list[tuple[str, dict[str, Any]]] = []
    for short in wanted:
        if short == "auto":
            continue
        name = PROVIDERS[short]
        if name not in available:
            if config.providers != ("auto",) and short != "cpu":
                _warn_once(
                    f"unavailable:{name}",
                    f"execution provider {short} is not available in this onnxruntime build "
                    f"(available: {', '.join(available)}); falling back",
                )
            continue
        opts: dict[str, Any] = {}
        if short in ("cuda", "tensorrt", "directml"):
            opts["device_id"] = config.device_id
        if short == "cuda":
            opts["cudnn_conv_algo_search"] = "HEURISTIC"
        out.append((name, opts))
    if not any(n == "CPUExecutionProvider" for n, _ in out):
        out.append(("CPUExecutionProvider", {}))
    return out


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def session_options(config: RuntimeConfig) -> Any:
    ort = import_onnxruntime()
    so = ort.SessionOptions()
    so.intra_op_num_threads = config.threads or default_threads()
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def create_session(path: str | Path, config: RuntimeConfig | None = None) -> TimedSession:
    """Create an inference session for ``path`` with the configured provider preference.

    Args:
        path: an ``.onnx`` file.
        config: provider preference and threads; defaults to :class:`RuntimeConfig()`.

    Returns:
        A :class:`TimedSession` around an ``onnxruntime.InferenceSession``;
        ``session.get_providers()[0]`` is the provider used.

    Raises:
        ModelLoadError: onnxruntime cannot parse the file (corrupt or not ONNX).
        ProviderError: no provider, CPU included, could create the session.
    """
    config = config or RuntimeConfig()
    ort = import_onnxruntime()
    path = Path(path)
    if not path.is_file():
        from obs_faceswap.errors import ModelNotFoundError

        raise ModelNotFoundError(f"model file not found: {path}")
    candidates = resolve_providers(config, ort.get_available_providers())
    so = session_options(config)
    first_choice = candidates[0][0]
    last_error: Exception | None = None
    warned = False
    for i in range(len(candidates)):
        chain = candidates[i:]
        try:
            sess = ort.InferenceSession(
                str(path),
                sess_options=so,
                providers=[n for n, _ in chain],
                provider_options=[o for _, o in chain],
            )
        except Exception as e:  # noqa: BLE001 - onnxruntime raises plain RuntimeError/Fail
            text = str(e)
            if _looks_like_bad_model(text):
                raise ModelLoadError(
                    f"onnxruntime cannot load {path.name}: {text.splitlines()[0][:300]}. "
                    f"The file is probably corrupt or not an ONNX model: delete it and fetch it "
                    f"again (obs-faceswap models fetch)"
                ) from e
            last_error = e
            if chain[0][0] != "CPUExecutionProvider":
                warned = True
                _warn_once(
                    f"failed:{chain[0][0]}",
                    f"execution provider {chain[0][0]} failed to start ({text.splitlines()[0][:200]}); "
                    f"falling back to {chain[1][0] if len(chain) > 1 else 'nothing'}",
                )
            continue
        used = sess.get_providers()[0]
        if used != first_choice and not warned:  # onnxruntime fell back silently
            _warn_once(
                f"fallback:{first_choice}->{used}",
                f"execution provider {first_choice} could not be used for {path.name} "
                f"(missing CUDA/cuDNN libraries are the usual cause); running on {used}",
            )
        log.debug("session %s on %s", path.name, used)
        if used == "CPUExecutionProvider" and config.cpu_backend != "onnxruntime":
            alt = _opencv_session(path, sess, config)
            if alt is not None:
                return TimedSession(alt)
        return TimedSession(sess)
    raise ProviderError(f"no execution provider could run {path.name}: {last_error}")


def _looks_like_bad_model(text: str) -> bool:
    t = text.lower()
    return any(
        s in t
        for s in ("invalid_protobuf", "protobuf parsing failed", "invalid_graph", "load model from",
                  "no graph was found", "model_path", "unable to load")
    ) and "provider" not in t


class OpenCVSession:
    """A fixed-size model run by OpenCV's DNN module, behind the ``InferenceSession``
    interface the nets use (``run``, ``get_inputs``, ``get_outputs``, ``get_providers``).

    The onnxruntime session is kept for the model's metadata (names, shapes)."""

    def __init__(self, path: Path, meta: Any) -> None:
        import cv2

        self._meta = meta
        self._net = cv2.dnn.readNetFromONNX(str(path))  # OpenCV's own CPU backend by default
        self._outputs = [o.name for o in meta.get_outputs()]

    def run(self, output_names: Any, input_feed: Any, run_options: Any = None) -> Any:
        ((_, x),) = input_feed.items()
        self._net.setInput(x)
        # OpenCV 5 computes every output in one pass and refuses to name only some of them
        outs = dict(zip(self._outputs, self._net.forward(self._outputs), strict=True))
        return [outs[n] for n in (output_names or self._outputs)]

    def get_inputs(self) -> Any:
        return self._meta.get_inputs()

    def get_outputs(self) -> Any:
        return self._meta.get_outputs()

    def get_providers(self) -> list[str]:
        return [OPENCV_PROVIDER]


#: Outputs of the two backends must agree this closely (the models' own precision is ~1e-4).
_BACKEND_ATOL = 2e-3
_BACKEND_RUNS = 12
#: OpenCV is used under "auto" only when at least this much faster.
_BACKEND_GAIN = 1.2


def _opencv_session(path: Path, ort_session: Any, config: RuntimeConfig) -> OpenCVSession | None:
    """An OpenCV DNN session for ``path`` if the configuration allows it, the model has one
    fixed-size input, both backends agree on a random input and (for ``auto``) OpenCV is
    faster; else None (onnxruntime is used). Never raises: any trouble means onnxruntime."""
    import numpy as np

    inputs = ort_session.get_inputs()
    if len(inputs) != 1 or not all(isinstance(d, int) and d > 0 for d in inputs[0].shape):
        return None
    try:
        alt = OpenCVSession(path, ort_session)
        x = np.random.default_rng(0).random(inputs[0].shape, dtype=np.float32)
        feed = {inputs[0].name: x}
        names = [o.name for o in ort_session.get_outputs()]
        want = ort_session.run(names, feed)
        got = alt.run(names, feed)
        for a, b in zip(want, got, strict=True):
            a, b = np.asarray(a), np.asarray(b)
            if a.size != b.size or not np.allclose(a.ravel(), b.ravel(), atol=_BACKEND_ATOL, rtol=1e-3):
                log.debug("%s: OpenCV DNN output differs from onnxruntime; using onnxruntime", path.name)
                return None
        if config.cpu_backend == "opencv":
            return alt

        def best_of(run: Any) -> float:
            times = []
            for _ in range(_BACKEND_RUNS):
                t0 = time.perf_counter()
                run(names, feed)
                times.append(time.perf_counter() - t0)
            return sorted(times)[len(times) // 3]

        t_ort, t_cv = best_of(ort_session.run), best_of(alt.run)
    except Exception as e:  # noqa: BLE001 - an unsupported layer, an old OpenCV: use onnxruntime
        log.debug("%s: OpenCV DNN cannot run it (%s); using onnxruntime", path.name, e)
        return None
    if t_ort < _BACKEND_GAIN * t_cv:
        return None
    log.info("%s runs on OpenCV DNN: %.1f ms vs %.1f ms on onnxruntime (CPU)", path.name,
             t_cv * 1000, t_ort * 1000)
    return alt
