"""Compiled scanline triangle rasteriser that writes ``cv2.remap`` maps.

One rasteriser serves both directions of the photo swap: unwrapping the source photo into
the mesh's UV texture (destination = UV x texture size, source = photo landmarks) and
rendering that texture onto the live mesh (destination = live landmarks, source = UV x
texture size). For every destination pixel covered by a triangle it writes the source
position given by that triangle's affine map; a single ``cv2.remap`` then does all the
resampling. This is ~25x faster than one ``warpAffine`` per triangle (Python call
overhead x 898 triangles, see docs/performance-facts.md).

Conventions: pixel centres sit at integer coordinates (OpenCV's ``warpAffine``/``remap``
convention); a pixel is covered when its centre lies inside the triangle (edges included).
Uncovered pixels get :data:`OUTSIDE` in both maps, which ``cv2.remap`` with
``BORDER_CONSTANT`` turns into transparent black.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import numpy.typing as npt
from numba import njit

from obs_faceswap.types import FloatArray

log = logging.getLogger(__name__)

#: Map value of uncovered pixels: far outside any texture, so ``remap`` samples the border.
OUTSIDE = -1.0e4

IntArray = npt.NDArray[np.int32]


@njit(cache=True, nogil=True)
def _rasterise(
    dst: npt.NDArray[np.float32],
    src: npt.NDArray[np.float32],
    tris: npt.NDArray[np.int32],
    order: npt.NDArray[np.int32],
    map_x: npt.NDArray[np.float32],
    map_y: npt.NDArray[np.float32],
    tri_id: npt.NDArray[np.int32],
    write_id: bool,
) -> int:
    h, w = map_x.shape
    for i in range(h):
        for j in range(w):
            map_x[i, j] = OUTSIDE
            map_y[i, j] = OUTSIDE
            if write_id:
                tri_id[i, j] = -1
    drawn = 0
    for k in range(order.shape[0]):
        t = order[k]
        i0, i1, i2 = tris[t, 0], tris[t, 1], tris[t, 2]
        x0, y0 = np.float64(dst[i0, 0]), np.float64(dst[i0, 1])
        x1, y1 = np.float64(dst[i1, 0]), np.float64(dst[i1, 1])
        x2, y2 = np.float64(dst[i2, 0]), np.float64(dst[i2, 1])
        det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if not (abs(det) > 1e-9):  # also rejects NaN
            continue
        # Affine map destination → source from the three vertex pairs (barycentric form).
        u0, v0 = np.float64(src[i0, 0]), np.float64(src[i0, 1])
        u1, v1 = np.float64(src[i1, 0]), np.float64(src[i1, 1])
        u2, v2 = np.float64(src[i2, 0]), np.float64(src[i2, 1])
        inv = 1.0 / det
        # d(src)/dx and d(src)/dy
        ax = ((u1 - u0) * (y2 - y0) - (u2 - u0) * (y1 - y0)) * inv
        ay = ((u2 - u0) * (x1 - x0) - (u1 - u0) * (x2 - x0)) * inv
        bx = ((v1 - v0) * (y2 - y0) - (v2 - v0) * (y1 - y0)) * inv
        by = ((v2 - v0) * (x1 - x0) - (v1 - v0) * (x2 - x0)) * inv
        # Sort vertices by y so every edge is walked top → bottom: a shared edge then gives
        # bit-identical x intersections in both of its triangles (no cracks).
        ax0, ay0, ax1, ay1, ax2, ay2 = x0, y0, x1, y1, x2, y2
        if ay0 > ay1:
            ax0, ay0, ax1, ay1 = ax1, ay1, ax0, ay0
        if ay1 > ay2:
            ax1, ay1, ax2, ay2 = ax2, ay2, ax1, ay1
        if ay0 > ay1:
            ax0, ay0, ax1, ay1 = ax1, ay1, ax0, ay0
        ystart = max(int(np.ceil(ay0)), 0)
        yend = min(int(np.floor(ay2)), h - 1)
        if ystart > yend:
            continue
        drawn += 1
        for y in range(ystart, yend + 1):
            fy = np.float64(y)
            # long edge 0→2
            xa = ax0 + (fy - ay0) * (ax2 - ax0) / (ay2 - ay0)
            if fy < ay1:
                xb = ax0 + (fy - ay0) * (ax1 - ax0) / (ay1 - ay0)
            elif ay2 > ay1:
                xb = ax1 + (fy - ay1) * (ax2 - ax1) / (ay2 - ay1)
            else:  # flat bottom edge lying exactly on this row
                xb = ax1
            if xa > xb:
                xa, xb = xb, xa
            xs = max(int(np.ceil(xa)), 0)
            xe = min(int(np.floor(xb)), w - 1)
            if xs > xe:
                continue
            sx = u0 + ax * (xs - x0) + ay * (fy - y0)
            sy = v0 + bx * (xs - x0) + by * (fy - y0)
            for x in range(xs, xe + 1):
                map_x[y, x] = sx
                map_y[y, x] = sy
                if write_id:
                    tri_id[y, x] = t
                sx += ax
                sy += bx
    return drawn


def rasterise(
    dst_xy: npt.ArrayLike,
    src_xy: npt.ArrayLike,
    triangles: npt.ArrayLike,
    size_wh: tuple[int, int],
    order: npt.ArrayLike | None = None,
    *,
    with_ids: bool = False,
) -> tuple[FloatArray, FloatArray, IntArray | None]:
    """Remap maps that carry every destination triangle's pixels to its source triangle.

    Args:
        dst_xy: ``(V, 2)`` vertex positions in the output, pixels (float).
        src_xy: ``(V, 2)`` positions of the same vertices in the image to sample, pixels.
        triangles: ``(T, 3)`` vertex indices.
        size_wh: output ``(width, height)``.
        order: triangle indices to draw, first drawn first (later ones overwrite earlier
            ones where they overlap); default: all in list order.
        with_ids: also return the id of the triangle that owns each pixel.

    Returns:
        ``(map_x, map_y, ids)``: ``(H, W)`` float32 maps for ``cv2.remap`` (uncovered pixels
        hold :data:`OUTSIDE`) and, if asked, ``(H, W)`` int32 triangle ids (-1 = none).
    """
    w, h = int(size_wh[0]), int(size_wh[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"output size must be positive, got {size_wh}")
    dst = np.ascontiguousarray(dst_xy, dtype=np.float32)[:, :2]
    src = np.ascontiguousarray(src_xy, dtype=np.float32)[:, :2]
    tris = np.ascontiguousarray(triangles, dtype=np.int32)
    if dst.shape != src.shape:
        raise ValueError(f"dst_xy {dst.shape} and src_xy {src.shape} must have the same shape")
    if tris.ndim != 2 or tris.shape[1] != 3:
        raise ValueError(f"triangles must be (T, 3), got {tris.shape}")
    if len(tris) and (tris.min() < 0 or tris.max() >= len(dst)):
        raise ValueError(f"triangle indices out of range for {len(dst)} vertices")
    ordr = np.arange(len(tris), dtype=np.int32) if order is None else np.ascontiguousarray(order, dtype=np.int32)
    map_x = np.empty((h, w), np.float32)
    map_y = np.empty((h, w), np.float32)
    ids = np.empty((h, w) if with_ids else (1, 1), np.int32)
    _rasterise(np.ascontiguousarray(dst), np.ascontiguousarray(src), tris, ordr, map_x, map_y, ids, with_ids)
    return map_x, map_y, (ids if with_ids else None)


def barycentrics(
    dst_xy: npt.ArrayLike, triangles: npt.ArrayLike, size_wh: tuple[int, int]
) -> tuple[IntArray, npt.NDArray[np.float32]]:
    """For a fixed layout (the UV space): every output pixel's three vertices and weights.

    With them, :func:`interpolate` spreads per-vertex values over the layout as
    :func:`rasterise` would (the same triangle owns each pixel; the same affine blend, to float
    rounding) at the cost of a gather, for layouts that are filled with new values every
    frame.

    Returns:
        ``(vertices, weights)``: ``(H * W, 3)`` int32 and float32; a pixel that no triangle
        covers has weights 0 (its value is 0).
    """
    w, h = int(size_wh[0]), int(size_wh[1])
    dst = np.asarray(dst_xy, np.float64)[:, :2]
    tris = np.asarray(triangles, np.int32)
    _, _, ids = rasterise(dst, dst, tris, (w, h), with_ids=True)
    assert ids is not None
    flat = ids.ravel()
    covered = flat >= 0
    verts = np.zeros((h * w, 3), np.int32)
    weights = np.zeros((h * w, 3), np.float32)
    t = tris[flat[covered]]
    p0, p1, p2 = dst[t[:, 0]], dst[t[:, 1]], dst[t[:, 2]]
    ys, xs = np.divmod(np.flatnonzero(covered), w)
    det = (p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p2[:, 0] - p0[:, 0]) * (p1[:, 1] - p0[:, 1])
    dx, dy = xs - p0[:, 0], ys - p0[:, 1]
    l1 = (dx * (p2[:, 1] - p0[:, 1]) - (p2[:, 0] - p0[:, 0]) * dy) / det
    l2 = ((p1[:, 0] - p0[:, 0]) * dy - dx * (p1[:, 1] - p0[:, 1])) / det
    verts[covered] = t
    weights[covered] = np.stack([1.0 - l1 - l2, l1, l2], axis=1)
    return verts, weights


@njit(cache=True, nogil=True)
def _spread(
    verts: npt.NDArray[np.int32], weights: npt.NDArray[np.float32], values: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    out = np.empty(verts.shape[0], np.float32)
    for i in range(verts.shape[0]):
        out[i] = (
            values[verts[i, 0]] * weights[i, 0]
            + values[verts[i, 1]] * weights[i, 1]
            + values[verts[i, 2]] * weights[i, 2]
        )
    return out


def interpolate(
    layout: tuple[IntArray, npt.NDArray[np.float32]], values: npt.ArrayLike, size_wh: tuple[int, int]
) -> npt.NDArray[np.float32]:
    """``(H, W)`` image of per-vertex ``values`` (``(V,)``) spread over a :func:`barycentrics`
    layout."""
    verts, weights = layout
    w, h = int(size_wh[0]), int(size_wh[1])
    return _spread(verts, weights, np.ascontiguousarray(values, np.float32)).reshape(h, w)


@njit(cache=True, nogil=True)
def _normals(
    p: npt.NDArray[np.float64], tris: npt.NDArray[np.int32], sign: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    out = np.empty((tris.shape[0], 3), np.float64)
    for k in range(tris.shape[0]):
        a, b, c = tris[k, 0], tris[k, 1], tris[k, 2]
        ux, uy, uz = p[b, 0] - p[a, 0], p[b, 1] - p[a, 1], p[b, 2] - p[a, 2]
        vx, vy, vz = p[c, 0] - p[a, 0], p[c, 1] - p[a, 1], p[c, 2] - p[a, 2]
        cx = uy * vz - uz * vy
        cy = uz * vx - ux * vz
        cz = ux * vy - uy * vx
        area = max(np.sqrt(cx * cx + cy * cy + cz * cz), 1e-9)
        out[k, 0], out[k, 1], out[k, 2] = cx * sign[k] / area, cy * sign[k] / area, cz * sign[k] / area
    return out


def triangle_normals(points: npt.ArrayLike, triangles: npt.ArrayLike, sign: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``(T, 3)`` unit normals (the cross product of each triangle's edges 0→1 and 0→2, times
    ``sign``) of ``(V, 3)`` points; degenerate triangles give 0."""
    p = np.ascontiguousarray(np.asarray(points, np.float64)[:, :3])
    return _normals(p, np.ascontiguousarray(triangles, np.int32), np.ascontiguousarray(sign, np.float64))


