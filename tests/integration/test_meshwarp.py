"""The default photo swapper (obs_faceswap.swap.meshwarp) on real photos and video frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.config import BlendConfig, ColorConfig, MaskConfig
from obs_faceswap.errors import InputError, NoFaceError
from obs_faceswap.geometry import load_canonical_face
from obs_faceswap.landmark_indices import (
    FACE_OVAL,
    LEFT_CHEEK,
    LEFT_EYE,
    LEFT_EYEBROW,
    LIPS_INNER,
    LIPS_OUTER,
    RIGHT_CHEEK,
    RIGHT_EYE,
    RIGHT_EYEBROW,
)
from obs_faceswap.merge import paste_back, to_lab
from obs_faceswap.sources import analyse_source
from obs_faceswap.swap import raster
from obs_faceswap.swap.meshwarp import PhotoSwapper, facing_ratio
from obs_faceswap.types import Face

from .swap_helpers import FaceFinder, video_frames


@pytest.fixture(scope="module")
def finder(store):
    return FaceFinder(store)


@pytest.fixture(scope="module")
def canonical(store):
    return load_canonical_face(str(store.path("canonical_face")))


@pytest.fixture(scope="module")
def astronaut(read_image, finder):
    image = read_image("astronaut.png")
    return image, analyse_source(image, finder.detector, finder.mesh, name="astronaut.png").landmarks


@pytest.fixture(scope="module")
def swapper(astronaut, canonical):
    image, lm = astronaut
    return PhotoSwapper.from_photo(image, lm, canonical)


@pytest.fixture(scope="module")
def open_mouth(media, finder):
    """The video frame (every 5th) with the widest open mouth, and its landmarks."""
    best = None
    for _, frame in video_frames(media("dfl_Obama_speaking.mp4"), 5):
        lm = finder(frame)
        assert lm is not None
        opening = np.linalg.norm(lm[13, :2] - lm[14, :2]) / np.ptp(lm[:, 1])
        if best is None or opening > best[0]:
            best = (opening, frame, lm)
    assert best is not None and best[0] > 0.06, "the clip has open-mouth frames"
    return best[1], best[2]


def polygon(shape, pts, erode: int = 0) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(pts)[:, :2]).astype(np.int32)], 255)
    if erode:
        m = cv2.erode(m, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
    return m > 0


def swapped(sw: PhotoSwapper, frame: np.ndarray, lm: np.ndarray, track: int = 0) -> np.ndarray:
    r = sw.swap(frame, Face(track, lm))
    assert r is not None
    out = frame.copy()
    paste_back(out, r, BlendConfig())
    return out


# --- source side --------------------------------------------------------------------------


def test_analysed_source_fits_the_astronaut(astronaut):
    image, lm = astronaut
    assert lm.shape == (468, 3) and lm.dtype == np.float32
    x0, y0 = lm[:, :2].min(axis=0)
    x1, y1 = lm[:, :2].max(axis=0)
    # The face sits around (225, 110) and is about 90 px wide (media MANIFEST.md).
    assert 170 < x0 < x1 < 290 and 40 < y0 < y1 < 190
    assert 70 < x1 - x0 < 120


def test_analysing_a_source_without_a_face_raise_no_face_error_naming_the_file(finder):
    blank = np.full((240, 320, 3), 127, np.uint8)
    with pytest.raises(NoFaceError, match="blank.png"):
        analyse_source(blank, finder.detector, finder.mesh, name="blank.png")


def test_unusable_source_raises_input_error(astronaut, canonical):
    image, lm = astronaut
    with pytest.raises(InputError, match="uint8"):
        PhotoSwapper.from_photo(image.astype(np.float32), lm, canonical)
    with pytest.raises(InputError, match="468"):
        PhotoSwapper.from_photo(image, lm[:100], canonical)
    bad = lm.copy()
    bad[5, 0] = np.nan
    with pytest.raises(InputError, match="finite"):
        PhotoSwapper.from_photo(image, bad, canonical)


def hair_fraction(texture_bgr: np.ndarray, weight: np.ndarray, canonical, size: int) -> float:
    """Share of the upper forehead (weighted) whose colour is far from the cheeks' skin."""
    uv = canonical.uv * size
    v = canonical.vertices
    brow = v[list(RIGHT_EYEBROW) + list(LEFT_EYEBROW), 1].max()
    upper = np.nonzero(v[:, 1] > brow + 0.3 * (v[:, 1].max() - brow))[0]
    forehead = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(forehead, cv2.convexHull(np.round(uv[upper]).astype(np.int32)), 255)
    cheeks = np.zeros((size, size), np.uint8)
    for idx in (RIGHT_CHEEK, LEFT_CHEEK):
        cv2.fillConvexPoly(cheeks, cv2.convexHull(np.round(uv[list(idx)]).astype(np.int32)), 255)
    lab = to_lab(texture_bgr)
    ref = lab[cheeks > 0]
    med = np.median(ref, axis=0)
    sd = np.maximum(1.4826 * np.median(np.abs(ref - med), axis=0), [6, 2.5, 2.5])
    dist = np.sqrt((((lab - med) / sd) ** 2).sum(axis=2))
    w = weight * (forehead > 0)
    return float((w * (dist > 3)).sum() / w.sum())


