"""Dense face landmarks: MediaPipe's 468-point mesh and the 478-point attention mesh.

The network sees a 192x192 crop: a square about 1.5x the face, rotated so the eye line is
horizontal (:class:`Roi`). The crop can come from a detection (first frame) or from the
previous frame's landmarks (tracking), which is what makes detection every k frames enough.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap.config import LandmarkConfig, RuntimeConfig
from obs_faceswap.errors import ModelLoadError, ModelNotFoundError
from obs_faceswap.frame import LazyFrame, warp_image
from obs_faceswap.landmark_indices import LEFT_EYE, RIGHT_EYE
from obs_faceswap.model_specs import MeshSpec, check_input, check_outputs
from obs_faceswap.nets.detector import check_image
from obs_faceswap.runtime import create_session
from obs_faceswap.types import FloatArray, ImageBGR

if TYPE_CHECKING:  # pragma: no cover
    from obs_faceswap.models import ModelStore

log = logging.getLogger(__name__)

# --- MediaPipe's refinement of the attention mesh ----------------------------------------
# Index maps of LandmarksRefinementCalculator in MediaPipe's
# mediapipe/modules/face_landmark/tensors_to_face_landmarks_with_attention.pbtxt: point i of
# each attention output replaces mesh point MAP[i]. MediaPipe's "left eye" output is the
# subject's right eye (mesh 33..133, the image-left eye of an unmirrored face).
LIPS_REFINEMENT = (
    # lower outer
    61,
    146,
    91,
    181,
    84,
    17,
    314,
    405,
    321,
    375,
    291,
    # upper outer (excluding corners)
    185,
    40,
    39,
    37,
    0,
    267,
    269,
    270,
    409,
    # lower inner
    78,
    95,
    88,
    178,
    87,
    14,
    317,
    402,
    318,
    324,
    308,
    # upper inner (excluding corners)
    191,
    80,
    81,
    82,
    13,
    312,
    311,
    310,
    415,
    # lower semi-outer
    76,
    77,
    90,
    180,
    85,
    16,
    315,
    404,
    320,
    307,
    306,
    # upper semi-outer (excluding corners)
    184,
    74,
    73,
    72,
    11,
    302,
    303,
    304,
    408,
    # lower semi-inner
    62,
    96,
    89,
    179,
    86,
    15,
    316,
    403,
    319,
    325,
    292,
    # upper semi-inner (excluding corners)
    183,
    42,
    41,
    38,
    12,
    268,
    271,
    272,
    407,
)
LEFT_EYE_REFINEMENT = (
    # lower contour
    33,
    7,
    163,
    144,
    145,
    153,
    154,
    155,
    133,
    # upper contour (excluding corners)
    246,
    161,
    160,
    159,
    158,
    157,
    173,
    # halo x2 lower contour
    130,
    25,
    110,
    24,
    23,
    22,
    26,
    112,
    243,
    # halo x2 upper contour (excluding corners)
    247,
    30,
    29,
    27,
    28,
    56,
    190,
    # halo x3 lower contour
    226,
    31,
    228,
    229,
    230,
    231,
    232,
    233,
    244,
    # halo x3 upper contour (excluding corners)
    113,
    225,
    224,
    223,
    222,
    221,
    189,
    # halo x4 upper contour or eyebrow inner contour
    35,
    124,
    46,
    53,
    52,
    65,
    # halo x5 lower contour
    143,
    111,
    117,
    118,
    119,
    120,
    121,
    128,
    245,
    # halo x5 upper contour (excluding corners) or eyebrow outer contour
    156,
    70,
    63,
    105,
    66,
    107,
    55,
    193,
)
RIGHT_EYE_REFINEMENT = (
    # lower contour
    263,
    249,
    390,
    373,
    374,
    380,
    381,
    382,
    362,
    # upper contour (excluding corners)
    466,
    388,
    387,
    386,
    385,
    384,
    398,
    # halo x2 lower contour
    359,
    255,
    339,
    254,
    253,
    252,
    256,
    341,
    463,
    # halo x2 upper contour (excluding corners)
    467,
    260,
    259,
    257,
    258,
    286,
    414,
    # halo x3 lower contour
    446,
    261,
    448,
    449,
    450,
    451,
    452,
    453,
    464,
    # halo x3 upper contour (excluding corners)
    342,
    445,
    444,
    443,
    442,
    441,
    413,
    # halo x4 upper contour or eyebrow inner contour
    265,
    353,
    276,
    283,
    282,
    295,
    # halo x5 lower contour
    372,
    340,
    346,
    347,
    348,
    349,
    350,
    357,
    465,
    # halo x5 upper contour (excluding corners) or eyebrow outer contour
    383,
    300,
    293,
    334,
    296,
    336,
    285,
    417,
)
#: Iris points are appended: "left" iris (centre, right, top, left, bottom edge) → 468..472,
#: "right" iris → 473..477. Their z is the mean z of the eye's contour (first 16 points of
#: the eye's map: lower contour and upper contour), as MediaPipe's ``assign_average``.
LEFT_IRIS_INDICES = (468, 469, 470, 471, 472)
RIGHT_IRIS_INDICES = (473, 474, 475, 476, 477)
LEFT_EYE_CONTOUR = LEFT_EYE_REFINEMENT[:16]
RIGHT_EYE_CONTOUR = RIGHT_EYE_REFINEMENT[:16]
#: Mesh indices each refinement output replaces, in MediaPipe's order (the order the
#: manifest's ``mesh478`` entry lists its outputs after the mesh and the presence flag).
REFINEMENTS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("lips", LIPS_REFINEMENT),
    ("left eye", LEFT_EYE_REFINEMENT),
    ("right eye", RIGHT_EYE_REFINEMENT),
    ("left iris", LEFT_IRIS_INDICES),
    ("right iris", RIGHT_IRIS_INDICES),
)
#: Names the user sees for a landmark file they chose.
SETTING = "landmarks.model, --landmarks-model"


@dataclass(frozen=True)
class Roi:
    """A rotated square in frame pixels: centre, side length and rotation (radians).

    ``angle`` is the angle of the eye line (image-left eye → image-right eye) against the x
    axis; the crop rotates by ``-angle`` so the eyes come out level.
    """

    cx: float
    cy: float
    size: float
    angle: float

    def crop_matrix(self, out: int) -> npt.NDArray[np.float64]:
        """``(2, 3)`` affine mapping frame pixels → ``out`` x ``out`` crop pixels."""
        s = out / self.size
        c, sn = math.cos(-self.angle) * s, math.sin(-self.angle) * s
        m = np.array([[c, -sn, 0.0], [sn, c, 0.0]])
        m[:, 2] = np.array([out / 2, out / 2]) - m[:, :2] @ np.array([self.cx, self.cy])
        return m

    @classmethod
    def from_keypoints(cls, xyxy: npt.ArrayLike, keypoints: npt.ArrayLike, scale: float = 1.5) -> Roi:
        """ROI from a detection box and its five keypoints (eyes first)."""
        b = np.asarray(xyxy, np.float64)
        k = np.asarray(keypoints, np.float64)
        d = k[1] - k[0]
        angle = math.atan2(d[1], d[0])
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        size = max(b[2] - b[0], b[3] - b[1]) * scale
        return cls(float(cx), float(cy), float(size), float(angle))

    @classmethod
    def from_landmarks(cls, landmarks: npt.ArrayLike, scale: float = 1.5) -> Roi:
        """ROI for the next frame from this frame's mesh points."""
        lm = np.asarray(landmarks, np.float64)[:, :2]
        d = lm[list(LEFT_EYE)].mean(axis=0) - lm[list(RIGHT_EYE)].mean(axis=0)
        angle = math.atan2(d[1], d[0])
        c, s = math.cos(-angle), math.sin(-angle)
        rot = lm @ np.array([[c, s], [-s, c]])
        lo, hi = rot.min(axis=0), rot.max(axis=0)
        mid = (lo + hi) / 2
        centre = mid @ np.array([[c, -s], [s, c]])
        size = float(max(hi - lo)) * scale
        return cls(float(centre[0]), float(centre[1]), size, float(angle))


