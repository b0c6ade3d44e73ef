"""The scanline rasteriser that writes remap maps (obs_faceswap.swap.raster)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_faceswap.swap import raster

TRI = np.array([[0, 1, 2]], np.int32)


def inside_triangle(p: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Exact reference: pixel centres inside (or on) the triangle ``p``."""
    w, h = size_wh
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    (x0, y0), (x1, y1), (x2, y2) = p.astype(np.float64)
    d0 = (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0)
    d1 = (x2 - x1) * (yy - y1) - (y2 - y1) * (xx - x1)
    d2 = (x0 - x2) * (yy - y2) - (y0 - y2) * (xx - x2)
    return ((d0 >= 0) & (d1 >= 0) & (d2 >= 0)) | ((d0 <= 0) & (d1 <= 0) & (d2 <= 0))


def distance_to_outline(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Distance of points ``q`` to the nearest edge of triangle ``p``."""
    q = q.astype(np.float64)
    best = np.full(len(q), np.inf)
    for a, b in ((p[0], p[1]), (p[1], p[2]), (p[2], p[0])):
        a, b = a.astype(np.float64), b.astype(np.float64)
        t = np.clip(((q - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
        best = np.minimum(best, np.linalg.norm(q - (a + t[:, None] * (b - a)), axis=1))
    return best


@pytest.mark.parametrize(
    "dst",
    [
        [[10.3, 5.2], [80.7, 30.1], [25.5, 70.9]],
        [[90.2, 90.6], [3.4, 60.1], [50.5, 2.7]],  # other winding
        [[40.1, 10.3], [41.2, 88.4], [42.9, 50.6]],  # a sliver
    ],
)
def test_single_triangle_coverage_matches_exact_reference_and_fillpoly(dst):
    dst = np.array(dst, np.float32)
    src = np.array([[0, 0], [100, 0], [0, 100]], np.float32)
    mx, my, ids = raster.rasterise(dst, src, TRI, (100, 100), with_ids=True)
    covered = mx > raster.OUTSIDE / 2
    np.testing.assert_array_equal(covered, inside_triangle(dst, (100, 100)))
    np.testing.assert_array_equal(ids >= 0, covered)
    # cv2.fillPoly has its own edge rules (it also paints pixels the edges merely touch):
    # the two agree everywhere except within a pixel of the outline.
    ref = np.zeros((100, 100), np.uint8)
    cv2.fillPoly(ref, [np.round(dst * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    ys, xs = np.nonzero((ref > 0) != covered)
    assert distance_to_outline(dst, np.stack([xs, ys], axis=1)).max(initial=0) <= 1.0
    area = abs(raster.signed_areas(dst, TRI)[0]) / 2
    perimeter = sum(np.linalg.norm(dst[i] - dst[(i + 1) % 3]) for i in range(3))
    assert abs(covered.sum() - area) <= perimeter / 2


def test_affine_mapping_is_exact_at_vertices_and_inside():
    dst = np.array([[10, 12], [70, 20], [30, 80]], np.float32)  # integer: vertices are pixels
    src = np.array([[5.5, 3.25], [120.0, 10.0], [40.0, 150.0]], np.float32)
    mx, my, _ = raster.rasterise(dst, src, TRI, (100, 100))
    for (x, y), (u, v) in zip(dst.astype(int), src, strict=True):
        assert mx[y, x] == pytest.approx(u, abs=1e-3)
        assert my[y, x] == pytest.approx(v, abs=1e-3)
    a = cv2.getAffineTransform(dst, src).astype(np.float64)
    ys, xs = np.nonzero(mx > raster.OUTSIDE / 2)
    expect = np.stack([xs, ys, np.ones_like(xs)], axis=1) @ a.T
    np.testing.assert_allclose(mx[ys, xs], expect[:, 0], atol=2e-3)
    np.testing.assert_allclose(my[ys, xs], expect[:, 1], atol=2e-3)


def test_remap_with_the_maps_equals_warp_affine_inside_and_zero_outside():
    rng = np.random.default_rng(1)
    image = cv2.resize(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), (160, 160), interpolation=cv2.INTER_CUBIC)
    bgra = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    dst = np.array([[5.5, 8.25], [90.0, 15.0], [40.0, 95.5]], np.float32)
    src = np.array([[20.0, 30.0], [140.0, 25.0], [60.0, 150.0]], np.float32)
    mx, my, _ = raster.rasterise(dst, src, TRI, (100, 100))
    out = cv2.remap(bgra, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    ref = cv2.warpAffine(image, cv2.getAffineTransform(src, dst), (100, 100), flags=cv2.INTER_LINEAR)
    covered = mx > raster.OUTSIDE / 2
    inner = cv2.erode(covered.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    diff = np.abs(out[..., :3].astype(int) - ref.astype(int)).max(axis=2)
    assert diff[inner].max() <= 1
    assert (out[~covered] == 0).all()  # uncovered pixels are transparent black
    assert (out[covered, 3] == 255).all()


def test_triangles_sharing_an_edge_leave_no_crack():
    quad = np.array([[3.3, 4.1], [95.7, 9.9], [90.2, 93.8], [7.6, 88.4]], np.float32)
    tris = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    mx, _, ids = raster.rasterise(quad, quad, tris, (100, 100), with_ids=True)
    expect = inside_triangle(quad[[0, 1, 2]], (100, 100)) | inside_triangle(quad[[0, 2, 3]], (100, 100))
    np.testing.assert_array_equal(mx > raster.OUTSIDE / 2, expect)
    assert set(np.unique(ids)) == {-1, 0, 1}


def test_later_triangles_overwrite_earlier_ones():
    pts = np.array([[10, 10], [90, 10], [10, 90], [90, 90]], np.float32)
    tris = np.array([[0, 1, 2], [1, 3, 2]], np.int32)
    big = np.array([[0, 0], [99, 0], [0, 99]], np.float32)
    pts2 = np.concatenate([pts, big])
    tris2 = np.concatenate([tris, [[4, 5, 6]]]).astype(np.int32)
    _, _, ids = raster.rasterise(pts2, pts2, tris2, (100, 100), order=[2, 0, 1], with_ids=True)
    assert ids[20, 20] == 0  # drawn after the big one
    _, _, ids = raster.rasterise(pts2, pts2, tris2, (100, 100), order=[0, 1, 2], with_ids=True)
    assert ids[20, 20] == 2


def two_layers(z_a: float, z_b: float, flip_b: bool = False):
    """Two triangles over the same pixels at depths z_a, z_b; the second optionally flipped."""
    xy = np.array([[10, 10], [90, 10], [50, 90], [10, 10], [90, 10], [50, 90]], np.float32)
    z = np.array([z_a] * 3 + [z_b] * 3, np.float32)
    tris = np.array([[0, 1, 2], [3, 5, 4] if flip_b else [3, 4, 5]], np.int32)
    ref_sign = np.sign(raster.signed_areas(xy, np.array([[0, 1, 2], [3, 4, 5]])))
    return xy, z, tris, ref_sign


def test_draw_order_puts_nearer_triangles_last():
    xy, z, tris, sign = two_layers(5.0, -5.0)  # second is nearer (smaller z)
    order, front = raster.draw_order(xy, z, tris, sign)
    assert front.all()
    assert order.tolist() == [0, 1]
    _, _, ids = raster.rasterise(xy, xy, tris, (100, 100), order, with_ids=True)
    assert ids[40, 50] == 1
    xy, z, tris, sign = two_layers(-5.0, 5.0)
    order, _ = raster.draw_order(xy, z, tris, sign)
    assert order.tolist() == [1, 0]


def test_back_facing_triangle_is_drawn_first_as_filler_even_when_nearer():
    xy, z, tris, sign = two_layers(5.0, -5.0, flip_b=True)
    order, front = raster.draw_order(xy, z, tris, sign)
    assert front.tolist() == [True, False]  # the flipped one faces away
    assert order.tolist() == [1, 0]
    _, _, ids = raster.rasterise(xy, xy, tris, (100, 100), order, with_ids=True)
    assert ids[40, 50] == 0  # the front face wins although the back face is nearer
    # Alone, the back face still covers its pixels (filler, not a hole).
    _, _, ids = raster.rasterise(xy, xy, tris, (100, 100), order[:1], with_ids=True)
    assert ids[40, 50] == 1


def test_include_mask_leaves_triangles_out():
    xy, z, tris, sign = two_layers(5.0, -5.0)
    order, _ = raster.draw_order(xy, z, tris, sign, include=[True, False])
    assert order.tolist() == [0]


def test_degenerate_and_off_image_triangles_draw_nothing():
    pts = np.array([[10, 10], [20, 20], [30, 30], [-50, -50], [-10, -40], [-40, -10]], np.float32)
    mx, _, _ = raster.rasterise(pts, pts, [[0, 1, 2], [3, 4, 5]], (64, 48))
    assert mx.shape == (48, 64)
    assert (mx == raster.OUTSIDE).all()
    nan = np.array([[np.nan, 0], [10, 0], [0, 10]], np.float32)
    mx, _, _ = raster.rasterise(nan, nan, TRI, (16, 16))
    assert (mx == raster.OUTSIDE).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dst_xy": np.zeros((3, 2)), "src_xy": np.zeros((4, 2))}, "same shape"),
        ({"triangles": np.zeros((2, 2), np.int32)}, r"\(T, 3\)"),
        ({"triangles": np.array([[0, 1, 5]])}, "out of range"),
        ({"size_wh": (0, 10)}, "positive"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    args = {"dst_xy": np.zeros((3, 2)), "src_xy": np.zeros((3, 2)), "triangles": TRI, "size_wh": (8, 8)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        raster.rasterise(**args)


def test_warm_up_is_idempotent():
    raster.warm_up()
    assert raster.warm_up() < 0.5


def test_barycentric_layout_spreads_vertex_values_as_the_rasteriser_does():
    # a fan of triangles, so pixels belong to different triangles and some to none
    rng = np.random.default_rng(3)
    pts = np.array([[32, 32], [60, 10], [62, 50], [30, 62], [3, 40], [8, 6]], np.float32)
    tris = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 5]], np.int32)
    layout = raster.barycentrics(pts, tris, (64, 64))
    values = rng.normal(size=(6, 2)).astype(np.float32)
    mx, my, _ = raster.rasterise(pts, values, tris, (64, 64))
    covered = mx > raster.OUTSIDE / 2
    assert 0.3 < covered.mean() < 0.9
    for k, ref in enumerate((mx, my)):
        got = raster.interpolate(layout, values[:, k], (64, 64))
        np.testing.assert_allclose(got[covered], ref[covered], atol=1e-5)
        assert (got[~covered] == 0).all()
    # at a vertex's own pixel the value is the vertex's
    assert raster.interpolate(layout, values[:, 0], (64, 64))[32, 32] == pytest.approx(values[0, 0], abs=1e-6)


def test_triangle_normals_are_unit_oriented_and_zero_for_degenerate_triangles():
    p = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10], [5, 5, 0]], np.float64)
    tris = np.array([[0, 1, 2], [0, 1, 3], [0, 4, 4]], np.int32)
    n = raster.triangle_normals(p, tris, np.array([1.0, -1.0, 1.0]))
    np.testing.assert_allclose(n[0], [0, 0, 1])  # in the image plane, facing +z
    np.testing.assert_allclose(n[1], [0, 1, 0])  # (x) x (z) = -y, flipped by its sign
    assert (n[2] == 0).all()
