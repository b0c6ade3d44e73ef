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
    "OPENCV_PROVIDER",
    "create_session",
    "inference_clock",
    "resolve_providers",
    "set_process_environment",
    # GPU providers and fixed-shape swap models
    "FixedShapeRunner",
    "cuda_requirements",
    "explain_cuda_failure",
    "missing_cuda_libraries",
    "output_is_broken",
    "provider_options",
    "upcast_fp16_model",
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

    def run_with_iobinding(self, binding: Any, run_options: Any = None) -> None:
        t0 = time.perf_counter()
        try:
            self._session.run_with_iobinding(binding, run_options)
        finally:
            inference_clock.ms += (time.perf_counter() - t0) * 1000.0
            inference_clock.calls += 1

    @property
    def inner(self) -> Any:
        """The wrapped session."""
        return self._session

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
        out.append((name, provider_options(short, config)))
    if not any(n == "CPUExecutionProvider" for n, _ in out):
        out.append(("CPUExecutionProvider", {}))
    return out


def trt_cache_dir(config: RuntimeConfig) -> Path:
    """Where TensorRT keeps its engine and timing caches."""
    if config.trt_cache:
        return Path(config.trt_cache)
    from obs_faceswap.models import default_cache_dir

    return default_cache_dir() / "tensorrt"


def provider_options(short: str, config: RuntimeConfig, *, cuda_graph: bool = False) -> dict[str, Any]:
    """onnxruntime provider options for the short provider name ``short``.

    TensorRT: engine and timing caches on disk (building an engine takes minutes), fp16 when
    allowed. CUDA: the configured device, heuristic cuDNN algorithm search (exhaustive search
    costs seconds per new shape), and CUDA graphs for fixed-shape models run through I/O
    binding (:class:`FixedShapeRunner`). DirectML: the device. CoreML: its defaults (its option
    names changed in onnxruntime 1.20; an unknown one would make it fail).
    """
    opts: dict[str, Any] = {}
    if short in ("cuda", "tensorrt", "directml"):
        opts["device_id"] = config.device_id
    if short == "cuda":
        opts["cudnn_conv_algo_search"] = "HEURISTIC"
        opts["do_copy_in_default_stream"] = True
        if cuda_graph:
            opts["enable_cuda_graph"] = True
    elif short == "tensorrt":
        cache = str(trt_cache_dir(config))
        opts.update(
            {
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": cache,
                "trt_timing_cache_enable": True,
                "trt_timing_cache_path": cache,
                "trt_fp16_enable": bool(config.fp16),
                "trt_max_workspace_size": 2 << 30,
            }
        )
    return opts


#: CUDA and cuDNN major versions each onnxruntime-gpu release line is built for (its pip
#: package's default build), newest first: (minimum onnxruntime version, CUDA, cuDNN).
CUDA_REQUIREMENTS: tuple[tuple[tuple[int, int], str, str], ...] = (
    ((1, 19), "12", "9"),
    ((1, 18), "11.8", "8.9"),
    ((1, 17), "11.8", "8.9"),
    ((1, 15), "11.8", "8"),
    ((1, 0), "11", "8"),
)


def cuda_requirements(ort_version: str) -> tuple[str, str]:
    """``(CUDA, cuDNN)`` versions that onnxruntime-gpu ``ort_version`` needs."""
    try:
        major, minor = (int(x) for x in ort_version.split(".")[:2])
    except ValueError:
        return CUDA_REQUIREMENTS[0][1], CUDA_REQUIREMENTS[0][2]
    for (ma, mi), cuda, cudnn in CUDA_REQUIREMENTS:
        if (major, minor) >= (ma, mi):
            return cuda, cudnn
    return CUDA_REQUIREMENTS[-1][1], CUDA_REQUIREMENTS[-1][2]


def cuda_library_names(ort_version: str, platform: str) -> list[str]:
    """The shared libraries the CUDA provider of ``ort_version`` loads, named as on ``platform``."""
    cuda, cudnn = cuda_requirements(ort_version)
    c, d = cuda.split(".")[0], cudnn.split(".")[0]
    if platform.startswith("win"):
        return [f"cudart64_{c}.dll", f"cublas64_{c}.dll", f"cublasLt64_{c}.dll", f"cudnn64_{d}.dll"]
    return [f"libcudart.so.{c}", f"libcublas.so.{c}", f"libcublasLt.so.{c}", f"libcudnn.so.{d}"]


