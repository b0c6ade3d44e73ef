"""Item 5 of issue 8: the photo swapper's output mouth opens and closes with the live one, and
blinks are kept. Measured by running the face mesh on the OUTPUT frames of a talking clip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.config import BlendConfig
from obs_faceswap.geometry import load_canonical_face
from obs_faceswap.landmark_indices import LIPS_INNER
from obs_faceswap.merge import paste_back
from obs_faceswap.sources import analyse_source
from obs_faceswap.swap.meshwarp import PhotoSwapper
from obs_faceswap.types import Face

from .swap_helpers import FaceFinder, video_frames

# Inner lips (upper, lower) at the middle and at a quarter from each corner.
_LIP_PAIRS = ((13, 14), (82, 87), (312, 317))
# Eyelids (upper, lower) and corners per eye.
_EYES = (((159, 145), (158, 153), (33, 133)), ((386, 374), (385, 380), (362, 263)))


def mouth_opening(lm: np.ndarray) -> float:
    """Mean inner-lip gap over the face's height."""
    gap = np.mean([np.linalg.norm(lm[a, :2] - lm[b, :2]) for a, b in _LIP_PAIRS])
    return float(gap / np.ptp(lm[:, 1]))


def eye_aspect(lm: np.ndarray) -> float:
    """Eye aspect ratio (lid gap over eye width), both eyes averaged."""
    out = []
    for (u1, l1), (u2, l2), (c1, c2) in _EYES:
        gap = np.linalg.norm(lm[u1, :2] - lm[l1, :2]) + np.linalg.norm(lm[u2, :2] - lm[l2, :2])
        out.append(gap / (2 * np.linalg.norm(lm[c1, :2] - lm[c2, :2])))
    return float(np.mean(out))


def close_eyes(frame: np.ndarray, lm: np.ndarray, share: float) -> np.ndarray:
    """The mesh with both upper lids lowered ``share`` of the way to the lower ones (a blink)."""
    out = lm.copy()
    upper = (246, 161, 160, 159, 158, 157, 173, 466, 388, 387, 386, 385, 384, 398)
    lower = (7, 163, 144, 145, 153, 154, 155, 249, 390, 373, 374, 380, 381, 382)
    for u, lo in zip(upper, lower, strict=True):
        out[u] = lm[u] + share * (lm[lo] - lm[u])
    return out


@pytest.fixture(scope="module")
def finder(store):
    return FaceFinder(store)


@pytest.fixture(scope="module")
def clip(media, finder):
    """Every 2nd frame of the talking clip with its live mesh."""
    out = []
    for _, frame in video_frames(media("dfl_Obama_speaking.mp4"), 2):
        lm = finder(frame)
        assert lm is not None
        out.append((frame, lm))
    return out


@pytest.fixture(scope="module")
def swapper(read_image, finder, store):
    canonical = load_canonical_face(str(store.path("canonical_face")))
    image = read_image("faces/dicaprio_1.jpg")
    src = analyse_source(image, finder.detector, finder.mesh, name="dicaprio_1.jpg")
    return PhotoSwapper.from_photo(image, src.landmarks, canonical)


def swapped(sw: PhotoSwapper, frame: np.ndarray, lm: np.ndarray) -> np.ndarray:
    r = sw.swap(frame, Face(0, lm))
    assert r is not None
    out = frame.copy()
    paste_back(out, r, BlendConfig())
    return out


