"""Shared fixtures: where the real models and media are.

Tests run against real files. ``OBS_FACESWAP_MODELS`` / ``OBS_FACESWAP_MEDIA`` point at
them (``.ci/run`` exports ``../shared/models`` and ``../shared/media``); when unset, the
sibling ``../shared`` checkout is used; when that does not exist either (a fresh clone), the
public files are fetched into the user cache first. When that fails too (no network), the
tests that need real files fail with one line saying so (never a skip), and pure unit tests
still run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from obs_faceswap.runtime import set_process_environment

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def _dir(env: str, default: Path, kind: str) -> tuple[Path, str | None]:
    """The directory of ``kind``, and why it cannot be used (``None`` when it can)."""
    p = Path(os.environ.get(env) or default).resolve()
    if p.is_dir():
        return p, None
    return _fetched(env, p, kind)


def _fetched(env: str, missing: Path, kind: str) -> tuple[Path, str | None]:
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
        return missing, (
            f"{env} directory {missing} does not exist, and fetching the public files into "
            f"{store.cache_dir} failed: {err}"
        )
    return store.cache_dir / kind, None


MODELS_DIR = Path()
MEDIA_DIR = Path()
_UNUSABLE: dict[str, str | None] = {}


def pytest_configure(config: pytest.Config) -> None:
    # Here rather than at import so that a failure is one clear line, not a traceback.
    global MODELS_DIR, MEDIA_DIR
    MODELS_DIR, _UNUSABLE["models"] = _dir("OBS_FACESWAP_MODELS", SHARED / "models", "models")
    MEDIA_DIR, _UNUSABLE["media"] = _dir("OBS_FACESWAP_MEDIA", SHARED / "media", "media")
    # From here on tests never reach the network or the user's real cache.
    os.environ["OBS_FACESWAP_MODELS"] = str(MODELS_DIR)
    os.environ["OBS_FACESWAP_MEDIA"] = str(MEDIA_DIR)
    # In-process pipelines run as in the engine process (thread pools that do not spin).
    set_process_environment()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for why in _UNUSABLE.values():
        if why:
            terminalreporter.write_line(f"real files unusable: {why}")


def _usable(p: Path, kind: str) -> Path:
    why = _UNUSABLE.get(kind)
    if why:
        pytest.fail(why, pytrace=False)
    return p


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return _usable(MODELS_DIR, "models")


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return _usable(MEDIA_DIR, "media")


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, media_dir: Path):
    from obs_faceswap.models import ModelStore

    return ModelStore(
        models_dir,
        media_dir=media_dir,
        allow_download=False,
        progress=False,
        cache_dir=tmp_path_factory.mktemp("cache"),
    )


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