class FaceMesh:
    """MediaPipe face mesh on a rotated crop.

    With the plain model (``mediapipe_face_landmark_468.onnx``) the output is the 468-point
    mesh. With the attention model (``mediapipe_facemesh_attention_478.onnx``) and
    ``points=478`` the mesh is refined as MediaPipe's ``LandmarksRefinementCalculator`` does:
    the 80 lip points and the 71 points around each eye (eyelids, halos, eyebrows) replace
    their mesh points (x, y only; z stays the mesh's), and the two 5-point irises are
    appended as points 468..477 with the mean z of their eye's contour.

    Args:
        path: ``mediapipe_face_landmark_468.onnx`` or ``mediapipe_facemesh_attention_478.onnx``.
        runtime: provider preference and threads.
        spec: the manifest's facts: input size, colour order, normalisation, points (468, or
            478 = refined mesh + two 5-point irises, attention model only), crop scale (read
            by the tracker for :meth:`Roi.from_keypoints` / :meth:`Roi.from_landmarks`) and
            outputs. Defaults to the ``mesh468`` entry.

    Raises:
        ModelLoadError: the file's input or outputs differ from the spec's (e.g. a plain mesh
            file for 478 points).
    """

    def __init__(self, path: str | Path, runtime: RuntimeConfig | None = None, spec: MeshSpec | None = None) -> None:
        from obs_faceswap.models import default_spec

        self.spec = spec = spec or default_spec("mesh468", MeshSpec)
        h, w = spec.input_hw
        if h != w or h <= 0:
            raise ModelLoadError(
                f"manifest entry {spec.name!r}: the face mesh needs a fixed square input, "
                f"got input {list(spec.input_hw)}"
            )
        self.size = h
        self.points = spec.points
        self.crop_scale = spec.crop_scale
        self.session = create_session(path, runtime)
        check_input(self.session, spec, path, SETTING)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = check_outputs(self.session, spec, path, SETTING)
        self.refine = spec.points == 478
        self._swap_rb = spec.color == "RGB"
        self._mean = np.array(spec.mean, np.float32) if any(spec.mean) else None
        self._scale = np.array([1.0 / s for s in spec.std], np.float32)

    def _blob(self, crop: ImageBGR) -> npt.NDArray[np.float32]:
        """``value = (pixel - mean) / std`` in the spec's colour order and layout, batch of one."""
        x = (cv2.cvtColor(crop, cv2.COLOR_BGR2RGB) if self._swap_rb else crop).astype(np.float32)
        if self._mean is not None:
            x -= self._mean
        x *= self._scale  # in place: a broadcast into a new batch array cost 2.6x the whole
        return np.ascontiguousarray(x[None].transpose(0, 3, 1, 2)) if self.spec.layout == "NCHW" else x[None]

    def infer(self, image: ImageBGR | LazyFrame, roi: Roi) -> tuple[FloatArray, float]:
        """Landmarks of the face inside ``roi``.

        Args:
            image: ``(H, W, 3)`` uint8 BGR frame.
            roi: the rotated square to look in.

        Returns:
            ``(points, presence)``: ``(468|478, 3)`` float32 in frame pixels (``z`` scaled like
            ``x``), and the face-presence probability in ``[0, 1]``.

        Raises:
            FrameFormatError: ``image`` is not ``(H, W, 3)`` uint8.
        """
        check_image(image)
        m = roi.crop_matrix(self.size)
        crop = warp_image(image, m, (self.size, self.size))
        outs = self.session.run(self.output_names, {self.input_name: self._blob(crop)})
        pts = np.asarray(outs[0], np.float64).reshape(468, 3)
        if self.refine:
            pts = refine_mesh(pts, outs[2:])
        logit = float(np.clip(np.ravel(outs[1])[0], -80.0, 80.0))
        presence = 1.0 / (1.0 + math.exp(-logit))
        inv = cv2.invertAffineTransform(m)
        xy = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
        scale = roi.size / self.size
        out = np.concatenate([xy, pts[:, 2:3] * scale], axis=1).astype(np.float32)
        return out, presence


