"""Face-swap model files in the engine (what the OBS filter's 'Face-swap model' setting drives)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from obs_faceswap.engine.server import EngineServer
from obs_faceswap.models import ModelStore
from obs_faceswap.pipeline import Pipeline
from obs_faceswap.swap.dfm import DFMSwapper
from obs_faceswap.swap.specs import SPECS
from tests import swap_graphs as g


@pytest.fixture
def server(models_dir):
    s = EngineServer(Pipeline, io.BytesIO(), store_factory=lambda d: ModelStore(models_dir, allow_download=False))
    yield s
    s.close()


def last(server: EngineServer) -> dict:
    return json.loads(server.out.getvalue().splitlines()[-1])  # type: ignore[attr-defined]


def test_a_dfm_model_runs_without_a_photo(server, tmp_path: Path):
    model = g.dfm_model(tmp_path / "celeb.dfm", 224, "invert")
    server.handle(("S", {"swapper.kind": "model", "swapper.model": str(model), "swapper.neural.morph": 0.6}))
    st = last(server)
    assert st["state"] == "running" and st["message"] == "", st
    assert isinstance(server.processor.swapper, DFMSwapper) and server.processor.swapper.morph == 0.6


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("text", "corrupt or not an ONNX model"),
        ("arcface", "not a face-swap model this program knows"),
        ("missing", "face-swap model not found"),
    ],
)
def test_unusable_model_files_are_reported_by_name(server, tmp_path: Path, content: str, needle: str):
    model = tmp_path / "broken.onnx"
    if content == "text":
        model.write_text("hello")
    elif content == "arcface":
        g.arcface_model(model)
    server.handle(("S", {"swapper.kind": "model", "swapper.model": str(model)}))
    st = last(server)
    assert st["state"] == "error" and needle in st["message"] and "broken.onnx" in st["message"], st
    assert server.processor is None


def test_a_one_photo_model_without_a_photo_says_so(server, tmp_path: Path):
    model = g.oneshot_model(tmp_path / "inswapper_128.onnx", SPECS["inswapper_128"], "identity")
    rec = g.arcface_model(tmp_path / "w600k_r50.onnx")
    server.handle(("S", {"swapper.kind": "model", "swapper.model": str(model), "swapper.neural.recognizer": str(rec)}))
    st = last(server)
    assert "inswapper_128.onnx needs a source photo" in st["message"], st


def test_changing_morph_or_masks_keeps_the_model_loaded(server, tmp_path: Path):
    model = g.dfm_model(tmp_path / "celeb.dfm", 224)
    server.handle(("S", {"swapper.kind": "model", "swapper.model": str(model)}))
    swapper = server.processor.swapper
    server.handle(
        (
            "S",
            {
                "swapper.kind": "model",
                "swapper.model": str(model),
                "swapper.neural.morph": 0.3,
                "swapper.neural.masks": "box,mouth",
            },
        )
    )
    assert last(server)["state"] == "running"
    assert server.processor.swapper is swapper and swapper.morph == 0.3
    assert server.processor.neural.masks is not None


@pytest.mark.slow
def test_model_swaps_read_only_loaded_pixels_of_lazy_frames(store, media, tmp_path: Path):
    """DFM swap, mouth mask, colour transfer and enhancer on poisoned lazy frames (what the engine
    hands the pipeline) give exactly the eager output."""
    import cv2

    from obs_faceswap.config import PipelineConfig, apply_updates
    from tests.integration.test_swapper_seam import assert_same_inside_changes, run_both

    cap = cv2.VideoCapture(str(media("dfl_Obama_speaking.mp4")))
    clip = [cap.read()[1] for _ in range(3)]
    cap.release()
    config = apply_updates(
        PipelineConfig(),
        {
            "swapper.kind": "model",
            "swapper.model": str(g.dfm_model(tmp_path / "inv.dfm", 224, "invert")),
            "swapper.neural.masks": "box,mouth",
            "swapper.neural.color": "rct",
            "swapper.neural.enhancer": str(g.enhancer_model(tmp_path / "gpen.onnx", 256, "identity")),
        },
    )
    pairs = run_both(config, store, clip)
    assert all(rep.swapped == 1 and "enhance" in rep.timings_ms for _, _, rep in pairs)
    assert_same_inside_changes(pairs)
