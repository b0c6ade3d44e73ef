"""Which of the tracked faces get swapped: the largest, all, the n-th from the left, or the
one most similar to a reference photo of the person.

Identity matching costs an embedding per face (~9 ms on a 2-core CPU), so
:class:`ReferenceMatcher` remembers each track's similarity and embeds a track again only
every ``reembed_interval`` frames: a track keeps its id while it is followed, so its identity
does not change in between.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from obs_faceswap.config import SelectionConfig
from obs_faceswap.errors import ConfigError, InputError, NoFaceError
from obs_faceswap.frame import LazyFrame, read_image
from obs_faceswap.nets.detector import Detector, check_image
from obs_faceswap.types import Face, FloatArray, ImageBGR

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """What the matcher needs (:class:`~obs_faceswap.nets.recognition.FaceEmbedder`)."""

    def embed(self, image: ImageBGR | LazyFrame, keypoints: npt.ArrayLike) -> FloatArray: ...


@dataclass
class _Cached:
    similarity: float
    frame: int


class ReferenceMatcher:
    """Scores tracked faces by identity similarity to the face in a reference photo.

    Args:
        embedder: identity network (``FaceEmbedder.from_store(store, "faceres")``).
        reference_image: BGR uint8 photo, or a path to one. Its largest face is the reference.
        detector: finds the face in the reference photo. ``None`` builds a YuNet from the
            default model store (``$OBS_FACESWAP_MODELS`` or the user cache).
        reembed_interval: embed a track again after this many frames (1 = every frame).
        min_similarity: a face needs at least this cosine similarity to be selected;
            ``None`` selects the most similar face whatever its score.

    Raises:
        InputError: the photo cannot be read or is not an image.
        NoFaceError: the detector finds no face in the photo.
    """

    def __init__(
        self,
        embedder: Embedder,
        reference_image: ImageBGR | str | Path,
        detector: Detector | None = None,
        *,
        reembed_interval: int = 30,
        min_similarity: float | None = None,
    ) -> None:
        if reembed_interval < 1:
            raise ConfigError(f"reembed_interval must be >= 1, got {reembed_interval}")
        self.embedder = embedder
        self.reembed_interval = int(reembed_interval)
        self.min_similarity = min_similarity
        image, name = _load(reference_image)
        if detector is None:
            detector = _default_detector()
        dets = detector.detect(image)
        if len(dets) == 0:
            raise NoFaceError(
                f"no face found in the reference photo {name}: use a photo where "
                f"the face is clearly visible, frontal and at least ~80 px wide"
            )
        best = int(np.argmax(dets.areas))
        if len(dets) > 1:
            log.info("reference photo %s has %d faces; using the largest", name, len(dets))
        self.reference: FloatArray = embedder.embed(image, dets.keypoints[best])
        self._cache: dict[int, _Cached] = {}
        self._frame = 0
        #: The highest similarity among the faces of the last frame (None: no face), so a
        #: caller can tell "the person is not in the picture" from "no face at all".
        self.last_best: float | None = None

    def reset(self) -> None:
        """Forget the per-track similarities (e.g. after the tracker was reset)."""
        self._cache.clear()

    def similarities(self, faces: list[Face], frame: ImageBGR | LazyFrame) -> list[float]:
        """Cosine similarity of each face to the reference, in the order of ``faces``.

        Counts one frame per call: a track's similarity is reused for ``reembed_interval``
        calls, then computed again. Tracks no longer present are forgotten.
        """
        self._frame += 1
        out = []
        for face in faces:
            c = self._cache.get(face.track_id)
            if c is None or self._frame - c.frame >= self.reembed_interval:
                emb = self.embedder.embed(frame, face.keypoints)
                c = _Cached(float(np.dot(emb, self.reference)), self._frame)
                self._cache[face.track_id] = c
            out.append(c.similarity)
        live = {f.track_id for f in faces}
        for tid in [t for t in self._cache if t not in live]:
            del self._cache[tid]
        self.last_best = max(out) if out else None
        return out

    def best(self, faces: list[Face], frame: ImageBGR | LazyFrame) -> Face | None:
        """The face most similar to the reference (None if none, or none similar enough)."""
        if not faces:
            self.similarities(faces, frame)
            return None
        sims = self.similarities(faces, frame)
        i = int(np.argmax(sims))
        if self.min_similarity is not None and sims[i] < self.min_similarity:
            return None
        return faces[i]


def _load(reference: ImageBGR | str | Path) -> tuple[ImageBGR, str]:
    if isinstance(reference, (str, Path)):
        try:
            return read_image(reference), str(reference)
        except InputError as e:
            raise InputError(f"reference photo: {e}") from e
    try:
        check_image(reference)
    except InputError as e:
        raise InputError(f"reference photo: {e}") from e
    return np.asarray(reference, np.uint8), "(image)"


def _default_detector() -> Detector:
    from obs_faceswap.config import DetectorConfig
    from obs_faceswap.models import ModelStore
    from obs_faceswap.nets.detector import create_detector

    # Reference photos are stills, often large: a bigger input finds smaller faces.
    return create_detector(DetectorConfig(input_size=640), ModelStore(progress=False))


def _centre_x(face: Face) -> float:
    box = face.xyxy
    return float(box[0] + box[2]) / 2


def select_faces(
    faces: list[Face], config: SelectionConfig, frame: ImageBGR | LazyFrame, matcher: ReferenceMatcher | None = None
) -> list[Face]:
    """The faces to swap in this frame.

    Args:
        faces: the tracked faces.
        config: ``largest`` (by mesh box area), ``all`` (in the given order), ``index``
            (``config.index``-th face from the left, 0 = leftmost) or ``reference`` (the face
            most similar to the matcher's photo).
        frame: the frame the faces are in (needed for ``reference``).
        matcher: required for ``reference`` mode.

    Returns:
        The selected faces; empty when none qualifies (never an error for "no face").

    Raises:
        ConfigError: ``reference`` mode without a matcher.
    """
    if not faces:
        if config.mode == "reference" and matcher is not None:
            matcher.similarities([], frame)
        return []
    if config.mode == "all":
        return list(faces)
    if config.mode == "largest":
        return [max(faces, key=lambda f: f.area)]
    if config.mode == "index":
        ordered = sorted(faces, key=_centre_x)
        return [ordered[config.index]] if config.index < len(ordered) else []
    if config.mode == "reference":
        if matcher is None:
            raise ConfigError("selection.mode 'reference' needs a ReferenceMatcher built from the reference photo")
        best = matcher.best(faces, frame)
        return [best] if best is not None else []
    raise ConfigError(f"selection.mode {config.mode!r} has no implementation")  # pragma: no cover
