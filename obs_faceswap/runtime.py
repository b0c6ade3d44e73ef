"""The one place that creates onnxruntime sessions.

Provider preference is TensorRT → CUDA → DirectML → CoreML → CPU, or what the configuration
names. A provider that is unavailable or fails to initialise falls back to the next one with
**one** warning naming the cause; if nothing can run the model, :class:`ProviderError`.

Thread pools fight over few cores: spinning is switched off (``allow_spinning = 0`` and
``OMP_WAIT_POLICY=PASSIVE`` set before onnxruntime is imported), which measured 10.6 ms →
13.2/19.9 ms per 1080p frame when left on (docs/performance-facts.md).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obs_faceswap.errors import ModelLoadError, ProviderError

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

log = logging.getLogger(__name__)

#: Short names accepted in configuration → onnxruntime provider names, in preference order.
PROVIDERS: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
AUTO_ORDER = ("tensorrt", "cuda", "directml", "coreml", "cpu")


@dataclass(frozen=True)
class RuntimeConfig:
    """How sessions are created.

    Attributes:
        providers: short provider names in preference order, or ``("auto",)`` for every
            available one in :data:`AUTO_ORDER`. ``"tensorrt"`` is only used when named.
        threads: intra-op threads per session; 0 = number of CPU cores, at most 4.
        device_id: GPU index for CUDA / TensorRT / DirectML.
    """

    providers: tuple[str, ...] = ("auto",)
    threads: int = 0
    device_id: int = 0

    def __post_init__(self) -> None:
        from obs_faceswap.errors import ConfigError

        for p in self.providers:
            if p != "auto" and p not in PROVIDERS:
                raise ConfigError(
                    f"unknown execution provider {p!r}; choose from auto, {', '.join(PROVIDERS)}"
                )
        if self.threads < 0:
            raise ConfigError(f"threads must be >= 0, got {self.threads}")


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
        return TimedSession(sess)
    raise ProviderError(f"no execution provider could run {path.name}: {last_error}")


def _looks_like_bad_model(text: str) -> bool:
    t = text.lower()
    return any(
        s in t
        for s in ("invalid_protobuf", "protobuf parsing failed", "invalid_graph", "load model from",
                  "no graph was found", "model_path", "unable to load")
    ) and "provider" not in t