def test_hair_trim_keeps_the_fringe_out_of_the_texture(swapper, canonical, astronaut):
    # The astronaut's fringe covers much of her forehead inside the mesh.
    size = swapper.size
    in_photo = hair_fraction(swapper.photo_texture, np.ones((size, size)), canonical, size)
    alpha = swapper.texture[..., 3].astype(np.float64) / 255
    in_texture = hair_fraction(swapper.texture[..., :3], alpha, canonical, size)
    assert in_photo > 0.25, in_photo
    assert in_texture < 0.03, in_texture
    # Without the trim the fringe comes along (the measure above can fail).
    untrimmed = PhotoSwapper.from_photo(*astronaut, canonical, mask=MaskConfig(trim_hair=False))
    alpha = untrimmed.texture[..., 3].astype(np.float64) / 255
    assert hair_fraction(untrimmed.texture[..., :3], alpha, canonical, size) > 0.15


def rotate_y(lm: np.ndarray, degrees: float) -> np.ndarray:
    """Turn a mesh about the vertical axis through its centre (x right, z away)."""
    t = np.radians(degrees)
    c = lm.mean(axis=0)
    p = lm - c
    out = p.copy()
    out[:, 0] = p[:, 0] * np.cos(t) + p[:, 2] * np.sin(t)
    out[:, 2] = -p[:, 0] * np.sin(t) + p[:, 2] * np.cos(t)
    return (out + c).astype(np.float32)


def test_side_the_photo_cannot_see_is_filled_from_the_mirrored_side(swapper, astronaut, canonical):
    """A turned head is made by rendering the frontal texture onto a turned mesh; unwrapping
    it again must recover the hidden cheek from the visible one, not smear the silhouette."""
    image, src_lm = astronaut
    turned = rotate_y(src_lm, 55.0)
    canvas = np.full((512, 512, 3), 90, np.uint8)
    plain = PhotoSwapper.from_photo(
        image, src_lm, canonical, mask=MaskConfig(keep_mouth=False), color=ColorConfig(mode="none")
    )
    r = plain.swap(canvas, Face(0, turned))
    assert r is not None
    paste_back(canvas, r, BlendConfig())
    again = PhotoSwapper.from_photo(canvas, turned, canonical, color=ColorConfig(mode="none"))
    assert again.mirrored_fraction > 0.1 > swapper.mirrored_fraction

    # Texels on triangles the turned view shows at a grazing angle or not at all.
    uv_sign = np.sign(raster.signed_areas(canonical.uv, canonical.triangles))
    facing = facing_ratio(turned, canonical.triangles, uv_sign)
    _, _, ids = raster.rasterise(canonical.uv * 512, turned[:, :2], canonical.triangles, (512, 512), with_ids=True)
    assert ids is not None
    hidden = (ids >= 0) & (facing[np.maximum(ids, 0)] < 0.2) & (plain.texture[..., 3] == 255)
    assert hidden.mean() > 0.1
    truth = to_lab(plain.texture[..., :3])[hidden]
    err_fill = np.abs(to_lab(again.texture[..., :3])[hidden] - truth).mean()
    err_raw = np.abs(to_lab(again.photo_texture)[hidden] - truth).mean()
    assert err_fill < 0.6 * err_raw, (err_fill, err_raw)


