"""Blinks the face mesh under-reads, shown in full on the rendered face.

The 468-point mesh never closes its eye contour: on dfl_Obama_speaking.mp4, where the eyes
shut completely (frames 115-117, 162-163, 201-204), its eye aspect ratio only falls from
~0.27 to ~0.17-0.18, about 0.65 of the open value. The live face's own pixels show the blink
anyway; a source eye rendered on those lids is only squashed by a third and stays visibly
open. So, per eye, the lid gap is compared with that eye's own open gap (a running baseline),
and below :data:`OPEN_SHARE` of it the rendered upper lid is lowered onto the lower one
further, to shut at :data:`SHUT_SHARE`. Above :data:`OPEN_SHARE` (a squint, a look down)
nothing changes.

Pure functions over ``(468, 2+)`` meshes plus a small per-face state (:class:`EyeBaseline`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from obs_faceswap.types import FloatArray

#: Per eye (subject's right, then left): upper-lid and lower-lid points of the eye contour,
#: in pairs that face each other, and the two corners.
UPPER_LIDS = ((246, 161, 160, 159, 158, 157, 173), (466, 388, 387, 386, 385, 384, 398))
LOWER_LIDS = ((7, 163, 144, 145, 153, 154, 155), (249, 390, 373, 374, 380, 381, 382))
CORNERS = ((33, 133), (263, 362))
#: Per eye, the ring of points just above the upper lid (MediaPipe's ``rightEyeUpper1`` /
#: ``leftEyeUpper1``), point for point above :data:`UPPER_LIDS`: between it and the lid contour
#: lie the lash line and any eyeliner.
UPPER_RINGS = ((247, 30, 29, 27, 28, 56, 190), (467, 260, 259, 257, 258, 286, 414))
#: The ring moves down with the lid by this share of the lid's move. Moving the lid contour alone
#: stretched the band between them (lashes, eyeliner) over the whole eye: a shut eye was rendered
#: as a dark almond streaked with lashes, which the 478-point mesh (and a viewer) reads as still
#: ~0.8 open (dfl_Obama_speaking.mp4 frames 201-203, source johansson_1). Moved together, the band
#: sweeps down intact like a real lid and the stretch falls on the plain lid skin above it.
RING_FOLLOW = 1.0
_UPPER = np.array(UPPER_LIDS)
_RING = np.array(UPPER_RINGS)
_LOWER = np.array(LOWER_LIDS)
_CORNERS = np.array(CORNERS)
#: Openness (lid gap / eye width) as a share of the eye's open value: at or above OPEN_SHARE
#: the lids are left as the mesh has them; at SHUT_SHARE and below they are rendered shut; in
#: between, linearly. Calibrated on that clip against the 478-point mesh (whose refined eye
#: contour reads a shut eye at ~0.2 of open): where the 468-point mesh reads 0.80, 0.70 and
#: 0.62 of open, the eye is ~0.77, ~0.41 and ~0.17 open.
OPEN_SHARE = 0.82
SHUT_SHARE = 0.68
#: The open value follows a wider-open eye at this rate per frame, a narrower one (but above
#: OPEN_SHARE of it: not a blink) at BASELINE_DOWN; a blink never pulls it down.
BASELINE_UP = 0.2
BASELINE_DOWN = 0.02


def eye_openness(points: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``(2,)``: each eye's mean lid gap over its width (subject's right, then left)."""
    p = np.asarray(points)
    d = (p[_UPPER, :2] - p[_LOWER, :2]).astype(np.float64)
    gap = np.sqrt((d * d).sum(axis=2)).mean(axis=1)
    w = (p[_CORNERS[:, 0], :2] - p[_CORNERS[:, 1], :2]).astype(np.float64)
    out: npt.NDArray[np.float64] = gap / np.maximum(np.sqrt((w * w).sum(axis=1)), 1e-9)
    return out


def closing_share(openness: npt.ArrayLike, baseline: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``(2,)``: how far (0-1) each rendered upper lid is moved onto the lower one beyond the mesh's.

    Chosen so that the rendered gap is the mesh's gap while the eye is at least
    :data:`OPEN_SHARE` open, and falls linearly to 0 at :data:`SHUT_SHARE`.
    """
    r = np.asarray(openness, np.float64) / np.maximum(np.asarray(baseline, np.float64), 1e-9)
    shown = np.clip((r - SHUT_SHARE) / (OPEN_SHARE - SHUT_SHARE), 0.0, 1.0) * OPEN_SHARE  # rendered share
    share: npt.NDArray[np.float64] = np.clip(np.where(r < OPEN_SHARE, 1.0 - shown / np.maximum(r, 1e-9), 0.0), 0, 1)
    return share


def close_lids(points: FloatArray, share: npt.ArrayLike) -> FloatArray:
    """``points`` with each eye's upper-lid points moved ``share`` of the way onto the lower ones
    (and the ring above them with them, :data:`RING_FOLLOW`)."""
    s = np.asarray(share, np.float64)
    if not (s > 0).any():
        return points
    out: FloatArray = points.copy()
    up, lo = points[_UPPER], points[_LOWER]  # (2, 7, D)
    move = s.astype(np.float32)[:, None, None] * (lo - up)
    out[_UPPER] = up + move
    out[_RING] = points[_RING] + np.float32(RING_FOLLOW) * move
    return out


@dataclass
class EyeBaseline:
    """A face's open-eye openness per eye, followed over frames (see :data:`BASELINE_UP`)."""

    value: npt.NDArray[np.float64] | None = field(default=None)

    def update(self, openness: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Take this frame's openness into the baseline; returns the baseline before it."""
        before: npt.NDArray[np.float64]
        if self.value is None:
            self.value = openness.copy()
            before = openness.copy()
            return before
        before = self.value.copy()
        rate = np.where(openness > before, BASELINE_UP, np.where(openness > OPEN_SHARE * before, BASELINE_DOWN, 0.0))
        self.value = before + rate * (openness - before)
        return before
