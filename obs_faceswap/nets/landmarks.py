"""Dense face landmarks: MediaPipe's 468-point mesh and the 478-point attention mesh.

The network sees a 192x192 crop: a square about 1.5x the face, rotated so the eye line is
horizontal (:class:`Roi`). The crop can come from a detection (first frame) or from the
previous frame's landmarks (tracking), which is what makes detection every k frames enough.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from obs_faceswap.geometry import LEFT_EYE, RIGHT_EYE
from obs_faceswap.runtime import RuntimeConfig, create_session
from obs_faceswap.types import FloatArray, ImageBGR


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

    Args:
        path: ``mediapipe_face_landmark_468.onnx`` or ``mediapipe_facemesh_attention_478.onnx``.
        runtime: provider preference and threads.
        points: 468 or 478 (478 = 468 refined mesh points + two 5-point irises).
    """

    size = 192

    def __init__(self, path: str | Path, runtime: RuntimeConfig | None = None, *, points: int = 468) -> None:
        self.session = create_session(path, runtime)
        self.input_name = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        self.points = points
        if "conv2d_21" in names:  # plain 468-point mesh
            self.mesh_name, self.flag_name = "conv2d_21", "conv2d_31"
            self.refine_names: list[str] = []
            if points == 478:
                raise ValueError(f"{Path(path).name} has no iris outputs; use the 478-point model")
        else:
            self.mesh_name = next(n for n in names if n.startswith("output_mesh_identity"))
            self.flag_name = next(n for n in names if n.startswith("conv_faceflag"))
            self.refine_names = names
        self.output_names = [self.mesh_name, self.flag_name]

    def infer(self, image: ImageBGR, roi: Roi) -> tuple[FloatArray, float]:
        """Landmarks of the face inside ``roi``.

        Returns:
            ``(points, presence)``: ``(468|478, 3)`` float32 in frame pixels (``z`` scaled like
            ``x``), and the face-presence probability in ``[0, 1]``.
        """
        m = roi.crop_matrix(self.size)
        crop = cv2.warpAffine(image, m, (self.size, self.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        blob = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32)[None] * (1.0 / 255.0)
        mesh, flag = self.session.run(self.output_names, {self.input_name: blob})
        pts = mesh.reshape(468, 3).astype(np.float64)
        presence = float(1.0 / (1.0 + np.exp(-float(np.ravel(flag)[0]))))
        inv = cv2.invertAffineTransform(m)
        xy = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
        scale = roi.size / self.size
        out = np.concatenate([xy, pts[:, 2:3] * scale], axis=1).astype(np.float32)
        return out, presence
