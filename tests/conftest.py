"""Shared fixtures: where the real models and media are.

Tests run against real files. ``OBS_FACESWAP_MODELS`` / ``OBS_FACESWAP_MEDIA`` point at
them (``.ci/run`` exports ``../shared/models`` and ``../shared/media``); when unset, the
sibling ``../shared`` checkout is used. A missing directory is an *error* of each test that
asks for it (never a skip), and only of those: pure unit tests run anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from obs_faceswap.runtime import set_process_environment

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def _dir(env: str, default: Path) -> Path:
    return Path(os.environ.get(env) or default).resolve()


def _existing(p: Path, env: str) -> Path:
    if not p.is_dir():
        raise RuntimeError(f"{env} directory {p} does not exist; see README.md (running the tests)")
    return p


MODELS_DIR = _dir("OBS_FACESWAP_MODELS", SHARED / "models")
MEDIA_DIR = _dir("OBS_FACESWAP_MEDIA", SHARED / "media")
# Tests must never reach the network or the user's real cache (a missing directory stays
# missing: the store then says so instead of downloading).
os.environ["OBS_FACESWAP_MODELS"] = str(MODELS_DIR)
os.environ["OBS_FACESWAP_MEDIA"] = str(MEDIA_DIR)
# In-process pipelines run as in the engine process (thread pools that do not spin).
set_process_environment()


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return _existing(MODELS_DIR, "OBS_FACESWAP_MODELS")


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return _existing(MEDIA_DIR, "OBS_FACESWAP_MEDIA")


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, media_dir: Path):
    from obs_faceswap.models import ModelStore

    return ModelStore(models_dir, media_dir=media_dir, allow_download=False, progress=False,
                      cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def media(media_dir: Path):
    """``media("astronaut.png")`` → absolute path of a sample file."""

    def get(name: str) -> Path:
        p = media_dir / name
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
