"""Pipeline.process on real frames: pass-through, containment, live updates, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.config import PipelineConfig, apply_updates
from obs_faceswap.errors import FrameFormatError, InputError, NoFaceError
from obs_faceswap.pipeline import Pipeline

from .swap_helpers import video_frames

STAGES = {"landmarks", "select", "swap", "merge", "inference", "total"}


@pytest.fixture(scope="module")
def clip(media):
    return [f for _, f in video_frames(media("dfl_Obama_speaking.mp4"), 1)][:40]


@pytest.fixture()
def pipe(store, media):
    return Pipeline(PipelineConfig(), store, source=media("astronaut.png"))


def test_a_frame_without_a_face_passes_through_unchanged(pipe, read_image):
    background = np.ascontiguousarray(read_image("astronaut.png")[300:, 350:])  # the shuttle model
    keep = background.copy()
    out, report = pipe.process(background)
    assert out is background and np.array_equal(background, keep)
    assert report.faces == [] and report.swapped == 0 and report.changed_xyxy is None
    assert report.detected and "detect" in report.timings_ms


def test_swapped_frames_change_only_the_face_and_report_each_stage(pipe, clip):
    for i, frame in enumerate(clip[:12]):
        original = frame.copy()
        out, report = pipe.process(frame, i / 30)
        assert np.array_equal(frame, original), "the input must not be modified (inplace=False)"
        assert report.swapped == 1 and len(report.faces) == 1
        assert set(report.timings_ms) >= STAGES, report.timings_ms
        assert report.timings_ms["inference"] < report.timings_ms["total"]
        x0, y0, x1, y1 = report.changed_xyxy
        changed = np.any(out != original, axis=2)
        ys, xs = np.nonzero(changed)
        assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
        fx0, fy0, fx1, fy1 = report.faces[0].xyxy
        assert x0 >= fx0 - 4 and y0 >= fy0 - 4 and x1 <= fx1 + 4 and y1 <= fy1 + 4
        assert changed.mean() > 0.02
    assert report.detected is False  # tracking, not detecting, after the first frame


def test_settings_apply_live_without_losing_the_source(pipe, clip):
    pipe.process(clip[0], 0.0)
    pipe.update(apply_updates(pipe.config, {"blend.opacity": 0.0}))
    out, report = pipe.process(clip[1], 1 / 30)
    assert report.swapped == 1 and np.array_equal(out, clip[1])  # opacity 0: nothing visible
    pipe.update(
        apply_updates(
            pipe.config,
            {"blend.opacity": 1.0, "badge.enabled": True, "detector.kind": "scrfd", "landmarks.kind": "mesh478"},
        )
    )
    out, report = pipe.process(clip[2], 2 / 30)
    assert report.swapped == 1 and len(report.changed_boxes) == 2  # the face and the badge
    assert not np.array_equal(out, clip[2])
    pipe.update(apply_updates(pipe.config, {"enabled": False}))
    out, report = pipe.process(clip[3], 3 / 30)
    assert out is clip[3] and report.swapped == 0


def test_bad_frames_and_bad_sources_raise_clear_errors_and_keep_the_old_source(pipe, clip, tmp_path):
    for bad in (clip[0][:, :, 0], clip[0].astype(np.float32), np.zeros((4, 4, 3), np.uint8)):
        with pytest.raises(FrameFormatError):
            pipe.process(bad)
    flat = tmp_path / "wall.png"
    cv2.imwrite(str(flat), np.full((300, 300, 3), 128, np.uint8))
    with pytest.raises(NoFaceError, match="wall.png"):
        pipe.set_source(flat)
    garbage = tmp_path / "photo.jpg"
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="photo.jpg"):
        pipe.set_source(garbage)
    _, report = pipe.process(clip[0], 0.0)
    assert report.swapped == 1  # the astronaut is still the source
