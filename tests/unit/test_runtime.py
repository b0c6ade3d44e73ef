"""Session factory: provider preference, fallback with one warning, clear errors for bad files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from obs_faceswap import runtime
from obs_faceswap.config import PROVIDERS, RuntimeConfig
from obs_faceswap.errors import ModelLoadError, ModelNotFoundError
from obs_faceswap.runtime import (
    FixedShapeRunner,
    create_session,
    cuda_requirements,
    explain_cuda_failure,
    inference_clock,
    missing_cuda_libraries,
    output_is_broken,
    provider_options,
    resolve_providers,
)
from obs_faceswap.swap.specs import SPECS
from tests import swap_graphs as g

CPU, CUDA, TRT, DML = (PROVIDERS[k] for k in ("cpu", "cuda", "tensorrt", "directml"))


def names(config, available):
    return [n for n, _ in resolve_providers(config, available)]


def test_auto_prefers_gpu_providers_and_always_ends_with_cpu():
    assert names(RuntimeConfig(), [CUDA, CPU]) == [CUDA, CPU]
    assert names(RuntimeConfig(), [CPU]) == [CPU]
    # TensorRT needs an engine build per model: only when asked for
    assert names(RuntimeConfig(), [TRT, CUDA, CPU]) == [CUDA, CPU]
    assert names(RuntimeConfig(providers=("tensorrt", "cuda")), [TRT, CUDA, CPU]) == [TRT, CUDA, CPU]
    assert names(RuntimeConfig(providers=("cpu",)), [CUDA, CPU]) == [CPU]


def test_an_unavailable_provider_warns_once_and_falls_back(caplog):
    runtime._warned.clear()
    with caplog.at_level(logging.WARNING, logger="obs_faceswap.runtime"):
        assert names(RuntimeConfig(providers=("directml",)), [CPU]) == [CPU]
        assert names(RuntimeConfig(providers=("directml",)), [CPU]) == [CPU]
    warnings = [r for r in caplog.records if "directml" in r.getMessage()]
    assert len(warnings) == 1 and "not available" in warnings[0].getMessage()


def test_a_provider_that_fails_to_start_falls_back_to_cpu_with_one_warning(models_dir, monkeypatch, caplog):
    """Like onnxruntime-gpu without its CUDA libraries: the CUDA session cannot be created."""
    real = ort.InferenceSession
    tried = []

    def session(path, sess_options=None, providers=None, provider_options=None):
        tried.append(providers[0])
        if providers[0] == CUDA:
            raise RuntimeError("LoadLibrary failed with error 126 when trying to load onnxruntime_providers_cuda.dll")
        return real(path, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(ort, "InferenceSession", session)
    runtime._warned.clear()
    with caplog.at_level(logging.WARNING, logger="obs_faceswap.runtime"):
        sess = create_session(models_dir / "yunet_n_320_320.onnx", RuntimeConfig())
        create_session(models_dir / "yunet_n_320_320.onnx", RuntimeConfig())
    assert sess.get_providers()[0] == CPU
    assert tried == [CUDA, CPU, CUDA, CPU]
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "error 126" in msgs[0] and "CPUExecutionProvider" in msgs[0]


def test_corrupt_and_missing_files_raise_clear_errors(models_dir, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes((models_dir / "yunet_n_320_320.onnx").read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="broken.onnx.*corrupt"):
        create_session(bad)
    with pytest.raises(ModelNotFoundError, match="nope.onnx"):
        create_session(tmp_path / "nope.onnx")


def test_the_inference_clock_counts_raw_run_time(models_dir):
    sess = create_session(models_dir / "yunet_n_320_320.onnx", RuntimeConfig(threads=1))
    x = np.zeros((1, 3, 320, 320), np.float32)
    inference_clock.reset()
    sess.run(None, {"input": x})
    sess.run(None, {"input": x})
    assert inference_clock.calls == 2 and inference_clock.ms > 0


MESH = "mediapipe_face_landmark_468.onnx"


def test_cpu_backend_choice_gives_the_same_outputs(models_dir):
    x = np.random.default_rng(1).random((1, 192, 192, 3), dtype=np.float32)
    ort_sess = create_session(models_dir / MESH, RuntimeConfig(cpu_backend="onnxruntime"))
    cv_sess = create_session(models_dir / MESH, RuntimeConfig(cpu_backend="opencv"))
    assert ort_sess.get_providers()[0] == CPU and cv_sess.get_providers()[0] == runtime.OPENCV_PROVIDER
    names = [o.name for o in ort_sess.get_outputs()]
    assert [o.name for o in cv_sess.get_outputs()] == names
    for a, b in zip(ort_sess.run(names, {"input_1": x}), cv_sess.run(names, {"input_1": x}), strict=True):
        np.testing.assert_allclose(np.asarray(a).ravel(), np.asarray(b).ravel(), atol=1e-3)
    # only the named output, in the asked order
    (flag,) = cv_sess.run([names[1]], {"input_1": x})
    assert np.asarray(flag).size == 1


def test_models_with_a_dynamic_input_or_a_gpu_stay_on_onnxruntime(models_dir, monkeypatch):
    assert (
        create_session(models_dir / "yunet_n_dynamic.onnx", RuntimeConfig(cpu_backend="opencv")).get_providers()[0]
        == CPU
    )
    # OpenCV failing to read a model means onnxruntime, silently
    import cv2

    def refuse(path):
        raise cv2.error("unsupported layer")

    monkeypatch.setattr(cv2.dnn, "readNetFromONNX", refuse)
    assert create_session(models_dir / MESH, RuntimeConfig(cpu_backend="opencv")).get_providers()[0] == CPU


# -- GPU provider logic, exercised on the CPU with simulated provider failures (no GPU here). --
CPU_ONLY = RuntimeConfig(providers=("cpu",), threads=1, cpu_backend="onnxruntime")
TRT, CUDA = "TensorrtExecutionProvider", "CUDAExecutionProvider"


def test_tensorrt_gets_engine_cache_and_fp16(tmp_path: Path) -> None:
    cfg = RuntimeConfig(providers=("tensorrt", "cuda"), device_id=1, trt_cache=str(tmp_path))
    (name, opts), (cname, copts), _ = resolve_providers(cfg, [TRT, CUDA, "CPUExecutionProvider"])
    assert name == TRT and opts["trt_engine_cache_enable"] and opts["trt_engine_cache_path"] == str(tmp_path)
    assert opts["trt_fp16_enable"] is True and opts["device_id"] == 1 and opts["trt_timing_cache_enable"]
    assert cname == CUDA and copts["device_id"] == 1
    assert provider_options("tensorrt", RuntimeConfig(fp16=False))["trt_fp16_enable"] is False
    assert provider_options("cuda", cfg, cuda_graph=True)["enable_cuda_graph"] is True
    assert provider_options("directml", cfg) == {"device_id": 1}
    assert provider_options("coreml", cfg) == {}


@pytest.mark.parametrize(
    ("version", "cuda", "cudnn"),
    [("1.22.0", "12", "9"), ("1.19.2", "12", "9"), ("1.18.1", "11.8", "8.9"), ("1.16.3", "11.8", "8")],
)
def test_cuda_requirements_per_onnxruntime_version(version: str, cuda: str, cudnn: str) -> None:
    assert cuda_requirements(version) == (cuda, cudnn)


def test_missing_cuda_library_is_named_with_the_versions_needed() -> None:
    missing = missing_cuda_libraries("1.20.1", "linux", loader=lambda n: "cudnn" not in n)
    assert missing == ["libcudnn.so.9"]
    msg = explain_cuda_failure("", "1.20.1", missing)
    assert "libcudnn.so.9" in msg and "CUDA 12.x" in msg and "cuDNN 9.x" in msg and "--provider cpu" in msg
    win = explain_cuda_failure(
        'LoadLibrary failed with error 126 "" when trying to load onnxruntime_providers_cuda.dll',
        "1.19.0",
        ["cudnn64_9.dll"],
    )
    assert "cudnn64_9.dll" in win
    text = "libcublasLt.so.12: cannot open shared object file: No such file or directory"
    assert "libcublasLt.so.12" in explain_cuda_failure(text, "1.21.0")


class _FakeSession:
    def __init__(self, providers: list[str]) -> None:
        self._providers = providers

    def get_providers(self) -> list[str]:
        return self._providers


class _FakeOrt:
    """onnxruntime whose CUDA provider fails to load the way it does on a machine without cuDNN."""

    __version__ = "1.20.1"

    class SessionOptions:
        def __getattr__(self, name: str) -> Any:
            return None

        def __setattr__(self, name: str, value: Any) -> None:
            pass

        def add_session_config_entry(self, *a: Any) -> None:
            pass

    class ExecutionMode:
        ORT_SEQUENTIAL = 0

    class GraphOptimizationLevel:
        ORT_ENABLE_ALL = 99

    def __init__(self, fail: str, silent: bool) -> None:
        self.fail, self.silent, self.calls = fail, silent, []

    def get_available_providers(self) -> list[str]:
        return [CUDA, "CPUExecutionProvider"]

    def InferenceSession(
        self,
        path: Any,
        sess_options: Any = None,
        providers: Any = None,  # noqa: N802
        provider_options: Any = None,
    ) -> _FakeSession:
        self.calls.append(list(providers))
        self.options = list(provider_options)
        if providers[0] == CUDA:
            if self.silent:  # onnxruntime logs and falls back by itself
                return _FakeSession(["CPUExecutionProvider"])
            raise RuntimeError(self.fail)
        return _FakeSession(providers)


@pytest.mark.parametrize("silent", [False, True])
def test_cuda_provider_failure_falls_back_with_one_clear_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, silent: bool
) -> None:
    fake = _FakeOrt(
        "Failed to load library libonnxruntime_providers_cuda.so with error: libcudnn.so.9: "
        "cannot open shared object file",
        silent,
    )
    monkeypatch.setattr(runtime, "import_onnxruntime", lambda: fake)
    monkeypatch.setattr(runtime, "_can_load", lambda n: "cudnn" not in n)
    monkeypatch.setattr(runtime, "_warned", set())
    model = g.arcface_model(tmp_path / "m.onnx")
    with caplog.at_level(logging.WARNING, logger="obs_faceswap.runtime"):
        sess = create_session(model, RuntimeConfig(providers=("cuda",), cpu_backend="onnxruntime"))
        create_session(model, RuntimeConfig(providers=("cuda",), cpu_backend="onnxruntime"))
    assert sess.get_providers() == ["CPUExecutionProvider"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "libcudnn.so.9" in warnings[0] and "CUDA 12.x and cuDNN 9.x" in warnings[0]


def test_preload_dlls_is_called_when_cuda_is_available(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    called: list[bool] = []
    monkeypatch.setattr(onnxruntime, "preload_dlls", lambda: called.append(True), raising=False)
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CUDA, "CPUExecutionProvider"])
    monkeypatch.setattr(runtime, "_dlls_preloaded", False)
    runtime.import_onnxruntime()
    assert called == [True]


def test_broken_output_detection() -> None:
    assert output_is_broken(np.array([0.5, np.nan]))
    assert output_is_broken(np.zeros((1, 3, 4, 4)))
    assert not output_is_broken(np.full((1, 3, 4, 4), 0.3))


def test_io_binding_runner_gives_the_same_output_as_run(tmp_path: Path) -> None:
    p = g.oneshot_model(tmp_path / "inswapper_128.onnx", SPECS["inswapper_128"], "invert")
    sess = create_session(p, CPU_ONLY)
    bound = FixedShapeRunner(sess, CPU_ONLY, p, bind=True)
    plain = FixedShapeRunner(sess, CPU_ONLY, p, bind=False)
    rng = np.random.default_rng(0)
    for _ in range(3):  # the second and later calls reuse the bound buffers
        feed = {
            "target": rng.random((1, 3, 128, 128), dtype=np.float32),
            "source": rng.random((1, 512), dtype=np.float32),
        }
        a, b = bound.run(feed)[0], plain.run(feed)[0]
        assert np.allclose(a, b) and np.allclose(a, 1 - feed["target"], atol=1e-6)


def test_io_binding_runner_allocates_nothing_per_run(tmp_path: Path) -> None:
    p = g.oneshot_model(tmp_path / "inswapper_128.onnx", SPECS["inswapper_128"], "invert")
    bound = FixedShapeRunner(create_session(p, CPU_ONLY), CPU_ONLY, p, bind=True)
    rng = np.random.default_rng(1)
    outs = []
    for _ in range(3):
        target = rng.random((1, 3, 128, 128), dtype=np.float32)
        out = bound.run({"target": target, "source": np.ones((1, 512), np.float32)})[0]
        assert np.allclose(out, 1 - target, atol=1e-6)  # this run's result, not a stale one
        outs.append(out)
    # onnxruntime wrote every run into the same host array, bound once
    assert outs[0] is outs[1] is outs[2]


def test_fp16_nan_output_falls_back_to_fp32(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = g.overflow_fp16_model(tmp_path / "inswapper_128_fp16.onnx")
    runner = FixedShapeRunner(create_session(p, CPU_ONLY), CPU_ONLY, p)
    assert runner.half_precision
    x = np.full((1, 3, 128, 128), 0.5, np.float16)
    raw = runner.session.run(None, {"target": x, "source": np.ones((1, 512), np.float16)})[0]
    assert not np.isfinite(raw).all()  # the fp16 graph really produces NaN
    with caplog.at_level(logging.WARNING, logger="obs_faceswap.runtime"):
        out = runner.run({"target": x, "source": np.ones((1, 512), np.float16)})[0]
        again = runner.run({"target": x, "source": np.ones((1, 512), np.float16)})[0]
    assert runner.fell_back and out.dtype == np.float32
    assert np.allclose(out, 0.5 * 300000.0) and np.allclose(again, 0.5 * 300000.0)
    assert any("switching to fp32" in r.getMessage() for r in caplog.records)


def test_cuda_graph_and_device_reach_the_cuda_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeOrt("", silent=True)
    monkeypatch.setattr(runtime, "import_onnxruntime", lambda: fake)
    monkeypatch.setattr(runtime, "_can_load", lambda n: True)
    create_session(
        g.arcface_model(tmp_path / "m.onnx"),
        RuntimeConfig(providers=("cuda",), device_id=2, cpu_backend="onnxruntime"),
        cuda_graph=True,
    )
    assert fake.calls[0][0] == CUDA
    assert fake.options[0]["device_id"] == 2 and fake.options[0]["enable_cuda_graph"] is True


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider':UserWarning")
def test_bench_reports_model_latency_per_available_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from obs_faceswap import bench

    p = g.oneshot_model(tmp_path / "inswapper_128.onnx", SPECS["inswapper_128"], "invert")
    rows = bench.model_latency(str(p), CPU_ONLY, warmup=1, runs=3)
    assert [r["provider"] for r in rows] == ["CPUExecutionProvider"]
    assert rows[0]["median_ms"] > 0
    # a GPU provider that onnxruntime lists but cannot start is reported, not timed as CPU
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CUDA, "CPUExecutionProvider"])
    rows = bench.model_latency(str(p), CPU_ONLY, warmup=1, runs=3)
    assert rows[0]["provider"] == CUDA and "fell back" in rows[0]["error"]


def test_directml_sessions_turn_memory_patterns_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class Options(_FakeOrt.SessionOptions):
        def __setattr__(self, name: str, value: Any) -> None:
            seen[name] = value

    class Dml(_FakeOrt):
        SessionOptions = Options

        def get_available_providers(self) -> list[str]:
            return ["DmlExecutionProvider", "CPUExecutionProvider"]

    monkeypatch.setattr(runtime, "import_onnxruntime", lambda: Dml("", silent=False))
    create_session(
        g.arcface_model(tmp_path / "m.onnx"), RuntimeConfig(providers=("directml",), cpu_backend="onnxruntime")
    )
    assert seen["enable_mem_pattern"] is False
