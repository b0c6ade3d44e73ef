"""Swappers: everything that turns one tracked face of a frame into a :class:`SwapResult`.

Every swapper — the UV photo swapper (:mod:`.meshwarp`), DFM models, the spec-driven family
of one-photo models, test doubles — implements :class:`Swapper`. The pipeline, the engine and
the OBS properties know only this protocol (and the factory that builds a swapper from its
configuration); what several swappers need (source-photo analysis, colour transfer, masks,
paste-back) lives once, beside tracking or in :mod:`obs_faceswap.merge`, never inside a swapper.

A swapper is pure apart from per-track state: it reads the frame and returns a new result;
it never writes to the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from obs_faceswap.types import Box, Face, ImageBGR, SwapResult


@dataclass(frozen=True)
class SourceFace:
    """One analysed face of a source photo (what a swapper is given as "who to become").

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR photo.
        landmarks: ``(468, 3)`` float32 mesh points of its largest face, in photo pixels.
        keypoints: ``(5, 2)`` float32 five alignment points (image-left eye first).
        name: the file it came from, for messages (``None`` for an in-memory image).
    """

    image: ImageBGR
    landmarks: npt.NDArray[np.float32]
    keypoints: npt.NDArray[np.float32]
    name: str | None = None


@runtime_checkable
class Swapper(Protocol):
    """What the pipeline needs from any face swapper.

    Attributes:
        needs_source: ``True`` when :meth:`swap` returns ``None`` until :meth:`set_source` was
            called (photo and one-photo swappers); ``False`` for self-contained models (DFM).
    """

    needs_source: bool

    def set_source(self, faces: Sequence[SourceFace]) -> None:
        """Become the person in ``faces`` (one or more photos of the same person).

        Raises:
            InputError: the photos cannot be used (the message says why and what to do).
        """

    def reads(self, face: Face, frame_hw: tuple[int, int]) -> Box | None:
        """The ``(x0, y0, x1, y1)`` region of the frame :meth:`swap` reads for ``face``
        (clipped to the frame), or ``None`` when it reads nothing. Lazily converted frames load
        exactly this region before :meth:`swap` is called."""

    def swap(self, frame: ImageBGR, face: Face) -> SwapResult | None:
        """The swapped face for one tracked face, or ``None`` (no source, face off-frame)."""

    def reset(self, track_id: int | None = None) -> None:
        """Forget per-track state: of one track that ended, or of all (scene cut)."""

    def close(self) -> None:
        """Release sessions (idempotent)."""