@njit(cache=True, nogil=True)
def _twice_area(p: npt.NDArray[np.float64], a: int, b: int, c: int) -> float:
    return float((p[b, 0] - p[a, 0]) * (p[c, 1] - p[a, 1]) - (p[b, 1] - p[a, 1]) * (p[c, 0] - p[a, 0]))


@njit(cache=True, nogil=True)
def _areas(p: npt.NDArray[np.float64], tris: npt.NDArray[np.int32]) -> npt.NDArray[np.float64]:
    out = np.empty(tris.shape[0], np.float64)
    for k in range(tris.shape[0]):
        out[k] = _twice_area(p, tris[k, 0], tris[k, 1], tris[k, 2])
    return out


def signed_areas(xy: npt.ArrayLike, triangles: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``(T,)`` twice the signed area of each triangle (positive = counter-clockwise with y down)."""
    p = np.ascontiguousarray(np.asarray(xy, np.float64)[:, :2])
    areas: npt.NDArray[np.float64] = _areas(p, np.ascontiguousarray(triangles, np.int32))
    return areas


@njit(cache=True, nogil=True)
def _front_depth(
    p: npt.NDArray[np.float64], z: npt.NDArray[np.float64], tris: npt.NDArray[np.int32], sign: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """Per triangle: whether its signed area (:func:`signed_areas`) has ``sign``'s sign, and its
    mean vertex depth."""
    n = tris.shape[0]
    front = np.empty(n, np.bool_)
    depth = np.empty(n, np.float64)
    for k in range(n):
        a, b, c = tris[k, 0], tris[k, 1], tris[k, 2]
        front[k] = np.sign(_twice_area(p, a, b, c)) == sign[k]
        depth[k] = (z[a] + z[b] + z[c]) / 3.0
    return front, depth


def draw_order(
    dst_xy: npt.ArrayLike,
    z: npt.ArrayLike,
    triangles: npt.ArrayLike,
    reference_sign: npt.ArrayLike,
    include: npt.ArrayLike | None = None,
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Painter's order with back-face handling for a depth mesh.

    A triangle faces the camera when its signed area in the output has the same sign as in
    the reference layout (the UV space). Back-facing triangles are drawn first, as filler:
    about ten of MediaPipe's triangles fail the test even on a frontal face and leaving
    them out opens holes (nostril slivers). Each group is drawn far → near (MediaPipe's z:
    smaller is closer), so near front faces end on top.

    Args:
        dst_xy: ``(V, 2)`` output vertex positions.
        z: ``(V,)`` vertex depth, smaller = closer.
        triangles: ``(T, 3)`` vertex indices.
        reference_sign: ``(T,)`` sign (+1/-1) of each triangle's area in the reference layout.
        include: optional ``(T,)`` bool, triangles allowed to be drawn at all.

    Returns:
        ``(order, front)``: int32 indices to draw in order, and the ``(T,)`` bool front mask.
    """
    tris = np.ascontiguousarray(triangles, np.int32)
    front, depth = _front_depth(
        np.ascontiguousarray(np.asarray(dst_xy, np.float64)[:, :2]),
        np.ascontiguousarray(z, np.float64),
        tris,
        np.ascontiguousarray(reference_sign, np.float64),
    )
    # Back faces first (key 0), then front faces (key 1); inside each, far (large z) first.
    keys = np.lexsort((-depth, front))
    if include is not None:
        keys = keys[np.asarray(include, bool)[keys]]
    return keys.astype(np.int32), front


_warm = False


def warm_up() -> float:
    """Compile (or load from the on-disk cache) the rasteriser; returns the seconds it took.

    The first call of a numba function costs 3-4 s of JIT compilation; callers do this at
    start-up so the first live frame does not stall.
    """
    global _warm
    t0 = time.perf_counter()
    if not _warm:
        tri = np.array([[0, 1, 2]], np.int32)
        pts = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]], np.float32)
        rasterise(pts, pts, tri, (4, 4), with_ids=True)
        interpolate(barycentrics(pts, tri, (4, 4)), np.zeros(3, np.float32), (4, 4))
        triangle_normals(np.zeros((3, 3)), tri, np.ones(1))
        draw_order(pts, np.zeros(3), tri, np.ones(1))
        signed_areas(pts, tri)
        _warm = True
    dt = time.perf_counter() - t0
    log.debug("rasteriser ready in %.2f s", dt)
    return dt
