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

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from obs_faceswap.config import RuntimeConfig, SwapperConfig
from obs_faceswap.errors import ConfigError
from obs_faceswap.swap.protocol import Reconfigurable, SourceFace, Swapper
from obs_faceswap.types import Box

__all__ = ["Box", "Reconfigurable", "SourceFace", "Swapper", "SwapperContext", "create_swapper"]

if TYPE_CHECKING:  # pragma: no cover
    from obs_faceswap.geometry import CanonicalFace
    from obs_faceswap.models import ModelStore


@dataclass(frozen=True)
class SwapperContext:
    """What a swapper factory may use to build a swapper.

    Attributes:
        store: where model files come from.
        runtime: execution providers and threads for inference sessions.
        canonical: the canonical face model (topology, UVs) the mesh points follow.
    """

    store: ModelStore
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    canonical: CanonicalFace | None = None


SwapperFactory = Callable[[SwapperConfig, SwapperContext], Swapper]


def create_swapper(config: SwapperConfig, ctx: SwapperContext) -> Swapper:
    """Build the swapper ``config`` asks for (implementations are imported only when used).

    Args:
        config: which swapper (``kind``) and its settings.
        ctx: the model store, runtime settings and canonical face.

    Returns:
        A :class:`Swapper`; photo swappers need :meth:`Swapper.set_source` before they swap.

    Raises:
        ModelError: ``kind`` is ``model`` and the file is missing, damaged or of no known
            format (the message names the file and what did not match).
        ConfigError: the plugin cannot be imported, is not callable, or does not build a
            :class:`Swapper` (the message names ``swapper.plugin`` and the value).
    """
    if config.kind == "photo":
        from obs_faceswap.swap.meshwarp import PhotoSwapper

        canonical = ctx.canonical
        if canonical is None:
            from obs_faceswap.geometry import load_canonical_face

            canonical = load_canonical_face(str(ctx.store.path("canonical_face")))
        photo = config.photo
        return PhotoSwapper(
            canonical, texture_size=photo.texture_size, mask=photo.mask, color=photo.color, shape=photo.shape
        )
    if config.kind == "model":
        from obs_faceswap.swap.neural import create_model_swapper

        return create_model_swapper(str(config.model), config.neural, ctx.runtime, ctx.store)
    return _plugin_factory(str(config.plugin))(config, ctx)


def _plugin_factory(spec: str) -> SwapperFactory:
    """The callable named by ``"package.module:factory"``, wrapped to check what it builds."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name.strip())
    except Exception as e:  # any import failure is the plugin's, reported in the user's words
        raise ConfigError(
            f"swapper plugin {spec!r}: cannot import {module_name.strip()!r} ({e}); "
            "check the module is installed in the engine's Python"
        ) from e
    factory = getattr(module, attr.strip(), None)
    if not callable(factory):
        raise ConfigError(f"swapper plugin {spec!r}: {module_name.strip()} has no callable {attr.strip()!r}")

    def build(config: SwapperConfig, ctx: SwapperContext) -> Swapper:
        swapper = factory(config, ctx)
        if not isinstance(swapper, Swapper):
            raise ConfigError(
                f"swapper plugin {spec!r} returned {type(swapper).__name__}, which does not "
                "implement obs_faceswap.swap.Swapper (needs_source, set_source, reads, swap, "
                "reset, close)"
            )
        return swapper

    return build
