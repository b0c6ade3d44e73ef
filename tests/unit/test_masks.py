"""Masks for neural swaps: box, occlusion (XSeg format), parsing (BiSeNet format), mouth; minimum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from obs_faceswap import masks
from obs_faceswap.errors import ConfigError, ModelLoadError
from obs_faceswap.landmark_indices import LIPS_INNER
from tests import swap_graphs as g
from tests.unit.swap.test_oneshot import CPU


def test_box_mask_is_inswappers_feathered_square() -> None:
    m = masks.box_mask(128)
    assert m.shape == (128, 128) and m.dtype == np.uint8
    assert m[64, 64] == 255 and m[0, 0] == 0 and m[64, 2] == 0
    assert 0 < m[64, 12] < 255  # eroded by 12 px, blurred by a 13-px kernel


def test_combine_takes_the_minimum() -> None:
    a = np.array([[0, 100], [200, 255]], np.uint8)
    b = np.array([[50, 50], [250, 10]], np.uint8)
    assert masks.combine([a, b]).tolist() == [[0, 50], [200, 10]]
    with pytest.raises(ValueError):
        masks.combine([a, np.zeros((3, 3), np.uint8)])


def test_mouth_mask_keeps_the_live_mouth_and_grows_with_its_setting() -> None:
    lm = np.zeros((468, 2), np.float32) + 10
    ring = np.array(
        [[100 + 30 * np.cos(t), 180 + 10 * np.sin(t)] for t in np.linspace(0, 2 * np.pi, 20, endpoint=False)]
    )
    lm[list(LIPS_INNER)] = ring
    small = masks.mouth_mask(lm, 256, grow=0.0, soft=0.0)
    big = masks.mouth_mask(lm, 256, grow=0.05, soft=0.0)
    assert small[180, 100] == 0 and small[100, 100] == 255
    assert (big == 0).sum() > 2 * (small == 0).sum()


def test_occlusion_model_reads_bgr_nhwc_and_smooths(tmp_path: Path) -> None:
    occ = masks.OcclusionModel(g.xseg_model(tmp_path / "xseg.onnx"), CPU)
    crop = np.zeros((200, 200, 3), np.uint8)
    crop[..., 2] = 255  # red (BGR) = face for this graph
    crop[80:120, 80:120] = (255, 0, 0)  # a blue "hand": occludes
    m = occ(crop)
    assert m.shape == (200, 200)
    assert m[10, 10] == 255 and m[100, 100] == 0


def test_face_parser_uses_rgb_imagenet_and_chosen_regions(tmp_path: Path) -> None:
    crop = np.zeros((128, 128, 3), np.uint8)
    crop[:, :64, 2] = 255  # left half red (RGB red high → class 1, skin)
    skin = masks.FaceParser(g.bisenet_model(tmp_path / "b.onnx", cls_for_red=1), CPU, ("skin",))(crop)
    assert skin[64, 10] == 255 and skin[64, 120] == 0
    lips_only = masks.FaceParser(g.bisenet_model(tmp_path / "b.onnx", cls_for_red=1), CPU, ("lips",))(crop)
    assert lips_only.max() == 0
    with pytest.raises(ConfigError, match="hair"):
        masks.FaceParser(tmp_path / "b.onnx", CPU, ("hair",))


def test_mask_models_with_wrong_signatures_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="XSeg"):
        masks.OcclusionModel(g.bisenet_model(tmp_path / "b.onnx"), CPU)
    with pytest.raises(ModelLoadError, match="BiSeNet"):
        masks.FaceParser(g.xseg_model(tmp_path / "x.onnx"), CPU)


def test_mask_settings_validate() -> None:
    with pytest.raises(ConfigError, match="--occlusion-model"):
        masks.MaskSettings(kinds=("occlusion",))
    with pytest.raises(ConfigError, match="unknown mask"):
        masks.MaskSettings(kinds=("hands",))


def test_mask_stage_combines_everything_chosen(tmp_path: Path) -> None:
    stage = masks.MaskStage(
        masks.MaskSettings(
            kinds=("box", "occlusion", "mouth"), occlusion_model=str(g.xseg_model(tmp_path / "x.onnx", 0.9))
        ),
        CPU,
    )
    lm = np.zeros((468, 2), np.float32) + 5
    lm[list(LIPS_INNER)] = [[120 + 20 * np.cos(t), 200 + 8 * np.sin(t)] for t in np.linspace(0, 6.28, 20)]
    base = masks.box_mask(256)
    m = stage(base, np.zeros((256, 256, 3), np.uint8), lm)
    assert m[200, 120] == 0  # mouth kept real
    assert m[100, 128] == 204 and m[0, 0] == 0  # occlusion 0.9 → (0.9 - 0.5) · 2 = 0.8
