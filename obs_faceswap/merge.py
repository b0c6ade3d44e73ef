"""Merging a swapped face into the frame: colour transfer and paste-back, as pure functions.

A swapper produces a :class:`~obs_faceswap.types.SwapResult` (crop, mask, transform); the
functions here decide how it lands on the frame:

* colour transfer in L*a*b*: ``rct`` (Reinhard: per-channel mean and standard deviation)
  and ``linear`` (mean and full 3x3 covariance, the Monge-Kantorovich linear map), both
  computed from optional masks so only skin enters the statistics. Both are affine maps in
  L*a*b*, so a transfer is one ``cv2.transform`` call and ``strength`` interpolates the map.
* :func:`paste_back`: ``feather`` (alpha blend), ``seamless`` (Poisson, ``cv2.seamlessClone``)
  or ``multiband`` (Laplacian pyramid) blending with an opacity, in place on the frame's
  region of interest only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt
from numba import njit

from obs_faceswap.config import BlendConfig
from obs_faceswap.cvtyped import above, f32, u8
from obs_faceswap.types import Box, ImageBGR, Mask, SwapResult

log = logging.getLogger(__name__)


# --- colour statistics and transfer ------------------------------------------------------

#: Floor for per-channel standard deviations and covariance eigenvalues (Lab units): a flat
#: patch must not blow the transfer up.
_MIN_STD = 1.0
#: RCT scale factors are clipped to this range; beyond it the source and target are too
#: different for a global map to look natural (e.g. a patch of hair in the statistics).
_MAX_SCALE = 2.5
#: Floors of the robust deviations (L, a, b) in :func:`robust_lab_stats`: skin is uniform.
_ROBUST_FLOOR = np.array([3.0, 1.5, 1.5])
_F = TypeVar("_F", np.float32, np.float64)
#: ``rct_matrix(lightness="ratio")``'s L* gain stays within these. Darkening follows the ratio
#: (a light source on a darker face: its features darken with its skin, as under less light);
#: brightening is capped: a dark source on a light face at the full ratio (about 1.3) brightens
#: the photo's own highlights (a shiny nose) as much as its features.
_LIGHTNESS_GAIN = (1 / 1.15, 1.15)


@dataclass(frozen=True)
class LabStats:
    """Colour statistics of a set of pixels in L*a*b* (L 0..100, a/b about -128..127).

    Attributes:
        mean: ``(3,)`` float64 mean.
        cov: ``(3, 3)`` float64 covariance.
        count: number of pixels the statistics came from.
    """

    mean: npt.NDArray[np.float64]
    cov: npt.NDArray[np.float64]
    count: int

    @property
    def std(self) -> npt.NDArray[np.float64]:
        return np.sqrt(np.maximum(np.diag(self.cov), 0.0))

    def mix(self, other: LabStats, weight: float) -> LabStats:
        """``(1 - weight) * self + weight * other`` (for temporal smoothing)."""
        return LabStats(
            (1 - weight) * self.mean + weight * other.mean, (1 - weight) * self.cov + weight * other.cov, other.count
        )


def to_lab(image: ImageBGR) -> npt.NDArray[np.float32]:
    """BGR uint8 → float32 L*a*b* (L in 0..100), OpenCV's D65 conversion."""
    return f32(cv2.cvtColor(image.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_BGR2Lab))


def from_lab(lab: npt.NDArray[np.float32]) -> ImageBGR:
    """float32 L*a*b* → BGR uint8 (clipped)."""
    bgr = cv2.cvtColor(lab, cv2.COLOR_Lab2BGR)
    return u8(cv2.convertScaleAbs(bgr, alpha=255.0))


def lab_stats(
    image: ImageBGR, mask: Mask | None = None, *, lab: npt.NDArray[np.float32] | None = None
) -> LabStats | None:
    """Mean and covariance in L*a*b* of the pixels where ``mask`` > 0 (all when ``None``).

    Args:
        image: ``(H, W, 3)`` uint8 BGR.
        mask: optional ``(H, W)`` uint8 selection.
        lab: the image already converted with :func:`to_lab` (skips the conversion).

    Returns:
        The statistics, or ``None`` when fewer than 16 pixels are selected.
    """
    if lab is None:
        lab = to_lab(image)
    px = lab.reshape(-1, 3) if mask is None else lab[mask > 0]
    if len(px) < 16:
        return None
    px64 = px.astype(np.float64)
    mean = px64.mean(axis=0)
    cov = np.cov(px64, rowvar=False)
    return LabStats(mean, cov, len(px))