def _can_load(name: str) -> bool:
    import ctypes

    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def missing_cuda_libraries(ort_version: str, platform: str | None = None, loader: Any = None) -> list[str]:
    """Which of :func:`cuda_library_names` cannot be loaded here (``loader(name) -> bool``)."""
    import sys

    load = loader or _can_load
    return [n for n in cuda_library_names(ort_version, platform or sys.platform) if not load(n)]


def explain_cuda_failure(error: str, ort_version: str, missing: list[str] | None = None) -> str:
    """A message for a CUDA/TensorRT provider that failed: which library is missing and what
    this onnxruntime needs.

    Args:
        error: onnxruntime's text (may be empty when it fell back silently).
        ort_version: ``onnxruntime.__version__``.
        missing: libraries known to be missing (see :func:`missing_cuda_libraries`).
    """
    import re

    cuda, cudnn = cuda_requirements(ort_version)
    named = re.findall(r"(lib[\w]+\.so(?:\.[\d]+)*|[\w]+64_[\d]+\.dll)", error)
    libs = list(dict.fromkeys([*named, *(missing or [])]))
    if "error 126" in error.lower() and not libs:
        libs = ["a CUDA or cuDNN DLL (LoadLibrary error 126)"]
    what = f"missing {', '.join(libs)}" if libs else "CUDA or cuDNN could not be loaded"
    return (
        f"{what}. onnxruntime-gpu {ort_version} needs CUDA {cuda}.x and cuDNN {cudnn}.x: install them "
        f"(or `pip install nvidia-cudnn-cu{cuda.split('.')[0]} nvidia-cublas-cu{cuda.split('.')[0]}`, which "
        f"onnxruntime.preload_dlls() finds), or choose --provider cpu"
    )


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


