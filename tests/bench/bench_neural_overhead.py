"""What the neural swap path costs *around* the model, per face, stage by stage.

The model is an identity graph with inswapper_128's signature (it costs ~0.1 ms), so what is
left is the per-frame Python/OpenCV work a GPU would wait on: alignment warp, pre-processing,
post-processing, masks, colour transfer and paste-back. The face comes from the real clip
(``dfl_Obama_speaking.mp4``) scaled to each size, tracked by the real pipeline.

Usage::

    OBS_FACESWAP_MODELS=/work/shared/models OBS_FACESWAP_MEDIA=/work/shared/media \\
        python -m tests.bench.bench_neural_overhead [--sizes 720p,1080p] [--masks box,mouth] [--runs 200]

Prints, per size, the median ms of each stage and of their sum ("overhead"), the model's own
time, and the same frame through ``Pipeline.process`` (swap + merge minus inference).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from obs_faceswap import align, merge
from obs_faceswap.bench import SIZES, load_clip, scale_cover
from obs_faceswap.config import BlendConfig, NeuralSwapperConfig, PipelineConfig, SwapperConfig
from obs_faceswap.masks import box_mask
from obs_faceswap.models import ModelStore
from obs_faceswap.pipeline import Pipeline
from obs_faceswap.swap.specs import SPECS
from tests import swap_graphs as g


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def measure(size: str, masks: tuple[str, ...], runs: int, directory: Path) -> dict[str, float]:
    model = g.oneshot_model(directory / "inswapper_128.onnx", SPECS["inswapper_128"], "identity")
    recognizer = g.arcface_model(directory / "w600k_r50.onnx")
    neural = NeuralSwapperConfig(recognizer=str(recognizer), masks=masks)
    config = PipelineConfig(swapper=SwapperConfig(kind="model", model=str(model), neural=neural))
    store = ModelStore()
    w, h = SIZES[size]
    clip, _ = load_clip(str(store.path("obama")), 40)
    frames = [scale_cover(f, w, h) for f in clip]
    out: dict[str, float] = {}
    with Pipeline(config, store, source=store.path("astronaut")) as pipe:
        for k, f in enumerate(frames[:20]):
            pipe.process(f.copy(), k / 30, inplace=True)
        frame = frames[20]
        faces = pipe.tracker.update(frame, 20 / 30).faces
        face = faces[0]
        sw = pipe.swapper
        spec = sw.spec  # type: ignore[attr-defined]
        live, m = align.warp_face(frame, face.keypoints, spec.template, spec.size)
        x = sw.preprocess(live)  # type: ignore[attr-defined]
        feed = {"target": x, "source": sw._source}  # type: ignore[attr-defined]
        y = sw._runner.run(feed)[0]  # type: ignore[attr-defined]
        out["reads"] = _median_ms(lambda: sw.reads(face, (h, w)), runs)
        out["align warp"] = _median_ms(lambda: align.warp_face(frame, face.keypoints, spec.template, spec.size), runs)
        out["preprocess"] = _median_ms(lambda: sw.preprocess(live), runs)  # type: ignore[attr-defined]
        model_ms = _median_ms(lambda: sw._runner.run(feed), runs)  # type: ignore[attr-defined]
        out["postprocess"] = _median_ms(lambda: sw.postprocess(y), runs)  # type: ignore[attr-defined]
        out["box mask"] = _median_ms(lambda: box_mask(spec.size), runs)
        result = sw.swap(frame, face)
        assert result is not None
        out["swap() - model"] = _median_ms(lambda: sw.swap(frame, face), runs) - model_ms
        out["masks + colour (finish)"] = _median_ms(lambda: pipe.neural.finish(result, face), runs)
        finished = pipe.neural.finish(result, face)
        canvas = frame.copy()
        blend = BlendConfig()
        out["paste_back"] = _median_ms(lambda: merge.paste_back(canvas, finished, blend), runs)
        out["overhead (swap - model + finish + paste)"] = (
            out["swap() - model"] + out["masks + colour (finish)"] + out["paste_back"]
        )
        out["model (identity graph)"] = model_ms
        # the same through Pipeline.process (tracking excluded): swap + merge - inference
        e2e = []
        for k in range(runs):
            f = frames[k % len(frames)].copy()
            _, report = pipe.process(f, (21 + k) / 30, inplace=True)
            t = report.timings_ms
            if "swap" in t and "merge" in t:
                e2e.append(t["swap"] + t["merge"] - model_ms)
        out["Pipeline.process: swap + merge - model"] = float(np.median(e2e)) if e2e else float("nan")
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="720p,1080p")
    ap.add_argument("--masks", default="box", help="comma list of box,mouth")
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args(argv)
    masks = tuple(args.masks.split(","))
    with tempfile.TemporaryDirectory() as d:
        results = {s: measure(s, masks, args.runs, Path(d)) for s in args.sizes.split(",")}
    names = list(next(iter(results.values())))
    width = max(len(n) for n in names)
    print(f"{'median ms (masks ' + ','.join(masks) + ')':<{width}}  " + "  ".join(f"{s:>8}" for s in results))
    for n in names:
        print(f"{n:<{width}}  " + "  ".join(f"{results[s][n]:8.3f}" for s in results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