@pytest.mark.slow
def test_output_mouth_opens_and_closes_with_the_live_one(clip, swapper, finder):
    """The output shows the live mouth opening itself (keep_mouth), and the face mesh run on the
    output follows the live mouth's opening and closing.

    The mesh's mean reading of the output is not the opening the user sees. Inside the live
    inner-lip contour the output IS the live frame (the mask there is at most 0.004 on all 130
    frames), yet the mesh reads the output's mouth 0.69-0.72x as open as the live one (0.91x before
    the colour work): it reads the lips around the opening, here the live lips blended into
    the source's (dicaprio_1's lip border, whose contrast the colour transfer now keeps, shows
    above the live upper lip). Cutting the hole tighter, so the source's lips replace the live
    ones around the same live opening, brings the reading to 0.88x: the figure follows the
    lips' look, not the opening. So the opening is asserted on pixels, and the mesh's mean only
    at what is reached (0.69x), so that it cannot get worse. The live lips the hole shows now
    take the source's lip colour, the contour's rim included (a closed mouth's contour is a
    sliver of lip): the opening's core is asserted (the contour shrunk by 3 % of the face
    width); reading 0.68x, correlation 0.976, amplitude 0.99 (0.69x, 0.956, 0.84 before). The
    source's lips are no longer moved beside the live ones (that drew dicaprio_1's lip border as
    a second upper lip): 0.74x, 0.969, 1.08 (0.77x, 0.977, 1.09 just before).
    """
    live, shown, diffs = [], [], []
    for frame, lm in clip:
        out = swapped(swapper, frame, lm)
        out_lm = finder(out)
        assert out_lm is not None
        live.append(mouth_opening(lm))
        shown.append(mouth_opening(out_lm))
        hole = np.zeros(frame.shape[:2], np.uint8)
        cv2.fillPoly(hole, [np.round(lm[list(LIPS_INNER), :2]).astype(np.int32)], 255)
        # the opening's core: the contour's rim is lip, recoloured to the source's lips like the
        # rest (the swapper leaves the contour shrunk by 1 % of the face width alone; 3 % here)
        rim = 0.03 * float(np.ptp(lm[:, 0]))
        hole = cv2.erode(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(2 * rim) | 1,) * 2))
        if np.count_nonzero(hole) >= 20:
            diffs.append(float(cv2.absdiff(out, frame)[hole > 0].mean()))
    a, b = np.array(live), np.array(shown)
    assert a.std() > 0.01, "the clip talks"
    corr = float(np.corrcoef(a, b)[0, 1])
    amplitude = float(b.std() / a.std())
    print(f"mouth opening: corr {corr:.3f}, amplitude ratio {amplitude:.2f}, mean {a.mean():.3f} -> {b.mean():.3f}")
    print(f"live opening shown on {len(diffs)} frames, worst mean change inside it {max(diffs):.2f}")
    assert len(diffs) > len(clip) // 2, "the mouth is open on most frames"
    assert max(diffs) < 1.0, max(diffs)
    assert corr > 0.8, corr
    assert 0.75 < amplitude < 1.3, amplitude
    assert b.mean() > 0.65 * a.mean(), (a.mean(), b.mean())


@pytest.fixture(scope="module")
def eyes478(store, finder):
    """Eye aspect ratio of the largest face in an image, read with the 478-point mesh."""
    from obs_faceswap.config import LandmarkConfig
    from obs_faceswap.nets.landmarks import Roi, create_landmarker

    mesh478 = create_landmarker(LandmarkConfig(kind="mesh478"), store)

    def read(image: np.ndarray) -> float:
        dets = finder.detector.detect(image)
        assert len(dets), "no face"
        i = int(np.argmax(dets.areas))
        pts, _ = mesh478.infer(image, Roi.from_keypoints(dets.xyxy[i], dets.keypoints[i]))
        pts, _ = mesh478.infer(image, Roi.from_landmarks(pts))
        return eye_aspect(pts)

    return read


