"""Building neural swappers from files, and the merge-stage work on their results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from obs_faceswap.config import NeuralSwapperConfig
from obs_faceswap.errors import ConfigError, ModelLoadError, ModelNotFoundError
from obs_faceswap.models import ModelStore
from obs_faceswap.swap.dfm import DFMSwapper
from obs_faceswap.swap.neural import NeuralMerge, create_model_swapper
from obs_faceswap.swap.oneshot import OneShotSwapper
from obs_faceswap.swap.specs import SPECS
from tests import swap_graphs as g
from tests.unit.swap.test_oneshot import CPU, KPS, face_at, source_face, textured_frame


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBS_FACESWAP_CACHE", str(tmp_path / "cache"))


def test_dfm_file_builds_the_dfm_swapper(tmp_path: Path) -> None:
    sw = create_model_swapper(g.dfm_model(tmp_path / "x.dfm"), NeuralSwapperConfig(morph=0.5), CPU)
    assert isinstance(sw, DFMSwapper) and sw.morph == 0.5
    # a DFM exported with an .onnx name is recognised by its input names
    sw2 = create_model_swapper(g.dfm_model(tmp_path / "y.onnx"), None, CPU)
    assert isinstance(sw2, DFMSwapper)


def test_one_photo_model_uses_the_named_recognizer(tmp_path: Path) -> None:
    rec = g.arcface_model(tmp_path / "my_arcface.onnx")
    m = g.oneshot_model(tmp_path / "inswapper_128.onnx", SPECS["inswapper_128"], "identity")
    sw = create_model_swapper(m, NeuralSwapperConfig(recognizer=str(rec)), CPU)
    assert isinstance(sw, OneShotSwapper) and sw.spec.name == "inswapper_128"
    sw.set_source([source_face()])
    assert sw.swap(textured_frame(), face_at(KPS)) is not None


def test_missing_recognizer_says_how_to_get_one(tmp_path: Path) -> None:
    m = g.oneshot_model(tmp_path / "inswapper_128.onnx", SPECS["inswapper_128"], "identity")
    store = ModelStore(tmp_path / "none", cache_dir=tmp_path / "c", allow_download=False)
    with pytest.raises(ModelNotFoundError, match="models fetch w600k_r50.*--recognizer"):
        create_model_swapper(m, None, CPU, store)


@pytest.mark.parametrize("case", ["missing", "text", "not_a_swapper"])
def test_bad_model_files_get_a_clear_error(tmp_path: Path, case: str) -> None:
    p = tmp_path / "model.onnx"
    if case == "text":
        p.write_text("not a model")
    elif case == "not_a_swapper":
        g.arcface_model(p)
    err = {"missing": ModelNotFoundError, "text": ModelLoadError, "not_a_swapper": ModelLoadError}[case]
    with pytest.raises(err, match="model.onnx"):
        create_model_swapper(p, None, CPU)


def test_neural_config_validates() -> None:
    with pytest.raises(ConfigError, match="morph"):
        NeuralSwapperConfig(morph=2.0)
    with pytest.raises(ConfigError, match="--occlusion-model"):
        NeuralSwapperConfig(masks=("box", "occlusion"))


def test_merge_matches_colours_and_keeps_the_live_mouth(tmp_path: Path) -> None:
    sw = create_model_swapper(g.dfm_model(tmp_path / "inv.dfm", 224, "invert"), None, CPU)
    frame = textured_frame()
    face = face_at(KPS)
    r = sw.swap(frame, face)
    assert r is not None and r.live is not None
    plain = NeuralMerge(NeuralSwapperConfig(color="none")).finish(r, face)
    rct = NeuralMerge(NeuralSwapperConfig(color="rct")).finish(r, face)
    inside = r.mask > 200
    live_mean = r.live[inside].mean(axis=0)
    # the inverted face's colours are pulled to the live face's statistics
    assert (
        np.abs(rct.crop[inside].mean(axis=0) - live_mean).max()
        < np.abs(plain.crop[inside].mean(axis=0) - live_mean).max() / 3
    )
    mouth = NeuralMerge(NeuralSwapperConfig(masks=("box", "mouth"), color="none")).finish(r, face)
    assert mouth.mask.sum() < r.mask.sum()


def test_a_manifest_name_is_the_verified_file_from_the_store(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "none", cache_dir=tmp_path / "c", allow_download=False)
    with pytest.raises(ModelNotFoundError, match="inswapper_128.onnx.*e4a3f08c753cb72d"):
        create_model_swapper("inswapper_128", None, CPU, store)
