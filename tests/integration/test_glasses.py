"""Glasses and eye make-up, on the source photo and on the live face (issue 8, items 2 and 3).

The seven people of ``faces/``, with the source and target photos of the cross-identity test
(``<person>_1.jpg``, ``dicaprio_3.jpg``; ``<person>_2.jpg``). Pichai wears thick black glasses in
both of his; Perry wears dark eyeliner and eyeshadow in ``perry_1.jpg``. Default settings, one
frame per pair, pasted with the default blend.

* the source's glasses: found on ``pichai_1.jpg`` and on no other source (their masks stay
  empty); the whole frame is painted out of the texture, so where it lands on each target the
  output holds about half the thin structure (a ghost of rims, bridge, arms) of the skin next
  to it (:func:`tests.quality.frame_ghost` at most 0.6; before: 0.66 to 0.71 on the four
  targets where the frame lands on enough pixels, now 0.48 to 0.58: the fill carries skin
  grain). The measure is a ratio, and its denominator moves with the texture around the frame:
  0.41 to 0.47 while the soft edge of the painted-over frame straddled it, which let the lens's
  bright bevel through as a light ring around each eye: laid outside it, the structure on the
  landing fell on all four targets, 1.00-1.17 -> 0.94-1.06, and that beside it more, 2.2-2.6
  -> 1.9-2.4 (0.43 to 0.53); with the photo's highlights toned down (meshwarp's
  ``_tamed_highlights``) the landing's stays (0.94-1.05), the lamp-lit skin beside it loses
  some (1.9-2.4 -> 1.7-2.1);
* what the frame covers on the source does not show through the painted texture (the photo's
  texels under it lightened: 0.6 % of that at the mask's edge, was 26 %);
* eye make-up: ``perry_1.jpg`` on every target leaves the skin around the eyes no more than
  13 L* darker than the live face's own (now at most 12.1; before: up to 19.0 darker, "black
  eye sockets"), and
  the eyes themselves keep their contrast;
* the live face's glasses (``pichai_2.jpg`` as the target): with ``mask.keep_glasses`` the
  frame's pixels are unchanged in the output (before: 8 to 11 % of them); by default, and with
  ``keep_occluders`` off, the frame is painted over like the rest of the face (a recognition
  model reads a wearer's own frames as the wearer: see ``MaskConfig.keep_glasses``).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.config import ColorConfig, MaskConfig
from obs_faceswap.geometry import load_canonical_face
from obs_faceswap.merge import paste_back, to_lab
from obs_faceswap.sources import analyse_source
from obs_faceswap.swap import raster
from obs_faceswap.swap.glasses import find_glasses, glasses_layout
from obs_faceswap.swap.meshwarp import PhotoSwapper
from obs_faceswap.types import Face
from tests import quality

from .swap_helpers import FaceFinder, video_frames

pytestmark = pytest.mark.slow

PEOPLE = ("dicaprio", "johansson", "jolie", "musk", "perry", "pichai", "zuckerberg")
SOURCES = {p: f"faces/{p}_{3 if p == 'dicaprio' else 1}.jpg" for p in PEOPLE}
TARGETS = {p: f"faces/{p}_2.jpg" for p in PEOPLE}
CLIP = "dfl_Obama_speaking.mp4"
WEARS_GLASSES = "pichai"


@pytest.fixture(scope="module")
def photos(store, read_image):
    """name -> (image, landmarks): sources as ``analyse_source`` sees them, targets as the live mesh."""
    finder = FaceFinder(store)
    out = {}
    for name in SOURCES.values():
        image = read_image(name)
        out[name] = (image, analyse_source(image, finder.detector, finder.mesh, name=name).landmarks)
    for name in TARGETS.values():
        image = read_image(name)
        lm = finder(image)
        assert lm is not None, name
        out[name] = (image, lm)
    return out


@pytest.fixture(scope="module")
def canonical(store):
    return load_canonical_face(str(store.path("canonical_face")))


def swapped(swapper: PhotoSwapper, frame: np.ndarray, lm: np.ndarray) -> np.ndarray:
    swapper.reset()
    r = swapper.swap(frame, Face(0, lm))
    assert r is not None
    out = frame.copy()
    paste_back(out, r)
    return out


@pytest.mark.parametrize("size", [512, 128])
def test_glasses_are_found_on_the_photos_with_glasses_and_no_others(photos, canonical, size):
    """The detector on each photo unwrapped into UV space, at the source texture's size and at
    the live check's (ring coverage with glasses 0.52 to 0.69, without at most 0.27)."""
    layout = glasses_layout(canonical.uv, size)
    uv = (canonical.uv * size).astype(np.float32)
    found = {}
    for name, (image, lm) in photos.items():
        mx, my, ids = raster.rasterise(uv, lm[:468, :2], canonical.triangles, (size, size), with_ids=True)
        assert ids is not None
        tex = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        g = find_glasses(to_lab(tex)[..., 0], ids >= 0, layout)
        found[name] = g.found
        if g.found:
            assert g.mask[ids >= 0].mean() > 0.04, name  # the whole frame, not a piece
        else:
            assert not g.mask.any(), name
    assert {n for n, f in found.items() if f} == {SOURCES[WEARS_GLASSES], TARGETS[WEARS_GLASSES]}


