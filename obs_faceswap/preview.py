"""``obs-faceswap preview``: how a source photo will look, before going live.

The photo is rendered onto a few sample faces (frames of the sample clip, the sample photo,
or the user's own pictures) with the default swapper and laid out as one contact sheet,
together with a rating of the photo: face size, head turn, what covers the face, sharpness
and lighting, each with concrete advice. Pure functions over images and landmarks, except
:func:`run_preview`, which drives a :class:`~obs_faceswap.pipeline.Pipeline`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap.landmark_indices import FACE_OVAL, LEFT_CHEEK, RIGHT_CHEEK
from obs_faceswap.types import ImageBGR

#: Ratings, worst first.
LEVELS = ("poor", "fair", "good")

# Thresholds (poor below the first, good from the second).
_FACE_PX = (150.0, 250.0)  # face width in the photo, pixels
_YAW_DEG = (25.0, 12.0)  # head turn, degrees (poor above the first, good below the second)
_ROLL_DEG = (25.0, 10.0)
_OCCLUDED = (0.06, 0.015)  # share of the face behind glasses frames, hair, hands
_OWN = (0.6, 0.8)  # share of the face the photo itself shows (not filled in)
_SHARPNESS = (40.0, 110.0)  # variance of the Laplacian at a 200 px face width
_EXPOSURE = (28.0, 88.0)  # skin L* (too dark below, too bright above)
# L* difference between the cheeks. The texture evens out a lamp at one side (meshwarp's
# _even_light): sources up to 17.5 apart (faces/musk_1, jolie_1, zuckerberg_5, johansson_2) swap
# onto the six other people as well as the same person's evenly lit photos do (lighting
# profile error max 5.4-7.4 against 5.9-8.6, identity margin no lower); one cheek in deep
# shadow (faces/dicaprio_1, 52.5) loses its detail: max 9.3, one target closer to itself.
_SIDE_LIGHT = (30.0, 18.0)
_CLIPPED = (0.08, 0.02)  # share of face pixels at 250+ in a channel


@dataclass(frozen=True)
class Rating:
    """One aspect of a source photo: its measured value, a level and what to do about it."""

    aspect: str
    value: str
    level: str  # one of LEVELS
    advice: str

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}")


@dataclass(frozen=True)
class PhotoRating:
    """Every aspect of a source photo; :attr:`level` is the worst of them."""

    ratings: tuple[Rating, ...]

    @property
    def level(self) -> str:
        return min((r.level for r in self.ratings), key=LEVELS.index, default="good")

    def summary(self) -> str:
        """One line of what to change ("" for a good photo): the level, then the advice of
        every aspect that is not good, poor ones first."""
        if self.level == "good":
            return ""
        weak = sorted((r for r in self.ratings if r.level != "good"), key=lambda r: LEVELS.index(r.level))
        return f"source photo {self.level}: " + "; ".join(f"{r.aspect}: {r.advice}" for r in weak)

    def lines(self) -> list[str]:
        out = [f"source photo: {self.level}"]
        for r in self.ratings:
            out.append(f"  {r.aspect:<10} {r.value:<14} {r.level:<5} {r.advice}")
        return out


def _level(value: float, lo: float, hi: float) -> str:
    """``poor``/``fair``/``good`` for a value where higher is better (``lo`` < ``hi``) or
    lower is better (``lo`` > ``hi``)."""
    if lo < hi:
        return "poor" if value < lo else "good" if value >= hi else "fair"
    return "poor" if value > lo else "good" if value <= hi else "fair"


def head_pose(landmarks: npt.ArrayLike) -> tuple[float, float]:
    """Approximate ``(yaw, roll)`` in degrees of a face from its 468 mesh points.

    Yaw from how far the nose tip sits from the middle of the face outline (0 = frontal),
    roll from the eye line's slope.
    """
    lm = np.asarray(landmarks, np.float64)[:, :2]
    right, left, nose = lm[234], lm[454], lm[1]
    half = max(float(np.linalg.norm(left - right)) / 2, 1e-6)
    axis = (left - right) / (2 * half)
    offset = float((nose - (left + right) / 2) @ axis) / half
    yaw = math.degrees(math.asin(float(np.clip(offset / 0.85, -1.0, 1.0))))
    eyes = lm[263] - lm[33]
    roll = math.degrees(math.atan2(float(eyes[1]), float(eyes[0])))
    return yaw, roll


def _mask(shape: tuple[int, ...], lm: npt.NDArray[np.float64], indices: Sequence[int]) -> npt.NDArray[np.bool_]:
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(lm[list(indices)]).astype(np.int32)], 255)
    return m > 0


def rate_photo(
    image: ImageBGR, landmarks: npt.ArrayLike, *, own_fraction: float = 1.0, occluded_fraction: float = 0.0
) -> PhotoRating:
    """Rate a source photo for the photo swapper.

    Args:
        image: ``(H, W, 3)`` uint8 BGR photo.
        landmarks: the face's 468 mesh points in ``image`` pixels.
        own_fraction: share of the face the photo itself shows (the swapper's
            ``own_fraction``: the rest is filled from the mirrored side or the skin).
        occluded_fraction: share of the face behind glasses frames or strands of hair
            (the swapper's ``occluded_fraction``).
    """
    lm = np.asarray(landmarks, np.float64)[:, :2]
    ratings = []
    width = float(np.ptp(lm[list(FACE_OVAL), 0]))
    ratings.append(
        Rating(
            "face size",
            f"{width:.0f} px",
            _level(width, *_FACE_PX),
            "ok"
            if width >= _FACE_PX[1]
            else f"the face is {width:.0f} px wide; use a photo where it is at least "
            f"{_FACE_PX[1]:.0f} px (crop less, or a larger photo)",
        )
    )
    yaw, roll = head_pose(lm)
    turn = _level(abs(yaw), *_YAW_DEG)
    tilt = _level(abs(roll), *_ROLL_DEG)
    worst = min(turn, tilt, key=LEVELS.index)
    ratings.append(
        Rating(
            "pose",
            f"yaw {yaw:+.0f}, roll {roll:+.0f}",
            worst,
            "ok"
            if worst == "good"
            else "the head is turned or tilted: use a frontal photo, looking into the camera "
            "(the far side is filled in from the near one)",
        )
    )
    level = min(_level(occluded_fraction, *_OCCLUDED), _level(own_fraction, *_OWN), key=LEVELS.index)
    ratings.append(
        Rating(
            "occlusion",
            f"{occluded_fraction:.0%} covered, {1 - own_fraction:.0%} filled",
            level,
            "ok"
            if level == "good"
            else "glasses, hair, hands or a hat cover part of the face: use a photo without "
            "glasses, with hair off the forehead and eyes",
        )
    )
    # sharpness at a fixed face size, so that a large soft photo does not pass
    x0, y0 = np.floor(lm.min(axis=0)).astype(int)
    x1, y1 = np.ceil(lm.max(axis=0)).astype(int)
    crop = image[max(y0, 0) : max(y1, 1), max(x0, 0) : max(x1, 1)]
    sharp = 0.0
    if crop.size:
        s = 200.0 / max(crop.shape[1], 1)
        small = cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        sharp = float(cv2.Laplacian(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())
    level = _level(sharp, *_SHARPNESS)
    ratings.append(
        Rating(
            "sharpness",
            f"{sharp:.0f}",
            level,
            "ok"
            if level == "good"
            else "the face is soft (out of focus, motion blur, heavy smoothing or compression): use a sharper photo",
        )
    )
    # lighting: exposure, light from one side, blown highlights (read from the face's box only:
    # a 12-megapixel phone photo in float L*a*b* would be ~150 MB per copy)
    bx0, by0 = np.clip(np.floor(lm.min(axis=0)).astype(int), 0, None)
    face = image[by0 : max(y1 + 1, by0 + 1), bx0 : max(x1 + 1, bx0 + 1)]
    at = lm - (bx0, by0)
    lab = cv2.cvtColor(face.astype(np.float32) / 255, cv2.COLOR_BGR2Lab)
    cheeks = [_mask(face.shape, at, c) for c in (RIGHT_CHEEK, LEFT_CHEEK)]
    ls = [float(np.median(lab[..., 0][c])) if c.any() else 50.0 for c in cheeks]
    skin_l = (ls[0] + ls[1]) / 2
    side = abs(ls[0] - ls[1])
    skin = cheeks[0] | cheeks[1]
    clipped = float((face[skin] >= 250).any(axis=1).mean()) if skin.any() else 0.0
    levels = {
        "dark": "poor" if skin_l < _EXPOSURE[0] else "good",
        "bright": "poor" if skin_l > _EXPOSURE[1] else "good",
        "side": _level(side, *_SIDE_LIGHT),
        "clipped": _level(clipped, *_CLIPPED),
    }
    level = min(levels.values(), key=LEVELS.index)
    advice = []
    if levels["dark"] != "good":
        advice.append("too dark: more light on the face")
    if levels["bright"] != "good" or levels["clipped"] != "good":
        advice.append("overexposed: less light or exposure, no flash")
    if levels["side"] != "good":
        advice.append("light from one side leaves a cheek in shadow: use even, frontal light")
    ratings.append(
        Rating("lighting", f"L* {skin_l:.0f}, sides {side:.0f}", level, "; ".join(advice) if advice else "ok")
    )
    return PhotoRating(tuple(ratings))


def face_cell(image: ImageBGR, landmarks: npt.ArrayLike, size: int = 200) -> ImageBGR:
    """A square crop around a face (1.4x the mesh's extent), resized to ``size``."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    lo, hi = lm.min(axis=0), lm.max(axis=0)
    c, half = (lo + hi) / 2, 0.7 * float((hi - lo).max())
    k = size / (2 * max(half, 1.0))
    m = np.array([[k, 0, size / 2 - c[0] * k], [0, k, size / 2 - c[1] * k]])
    cell = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)
    return np.asarray(cell, np.uint8)


_COLOURS = {"good": (90, 200, 90), "fair": (40, 190, 230), "poor": (60, 60, 230)}


def contact_sheet(
    source_cell: ImageBGR, pairs: Sequence[tuple[ImageBGR, ImageBGR]], rating: PhotoRating, cell: int = 200
) -> ImageBGR:
    """One image: the source face and its rating on top, then each sample face before and
    after the swap (one column per sample)."""
    cols = max(len(pairs), 3)
    text_h = 22 * (len(rating.ratings) + 1) + 10
    top = max(cell, text_h)
    sheet = np.full((top + 2 * cell + 20, cols * cell, 3), 24, np.uint8)
    sheet[:cell, :cell] = cv2.resize(source_cell, (cell, cell))
    x = cell + 12
    y = 24
    cv2.putText(
        sheet,
        f"source photo: {rating.level}",
        (x, y),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.6,
        _COLOURS[rating.level],
        1,
        cv2.LINE_AA,
    )
    width = sheet.shape[1] - x - 8
    for r in rating.ratings:
        y += 22
        text = f"{r.aspect}: {r.value} - {r.advice}"
        scale = 0.45
        while scale > 0.25 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > width:
            scale -= 0.02
        cv2.putText(sheet, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, _COLOURS[r.level], 1, cv2.LINE_AA)
    y0 = top + 20
    cv2.putText(
        sheet,
        "sample faces: before / after",
        (4, y0 - 5),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        (220, 220, 220),
        1,
        cv2.LINE_AA,
    )
    for i, (before, after) in enumerate(pairs):
        sheet[y0 : y0 + cell, i * cell : (i + 1) * cell] = cv2.resize(before, (cell, cell))
        sheet[y0 + cell : y0 + 2 * cell, i * cell : (i + 1) * cell] = cv2.resize(after, (cell, cell))
    return sheet


#: Frames of the sample clip used as sample faces (talking, mouth open and closed, small turns).
SAMPLE_FRAMES = (0, 75, 150, 225)


def sample_faces(store: object) -> list[ImageBGR]:
    """Sample target pictures: frames of the sample clip and the sample photo (downloaded
    into the user cache when not found, like ``demo``)."""
    from obs_faceswap.frame import read_image

    clip = store.path("obama")  # type: ignore[attr-defined]
    cap = cv2.VideoCapture(str(clip))
    frames: list[ImageBGR] = []
    try:
        for index in SAMPLE_FRAMES:
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = cap.read()
            if ok:
                frames.append(np.asarray(frame, np.uint8))
    finally:
        cap.release()
    frames.append(read_image(store.path("astronaut")))  # type: ignore[attr-defined]
    return frames


def run_preview(
    pipeline: Any, source: ImageBGR, targets: Sequence[ImageBGR], *, cell: int = 200
) -> tuple[ImageBGR, PhotoRating]:
    """Render the pipeline's source onto every face of ``targets`` and rate the source.

    Args:
        pipeline: a :class:`~obs_faceswap.pipeline.Pipeline` whose source is ``source`` (its
            rating and mesh points are the pipeline's; this module does not import it, which
            imports this one).
        source: the source photo (for the sheet).
        targets: sample pictures; each is a new scene (tracking reset).
        cell: side of each face cell on the sheet, pixels.

    Returns:
        ``(sheet, rating)``.
    """
    rating = pipeline.source_rating()
    if rating is None:
        raise ValueError("run_preview needs a pipeline with a source photo")
    lm = pipeline.sources[0].landmarks
    pairs = []
    for target in targets:
        pipeline.reset()
        out, report = pipeline.process(target)
        for face in report.faces[:2]:
            pairs.append((face_cell(target, face.landmarks, cell), face_cell(out, face.landmarks, cell)))
    return contact_sheet(face_cell(source, lm, cell), pairs, rating, cell), rating
