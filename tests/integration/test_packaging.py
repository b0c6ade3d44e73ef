"""packaging/: the converted models reproduce the manifest's digests, and a release bundle holds
the wheel, the installer, notes, the converted models and correct checksums."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from obs_faceswap import convert
from obs_faceswap.errors import DownloadError
from obs_faceswap.models import load_manifest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def archive_cache() -> Path:
    cache = Path(os.environ.get("OBS_FACESWAP_ARCHIVES") or ROOT / ".pytest_cache" / "obs-faceswap-archives")
    spec = convert.ConvertSpec.from_table("mesh468", load_manifest()["mesh468"].get("convert"))
    try:
        convert.fetch_archive(spec, cache, progress=False)
    except DownloadError as e:
        pytest.skip(f"the mediapipe wheel is not cached in {cache} and PyPI is unreachable: {e}")
    return cache


def test_convert_models_script_reproduces_the_pinned_files(archive_cache: Path, tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "packaging" / "convert_models.py"),
            str(tmp_path / "out"),
            "--cache",
            str(archive_cache),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    manifest = load_manifest()
    converted = {n: e for n, e in manifest.items() if e.get("convert")}
    assert set(converted) >= {"mesh468", "blazeface"}
    for e in converted.values():
        data = (tmp_path / "out" / e.file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e.get("convert")["sha256"]


def test_release_bundle(archive_cache: Path, tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "packaging" / "build_release.py"),
            "--platform",
            "linux",
            "--out",
            str(tmp_path),
            "--cache",
            str(archive_cache),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    archive = Path(r.stdout.split()[-1])
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        top = names[0].split("/")[0]
        sums = dict(reversed(line.split("  ", 1)) for line in z.read(f"{top}/SHA256SUMS").decode().splitlines())
        for rel, digest in sums.items():
            assert hashlib.sha256(z.read(f"{top}/{rel}")).hexdigest() == digest, rel
        wheels = [n for n in names if n.endswith(".whl")]
        assert len(wheels) == 1
        assert f"{top}/install.sh" in names and f"{top}/INSTALL.md" in names
        assert f"{top}/models/mediapipe_face_landmark_468.onnx" in names
        # The OBS script and the manifest ship inside the wheel.
        wheel = tmp_path / "w.whl"
        wheel.write_bytes(z.read(wheels[0]))
    with zipfile.ZipFile(wheel) as w:
        inner = w.namelist()
        assert "obs_faceswap/obs/obs_faceswap_filter.py" in inner and "obs_faceswap/data/manifest.toml" in inner
        assert b"[models.mesh468.convert]" in w.read("obs_faceswap/data/manifest.toml")