def cheek_difference(texture_bgr: np.ndarray, canonical) -> float:
    """Median L* of the texture's right cheek minus its left cheek."""
    size = texture_bgr.shape[0]
    lab = to_lab(texture_bgr)
    return float(
        np.subtract(
            *(
                np.median(lab[polygon((size, size), cv2.convexHull(canonical.uv[list(idx)] * size)[:, 0], erode=3), 0])
                for idx in (RIGHT_CHEEK, LEFT_CHEEK)
            )
        )
    )


def test_a_lamp_at_one_side_of_the_photo_is_not_carried_into_the_texture(astronaut, canonical):
    """A source lit from one side painted that side's light onto every live face; the texture
    is made even left to right (the live lighting is the shading field's part)."""
    image, lm = astronaut
    x0, x1 = float(lm[:, 0].min()), float(lm[:, 0].max())
    ramp = np.clip((np.arange(image.shape[1], dtype=np.float32) - x0) / (x1 - x0), 0, 1)
    side_lit = np.clip(image * (0.5 + 0.5 * ramp)[None, :, None], 0, 255).astype(np.uint8)
    even = PhotoSwapper.from_photo(image, lm, canonical)
    lit = PhotoSwapper.from_photo(side_lit, lm, canonical)
    carried_raw = cheek_difference(lit.photo_texture, canonical) - cheek_difference(even.photo_texture, canonical)
    carried = cheek_difference(lit.texture[..., :3], canonical) - cheek_difference(even.texture[..., :3], canonical)
    assert abs(carried_raw) > 15, carried_raw  # the lamp shows in the unwrapped photo
    assert abs(carried) < 0.2 * abs(carried_raw), (carried, carried_raw)


@pytest.mark.parametrize("level", [0, 255])
def test_a_blank_or_blown_out_frame_under_a_tracked_mesh_does_not_crash(swapper, open_mouth, level):
    """A frame gone black or white (a camera's auto-exposure, a covered lens) while the mesh is
    still tracked: the lips' colour fit saw one flat colour and its solve raised "singular
    matrix" (its ridge was lost in float32 rounding); the swap goes on and covers the face."""
    frame, lm = open_mouth
    swapper.reset()
    for image in (np.full_like(frame, level), frame):  # (a new track measures the lips at once)
        r = swapper.swap(image, Face(0, lm))
        assert r is not None and (r.mask == 255).sum() > 1000
    swapper.reset()