def test_sources_without_glasses_lose_nothing_to_the_glasses_mask(photos, canonical):
    for person, name in SOURCES.items():
        image, lm = photos[name]
        swapper = PhotoSwapper.from_photo(image, lm, canonical)
        share = float(swapper.glasses.mask.mean())
        if person == WEARS_GLASSES:
            assert swapper.glasses.found and share > 0.05, (name, share)
        else:
            assert not swapper.glasses.found and share == 0.0, (name, share)


def test_the_source_glasses_leave_no_frame_ghost_on_any_target(photos, canonical, capsys):
    """Where the source's frame (:func:`quality.glasses_frame_pixels` of the photo, carried
    through the same swap as a black-on-white image: white lines on black would be toned down
    as highlights by the texture build) lands on each target."""
    image, lm = photos[SOURCES[WEARS_GLASSES]]
    indicator = np.full_like(image, 255)
    indicator[quality.glasses_frame_pixels(image, lm)] = 0
    swapper = PhotoSwapper.from_photo(image, lm, canonical)
    carrier = PhotoSwapper.from_photo(
        indicator, lm, canonical, mask=MaskConfig(trim_hair=False), color=ColorConfig(mode="none")
    )
    ghosts = {}
    for person, name in TARGETS.items():
        if person == WEARS_GLASSES:
            continue
        frame, tlm = photos[name]
        landing = swapped(carrier, np.full_like(frame, 255), tlm)[..., 1] < 128
        if landing.sum() < 1000:  # small or turned faces: too few pixels to judge
            continue
        ghosts[person] = quality.frame_ghost(swapped(swapper, frame, tlm), landing, tlm)
    with capsys.disabled():
        print(
            "\nframe ghost (structure on the frame's landing / beside it):", {p: round(g, 2) for p, g in ghosts.items()}
        )
    assert len(ghosts) >= 3
    assert max(ghosts.values()) <= 0.6, ghosts


def test_what_the_source_frame_covers_does_not_show_through(photos, canonical, monkeypatch, capsys):
    """The texture under the painted-over frame is the fill, not the photo: the photo's texels
    under the mask (both views) are lightened by 60 levels and the texture rebuilt with the
    same masks; the texture may follow by a few per cent (the fill's low-pass reaches in).
    Before, the soft edge straddled the mask: at its outermost texels a quarter of the photo
    showed (median; 44 % on the 90th percentile), the frame's bright lens bevel a light ring
    around each eye on every target."""
    image, lm = photos[SOURCES[WEARS_GLASSES]]
    swapper = PhotoSwapper.from_photo(image, lm, canonical)
    masks = (swapper.glasses, swapper._occluders.copy(), swapper._beard.copy())
    keep = swapper._skin_keep(swapper._direct)
    before = swapper.texture_bgr.astype(np.float32)

    def same_masks(self: PhotoSwapper, tex: np.ndarray) -> np.ndarray:
        self.glasses, self._occluders, self._beard = masks[0], masks[1].copy(), masks[2].copy()
        return keep.copy()

    monkeypatch.setattr(PhotoSwapper, "_skin_keep", same_masks)
    covered = masks[1]
    for view in (swapper._direct, swapper._mirrored):
        view[covered] = np.clip(view[covered].astype(np.int16) + 60, 0, 255).astype(np.uint8)
    swapper._build_texture()
    shown = (swapper.texture_bgr.astype(np.float32) - before).mean(axis=2) / 60
    depth = cv2.distanceTransform(covered.astype(np.uint8), cv2.DIST_L2, 5)
    edge, inner = covered & (depth <= 1.5), covered & (depth > 1.5)
    figures = {k: np.percentile(shown[m], [50, 90]).round(3).tolist() for k, m in (("edge", edge), ("inner", inner))}
    with capsys.disabled():
        print("\nshare of the photo under the frame shown (median, p90):", figures)
    assert edge.sum() > 1000 and inner.sum() > 1000
    assert figures["edge"][0] <= 0.03 and figures["edge"][1] <= 0.08, figures
    assert figures["inner"][1] <= 0.05, figures