def refine_mesh(mesh: npt.ArrayLike, parts: list[npt.NDArray[np.float32]]) -> npt.NDArray[np.float64]:
    """MediaPipe's refinement of a 468-point mesh with the attention model's 2D outputs.

    Args:
        mesh: ``(468, 3)`` mesh points (crop pixels).
        parts: lips ``(80, 2)``, left eye ``(71, 2)``, right eye ``(71, 2)``, left iris
            ``(5, 2)``, right iris ``(5, 2)`` in the order of :data:`REFINEMENTS` (any shape
            holding those many ``(x, y)`` pairs).

    Returns:
        ``(478, 3)`` float64 refined points.
    """
    out = np.zeros((478, 3), np.float64)
    out[:468] = np.asarray(mesh, np.float64).reshape(468, 3)
    if len(parts) != len(REFINEMENTS):
        raise ModelLoadError(f"expected {len(REFINEMENTS)} refinement outputs, got {len(parts)}")
    for (prefix, idx), part in zip(REFINEMENTS, parts, strict=True):
        xy = np.asarray(part, np.float64).reshape(-1, 2)
        if len(xy) != len(idx):
            raise ModelLoadError(f"{prefix} has {len(xy)} points, expected {len(idx)}")
        out[list(idx), :2] = xy
    out[list(LEFT_IRIS_INDICES), 2] = out[list(LEFT_EYE_CONTOUR), 2].mean()
    out[list(RIGHT_IRIS_INDICES), 2] = out[list(RIGHT_EYE_CONTOUR), 2].mean()
    return out


def create_landmarker(config: LandmarkConfig, store: ModelStore, runtime: RuntimeConfig | None = None) -> FaceMesh:
    """Build the face mesh ``config.kind`` names (``mesh468`` or ``mesh478``).

    ``config.model`` (a path) replaces the manifest's file; the entry's facts (points, crop
    scale, normalisation, signature) still apply.

    Raises:
        ModelNotFoundError: ``config.model`` does not exist, or the default file is missing.
        ModelCorruptError: the default file fails verification.
        ModelLoadError: the file's input or outputs differ from the entry's.
    """
    spec = store.mesh_spec(config.kind)
    if config.model:
        path = Path(config.model).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(f"landmark model {path} not found (landmarks.model)")
    else:
        path = store.path(config.kind)
    log.info("landmarks %s: %s (%d points)", config.kind, path.name, spec.points)
    return FaceMesh(path, runtime, spec)
