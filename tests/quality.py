"""Measurable swap quality: identity, seams, skin colour and "nothing else changed".

Used by the tests only (no product code imports it), so it lives beside them. All functions are pure and take
whole frames (``original`` = the frame before pasting, ``output`` = after) plus the pasted
mask in frame pixels (:func:`frame_mask`).

* identity: cosine similarity of identity embeddings (``hse_faceres_1024``, via
  :class:`~obs_faceswap.nets.recognition.FaceEmbedder`) of the output face against the
  source and against the original face, both crops aligned with the **original** frame's
  keypoints so a swap cannot win by moving the face;
* seams: gradient energy in the band around the pasted boundary, output ÷ original;
* colour: mean L*a*b* of the swapped skin just inside the pasted boundary against the live
  skin just outside it, along the same stretch of boundary (:func:`skin_match`), and against
  the live skin it covers (:func:`covered_skin_match`); ΔE in CIE76 (:func:`delta_e76`, the
  figure the tests assert) and CIEDE2000 (:func:`delta_e2000`, reported);
* containment: the number of pixels that changed outside the dilated mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap.cvtyped import above, u8
from obs_faceswap.landmark_indices import (
    FACE_OVAL,
    LEFT_CHEEK,
    LEFT_EYE,
    LEFT_EYEBROW,
    LIPS_OUTER,
    RIGHT_CHEEK,
    RIGHT_EYE,
    RIGHT_EYEBROW,
    five_points,
)
from obs_faceswap.types import ImageBGR, Mask, SwapResult


def frame_mask(frame_hw: tuple[int, ...], result: SwapResult) -> Mask:
    """The result's mask placed in frame pixels (``(H, W)`` uint8, 0 outside the crop)."""
    h, w = int(frame_hw[0]), int(frame_hw[1])
    return u8(
        cv2.warpAffine(
            result.mask,
            result.transform.astype(np.float64),
            (w, h),
            flags=cv2.INTER_NEAREST if result.is_translation else cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    )


# --- identity ----------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityScore:
    """Cosine similarities of the output face to the source and to the original face."""

    to_source: float
    to_original: float

    @property
    def closer_to_source(self) -> bool:
        return self.to_source > self.to_original


def identity_score(
    embedder: object,
    output: ImageBGR,
    landmarks: npt.ArrayLike,
    source_embedding: npt.ArrayLike,
    original_embedding: npt.ArrayLike,
) -> IdentityScore:
    """Embed the output face (aligned with the original frame's landmarks) and compare.

    Args:
        embedder: a :class:`~obs_faceswap.nets.recognition.FaceEmbedder`.
        output: the swapped frame.
        landmarks: the original frame's mesh points of that face.
        source_embedding: embedding of the source identity (one vector, or a mean).
        original_embedding: embedding of the same face in the original frame.
    """
    from obs_faceswap.nets.recognition import cosine

    e = embedder.embed(output, five_points(landmarks))  # type: ignore[attr-defined]
    return IdentityScore(cosine(e, source_embedding), cosine(e, original_embedding))


def mean_embedding(embeddings: Sequence[npt.ArrayLike]) -> npt.NDArray[np.float32]:
    """L2-normalised mean of several embeddings of one person."""
    m = np.mean(np.asarray(embeddings, np.float64), axis=0)
    out: npt.NDArray[np.float32] = (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)
    return out


# --- seams -------------------------------------------------------------------------------


def seam_band(mask: Mask, width: int = 3) -> npt.NDArray[np.bool_]:
    """Pixels within ``width`` of the pasted boundary: the mask's soft zone, widened."""
    soft = ((mask > 0) & (mask < 255)).astype(np.uint8)
    edge = cv2.Canny(above(mask, 127), 1, 1)  # hard masks have no soft zone
    band = cv2.bitwise_or(soft, (edge > 0).astype(np.uint8))
    k = 2 * width + 1
    return cv2.dilate(band, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0


def gradient_energy(image: ImageBGR, where: npt.NDArray[np.bool_]) -> float:
    """Mean squared Sobel gradient magnitude of the L* channel over ``where``."""
    lum = cv2.cvtColor(image, cv2.COLOR_BGR2Lab)[..., 0].astype(np.float32)
    gx = cv2.Sobel(lum, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lum, cv2.CV_32F, 0, 1, ksize=3)
    e = gx * gx + gy * gy
    return float(e[where].mean()) if where.any() else 0.0


def seam_gradient_ratio(original: ImageBGR, output: ImageBGR, mask: Mask, width: int = 3) -> float:
    """Gradient energy in the band around the pasted boundary, output ÷ original.

    1.0 means the paste added no edges; a visible seam (a hard or dark edge, a colour step)
    raises it. The original's energy is floored at 1 (L* units²) so a flat band cannot
    blow the ratio up.
    """
    band = seam_band(mask, width)
    return gradient_energy(output, band) / max(gradient_energy(original, band), 1.0)


# --- colour ------------------------------------------------------------------------------


def mean_lab(image: ImageBGR, where: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """Mean L*a*b* (L 0..100) of ``image`` over ``where`` (NaN when empty)."""
    px = _lab_pixels(image, where)
    return px.mean(axis=0) if len(px) else np.full(3, np.nan)


def delta_e76(lab1: npt.ArrayLike, lab2: npt.ArrayLike) -> float:
    """CIE76 colour difference (Euclidean distance in L*a*b*)."""
    return float(np.linalg.norm(np.asarray(lab1, np.float64) - np.asarray(lab2, np.float64)))


def delta_e2000(lab1: npt.ArrayLike, lab2: npt.ArrayLike) -> float:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005 formulation, kL = kC = kH = 1)."""
    l1, a1, b1 = (float(x) for x in np.asarray(lab1, np.float64))
    l2, a2, b2 = (float(x) for x in np.asarray(lab2, np.float64))
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    cm = (c1 + c2) / 2
    g = 0.5 * (1 - np.sqrt(cm**7 / (cm**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360 if c1p else 0.0
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360 if c2p else 0.0
    dl, dc = l2 - l1, c2p - c1p
    if c1p * c2p == 0:
        dh = 0.0
    else:
        dh = h2p - h1p
        dh = dh - 360 if dh > 180 else dh + 360 if dh < -180 else dh
    dhh = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    lm, cmp_ = (l1 + l2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        hm = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        hm = (h1p + h2p) / 2
    else:
        hm = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (
        1
        - 0.17 * np.cos(np.radians(hm - 30))
        + 0.24 * np.cos(np.radians(2 * hm))
        + 0.32 * np.cos(np.radians(3 * hm + 6))
        - 0.20 * np.cos(np.radians(4 * hm - 63))
    )
    d_theta = 30 * np.exp(-(((hm - 275) / 25) ** 2))
    rc = 2 * np.sqrt(cmp_**7 / (cmp_**7 + 25.0**7))
    sl = 1 + 0.015 * (lm - 50) ** 2 / np.sqrt(20 + (lm - 50) ** 2)
    sc = 1 + 0.045 * cmp_
    sh = 1 + 0.015 * cmp_ * t
    rt = -np.sin(np.radians(2 * d_theta)) * rc
    return float(np.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dhh / sh) ** 2 + rt * (dc / sc) * (dhh / sh)))


@dataclass(frozen=True)
class SkinMatch:
    """Mean skin colours on both sides of the pasted boundary and their difference."""

    inside: npt.NDArray[np.float64]
    outside: npt.NDArray[np.float64]
    delta_e76: float
    delta_e2000: float
    inside_pixels: int
    outside_pixels: int


def skin_regions(
    original: ImageBGR, mask: Mask, landmarks: npt.ArrayLike, band: float = 0.05
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Skin on both sides of the pasted boundary, facing each other across it.

    Outside: unpasted pixels (outside the pasted silhouette, so mouth and eye holes do not
    count) within ``band`` x face width of it that look like the live face's skin (within
    :data:`SKIN_DISTANCE` robust deviations of the live cheeks' L*a*b* median: forehead,
    temples, neck; not hair, collar or background). Inside: fully pasted pixels (mask 255),
    eyes, brows and lips excluded, no further from that outside band than the mask's soft
    zone plus the same width, so both sides sample the same stretch of boundary (comparing,
    say, the jaw with the forehead would measure the face's own shading).

    Args:
        original: the frame before pasting (the live skin model comes from its cheeks).
        mask: pasted mask in frame pixels.
        landmarks: the live face's mesh points.
        band: width of each band as a fraction of the face width.
    """
    lm = np.asarray(landmarks, np.float32)[:, :2]
    h, w = original.shape[:2]
    face_w = float(np.ptp(lm[:, 0]))
    r = max(2, int(round(band * face_w)))
    features = np.zeros((h, w), np.uint8)
    for idx in (RIGHT_EYE, LEFT_EYE, RIGHT_EYEBROW, LEFT_EYEBROW, LIPS_OUTER):
        cv2.fillConvexPoly(features, cv2.convexHull(np.round(lm[list(idx)]).astype(np.int32)), 255)
    k = max(3, (r // 2) | 1)
    features = u8(cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))))
    solid = _fill_holes(above(mask, 0))
    kern = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    outer = (solid == 0) & (cv2.dilate(solid, kern) > 0)
    outer &= _skin_like(original, lm, outer)
    full = mask == 255
    if not full.any() or not outer.any():
        return np.zeros((h, w), bool), outer
    depth = cv2.distanceTransform(solid, cv2.DIST_L2, 5)
    soft = float(depth[full].min())  # width of the feathered zone
    to_outer = cv2.distanceTransform(np.where(outer, 0, 255).astype(np.uint8), cv2.DIST_L2, 5)
    inner = full & (features == 0) & (to_outer <= soft + r + 1)
    return inner, outer


#: Robust deviations from the live cheeks' colour within which a pixel counts as skin.
SKIN_DISTANCE = 3.0
_SKIN_FLOOR = np.array([6.0, 3.0, 3.0])


def _skin_like(
    image: ImageBGR, landmarks: npt.NDArray[np.float32], where: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Pixels (of ``where``) whose colour is within :data:`SKIN_DISTANCE` of the live cheeks'."""
    cheeks = np.zeros(image.shape[:2], np.uint8)
    for idx in (RIGHT_CHEEK, LEFT_CHEEK):
        cv2.fillConvexPoly(cheeks, cv2.convexHull(np.round(landmarks[list(idx)]).astype(np.int32)), 255)
    ref = _lab_pixels(image, cheeks > 0)
    out = np.zeros(image.shape[:2], bool)
    if len(ref) < 16 or not where.any():
        return out
    med = np.median(ref, axis=0)
    sd = np.maximum(1.4826 * np.median(np.abs(ref - med), axis=0), _SKIN_FLOOR)
    px = _lab_pixels(image, where)
    out[where] = np.sqrt((((px - med) / sd) ** 2).sum(axis=1)) <= SKIN_DISTANCE
    return out


def _lab_pixels(image: ImageBGR, where: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    px = image[where].reshape(-1, 1, 3).astype(np.float32) / 255.0
    if len(px) == 0:
        return np.zeros((0, 3))
    return cv2.cvtColor(px, cv2.COLOR_BGR2Lab).reshape(-1, 3).astype(np.float64)


def skin_match(
    original: ImageBGR, output: ImageBGR, mask: Mask, landmarks: npt.ArrayLike, band: float = 0.05
) -> SkinMatch:
    """Mean L*a*b* of the swapped skin vs the live skin next to it (see :func:`skin_regions`)."""
    inner, outer = skin_regions(original, mask, landmarks, band)
    lab_in = mean_lab(output, inner)
    lab_out = mean_lab(original, outer)
    return SkinMatch(
        lab_in, lab_out, delta_e76(lab_in, lab_out), delta_e2000(lab_in, lab_out), int(inner.sum()), int(outer.sum())
    )


def _fill_holes(binary: Mask) -> Mask:
    out = np.zeros_like(binary)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, 255, cv2.FILLED)
    return out


def _pasted_face_skin(shape: tuple[int, ...], mask: Mask, lm: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Fully pasted pixels (mask 255) inside the live face oval, eyes, brows and lips excluded."""
    h, w = shape[:2]
    oval = np.zeros((h, w), np.uint8)
    cv2.fillPoly(oval, [np.round(lm[list(FACE_OVAL)]).astype(np.int32)], 255)
    features = np.zeros((h, w), np.uint8)
    for idx in (RIGHT_EYE, LEFT_EYE, RIGHT_EYEBROW, LEFT_EYEBROW, LIPS_OUTER):
        cv2.fillConvexPoly(features, cv2.convexHull(np.round(lm[list(idx)]).astype(np.int32)), 255)
    return np.asarray((mask == 255) & (oval > 0) & (features == 0))


def covered_skin_match(original: ImageBGR, output: ImageBGR, mask: Mask, landmarks: npt.ArrayLike) -> SkinMatch:
    """Mean L*a*b* of the swapped skin vs the live skin it covers (same pixels, before pasting).

    Fully pasted pixels (mask 255) inside the live face oval, eyes, brows and lips excluded.
    Unlike :func:`skin_match` this is blind to seams but also to the face's own shading:
    a perfect colour match scores 0.
    """
    lm = np.asarray(landmarks, np.float32)[:, :2]
    where = _pasted_face_skin(original.shape, mask, lm)
    lab_in, lab_out = mean_lab(output, where), mean_lab(original, where)
    n = int(where.sum())
    return SkinMatch(lab_in, lab_out, delta_e76(lab_in, lab_out), delta_e2000(lab_in, lab_out), n, n)


@dataclass(frozen=True)
class LightingMatch:
    """How well the output keeps the live face's lighting across the face (L*, see
    :func:`lighting_match`).

    Attributes:
        error: the largest deviation (L*) between the output's and the live face's lighting
            profiles, each profile's own mean removed: 0 when every stripe is as much
            lighter or darker than the face's average as it is in the live face.
        live_range: the live profiles' range (how strongly the live face is lit from a side).
        profiles: ``(2, 2, stripes)`` output then live, left-right then top-bottom medians.
    """

    error: float
    live_range: float
    profiles: npt.NDArray[np.float64]


def _covered_skin(original: ImageBGR, output: ImageBGR, mask: Mask, landmarks: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Fully pasted pixels inside the live face oval, features excluded, that look like skin in
    both frames (each judged by its own cheeks): no live beard or glasses, no source stubble."""
    lm = np.asarray(landmarks, np.float32)[:, :2]
    where = _pasted_face_skin(original.shape, mask, lm)
    return _skin_like(original, lm, where) & _skin_like(output, lm, where)


def lighting_match(
    original: ImageBGR, output: ImageBGR, mask: Mask, landmarks: npt.ArrayLike, stripes: int = 4
) -> LightingMatch:
    """Low-frequency L* profiles of the swapped skin vs the live skin it covers.

    The covered skin (:func:`_covered_skin`) is cut into ``stripes`` vertical stripes of
    equal pixel count (left to right) and, separately, into horizontal ones (top to bottom);
    each stripe's median L* is its brightness. A lit side, a shaded jaw or a bright forehead
    show as a slope of the live profile; a swap that paints an evenly lit face (a "mask")
    flattens it, and a band shows as one stripe out of line. Medians over whole stripes are
    blind to the features' own detail (that is the source's identity).
    """
    where = _covered_skin(original, output, mask, landmarks)
    ys, xs = np.nonzero(where)
    if len(xs) < 16 * stripes:
        return LightingMatch(float("nan"), float("nan"), np.full((2, 2, stripes), np.nan))
    out_l = cv2.cvtColor(output.astype(np.float32) / 255, cv2.COLOR_BGR2Lab)[ys, xs, 0]
    live_l = cv2.cvtColor(original.astype(np.float32) / 255, cv2.COLOR_BGR2Lab)[ys, xs, 0]
    profiles = np.zeros((2, 2, stripes))
    for axis, coord in enumerate((xs, ys)):
        edges = np.quantile(coord, np.linspace(0, 1, stripes + 1))
        k = np.clip(np.searchsorted(edges, coord, side="right") - 1, 0, stripes - 1)
        for i in range(stripes):
            profiles[0, axis, i] = np.median(out_l[k == i])
            profiles[1, axis, i] = np.median(live_l[k == i])
    centred = profiles - profiles.mean(axis=2, keepdims=True)
    error = float(np.abs(centred[0] - centred[1]).max())
    return LightingMatch(error, float(np.ptp(profiles[1], axis=1).max()), profiles)


def covered_skin_only_match(original: ImageBGR, output: ImageBGR, mask: Mask, landmarks: npt.ArrayLike) -> SkinMatch:
    """:func:`covered_skin_match` over the pixels that are skin in both frames (each judged by
    its own cheeks, see :func:`_covered_skin`): blind to a live beard or glasses that the
    source's clean skin covers (and to the source's stubble), which that measure counts."""
    where = _covered_skin(original, output, mask, landmarks)
    lab_in, lab_out = mean_lab(output, where), mean_lab(original, where)
    n = int(where.sum())
    return SkinMatch(lab_in, lab_out, delta_e76(lab_in, lab_out), delta_e2000(lab_in, lab_out), n, n)


def detail_contrast(image: ImageBGR, where: npt.NDArray[np.bool_], sigma: float) -> float:
    """Standard deviation of L* minus its Gaussian blur (``sigma`` pixels) over ``where``: how
    strongly the features and the skin's texture stand out (a washed-out face scores low)."""
    lum = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_BGR2Lab)[..., 0]
    detail = lum - cv2.GaussianBlur(lum, (0, 0), sigma)
    return float(detail[where].std()) if where.any() else float("nan")


def contrast_kept(
    original: ImageBGR, output: ImageBGR, uncorrected: ImageBGR, mask: Mask, landmarks: npt.ArrayLike
) -> float:
    """Detail contrast (:func:`detail_contrast`, at 3 % of the face width) of the swapped face
    over that of the same swap without colour transfer (``uncorrected``), inside the fully
    pasted face oval: 1 = the source's features as crisp as in its photo; a colour transfer
    that squashes L* into the live skin's narrow spread gives a pale, washed-out face (< 1)."""
    lm = np.asarray(landmarks, np.float32)[:, :2]
    oval = np.zeros(original.shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(lm[list(FACE_OVAL)]).astype(np.int32)], 255)
    where = (mask == 255) & (oval > 0)
    sigma = max(1.0, 0.03 * float(np.ptp(lm[:, 0])))
    return detail_contrast(output, where, sigma) / max(detail_contrast(uncorrected, where, sigma), 1e-6)


