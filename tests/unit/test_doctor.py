"""doctor against broken set-ups: each must be a FAIL/WARN row naming the cause and the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from obs_faceswap import doctor
from obs_faceswap.doctor import FAIL, OK, WARN
from obs_faceswap.models import ModelStore, load_manifest


def _row(rows: list[doctor.Check], name: str) -> doctor.Check:
    return next(r for r in rows if r.name == name)


def test_no_obs_is_a_failure_with_the_download_page(tmp_path: Path) -> None:
    rows = doctor.check_obs(environ={"PATH": str(tmp_path), "HOME": str(tmp_path)}, home=tmp_path, platform="linux")
    obs = _row(rows, "OBS Studio")
    assert obs.status == FAIL and "not found" in obs.detail and "obsproject.com" in obs.fix
    conf = _row(rows, "OBS configuration")
    assert conf.status == FAIL and "start OBS once" in conf.fix


@pytest.mark.parametrize(("dll", "status"), [("python36.dll", FAIL), ("python311.dll", OK)])
def test_obs_python_setting_on_windows(tmp_path: Path, dll: str, status: str) -> None:
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / dll).write_bytes(b"")
    ini = tmp_path / "user.ini"
    ini.write_text(f"[Python]\nPath64bit={tmp_path / 'py'}\n", encoding="utf-8")
    row = doctor.check_obs_python(platform="win32", settings_file=ini)
    assert row.status == status, row
    assert ("3.6" in row.detail) if status == FAIL else ("3.11" in row.detail)


def test_obs_python_not_set_or_not_there(tmp_path: Path) -> None:
    row = doctor.check_obs_python(platform="win32", settings_file=tmp_path / "none.ini")
    assert row.status == FAIL and "Python Settings" in row.fix
    row = doctor.check_obs_python(platform="linux", scripting_dirs=[tmp_path])
    assert row.status == FAIL and "_obspython.so" in row.detail
    assert doctor.check_obs_python(platform="linux", scripting_dirs=[tmp_path], obs_kind="flatpak").status == OK


def test_missing_and_corrupt_models_are_named_with_their_fix(tmp_path: Path, models_dir: Path, monkeypatch) -> None:
    monkeypatch.delenv("OBS_FACESWAP_MODELS", raising=False)
    m = load_manifest()
    (tmp_path / "models").mkdir()
    bad = bytearray((models_dir / m["yunet"].file).read_bytes())
    bad[100] ^= 0xFF  # same size, wrong digest
    (tmp_path / "models" / m["yunet"].file).write_bytes(bytes(bad))
    shutil.copy(models_dir / "face_geometry" / m["canonical_face"].file, tmp_path / "models")
    store = ModelStore(tmp_path / "models", cache_dir=tmp_path / "cache", allow_download=False, progress=False)
    rows = doctor.check_models(store)
    assert _row(rows, "model yunet").status == FAIL and "corrupt" in _row(rows, "model yunet").detail
    assert "models fetch yunet" in _row(rows, "model yunet").fix
    mesh = _row(rows, "model mesh468")
    assert mesh.status == FAIL and "missing" in mesh.detail and "models fetch mesh468" in mesh.fix
    assert _row(rows, "model canonical_face").status == OK


CUDA_ERROR = (
    "[ONNXRuntimeError] : 1 : FAIL : Failed to load library libonnxruntime_providers_cuda.so with error: "
    "libcudnn.so.9: cannot open shared object file: No such file or directory"
)


def test_a_provider_that_fails_to_load_names_the_missing_library() -> None:
    def make(model: bytes, provider: str) -> list[str]:
        if provider == "CUDAExecutionProvider":
            raise RuntimeError(CUDA_ERROR)
        if provider == "TensorrtExecutionProvider":
            return ["CPUExecutionProvider"]  # onnxruntime fell back silently
        return doctor._real_session(model, provider)  # the real CPU session

    rows = doctor.check_providers(["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], make)
    cuda = _row(rows, "provider CUDAExecutionProvider")
    assert cuda.status == FAIL and "libcudnn.so.9 is missing" in cuda.detail and "[cuda]" in cuda.fix
    trt = _row(rows, "provider TensorrtExecutionProvider")
    assert trt.status == FAIL and "fell back to CPUExecutionProvider" in trt.detail
    assert _row(rows, "provider CPUExecutionProvider").status == OK


def test_missing_library_on_windows() -> None:
    text = "LoadLibrary failed with error 126 when trying to load onnxruntime_providers_cuda.dll; cudnn64_9.dll"
    assert doctor.missing_library(text) == "cudnn64_9.dll"


def test_no_camera_and_a_camera(tmp_path: Path) -> None:
    row = doctor.check_cameras(dev=tmp_path, sys_class=tmp_path / "sys", platform="linux")
    assert row.status == WARN and "no camera" in row.detail
    (tmp_path / "video0").write_bytes(b"")
    (tmp_path / "sys" / "video0").mkdir(parents=True)
    (tmp_path / "sys" / "video0" / "name").write_text("Integrated Camera\n")
    row = doctor.check_cameras(dev=tmp_path, sys_class=tmp_path / "sys", platform="linux")
    assert row.status == OK and "video0 (Integrated Camera)" in row.detail


def test_small_shared_memory_is_a_failure(tmp_path: Path) -> None:
    row = doctor.check_shared_memory(tmp_path, needed=1 << 62, platform="linux")
    assert row.status == FAIL and "--shm-size" in row.fix
    assert doctor.check_shared_memory(tmp_path, needed=1, platform="linux").status == OK


def test_table_puts_each_fix_under_its_failure() -> None:
    text = doctor.format_table([doctor.Check("a", OK, "fine"), doctor.Check("bb", FAIL, "broken", "do this")])
    assert text.splitlines() == ["a   ok    fine", "bb  FAIL  broken", "          fix: do this"]
