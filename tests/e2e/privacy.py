"""Finding the real face in OBS's own recording: a marked clip and a marker detector.

The test clip is the speaker video with a small green/magenta checkerboard (4-pixel cells)
drawn on the nose of the face in every frame. A frame that reaches the recording untouched
shows the checkerboard; a swapped frame (the photo's face) or a covered one (a mosaic of
blocks of 8 pixels or more) cannot: so "frames with the checkerboard" counts the frames
that showed the real face. A colour patch in the scene's corner, outside the filtered source,
changes colour per phase, so every recorded frame is attributed to a phase.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np

CELL = 4
CELLS = 4  # the checkerboard is CELLS x CELLS cells
#: Phase colours (BGR) of the corner patch and the names the test prints.
PHASES: list[tuple[str, tuple[int, int, int]]] = [
    ("control (swap off)", (255, 255, 255)),
    ("steady", (0, 0, 255)),
    ("photo change", (0, 255, 0)),
    ("engine SIGKILL", (255, 0, 0)),
    ("engine SIGSTOP/SIGCONT", (0, 255, 255)),
    ("setting storm", (255, 0, 255)),
    ("end", (0, 0, 0)),
]
PATCH = 24  # the corner patch is PATCH x PATCH pixels at the top-left


def obs_color(bgr: tuple[int, int, int]) -> int:
    """OBS colour_source's ``color`` (0xAABBGGRR)."""
    b, g, r = bgr
    return (0xFF << 24) | (b << 16) | (g << 8) | r


PATCH_INPUT = "Phase"  # the colour source whose colour says which phase a recorded frame is in


def add_phase_patch(obs: Any, bgr: tuple[int, int, int]) -> None:
    """Put the phase patch (a PATCH x PATCH colour source, top-left) into OBS's scene."""
    obs.call(
        "CreateInput",
        {
            "sceneName": "Scene",
            "inputName": PATCH_INPUT,
            "inputKind": "color_source_v3",
            "inputSettings": {"color": obs_color(bgr), "width": PATCH, "height": PATCH},
            "sceneItemEnabled": True,
        },
    )


def set_phase_patch(obs: Any, bgr: tuple[int, int, int]) -> None:
    """Recolour the phase patch: frames recorded from now on belong to the next phase."""
    settings = {"color": obs_color(bgr)}
    obs.call("SetInputSettings", {"inputName": PATCH_INPUT, "inputSettings": settings, "overlay": True})


def checker(size: int = CELL * CELLS) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    on = ((yy // CELL + xx // CELL) % 2).astype(bool)
    img = np.zeros((size, size, 3), np.uint8)
    img[on] = (0, 255, 0)
    img[~on] = (255, 0, 255)
    return img


def make_marked_clip(video: Path, out: Path, identity: Any, fps: int = 10, seconds: float = 8.0) -> Path:
    """The speaker clip at ``fps`` with the checkerboard on the nose of every frame."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    src_fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    i = 0
    box = None
    while len(frames) < int(fps * seconds):
        ok, f = cap.read()
        if not ok:
            break
        if i % max(1, round(src_fps / fps)) == 0:
            found = identity.face(f)
            if found is not None:
                box = found[1]
            if box is not None:
                cx, cy = int((box[0] + box[2]) / 2), int(box[1] + (box[3] - box[1]) * 0.55)
                s = CELL * CELLS
                f[cy - s // 2 : cy - s // 2 + s, cx - s // 2 : cx - s // 2 + s] = checker()
            frames.append(f)
        i += 1
    cap.release()
    h, w = frames[0].shape[:2]
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "bgr24",
        "-s",
        f"{w}x{h}",
        "-r",
        str(fps),
        "-i",
        "-",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        "-pix_fmt",
        "yuv420p",
        str(out),
    ]
    subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True, timeout=300)
    return out


_KERNEL: np.ndarray | None = None


def marker_response(frame: np.ndarray) -> float:
    """How strongly the checkerboard shows anywhere in ``frame`` (0 when absent)."""
    import cv2

    global _KERNEL
    if _KERNEL is None:
        s = CELL * CELLS
        yy, xx = np.mgrid[0:s, 0:s]
        _KERNEL = np.where((yy // CELL + xx // CELL) % 2 == 1, 1.0, -1.0).astype(np.float32) / (s * s)
    f = frame.astype(np.float32)
    g_minus_m = f[:, :, 1] - (f[:, :, 0] + f[:, :, 2]) / 2  # +255 on green, -255 on magenta
    g_minus_m[: PATCH + 2, : PATCH + 2] = 0  # the phase patch is not the face
    return float(np.abs(cv2.filter2D(g_minus_m, -1, _KERNEL)).max())


def phase_of(frame: np.ndarray) -> int | None:
    c = frame[PATCH // 2, PATCH // 2].astype(int)
    best = min(range(len(PHASES)), key=lambda k: int(np.abs(c - np.array(PHASES[k][1])).sum()))
    return best if np.abs(c - np.array(PHASES[best][1])).sum() < 120 else None


def read_video(path: Path) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return out


def badge_present(frame: np.ndarray) -> bool:
    """Light text on a dark box somewhere in the bottom-right eighth of the frame."""
    h, w = frame.shape[:2]
    corner = frame[h - h // 8 :, w - w // 3 :].mean(axis=2)
    return bool((corner > 200).sum() >= 20 and (corner < 60).sum() >= 100)