def test_a_shine_on_the_photos_skin_is_toned_down_in_the_texture(read_image, finder, canonical):
    """A lamp's shine on the source's skin (faces/pichai_1.jpg's nose) was painted onto every
    live face as a white streak; the texture keeps a little of it (the live lighting comes
    from the shading field), and the rest of the face as it was. Three lamp-like spots on a
    photo with a mid skin tone (cheeks, the nose's ridge)."""
    image = read_image("faces/dicaprio_3.jpg")
    lm = analyse_source(image, finder.detector, finder.mesh, name="faces/dicaprio_3.jpg").landmarks
    face_w = float(np.ptp(lm[:, 0]))
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float32)
    spots = [lm[list(RIGHT_CHEEK), :2].mean(axis=0), lm[list(LEFT_CHEEK), :2].mean(axis=0), lm[195, :2]]
    glow = sum(np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * (0.05 * face_w) ** 2)) for x, y in spots)
    shiny = (image * (1 - 0.7 * glow[..., None]) + 255 * 0.7 * glow[..., None]).astype(np.uint8)
    plain = PhotoSwapper.from_photo(image, lm, canonical)
    lit = PhotoSwapper.from_photo(shiny, lm, canonical)
    size = plain.size
    raw = to_lab(lit.photo_texture)[..., 0] - to_lab(plain.photo_texture)[..., 0]
    kept = to_lab(lit.texture[..., :3])[..., 0] - to_lab(plain.texture[..., :3])[..., 0]
    core = raw > 0.8 * raw.max()
    # the rest of the inner face (at the rim, what is painted over follows the photo's skin)
    elsewhere = cv2.dilate((raw > 1).astype(np.uint8), np.ones((15, 15), np.uint8)) == 0
    elsewhere &= polygon((size, size), canonical.uv[list(FACE_OVAL)] * size, erode=int(0.12 * size))
    assert core.sum() > 0.0005 * size * size and raw[core].mean() > 20, raw[core].mean()  # the shine is in the photo
    assert kept[core].mean() < 0.75 * raw[core].mean(), (kept[core].mean(), raw[core].mean())
    assert elsewhere.sum() > 0.1 * size * size
    # Most of it unchanged; near the spots the even-light step (mirror differences, blurred)
    # and the beard's edge (texels kept or painted over) move by a few L*.
    assert np.median(np.abs(kept[elsewhere])) < 0.5, np.median(np.abs(kept[elsewhere]))


# --- live side ----------------------------------------------------------------------------


def test_keep_mouth_shows_the_live_mouth_interior(swapper, astronaut, canonical, open_mouth):
    frame, lm = open_mouth
    interior = polygon(frame.shape, lm[list(LIPS_INNER)], erode=2)
    assert interior.sum() > 150  # a really open mouth
    out = swapped(swapper, frame, lm)
    np.testing.assert_array_equal(out[interior], frame[interior])
    # The rest of the face did change, and without keep_mouth so does the mouth.
    assert (out != frame).any(axis=2).sum() > 20 * interior.sum()
    closed = PhotoSwapper.from_photo(*astronaut, canonical, mask=MaskConfig(keep_mouth=False))
    out = swapped(closed, frame, lm)
    assert (out[interior] != frame[interior]).any(axis=1).mean() > 0.9


def test_keep_eyes_shows_the_live_eyes(astronaut, canonical, open_mouth):
    frame, lm = open_mouth
    eyes = polygon(frame.shape, lm[list(RIGHT_EYE)], 1) | polygon(frame.shape, lm[list(LEFT_EYE)], 1)
    assert eyes.sum() > 40
    sw = PhotoSwapper.from_photo(*astronaut, canonical, mask=MaskConfig(keep_eyes=True))
    out = swapped(sw, frame, lm)
    np.testing.assert_array_equal(out[eyes], frame[eyes])
    sw.update(mask=MaskConfig(keep_eyes=False))
    out = swapped(sw, frame, lm)
    assert (out[eyes] != frame[eyes]).any(axis=1).mean() > 0.9


def test_swap_result_is_a_crop_with_a_soft_mask_at_its_place(swapper, open_mouth):
    frame, lm = open_mouth
    r = swapper.swap(frame, Face(0, lm))
    assert r is not None and r.is_translation
    x0, y0 = r.transform[:, 2].astype(int)
    h, w = r.mask.shape
    fx0, fy0 = lm[:, :2].min(axis=0)
    fx1, fy1 = lm[:, :2].max(axis=0)
    assert x0 <= fx0 and y0 <= fy0 and x0 + w >= fx1 and y0 + h >= fy1
    assert w < 1.2 * (fx1 - fx0) + 8
    # Soft edge: zero on the crop's border, full inside, a ramp in between.
    assert r.mask[0].max() == 0 and r.mask[-1].max() == 0
    assert r.mask[:, 0].max() == 0 and r.mask[:, -1].max() == 0
    oval = polygon(frame.shape, lm[list(FACE_OVAL)])[y0 : y0 + h, x0 : x0 + w]
    # Most of the face is used; the edge, the mouth and the top of the forehead fade out.
    assert (r.mask > 127).sum() > 0.65 * oval.sum()
    assert (r.mask == 255).sum() > 0.4 * oval.sum()
    hull = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(lm[:, :2]).astype(np.int32)), 1)
    hull = cv2.dilate(hull, np.ones((5, 5), np.uint8))[y0 : y0 + h, x0 : x0 + w] > 0
    assert not ((r.mask > 0) & ~hull).any()  # nothing beyond the live mesh
    assert ((r.mask > 0) & (r.mask < 255)).mean() > 0.05
    # Where the mask is 0 the crop carries the frame (no black rim can bleed in).
    roi = frame[y0 : y0 + h, x0 : x0 + w]
    np.testing.assert_array_equal(r.crop[r.mask == 0][:100], roi[r.mask == 0][:100])


