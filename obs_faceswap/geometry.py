"""Face-mesh topology, UV space and 5-point alignment: pure functions and constants.

The 468-point mesh's real topology (898 triangles) and its UV unwrap come from MediaPipe's
``canonical_face_model.obj`` (model store entry ``canonical_face``). The landmark index sets
and :func:`five_points` live in :mod:`obs_faceswap.landmark_indices` (a leaf module).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap.errors import ModelLoadError
from obs_faceswap.frame import LazyFrame, warp_image
from obs_faceswap.landmark_indices import LEFT_EYE, LIPS_INNER, RIGHT_EYE
from obs_faceswap.types import FloatArray

# --- 5-point alignment templates (fractions of the crop size) ---------------------------
TEMPLATES: dict[str, FloatArray] = {
    "arcface_112_v2": np.array(
        [
            [0.34191607, 0.46157411],
            [0.65653393, 0.45983393],
            [0.500225, 0.64050536],
            [0.37097589, 0.82469196],
            [0.63151696, 0.82325089],
        ],
        np.float32,
    ),
    "arcface_128": np.array(
        [
            [0.36167656, 0.40387734],
            [0.63696719, 0.40235469],
            [0.50019687, 0.56044219],
            [0.38710391, 0.72160547],
            [0.61507734, 0.72034453],
        ],
        np.float32,
    ),
    "arcface_112_v1": np.array(
        [
            [0.35473214, 0.45658929],
            [0.64526786, 0.45658929],
            [0.5, 0.61154464],
            [0.37913393, 0.776875],
            [0.62086607, 0.776875],
        ],
        np.float32,
    ),
    "ffhq_512": np.array(
        [
            [0.37691676, 0.46864664],
            [0.62285697, 0.46912813],
            [0.50123859, 0.61331904],
            [0.39308822, 0.72541100],
            [0.61150205, 0.72490465],
        ],
        np.float32,
    ),
    "dfl_whole_face": np.array(
        [
            [0.35342266, 0.39285716],
            [0.62797622, 0.39285716],
            [0.48660713, 0.54017860],
            [0.38839287, 0.68750011],
            [0.59821427, 0.68750011],
        ],
        np.float32,
    ),
}


def similarity_to_template(points: npt.ArrayLike, template: str, size: int) -> FloatArray:
    """Least-squares similarity (Umeyama) mapping ``points`` onto ``template * size``.

    Returns:
        ``(2, 3)`` float32 matrix for ``cv2.warpAffine(image, M, (size, size))``.
    """
    src = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    dst = TEMPLATES[template].astype(np.float64) * size
    return umeyama(src, dst).astype(np.float32)


def similarity(
    src: npt.ArrayLike, dst: npt.ArrayLike
) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Least-squares similarity (Umeyama) with ``dst ≈ scale * R @ src + t`` for (N, D) points.

    Returns:
        ``(scale, R, t)``: ``R`` a proper ``(D, D)`` rotation, ``t`` a ``(D,)`` translation.
    """
    a = np.asarray(src, np.float64)
    b = np.asarray(dst, np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    ac, bc = a - mu_a, b - mu_b
    u, sv, vt = np.linalg.svd(bc.T @ ac / len(a))
    d = np.ones(a.shape[1])
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    r = u @ np.diag(d) @ vt
    var = (ac**2).sum() / len(a)
    scale = float((sv * d).sum() / var) if var > 0 else 1.0
    return scale, r, mu_b - scale * r @ mu_a


def umeyama(src: npt.NDArray[np.float64], dst: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """2D similarity transform from ``src`` to ``dst`` as a ``(2, 3)`` matrix."""
    scale, r, t = similarity(src, dst)
    m = np.zeros((2, 3))
    m[:, :2] = scale * r
    m[:, 2] = t
    return m


def align_crop(
    image: npt.NDArray[np.uint8] | LazyFrame, points: npt.ArrayLike, template: str, size: int
) -> tuple[npt.NDArray[np.uint8], FloatArray]:
    """Warp ``image`` so the five ``points`` land on ``template``; returns (crop, matrix)."""
    m = similarity_to_template(points, template, size)
    crop = warp_image(image, m, (size, size), cv2.BORDER_REPLICATE)
    return crop, m


# --- the canonical face model -----------------------------------------------------------
@dataclass(frozen=True)
class CanonicalFace:
    """MediaPipe's canonical face: 3D vertices, per-vertex UVs and the triangle list.

    Attributes:
        vertices: ``(468, 3)`` float32 canonical 3D positions (centimetres, +y up, +z towards
            the viewer).
        uv: ``(468, 2)`` float32 texture coordinates in ``[0, 1]``, **row-down** (``v`` already
            flipped: ``uv[:, 1] = 1 - v``), so ``uv * size`` are pixel positions in a texture.
        triangles: ``(898, 3)`` int32 vertex indices (0-based).
        mirror: ``(468,)`` int32, the vertex's left/right counterpart (itself on the midline).
    """

    vertices: FloatArray
    uv: FloatArray
    triangles: npt.NDArray[np.int32]
    mirror: npt.NDArray[np.int32]

    @property
    def mouth_triangles(self) -> npt.NDArray[np.bool_]:
        """Triangles that close the mouth (all three vertices on the inner lip line)."""
        inner = np.zeros(len(self.vertices), bool)
        inner[list(LIPS_INNER)] = True
        return np.asarray(inner[self.triangles].all(axis=1))

    @property
    def eye_triangles(self) -> npt.NDArray[np.bool_]:
        """Triangles that cover an eye opening (all three vertices on an eye contour)."""
        eye = np.zeros(len(self.vertices), bool)
        eye[list(RIGHT_EYE) + list(LEFT_EYE)] = True
        return np.asarray(eye[self.triangles].all(axis=1))


def parse_obj(path: str | Path) -> CanonicalFace:
    """Read ``canonical_face_model.obj`` (``f a/b`` entries: vertex ``a`` and UV ``b`` differ).

    Raises:
        ModelLoadError: the file is not a 468-vertex face mesh with UVs.
    """
    verts: list[list[float]] = []
    uvs: list[list[float]] = []
    faces: list[tuple[int, int, int]] = []
    vert_uv: dict[int, int] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if not parts:
                    continue
                if parts[0] == "v":
                    verts.append([float(x) for x in parts[1:4]])
                elif parts[0] == "vt":
                    uvs.append([float(x) for x in parts[1:3]])
                elif parts[0] == "f":
                    idx = []
                    for tok in parts[1:4]:
                        a, b = tok.split("/")[:2]
                        vi, ti = int(a) - 1, int(b) - 1
                        vert_uv[vi] = ti
                        idx.append(vi)
                    faces.append((idx[0], idx[1], idx[2]))
    except (OSError, ValueError, IndexError) as e:
        raise ModelLoadError(f"cannot read face geometry {path}: {e}") from e
    if len(verts) != 468 or len(uvs) != 468 or len(faces) < 800 or len(vert_uv) != 468:
        raise ModelLoadError(
            f"{path} is not MediaPipe's canonical face model: {len(verts)} vertices, "
            f"{len(uvs)} UVs, {len(faces)} faces (expected 468, 468, 898)"
        )
    v = np.array(verts, np.float32)
    t = np.array(uvs, np.float32)
    uv = np.empty((468, 2), np.float32)
    for vi, ti in vert_uv.items():
        uv[vi] = (t[ti, 0], 1.0 - t[ti, 1])
    tris = np.array(faces, np.int32)
    mirrored = v * np.array([-1, 1, 1], np.float32)
    d = ((mirrored[:, None, :] - v[None, :, :]) ** 2).sum(-1)
    mirror = d.argmin(axis=1).astype(np.int32)
    return CanonicalFace(v, uv, tris, mirror)


@lru_cache(maxsize=4)
def load_canonical_face(path: str) -> CanonicalFace:
    """Cached :func:`parse_obj`."""
    return parse_obj(path)
