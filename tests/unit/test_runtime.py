"""Session factory: provider preference, fallback with one warning, clear errors for bad files."""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort
import pytest

from obs_faceswap import runtime
from obs_faceswap.config import PROVIDERS, RuntimeConfig
from obs_faceswap.errors import ModelLoadError, ModelNotFoundError
from obs_faceswap.runtime import create_session, inference_clock, resolve_providers

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
            raise RuntimeError("LoadLibrary failed with error 126 when trying to load "
                               "onnxruntime_providers_cuda.dll")
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
    assert create_session(models_dir / "yunet_n_dynamic.onnx",
                          RuntimeConfig(cpu_backend="opencv")).get_providers()[0] == CPU
    # OpenCV failing to read a model means onnxruntime, silently
    import cv2

    def refuse(path):
        raise cv2.error("unsupported layer")

    monkeypatch.setattr(cv2.dnn, "readNetFromONNX", refuse)
    assert create_session(models_dir / MESH, RuntimeConfig(cpu_backend="opencv")).get_providers()[0] == CPU
