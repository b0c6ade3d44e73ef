"""PhotoRating.summary: one line of what to change about a source photo."""

from __future__ import annotations

from obs_faceswap.preview import PhotoRating, Rating


def test_a_good_photo_has_nothing_to_say() -> None:
    r = PhotoRating((Rating("pose", "yaw +2", "good", "ok"), Rating("lighting", "L* 60", "good", "ok")))
    assert r.summary() == ""


def test_weak_aspects_are_named_poor_first_with_their_advice() -> None:
    r = PhotoRating(
        (
            Rating("pose", "yaw +16", "fair", "use a frontal photo"),
            Rating("face size", "94 px", "poor", "use a larger photo"),
            Rating("lighting", "L* 60", "good", "ok"),
        )
    )
    assert r.summary() == "source photo poor: face size: use a larger photo; pose: use a frontal photo"