# --- containment -------------------------------------------------------------------------


def changed_outside(original: ImageBGR, output: ImageBGR, mask: Mask, dilate: int = 2) -> int:
    """How many pixels differ between ``original`` and ``output`` outside the dilated mask."""
    k = 2 * max(dilate, 0) + 1
    grown = cv2.dilate(above(mask, 0), np.ones((k, k), np.uint8))
    diff = cv2.absdiff(original, output).max(axis=2)
    return int(np.count_nonzero((diff > 0) & (grown == 0)))


# --- colours that come from nowhere ------------------------------------------------------

#: b* below this (L*a*b*, OpenCV's D65 float conversion) is blue or cyan: no skin is.
BLUE_B = -4.0


def blue_pixels(image: ImageBGR) -> npt.NDArray[np.bool_]:
    """Pixels that are clearly blue or cyan (b* < :data:`BLUE_B`)."""
    lab = cv2.cvtColor(image.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_BGR2Lab)
    return lab[..., 2] < BLUE_B  # type: ignore[no-any-return]


def foreign_blue_pixels(original: ImageBGR, output: ImageBGR, mask: Mask, source: ImageBGR, reach: int = 3) -> int:
    """Pasted pixels that are blue although neither the live face nor the source is there.

    A colour transfer that overflows (a dark source mapped onto light, warm-lit skin) turns
    brows, eye sockets and shadows blue or cyan. ``source`` is the frame with the source
    face pasted *without* colour transfer (what the source photo has at each place); blue
    within ``reach`` pixels in it or in ``original`` excuses a blue output pixel.

    Args:
        original: the frame before pasting.
        output: the frame after pasting.
        mask: the pasted mask in frame pixels (only pixels with mask >= 128 count).
        source: the frame with the uncorrected source face pasted the same way.
        reach: tolerance for small misalignments, pixels.
    """
    k = 2 * max(reach, 0) + 1
    kern = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    excused = cv2.dilate((blue_pixels(original) | blue_pixels(source)).astype(np.uint8), kern) > 0
    return int(np.count_nonzero(blue_pixels(output) & (mask >= 128) & ~excused))


