"""Building neural swappers from a model file, and the merge-stage work their results need.

:func:`create_model_swapper` picks the swapper from the file itself: a ``.dfm`` file, or any
file whose inputs are DeepFaceLive's, is a :class:`~obs_faceswap.swap.dfm.DFMSwapper`;
anything else must be a one-photo model of the spec table
(:class:`~obs_faceswap.swap.oneshot.OneShotSwapper`), recognised from its signature.
A file the user names directly is not hash-checked, but its signature is validated; a
restrictive licence is shown once.

:class:`NeuralMerge` is what the pipeline applies to results that carry a live crop:
masks (occlusion, parsing, mouth; combined by minimum) and colour transfer, then, after the
paste-back, the optional enhancer.
"""

from __future__ import annotations

import logging
from pathlib import Path

from obs_faceswap import merge
from obs_faceswap.config import NeuralSwapperConfig, RuntimeConfig
from obs_faceswap.enhance import Enhancer
from obs_faceswap.errors import ModelError, ModelLoadError, ModelNotFoundError
from obs_faceswap.licences import show_once
from obs_faceswap.masks import MaskSettings, MaskStage, landmarks_to_crop
from obs_faceswap.models import ModelStore
from obs_faceswap.swap.protocol import Swapper
from obs_faceswap.types import Face, ImageBGR, SwapResult

log = logging.getLogger(__name__)

#: Manifest name of the default ArcFace recognizer.
RECOGNIZER = "w600k_r50"


def _named_file(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelNotFoundError(
            f"{what} not found: {p}. Check the path (--model / the filter's 'Face-swap model' setting)"
        )
    return p


def _from_store(store: ModelStore, name: str, flag: str) -> Path:
    try:
        return store.path(name)
    except ModelError as e:
        raise ModelNotFoundError(f"{e} — or pass your own file with {flag}") from e


def is_dfm(path: Path) -> bool:
    """A ``.dfm`` file name, or a model whose inputs include DeepFaceLive's ``in_face:0``."""
    from obs_faceswap.swap.oneshot import read_model

    return path.suffix.lower() == ".dfm" or read_model(path)[0].input("in_face:0") is not None


def create_model_swapper(
    path: str | Path,
    config: NeuralSwapperConfig | None = None,
    runtime: RuntimeConfig | None = None,
    store: ModelStore | None = None,
) -> Swapper:
    """The swapper for the model file at ``path`` (or a swapper's manifest name, e.g. ``inswapper_128``:
    then the sha256-verified file from the store).

    Raises:
        ModelNotFoundError: the file (or the recognizer/converter it needs) does not exist.
        ModelLoadError: the file is damaged or matches no known format (the message says what
            did not match).
    """
    from obs_faceswap.swap.dfm import DFMSwapper
    from obs_faceswap.swap.oneshot import ArcFace, OneShotSwapper, read_model
    from obs_faceswap.swap.specs import recognise

    config = config or NeuralSwapperConfig()
    store = store or ModelStore()
    entry = store.entries.get(str(path))
    if entry is not None and entry.role == "swapper" and not Path(path).is_file():
        # a manifest name (``--model inswapper_128``): the verified file, fetched if allowed
        p = store.path(str(path))
        show_once(entry.name, entry.license)
    else:
        p = _named_file(path, "face-swap model")
    if is_dfm(p):
        sw: Swapper = DFMSwapper(p, runtime, morph=config.morph)
        return sw
    # Recognise the family before loading the recognizer: a wrong file fails fast and clearly.
    spec = recognise(read_model(p)[0], p, config.family or (entry.get("family") if entry is not None else None))
    show_once(spec.name, spec.license)
    recognizer = None
    if spec.source != "image":
        rec_path = (
            _named_file(config.recognizer, "recognizer (--recognizer)")
            if config.recognizer
            else _from_store(store, RECOGNIZER, "--recognizer FILE")
        )
        if not config.recognizer:
            show_once(RECOGNIZER, store.entry(RECOGNIZER).license)
        recognizer = ArcFace(rec_path, runtime)
    converter = None
    if spec.source == "converter":
        assert spec.converter is not None
        converter = (
            _named_file(config.converter, "embedding converter")
            if config.converter
            else _from_store(store, spec.converter, "the converter file")
        )
    swapper = OneShotSwapper(p, recognizer=recognizer, runtime=runtime, family=spec.name, converter=converter)
    swapper.key = ("model", str(path), config.family, config.recognizer, config.converter)
    return swapper


class NeuralMerge:
    """Masks, colour transfer and enhancement for results that carry a live crop.

    Args:
        config: the neural settings (masks, colour, enhancer).
        runtime: providers for the mask and enhancer models.

    Raises:
        ModelLoadError: a mask or enhancer file has the wrong signature.
    """

    def __init__(self, config: NeuralSwapperConfig, runtime: RuntimeConfig | None = None) -> None:
        self.config = config
        merge.warm_up()  # the paste-back kernels: compiled (or loaded) now, not on the first face
        settings = MaskSettings(
            kinds=config.masks,
            mouth_grow=config.mouth_size,
            occlusion_model=config.occlusion_model,
            parser_model=config.parser_model,
        )
        self.masks = MaskStage(settings, runtime) if set(config.masks) - {"box"} else None
        self.enhancer = (
            Enhancer(_named_file(config.enhancer, "enhancer (--enhancer)"), runtime, every=config.enhance_every)
            if config.enhancer
            else None
        )

    def finish(self, result: SwapResult, face: Face) -> SwapResult:
        """``result`` with its mask narrowed and its colours matched to the live face."""
        if result.live is None:
            return result
        if self.masks is not None:
            to_crop = merge.invert_transform(result.transform)
            mask = self.masks(result.mask, result.live, landmarks_to_crop(face.landmarks, to_crop))
            result = merge.with_mask(result, mask)
        return merge.match_colours(result, self.config.color, self.config.color_strength)

    def enhancer_reads(self, face: Face, frame_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
        return self.enhancer.reads(face, frame_hw) if self.enhancer is not None else None

    def enhance(self, frame: ImageBGR, face: Face) -> SwapResult | None:
        """The enhancer's result for ``face`` in the (swapped) ``frame``, or None without one."""
        return self.enhancer.enhance(frame, face) if self.enhancer is not None else None

    def reset(self, track_id: int | None = None) -> None:
        if self.enhancer is not None:
            self.enhancer.reset(track_id)


__all__ = ["ModelLoadError", "NeuralMerge", "create_model_swapper", "is_dfm"]
