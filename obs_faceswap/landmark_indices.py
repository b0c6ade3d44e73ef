"""Landmark index sets of MediaPipe's face mesh and the five alignment points.

A leaf module (numpy only), so that the data types (:mod:`obs_faceswap.types`), geometry and
the nets can all use it without importing each other. Index lists are MediaPipe's published
face-mesh connections (``face_mesh_connections.py``); "RIGHT"/"LEFT" are the *subject's*
sides, so on an unmirrored photo the subject's right eye is on the image left.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# --- landmark index sets of the 468-point mesh ------------------------------------------
FACE_OVAL = (
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
)
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
LIPS_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
RIGHT_EYEBROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_EYEBROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
# Skin patches used for colour statistics: below the eyes, beside the nose, above the jaw.
RIGHT_CHEEK = (116, 117, 118, 100, 126, 142, 203, 206, 216, 207, 187, 123)
LEFT_CHEEK = (345, 346, 347, 329, 355, 371, 423, 426, 436, 427, 411, 352)
NOSE_TIP = 1
MOUTH_RIGHT_CORNER = 61  # subject's right = image left
MOUTH_LEFT_CORNER = 291
# In the 478-point layout, points 468..472 are the subject's right iris (centre first),
# 473..477 the left iris.
RIGHT_IRIS = (468, 469, 470, 471, 472)
LEFT_IRIS = (473, 474, 475, 476, 477)


def five_points(landmarks: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The five alignment points from a 468/478-point mesh.

    Args:
        landmarks: ``(468|478, 2|3)`` mesh points.

    Returns:
        ``(5, 2)`` float32: image-left eye centre, image-right eye centre, nose tip, image-left
        mouth corner, image-right mouth corner (same order as the detectors' keypoints for an
        unmirrored face).
    """
    lm = np.asarray(landmarks, dtype=np.float32)[:, :2]
    return np.stack(
        [
            lm[list(RIGHT_EYE)].mean(axis=0),
            lm[list(LEFT_EYE)].mean(axis=0),
            lm[NOSE_TIP],
            lm[MOUTH_RIGHT_CORNER],
            lm[MOUTH_LEFT_CORNER],
        ]
    ).astype(np.float32)
