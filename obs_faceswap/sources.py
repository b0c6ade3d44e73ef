"""Source-photo analysis: the face a swapper is asked to become, found once per photo.

Beside :mod:`obs_faceswap.tracking` (which follows the live faces) and shared by every
swapper: the photo swapper unwraps the mesh into a texture, one-photo models align on the
five points. The result is a :class:`~obs_faceswap.swap.SourceFace`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from obs_faceswap.errors import NoFaceError
from obs_faceswap.frame import read_image
from obs_faceswap.landmark_indices import five_points
from obs_faceswap.swap.protocol import SourceFace
from obs_faceswap.types import ImageBGR

if TYPE_CHECKING:  # pragma: no cover
    from obs_faceswap.nets.detector import Detector
    from obs_faceswap.nets.landmarks import FaceMesh

#: Face-presence score below which the mesh is not trusted on a source photo.
MIN_PRESENCE = 0.5

Photo = str | Path | ImageBGR


def analyse_source(
    image: ImageBGR, detector: Detector, mesh: FaceMesh, *, name: str | Path | None = None
) -> SourceFace:
    """The largest face of a source photo, with its 468 mesh points and five alignment points.

    Detect, run the mesh on the detection's crop, then once more on a crop refined from the
    mesh itself (the detector's box is looser than the mesh's own fit).

    Args:
        image: ``(H, W, 3)`` uint8 BGR photo.
        detector: any :class:`~obs_faceswap.nets.detector.Detector` (e.g. YuNet).
        mesh: a :class:`~obs_faceswap.nets.landmarks.FaceMesh`.
        name: the photo's file name, for the error message.

    Returns:
        The analysed face; ``landmarks`` are ``(468, 3)`` float32 in the photo's pixels.

    Raises:
        NoFaceError: no face was found (or the mesh does not see one); the message names
            the photo and says what photo to use instead.
    """
    from obs_faceswap.nets.landmarks import Roi

    what = f"source photo {name}" if name else "source photo"
    dets = detector.detect(image)
    if len(dets) == 0:
        raise NoFaceError(f"no face found in the {what}; use a photo with one clear, frontal face")
    i = int(np.argmax(dets.areas))
    pts, _ = mesh.infer(image, Roi.from_keypoints(dets.xyxy[i], dets.keypoints[i]))
    pts, presence = mesh.infer(image, Roi.from_landmarks(pts))
    if presence < MIN_PRESENCE:
        raise NoFaceError(
            f"the face in the {what} is not clear enough for the face mesh "
            f"(presence {presence:.2f}); use a sharper, more frontal photo"
        )
    landmarks = np.ascontiguousarray(pts[:468], np.float32)
    return SourceFace(image, landmarks, five_points(landmarks), None if name is None else str(name))


def analyse_sources(photos: Photo | Sequence[Photo], detector: Detector, mesh: FaceMesh) -> list[SourceFace]:
    """:func:`analyse_source` for one photo or several (paths or BGR images), in order.

    Raises:
        InputError: a file cannot be read as an image.
        FrameFormatError: an image is not ``(H, W, 3)`` uint8.
        NoFaceError: a photo has no usable face (the message names it).
    """
    from obs_faceswap.nets.detector import check_image

    items: Sequence[Photo] = photos if isinstance(photos, (list, tuple)) else [photos]  # type: ignore[list-item]
    out = []
    for photo in items:
        if isinstance(photo, (str, Path)):
            image, name = read_image(photo), str(photo)
        else:
            image, name = photo, None
        check_image(image)
        out.append(analyse_source(image, detector, mesh, name=name))
    return out
