"""DeepFaceLive ``.dfm`` models: one celebrity identity per file, no source photo.

A ``.dfm`` is a plain ONNX file exported from DeepFaceLab. Its inputs are found by name:
``in_face:0`` (float32 ``[N, H, W, 3]``, NHWC, **BGR 0..1**; H = W = the model's resolution)
and, for AMP models, ``morph_value:0`` (float32 ``[1]``, DeepFaceLive's default 0.75). Its
outputs, by name: ``out_face_mask:0`` (mask of the incoming face), ``out_celeb_face:0`` (the
swapped face, BGR 0..1) and ``out_celeb_face_mask:0``.

The live face is cut with DeepFaceLab's whole-face template; the result's mask is the product
of the two mask outputs (DeepFaceLive), eroded and blurred. Colour transfer, extra masks and
opacity are the merge stage's job (the result carries the live crop).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from obs_faceswap import align
from obs_faceswap.config import RuntimeConfig, SwapperConfig
from obs_faceswap.errors import ConfigError, ModelLoadError
from obs_faceswap.masks import erode_blur, to_u8
from obs_faceswap.runtime import FixedShapeRunner, create_session
from obs_faceswap.swap.protocol import SourceFace
from obs_faceswap.types import Box, Face, ImageBGR, SwapResult

IN_FACE = "in_face:0"
MORPH = "morph_value:0"
OUT_FACE_MASK = "out_face_mask:0"
OUT_CELEB = "out_celeb_face:0"
OUT_CELEB_MASK = "out_celeb_face_mask:0"
TEMPLATE = "dfl_whole_face"
DEFAULT_MORPH = 0.75


class DFMSwapper:
    """A :class:`~obs_faceswap.swap.Swapper` for a DeepFaceLive ``.dfm`` model.

    Args:
        path: the ``.dfm`` (or ``.onnx``) file.
        runtime: providers, device and threads.
        morph: AMP models' morph value, 0..1 (how much of the celebrity; ignored by SAEHD models).
        mask_combine: ``"product"`` (DeepFaceLive) or ``"min"`` (FaceFusion) of the two masks.

    Raises:
        ModelLoadError: the file is damaged, not ONNX, or its inputs/outputs are not a DFM's
            (the message names what is missing or has the wrong shape).
        ConfigError: ``morph`` outside 0..1.
    """

    needs_source = False

    def __init__(
        self,
        path: str | Path,
        runtime: RuntimeConfig | None = None,
        *,
        morph: float = DEFAULT_MORPH,
        mask_combine: str = "product",
    ) -> None:
        if not 0.0 <= morph <= 1.0:
            raise ConfigError(f"--morph must be in [0, 1]; got {morph}")
        if mask_combine not in ("product", "min"):
            raise ConfigError(f"DFM mask combination must be product or min; got {mask_combine!r}")
        self.path = Path(path)
        self.runtime = runtime or RuntimeConfig()
        session = create_session(self.path, self.runtime, cuda_graph=self.runtime.cuda_graph)
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = [o.name for o in session.get_outputs()]
        found = (
            f"inputs {', '.join(f'{i.name} {list(i.shape)}' for i in inputs.values())}; outputs {', '.join(outputs)}"
        )
        face = inputs.get(IN_FACE)
        if face is None:
            raise ModelLoadError(
                f"{self.path.name} is not a DeepFaceLive model: no input named {IN_FACE!r} "
                f"({found}). Export DFM files with DeepFaceLab's 'export DFM'"
            )
        shape = tuple(face.shape)
        if len(shape) != 4 or shape[3] != 3 or not isinstance(shape[1], int) or shape[1] != shape[2]:
            raise ModelLoadError(
                f"{self.path.name}: input {IN_FACE} must be [N, H, W, 3] with H = W fixed "
                f"(NHWC BGR), found {list(shape)}"
            )
        missing = [n for n in (OUT_FACE_MASK, OUT_CELEB, OUT_CELEB_MASK) if n not in outputs]
        if missing:
            raise ModelLoadError(
                f"{self.path.name} is not a DeepFaceLive model: missing output(s) {', '.join(missing)} ({found})"
            )
        self.resolution = int(shape[1])
        self.has_morph = MORPH in inputs
        self.morph = float(morph)
        self.mask_combine = mask_combine
        self.session = session
        self._names = outputs
        self._runner = FixedShapeRunner(session, self.runtime, self.path, name=self.path.name)

    def reconfigure(self, config: SwapperConfig) -> bool:
        """Take a new morph value in place; ``False`` when another model file is chosen."""
        if config.kind != "model" or config.model is None or Path(config.model) != self.path:
            return False
        if not 0.0 <= config.neural.morph <= 1.0:
            raise ConfigError(f"--morph must be in [0, 1]; got {config.neural.morph}")
        self.morph = float(config.neural.morph)
        return True

    def set_source(self, faces: Sequence[SourceFace]) -> None:
        """A DFM model carries its identity: source photos are ignored."""

    def reads(self, face: Face, frame_hw: tuple[int, int]) -> Box | None:
        m = align.estimate(face.keypoints, TEMPLATE, self.resolution)
        return align.crop_reads(m, self.resolution, frame_hw)

    def infer(self, crop: ImageBGR) -> tuple[ImageBGR, npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Run the model on an aligned BGR crop: (celebrity face, face mask, celebrity mask)."""
        feed: dict[str, npt.NDArray[np.float32]] = {IN_FACE: (crop.astype(np.float32) / 255.0)[None]}
        if self.has_morph:
            feed[MORPH] = np.array([self.morph], np.float32)
        outs = dict(zip(self._names, self._runner.run(feed, check=self._names.index(OUT_CELEB)), strict=True))
        face_mask, celeb, celeb_mask = outs[OUT_FACE_MASK], outs[OUT_CELEB], outs[OUT_CELEB_MASK]
        r = self.resolution
        img = np.asarray(np.rint(np.clip(np.asarray(celeb, np.float32).reshape(r, r, 3), 0, 1) * 255), np.uint8)
        return (img, np.asarray(face_mask, np.float32).reshape(r, r), np.asarray(celeb_mask, np.float32).reshape(r, r))

    def swap(self, frame: ImageBGR, face: Face) -> SwapResult | None:
        r = self.resolution
        live, m = align.warp_face(frame, face.keypoints, TEMPLATE, r)
        celeb, face_mask, celeb_mask = self.infer(live)
        if not (np.isfinite(face_mask).all() and np.isfinite(celeb_mask).all()):
            return None
        both = face_mask * celeb_mask if self.mask_combine == "product" else np.minimum(face_mask, celeb_mask)
        mask = erode_blur(to_u8(both), max(1, r // 64), r / 40.0)
        return SwapResult(celeb, mask, align.invert(m), face.track_id, live=live)

    def reset(self, track_id: int | None = None) -> None:
        """No per-track state."""

    def close(self) -> None:
        self._runner.close()