# -- around the eyes: glasses frames and eye make-up ------------------------------------------
def _grown_polygons(
    shape: tuple[int, ...], landmarks: npt.NDArray[np.float32], groups: Sequence[Sequence[int]], grow: float
) -> npt.NDArray[np.bool_]:
    """The convex hulls of landmark ``groups``, grown by ``grow`` x face width."""
    m = np.zeros(shape[:2], np.uint8)
    for idx in groups:
        cv2.fillConvexPoly(m, cv2.convexHull(np.round(landmarks[list(idx)]).astype(np.int32)), 255)
    r = int(round(grow * float(np.ptp(landmarks[:, 0]))))
    if r > 0:
        m = u8(cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))))
    return np.asarray(m > 0)


def _eye_region(shape: tuple[int, ...], landmarks: npt.ArrayLike, near: float, far: float) -> npt.NDArray[np.bool_]:
    """Pixels between ``near`` and ``far`` x face width from either eye's outline, brows (grown by
    1 %) excluded."""
    lm = np.asarray(landmarks, np.float32)[:, :2]
    eyes = (RIGHT_EYE, LEFT_EYE)
    brows = _grown_polygons(shape, lm, (RIGHT_EYEBROW, LEFT_EYEBROW), 0.01)
    return _grown_polygons(shape, lm, eyes, far) & ~_grown_polygons(shape, lm, eyes, near) & ~brows


