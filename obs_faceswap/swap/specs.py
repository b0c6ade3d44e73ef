"""The one-photo swapper family as one declarative table (no class per model).

Every model in :data:`SPECS` takes the live face as ``target`` (float32 NCHW RGB, aligned with
a 5-point template) and the identity to put in as ``source``, and returns the swapped face as its
first output. What differs between the families is data — the template and crop size, how
``target`` is normalised, what ``source`` is, how the output is scaled back — so adding a family
is adding a row. The facts come from the public code that runs these files (InsightFace,
FaceFusion, Deep-Live-Cam); see ``docs/model-formats.md``.

A file is recognised by its *signature* (input names, shapes, the ``emap`` initializer) and,
where several families share one signature (HyperSwap, SimSwap 256 and GHOST all take a
``(1, 3, 256, 256)`` face and a 512-d latent), by the family name in its file name. A file that
matches nothing is a :class:`~obs_faceswap.errors.ModelLoadError` naming what did not match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from obs_faceswap.config import SwapperConfig
from obs_faceswap.errors import ModelLoadError

#: ``value = (pixel / 255 - mean) / std`` per RGB channel.
RGB3 = tuple[float, float, float]
ZERO: RGB3 = (0.0, 0.0, 0.0)
ONE: RGB3 = (1.0, 1.0, 1.0)
HALF: RGB3 = (0.5, 0.5, 0.5)
IMAGENET_MEAN: RGB3 = (0.485, 0.456, 0.406)
IMAGENET_STD: RGB3 = (0.229, 0.224, 0.225)

#: What the model's ``source`` input is:
#: ``emap``: ArcFace embedding, L2-normalised, times the model's ``emap`` matrix, normalised again;
#: ``embedding``: the L2-normalised ArcFace embedding;
#: ``converter``: the raw ArcFace embedding through a converter model (normalised when
#: ``normalise_latent``);
#: ``image``: an aligned source face crop (RGB 0..1 NCHW).
SourceKind = Literal["emap", "embedding", "converter", "image"]
#: How the first output becomes pixels: ``denorm`` = ``x * std + mean``; ``clip`` = clip to 0..1.
OutputKind = Literal["denorm", "clip"]

NON_COMMERCIAL = "non-commercial research only"


@dataclass(frozen=True)
class OneShotSpec:
    """One family of one-photo swappers.

    Attributes:
        name: the family's name (what users see; file names usually contain it).
        template: 5-point alignment template of the target crop.
        size: target crop side in pixels.
        mean, std: target normalisation on RGB 0..1.
        source: what ``source`` is (see :data:`SourceKind`).
        output: how the first output is scaled back (see :data:`OutputKind`).
        converter: manifest name of the embedding converter (``source == "converter"``).
        normalise_latent: L2-normalise the converter's output.
        source_template, source_size: aligned source image (``source == "image"``).
        license: the licence users must be told about on first use.
        aliases: other names this family's files go by.
    """

    name: str
    template: str
    size: int
    mean: RGB3
    std: RGB3
    source: SourceKind
    output: OutputKind
    converter: str | None = None
    normalise_latent: bool = True
    source_template: str | None = None
    source_size: int | None = None
    license: str = NON_COMMERCIAL
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def source_shape(self) -> tuple[int, ...]:
        """The ``source`` input's shape without the batch axis."""
        if self.source == "image":
            assert self.source_size is not None
            return (3, self.source_size, self.source_size)
        return (512,)

    @property
    def target_shape(self) -> tuple[int, ...]:
        return (3, self.size, self.size)


def _spec(
    name: str, template: str, size: int, mean: RGB3, std: RGB3, source: SourceKind, output: OutputKind, **kw: object
) -> OneShotSpec:
    return OneShotSpec(name, template, size, mean, std, source, output, **kw)  # type: ignore[arg-type]


#: The table. Order matters only for messages.
SPECS: dict[str, OneShotSpec] = {
    s.name: s
    for s in (
        _spec(
            "inswapper_128", "arcface_128", 128, ZERO, ONE, "emap", "clip", aliases=("inswapper_128_fp16", "inswapper")
        ),
        *(
            _spec(
                f"hyperswap_1{variant}_256",
                "arcface_128",
                256,
                HALF,
                HALF,
                "embedding",
                "denorm",
                license="ResearchRAIL (research only)",
            )
            for variant in "abc"
        ),
        _spec(
            "simswap_256",
            "arcface_112_v1",
            256,
            IMAGENET_MEAN,
            IMAGENET_STD,
            "converter",
            "clip",
            converter="arcface_converter_simswap",
        ),
        _spec(
            "simswap_unofficial_512",
            "arcface_112_v1",
            512,
            ZERO,
            ONE,
            "converter",
            "clip",
            converter="arcface_converter_simswap",
        ),
        *(
            _spec(
                f"ghost_{blocks}_256",
                "arcface_112_v1",
                256,
                HALF,
                HALF,
                "converter",
                "denorm",
                converter="arcface_converter_ghost",
                normalise_latent=False,
                aliases=(f"ghost_unet_{blocks}_block",),
            )
            for blocks in (1, 2, 3)
        ),
        _spec(
            "blendswap_256",
            "ffhq_512",
            256,
            ZERO,
            ONE,
            "image",
            "clip",
            source_template="arcface_112_v2",
            source_size=112,
        ),
        _spec(
            "uniface_256", "ffhq_512", 256, HALF, HALF, "image", "denorm", source_template="ffhq_512", source_size=256
        ),
    )
}


