"""The disclosure badge and metadata."""

from __future__ import annotations

import numpy as np
import pytest

from obs_faceswap import __version__
from obs_faceswap.config import CORNERS, BadgeConfig
from obs_faceswap.disclosure import (
    METADATA,
    SYNTHETIC_KEY,
    badge_box,
    badge_text_px,
    burn_badge,
    is_marked,
    metadata,
)
from obs_faceswap.errors import FrameFormatError


def _changed(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(np.any(a != b, axis=2))
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize("corner", CORNERS)
def test_badge_changes_only_its_box_in_the_chosen_corner(read_image, corner):
    import cv2

    frame = cv2.resize(read_image("frec_two_people.jpg"), (1280, 720))
    before = frame.copy()
    box = burn_badge(frame, BadgeConfig(enabled=True, corner=corner))
    assert box is not None
    x0, y0, x1, y1 = box
    changed = _changed(before, frame)
    assert changed is not None
    # Every changed pixel lies inside the returned box.
    assert changed[0] >= x0 and changed[1] >= y0 and changed[2] <= x1 and changed[3] <= y1
    # Unobtrusive: well under 2 % of the frame, inside the named corner's quadrant.
    assert (x1 - x0) * (y1 - y0) < 0.02 * 1280 * 720
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    assert (cx < 640) == corner.endswith("left")
    assert (cy < 360) == corner.startswith("top")


def test_badge_is_readable_and_semi_transparent():
    # On mid-grey the box darkens the background but lets it show through, and the text
    # is clearly brighter than the box.
    frame = np.full((1080, 1920, 3), 128, np.uint8)
    x0, y0, x1, y1 = burn_badge(frame, BadgeConfig(enabled=True))
    patch = frame[y0:y1, x0:x1].astype(int)
    assert patch.min() > 20, "the box is semi-transparent, not opaque black"
    assert patch.min() < 90, "the box darkens the background"
    assert patch.max() > 220, "the text is bright"
    text_pixels = (patch[:, :, 0] > 200).mean()
    assert 0.05 < text_pixels < 0.5


def test_badge_scales_with_frame_height():
    sizes = {}
    for w, h in ((640, 360), (1280, 720), (1920, 1080), (3840, 2160)):
        x0, y0, x1, y1 = badge_box((h, w), BadgeConfig(enabled=True))
        sizes[h] = y1 - y0
    assert sizes[360] < sizes[720] < sizes[1080] < sizes[2160]
    assert 1.7 < sizes[2160] / sizes[1080] < 2.3
    assert badge_text_px(100) == 10  # never below a readable minimum


def test_badge_text_is_configurable_and_unicode():
    a = np.full((720, 1280, 3), 90, np.uint8)
    b = a.copy()
    burn_badge(a, BadgeConfig(enabled=True, text="face swap"))
    box = burn_badge(b, BadgeConfig(enabled=True, text="échange de visage"))
    assert box is not None
    assert not np.array_equal(a, b)
    assert box[2] - box[0] > 1.3 * (
        badge_box((720, 1280), BadgeConfig(enabled=True))[2] - badge_box((720, 1280), BadgeConfig(enabled=True))[0]
    )


def test_badge_is_deterministic_and_in_place():
    frame = np.random.default_rng(0).integers(0, 256, (480, 854, 3), dtype=np.uint8)
    again = frame.copy()
    view = frame[:, :]
    burn_badge(frame, BadgeConfig(enabled=True))
    burn_badge(again, BadgeConfig(enabled=True))
    assert np.array_equal(frame, again)
    assert np.shares_memory(view, frame)


def test_badge_on_tiny_frame_is_cropped_not_an_error():
    frame = np.zeros((12, 20, 3), np.uint8)
    box = burn_badge(frame, BadgeConfig(enabled=True, corner="top-left"))
    assert box is not None
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= 20 and 0 <= y0 < y1 <= 12
    assert frame.any()


def test_empty_text_draws_nothing():
    frame = np.zeros((100, 100, 3), np.uint8)
    assert burn_badge(frame, BadgeConfig(enabled=True, text="   ")) is None
    assert not frame.any()


@pytest.mark.parametrize(
    "bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 4), np.uint8)]
)
def test_badge_rejects_wrong_frames(bad):
    with pytest.raises(FrameFormatError):
        burn_badge(bad, BadgeConfig(enabled=True))


def test_metadata_says_face_swapped_with_version():
    for kind in ("video", "image"):
        tags = metadata(kind)
        assert "face-swapped" in tags["comment"].lower() and kind in tags["comment"]
        assert __version__ in tags["comment"]
        assert tags["description"] == tags["comment"]
        assert is_marked(tags)
        assert all(v.isascii() for v in tags.values())
    assert metadata("video") == METADATA
    assert not is_marked({"comment": "holiday video"})
    assert is_marked({SYNTHETIC_KEY.upper(): METADATA[SYNTHETIC_KEY]})


def test_metadata_marks_only_swapped_files():
    from obs_faceswap.disclosure import metadata

    assert is_marked(metadata("video"))
    plain = metadata("image", swapped=False)
    assert not is_marked(plain)
    assert "no face was swapped in this image" in plain["comment"]
