"""Swap quality in numbers: identity, containment, seams and skin colour on real video.

Every 5th frame of dfl_Obama_speaking.mp4 (52 frames) is swapped with astronaut.png as the
source by the default photo swapper and pasted with the default blend. Run with ``-s`` to see
the figures. Metric definitions: :mod:`tests.quality`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from obs_faceswap.config import BlendConfig, ColorConfig
from obs_faceswap.geometry import load_canonical_face
from obs_faceswap.landmark_indices import five_points
from obs_faceswap.merge import paste_back
from obs_faceswap.nets.recognition import FaceEmbedder, cosine
from obs_faceswap.sources import analyse_source
from obs_faceswap.swap.meshwarp import PhotoSwapper
from obs_faceswap.types import Face
from tests import quality

from .swap_helpers import FaceFinder, video_frames

pytestmark = pytest.mark.slow

VIDEO = "dfl_Obama_speaking.mp4"
STEP = 5
# The swapper sees every 5th frame only; re-estimating the live colour on every 2nd of them
# is the same update rate (3 per second) as the default interval of 10 at the clip's 30 fps.
COLOR = ColorConfig(interval=2)


@dataclass
class Row:
    index: int
    found_after: bool
    identity: quality.IdentityScore
    seam: float
    skin: quality.SkinMatch  # swapped skin vs live skin next to it
    skin_live: quality.SkinMatch  # the same bands, both sides from the original frame
    covered: quality.SkinMatch  # swapped skin vs the live skin it covers
    changed_outside: int


@pytest.fixture(scope="module")
def finder(store):
    return FaceFinder(store)


@pytest.fixture(scope="module")
def embedder(store):
    return FaceEmbedder.from_store(store, "faceres")


@pytest.fixture(scope="module")
def canonical(store):
    return load_canonical_face(str(store.path("canonical_face")))


def measure(frame, lm, swapper, embedder, finder, source_embedding, blend=None, index=0) -> Row:
    r = swapper.swap(frame, Face(0, lm))
    assert r is not None
    out = frame.copy()
    paste_back(out, r, blend or BlendConfig())
    mask = quality.frame_mask(frame.shape, r)
    return Row(
        index=index,
        found_after=len(finder.detector.detect(out)) > 0,
        identity=quality.identity_score(embedder, out, lm, source_embedding, embedder.embed(frame, five_points(lm))),
        seam=quality.seam_gradient_ratio(frame, out, mask),
        skin=quality.skin_match(frame, out, mask, lm),
        skin_live=quality.skin_match(frame, frame, mask, lm),
        covered=quality.covered_skin_match(frame, out, mask, lm),
        changed_outside=quality.changed_outside(frame, out, mask, dilate=1),
    )


@pytest.fixture(scope="module")
def video(media, read_image, finder, embedder, canonical):
    photo = read_image("astronaut.png")
    slm = analyse_source(photo, finder.detector, finder.mesh, name="astronaut.png").landmarks
    swapper = PhotoSwapper.from_photo(photo, slm, canonical, color=COLOR)
    e_src = embedder.embed(photo, five_points(slm))
    frames, rows = 0, []
    for i, frame in video_frames(media(VIDEO), STEP):
        frames += 1
        lm = finder(frame)
        if lm is not None:
            rows.append(measure(frame, lm, swapper, embedder, finder, e_src, index=i))
    report(frames, rows)
    return frames, rows


def report(frames: int, rows: list[Row]) -> None:
    ids = np.array([[r.identity.to_source, r.identity.to_original] for r in rows])
    de = np.array(
        [
            [r.skin.delta_e76, r.skin.delta_e2000, r.skin_live.delta_e76, r.covered.delta_e76, r.covered.delta_e2000]
            for r in rows
        ]
    )
    seam = np.array([r.seam for r in rows])
    print(
        f"\n{VIDEO} every {STEP}th frame, source astronaut.png: {frames} frames, face found on "
        f"{len(rows)} before and {sum(r.found_after for r in rows)} after swapping"
    )
    print(
        f"identity: closer to source on {np.mean(ids[:, 0] > ids[:, 1]):.1%}; cosine to source "
        f"median {np.median(ids[:, 0]):.3f}, to original median {np.median(ids[:, 1]):.3f}, "
        f"median margin {np.median(ids[:, 0] - ids[:, 1]):+.3f}"
    )
    print(f"seam gradient energy ratio: median {np.median(seam):.2f}, max {seam.max():.2f}")
    print(
        f"skin vs live skin next to it: dE76 median {np.median(de[:, 0]):.2f} max {de[:, 0].max():.2f}"
        f" (CIEDE2000 median {np.median(de[:, 1]):.2f} max {de[:, 1].max():.2f}); the live face's"
        f" own dE76 across the same bands: median {np.median(de[:, 2]):.2f} max {de[:, 2].max():.2f}"
    )
    print(
        f"skin vs the live skin it covers: dE76 median {np.median(de[:, 3]):.2f} max "
        f"{de[:, 3].max():.2f} (CIEDE2000 median {np.median(de[:, 4]):.2f} max {de[:, 4].max():.2f})"
    )
    print(f"pixels changed outside the dilated mask: {sum(r.changed_outside for r in rows)}")


def test_a_face_is_found_on_nearly_every_frame_before_and_after_swapping(video):
    frames, rows = video
    assert frames == 52
    assert len(rows) >= 0.99 * frames
    assert sum(r.found_after for r in rows) >= 0.99 * frames


def test_output_face_is_closer_to_the_source_than_to_the_original(video):
    """On every frame, by a margin: the median margin guards the identity against the live
    face's shading coming over with the lighting (a blur of the live skin at 0.06 of the UV
    size: 96 % of frames, median margin 0.063, and real OBS's screenshots of this clip at
    the margin; with meshwarp's lighting fit 100 %, 0.088)."""
    _, rows = video
    closer = np.mean([r.identity.closer_to_source for r in rows])
    assert closer >= 0.9, closer
    margin = float(np.median([r.identity.to_source - r.identity.to_original for r in rows]))
    assert margin >= 0.075, margin


