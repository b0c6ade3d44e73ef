#!/usr/bin/env python3
"""Reproduce the converted models: MediaPipe's .tflite originals → the ONNX files the manifest pins.

    python packaging/convert_models.py OUTDIR [--cache DIR]

For every manifest entry with a ``[models.NAME.convert]`` table: download the pinned archive
(the ``mediapipe`` wheel on PyPI, verified by sha256), extract the pinned ``.tflite`` (verified),
convert it with ``obs_faceswap/convert.py`` (no TensorFlow) and check that the result has the
sha256 the manifest pins. These are the files published as release assets; anyone can rerun
this and get the same bytes. Exit status 0 when every file matches, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from obs_faceswap import convert
from obs_faceswap.errors import FaceSwapError
from obs_faceswap.models import default_cache_dir, load_manifest


def convert_all(out: Path, cache: Path, *, progress: bool = True) -> list[tuple[str, Path, str]]:
    """Convert every convertible entry into ``out``; returns (name, path, sha256) rows.

    Raises:
        FaceSwapError: a download failed, or an original or a result has the wrong digest.
    """
    rows = []
    for name, e in load_manifest().items():
        table = e.get("convert")
        if not table:
            continue
        spec = convert.ConvertSpec.from_table(name, table)
        dest = convert.fetch_converted(spec, out / e.file, cache, progress=progress)
        rows.append((name, dest, spec.sha256))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="directory for the converted .onnx files")
    p.add_argument("--cache", type=Path, default=None, help="where downloaded archives are kept (default: user cache)")
    args = p.parse_args(argv)
    try:
        rows = convert_all(args.out, args.cache or default_cache_dir())
    except FaceSwapError as e:
        print(f"convert_models: error: {e}", file=sys.stderr)
        return 1
    for name, path, digest in rows:
        print(f"{digest}  {path}  ({name}, matches models/manifest.toml)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
