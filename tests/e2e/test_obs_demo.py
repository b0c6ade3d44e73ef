"""``obs-faceswap obs-demo`` headless: real OBS 29 under Xvfb records the sample clip with the face
swapped, and the demo's screenshots are real OBS windows (they become the README's pictures with
``OBS_FACESWAP_UPDATE_ASSETS=1``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.e2e.conftest import PHOTO, VIDEO, Identity
from tests.e2e.obs_harness import ROOT, obs_environment

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ASSETS = ROOT / "packaging" / "assets"
#: The OBS window inside the 1280x800 Xvfb screen.
WINDOW = (slice(0, 730), slice(0, 1080))


def test_obs_demo_records_the_swapped_clip(
    obs_installed: None,
    tmp_path: Path,
    models_dir: Path,
    media_dir: Path,
    identity: Identity,
    photo_embeddings: dict[str, np.ndarray],
    media: Callable[[str], Path],
) -> None:
    env = {k: v for k, v in obs_environment().items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update({k: v for k, v in os.environ.items() if k.startswith(("PYTHON", "VIRTUAL_ENV"))})
    out = tmp_path / "demo"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "obs_faceswap",
            "obs-demo",
            "--models",
            str(models_dir),
            "--media",
            str(media_dir),
            "--output",
            str(out),
            "--seconds",
            "6",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OBS exited with 0" in r.stdout and "Face Swap swapped" in r.stdout

    recording = next((out / "recordings").glob("*.mkv"))
    cap = cv2.VideoCapture(str(recording))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) >= 30, f"{recording}: {len(frames)} frames"

    # The last frames are swapped: closer to the source photo than to the clip's own person.
    cap = cv2.VideoCapture(str(media(VIDEO)))
    ok, original = cap.read()
    cap.release()
    assert ok
    orig = identity.face(original)
    assert orig is not None
    verdicts = []
    for frame in frames[-10::3]:
        face = identity.face(frame)
        assert face is not None, "no face in the recording"
        verdicts.append(identity.cos(face[0], photo_embeddings[PHOTO]) > identity.cos(face[0], orig[0]))
    assert all(verdicts), verdicts

    for name in ("obs_window.png", "obs_filter_properties.png"):
        shot = cv2.imread(str(out / name))
        assert shot is not None and shot.shape[:2] == (800, 1280), name
        assert float(shot[WINDOW].std()) > 20, f"{name} is blank"
        if os.environ.get("OBS_FACESWAP_UPDATE_ASSETS"):
            ASSETS.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(ASSETS / name.replace(".png", ".jpg")), shot[WINDOW], [cv2.IMWRITE_JPEG_QUALITY, 85])