def test_pixels_outside_the_dilated_face_mask_are_unchanged(video):
    _, rows = video
    assert [r.changed_outside for r in rows] == [0] * len(rows)


def test_seam_gradient_energy_is_at_most_one_and_a_half_times_the_original(video):
    _, rows = video
    worst = max(r.seam for r in rows)
    assert worst <= 1.5, worst


def test_swapped_skin_colour_matches_the_live_skin(video):
    """ΔE is CIE76 (Euclidean in L*a*b*).

    Against the live skin it covers, the swapped skin is within ΔE 6 on every frame. Against
    the live skin next to it (bands on both sides of the pasted boundary, :func:`skin_match`),
    the live face itself differs by ΔE 7 (median, up to 9) on this clip: the lit forehead and
    the shaded sides of the face are what lies next to the swapped area. So on the median
    frame the step may not exceed the live face's own step (a swap that keeps the live
    lighting at its edge has the live face's step there: 6.4 with the shading field at 0.06
    of the UV size, 5.2 when the swap was an evenly lit mask; per frame 0.3 less than the live
    face's own on the median frame), and on every frame it may not exceed the live face's own
    step (or 6, if that is larger) by more than 1.75 (before the lighting work: 1; four frames,
    40 to 55, now exceed the live step by 1.1 to 1.64: the swap's edge 1 to 1.5 L* darker than
    the live face's there).
    """
    _, rows = video
    assert max(r.covered.delta_e76 for r in rows) <= 6
    assert np.median([r.skin.delta_e76 - r.skin_live.delta_e76 for r in rows]) <= 0.0
    for r in rows:
        assert r.skin.inside_pixels > 50 and r.skin.outside_pixels > 50
        assert r.skin.delta_e76 <= max(6.0, r.skin_live.delta_e76) + 1.75, r.index


@pytest.mark.parametrize("mode", ["seamless", "multiband"])
def test_other_blend_modes_keep_seams_colour_and_containment(mode, media, read_image, finder, embedder, canonical):
    photo = read_image("astronaut.png")
    slm = analyse_source(photo, finder.detector, finder.mesh).landmarks
    swapper = PhotoSwapper.from_photo(photo, slm, canonical, color=COLOR)
    e_src = embedder.embed(photo, five_points(slm))
    rows = [
        measure(frame, lm, swapper, embedder, finder, e_src, BlendConfig(mode=mode), i)
        for i, frame in video_frames(media(VIDEO), 25)
        if (lm := finder(frame)) is not None
    ]
    print(
        f"\n{mode}: seam max {max(r.seam for r in rows):.2f}, covered dE76 max "
        f"{max(r.covered.delta_e76 for r in rows):.2f}, closer to source "
        f"{np.mean([r.identity.closer_to_source for r in rows]):.0%}"
    )
    assert len(rows) == 11
    assert all(r.changed_outside == 0 for r in rows)
    assert max(r.seam for r in rows) <= 1.5
    assert max(r.covered.delta_e76 for r in rows) <= 6


def test_strict_identity_against_other_pictures_of_the_source_person(media, read_image, finder, embedder, canonical):
    """frec_obama.jpg swapped onto Biden (frec_biden.jpg, and Biden in frec_two_people.jpg);
    the output is compared with Obama as he looks in the video (pictures the swap never saw)
    and with the original Biden. Pasting the source's own pixels cannot game this.

    Biden's head shape, hair, ears and jaw line stay; the texture alone left the output about
    as close to the original Biden as to Obama (0.57 vs 0.59). With the inner face moved to
    the source's proportions (ShapeConfig) it is closer to Obama (~0.64 vs ~0.57): asserted,
    together with the size of the move (from cosine ~0.39 with Obama before the swap).
    """
    photo = read_image("frec_obama.jpg")
    slm = analyse_source(photo, finder.detector, finder.mesh, name="frec_obama.jpg").landmarks
    swapper = PhotoSwapper.from_photo(photo, slm, canonical)
    obama = quality.mean_embedding(
        [embedder.embed(f, five_points(finder(f))) for _, f in video_frames(media(VIDEO), 26)]
    )
    biden_photo = read_image("frec_biden.jpg")
    biden_lm = finder(biden_photo)
    biden = embedder.embed(biden_photo, five_points(biden_lm))
    two = read_image("frec_two_people.jpg")
    faces = finder.all(two)
    assert len(faces) == 2
    two_lm = max(faces, key=lambda lm: cosine(embedder.embed(two, five_points(lm)), biden))
    for name, image, lm in (("frec_biden.jpg", biden_photo, biden_lm), ("frec_two_people.jpg", two, two_lm)):
        original = embedder.embed(image, five_points(lm))
        before = cosine(original, obama)
        score = measure(image, lm, swapper, embedder, finder, obama).identity
        print(
            f"\n{name}: output vs Obama (video) {score.to_source:.3f}, vs original Biden "
            f"{score.to_original:.3f}; original Biden vs Obama {before:.3f}; closer to the "
            f"source person: {score.closer_to_source}"
        )
        assert score.closer_to_source
        assert score.to_source >= before + 0.15
        assert score.to_original <= 0.7
