"""Masks for neural swappers, in the aligned crop's pixels, combined by minimum.

A neural swapper returns its crop with a feathered box mask (:func:`box_mask`) and the live
crop; the merge stage narrows that mask with what the user chose:

* :class:`OcclusionModel` — XSeg format (DeepFaceLab/DeepFaceLive): NHWC BGR 0..1 at 256, one
  channel out; smoothed by a blur then ``(clip(x, 0.5, 1) - 0.5) * 2`` so hands and glasses in
  front of the face stay real;
* :class:`FaceParser` — BiSeNet format: 512×512 RGB with ImageNet mean/std, 19 classes; the
  chosen regions (skin, brows, eyes, nose, mouth, lips) are swapped, the rest stays real;
* :func:`mouth_mask` — the live mouth interior from the landmarks stays real (size adjustable);

:func:`combine` takes the minimum. Everything but the two model classes is a pure function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap.config import RuntimeConfig
from obs_faceswap.errors import ConfigError, ModelLoadError
from obs_faceswap.landmark_indices import LIPS_INNER
from obs_faceswap.runtime import create_session
from obs_faceswap.types import ImageBGR, Mask

#: BiSeNet (CelebAMask-HQ) classes: 0 background, 1 skin, 2/3 brows, 4/5 eyes, 6 glasses,
#: 7/8 ears, 9 earring, 10 nose, 11 mouth, 12/13 lips, 14 neck, 15 necklace, 16 cloth, 17 hair, 18 hat.
PARSING_REGIONS: dict[str, tuple[int, ...]] = {
    "skin": (1,),
    "brows": (2, 3),
    "eyes": (4, 5),
    "glasses": (6,),
    "nose": (10,),
    "mouth": (11,),
    "lips": (12, 13),
}
DEFAULT_REGIONS = ("skin", "brows", "eyes", "nose", "mouth", "lips")
MASK_KINDS = ("box", "occlusion", "parsing", "mouth")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def box_mask(size: int, *, erode: int | None = None, blur: int | None = None) -> Mask:
    """The feathered square every crop-based swap starts from (inswapper's paste-back mask).

    The same few masks are asked for every frame: they are built once and shared, read-only.

    Args:
        size: crop side in pixels.
        erode: pixels cut from each edge (default ``max(size // 10, 10)``).
        blur: Gaussian kernel (default ``2 * max(size // 20, 5) + 1``).
    """
    return _box_mask(size, erode, blur)


@lru_cache(maxsize=16)
def _box_mask(size: int, erode: int | None, blur: int | None) -> Mask:
    e = max(size // 10, 10) if erode is None else erode
    k = 2 * max(size // 20, 5) + 1 if blur is None else blur
    m = np.zeros((size, size), np.uint8)
    if size - 2 * e > 0:
        m[e : size - e, e : size - e] = 255
    if k > 1:
        m = np.asarray(cv2.GaussianBlur(m, (k | 1, k | 1), 0), np.uint8)
    m.flags.writeable = False
    return m


def erode_blur(mask: Mask, erode: int, blur: float) -> Mask:
    """Shrink a mask by ``erode`` pixels (elliptic) and soften it with a Gaussian of sigma ``blur``."""
    m = mask
    if erode > 0:
        m = np.asarray(
            cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1, 2 * erode + 1))), np.uint8
        )
    if blur > 0:
        m = np.asarray(cv2.GaussianBlur(m, (0, 0), blur), np.uint8)
    return np.asarray(m, np.uint8)


def to_u8(x: npt.ArrayLike) -> Mask:
    """A float mask in 0..1 as uint8 0..255."""
    return np.asarray(np.rint(np.clip(np.asarray(x, np.float32), 0.0, 1.0) * 255.0), np.uint8)


def combine(masks: Sequence[Mask]) -> Mask:
    """The pixel-wise minimum of same-shaped uint8 masks."""
    if not masks:
        raise ValueError("combine needs at least one mask")
    out = masks[0]
    for m in masks[1:]:
        if m.shape != out.shape:
            raise ValueError(f"masks must have the same shape, got {out.shape} and {m.shape}")
        out = np.minimum(out, m)
    return np.asarray(out, np.uint8)


def mouth_mask(landmarks_crop: npt.ArrayLike, size: int, *, grow: float = 0.1, soft: float = 0.02) -> Mask:
    """255 everywhere except the live mouth opening (0), so the real teeth and tongue show.

    Args:
        landmarks_crop: ``(468|478, 2|3)`` mesh points already mapped into crop pixels.
        size: crop side.
        grow: widen the mouth polygon by this fraction of the crop size (the "mouth size" setting;
            0 = exactly the inner lip line).
        soft: edge softness as a fraction of the crop size.
    """
    pts = np.asarray(landmarks_crop, np.float32)[list(LIPS_INNER), :2]
    m = np.full((size, size), 255, np.uint8)
    poly = np.zeros((size, size), np.uint8)
    cv2.fillPoly(poly, [np.rint(pts).astype(np.int32)], 255, lineType=cv2.LINE_AA)
    g = int(round(grow * size))
    if g > 0:
        poly = np.asarray(
            cv2.dilate(poly, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1, 2 * g + 1))), np.uint8
        )
    s = soft * size
    if s > 0:
        poly = np.asarray(cv2.GaussianBlur(poly, (0, 0), s), np.uint8)
    return np.asarray(np.minimum(m, 255 - poly), np.uint8)


def landmarks_to_crop(landmarks: npt.ArrayLike, frame_to_crop: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Map ``(N, 2|3)`` frame points into crop pixels with a ``(2, 3)`` frame → crop matrix."""
    pts = np.asarray(landmarks, np.float32)[:, :2]
    m = np.asarray(frame_to_crop, np.float32)
    return np.asarray(pts @ m[:, :2].T + m[:, 2], np.float32)


class OcclusionModel:
    """XSeg-format occlusion model: what is face (1) and what covers it (0).

    Input ``(1, 256, 256, 3)`` float32 NHWC BGR 0..1; output ``(1, 256, 256, 1)`` in 0..1.

    Raises:
        ModelLoadError: the file is not of that shape.
    """

    size = 256

    def __init__(self, path: str | Path, runtime: RuntimeConfig | None = None) -> None:
        self.path = Path(path)
        self.session = create_session(self.path, runtime)
        ins = self.session.get_inputs()
        if len(ins) != 1 or tuple(ins[0].shape[1:]) != (self.size, self.size, 3):
            raise ModelLoadError(
                f"{self.path.name} is not an XSeg occlusion model: it needs one input "
                f"[1, 256, 256, 3] (NHWC BGR 0..1), found "
                f"{', '.join(f'{i.name} {list(i.shape)}' for i in ins)}"
            )
        self.input_name = ins[0].name

    def __call__(self, crop: ImageBGR) -> Mask:
        """The face-visible mask of an aligned BGR crop, at the crop's size."""
        h, w = crop.shape[:2]
        x = cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        y = np.asarray(self.session.run(None, {self.input_name: x[None]})[0], np.float32).reshape(self.size, self.size)
        y = np.asarray(cv2.GaussianBlur(np.clip(y, 0.0, 1.0), (0, 0), 5), np.float32)
        y = (np.clip(y, 0.5, 1.0) - 0.5) * 2.0
        return to_u8(cv2.resize(y, (w, h), interpolation=cv2.INTER_LINEAR))


class FaceParser:
    """BiSeNet-format face parsing: 512×512 RGB ImageNet-normalised in, 19 class scores out.

    Args:
        path: the ``.onnx`` file (``bisenet_resnet_34.onnx`` / ``_18``).
        regions: names from :data:`PARSING_REGIONS` to swap (everything else stays real).

    Raises:
        ModelLoadError: the file is not ``(1, 3, 512, 512)`` → ``(1, 19, 512, 512)``.
        ConfigError: an unknown region name.
    """

    size = 512

    def __init__(
        self, path: str | Path, runtime: RuntimeConfig | None = None, regions: Sequence[str] = DEFAULT_REGIONS
    ) -> None:
        bad = [r for r in regions if r not in PARSING_REGIONS]
        if bad:
            raise ConfigError(
                f"unknown face-parsing region(s) {', '.join(bad)}; choose from {', '.join(PARSING_REGIONS)}"
            )
        self.path = Path(path)
        self.session = create_session(self.path, runtime)
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        if len(ins) != 1 or tuple(ins[0].shape[1:]) != (3, self.size, self.size) or outs[0].shape[1] != 19:
            raise ModelLoadError(
                f"{self.path.name} is not a BiSeNet face-parsing model: it needs [1, 3, 512, 512] in "
                f"and [1, 19, 512, 512] out, found {list(ins[0].shape)} -> {list(outs[0].shape)}"
            )
        self.input_name = ins[0].name
        self.classes = np.array(sorted({c for r in regions for c in PARSING_REGIONS[r]}), np.int64)

    def __call__(self, crop: ImageBGR) -> Mask:
        h, w = crop.shape[:2]
        x = cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_LINEAR)[..., ::-1].astype(np.float32)
        x = (x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        y = np.asarray(self.session.run(None, {self.input_name: np.ascontiguousarray(x.transpose(2, 0, 1)[None])})[0])
        labels = y.reshape(19, self.size, self.size).argmax(axis=0)
        m = np.isin(labels, self.classes).astype(np.uint8) * 255
        m = np.asarray(cv2.GaussianBlur(m, (0, 0), 2), np.uint8)
        return np.asarray(cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)


@dataclass(frozen=True)
class MaskSettings:
    """Which masks the merge stage applies to neural swaps.

    Attributes:
        kinds: any of :data:`MASK_KINDS` (``box`` is always on).
        mouth_grow: the mouth mask's size (fraction of the crop).
        occlusion_model, parser_model: the model files for ``occlusion`` / ``parsing``.
        regions: face-parsing regions that are swapped.
    """

    kinds: tuple[str, ...] = ("box",)
    mouth_grow: float = 0.1
    occlusion_model: str | None = None
    parser_model: str | None = None
    regions: tuple[str, ...] = DEFAULT_REGIONS

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in MASK_KINDS]
        if bad:
            raise ConfigError(f"--mask: unknown mask {', '.join(bad)}; choose from {', '.join(MASK_KINDS)}")
        if "occlusion" in self.kinds and not self.occlusion_model:
            raise ConfigError("--mask occlusion needs an XSeg model file: --occlusion-model FILE")
        if "parsing" in self.kinds and not self.parser_model:
            raise ConfigError("--mask parsing needs a BiSeNet model file: --parser-model FILE")
        if not 0.0 <= self.mouth_grow <= 0.5:
            raise ConfigError(f"mouth mask size must be in [0, 0.5]; got {self.mouth_grow}")


class MaskStage:
    """Builds the masks chosen in :class:`MaskSettings` for one neural swap result."""

    def __init__(self, settings: MaskSettings, runtime: RuntimeConfig | None = None) -> None:
        self.settings = settings
        self.occlusion = (
            OcclusionModel(settings.occlusion_model, runtime)
            if "occlusion" in settings.kinds and settings.occlusion_model
            else None
        )
        self.parser = (
            FaceParser(settings.parser_model, runtime, settings.regions)
            if "parsing" in settings.kinds and settings.parser_model
            else None
        )

    def __call__(self, base: Mask, live: ImageBGR, landmarks_crop: npt.ArrayLike | None) -> Mask:
        """``base`` narrowed by every chosen mask (all computed on the live crop)."""
        parts = [base]
        if self.occlusion is not None:
            parts.append(self.occlusion(live))
        if self.parser is not None:
            parts.append(self.parser(live))
        if "mouth" in self.settings.kinds and landmarks_crop is not None:
            parts.append(mouth_mask(landmarks_crop, live.shape[0], grow=self.settings.mouth_grow))
        return combine(parts)
