"""A stand-in with inswapper_128's signature and cost, to time the model path without real weights.

inswapper_128's generator costs about 10 GFLOPs per 128×128 face; no weights can be obtained
here, so this builds a graph with its exact signature (``target`` [1, 3, 128, 128] RGB 0..1,
``source`` [1, 512], a 512×512 ``emap``) whose body is 10 random-weight 3×3 convolutions of 64
channels at 128×128: 9.77 GFLOPs (a multiply-add counted as two). An ArcFace stand-in with the
w600k_r50 signature (cheap) serves as recognizer.

Usage::

    python -m tests.bench.bench_model DIR          # writes DIR/inswapper_128.onnx, DIR/w600k_r50.onnx
    obs-faceswap bench --model DIR/inswapper_128.onnx --recognizer DIR/w600k_r50.onnx --sizes 720p,1080p
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests import swap_graphs as g


def build(directory: Path) -> tuple[Path, Path, float]:
    """Write the stand-ins into ``directory``; returns (swap model, recognizer, GFLOPs)."""
    model, gflops = g.conv_stack_model(directory / "inswapper_128.onnx")
    recognizer = g.arcface_model(directory / "w600k_r50.onnx")
    return model, recognizer, gflops


def main(argv: list[str]) -> int:
    directory = Path(argv[0] if argv else "standin-models")
    model, recognizer, gflops = build(directory)
    print(f"{model} ({gflops:.2f} GFLOPs per face), recognizer {recognizer}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
