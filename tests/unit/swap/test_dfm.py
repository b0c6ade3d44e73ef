"""Contract tests for DeepFaceLive .dfm models on graphs with the DFM signature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from obs_faceswap import align, merge
from obs_faceswap.errors import ConfigError, ModelLoadError
from obs_faceswap.swap import Swapper
from obs_faceswap.swap.dfm import DEFAULT_MORPH, DFMSwapper
from tests import swap_graphs as g
from tests.unit.swap.test_oneshot import CPU, KPS, face_at, textured_frame


def test_resolution_is_read_from_the_model_and_the_crop_is_dfl_whole_face(tmp_path: Path) -> None:
    sw = DFMSwapper(g.dfm_model(tmp_path / "celeb.dfm", 192), CPU)
    assert isinstance(sw, Swapper) and not sw.needs_source
    assert sw.resolution == 192 and sw.has_morph
    frame = textured_frame()
    r = sw.swap(frame, face_at(KPS))
    assert r is not None and r.live is not None
    want, m = align.warp_face(frame, KPS, "dfl_whole_face", 192)
    assert np.array_equal(r.live, want)
    # identity celebrity: the crop is the live face (BGR 0..1 NHWC in and out)
    assert np.abs(r.crop.astype(int) - want).max() <= 1
    out = frame.copy()
    merge.paste_back(out, r)
    assert np.abs(out[210:300, 280:360].astype(float) - frame[210:300, 280:360]).mean() < 1.5


def test_inverting_model_changes_the_face_and_nothing_far_away(tmp_path: Path) -> None:
    sw = DFMSwapper(g.dfm_model(tmp_path / "inv.dfm", 224, "invert"), CPU)
    frame = textured_frame()
    r = sw.swap(frame, face_at(KPS))
    assert r is not None
    out = frame.copy()
    merge.paste_back(out, r)
    centre = (out[230:290, 290:350].astype(int) + frame[230:290, 290:350]).mean()
    assert abs(centre - 255) < 3  # inverted: out + in = 255
    assert np.array_equal(out[:, :60], frame[:, :60])  # a face width away: untouched


def test_morph_value_reaches_the_model(tmp_path: Path) -> None:
    frame = np.full((480, 640, 3), 200, np.uint8)
    for morph in (DEFAULT_MORPH, 0.25):
        sw = DFMSwapper(g.dfm_model(tmp_path / "amp.dfm", 224, "morph"), CPU, morph=morph)
        r = sw.swap(frame, face_at(KPS))
        assert r is not None
        assert abs(float(r.crop.mean()) - 200 * morph) < 1.0


def test_masks_are_combined_eroded_and_blurred(tmp_path: Path) -> None:
    sw = DFMSwapper(g.dfm_model(tmp_path / "m.dfm", 256, mask_box=0.25), CPU)
    r = sw.swap(textured_frame(), face_at(KPS))
    assert r is not None
    assert r.mask[128, 128] == 255 and r.mask[10, 10] == 0 and r.mask[128, 10] == 0
    edge = r.mask[128, 50:90]
    assert 0 < edge.min() < 255 or len(np.unique(edge)) > 2  # soft edge, not a hard step


def test_model_without_morph_input_works(tmp_path: Path) -> None:
    sw = DFMSwapper(g.dfm_model(tmp_path / "saehd.dfm", 224, morph=False), CPU)
    assert not sw.has_morph
    assert sw.swap(textured_frame(), face_at(KPS)) is not None


@pytest.mark.parametrize("case", ["not_dfm", "text", "truncated", "morph"])
def test_malformed_dfm_files_get_a_clear_error(tmp_path: Path, case: str) -> None:
    p = tmp_path / "bad.dfm"
    if case == "not_dfm":
        g.arcface_model(p)
        err, match = ModelLoadError, "no input named 'in_face:0'"
    elif case == "text":
        p.write_text("hello")
        err, match = ModelLoadError, "corrupt or not an ONNX model"
    elif case == "truncated":
        g.dfm_model(p)
        p.write_bytes(p.read_bytes()[:300])
        err, match = ModelLoadError, "corrupt or not an ONNX model"
    else:
        g.dfm_model(p)
        err, match = ConfigError, "--morph"
    with pytest.raises(err, match=match):
        DFMSwapper(p, CPU, morph=1.5 if case == "morph" else DEFAULT_MORPH)
