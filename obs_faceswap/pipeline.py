"""The synchronous, single-threaded frame pipeline: ``process(frame) -> (frame, report)``.

Data flows one way::

    frame → track (detect every k frames, landmarks, smoothing) → select faces
          → per face: swapper → SwapResult → merge (paste back) → badge → frame

Concurrency lives elsewhere (the engine process, the OBS adapter); this module never
imports ``obs/``, ``engine/``, ``io`` or ``cli``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from obs_faceswap import merge
from obs_faceswap.config import PipelineConfig
from obs_faceswap.disclosure import badge_box, burn_badge
from obs_faceswap.frame import LazyFrame, read_image
from obs_faceswap.geometry import CanonicalFace, load_canonical_face
from obs_faceswap.models import ModelStore
from obs_faceswap.nets.detector import Detector, check_image, create_detector
from obs_faceswap.nets.landmarks import FaceMesh, create_landmarker
from obs_faceswap.preview import PhotoRating, rate_photo
from obs_faceswap.runtime import inference_clock
from obs_faceswap.select import ReferenceMatcher, select_faces
from obs_faceswap.sources import Photo, analyse_sources
from obs_faceswap.swap import Reconfigurable, SourceFace, Swapper, SwapperContext, create_swapper
from obs_faceswap.swap.neural import NeuralMerge
from obs_faceswap.tracking import FaceTracker
from obs_faceswap.types import Box, Face, FrameReport, ImageBGR, SwapResult

log = logging.getLogger(__name__)


def _union_all(boxes: Sequence[Box]) -> Box | None:
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


class Pipeline:
    """Face swap on BGR frames.

    Args:
        config: every setting, grouped by stage.
        store: where the models come from (defaults to ``ModelStore()``: ``$OBS_FACESWAP_MODELS``
            then the user cache).
        source: the source photo (path or BGR image), or several photos of the same person;
            without one, a swapper that needs a source tracks frames but does not swap them.

    Raises:
        ModelError: a model is missing or corrupt (the message says which and how to fix it).
        NoFaceError: the source photo has no detectable face.
        ConfigError: the swapper plugin cannot be built (the message names ``swapper.plugin``).

    Example:
        >>> pipe = Pipeline(PipelineConfig(), ModelStore("models"), source="me.png")  # doctest: +SKIP
        >>> out, report = pipe.process(frame)                                        # doctest: +SKIP
    """

    #: :meth:`process` takes :class:`~obs_faceswap.frame.LazyFrame` frames (the engine's).
    accepts_lazy_frames = True

    def __init__(
        self,
        config: PipelineConfig | None = None,
        store: ModelStore | None = None,
        source: Photo | Sequence[Photo] | None = None,
    ) -> None:
        self.config = config or PipelineConfig()
        self.store = store or ModelStore()
        self.canonical: CanonicalFace = load_canonical_face(str(self.store.path("canonical_face")))
        self.detector: Detector = create_detector(self.config.detector, self.store, self.config.runtime)
        self.mesh: FaceMesh = create_landmarker(self.config.landmarks, self.store, self.config.runtime)
        self.tracker = FaceTracker(self.detector, self.mesh, self.config.tracking)
        self.matcher: ReferenceMatcher | None = None
        self.swapper: Swapper = self._create_swapper(self.config)
        #: Masks, colour transfer and enhancer for results that carry a live crop (neural swaps).
        self.neural = NeuralMerge(self.config.swapper.neural, self.config.runtime)
        self._photos: list[Photo] = []
        self._sources: list[SourceFace] = []
        self._frame_index = 0
        self._live_ids: set[int] = set()
        self._build_matcher()
        if source is not None:
            self.set_source(source)

    # -- configuration ------------------------------------------------------------------
    @property
    def provider(self) -> str:
        """The execution provider the landmark model (the per-frame network) runs on."""
        return str(self.mesh.session.get_providers()[0])

    @property
    def has_source(self) -> bool:
        """Whether frames get swapped: a source was set, or the swapper needs none."""
        return bool(self._sources) or not self.swapper.needs_source

    @property
    def sources(self) -> list[SourceFace]:
        """The analysed source photos (empty before :meth:`set_source`)."""
        return list(self._sources)

    def source_rating(self) -> PhotoRating | None:
        """How well the first source photo suits the swapper (see
        :func:`obs_faceswap.preview.rate_photo`), None before :meth:`set_source`."""
        if not self._sources:
            return None
        face = self._sources[0]
        return rate_photo(
            face.image,
            face.landmarks,
            own_fraction=float(getattr(self.swapper, "own_fraction", 1.0)),
            occluded_fraction=float(getattr(self.swapper, "occluded_fraction", 0.0)),
        )

    def _create_swapper(self, config: PipelineConfig) -> Swapper:
        return create_swapper(config.swapper, SwapperContext(self.store, config.runtime, self.canonical))

    def set_source(self, source: Photo | Sequence[Photo]) -> None:
        """Use new source photos (a path or BGR image, or several of the same person).

        Keeps the old ones if these fail.

        Raises:
            InputError: a file cannot be read as an image.
            NoFaceError: a photo has no usable face.
        """
        photos: list[Photo] = list(source) if isinstance(source, (list, tuple)) else [source]  # type: ignore[list-item]
        faces = analyse_sources(photos, self.detector, self.mesh)
        try:
            self.swapper.set_source(faces)
        except Exception:
            if self._sources:  # the swapper may be half-changed: give it the old faces back
                self.swapper.set_source(self._sources)
            raise
        self._photos, self._sources = photos, faces

    def update(self, config: PipelineConfig) -> None:
        """Apply a new configuration, rebuilding only the parts whose settings changed.

        Raises:
            FaceSwapError: a part cannot be built (a missing model, an unusable swapper); the
                previous configuration stays in :attr:`config`, so the next update retries.
        """
        old = self.config
        try:
            self._update(old, config)
        except Exception:
            self.config = old
            raise

    def _update(self, old: PipelineConfig, config: PipelineConfig) -> None:
        self.config = config
        runtime_changed = old.runtime != config.runtime
        if runtime_changed or old.detector != config.detector:
            self.detector = create_detector(config.detector, self.store, config.runtime)
        if runtime_changed or old.landmarks != config.landmarks:
            self.mesh = create_landmarker(config.landmarks, self.store, config.runtime)
        if (
            runtime_changed
            or old.detector != config.detector
            or old.landmarks != config.landmarks
            or old.tracking != config.tracking
        ):
            self.tracker = FaceTracker(self.detector, self.mesh, config.tracking)
            self._forget_ended_tracks(set())
            if self.matcher is not None:
                self.matcher.reset()
        if runtime_changed or old.selection != config.selection:
            self._build_matcher()
        if runtime_changed or old.landmarks != config.landmarks:
            # the source's mesh points come from the landmark model: analyse the photos again
            self._rebuild_swapper(config, reanalyse=True)
        elif old.swapper != config.swapper:
            swapper = self.swapper
            if not (isinstance(swapper, Reconfigurable) and swapper.reconfigure(config.swapper)):
                self._rebuild_swapper(config, reanalyse=False)
        if runtime_changed or old.swapper.neural != config.swapper.neural:
            self.neural = NeuralMerge(config.swapper.neural, config.runtime)

    def _rebuild_swapper(self, config: PipelineConfig, *, reanalyse: bool) -> None:
        """A new swapper for ``config``, given the current sources again (the old one stays on failure)."""
        swapper = self._create_swapper(config)
        sources = (
            analyse_sources(self._photos, self.detector, self.mesh) if reanalyse and self._photos else self._sources
        )
        if sources:
            swapper.set_source(sources)
        old, self.swapper, self._sources = self.swapper, swapper, sources
        old.close()
        self._live_ids = set()

    def _build_matcher(self) -> None:
        sel = self.config.selection
        if sel.mode != "reference" or not sel.reference:
            self.matcher = None
            return
        from obs_faceswap.nets.recognition import FaceEmbedder

        embedder = FaceEmbedder.from_store(self.store, "faceres", self.config.runtime)
        self.matcher = ReferenceMatcher(
            embedder, read_image(sel.reference), self.detector, min_similarity=sel.min_similarity
        )

    def reset(self) -> None:
        """Forget tracked faces (call at a scene cut or when switching inputs)."""
        self.tracker.reset()
        self._live_ids = set()
        if self.matcher is not None:
            self.matcher.reset()  # track ids restart at 0: cached similarities are stale
        self.swapper.reset()
        self.neural.reset()

    # -- the frame loop -----------------------------------------------------------------
    def process(
        self, frame: ImageBGR | LazyFrame, timestamp: float | None = None, *, inplace: bool = False
    ) -> tuple[ImageBGR, FrameReport]:
        """Swap the selected faces of one frame.

        Args:
            frame: ``(H, W, 3)`` uint8 BGR, or a :class:`~obs_faceswap.frame.LazyFrame`
                (the engine's frames in their own pixel format: only the pixels the stages
                need are converted, and the output is written into ``frame.array``).
            timestamp: seconds (for smoothing); frames are assumed 1/30 s apart without one.
            inplace: write into ``frame`` instead of a copy (the engine does this; always
                the case for a lazy frame).

        Returns:
            ``(output, report)``. A frame with no face (or no source) is returned unchanged;
            ``report.changed_xyxy`` bounds every pixel that differs from the input. For a
            lazy frame the output is ``frame.array``, valid inside ``report.changed_boxes``.

        Raises:
            FrameFormatError: ``frame`` is not an (H, W, 3) uint8 image.
        """
        t0 = time.perf_counter()
        check_image(frame)
        inference_clock.reset()
        report = FrameReport(index=self._frame_index)
        self._frame_index += 1
        cfg = self.config
        lazy = frame if isinstance(frame, LazyFrame) else None
        pixels: ImageBGR = lazy.array if lazy is not None else frame  # type: ignore[assignment]
        inplace = inplace or lazy is not None
        if not cfg.enabled:
            report.timings_ms["total"] = (time.perf_counter() - t0) * 1000
            return pixels, report

        tracked = self.tracker.update(frame, timestamp)
        self._forget_ended_tracks({f.track_id for f in tracked.faces})
        report.timings_ms.update(tracked.timings_ms)
        report.detected = tracked.detected
        report.left_out = tracked.left_out
        t = time.perf_counter()
        faces = select_faces(tracked.faces, cfg.selection, frame, self.matcher)
        report.faces = faces
        report.timings_ms["select"] = (time.perf_counter() - t) * 1000

        out = pixels
        if self.has_source and faces:
            t = time.perf_counter()
            results: list[SwapResult] = []
            swapped_faces: list[Face] = []
            for face in faces:
                if lazy is not None:  # the swapper says which pixels it reads: exactly those are loaded
                    box = self.swapper.reads(face, (lazy.shape[0], lazy.shape[1]))
                    if box is not None:
                        lazy.load(box)
                    # the enhancer reads the swapped output around the face: load it before pasting
                    enh = self.neural.enhancer_reads(face, (lazy.shape[0], lazy.shape[1]))
                    if enh is not None:
                        lazy.load(enh)
                r = self.swapper.swap(pixels, face)
                if r is not None:
                    results.append(r)
                    swapped_faces.append(face)
            report.timings_ms["swap"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            if results:
                out = pixels if inplace else pixels.copy()
                for r, face in zip(results, swapped_faces, strict=True):
                    if lazy is not None and (placed := merge.result_box(out.shape, r)) is not None:
                        lazy.load(placed)
                    r = self.neural.finish(r, face)  # neural results: masks and colour transfer
                    box = merge.paste_back(out, r, cfg.blend)
                    if box is not None:
                        report.changed_boxes.append(box)
                report.swapped = len(results)
            report.timings_ms["merge"] = (time.perf_counter() - t) * 1000
            if results and self.neural.enhancer is not None:
                t = time.perf_counter()
                for face in swapped_faces:  # what it reads was loaded before the swap was pasted
                    er = self.neural.enhance(out, face)
                    if er is not None and (box := merge.paste_back(out, er, cfg.blend)) is not None:
                        report.changed_boxes.append(box)
                report.timings_ms["enhance"] = (time.perf_counter() - t) * 1000

        if cfg.badge.enabled:
            t = time.perf_counter()
            if out is pixels and not inplace:
                out = pixels.copy()
            if lazy is not None:
                lazy.load(badge_box(out.shape[:2], cfg.badge))
            box = burn_badge(out, cfg.badge)
            if box is not None:
                report.changed_boxes.append(box)
            report.timings_ms["badge"] = (time.perf_counter() - t) * 1000

        report.changed_xyxy = _union_all(report.changed_boxes)
        report.timings_ms["inference"] = inference_clock.ms
        report.timings_ms["total"] = (time.perf_counter() - t0) * 1000
        return out, report

    def _forget_ended_tracks(self, live: set[int]) -> None:
        """Drop per-track state (colour statistics) of faces that left."""
        for track_id in self._live_ids - live:
            self.swapper.reset(track_id)
            self.neural.reset(track_id)
        self._live_ids = live

    def close(self) -> None:
        """Release the sessions (idempotent)."""
        self.swapper.close()
        self.matcher = None

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
