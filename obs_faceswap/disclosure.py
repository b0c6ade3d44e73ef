"""Disclosure: the output says it is face-swapped, in its metadata and (optionally) on screen.

Two mechanisms, used together by default in files the engine writes:

* :data:`METADATA` / :func:`metadata` – container tags (``comment``, ``description`` and a
  custom ``synthetic_content`` key) that :mod:`obs_faceswap.io` writes into every video and
  image file it produces;
* :func:`burn_badge` – a small, semi-transparent label ("face swap" by default) burned into
  a corner of the frame. It scales with the frame height and is rendered once per
  (text, size) into a small premultiplied patch, so burning it costs one alpha blend of a
  few thousand pixels per frame.

This module only needs numpy and OpenCV, so the pipeline can import it without pulling in
any I/O code.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap import __version__
from obs_faceswap.config import CORNERS, BadgeConfig
from obs_faceswap.errors import ConfigError, FrameFormatError
from obs_faceswap.types import Box, ImageBGR

log = logging.getLogger(__name__)

#: Custom metadata key whose presence marks a file as face-swapped; its value says how.
SYNTHETIC_KEY = "synthetic_content"
SYNTHETIC_VALUE = "face-swapped"


# Badge look, as fractions of the frame height (chosen to stay readable down to 360p and
# unobtrusive at 1080p: ~24 px text at 1080p).
_TEXT_HEIGHT = 0.022
_MIN_TEXT_PX = 10
_MARGIN = 0.018
_BG_ALPHA = 0.55
_TEXT_ALPHA = 0.92
_SUPERSAMPLE = 4  # the rounded box is drawn at 4x and area-downscaled: anti-aliased edges


def disclosure_text(kind: str = "video") -> str:
    """The human-readable disclosure sentence written into files.

    Args:
        kind: what the file is (``"video"`` or ``"image"``), used in the sentence.
    """
    return f"Face-swapped with obs-faceswap {__version__}: this {kind} contains synthetic (face-swapped) content"


def metadata(kind: str = "video", *, swapped: bool = True) -> dict[str, str]:
    """Container metadata saying whether a file is face-swapped.

    ``comment`` and ``description`` are the keys players and file browsers show;
    ``synthetic_content`` is a machine-readable marker (MP4 stores it as a custom ``mdta``
    key, which needs ``-movflags use_metadata_tags``; Matroska and PNG take any key).

    Args:
        kind: ``"video"`` or ``"image"``.
        swapped: whether a face was swapped in the file. When not, the file is not marked
            (no ``synthetic_content``); ``comment`` says that obs-faceswap found no face to
            swap, so the file is not mistaken for an edited one either way.

    Returns:
        ``{key: value}``, all ASCII.
    """
    if not swapped:
        text = f"Processed with obs-faceswap {__version__}: no face was swapped in this {kind}"
        return {"comment": text, "description": text}
    text = disclosure_text(kind)
    return {
        "comment": text,
        "description": text,
        SYNTHETIC_KEY: f"{SYNTHETIC_VALUE}; obs-faceswap {__version__}",
    }


#: Metadata written into every video file the engine produces.
METADATA: dict[str, str] = metadata("video")


def is_marked(tags: dict[str, str]) -> bool:
    """True when ``tags`` (metadata read back from a file) carry the synthetic-content marker."""
    lowered = {k.lower(): v for k, v in tags.items()}
    return lowered.get(SYNTHETIC_KEY, "").startswith(SYNTHETIC_VALUE)


# -- the badge -----------------------------------------------------------------------------
def badge_text_px(frame_height: int) -> int:
    """Text height in pixels for a frame of this height (≈2.2 % of it, at least 10 px)."""
    return max(_MIN_TEXT_PX, int(round(frame_height * _TEXT_HEIGHT)))


def _font_face() -> Any:
    """OpenCV 5's built-in Unicode sans-serif font, or None on OpenCV 4 (Hershey fallback)."""
    make = getattr(cv2, "FontFace", None)
    if make is None:
        return None
    try:
        return make("sans")
    except cv2.error:  # pragma: no cover - a build without the embedded fonts
        return None