@pytest.mark.slow
def test_blinks_are_kept(clip, swapper, finder, store, eyes478):
    """The clip has no full blink: the live mesh's lids are lowered in steps (a synthetic blink).
    The mesh model reads such a squashed eye as only partly closed even on the live face's own
    pixels (the control: the frame rendered onto its own lowered mesh), so the output's lids must
    shut at least as far as the control's do.

    Read with the 478-point mesh, as on real blinks below. The 468-point mesh has a floor on a shut
    eye: it read the output's lowered steps 0.188-0.213, visibly shut (no iris, a lash line: crops in
    the g9eyes notes), and the control's slits 0.184-0.207, so "at least as shut" compared two
    readings within that reader's noise at its floor, not what is seen. The 478-point mesh reads
    the same output steps 0.075-0.168 and the control's 0.163-0.247."""
    from obs_faceswap.config import ColorConfig, ShapeConfig

    frame, lm = clip[len(clip) // 2]
    canonical = load_canonical_face(str(store.path("canonical_face")))
    control = PhotoSwapper.from_photo(
        frame, lm, canonical, color=ColorConfig(mode="none"), shape=ShapeConfig(strength=0.0)
    )
    live, shown, own = [], [], []
    for share in (0.0, 0.25, 0.5, 0.75, 0.95, 0.5, 0.0):
        closed = close_eyes(frame, lm, share)
        live.append(eye_aspect(closed))
        shown.append(eyes478(swapped(swapper, frame, closed)))
        own.append(eyes478(swapped(control, frame, closed)))
    a, b, c = np.array(live), np.array(shown), np.array(own)
    print("eye aspect live", np.round(a, 3), "output", np.round(b, 3), "control", np.round(c, 3))
    # Every lowered step reads at least as shut as the live face's own pixels do: the rendered
    # lids shut further than the mesh's below ~0.8 of the open eye (swap/blink.py: on real
    # footage the mesh reads a shut eye as ~0.65 open), so the output no longer follows the
    # lowered mesh linearly: it is shut from the 0.25 step on.
    assert (b[1:6] <= c[1:6] + 0.01).all(), (b, c)
    # the closed eye closes as far as on the live face's own pixels, and opens again
    assert b[0] - b[4] > 0.7 * (c[0] - c[4]) > 0.02, (b, c)
    assert abs(b[-1] - b[0]) < 0.3 * (b[0] - b[4]), b


# Real blinks (item 5 on real footage). The 468-point mesh under-reads a shut eye (its eye
# aspect ratio falls only to ~0.65 of the open value on this clip's blinks), so both the input
# and the output are read with the 478-point mesh, whose refined eye contour closes (~0.2).
BLINK_IN = 0.5  # an input frame is a blink below this share of the clip's median
BLINK_OUT = 0.8  # ... and the output must fall below this share of its own median then
OPEN_OUT = 0.85  # ... and stay above this away from the input's blinks (no invented blinks)


@pytest.mark.slow
def test_real_blinks_are_kept_through_the_pipeline(media, store):
    """dfl_Obama_speaking.mp4 blinks three times (frames ~115, ~162, ~202); through the whole
    pipeline (tracking, smoothing, the photo swapper) the output's eyes shut on the same frames.
    Before the rendered lids were shut in full (swap/blink.py) the output read 0.83-0.91 of its
    open value there: a source eye squashed by a third, visibly open. With the lid contour alone
    moved, the lash band above it was stretched over the eye (a dark almond: 0.79-0.85 at frames
    201-203); with the ring above it moving too, 0.43-0.48 at every blink."""
    from obs_faceswap.config import LandmarkConfig, PipelineConfig
    from obs_faceswap.nets.detector import YuNet
    from obs_faceswap.nets.landmarks import Roi, create_landmarker
    from obs_faceswap.pipeline import Pipeline

    detector = YuNet(store.path("yunet"))
    mesh478 = create_landmarker(LandmarkConfig(kind="mesh478"), store)

    def eyes(image: np.ndarray) -> float:
        dets = detector.detect(image)
        assert len(dets), "no face"
        i = int(np.argmax(dets.areas))
        pts, _ = mesh478.infer(image, Roi.from_keypoints(dets.xyxy[i], dets.keypoints[i]))
        pts, _ = mesh478.infer(image, Roi.from_landmarks(pts))
        return eye_aspect(pts)

    frames = [f for _, f in video_frames(media("dfl_Obama_speaking.mp4"))]
    pipe = Pipeline(PipelineConfig(), store, source=media("faces/johansson_1.jpg"))
    live = np.array([eyes(f) for f in frames])
    shown = np.array([eyes(pipe.process(f, i / 30)[0]) for i, f in enumerate(frames)])
    live, shown = live / np.median(live), shown / np.median(shown)
    blinks = np.flatnonzero(live < BLINK_IN)
    starts = [int(b) for k, b in enumerate(blinks) if k == 0 or b > blinks[k - 1] + 1]
    print("input blinks at", blinks.tolist(), "output's lowest share near each:", end=" ")
    assert len(starts) >= 3, f"the clip blinks three times; found {blinks.tolist()}"
    near = np.zeros(len(frames), bool)
    for b in blinks:
        near[max(0, b - 3) : b + 4] = True
        low = float(shown[max(0, b - 1) : b + 2].min())
        print(f"{b}: {low:.2f}", end=" ")
        assert low < BLINK_OUT, f"frame {b}: the output's eyes read {low:.2f} of open (live {live[b]:.2f})"
    print(f"elsewhere >= {shown[~near].min():.2f}")
    assert shown[~near].min() > OPEN_OUT, int(np.flatnonzero(~near)[np.argmin(shown[~near])])
