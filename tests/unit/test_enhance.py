"""Face enhancer (GFPGAN/GPEN format) on graphs with that signature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from obs_faceswap import align, merge
from obs_faceswap.enhance import Enhancer
from obs_faceswap.errors import ConfigError, ModelLoadError
from tests import swap_graphs as g
from tests.unit.swap.test_oneshot import CPU, KPS, face_at, textured_frame


@pytest.mark.parametrize(("size", "template"), [(512, "ffhq_512"), (256, "arcface_128")])
def test_identity_enhancer_leaves_the_face_unchanged(tmp_path: Path, size: int, template: str) -> None:
    enh = Enhancer(g.enhancer_model(tmp_path / "e.onnx", size), CPU)
    assert enh.template == template
    frame = textured_frame()
    r = enh.enhance(frame, face_at(KPS))
    want, _ = align.warp_face(frame, KPS, template, size)
    assert np.abs(r.crop.astype(int) - want).max() <= 1  # RGB −1..1 in and out
    out = frame.copy()
    merge.paste_back(out, r)
    assert np.abs(out[210:300, 280:360].astype(float) - frame[210:300, 280:360]).mean() < 1.5


def test_every_nth_frame_reuses_the_last_detail(tmp_path: Path) -> None:
    enh = Enhancer(g.enhancer_model(tmp_path / "e.onnx", 256, "invert"), CPU, every=3)
    calls = []
    real = enh.restore
    enh.restore = lambda crop: calls.append(1) or real(crop)  # type: ignore[method-assign]
    frame = textured_frame()
    first = enh.enhance(frame, face_at(KPS))
    for _ in range(2):
        again = enh.enhance(frame, face_at(KPS))
        assert np.array_equal(again.crop, first.crop)  # same frame: detail reapplied exactly
    enh.enhance(frame, face_at(KPS))
    assert len(calls) == 2  # frames 0 and 3


def test_wrong_files_and_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="GFPGAN/GPEN"):
        Enhancer(g.arcface_model(tmp_path / "a.onnx"), CPU)
    with pytest.raises(ConfigError, match="--enhance-every"):
        Enhancer(g.enhancer_model(tmp_path / "e.onnx", 256), CPU, every=0)
