"""Face-swap model files through the whole command line on a real multi-face clip.

The models are graphs with the exact public signatures and a known function (tests/swap_graphs.py):
an identity model must leave every face as it was, an inverting one must change every face and
nothing a face-width away; broken files must be a clear error, never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from obs_faceswap.cli import main
from obs_faceswap.config import DetectorConfig
from obs_faceswap.io import VideoWriter, open_input
from obs_faceswap.nets.detector import create_detector
from obs_faceswap.swap.specs import SPECS
from tests import swap_graphs as g

pytestmark = pytest.mark.slow

#: Mean absolute difference per face box an identity model may leave (H.264 re-encode included).
IDENTITY_TOL = 6.0
N_FRAMES = 12


def decode_all(path: Path) -> list[np.ndarray]:
    with open_input(path) as src:
        return [f.image for f in src]


@pytest.fixture(scope="module")
def two_face_clip(tmp_path_factory: pytest.TempPathFactory, media) -> Path:
    """12 frames of the two-person photo drifting a few pixels per frame (small camera motion)."""
    img = cv2.imread(str(media("frec_two_people.jpg")))
    h, w = img.shape[:2]
    out = tmp_path_factory.mktemp("clip") / "two.mp4"
    with VideoWriter(out, (w - 32, h - 32), 25.0, crf=12) as writer:
        for k in range(N_FRAMES):
            dx, dy = 16 + int(round(8 * np.sin(k / 3))), 16 + k % 5
            writer.write(np.ascontiguousarray(img[dy : dy + h - 32, dx : dx + w - 32]))
    return out


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    return {
        "dfm_identity": g.dfm_model(d / "identity.dfm", 224),
        "dfm_invert": g.dfm_model(d / "invert.dfm", 224, "invert"),
        "inswapper_identity": g.oneshot_model(d / "inswapper_128.onnx", SPECS["inswapper_128"], "identity"),
        "arcface": g.arcface_model(d / "w600k_r50.onnx"),
    }


def face_boxes(frame: np.ndarray, store) -> np.ndarray:
    det = create_detector(DetectorConfig(), store)
    return det.detect(frame).xyxy


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("model", ["dfm_identity", "inswapper_identity"])
def test_identity_model_leaves_every_face_unchanged(two_face_clip, graphs, tmp_path, capsys, media, store, model):
    out = tmp_path / "out.mp4"
    extra = (
        []
        if model.startswith("dfm")
        else ["--source", str(media("frec_obama.jpg")), "--recognizer", str(graphs["arcface"])]
    )
    rc, stdout, err = run(
        capsys,
        "swap",
        "--model",
        str(graphs[model]),
        *extra,
        "--input",
        str(two_face_clip),
        "--output",
        str(out),
        "--select",
        "all",
        "--color",
        "none",
        "-q",
    )
    assert rc == 0, err
    before, after = decode_all(two_face_clip), decode_all(out)
    assert len(after) == len(before) == N_FRAMES
    boxes = face_boxes(before[0], store)
    assert len(boxes) == 2
    swapped = 0
    for b, a in zip(before, after, strict=True):
        for x0, y0, x1, y1 in face_boxes(b, store).astype(int):
            diff = np.abs(a[y0:y1, x0:x1].astype(float) - b[y0:y1, x0:x1]).mean()
            assert diff < IDENTITY_TOL, (model, diff)
            swapped += 1
    assert swapped >= 2 * N_FRAMES - 2
    assert "swapped" in stdout


def test_inverting_model_changes_every_face_and_nothing_a_face_width_away(
    two_face_clip, graphs, tmp_path, capsys, store
):
    out = tmp_path / "inv.mp4"
    rc, _, err = run(
        capsys,
        "swap",
        "--model",
        str(graphs["dfm_invert"]),
        "--input",
        str(two_face_clip),
        "--output",
        str(out),
        "--select",
        "all",
        "--color",
        "none",
        "-q",
    )
    assert rc == 0, err
    before, after = decode_all(two_face_clip), decode_all(out)
    b, a = before[N_FRAMES // 2], after[N_FRAMES // 2]
    far = np.ones(b.shape[:2], bool)
    for x0, y0, x1, y1 in face_boxes(b, store).astype(int):
        cx0, cy0 = x0 + (x1 - x0) // 4, y0 + (y1 - y0) // 4
        cx1, cy1 = x1 - (x1 - x0) // 4, y1 - (y1 - y0) // 4
        assert np.abs(a[cy0:cy1, cx0:cx1].astype(float) - b[cy0:cy1, cx0:cx1]).mean() > 40  # changed
        fw = x1 - x0
        far[max(0, y0 - fw) : y1 + fw, max(0, x0 - fw) : x1 + fw] = False
    assert far.sum() > 0.2 * far.size
    # a face width away only codec noise: no pixel changes the way the inverted face does
    big = np.abs(a[far].astype(int) - b[far]).max(axis=-1) > 40
    assert big.mean() < 1e-3, big.mean()
    if os.environ.get("OBS_FACESWAP_SHEETS"):
        cv2.imwrite(str(Path(os.environ["OBS_FACESWAP_SHEETS"]) / "dfm_invert_two_faces.jpg"), np.hstack([b, a]))


@pytest.mark.parametrize("case", ["text", "truncated", "wrong_inputs", "needs_source"])
def test_bad_model_files_are_clear_errors_in_the_cli(two_face_clip, graphs, tmp_path, capsys, case):
    model = tmp_path / "model.onnx"
    extra: list[str] = []
    if case == "text":
        model.write_text("definitely not onnx\n")
        needle = "corrupt or not an ONNX model"
    elif case == "truncated":
        data = graphs["dfm_identity"].read_bytes()
        model = tmp_path / "model.dfm"
        model.write_bytes(data[: len(data) // 3])
        needle = "corrupt or not an ONNX model"
    elif case == "wrong_inputs":
        g.arcface_model(model)
        needle = "not a face-swap model this program knows"
    else:
        model = graphs["inswapper_identity"]
        extra = ["--recognizer", str(graphs["arcface"])]
        needle = "needs --source PHOTO"
    rc, _, err = run(
        capsys,
        "swap",
        "--model",
        str(model),
        *extra,
        "--input",
        str(two_face_clip),
        "--output",
        str(tmp_path / "o.mp4"),
        "-q",
    )
    assert rc == 2 and "Traceback" not in err
    assert needle in err and model.name in err