def medians(x: npt.NDArray[_F]) -> npt.NDArray[_F]:
    """``np.median(x, axis=0)``, the same values, from one partial sort.

    ``np.median`` partitions for both middle ranks at once: on the one to two thousand skin
    samples a live face gives per colour estimate, several times slower than one partition
    (the lower middle rank of an even count is then the largest value below it).
    """
    n = len(x)
    half = n // 2
    part = np.partition(x, half, axis=0)
    if n % 2:
        out: npt.NDArray[_F] = part[half]
        return out
    mid: npt.NDArray[_F] = (part[:half].max(axis=0) + part[half]) / 2
    return mid


def robust_lab_stats(lab: npt.NDArray[np.float32], clip: float = 2.5) -> LabStats | None:
    """Statistics of the bulk of a set of L*a*b* pixels (e.g. skin), outliers left out.

    A cheek patch holds stubble, a beard's edge, a glasses frame or a strand of hair; with
    them in, the standard deviations (and so the Reinhard gains) are several times those of
    the skin, and a transfer squashes or overflows. Pixels further than ``clip`` robust
    deviations (1.4826 x median absolute deviation, floored) from the median in any channel
    are dropped before the mean and covariance are taken.

    Args:
        lab: ``(..., 3)`` float L*a*b* pixels.
        clip: how many robust deviations from the median a kept pixel may be.

    Returns:
        The statistics, or ``None`` when fewer than 16 pixels are given.
    """
    px = np.asarray(lab, np.float64).reshape(-1, 3)
    if len(px) < 16:
        return None
    med = medians(px)
    sd = np.maximum(1.4826 * medians(np.abs(px - med)), _ROBUST_FLOOR)
    keep = (np.abs(px - med) <= clip * sd).all(axis=1)
    if keep.sum() >= 16:
        px = np.compress(keep, px, axis=0)  # (boolean indexing of (N, 3) rows is several times slower)
    return LabStats(px.mean(axis=0), np.cov(px, rowvar=False), len(px))


def rct_matrix(
    source: LabStats,
    target: LabStats,
    strength: float = 1.0,
    *,
    max_chroma_gain: float = _MAX_SCALE,
    lightness: str = "std",
) -> npt.NDArray[np.float64]:
    """Reinhard colour transfer as a ``(3, 4)`` affine map in L*a*b*.

    Each channel is shifted and scaled so the source's mean and standard deviation become
    the target's: ``y = (x - mu_s) * sd_t / sd_s + mu_t``. ``strength`` interpolates between
    the identity (0) and the full transfer (1). ``max_chroma_gain`` caps the a* and b* gains:
    a face's own colour deviations (brows, shadows, lips) amplified by a large gain overflow
    into hues the face never had (blue brows from a warm-lit target).

    ``lightness="ratio"`` scales L* by the ratio of the means instead (``(y + 16) = (x + 16)
    * (mu_t + 16) / (mu_s + 16)``, how L* follows a change of illuminance or albedo; clipped
    to :data:`_LIGHTNESS_GAIN`): a skin patch's L* spread is mostly the photo's lighting
    across it, so matching spreads squashes a brightly lit source's features into a flat,
    washed-out face on an evenly lit target (and overdrives an evenly lit source's
    highlights on a shaded one), where the live lighting is carried over locally anyway.
    """
    sd_s = np.maximum(source.std, _MIN_STD)
    sd_t = np.maximum(target.std, _MIN_STD)
    scale = np.clip(sd_t / sd_s, 1 / _MAX_SCALE, _MAX_SCALE)
    scale[1:] = np.minimum(scale[1:], max_chroma_gain)
    if lightness == "ratio":
        ratio = (float(target.mean[0]) + 16.0) / max(float(source.mean[0]) + 16.0, 1.0)
        scale[0] = float(np.clip(ratio, *_LIGHTNESS_GAIN))
    elif lightness != "std":
        raise ValueError(f"lightness must be std or ratio; got {lightness!r}")
    a = np.diag(scale)
    b = target.mean - a @ source.mean
    return _with_strength(a, b, strength)