def periocular_lab(image: ImageBGR, landmarks: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Mean L*a*b* of the skin around the eyes: lids and sockets, from 1.5 % to 8 % of the face
    width from each eye's outline (the eye opening and the brows excluded)."""
    return mean_lab(image, _eye_region(image.shape, landmarks, 0.015, 0.08))


def periocular_lightness(image: ImageBGR, landmarks: npt.ArrayLike) -> float:
    """Mean L* (0..100) of the skin around the eyes (:func:`periocular_lab`)."""
    return float(periocular_lab(image, landmarks)[0])


def colourfulness(lab: npt.ArrayLike) -> float:
    """Chroma per lightness of a mean L*a*b*, ``C* / (L* + 16)``: how saturated a colour is for
    its depth (a material's a*, b* shrink with its lightness as the light on it dims)."""
    lab = np.asarray(lab, np.float64)
    return float(np.hypot(lab[1], lab[2]) / (lab[0] + 16.0))


def eye_contrast(image: ImageBGR, landmarks: npt.ArrayLike) -> float:
    """Spread of L* inside the eye openings (95th minus 5th percentile): iris, pupil and lashes
    against the whites."""
    lm = np.asarray(landmarks, np.float32)[:, :2]
    m = np.zeros(image.shape[:2], np.uint8)
    for idx in (RIGHT_EYE, LEFT_EYE):
        cv2.fillPoly(m, [np.round(lm[list(idx)]).astype(np.int32)], 255)
    px = _lab_pixels(image, m > 0)
    if len(px) < 16:
        return float("nan")
    lo, hi = np.percentile(px[:, 0], [5, 95])
    return float(hi - lo)


def line_structure(image: ImageBGR, where: npt.NDArray[np.bool_], face_width: float) -> float:
    """Mean |L* - its local median| over ``where`` (median over 6 % of ``face_width``): how much thin
    structure, dark or light (a frame, its ghost, a lens's bright edge), lies on those pixels."""
    k = max(3, int(round(0.06 * face_width)) | 1)
    lightness = u8(cv2.cvtColor(image, cv2.COLOR_BGR2Lab)[..., 0])
    local = cv2.medianBlur(lightness, min(k, 255))
    diff = np.abs(lightness.astype(np.float32) - local.astype(np.float32)) * (100.0 / 255.0)
    return float(diff[where].mean()) if where.any() else float("nan")


def frame_ghost(output: ImageBGR, landing: npt.NDArray[np.bool_], landmarks: npt.ArrayLike) -> float:
    """Thin structure where a source's glasses frame lands in the output (``landing``), relative to
    the output's own skin next to it (2 % to 6 % of the face width away, eyes and brows excluded):
    about 1 or less without a ghost, well above 1 with one (:func:`line_structure` of both)."""
    lm = np.asarray(landmarks, np.float32)[:, :2]
    face_w = float(np.ptp(lm[:, 0]))

    def grown(r: float) -> npt.NDArray[np.bool_]:
        k = 2 * max(1, int(round(r * face_w))) + 1
        return np.asarray(
            cv2.dilate(landing.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
        )

    features = _grown_polygons(output.shape, lm, (RIGHT_EYE, LEFT_EYE, RIGHT_EYEBROW, LEFT_EYEBROW), 0.01)
    beside = grown(0.06) & ~grown(0.02) & ~features
    return line_structure(output, landing & ~features, face_w) / max(line_structure(output, beside, face_w), 1e-6)


def glasses_frame_pixels(image: ImageBGR, landmarks: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """A dark glasses frame's pixels in a photo of a face wearing one: black (L* < 35) thin lines
    (black-hat over 15 L* at 6 % of the face width) in the band from the brows' top to 15 % of
    the face width below the eyes, eye openings (grown by 3 %) and brows (grown by 1 %) excluded.

    Independent of the product's own detector (:mod:`obs_faceswap.swap.glasses`, which works in
    UV space), so a test can check what that detector found.
    """
    lm = np.asarray(landmarks, np.float32)[:, :2]
    h, w = image.shape[:2]
    face_w = float(np.ptp(lm[:, 0]))
    k = max(3, int(round(0.06 * face_w)) | 1)
    lightness = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)[..., 0]
    dark = np.asarray(
        cv2.morphologyEx(lightness, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    )
    band = np.zeros((h, w), bool)
    top = float(lm[list(RIGHT_EYEBROW) + list(LEFT_EYEBROW), 1].min())
    bottom = float(lm[list(RIGHT_EYE) + list(LEFT_EYE), 1].max()) + 0.15 * face_w
    x0, x1 = float(lm[:, 0].min()), float(lm[:, 0].max())
    band[max(0, int(top)) : min(h, int(bottom)), max(0, int(x0)) : min(w, int(x1))] = True
    excluded = _grown_polygons(image.shape, lm, (RIGHT_EYE, LEFT_EYE), 0.03)
    excluded |= _grown_polygons(image.shape, lm, (RIGHT_EYEBROW, LEFT_EYEBROW), 0.01)
    return np.asarray(band & ~excluded & (lightness < 35) & (dark > 15))


def bluer_than_both(
    original: ImageBGR, output: ImageBGR, mask: Mask, source: ImageBGR, reach: int = 3, margin: float = 4.0
) -> int:
    """Pasted pixels that are blue and bluer than both the live face and the source are nearby.

    :func:`foreign_blue_pixels` for any light: under a blue or cyan light the live skin itself
    sits near :data:`BLUE_B`, so a fixed threshold flags the swapped skin for crossing it where
    the live pixel next to it happens not to. Here a blue output pixel counts only when its
    b* is more than ``margin`` below every b* of the live frame and of the uncorrected source
    (``source``, as in :func:`foreign_blue_pixels`) within ``reach`` pixels. The colour
    transfer's hue guard works at the scale of a few per cent of the face (and the swap moves
    the brows to the source's place), so ``reach`` should be about 3 % of the face width.
    """
    k = 2 * max(reach, 0) + 1
    kern = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))

    def b_star(image: ImageBGR) -> npt.NDArray[np.float32]:
        lab = cv2.cvtColor(image.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_BGR2Lab)
        return np.ascontiguousarray(lab[..., 2])

    floor = cv2.erode(np.minimum(b_star(original), b_star(source)), kern)
    out = b_star(output)
    return int(np.count_nonzero((out < BLUE_B) & (out < floor - margin) & (mask >= 128)))