def test_faces_off_frame_or_degenerate_give_none_and_partial_faces_are_clipped(swapper, open_mouth):
    frame, lm = open_mouth
    far = lm.copy()
    far[:, 0] += 5000
    assert swapper.swap(frame, Face(0, far)) is None
    flat = lm.copy()
    flat[:, :2] = lm[0, :2]
    assert swapper.swap(frame, Face(0, flat)) is None
    half = lm.copy()
    half[:, 0] -= lm[:, 0].min() + 0.5 * np.ptp(lm[:, 0])  # left half outside the frame
    r = swapper.swap(frame, Face(0, half))
    assert r is not None
    assert r.transform[0, 2] == 0 and r.mask.shape[1] < 0.6 * np.ptp(lm[:, 0]) + 8
    out = frame.copy()
    assert paste_back(out, r) is not None


def test_update_applies_settings_without_unwrapping_again(astronaut, canonical, open_mouth):
    frame, lm = open_mouth
    sw = PhotoSwapper.from_photo(*astronaut, canonical)
    photo = sw.photo_texture
    base = sw.texture
    with_rct = sw.swap(frame, Face(0, lm))
    sw.update(color=ColorConfig(mode="none"))
    plain = sw.swap(frame, Face(0, lm))
    assert sw.photo_texture is photo and sw.texture is base
    assert with_rct is not None and plain is not None
    lab_rct, lab_plain = to_lab(with_rct.crop), to_lab(plain.crop)
    full = with_rct.mask == 255
    # The live face is much darker than the source: the transfer is what brings it there.
    assert lab_rct[full][:, 0].mean() < lab_plain[full][:, 0].mean() - 15
    sw.update(mask=MaskConfig(trim_hair=False))
    assert sw.photo_texture is photo and sw.texture is not base


def test_colour_state_is_per_track(astronaut, canonical, open_mouth):
    frame, lm = open_mouth
    sw = PhotoSwapper.from_photo(*astronaut, canonical)
    dark = cv2.convertScaleAbs(frame, alpha=0.5)
    a = sw.swap(frame, Face(1, lm))
    b = sw.swap(dark, Face(2, lm))
    assert a is not None and b is not None
    assert sorted(sw.tracks) == [1, 2]
    full = (a.mask == 255) & (b.mask == 255)
    assert to_lab(b.crop)[full][:, 0].mean() < to_lab(a.crop)[full][:, 0].mean() - 10
    sw.reset(1)
    assert sw.tracks == [2]
    sw.reset()
    assert sw.tracks == []


