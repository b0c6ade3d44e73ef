"""A machine without ../shared: the demo fetches into the user cache, or says exactly what is
missing and how to supply it (no traceback).

"No network" is real here: an HTTPS proxy on a closed local port makes every download fail the
way an offline machine does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from obs_faceswap import convert
from obs_faceswap.errors import DownloadError
from obs_faceswap.models import load_manifest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OBS_FACESWAP_MODELS=str(tmp_path / "no-shared" / "models"),  # does not exist, like ../shared on a fresh clone
        OBS_FACESWAP_MEDIA=str(tmp_path / "no-shared" / "media"),
        OBS_FACESWAP_CACHE=str(tmp_path / "cache"),
    )
    env.pop("OBS_FACESWAP_OFFLINE", None)
    env.update(extra)
    return env


def _demo(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "obs_faceswap", "demo", "--output", str(tmp_path / "out"), "-q", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.mark.parametrize(
    "how",
    [{"OBS_FACESWAP_OFFLINE": "1"}, {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}],
    ids=["downloads-off", "no-network"],
)
def test_demo_without_shared_says_which_file_is_missing_and_how_to_supply_it(tmp_path, media_dir, how) -> None:
    r = _demo(tmp_path, _env(tmp_path, **how))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.startswith("obs-faceswap: error: ")
    assert "astronaut.png" in r.stderr and "--media DIR" in r.stderr

    # Media supplied, models not: the first model the demo needs is named, with --models DIR.
    r = _demo(tmp_path, _env(tmp_path, **how), "--media", str(media_dir))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "--models DIR" in r.stderr
    named = [e.file for e in load_manifest().values() if e.kind == "models" and e.file in r.stderr]
    assert named, r.stderr


def test_demo_runs_from_the_user_cache_with_converted_models(tmp_path, models_dir, media_dir) -> None:
    """Files with a URL are placed in the cache as a download would; the mesh is converted for real."""
    manifest = load_manifest()
    spec = convert.ConvertSpec.from_table("mesh468", manifest["mesh468"].get("convert"))
    archives = Path(os.environ.get("OBS_FACESWAP_ARCHIVES") or ROOT / ".pytest_cache" / "obs-faceswap-archives")
    try:
        convert.fetch_archive(spec, archives, progress=False)
    except DownloadError as e:
        pytest.skip(f"the mediapipe wheel is not cached in {archives} and PyPI is unreachable: {e}")
    cache = tmp_path / "cache"
    shutil.copytree(archives / "archives", cache / "archives")
    for name in ("yunet", "canonical_face"):
        (cache / "models").mkdir(parents=True, exist_ok=True)
        shutil.copy(models_dir / manifest[name].get("subdir", "") / manifest[name].file, cache / "models")
    (cache / "media").mkdir()
    for name in ("astronaut", "obama"):
        shutil.copy(media_dir / manifest[name].file, cache / "media")

    # No network at all: the mesh can only come from converting the cached wheel's .tflite.
    r = _demo(
        tmp_path,
        _env(tmp_path, https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9"),
        "--max-frames",
        "12",
    )
    assert r.returncode == 0, r.stderr
    assert (cache / "models" / manifest["mesh468"].file).is_file()
    assert (tmp_path / "out" / "demo.mp4").stat().st_size > 10_000
    assert "12 frames" in r.stdout or "frames" in r.stdout


def test_the_test_suite_without_shared_and_network_says_so_in_one_line_and_runs_pure_tests(tmp_path) -> None:
    env = _env(tmp_path, https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")

    def pytest(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )

    pure = pytest("tests/unit/test_config.py")
    out = pure.stdout + pure.stderr
    assert pure.returncode == 0, out
    assert "real files unusable: OBS_FACESWAP_MODELS directory" in out and "--models DIR" in out
    needs_models = pytest("tests/unit/test_cli.py::test_models_path")
    out = needs_models.stdout + needs_models.stderr
    assert needs_models.returncode == 1, out
    assert "Traceback" not in out and "OBS_FACESWAP_MODELS directory" in out and "--models DIR" in out
