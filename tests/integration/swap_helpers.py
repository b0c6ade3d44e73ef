"""Shared pieces of the swap integration tests: a plain detect → mesh loop and the video.

Until a test needs the full :class:`~obs_faceswap.pipeline.Pipeline`, faces come from
YuNet + the 468-point mesh run directly: detect on every frame, crop from the detection's
keypoints, then one refinement pass with a crop fitted to the mesh itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from obs_faceswap.nets.detector import YuNet
from obs_faceswap.nets.landmarks import FaceMesh, Roi


class FaceFinder:
    """The largest face's 468 mesh points in an image, or None."""

    def __init__(self, store) -> None:
        self.detector = YuNet(store.path("yunet"))
        self.mesh = FaceMesh(store.path("mesh468"))

    def all(self, image: np.ndarray) -> list[np.ndarray]:
        dets = self.detector.detect(image)
        out = []
        for i in np.argsort(-dets.areas):
            pts, _ = self.mesh.infer(image, Roi.from_keypoints(dets.xyxy[i], dets.keypoints[i]))
            pts, presence = self.mesh.infer(image, Roi.from_landmarks(pts))
            if presence >= 0.5:
                out.append(pts)
        return out

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        faces = self.all(image)
        return faces[0] if faces else None


def video_frames(path: Path, step: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """(index, BGR frame) for every ``step``-th frame of a video."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    try:
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            if i % step == 0:
                yield i, frame
            i += 1
    finally:
        cap.release()