def test_a_colour_re_estimate_is_spread_over_frames_and_follows_the_light(astronaut, canonical, open_mouth):
    """One heavy step a frame: the live skin's measurement, then the shading field, then the hue
    guard with the build's first band, then the other bands (a frame that ran them all was the
    heaviest swap, 2-3x the median); the rebuilt texture still follows a change of light within
    one interval."""
    frame, lm = open_mouth
    sw = PhotoSwapper.from_photo(*astronaut, canonical)
    steps: list[list[str]] = []
    for name in ("_estimate", "_update_shading", "_update_guard", "_build"):
        method = getattr(sw, name)

        def logged(*args, _method=method, _name=name, **kwargs):
            steps[-1].append(_name)
            return _method(*args, **kwargs)

        setattr(sw, name, logged)
    interval = sw.color_config.interval
    dark = cv2.convertScaleAbs(frame, alpha=0.6)
    shade = []
    for k in range(3 * interval):
        steps.append([])
        r = sw.swap(frame if k < interval else dark, Face(0, lm))
        assert r is not None
        shade.append(float(to_lab(r.crop)[r.mask == 255][:, 0].mean()))
    # the first frame: everything at once (a new face gets its colour at once), then nothing
    assert steps[0] == ["_estimate", "_update_shading", "_update_guard", "_build"]
    assert steps[1:interval] == [[]] * (interval - 1)
    for k, done in enumerate(steps[interval:], start=interval):
        expected = {0: ["_estimate"], 1: ["_update_shading"], 2: ["_update_guard", "_build"]}
        if k % interval in expected:
            assert done == expected[k % interval], (k, done)
        else:
            assert set(done) <= {"_build"}, (k, done)
    # the darker frames' re-estimate darkened the texture within the next interval
    assert shade[-1] < shade[interval - 1] - 10, (shade[interval - 1], shade[-1])


# -- shape: the source's proportions, the live expression -----------------------------------
def posed(points: np.ndarray, scale: float, degrees: float, shift: tuple[float, float, float]) -> np.ndarray:
    """``points`` turned about the vertical axis, scaled and moved (a head pose)."""
    a = np.radians(degrees)
    r = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    c = points.mean(axis=0)
    return ((points - c) @ r.T * scale + c + np.array(shift)).astype(np.float32)


def test_shape_takes_the_source_proportions_and_keeps_outline_and_expression(astronaut, canonical):
    from obs_faceswap.config import ShapeConfig
    from obs_faceswap.geometry import similarity
    from obs_faceswap.landmark_indices import FACE_OVAL, RIGHT_EYE

    photo, slm = astronaut
    sw = PhotoSwapper.from_photo(photo, slm, canonical, shape=ShapeConfig(strength=1.0, adapt_frames=5))
    # a "live" person: the canonical face's proportions in the source's size, in another pose
    scale, r, t = similarity(canonical.vertices, slm)
    person = (scale * canonical.vertices @ r.T + t).astype(np.float32)
    live = posed(person, 1.3, 15.0, (40.0, 10.0, 0.0))
    track = sw._track(0)
    for _ in range(60):  # the running average converges on a face that holds still
        out = sw._shaped(track, live)
    oval = list(FACE_OVAL)
    np.testing.assert_allclose(out[oval], live[oval], atol=1e-3)  # the paste edge stays put
    # the lips stay the live ones (the mouth's hole shows them: moved, they drew a second outline)
    lips = list(LIPS_OUTER) + list(LIPS_INNER)
    np.testing.assert_allclose(out[lips], live[lips], atol=1e-3)
    # inner points away from the lips: in the source's frame they now sit where the source's do
    inner = np.nonzero((sw._shape_w > 0.99) & (sw._lip_blend > 0.99))[0]
    assert len(inner) > 150
    s2, r2, t2 = similarity(live, slm)  # the live face's pose in the source's frame
    in_source = s2 * out.astype(np.float64) @ r2.T + t2
    before = np.abs((s2 * live.astype(np.float64) @ r2.T + t2)[inner] - slm[inner]).mean()
    after = np.abs(in_source[inner] - slm[inner]).mean()
    assert after < 0.05 * before, (before, after)
    # a blink on one frame moves the output's eyelid by almost as much as the live one
    blink = live.copy()
    lid = [159, 158, 160]  # upper eyelid of the subject's right eye
    blink[lid, 1] += 6.0
    moved = sw._shaped(track, blink)[lid, 1] - out[lid, 1]
    assert np.all(moved > 6.0 * 0.75), moved
    assert set(lid) <= set(RIGHT_EYE)
    # strength 0: the live mesh untouched
    sw.update(shape=ShapeConfig(strength=0.0))
    np.testing.assert_array_equal(sw._shaped(track, live), live)
