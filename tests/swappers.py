"""A swapper written against :class:`obs_faceswap.swap.Swapper` alone, plugged in by setting.

``swapper.kind = "plugin"`` with ``swapper.plugin = "tests.swappers:invert"`` makes the
pipeline (in-process, in the engine process, behind the OBS filter) build :class:`InvertFace`
through :func:`obs_faceswap.swap.create_swapper`, without any of their code knowing it.
It returns each face's box with its pixels inverted, under a full mask: an output that
proves the live pixels flowed through the swapper and back into the frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from obs_faceswap.config import SwapperConfig
from obs_faceswap.frame import clip_box
from obs_faceswap.swap import SourceFace, SwapperContext
from obs_faceswap.types import Box, Face, ImageBGR, SwapResult

#: The plugin setting that selects :class:`InvertFace`.
INVERT = "tests.swappers:invert"


def face_box(face: Face, frame_hw: tuple[int, int]) -> Box | None:
    """The face's mesh box, clipped to the frame: what :class:`InvertFace` inverts."""
    h, w = frame_hw
    return clip_box(face.xyxy, w, h)


class InvertFace:
    """Each face's mesh box, inverted (255 - pixel), pasted back with a full mask."""

    needs_source = False

    def __init__(self) -> None:
        self.sources: list[SourceFace] = []
        self.swapped = 0
        self.closed = False

    def set_source(self, faces: Sequence[SourceFace]) -> None:
        self.sources = list(faces)

    def reads(self, face: Face, frame_hw: tuple[int, int]) -> Box | None:
        return face_box(face, frame_hw)

    def swap(self, frame: ImageBGR, face: Face) -> SwapResult | None:
        box = face_box(face, (frame.shape[0], frame.shape[1]))
        if box is None:
            return None
        x0, y0, x1, y1 = box
        crop = np.ascontiguousarray(255 - frame[y0:y1, x0:x1])
        mask = np.full(crop.shape[:2], 255, np.uint8)
        self.swapped += 1
        return SwapResult(crop, mask, np.array([[1, 0, x0], [0, 1, y0]], np.float32), face.track_id)

    def reset(self, track_id: int | None = None) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def invert(config: SwapperConfig, ctx: SwapperContext) -> InvertFace:
    """The plugin factory (``"tests.swappers:invert"``)."""
    return InvertFace()


def not_a_swapper(config: SwapperConfig, ctx: SwapperContext) -> object:
    """A factory that builds something that is not a swapper (for the error message)."""
    return object()