def linear_matrix(source: LabStats, target: LabStats, strength: float = 1.0) -> npt.NDArray[np.float64]:
    """Monge-Kantorovich linear colour transfer as a ``(3, 4)`` affine map in L*a*b*.

    ``A = S^-1/2 (S^1/2 T S^1/2)^1/2 S^-1/2`` maps the source covariance ``S`` exactly onto the
    target covariance ``T`` with the least total displacement (Pitie & Kokaram 2007);
    ``y = A (x - mu_s) + mu_t``.
    """
    s_half, s_inv_half = _sqrtm(source.cov)
    mid, _ = _sqrtm(s_half @ _regularised(target.cov) @ s_half)
    a = s_inv_half @ mid @ s_inv_half
    # Guard against a degenerate estimate (e.g. a tiny skin patch): keep the gains sane.
    w, v = np.linalg.eigh((a + a.T) / 2)
    a = v @ np.diag(np.clip(w, 1 / _MAX_SCALE, _MAX_SCALE)) @ v.T
    b = target.mean - a @ source.mean
    return _with_strength(a, b, strength)


def transfer_matrix(
    mode: str,
    source: LabStats,
    target: LabStats,
    strength: float = 1.0,
    *,
    max_chroma_gain: float = _MAX_SCALE,
    lightness: str = "std",
) -> npt.NDArray[np.float64]:
    """The ``(3, 4)`` L*a*b* affine map for ``mode`` ``"rct"``, ``"linear"`` or ``"none"``
    (``max_chroma_gain``, ``lightness``: see :func:`rct_matrix`; rct only)."""
    if mode == "rct":
        return rct_matrix(source, target, strength, max_chroma_gain=max_chroma_gain, lightness=lightness)
    if mode == "linear":
        return linear_matrix(source, target, strength)
    if mode == "none":
        return np.hstack([np.eye(3), np.zeros((3, 1))])
    raise ValueError(f"colour transfer mode must be rct, linear or none; got {mode!r}")


def apply_lab_matrix(lab: npt.NDArray[np.float32], matrix: npt.ArrayLike) -> ImageBGR:
    """Apply a ``(3, 4)`` L*a*b* affine map to a float32 L*a*b* image; returns BGR uint8."""
    out = f32(cv2.transform(lab, np.asarray(matrix, np.float32)))
    return from_lab(out)


def color_transfer(
    image: ImageBGR,
    target: ImageBGR,
    mode: str = "rct",
    *,
    image_mask: Mask | None = None,
    target_mask: Mask | None = None,
    strength: float = 1.0,
) -> ImageBGR:
    """Recolour ``image`` so the statistics of its masked pixels match ``target``'s.

    Args:
        image: ``(H, W, 3)`` uint8 BGR to recolour (all of it is mapped).
        target: ``(h, w, 3)`` uint8 BGR whose colours are wanted.
        mode: ``"rct"``, ``"linear"`` or ``"none"``.
        image_mask: pixels of ``image`` that enter the statistics (e.g. skin only).
        target_mask: pixels of ``target`` that enter the statistics.
        strength: 0 = unchanged, 1 = full transfer.

    Returns:
        The recoloured image (a new array); ``image`` unchanged when either selection has
        fewer than 16 pixels or ``mode`` is ``"none"``.
    """
    if mode == "none" or strength <= 0:
        return u8(image.copy())
    lab = to_lab(image)
    src = lab_stats(image, image_mask, lab=lab)
    dst = lab_stats(target, target_mask)
    if src is None or dst is None:
        log.debug("colour transfer skipped: too few pixels in a mask")
        return u8(image.copy())
    return apply_lab_matrix(lab, transfer_matrix(mode, src, dst, strength))


def match_colours(result: SwapResult, mode: str = "rct", strength: float = 1.0) -> SwapResult:
    """A neural swap's crop colour-matched to the live face it replaces, inside its mask.

    Statistics of both crops are taken where ``result.mask`` is at least half on, so the
    background a crop model also returns does not enter them. Results without a live crop (the
    photo swapper does its own colour work) are returned unchanged.

    Args:
        result: a swap result with ``live`` set.
        mode: ``"rct"`` (Reinhard mean/std in L*a*b*), ``"linear"`` or ``"none"``.
        strength: 0 = the model's colours, 1 = full transfer.
    """
    if result.live is None or mode == "none" or strength <= 0:
        return result
    # color_transfer's work with the statistics from OpenCV's masked means (per frame: ~20x
    # cheaper than lab_stats' np.cov on a crop; the same numbers to float rounding)
    inside = np.asarray(result.mask > 127, np.uint8)
    full = mode != "rct"  # Reinhard needs only the variances
    lab = to_lab(result.crop)
    src = _masked_lab_stats(lab, inside, full=full)
    dst = _masked_lab_stats(to_lab(result.live), inside, full=full)
    if src is None or dst is None:
        log.debug("colour transfer skipped: too few pixels in a mask")
        return result
    crop = apply_lab_matrix(lab, transfer_matrix(mode, src, dst, strength))
    return SwapResult(crop, result.mask, result.transform, result.track_id, live=result.live)


