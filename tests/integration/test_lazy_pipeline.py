"""The pipeline on the engine's lazily converted frames swaps the face as it does on BGR
frames, and converts only a fraction of the frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.config import PipelineConfig
from obs_faceswap.engine import frames as F
from obs_faceswap.engine import protocol as P
from obs_faceswap.pipeline import Pipeline
from obs_faceswap.video_formats import VideoFormat

# Resampling differs slightly between the two paths (see tests/unit/test_frame.py), so the
# landmarks and hence the rendered face differ by a fraction of a pixel.
MEAN_DIFF_TOL = 4.0


@pytest.fixture(scope="module")
def frames(media):
    cap = cv2.VideoCapture(str(media("dfl_Obama_speaking.mp4")))
    out = []
    for _ in range(12):
        ok, f = cap.read()
        assert ok
        out.append(cv2.resize(f, (1280, 720), interpolation=cv2.INTER_LINEAR))
    return out


@pytest.mark.parametrize("fmt", [VideoFormat.I420, VideoFormat.NV12, VideoFormat.YUY2], ids=lambda f: P.FORMAT_NAMES[f])
def test_lazy_frames_swap_like_bgr_frames(fmt, frames, store, media):
    color = F.ColorParams.standard("709", full_range=False)
    h, w = frames[0].shape[:2]
    eager = Pipeline(PipelineConfig(), store, source=media("astronaut.png"))
    lazy = Pipeline(PipelineConfig(), store, source=media("astronaut.png"))
    out = np.zeros((h, w, 3), np.uint8)
    for i, bgr in enumerate(frames):
        fb = F.FrameBuffer.allocate(fmt, w, h)
        F.from_bgr(bgr, fb.planes, fmt, w, h, color)
        decoded = F.to_bgr(fb.planes, fmt, w, h, color)
        expected, rep_e = eager.process(decoded, i / 30)
        frame = F.PlanesFrame(fb.planes, fmt, w, h, color, out=out)
        got, rep_l = lazy.process(frame, i / 30)
        assert rep_l.swapped == rep_e.swapped == 1
        x0, y0, x1, y1 = rep_l.changed_xyxy
        ex0, ey0, ex1, ey1 = rep_e.changed_xyxy
        assert abs(x0 - ex0) <= 4 and abs(y0 - ey0) <= 4 and abs(x1 - ex1) <= 4 and abs(y1 - ey1) <= 4
        diff = np.abs(got[y0:y1, x0:x1].astype(int) - expected[y0:y1, x0:x1]).mean()
        assert diff < MEAN_DIFF_TOL, f"frame {i}: mean difference {diff:.2f}"
        converted = sum((b[2] - b[0]) * (b[3] - b[1]) for b in frame.loaded)
        assert converted < 0.4 * w * h, f"frame {i} converted {converted / (w * h):.0%} of the frame"
