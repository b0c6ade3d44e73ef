"""Temporal stability: the swapped face flickers no more than the original face does.

Two clips: segments of dfl_Obama_speaking.mp4 joined with hard cuts (the same speaker
jumping to another moment, and the clip played backwards for a stretch), and a still group
photo (faces/jolie_pitt_couple.jpg, two faces) moved by small known sub-pixel shifts with
sensor-like noise. Flicker = mean absolute frame-to-frame change (BGR, 0..255) inside the
live faces (their mesh outline, eroded), over consecutive frames within a segment (the cut
itself is left out); the swapped clip's flicker is compared with the original's at the
same motion.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.config import PipelineConfig, SelectionConfig
from obs_faceswap.landmark_indices import FACE_OVAL
from obs_faceswap.pipeline import Pipeline

from .swap_helpers import FaceFinder, video_frames

pytestmark = pytest.mark.slow

#: (first, last) frame of each segment, in order; a negative step plays it backwards.
SEGMENTS = ((0, 40, 1), (150, 190, 1), (120, 80, -1), (220, 258, 1))


def cut_clip(media) -> tuple[list[np.ndarray], list[int]]:
    frames = [f for _, f in video_frames(media("dfl_Obama_speaking.mp4"))]
    out, starts = [], []
    for a, b, step in SEGMENTS:
        starts.append(len(out))
        out.extend(frames[i] for i in range(a, b, step))
    return out, starts


def still_clip(read_image, n: int = 40) -> tuple[list[np.ndarray], list[int]]:
    photo = read_image("faces/jolie_pitt_couple.jpg")
    photo = cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        dx, dy = 1.5 * np.sin(i / 5), 1.0 * np.cos(i / 7)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        f = cv2.warpAffine(
            photo, m, (photo.shape[1], photo.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        f = np.clip(f.astype(np.float32) + rng.normal(0, 2.0, f.shape), 0, 255).astype(np.uint8)
        out.append(f)
    return out, [0]


def flicker(frames: list[np.ndarray], starts: list[int], masks: list[np.ndarray | None]) -> float:
    """Mean absolute change between consecutive frames inside both frames' face masks."""
    changes = []
    for i in range(1, len(frames)):
        if i in starts or masks[i] is None or masks[i - 1] is None:
            continue
        where = masks[i] & masks[i - 1]
        if where.sum() < 100:
            continue
        changes.append(float(cv2.absdiff(frames[i], frames[i - 1])[where].mean()))
    return float(np.mean(changes))


def face_masks(frames: list[np.ndarray], finder: FaceFinder) -> list[np.ndarray | None]:
    out: list[np.ndarray | None] = []
    for f in frames:
        faces = finder.all(f)
        if not faces:
            out.append(None)
            continue
        m = np.zeros(f.shape[:2], np.uint8)
        for lm in faces:
            cv2.fillPoly(m, [np.round(lm[list(FACE_OVAL), :2]).astype(np.int32)], 255)
        w = max(3, int(0.04 * np.sqrt(m.sum() / 255)))
        out.append(cv2.erode(m, np.ones((w, w), np.uint8)) > 0)
    return out


@pytest.mark.parametrize("clip", ["cuts", "still"])
def test_swapped_face_flickers_no_more_than_the_original(clip, store, media, read_image):
    frames, starts = cut_clip(media) if clip == "cuts" else still_clip(read_image)
    finder = FaceFinder(store)
    masks = face_masks(frames, finder)
    config = PipelineConfig(selection=SelectionConfig(mode="all"))
    pipe = Pipeline(config, store, source=media("faces/johansson_1.jpg"))
    out = [pipe.process(f, i / 30)[0] for i, f in enumerate(frames)]
    before, after = flicker(frames, starts, masks), flicker(out, starts, masks)
    print(f"\n{clip}: flicker of the original {before:.2f}, swapped {after:.2f}, ratio {after / before:.2f}")
    # The issue asks for 1.1x. Measured: the still clip 0.42x (the source's texture does not
    # carry the sensor noise); the cut clip 0.97x (0.95x in earlier rounds). The cut clip was 1.16-1.21x while the 512²
    # texture was sampled at full size onto a ~150 px face: bilinear taps 3.4 texels apart
    # alias the source's fine detail (Johansson's lashes, eye make-up, skin grain), and that
    # shimmers with every sub-pixel move: 1.49x in the eyes, 1.18x over the skin. Drawn from its
    # pyramid level (swap/meshwarp.py, _MIP_LEVELS) the eyes are at 1.04x and the skin 0.88x.
    # Also measured with the previous frame warped onto the current one through the live mesh
    # (motion removed): 1.26x -> 0.94x.
    assert after <= 1.1 * before
