"""doctor on this machine's real set-up: real OBS 29, a real engine interpreter, real sessions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from obs_faceswap import doctor
from obs_faceswap.cli import main
from obs_faceswap.doctor import FAIL, OK

pytestmark = pytest.mark.slow


def test_real_obs_is_found_with_its_version() -> None:
    rows = doctor.check_obs()
    obs = next(r for r in rows if r.name == "OBS Studio")
    assert obs.status == OK and obs.detail.split()[0].split(".")[0] in {str(v) for v in range(28, 33)}, obs
    assert doctor.check_obs_python().status == OK


def test_engine_python_without_the_packages_is_named(tmp_path: Path) -> None:
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    rows = doctor.check_engine(str(venv / "bin" / "python"), "test")
    pkgs = next(r for r in rows if r.name == "engine packages")
    assert pkgs.status == FAIL and "obs_faceswap" in pkgs.detail and "onnxruntime" in pkgs.detail
    assert "pip install 'obs-faceswap[cpu]'" in pkgs.fix
    ok = doctor.check_engine(sys.executable, "test")
    assert [r.status for r in ok] == [OK, OK], ok


def test_cli_doctor_prints_one_table(capsys, store) -> None:
    rc = main(["doctor", "--models", str(store.models_dir)])
    out = capsys.readouterr().out
    names = [line.split("  ")[0] for line in out.splitlines() if not line.startswith(" ")]
    for expected in (
        "OBS Studio",
        "OBS's Python",
        "engine Python",
        "engine packages",
        "provider CPUExecutionProvider",
        "model yunet",
        "model mesh468",
        "cameras",
        "shared memory",
    ):
        assert expected in names, out
    assert "model mesh468" in out and "FAIL  " not in next(line for line in out.splitlines() if "model mesh468" in line)
    assert rc in (0, 1)