def create_session(
    path: str | Path, config: RuntimeConfig | None = None, *, model_bytes: bytes | None = None, cuda_graph: bool = False
) -> TimedSession:
    """Create an inference session for ``path`` with the configured provider preference.

    Args:
        path: an ``.onnx`` file.
        config: provider preference and threads; defaults to :class:`RuntimeConfig()`.
        model_bytes: the model already in memory (e.g. an fp16 model converted to fp32);
            ``path`` then only names it in messages.
        cuda_graph: capture the model as a CUDA graph on the CUDA provider (fixed shapes, run
            through :class:`FixedShapeRunner` only).

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
    if model_bytes is None and not path.is_file():
        from obs_faceswap.errors import ModelNotFoundError

        raise ModelNotFoundError(f"model file not found: {path}")
    candidates = resolve_providers(config, ort.get_available_providers())
    if cuda_graph:
        candidates = [(n, {**o, "enable_cuda_graph": True} if n == PROVIDERS["cuda"] else o) for n, o in candidates]
    so = session_options(config)
    if any(n == PROVIDERS["directml"] for n, _ in candidates):
        so.enable_mem_pattern = False  # DirectML refuses sessions with memory patterns on
    first_choice = candidates[0][0]
    last_error: Exception | None = None
    warned = False
    for i in range(len(candidates)):
        chain = candidates[i:]
        try:
            sess = ort.InferenceSession(
                model_bytes if model_bytes is not None else str(path),
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
                why = text.splitlines()[0][:200] if text else "no reason given"
                if chain[0][0] in (PROVIDERS["cuda"], PROVIDERS["tensorrt"]):
                    version = str(ort.__version__)
                    why = f"{why}; {explain_cuda_failure(text, version, missing_cuda_libraries(version))}"
                _warn_once(
                    f"failed:{chain[0][0]}",
                    f"execution provider {chain[0][0]} failed to start ({why}); "
                    f"falling back to {chain[1][0] if len(chain) > 1 else 'nothing'}",
                )
            continue
        used = sess.get_providers()[0]
        if used != first_choice and not warned:  # onnxruntime fell back silently
            cause = "missing CUDA/cuDNN libraries are the usual cause"
            if first_choice in (PROVIDERS["cuda"], PROVIDERS["tensorrt"]):
                version = str(ort.__version__)
                cause = explain_cuda_failure("", version, missing_cuda_libraries(version))
            _warn_once(
                f"fallback:{first_choice}->{used}",
                f"execution provider {first_choice} could not be used for {path.name} ({cause}); running on {used}",
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
    return (
        any(
            s in t
            for s in (
                "invalid_protobuf",
                "protobuf parsing failed",
                "invalid_graph",
                "load model from",
                "no graph was found",
                "model_path",
                "unable to load",
            )
        )
        and "provider" not in t
    )


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
    log.info("%s runs on OpenCV DNN: %.1f ms vs %.1f ms on onnxruntime (CPU)", path.name, t_cv * 1000, t_ort * 1000)
    return alt


# --- fixed-shape models on a GPU: I/O binding, CUDA graphs, fp16 fallback ----------------

#: Providers whose tensors live on a CUDA device.
_CUDA_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


def output_is_broken(x: Any) -> bool:
    """True for what a failing fp16 model produces: any NaN/inf, or an all-zero (black) output."""
    import numpy as np

    a = np.asarray(x)
    if a.size == 0:
        return True
    if not np.isfinite(a).all():
        return True
    return not bool(np.any(a))


def upcast_fp16_model(path: str | Path) -> bytes:
    """The model at ``path`` with every float16 tensor, input, output and cast made float32.

    The fp32 fallback for a half-precision file (``inswapper_128_fp16.onnx``) whose output is
    NaN or black on a GPU: same weights, computed in single precision.

    Raises:
        ModelLoadError: the ``onnx`` package cannot read the file.
    """
    import numpy as np

    try:
        import onnx
        from onnx import TensorProto, numpy_helper
    except ImportError as e:  # pragma: no cover - onnx is a dependency
        raise ModelLoadError("the 'onnx' package is needed for the fp32 fallback: pip install onnx") from e
    try:
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and onnx's own errors
        raise ModelLoadError(f"cannot parse {Path(path).name} as ONNX: {e}") from e
    f16, f32 = TensorProto.FLOAT16, TensorProto.FLOAT

    def fix_tensor(t: Any) -> None:
        if t.data_type == f16:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name))

    g = model.graph
    for t in g.initializer:
        fix_tensor(t)
    for vi in (*g.input, *g.output, *g.value_info):
        if vi.type.tensor_type.elem_type == f16:
            vi.type.tensor_type.elem_type = f32
    for node in g.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == f16:
                attr.i = f32
            elif attr.type == onnx.AttributeProto.TENSOR:
                fix_tensor(attr.t)
    return bytes(model.SerializeToString())


class FixedShapeRunner:
    """Runs a fixed-shape model (a swap model) as fast as the provider allows.

    On CUDA/TensorRT the inputs and the output live in device buffers allocated once and bound
    with I/O binding (one host→device copy per input, no allocation per frame), which also lets
    onnxruntime replay the model as a CUDA graph. Elsewhere it is ``session.run``.

    When the output is NaN/inf or black and half precision is involved (an fp16 file, or
    TensorRT fp16 engines), it warns once, rebuilds the session in fp32 and runs again.

    Args:
        session: the model's session (from :func:`create_session`).
        config: the runtime configuration it was made with.
        path: the model file (to rebuild it).
        name: the model's name for messages.
        bind: force I/O binding on (True) or off (False); ``None`` = on CUDA/TensorRT only.
    """

    def __init__(
        self,
        session: TimedSession,
        config: RuntimeConfig,
        path: str | Path,
        *,
        name: str = "",
        bind: bool | None = None,
    ) -> None:
        self.session = session
        self.config = config
        self.path = Path(path)
        self.name = name or self.path.name
        self._bind = bind
        self._binding: Any = None
        self._inputs: dict[str, Any] = {}
        self.fell_back = False
        self._setup()

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])

    @property
    def half_precision(self) -> bool:
        """The model computes in fp16: an fp16 file, or TensorRT with fp16 engines."""
        fp16_file = any("float16" in str(i.type) for i in self.session.get_inputs())
        return fp16_file or (self.provider == "TensorrtExecutionProvider" and self.config.fp16)

    def _setup(self) -> None:
        self.binds = self._bind if self._bind is not None else self.provider in _CUDA_PROVIDERS
        self._binding = None
        self._inputs = {}
        self._outputs: list[Any] = []
        #: Host arrays onnxruntime writes the outputs into (None: copied out after each run).
        self._host_outputs: list[Any] | None = None

    def _device(self) -> tuple[str, int]:
        return ("cuda", self.config.device_id) if self.provider in _CUDA_PROVIDERS else ("cpu", 0)

    def _run_bound(self, feed: dict[str, Any]) -> Any:
        """One run through I/O binding; nothing is allocated per call once the buffers exist.

        Inputs live in device buffers made on the first call and refilled in place. Fixed-shape
        outputs are written by onnxruntime straight into host arrays made once (returned, valid
        until the next call) — except under CUDA graphs, whose outputs must stay at one device
        address: those are copied out after the run.
        """
        import numpy as np

        ort = import_onnxruntime()
        device, device_id = self._device()
        if self._binding is None:
            graphs = self.config.cuda_graph and self.provider == "CUDAExecutionProvider"
            self._binding = self.session.inner.io_binding()
            for name, x in feed.items():
                value = ort.OrtValue.ortvalue_from_numpy(x, device, device_id)
                self._inputs[name] = value
                self._binding.bind_ortvalue_input(name, value)
            self._host_outputs = [] if not graphs else None
            for out in self.session.get_outputs():
                shape = list(out.shape)
                dtype = "float16" if "float16" in str(out.type) else "float32"
                if not all(isinstance(d, int) and d > 0 for d in shape):
                    self._binding.bind_output(out.name, device, device_id)
                    self._host_outputs = None  # a dynamic shape: copied out every run
                elif self._host_outputs is not None:
                    host = np.empty(shape, dtype)
                    value = ort.OrtValue.ortvalue_from_numpy(host)  # wraps host's memory, no copy
                    self._host_outputs.append(host)
                    self._outputs.append(value)
                    self._binding.bind_ortvalue_output(out.name, value)
                else:
                    # a fixed buffer: the same device address every run (what CUDA graphs need)
                    value = ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, device, device_id)
                    self._outputs.append(value)
                    self._binding.bind_ortvalue_output(out.name, value)
        else:
            for name, x in feed.items():
                self._inputs[name].update_inplace(x)  # same device buffer: CUDA graphs stay valid
        self.session.run_with_iobinding(self._binding)
        if self._host_outputs is not None:
            return self._host_outputs
        return list(self._binding.copy_outputs_to_cpu())

    def _run(self, feed: dict[str, Any]) -> list[Any]:
        if self.binds:
            return list(self._run_bound(feed))
        return list(self.session.run(None, feed))

    def run(self, feed: dict[str, Any], *, check: int = 0) -> list[Any]:
        """Every output of the model (in graph order) for ``feed`` (numpy arrays of the declared
        shapes); output number ``check`` is the one tested for NaN/black fp16 failures.

        With I/O binding the arrays returned are the runner's own output buffers: valid until the
        next call (read or copy them before running again)."""
        if self.fell_back:
            feed = {k: v.astype("float32") if str(v.dtype) == "float16" else v for k, v in feed.items()}
        out = self._run(feed)
        if output_is_broken(out[check]) and not self.fell_back and self.half_precision:
            _warn_once(
                f"fp16:{self.path}",
                f"{self.name}: half-precision output is NaN or black on "
                f"{self.provider}; switching to fp32 (slower, correct)",
            )
            self._fall_back()
            return self.run(feed, check=check)
        return out

    def _fall_back(self) -> None:
        import dataclasses

        self.fell_back = True
        fp16_file = any("float16" in str(i.type) for i in self.session.get_inputs())
        config = dataclasses.replace(self.config, fp16=False)
        data = upcast_fp16_model(self.path) if fp16_file else None
        self.session = create_session(self.path, config, model_bytes=data)
        self.config = config
        self._setup()

    def close(self) -> None:
        self._binding = None
        self._inputs = {}