def _text_mask(text: str, px: int) -> npt.NDArray[np.uint8]:
    """Anti-aliased coverage (0..255) of ``text`` rendered ``px`` pixels tall, tightly cropped."""
    face = _font_face()
    if face is not None:
        # Measure, then draw with the top-left of the ink box at (pad, pad).
        pad = px
        x, y, w, h = cv2.getTextSize((0, 0), text, (0, 0), face, px, 600)
        canvas = np.zeros((h + 2 * pad, w + 2 * pad), np.uint8)
        cv2.putText(canvas, text, (pad - x, pad - y), 255, face, px, 600)
    else:  # pragma: no cover - OpenCV 4: ASCII only, non-ASCII becomes '?'
        font = cv2.FONT_HERSHEY_SIMPLEX
        thickness = max(1, px // 12)
        scale = cv2.getFontScaleFromHeight(font, px, thickness)
        (w, h), base = cv2.getTextSize(text, font, scale, thickness)
        pad = px
        canvas = np.zeros((h + base + 2 * pad, w + 2 * pad), np.uint8)
        cv2.putText(canvas, text, (pad, pad + h), font, scale, 255, thickness, cv2.LINE_AA)
    ys, xs = np.nonzero(canvas)
    if len(xs) == 0:  # whitespace-only text: an empty box of the right height
        return np.zeros((px, max(1, px // 2)), np.uint8)
    return canvas[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


@functools.lru_cache(maxsize=16)
def _badge_patch(text: str, px: int) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
    """The badge as ``(premultiplied colour, 255 - alpha)``, both uint16, read-only.

    Blending is then ``out = (frame * inv + premul) / 255`` with no overflow in uint16
    (``frame * inv + colour * alpha <= 255 * 255``).
    """
    cov = _text_mask(text, px).astype(np.float32) / 255.0
    pad_x = max(3, int(round(px * 0.55)))
    pad_y = max(2, int(round(px * 0.35)))
    th, tw = cov.shape
    h, w = th + 2 * pad_y, tw + 2 * pad_x

    # Rounded box, drawn large and area-downscaled for smooth corners.
    s = _SUPERSAMPLE
    big = np.zeros((h * s, w * s), np.uint8)
    r = max(1, int(round(min(h, w) * 0.3 * s)))
    cv2.rectangle(big, (r, 0), (w * s - 1 - r, h * s - 1), 255, -1)
    cv2.rectangle(big, (0, r), (w * s - 1, h * s - 1 - r), 255, -1)
    for cx, cy in ((r, r), (w * s - 1 - r, r), (r, h * s - 1 - r), (w * s - 1 - r, h * s - 1 - r)):
        cv2.circle(big, (cx, cy), r, 255, -1, cv2.LINE_AA)
    box = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0

    text_a = np.zeros((h, w), np.float32)
    text_a[pad_y : pad_y + th, pad_x : pad_x + tw] = cov * _TEXT_ALPHA
    bg_a = box * _BG_ALPHA
    # "over" compositing of white text on a dark box: alpha and premultiplied colour.
    alpha = text_a + bg_a * (1.0 - text_a)
    white_premul = text_a * 255.0  # the box is black: it adds no colour, only coverage
    a8 = np.clip(np.round(alpha * 255.0), 0, 255).astype(np.uint16)
    premul = np.clip(np.round(white_premul * 255.0), 0, 255 * 255).astype(np.uint16)
    premul = np.minimum(premul, a8 * 255)  # colour never exceeds its alpha
    premul3 = np.repeat(premul[:, :, None], 3, axis=2)
    inv = (255 - a8)[:, :, None]
    premul3.setflags(write=False)
    inv.setflags(write=False)
    return premul3, inv


def badge_box(frame_hw: tuple[int, int], config: BadgeConfig) -> Box:
    """Where :func:`burn_badge` draws on a frame of ``(height, width)``: ``(x0, y0, x1, y1)``,
    ``x1``/``y1`` exclusive, clipped to the frame."""
    fh, fw = frame_hw
    premul, _ = _badge_patch(config.text, badge_text_px(fh))
    ph, pw = premul.shape[:2]
    margin = max(2, int(round(fh * _MARGIN)))
    if config.corner not in CORNERS:  # BadgeConfig validates; this guards hand-built objects
        raise ConfigError(f"badge.corner must be one of {', '.join(CORNERS)}; got {config.corner!r}")
    x0 = margin if config.corner.endswith("left") else fw - margin - pw
    y0 = margin if config.corner.startswith("top") else fh - margin - ph
    x0, y0 = max(0, x0), max(0, y0)
    return x0, y0, min(fw, x0 + pw), min(fh, y0 + ph)


def burn_badge(frame: ImageBGR, config: BadgeConfig | None = None) -> Box | None:
    """Burn the disclosure badge into ``frame`` in place.

    The badge is white text on a semi-transparent dark rounded box whose size follows the
    frame height, placed ``config.corner`` with a small margin. Frames smaller than the
    badge get a cropped badge rather than an error.

    Args:
        frame: ``(H, W, 3)`` uint8 BGR, modified in place.
        config: text and corner; ``config.enabled`` is not consulted (the caller decides).

    Returns:
        The changed region ``(x0, y0, x1, y1)`` (exclusive ends), or None when the text is
        empty.

    Raises:
        FrameFormatError: ``frame`` is not an (H, W, 3) uint8 array.
    """
    config = config or BadgeConfig(enabled=True)
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise FrameFormatError(
            f"burn_badge needs an (H, W, 3) uint8 frame, got {getattr(frame, 'shape', None)} "
            f"{getattr(frame, 'dtype', type(frame).__name__)}"
        )
    if not config.text.strip():
        return None
    fh = frame.shape[0]
    premul, inv = _badge_patch(config.text, badge_text_px(fh))
    x0, y0, x1, y1 = badge_box(frame.shape[:2], config)
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        return None
    # When the frame is smaller than the badge, keep the part of the patch nearest the corner.
    px0 = 0 if config.corner.endswith("left") else premul.shape[1] - w
    py0 = 0 if config.corner.startswith("top") else premul.shape[0] - h
    pm = premul[py0 : py0 + h, px0 : px0 + w]
    iv = inv[py0 : py0 + h, px0 : px0 + w]
    roi = frame[y0:y1, x0:x1]
    blended = roi.astype(np.uint16) * iv + pm
    # (v + 128 + ((v + 128) >> 8)) >> 8 is an exact round(v / 255) for v <= 255 * 255.
    blended += 128
    blended += blended >> 8
    roi[...] = (blended >> 8).astype(np.uint8)
    return x0, y0, x1, y1