def test_eye_make_up_does_not_blacken_the_eye_sockets(photos, canonical, capsys):
    """perry_1.jpg on every target: before, the L* gain of the colour transfer (1.5 to 2.5, her
    skin is smooth and evenly lit) deepened her make-up to black."""
    image, lm = photos[SOURCES["perry"]]
    swapper = PhotoSwapper.from_photo(image, lm, canonical)
    own_contrast = quality.eye_contrast(image, lm)
    figures = {}
    for person, name in TARGETS.items():
        if person == "perry":
            continue
        frame, tlm = photos[name]
        out = swapped(swapper, frame, tlm)
        darker = quality.periocular_lightness(frame, tlm) - quality.periocular_lightness(out, tlm)
        figures[person] = (round(darker, 1), round(quality.eye_contrast(out, tlm), 1))
    with capsys.disabled():
        print(f"\nperiocular L* darker than live, eye contrast (source {own_contrast:.1f}):", figures)
    assert all(d <= 13.0 for d, _ in figures.values()), figures
    # the eyes keep their contrast (iris and lashes against the whites): on most targets as
    # much as in the photo; on the darkest face (pichai_2.jpg) still most of it
    assert all(c >= 0.7 * own_contrast for _, c in figures.values()), figures


def test_dark_eye_make_up_is_no_more_colourful_than_either_face(store, read_image, media, canonical, capsys):
    """Smoky make-up (jolie_3.jpg, perry_1.jpg) on two frames of the warm-lit Obama clip and
    five photos: the transfer gave dark lids the live skin's full warmth, dark red on the clip
    (chroma per lightness around the eyes 0.98, the live face's 0.71, the photo's 0.27; above
    both faces by more than 0.05 on 9 of these 14 swaps). Now within 0.04 of the more colourful."""
    finder = FaceFinder(store)
    targets = [(f"obama frame {k}", f, finder(f)) for k, f in video_frames(media(CLIP), 40) if k < 80]
    for name in ("dicaprio_2", "pichai_2", "musk_2", "zuckerberg_2", "johansson_2"):
        image = read_image(f"faces/{name}.jpg")
        targets.append((name, image, finder(image)))
    over = {}
    for source in ("jolie_3", "perry_1"):
        image = read_image(f"faces/{source}.jpg")
        slm = analyse_source(image, finder.detector, finder.mesh, name=source).landmarks
        swapper = PhotoSwapper.from_photo(image, slm, canonical)
        own = quality.colourfulness(quality.periocular_lab(image, slm))
        for name, frame, lm in targets:
            assert lm is not None, name
            out = quality.colourfulness(quality.periocular_lab(swapped(swapper, frame, lm), lm))
            most = max(own, quality.colourfulness(quality.periocular_lab(frame, lm)))
            if out > most + 0.04:
                over[source, name] = (round(out, 2), round(most, 2))
    assert over == {}, over


@pytest.fixture(scope="module")
def live_glasses(photos, canonical):
    """Share of the live frame's pixels unchanged, per source and setting, on pichai_2.jpg."""
    frame, lm = photos[TARGETS[WEARS_GLASSES]]
    pixels = quality.glasses_frame_pixels(frame, lm)
    assert pixels.sum() > 500
    settings = {
        "keep_glasses": MaskConfig(keep_glasses=True),
        "default": MaskConfig(),
        "keep_occluders off": MaskConfig(keep_occluders=False, keep_glasses=True),
    }
    out = {}
    for person, name in SOURCES.items():
        if person == WEARS_GLASSES:
            continue
        image, slm = photos[name]
        for label, mask in settings.items():
            result = swapped(PhotoSwapper.from_photo(image, slm, canonical, mask=mask), frame, lm)
            out[person, label] = float((result[pixels] == frame[pixels]).all(axis=1).mean())
    return out


def test_with_keep_glasses_the_live_glasses_stay_in_front(live_glasses):
    kept = {p: s for (p, label), s in live_glasses.items() if label == "keep_glasses"}
    assert min(kept.values()) >= 0.9, kept


@pytest.mark.parametrize("label", ["default", "keep_occluders off"])
def test_otherwise_the_live_glasses_are_painted_over(live_glasses, label):
    shares = {p: s for (p, lab), s in live_glasses.items() if lab == label}
    assert max(shares.values()) <= 0.2, shares
