"""The swapper protocol: what the pipeline needs from any face swapper, and what it is given.

Kept apart from the factory in :mod:`obs_faceswap.swap` so that implementations can import the
protocol without importing the factory that imports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from obs_faceswap.types import Box, Face, ImageBGR, SwapResult

if TYPE_CHECKING:  # pragma: no cover
    from obs_faceswap.config import SwapperConfig


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


@runtime_checkable
class Reconfigurable(Protocol):
    """A swapper that can take new settings without being rebuilt (optional, beside :class:`Swapper`)."""

    def reconfigure(self, config: SwapperConfig) -> bool:
        """Apply ``config`` in place; ``False`` when it needs a new swapper (the caller rebuilds)."""
