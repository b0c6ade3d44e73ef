"""Glasses frames in the UV space of the face mesh.

One detector serves both sides of the photo swap: on the source photo's texture the frames
are painted over with the skin under them (their ghost would otherwise sit on every target),
and on the live face they are kept in front of the swap (like a hand or a microphone).

In UV space a frame sits at a predictable place: a ring around each eye, a bar across the
nose's bridge and arms running from the outer rims to the temples. Frames are thin and much
darker than the skin around them, so a morphological black-hat of L* (the dark structures
thinner than :data:`_RIDGE_WIDTH`) marks them. Brows, lashes, eyeliner and the shading of an
eye socket give such responses too, but only on part of the ring: a pair of glasses is
declared found only when one connected dark structure goes most of the way round both eyes
(:data:`_FOUND_COVERAGE`). Without glasses nothing is masked.

Sizes are fractions of the UV image's side, so the same detector runs on the 512² source
texture and on a small unwrap of the live face.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap.cvtyped import f32, u8
from obs_faceswap.landmark_indices import LEFT_EYE, LEFT_EYEBROW, RIGHT_EYE, RIGHT_EYEBROW

# Dark structures thinner than this (fraction of the UV size) and darker than what is around
# them by more than _RIDGE_DARK (L*) are frame candidates.
_RIDGE_WIDTH = 0.05
_RIDGE_DARK = 16.0
# The eye opening grown by this much (lashes, eyeliner) is never a frame ...
_EYE_MARGIN = 0.03
# ... while the mask may reach this close to it (a rim sitting near the eye).
_EYE_KEEP = 0.012
# The rim's ring around each eye: this far from the eye's outline (fraction of the UV size).
_RING_NEAR = 0.03
_RING_FAR = 0.14
# Where a frame may be at all: up to this far from an eye, plus a band across the face at the
# eyes' height (the bridge, the temple arms) from this far above the eyes to this far below.
_ZONE_FAR = 0.16
_BAND_ABOVE = 0.08
_BAND_BELOW = 0.02
# The ring is cut into this many angular sectors around the eye's centre.
_SECTORS = 24
# Glasses: one dark structure covers at least this share of the sectors, on average over the
# two eyes. Measured on the 14 photos of faces/ used by the tests (512² and 128² unwraps): with
# glasses 0.52 to 0.69, without at most 0.27 (brow's end, lid crease, eyeliner wing).
_FOUND_COVERAGE = 0.4
# The parts of a found frame: structures covering this share of an eye's sectors (the rims),
# or longer than this (the bridge, the temple arms).
_PART_COVERAGE = 0.2
_PART_LENGTH = 0.06
# Thick parts (hinges, the arms' roots) are wider than the black-hat sees, and a top rim along
# the brows is no darker than its surroundings there: dark structures (at most _SOLID_DARK L*
# lighter than the frame's core, this percentile of its L*: the frame's edges are lighter) that
# come this close to the frame (fraction of the UV size) join it. Brows are lighter than a
# frame's core: inside a brow the limit is _BROW_DARK. At 2 L* a tortoiseshell top rim
# (faces/pichai_1.jpg, core 6 L*, its lighter flecks 10-20) broke into pieces too far from the
# frame to join and stayed as a dark line under the swapped brow; the brow's hair (40-60 L*
# there) is far above either limit.
_SOLID_REACH = 0.03
_SOLID_PERCENTILE = 25
_SOLID_DARK = 8.0
_BROW_DARK = 8.0
# A lens's bevel and the frame's highlights (thin, brighter than around them by _BEVEL_BRIGHT
# L*) this close to the frame (fraction of the UV size) belong to it.
_BEVEL_REACH = 0.012
_BEVEL_BRIGHT = 8.0
# ... inside a brow only this close (the skin between brow hairs is bright too)
_BEVEL_HUG = 0.006
# The mask is grown by this much (fraction of the UV size) to cover the frame's soft edge.
_GROW = 0.008


def _disc(d: float) -> npt.NDArray[np.uint8]:
    k = max(3, int(round(d)) | 1)
    return u8(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))


def _polygons(n: int, polygons: list[npt.NDArray[np.float32]]) -> npt.NDArray[np.uint8]:
    """uint8 0/255 mask of the convex hulls of ``polygons`` (sub-pixel vertices)."""
    m = np.zeros((n, n), np.uint8)
    for p in polygons:
        cv2.fillConvexPoly(m, cv2.convexHull(np.round(p * 16).astype(np.int32)), 255, cv2.LINE_8, 4)
    return m


@dataclass(frozen=True)
class GlassesLayout:
    """Where glasses frames may be in a UV image of side ``size`` (see :func:`glasses_layout`).

    Attributes:
        size: side of the UV image in texels.
        zone: ``(size, size)`` bool, where a frame may be (rings, bridge, temples), eyes and brows excluded.
        keep: ``(size, size)`` bool, never part of the mask: the eye openings (with the lashes).
        brows: ``(size, size)`` bool, the brows: part of the mask only where as dark as the frame
            (a top rim often runs along them; the brow itself is lighter).
        rings: per eye, ``(size, size)`` bool, the texels at a rim's distance from it.
        sectors: per eye, ``(size, size)`` int32 angular sector (0 .. :data:`_SECTORS` - 1) around its centre.
        eyes: per eye, ``(size, size)`` bool, its opening and the ring's inner margin.
    """

    size: int
    zone: npt.NDArray[np.bool_]
    keep: npt.NDArray[np.bool_]
    brows: npt.NDArray[np.bool_]
    rings: tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]
    sectors: tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]
    eyes: tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]


def glasses_layout(uv: npt.ArrayLike, size: int) -> GlassesLayout:
    """The frame's possible places in a UV image of side ``size``.

    Args:
        uv: ``(468, 2)`` mesh texture coordinates in ``[0, 1]``, row-down
            (:attr:`obs_faceswap.geometry.CanonicalFace.uv`).
        size: side of the UV image in texels (16 or more).

    Raises:
        ValueError: ``uv`` is not ``(468, 2)`` or ``size`` is below 16.
    """
    pts = np.asarray(uv, np.float32)
    if pts.ndim != 2 or pts.shape[0] < 468 or pts.shape[1] != 2:
        raise ValueError(f"uv must be (468, 2), got {pts.shape}")
    if size < 16:
        raise ValueError(f"size must be at least 16 texels, got {size}")
    n = int(size)
    px = pts * n
    eyes = [px[list(e)] for e in (RIGHT_EYE, LEFT_EYE)]
    eye_mask = _polygons(n, eyes)
    brows = _polygons(n, [px[list(b)] for b in (RIGHT_EYEBROW, LEFT_EYEBROW)])
    blocked = (cv2.dilate(eye_mask, _disc(2 * _EYE_MARGIN * n)) > 0) | (brows > 0)
    keep = cv2.dilate(eye_mask, _disc(2 * _EYE_KEEP * n)) > 0
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    rings, sectors, inner, near = [], [], [], np.zeros((n, n), bool)
    for eye in eyes:
        one = _polygons(n, [eye])
        d = cv2.distanceTransform(u8((one == 0).astype(np.uint8)), cv2.DIST_L2, 5) / n
        rings.append((d > _RING_NEAR) & (d < _RING_FAR))
        inner.append(d <= _RING_NEAR)
        near |= d < _ZONE_FAR
        c = eye.mean(axis=0)
        angle = np.degrees(np.arctan2(yy - c[1], xx - c[0])) % 360.0
        sectors.append(np.minimum((angle * _SECTORS / 360.0).astype(np.int32), _SECTORS - 1))
    top = min(float(e[:, 1].min()) for e in eyes) - _BAND_ABOVE * n
    bottom = max(float(e[:, 1].max()) for e in eyes) + _BAND_BELOW * n
    band = (yy >= top) & (yy <= bottom)
    zone = (near | band) & ~blocked
    return GlassesLayout(n, zone, keep, brows > 0, (rings[0], rings[1]), (sectors[0], sectors[1]), (inner[0], inner[1]))


@dataclass(frozen=True)
class Glasses:
    """What :func:`find_glasses` found.

    Attributes:
        mask: ``(size, size)`` bool, the frame's texels (all False when no glasses were found).
        coverage: share of the ring around the eyes that one dark structure covers (mean over
            the two eyes, 0..1); glasses from :data:`_FOUND_COVERAGE` on.
    """

    mask: npt.NDArray[np.bool_]
    coverage: float

    @property
    def found(self) -> bool:
        return self.coverage >= _FOUND_COVERAGE

    @classmethod
    def none(cls, size: int) -> Glasses:
        return cls(np.zeros((size, size), bool), 0.0)


def find_glasses(
    lightness: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_], layout: GlassesLayout, *, grow: float = _GROW
) -> Glasses:
    """Glasses frames in a UV image of the face.

    Args:
        lightness: ``(size, size)`` float32 L* (0..100) of the face unwrapped into UV space.
        valid: ``(size, size)`` bool, texels the face covers.
        layout: :func:`glasses_layout` for this size.
        grow: the mask reaches this far past the frame (fraction of the UV size): its soft
            edge, a lens's bright edge.

    Returns:
        The frame's mask (rims, bridge, arms; the eye openings, lashes and brows never) and how
        much of the eyes' rings it covers; an empty mask when no glasses were found.

    Raises:
        ValueError: the images do not match the layout's size.
    """
    n = layout.size
    if lightness.shape != (n, n) or valid.shape != (n, n):
        raise ValueError(f"lightness and valid must be ({n}, {n}), got {lightness.shape} and {valid.shape}")
    light = np.ascontiguousarray(lightness, np.float32)
    dark = f32(cv2.morphologyEx(light, cv2.MORPH_BLACKHAT, _disc(_RIDGE_WIDTH * n)))
    ridge = ((dark > _RIDGE_DARK) & valid & layout.zone).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ridge)
    if count <= 1:
        return Glasses.none(n)
    # per eye and structure: how many of the ring's sectors it reaches
    covered = np.zeros((2, count), np.float64)
    for k, (ring, sector) in enumerate(zip(layout.rings, layout.sectors, strict=True)):
        on = ring & (ridge > 0)
        if not on.any():
            continue
        pairs = np.unique(labels[on].astype(np.int64) * _SECTORS + sector[on])
        covered[k] = np.bincount(pairs // _SECTORS, minlength=count)[:count] / _SECTORS
    coverage = float(covered.max(axis=1).mean())
    if coverage < _FOUND_COVERAGE:
        return Glasses(np.zeros((n, n), bool), coverage)
    length = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    parts = (covered.max(axis=0) >= _PART_COVERAGE) | (length >= _PART_LENGTH * n)
    parts[0] = False
    frame = u8(parts[labels].astype(np.uint8))
    level = float(np.percentile(lightness[frame > 0], _SOLID_PERCENTILE))
    near = cv2.dilate(frame, _disc(2 * _SOLID_REACH * n + 1)) > 0
    solid = lightness <= level + _SOLID_DARK
    # inside a brow only what is within _BROW_DARK of the frame's core: brow hair is lighter
    core = lightness <= level + _BROW_DARK
    # whole dark structures that reach near the frame (a top rim runs along a brow's length)
    dark_count, dark_labels = cv2.connectedComponents(
        u8((((solid & layout.zone) | (core & layout.brows)) & valid).astype(np.uint8))
    )
    touching = np.zeros(dark_count, bool)
    touching[np.unique(dark_labels[near])] = True
    touching[0] = False
    frame[touching[dark_labels]] = 1
    # the lenses' bevels and the frame's highlights: thin bright lines right beside it
    # (measured with the frame itself set to the skin's level: next to a black frame, any skin is bright)
    skin = (frame == 0) & valid & layout.zone
    flat = light.copy()
    flat[frame > 0] = float(np.median(light[skin])) if skin.any() else level
    bright = f32(cv2.morphologyEx(flat, cv2.MORPH_TOPHAT, _disc(_RIDGE_WIDTH * n)))
    beside = cv2.dilate(frame, _disc(2 * _BEVEL_REACH * n + 1)) > 0
    hugging = cv2.dilate(frame, _disc(2 * _BEVEL_HUG * n + 1)) > 0
    bevel = (bright > _BEVEL_BRIGHT) & valid & ((beside & layout.zone) | (hugging & layout.brows))
    frame[bevel] = 1
    grown = cv2.dilate(frame, _disc(2 * grow * n + 1)) > 0
    # of a brow, only what is that dark (a top rim) and the bevel hugging it
    brow = layout.brows & ~core & ~bevel
    return Glasses(grown & valid & ~layout.keep & ~brow, coverage)


def lens_areas(glasses: Glasses, layout: GlassesLayout) -> npt.NDArray[np.bool_]:
    """``(size, size)`` bool: what is seen through each lens, the eyes included: the texels the
    frame's rims enclose around each eye (no further from it than a rim can be). Empty when no
    glasses were found."""
    n = layout.size
    out = np.zeros((n, n), bool)
    if not glasses.found:
        return out
    _, labels = cv2.connectedComponents(u8((~glasses.mask).astype(np.uint8)), connectivity=4)
    for ring, eye in zip(layout.rings, layout.eyes, strict=True):
        # the lens: the open area around the eye, cut at a rim's furthest distance when a rim is broken
        near = ring | eye
        ids = np.unique(labels[eye & ~glasses.mask])
        out |= np.isin(labels, ids[ids > 0]) & near
    return out
