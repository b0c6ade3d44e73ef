"""The photo swapper's lighting fit: live lighting is carried over, live features are not."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from obs_faceswap.swap.meshwarp import _lighting_fit

N = 64


def hemisphere() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Unit normals of a hemisphere facing the camera, unwrapped on an N x N grid, and where it is."""
    v, u = (np.mgrid[0:N, 0:N].astype(np.float32) + 0.5) / N * 2 - 1
    r2 = u * u + v * v
    inside = (r2 < 0.95).astype(np.float32)
    z = np.sqrt(np.clip(1 - r2, 0, 1))
    normals = np.stack([u, v, z], axis=-1)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    return normals.astype(np.float32), inside


def field(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.repeat(values[..., None], 3, axis=-1).astype(np.float32)


def test_a_lamp_at_one_side_is_fitted() -> None:
    """L* offsets of a light from the left and above (Lambert on the normals) plus skin grain."""
    normals, inside = hemisphere()
    light = np.array([-0.6, -0.3, 0.74], np.float32)
    shading = 20 * np.clip(normals @ light, 0, None) - 8
    grain = np.random.default_rng(0).normal(0, 2, shading.shape).astype(np.float32)
    fit = _lighting_fit(field(shading + grain), inside, normals)
    err = np.abs(fit[..., 0] - shading)[inside > 0]
    assert float(np.median(err)) < 0.6 and float(np.percentile(err, 95)) < 2.0
    # brighter towards the lamp, as the live face was
    assert fit[N // 2, N // 4, 0] > fit[N // 2, 3 * N // 4, 0] + 8


def test_the_live_faces_own_features_are_not_carried() -> None:
    """A cheekbone highlight (a bump a tenth of the face wide) is the live person's shape,
    not the light: the fit keeps little of it."""
    normals, inside = hemisphere()
    v, u = np.mgrid[0:N, 0:N].astype(np.float32)
    bump = 10 * np.exp(-((u - 0.7 * N) ** 2 + (v - 0.55 * N) ** 2) / (2 * (0.05 * N) ** 2))
    fit = _lighting_fit(field(bump.astype(np.float32)), inside, normals)
    assert float(np.abs(fit[..., 0]).max()) < 3.0


def test_where_nothing_is_seen_the_fit_stays_bounded() -> None:
    """Half the face hidden (a hand, a profile): the other half is not extrapolated wildly."""
    normals, inside = hemisphere()
    seen = inside.copy()
    seen[:, N // 2 :] = 0
    rng = np.random.default_rng(1)
    values = rng.normal(0, 3, (N, N)).astype(np.float32) + 5
    fit = _lighting_fit(field(values), seen, normals)
    assert float(np.abs(fit[..., 0][inside > 0] - 5).max()) < 6.0


def test_with_next_to_nothing_seen_there_is_no_field_and_no_error() -> None:
    """A face all but hidden (a hand over it): no light is fitted to a handful of texels."""
    normals, inside = hemisphere()
    values = field(np.full((N, N), 7.0, np.float32))
    assert not _lighting_fit(values, np.zeros_like(inside), normals).any()
    few = np.zeros_like(inside)
    few[N // 2, N // 2 : N // 2 + 5] = 1
    assert not _lighting_fit(values, few, normals).any()
