"""Configuration: validation at construction, and flat "section.field" updates from the edges."""

from __future__ import annotations

import pytest

from obs_faceswap.config import (
    BadgeConfig,
    BlendConfig,
    DetectorConfig,
    MaskConfig,
    PhotoSwapperConfig,
    PipelineConfig,
    RuntimeConfig,
    SelectionConfig,
    ShapeConfig,
    SwapperConfig,
    apply_updates,
)
from obs_faceswap.errors import ConfigError


@pytest.mark.parametrize(
    ("build", "needle"),
    [
        (lambda: DetectorConfig(kind="mtcnn"), "detector.kind"),
        (lambda: DetectorConfig(score_threshold=1.5), "detector.score_threshold"),
        (lambda: BlendConfig(opacity=-0.1), "blend.opacity"),
        (lambda: MaskConfig(feather=0.9), "mask.feather"),
        (lambda: ShapeConfig(strength=2.0), "shape.strength"),
        (lambda: SelectionConfig(mode="reference"), "selection.reference"),
        (lambda: BadgeConfig(corner="middle"), "badge.corner"),
        (lambda: BadgeConfig(text="x" * 65), "badge.text"),
        (lambda: RuntimeConfig(providers=("metal",)), "metal"),
        (lambda: PhotoSwapperConfig(texture_size=300), "texture_size"),
        (lambda: SwapperConfig(kind="dfm"), "swapper.kind"),
        (lambda: SwapperConfig(kind="model"), "swapper.model"),
        (lambda: SwapperConfig(kind="plugin", plugin="no_colon"), "swapper.plugin"),
    ],
)
def test_invalid_values_raise_config_error_naming_the_field(build, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        build()


def test_flat_updates_are_coerced_and_leave_the_original_untouched():
    base = PipelineConfig()
    new = apply_updates(
        base,
        {
            "blend.opacity": "0.5",
            "swapper.photo.mask.keep_eyes": "true",
            "tracking.detect_interval": 3.0,
            "runtime.providers": "cuda,cpu",
            "badge": {"enabled": 1, "corner": "top-left"},
        },
    )
    assert new.blend.opacity == 0.5 and new.swapper.photo.mask.keep_eyes is True
    assert new.tracking.detect_interval == 3 and new.runtime.providers == ("cuda", "cpu")
    assert new.badge.enabled is True and new.badge.corner == "top-left"
    assert base == PipelineConfig()  # frozen: a new object, the old one unchanged
    assert apply_updates(base, {}) == base


@pytest.mark.parametrize(
    ("updates", "needle"),
    [
        ({"blend.opacty": 1}, "'blend.opacty'"),
        ({"nonsense": 1}, "'nonsense'"),
        ({"swapper.photo.mask.feather": "wide"}, "swapper.photo.mask.feather"),
        ({"mask.feather": 0.1}, "'mask'"),
        ({"blend.mode": "overlay"}, "blend.mode"),
        ({"swapper.photo.shape.strength": 7}, "shape.strength"),
        ({"swapper.kind": "magic"}, "swapper.kind"),
    ],
)
def test_bad_updates_raise_config_error_naming_the_setting(updates, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        apply_updates(PipelineConfig(), updates)
