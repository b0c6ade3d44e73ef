"""Fixtures for the end-to-end tests: real OBS 29 under Xvfb, real engine, real models.

OBS and Xvfb must be installed (CI runs ``apt-get install -y obs-studio xvfb``); when they are
not, every test here *errors* with that command instead of being skipped. Each OBS launch
is guarded by a watchdog that kills OBS, Xvfb and any engine it started, so a hang fails
the run quickly instead of stalling CI.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.obs_harness import ASYNC_ID, ObsHarnessError, require_binaries

#: The clip the issue names, and the source photo.
VIDEO = "dfl_Obama_speaking.mp4"
PHOTO = "astronaut.png"
#: Second identity for "settings changed through the websocket take effect".
OTHER_PHOTO = "frec_biden.jpg"


@pytest.fixture(scope="session")
def obs_installed() -> None:
    try:
        require_binaries()
    except ObsHarnessError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def engine_python() -> str:
    """The interpreter running the tests: the venv where obs_faceswap is installed."""
    return sys.executable


@pytest.fixture(scope="session")
def filter_settings(
    media: Callable[[str], Path], models_dir: Path, engine_python: str
) -> Callable[..., dict[str, Any]]:
    """Settings of a Face Swap filter for the tests (interpreter and models given explicitly)."""

    def make(**overrides: Any) -> dict[str, Any]:
        s: dict[str, Any] = {
            "source_photo": str(media(PHOTO)),
            "engine_python": engine_python,
            "models_dir": str(models_dir),
            "timing_mode": "sync",
        }
        s.update(overrides)
        return s

    return make


@pytest.fixture(scope="session")
def still_clip(media: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s clip repeating one frame of the test video, losslessly.

    Every frame is identical, so a screenshot with the filter and one without show the
    *same* video frame: the background can be compared pixel for pixel.
    """
    out = tmp_path_factory.mktemp("clips")
    png, clip = out / "still.png", out / "still.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-ss", "1.0", "-i", str(media(VIDEO)), "-frames:v", "1", str(png)],
        check=True,
        timeout=60,
    )
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-loop",
            "1",
            "-i",
            str(png),
            "-t",
            "3",
            "-r",
            "30",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv420p",
            str(clip),
        ],
        check=True,
        timeout=120,
    )
    return clip


class Identity:
    """YuNet + FaceRes embeddings of the largest face in an image."""

    def __init__(self, store: Any) -> None:
        from obs_faceswap.nets.detector import YuNet
        from obs_faceswap.nets.recognition import FaceEmbedder

        self.detector = YuNet(store.path("yunet"))
        self.embedder = FaceEmbedder.from_store(store, "faceres")

    def face(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """``(embedding, xyxy box)`` of the largest face, or None when there is none."""
        d = self.detector.detect(image)
        if len(d) == 0:
            return None
        i = int(np.argmax((d.xyxy[:, 2] - d.xyxy[:, 0]) * (d.xyxy[:, 3] - d.xyxy[:, 1])))
        return self.embedder.embed(image, d.keypoints[i]), d.xyxy[i]

    @staticmethod
    def cos(a: np.ndarray, b: np.ndarray) -> float:
        from obs_faceswap.nets.recognition import cosine

        return cosine(a, b)


@pytest.fixture(scope="session")
def identity(store: Any) -> Identity:
    return Identity(store)


@pytest.fixture(scope="session")
def photo_embeddings(identity: Identity, read_image: Callable[[str], np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name in (PHOTO, OTHER_PHOTO):
        f = identity.face(read_image(name))
        assert f is not None, f"no face in {name}"
        out[name] = f[0]
    return out


def decode_png(data: bytes) -> np.ndarray:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "obs-websocket returned an undecodable screenshot"
    return img


__all__ = ["ASYNC_ID", "Identity", "decode_png"]
