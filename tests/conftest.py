"""Shared fixtures: where the real models and media are.

Tests run against real files. ``OBS_FACESWAP_MODELS`` / ``OBS_FACESWAP_MEDIA`` point at
them (``.ci/run`` exports ``../shared/models`` and ``../shared/media``); when unset, the
sibling ``../shared`` checkout is used; when that does not exist either (a fresh clone), the
public files are fetched into the user cache first. A missing file is a test *error*, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def _dir(env: str, default: Path, kind: str) -> Path:
    p = Path(os.environ.get(env) or default).resolve()
    if p.is_dir():
        return p
    return _fetched(env, p, kind)


def _fetched(env: str, missing: Path, kind: str) -> Path:
    """A fresh clone without ../shared: every public file of ``kind``, fetched (verified) into the
    user cache — downloaded, or converted from MediaPipe's originals — like ``obs-faceswap models fetch``."""
    from obs_faceswap.errors import FaceSwapError
    from obs_faceswap.models import ModelStore

    store = ModelStore(allow_download=os.environ.get("OBS_FACESWAP_OFFLINE", "") in ("", "0"))
    try:
        for name, e in store.entries.items():
            if e.kind == kind and (e.url or e.get("convert")):
                store.path(name)
    except FaceSwapError as err:
        pytest.exit(f"{env} directory {missing} does not exist, and fetching the public files into "
                    f"{store.cache_dir} failed: {err}", returncode=4)
    return store.cache_dir / kind


MODELS_DIR = Path()
MEDIA_DIR = Path()


def pytest_configure(config: pytest.Config) -> None:
    # Here rather than at import so that a failure is one clear line (pytest.exit), not a traceback.
    global MODELS_DIR, MEDIA_DIR
    MODELS_DIR = _dir("OBS_FACESWAP_MODELS", SHARED / "models", "models")
    MEDIA_DIR = _dir("OBS_FACESWAP_MEDIA", SHARED / "media", "media")
    # From here on tests never reach the network or the user's real cache.
    os.environ["OBS_FACESWAP_MODELS"] = str(MODELS_DIR)
    os.environ["OBS_FACESWAP_MEDIA"] = str(MEDIA_DIR)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return MODELS_DIR


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return MEDIA_DIR


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory):
    from obs_faceswap.models import ModelStore

    return ModelStore(MODELS_DIR, media_dir=MEDIA_DIR, allow_download=False, progress=False,
                      cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def media():
    """``media("astronaut.png")`` → absolute path of a sample file."""

    def get(name: str) -> Path:
        p = MEDIA_DIR / name
        if not p.is_file():
            raise FileNotFoundError(f"sample media {p} missing")
        return p

    return get


@pytest.fixture(scope="session")
def read_image(media):
    import cv2

    def get(name: str):
        img = cv2.imread(str(media(name)), cv2.IMREAD_COLOR)
        assert img is not None, name
        return img

    return get