def _masked_lab_stats(lab: npt.NDArray[np.float32], inside: Mask, *, full: bool = True) -> LabStats | None:
    """:func:`lab_stats` of the pixels where ``inside`` > 0, from OpenCV's masked means.

    With ``full`` off only the variances are computed (the covariance is diagonal): all that
    Reinhard's transfer reads.
    """
    n = cv2.countNonZero(inside)
    if n < 16:
        return None
    mean_, std_ = cv2.meanStdDev(lab, mask=inside)
    mean = np.asarray(mean_, np.float64).reshape(3)
    cov = np.diag(np.asarray(std_, np.float64).reshape(3) ** 2)
    if full:
        ch = cv2.split(lab)
        for a, b in ((0, 1), (0, 2), (1, 2)):
            exy = cv2.mean(cv2.multiply(ch[a] - np.float32(mean[a]), ch[b] - np.float32(mean[b])), mask=inside)[0]
            cov[a, b] = cov[b, a] = exy
    return LabStats(mean, cov * (n / (n - 1)), n)  # unbiased, like np.cov


def invert_transform(matrix: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The inverse of a ``(2, 3)`` affine matrix (frame → crop for a result's crop → frame)."""
    return np.asarray(cv2.invertAffineTransform(np.asarray(matrix, np.float64)), np.float32)


def with_mask(result: SwapResult, mask: Mask) -> SwapResult:
    """The same result with another mask (e.g. narrowed by :mod:`obs_faceswap.masks`)."""
    return SwapResult(result.crop, mask, result.transform, result.track_id, live=result.live)


def _regularised(cov: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    w, v = np.linalg.eigh((cov + cov.T) / 2)
    out: npt.NDArray[np.float64] = v @ np.diag(np.maximum(w, _MIN_STD**2)) @ v.T
    return out


def _sqrtm(cov: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Square root and inverse square root of a symmetric positive (regularised) matrix."""
    w, v = np.linalg.eigh((cov + cov.T) / 2)
    w = np.maximum(w, _MIN_STD**2)
    return v @ np.diag(np.sqrt(w)) @ v.T, v @ np.diag(1 / np.sqrt(w)) @ v.T


def _with_strength(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], strength: float) -> npt.NDArray[np.float64]:
    s = float(np.clip(strength, 0.0, 1.0))
    a = np.eye(3) + s * (a - np.eye(3))
    return np.hstack([a, (s * b)[:, None]])


# --- paste-back --------------------------------------------------------------------------

#: Seamless cloning solves its (smooth) correction at about this many pixels across.
_SEAMLESS_SIZE = 128


@njit(cache=True, nogil=True)
def _blend_inplace(
    dst: npt.NDArray[np.uint8], src: npt.NDArray[np.uint8], mask: npt.NDArray[np.uint8], opacity: int
) -> None:
    """``dst = round((src * a + dst * (255 - a)) / 255)`` with ``a = round(mask * opacity / 255)``."""
    lut = np.empty(256, np.int64)
    for m in range(256):
        lut[m] = (m * opacity + 127) // 255
    h, w = mask.shape
    for i in range(h):
        for j in range(w):
            a = lut[mask[i, j]]
            if a == 0:
                continue
            if a == 255:
                dst[i, j, 0] = src[i, j, 0]
                dst[i, j, 1] = src[i, j, 1]
                dst[i, j, 2] = src[i, j, 2]
                continue
            b = 255 - a
            for c in range(3):
                x = np.int64(src[i, j, c]) * a + np.int64(dst[i, j, c]) * b + 128
                dst[i, j, c] = (x + (x >> 8)) >> 8  # exact round(x / 255) for x < 65536


@njit(cache=True, nogil=True)
def _blend_bgra_inplace(
    dst: npt.NDArray[np.uint8], src: npt.NDArray[np.uint8], opacity: int
) -> tuple[int, int, int, int]:
    """:func:`_blend_inplace` with the mask in ``src``'s fourth channel (one warped BGRA patch).

    Returns the ``(x0, y0, x1, y1)`` box (exclusive end) of the pixels it blended with a
    non-zero weight, ``(0, 0, 0, 0)`` when there were none: found in the same pass, so no
    separate ``boundingRect`` over the patch is needed.
    """
    lut = np.empty(256, np.int64)
    for m in range(256):
        lut[m] = (m * opacity + 127) // 255
    h, w = src.shape[0], src.shape[1]
    x0, y0, x1, y1 = w, h, 0, 0
    for i in range(h):
        first = -1
        last = -1
        for j in range(w):
            a = lut[src[i, j, 3]]
            if a == 0:
                continue
            if first < 0:
                first = j
            last = j
            if a == 255:
                dst[i, j, 0] = src[i, j, 0]
                dst[i, j, 1] = src[i, j, 1]
                dst[i, j, 2] = src[i, j, 2]
                continue
            b = 255 - a
            for c in range(3):
                x = np.int64(src[i, j, c]) * a + np.int64(dst[i, j, c]) * b + 128
                dst[i, j, c] = (x + (x >> 8)) >> 8  # exact round(x / 255) for x < 65536
        if first >= 0:  # the box, per row: the inner loop stays branch-light
            x0 = min(x0, first)
            x1 = max(x1, last + 1)
            y0 = min(y0, i)
            y1 = i + 1
    if x1 == 0:
        return 0, 0, 0, 0
    return x0, y0, x1, y1


def warm_up() -> None:
    """Compile (or load from numba's on-disk cache) the blend kernels before the first frame."""
    px = np.zeros((2, 2, 3), np.uint8)
    m = np.full((2, 1), 128, np.uint8)
    # Both layouts a frame region can have: full-width rows (contiguous) and a strided view.
    for dst in (np.zeros((2, 1, 3), np.uint8), px[:, :1]):
        _blend_inplace(dst, np.ascontiguousarray(px[:, :1]), m, 255)
        _blend_bgra_inplace(dst, np.full((2, 1, 4), 128, np.uint8), 255)


def paste_back(frame: ImageBGR, result: SwapResult, blend: BlendConfig | None = None) -> Box | None:
    """Composite a swapped face onto ``frame`` in place.

    Args:
        frame: ``(H, W, 3)`` uint8 BGR, modified in place (only inside the returned box).
        result: the swapper's crop, mask and crop → frame transform. A pure translation is
            pasted directly; any other affine transform warps crop and mask first.
        blend: mode (``feather``, ``seamless``, ``multiband``) and opacity.

    Returns:
        The ``(x0, y0, x1, y1)`` box (exclusive end, clipped to the frame) that may have
        changed, or ``None`` when nothing changed (empty mask, zero opacity, off-frame).
    """
    blend = blend or BlendConfig()
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
    opacity = int(round(blend.opacity * 255))
    if opacity <= 0:
        return None
    if blend.mode == "feather" and not result.is_translation:
        # A neural swap: one BGRA warp of the patch, blended in one pass that also finds the box.
        warped = _warp_bgra(frame.shape[:2], result)
        if warped is None:
            return None
        (wx, wy, _, _), bgra = warped
        h, w = bgra.shape[:2]
        bx0, by0, bx1, by1 = _blend_bgra_inplace(frame[wy : wy + h, wx : wx + w], bgra, opacity)
        return (wx + bx0, wy + by0, wx + bx1, wy + by1) if bx1 > bx0 else None
    placed = _place(frame.shape[:2], result)
    if placed is None:
        return None
    box, crop, mask = placed
    x0, y0, x1, y1 = box
    roi = frame[y0:y1, x0:x1]
    if blend.mode == "feather":
        _blend_inplace(roi, np.ascontiguousarray(crop), np.ascontiguousarray(mask), opacity)
    elif blend.mode == "seamless":
        _seamless(roi, crop, mask, opacity)
    elif blend.mode == "multiband":
        _multiband(roi, crop, mask, opacity)
    else:
        raise ValueError(f"unknown blend mode {blend.mode!r}")
    return box


def result_box(frame_hw: tuple[int, ...], result: SwapResult) -> Box | None:
    """The frame pixels a swap result's crop covers (clipped; None when outside the frame):
    what :func:`paste_back` reads and may write."""
    fh, fw = int(frame_hw[0]), int(frame_hw[1])
    ch, cw = result.mask.shape
    t = result.transform.astype(np.float64)
    if result.is_translation:
        tx, ty = int(round(t[0, 2])), int(round(t[1, 2]))
        x0, y0, x1, y1 = max(tx, 0), max(ty, 0), min(tx + cw, fw), min(ty + ch, fh)
    else:
        corners = np.array([[0, 0], [cw, 0], [0, ch], [cw, ch]], np.float64) @ t[:, :2].T + t[:, 2]
        x0 = max(int(math.floor(corners[:, 0].min())), 0)
        y0 = max(int(math.floor(corners[:, 1].min())), 0)
        x1 = min(int(math.ceil(corners[:, 0].max())) + 1, fw)
        y1 = min(int(math.ceil(corners[:, 1].max())) + 1, fh)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _place(frame_hw: tuple[int, ...], result: SwapResult) -> tuple[Box, ImageBGR, Mask] | None:
    """Crop and mask in frame pixels, cut to the frame, with the box they cover."""
    box = result_box(frame_hw, result)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    t = result.transform.astype(np.float64)
    if result.is_translation:
        tx, ty = int(round(t[0, 2])), int(round(t[1, 2]))
        crop = result.crop[y0 - ty : y1 - ty, x0 - tx : x1 - tx]
        mask = result.mask[y0 - ty : y1 - ty, x0 - tx : x1 - tx]
    else:
        warped = _warp_bgra(frame_hw, result)
        if warped is None:
            return None
        (x0, y0, _, _), bgra = warped
        crop, mask = bgra[..., :3], np.ascontiguousarray(bgra[..., 3])
    # Tighten to where the mask is non-zero: less work, and the box reports what changed.
    bx, by, bw, bh = cv2.boundingRect(mask)
    if bw == 0 or bh == 0:
        return None
    crop = crop[by : by + bh, bx : bx + bw]
    mask = mask[by : by + bh, bx : bx + bw]
    return (x0 + bx, y0 + by, x0 + bx + bw, y0 + by + bh), crop, mask


def _warp_bgra(frame_hw: tuple[int, ...], result: SwapResult) -> tuple[Box, npt.NDArray[np.uint8]] | None:
    """A resampled (non-translation) result as one BGRA patch in frame pixels, and its box.

    Only the frame pixels that can get a non-zero mask are produced: the mask's bounding box in
    the crop (grown by the one pixel bilinear sampling reaches) mapped to the frame. Crop and
    mask travel as one 4-channel image through a single ``warpAffine`` (OpenCV's 4-channel path
    is several times faster than its 3-channel one) with the crop's edges replicated. Where the
    mask is zero along the crop's border (box masks, eroded model masks) replicating it equals a
    zero border; a mask that reaches the border is warped again on its own with a zero border.
    Either way the patch equals warping the crop with ``BORDER_REPLICATE`` and the mask with a
    zero ``BORDER_CONSTANT`` separately, pixel for pixel.
    """
    mask = result.mask
    bx, by, bw, bh = cv2.boundingRect(mask)
    whole = result_box(frame_hw, result)
    if bw == 0 or bh == 0 or whole is None:
        return None
    t = result.transform.astype(np.float64)
    # frame pixels whose sample lies strictly inside (bx - 1, bx + bw) x (by - 1, by + bh), within
    # the crop's box (what result_box promises a lazily converted frame has loaded)
    corners = (
        np.array([[bx - 1, by - 1], [bx + bw, by - 1], [bx - 1, by + bh], [bx + bw, by + bh]], np.float64) @ t[:, :2].T
        + t[:, 2]
    )
    x0 = max(int(math.floor(corners[:, 0].min())), whole[0])
    y0 = max(int(math.floor(corners[:, 1].min())), whole[1])
    x1 = min(int(math.ceil(corners[:, 0].max())) + 1, whole[2])
    y1 = min(int(math.ceil(corners[:, 1].max())) + 1, whole[3])
    if x1 <= x0 or y1 <= y0:
        return None
    h, w = mask.shape
    bgra = np.empty((h, w, 4), np.uint8)
    bgra[..., :3] = result.crop
    bgra[..., 3] = mask
    m = t.copy()
    m[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    patch = np.asarray(cv2.warpAffine(bgra, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.uint8)
    if bx == 0 or by == 0 or bx + bw == w or by + bh == h:  # the mask reaches the crop's border
        patch[..., 3] = cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return (x0, y0, x1, y1), patch


def _seamless(roi: ImageBGR, crop: ImageBGR, mask: Mask, opacity: int) -> None:
    """Poisson blend (``cv2.seamlessClone``) then an alpha composite with the soft mask.

    The Poisson solve changes the crop by a smooth membrane that makes it agree with the
    frame along the mask's boundary; the soft mask (holes for mouth and eyes, feathered
    edge) then decides how much of it shows. The membrane is smooth, so it is solved at about
    :data:`_SEAMLESS_SIZE` pixels across and upsampled onto the full-resolution crop
    (``seamlessClone`` costs ~100 ms on a 720p face, ~3 ms at that size).
    """
    h, w = mask.shape
    if h < 3 or w < 3:
        _blend_inplace(roi, np.ascontiguousarray(crop), np.ascontiguousarray(mask), opacity)
        return
    s = min(1.0, _SEAMLESS_SIZE / max(h, w))
    size = (max(3, round(w * s)), max(3, round(h * s)))
    small_roi = cv2.resize(roi, size, interpolation=cv2.INTER_AREA) if s < 1 else roi
    small_crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA) if s < 1 else crop
    small_mask = cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR) if s < 1 else mask
    # seamlessClone needs a mask that does not touch the image border: pad.
    pad = 4
    dst = cv2.copyMakeBorder(small_roi, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    src = cv2.copyMakeBorder(small_crop, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    binary = cv2.copyMakeBorder(above(u8(small_mask), 0), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    bx, by, bw, bh = cv2.boundingRect(binary)
    if bw == 0:
        return
    # seamlessClone puts the mask's bounding box at p - size // 2: this p leaves it in place
    # (checked: cloning an image onto itself changes no pixel by more than 1).
    centre = (bx + bw // 2, by + bh // 2)
    cloned = cv2.seamlessClone(src, dst, binary, centre, cv2.NORMAL_CLONE)[pad:-pad, pad:-pad]
    if s < 1:
        membrane = cv2.subtract(cloned, small_crop, dtype=cv2.CV_16S)
        membrane = cv2.resize(membrane, (w, h), interpolation=cv2.INTER_LINEAR)
        cloned = cv2.add(crop, membrane, dtype=cv2.CV_8U)
    _blend_inplace(roi, np.ascontiguousarray(cloned), np.ascontiguousarray(mask), opacity)


def _multiband(roi: ImageBGR, crop: ImageBGR, mask: Mask, opacity: int) -> None:
    """Laplacian-pyramid blend: low frequencies mix over a wide band, detail over a narrow one.

    Blending is linear, so ``sum_k L_k(crop) M_k + L_k(frame) (1 - M_k)`` equals the frame
    plus ``sum_k L_k(crop - frame) M_k``: one Laplacian pyramid (of the difference) instead
    of two. Pixels where the mask is 0 are never changed: the difference is 0 there and the
    result is composited only inside the mask (already feathered, so no step appears).
    """
    h, w = mask.shape
    levels = int(np.clip(math.floor(math.log2(max(min(h, w), 1) / 8)), 0, 4))
    if levels == 0:
        _blend_inplace(roi, np.ascontiguousarray(crop), np.ascontiguousarray(mask), opacity)
        return
    inside = mask > 0
    diff = cv2.subtract(crop, roi, dtype=cv2.CV_32F)
    diff[~inside] = 0
    m = mask.astype(np.float32) * np.float32(opacity / (255.0 * 255.0))
    gd, gm = [diff], [m]
    for _ in range(levels):
        gd.append(cv2.pyrDown(gd[-1]))
        gm.append(cv2.pyrDown(gm[-1]))
    out = gd[-1] * gm[-1][..., None]
    for k in range(levels - 1, -1, -1):
        size = (gd[k].shape[1], gd[k].shape[0])
        lap = gd[k] - cv2.pyrUp(gd[k + 1], dstsize=size)
        out = cv2.pyrUp(out, dstsize=size) + lap * gm[k][..., None]
    res = cv2.add(roi, out, dtype=cv2.CV_8U)
    np.copyto(roi, res, where=inside[..., None])
