"""Shared names are declared once: the type aliases in ``types.py``, the video formats in
``video_formats.py`` (imported by the OBS side and the engine alike)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from obs_faceswap import video_formats
from obs_faceswap.engine import client, protocol
from obs_faceswap.obs import structs
from obs_faceswap.video_formats import FORMATS, LAYOUTS, SUPPORTED_FORMATS, VideoFormat, format_name

PACKAGE = Path(__file__).resolve().parents[2] / "obs_faceswap"
ALIASES = {"Box", "Mask", "FloatArray", "ImageBGR", "Roi", "Rect"}


def assignments(name_filter: set[str]) -> list[tuple[str, str]]:
    """``(module path, name)`` for every module-level assignment or class of those names."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            names: list[str] = []
            if isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            elif isinstance(node, ast.ClassDef):
                names = [node.name]
            out += [(str(path.relative_to(PACKAGE)), n) for n in names if n in name_filter]
    return out


def test_type_aliases_are_declared_once() -> None:
    found = assignments(ALIASES)
    where: dict[str, list[str]] = {}
    for path, name in found:
        where.setdefault(name, []).append(path)
    assert where == {
        "Box": ["types.py"],
        "Mask": ["types.py"],
        "FloatArray": ["types.py"],
        "ImageBGR": ["types.py"],
        "Roi": ["nets/landmarks.py"],  # the rotated square the face mesh looks in
    }


def test_video_formats_have_one_definition() -> None:
    declared = assignments(
        {"VideoFormat", "FormatInfo", "FORMATS", "SUPPORTED_FORMATS", "FORMAT_NAMES", "VIDEO_FORMAT_I420", "I420"}
    )
    assert sorted(declared) == [
        ("video_formats.py", n) for n in ("FORMATS", "FORMAT_NAMES", "FormatInfo", "SUPPORTED_FORMATS", "VideoFormat")
    ]
    assert protocol.FORMATS is FORMATS and client.SUPPORTED_FORMATS is SUPPORTED_FORMATS
    assert protocol.VideoFormat is VideoFormat is video_formats.VideoFormat


@pytest.mark.parametrize(("value", "name"), [(1, "I420"), (VideoFormat.NV12, "NV12"), (25, "R10L"), (99, "99")])
def test_format_name(value: int, name: str) -> None:
    assert format_name(value) == name


def test_the_filter_handles_a_subset_of_what_the_engine_converts() -> None:
    assert set(structs.PLANE_LAYOUT) <= SUPPORTED_FORMATS
    assert structs.PLANE_LAYOUT[VideoFormat.I420] == (1, 2, 2) and structs.PLANE_LAYOUT[VideoFormat.NV12] == (1, 2)
    assert 1 in SUPPORTED_FORMATS and VideoFormat.P010 in SUPPORTED_FORMATS  # plain ints from libobs work
    assert VideoFormat.YUVA not in SUPPORTED_FORMATS and VideoFormat.YUVA in LAYOUTS  # covered, not swapped
