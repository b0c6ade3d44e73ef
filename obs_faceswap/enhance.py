"""Optional face enhancer (GFPGAN / GPEN-BFR format) run on the output frame after the swap.

Both formats take one ``(1, 3, S, S)`` RGB face in ``-1..1`` (``(x / 255 - 0.5) / 0.5``) and
return the restored face in the same range; GFPGAN 1.4 works on 512-px ``ffhq_512`` crops,
GPEN-BFR-256 on 256-px ``arcface_128`` crops. They are too slow for every live frame on most
GPUs (docs/model-formats.md), so :class:`Enhancer` can run every n-th frame: in between, the
last restoration's detail (its difference to the crop it saw) is added to the current crop,
which keeps the sharpness steady instead of flickering on and off.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap import align
from obs_faceswap.config import RuntimeConfig
from obs_faceswap.errors import ConfigError, ModelLoadError
from obs_faceswap.masks import box_mask
from obs_faceswap.runtime import create_session
from obs_faceswap.types import Face, ImageBGR, SwapResult

#: Crop template per input size (the two public formats).
TEMPLATES = {512: "ffhq_512", 256: "arcface_128"}


class Enhancer:
    """A GFPGAN/GPEN-format face restorer.

    Args:
        path: the ``.onnx`` file.
        runtime: providers and threads.
        every: run the network every this many calls per face (1 = every frame).
        blend: how much of the restored face is used, 0..1.

    Raises:
        ModelLoadError: the file is not ``(1, 3, S, S)`` → ``(1, 3, S, S)`` with S 256 or 512.
        ConfigError: ``every`` < 1 or ``blend`` outside 0..1.
    """

    def __init__(
        self, path: str | Path, runtime: RuntimeConfig | None = None, *, every: int = 1, blend: float = 1.0
    ) -> None:
        if every < 1:
            raise ConfigError(f"--enhance-every must be at least 1; got {every}")
        if not 0.0 <= blend <= 1.0:
            raise ConfigError(f"enhancer blend must be in [0, 1]; got {blend}")
        self.path = Path(path)
        self.session = create_session(self.path, runtime)
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        shape = tuple(ins[0].shape) if len(ins) == 1 else ()
        size = shape[2] if len(shape) == 4 else None
        if len(shape) != 4 or shape[1] != 3 or shape[2] != shape[3] or size not in TEMPLATES or not outs:
            raise ModelLoadError(
                f"{self.path.name} is not a GFPGAN/GPEN face enhancer: it needs one input "
                f"[1, 3, 512, 512] or [1, 3, 256, 256] (RGB, -1..1), found "
                f"{', '.join(f'{i.name} {list(i.shape)}' for i in ins)}"
            )
        assert isinstance(size, int)
        self.size = size
        self.template = TEMPLATES[size]
        self.input_name = ins[0].name
        self.every = every
        self.blend = blend
        self._count: dict[int, int] = {}
        self._detail: dict[int, npt.NDArray[np.int16]] = {}

    def restore(self, crop: ImageBGR) -> ImageBGR:
        """Run the network on an aligned BGR crop of :attr:`size`."""
        x = (crop[..., ::-1].astype(np.float32) / 255.0 - 0.5) / 0.5
        y = np.asarray(self.session.run(None, {self.input_name: np.ascontiguousarray(x.transpose(2, 0, 1)[None])})[0])
        y = (np.clip(y.reshape(3, self.size, self.size).transpose(1, 2, 0), -1.0, 1.0) + 1.0) / 2.0
        return np.asarray(np.rint(y[..., ::-1] * 255.0), np.uint8)

    def reads(self, face: Face, frame_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
        """The frame region :meth:`enhance` reads for ``face`` (clipped)."""
        return align.crop_reads(align.estimate(face.keypoints, self.template, self.size), self.size, frame_hw)

    def enhance(self, frame: ImageBGR, face: Face) -> SwapResult:
        """The enhanced face of ``frame`` (usually the swapped output) as a result to paste back."""
        crop, m = align.warp_face(frame, face.keypoints, self.template, self.size)
        n = self._count.get(face.track_id, 0)
        self._count[face.track_id] = n + 1
        if n % self.every == 0 or face.track_id not in self._detail:
            out = self.restore(crop)
            self._detail[face.track_id] = out.astype(np.int16) - crop.astype(np.int16)
        else:
            out = np.asarray(np.clip(crop.astype(np.int16) + self._detail[face.track_id], 0, 255), np.uint8)
        if self.blend < 1.0:
            out = np.asarray(cv2.addWeighted(out, self.blend, crop, 1.0 - self.blend, 0.0), np.uint8)
        return SwapResult(out, box_mask(self.size), align.invert(m), face.track_id)

    def reset(self, track_id: int | None = None) -> None:
        if track_id is None:
            self._count.clear()
            self._detail.clear()
        else:
            self._count.pop(track_id, None)
            self._detail.pop(track_id, None)