@dataclass(frozen=True)
class TensorSig:
    """One graph input or output: name, shape (ints, or strings/None for dynamic axes), element type."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str = "tensor(float)"


@dataclass(frozen=True)
class Signature:
    """What a model file declares: its inputs and outputs, and whether it carries an ``emap``."""

    inputs: tuple[TensorSig, ...]
    outputs: tuple[TensorSig, ...]
    has_emap: bool = False

    def input(self, name: str) -> TensorSig | None:
        return next((t for t in self.inputs if t.name == name), None)

    def describe(self) -> str:
        def one(t: TensorSig) -> str:
            return f"{t.name} {list(t.shape)}"

        return (
            f"inputs {', '.join(one(t) for t in self.inputs) or 'none'}; "
            f"outputs {', '.join(one(t) for t in self.outputs) or 'none'}"
        )


def _dims_match(actual: Sequence[int | str | None], expected: Sequence[int]) -> bool:
    """Batch axis may be dynamic; every other axis must equal ``expected``."""
    if len(actual) != len(expected) + 1:
        return False
    batch = actual[0]
    if isinstance(batch, int) and batch not in (1, -1):
        return False
    return all(a == e for a, e in zip(actual[1:], expected, strict=True))


def signature_mismatch(spec: OneShotSpec, sig: Signature) -> str | None:
    """Why ``sig`` is not a model of ``spec``'s family (``None`` when it is)."""
    target, source = sig.input("target"), sig.input("source")
    if target is None or source is None:
        names = ", ".join(t.name for t in sig.inputs) or "none"
        return f"inputs must be named 'target' and 'source', found {names}"
    if not _dims_match(target.shape, spec.target_shape):
        return f"'target' must be [1, {', '.join(map(str, spec.target_shape))}], found {list(target.shape)}"
    if not _dims_match(source.shape, spec.source_shape):
        return f"'source' must be [1, {', '.join(map(str, spec.source_shape))}], found {list(source.shape)}"
    if not sig.outputs:
        return "the model has no output"
    out = sig.outputs[0]
    if len(out.shape) != 4 or out.shape[1] != 3:
        return f"first output must be [1, 3, H, W], found {out.name} {list(out.shape)}"
    if (spec.source == "emap") != sig.has_emap:
        return (
            "no 512x512 'emap' initializer found (inswapper carries one)"
            if spec.source == "emap"
            else "it carries an inswapper 'emap' initializer"
        )
    return None


def _family_words(spec: OneShotSpec) -> tuple[str, ...]:
    return (spec.name, *spec.aliases)


def recognise(sig: Signature, path: str | Path, family: str | None = None) -> OneShotSpec:
    """The family of the file at ``path`` with signature ``sig``.

    Args:
        sig: the file's inputs and outputs.
        path: the file (its name tells apart families that share a signature).
        family: the family the user named (``--model-family``); its signature is still checked.

    Raises:
        ModelLoadError: the signature matches no family (the message says what each family
            expects and what the file has), or several and the file name does not say which.
    """
    name = Path(path).name
    if family is not None:
        spec = SPECS.get(family) or next((s for s in SPECS.values() if family in s.aliases), None)
        if spec is None:
            raise ModelLoadError(f"unknown model family {family!r}; known: {', '.join(SPECS)}")
        why = signature_mismatch(spec, sig)
        if why:
            raise ModelLoadError(f"{name} is not a {spec.name} model: {why}")
        return spec
    matches = [s for s in SPECS.values() if signature_mismatch(s, sig) is None]
    if not matches:
        reasons = "; ".join(
            f"{s.name}: {signature_mismatch(s, sig)}"
            for s in SPECS.values()
            if s.name in ("inswapper_128", "hyperswap_1a_256", "simswap_unofficial_512", "blendswap_256", "uniface_256")
        )
        raise ModelLoadError(
            f"{name} is not a face-swap model this program knows ({sig.describe()}). "
            f"What the known families expect — {reasons}. Use an inswapper, HyperSwap, SimSwap, GHOST, "
            f"BlendSwap or UniFace .onnx file, or a DeepFaceLive .dfm file"
        )
    if len(matches) == 1:
        return matches[0]
    lowered = name.lower()
    named = [s for s in matches if any(w in lowered for w in _family_words(s))]
    # longest name first: "hyperswap_1a_256" before a bare "hyperswap"
    named.sort(key=lambda s: -max(len(w) for w in _family_words(s) if w in lowered))
    if named:
        return named[0]
    raise ModelLoadError(
        f"{name} fits several model families ({', '.join(s.name for s in matches)}) and its file name "
        f"does not say which. Rename it to contain the family name (e.g. {matches[0].name}.onnx) or "
        f"pass --model-family NAME"
    )


def swapper_key(config: SwapperConfig) -> tuple[object, ...]:
    """What a model swapper is built from: while this is unchanged, its session can stay."""
    n = config.neural
    return (config.kind, config.model, n.family, n.recognizer, n.converter)
