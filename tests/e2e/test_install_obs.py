"""install-obs / uninstall-obs against real OBS 29 in a throw-away HOME.

The package is pip-installed (not editable) into a fresh virtual environment; its own
``obs-faceswap install-obs`` adds the script to OBS's scene collection and records that
environment's Python; OBS then loads the filter from the installed copy and swaps, with no
interpreter given in the filter's settings. ``uninstall-obs`` right after ``install-obs`` leaves
HOME byte-for-byte as it was.

To keep CI fast the fresh environment gets the heavy dependencies (numpy, OpenCV, onnxruntime)
through a ``.pth`` file pointing at the test environment's site-packages, and the package
itself with ``pip install --no-deps``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.checks import FILTER, SOURCE, wait_state, wait_swapping
from tests.e2e.conftest import VIDEO
from tests.e2e.obs_harness import ASYNC_ID, HELPER_SCRIPT, ROOT, FilterSpec, MediaSpec, Obs, ObsConfig

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _snapshot(home: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(home)): (p.read_bytes() if p.is_file() else None) for p in sorted(home.rglob("*"))}


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", str(ROOT)], capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stdout + r.stderr
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    where = subprocess.run(
        [str(py), "-c", "import obs_faceswap; print(obs_faceswap.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=venv,
    ).stdout.strip()
    assert where.startswith(site), f"the fresh venv imports obs_faceswap from {where}, not its own copy"
    return venv


def _cli(venv: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBS_FACESWAP_PYTHON", "XDG_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    return subprocess.run(
        [str(venv / "bin" / "obs-faceswap"), *args], env=env, capture_output=True, text=True, timeout=120, cwd=venv
    )


def test_install_obs_then_obs_swaps_and_uninstall_restores_home(
    obs_installed: None,
    fresh_venv: Path,
    media: Callable[[str], Path],
    filter_settings: Callable[..., dict[str, object]],
    tmp_path: Path,
) -> None:
    settings = filter_settings()
    settings.pop("engine_python")  # the filter must find the engine through what install-obs recorded
    config = ObsConfig(
        media=[MediaSpec(SOURCE, media(VIDEO), [FilterSpec(FILTER, ASYNC_ID, settings)])], scripts=[HELPER_SCRIPT]
    )
    obs = Obs(tmp_path / "obs", config)
    obs.workdir.mkdir(parents=True)
    obs._write_config()
    home = obs.home
    collection = home / ".config" / "obs-studio" / "basic" / "scenes" / "C.json"
    before = _snapshot(home)

    r = _cli(fresh_venv, home, "install-obs")
    assert r.returncode == 0, r.stderr
    script = next(
        Path(e["path"])
        for e in json.loads(collection.read_text())["modules"]["scripts-tool"]
        if "obs_faceswap_filter" in e["path"]
    )
    assert script.is_file() and str(script).startswith(str(fresh_venv)), script
    recorded = script.parent / "engine_python.txt"
    assert recorded.read_text().strip() == str(fresh_venv / "bin" / "python")
    assert str(collection) in r.stdout and str(recorded) in r.stdout  # says exactly what it did

    r = _cli(fresh_venv, home, "uninstall-obs")
    assert r.returncode == 0, r.stderr
    assert _snapshot(home) == before, "uninstall-obs did not leave HOME as it was"
    assert not recorded.exists()

    assert _cli(fresh_venv, home, "install-obs").returncode == 0
    obs._write_config = lambda: None  # type: ignore[method-assign]  # keep what install-obs wrote
    try:
        obs.start()
        wait_state(obs, "running", timeout=120)
        wait_swapping(obs, frames=8, timeout=120)
        cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in obs.engine_pids()]
        assert any(str(fresh_venv).encode() in c for c in cmdlines), cmdlines
    finally:
        try:
            obs.stop()
        finally:
            obs.kill_engines()
    # OBS rewrote the collection on exit: uninstall now removes just the script's entry.
    r = _cli(fresh_venv, home, "uninstall-obs")
    assert r.returncode == 0, r.stderr
    scripts = json.loads(collection.read_text())["modules"]["scripts-tool"]
    assert scripts and not any("obs_faceswap_filter.py" in e["path"] for e in scripts), scripts  # helper kept
