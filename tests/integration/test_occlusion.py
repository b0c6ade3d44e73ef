"""What is in front of the live face stays in front: the swap never paints over it.

Synthetic occluders composited onto frames of dfl_Obama_speaking.mp4 from frame 10 on: a
hand-coloured shape over one cheek (a real hand's tone, textured and shaded like skin) and a
dark bar in front of the chin, like a microphone. The default pipeline (astronaut.png as the
source) swaps every frame; from two frames after they appear, the occluders' pixels are
unchanged in the output while the rest of the face is still swapped.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.config import PipelineConfig, apply_updates
from obs_faceswap.pipeline import Pipeline

from .swap_helpers import FaceFinder, video_frames

pytestmark = pytest.mark.slow

FRAMES = 30
APPEAR = 10
#: A hand's colour (BGR), a little warmer and darker than the face it covers.
HAND = (96, 128, 182)


def occluders(shape: tuple[int, ...], lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks (uint8 0/255) of a hand over the image-left cheek and a microphone at the chin."""
    h, w = shape[:2]
    xy = lm[:, :2]
    face_w = float(np.ptp(xy[:, 0]))
    hand = np.zeros((h, w), np.uint8)
    cheek = xy[[50, 101, 118, 123, 147, 187, 205, 207]].mean(axis=0)  # subject's right cheek
    cv2.ellipse(hand, (int(cheek[0]), int(cheek[1])), (int(0.16 * face_w), int(0.11 * face_w)), 30, 0, 360, 255, -1)
    mic = np.zeros((h, w), np.uint8)
    chin = xy[152]
    bar_w = int(0.09 * face_w)
    cv2.rectangle(
        mic, (int(chin[0]) - bar_w // 2, int(chin[1] - 0.22 * face_w)), (int(chin[0]) + bar_w // 2, h - 1), 255, -1
    )
    return hand, mic


def composite(frame: np.ndarray, hand: np.ndarray, mic: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = frame.copy()
    # the hand: skin tone with shading and fine texture, not a flat colour
    yy = np.linspace(-1, 1, frame.shape[0], dtype=np.float32)[:, None]
    shade = 1.0 + 0.12 * yy + rng.normal(0, 0.03, frame.shape[:2]).astype(np.float32)
    skin = np.clip(np.array(HAND, np.float32)[None, None, :] * shade[..., None], 0, 255).astype(np.uint8)
    out[hand > 0] = skin[hand > 0]
    out[mic > 0] = (38, 36, 35)
    return out


@pytest.fixture(scope="module")
def clip(store, media):
    finder = FaceFinder(store)
    frames = [f for i, f in video_frames(media("dfl_Obama_speaking.mp4")) if i < FRAMES]
    lm = finder(frames[0])
    assert lm is not None
    hand, mic = occluders(frames[0].shape, lm)
    rng = np.random.default_rng(0)
    out = [composite(f, hand, mic, rng) if i >= APPEAR else f for i, f in enumerate(frames)]
    return out, hand, mic


@pytest.fixture(scope="module")
def swapped(clip, store, media):
    frames, _, _ = clip
    pipe = Pipeline(PipelineConfig(), store, source=media("astronaut.png"))
    results = []
    for i, f in enumerate(frames):
        out, report = pipe.process(f, i / 30)
        results.append((out, report))
    return results


def test_occluders_in_front_of_the_face_are_never_painted_over(clip, swapped):
    frames, hand, mic = clip
    inner = {name: cv2.erode(m, np.ones((5, 5), np.uint8)) > 0 for name, m in (("hand", hand), ("mic", mic))}
    changed = {}
    for i in range(APPEAR + 2, FRAMES):
        diff = cv2.absdiff(frames[i], swapped[i][0]).max(axis=2) > 0
        for name, where in inner.items():
            changed[(i, name)] = int((diff & where).sum())
    print(f"\noccluder pixels changed per frame: {changed}")
    assert {k: v for k, v in changed.items() if v > 0} == {}


def test_the_rest_of_the_face_is_still_swapped(clip, swapped):
    frames, hand, mic = clip
    for i in (APPEAR - 1, APPEAR + 2, FRAMES - 1):
        out, report = swapped[i]
        assert report.swapped == 1, i
        diff = cv2.absdiff(frames[i], out).max(axis=2) > 8
        assert diff.sum() > 3000, (i, int(diff.sum()))


def test_with_keep_occluders_off_the_swap_covers_them_too(clip, store, media):
    """The privacy-first choice: nothing in front of the face is left showing.

    The hand's pixels are replaced (more than 8 levels changed) on at least 80 % of them; the
    rest is the swap taking the hand's colour: the live lighting field counts a skin-coloured
    hand as skin, so it shows as a lighter blob in the swapped cheek (measured 84-89 %
    changed by > 8, 92-93 % by > 4; before the finer lighting field of issue 8, > 90 %). No
    pixel of the face behind it can show: the hand is painted over, only tinted by it.
    """
    frames, hand, mic = clip
    config = apply_updates(PipelineConfig(), {"swapper.photo.mask.keep_occluders": False})
    pipe = Pipeline(config, store, source=media("astronaut.png"))
    inner = cv2.erode(hand, np.ones((5, 5), np.uint8)) > 0  # the hand lies on the cheek (the mic leaves the face)
    covered = []
    for i, f in enumerate(frames):
        out, _ = pipe.process(f, i / 30)
        if i >= APPEAR + 2:
            covered.append(float((cv2.absdiff(f, out).max(axis=2) > 8)[inner].mean()))
    assert min(covered) > 0.8, covered
