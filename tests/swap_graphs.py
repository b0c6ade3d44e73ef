"""ONNX graphs with the exact public signatures of face-swap models and a known function.

No real swap weights can be obtained here, so tests build stand-ins with the same input/output
names, shapes, layouts and value ranges as the real files (docs/model-formats.md) whose output
is known: identity, inversion, a fixed colour, or a colour read from the ``source`` input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from obs_faceswap.swap.specs import OneShotSpec

OPSET = 17


def _save(graph: onnx.GraphProto, path: Path, opset: int = OPSET) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def oneshot_model(
    path: Path,
    spec: OneShotSpec,
    function: str = "identity",
    *,
    emap: np.ndarray | None = None,
    colour_rgb: tuple[float, float, float] = (1.0, 0.0, 0.0),
    elem: int = TensorProto.FLOAT,
    batch: int | str = 1,
    target_name: str = "target",
    source_shape: tuple[int, ...] | None = None,
    with_emap: bool = True,
) -> Path:
    """A model of ``spec``'s family computing ``function`` in *pixel* space:

    * ``identity``: the swapped face is the live crop;
    * ``invert``: the swapped face is 255 - the live crop;
    * ``colour``: the swapped face is ``colour_rgb`` (0..1 RGB);
    * ``source``: the swapped face's RGB colour is source[0, 0:3] (embeddings) or the mean RGB of the
      source image (image sources) — shows what reached the ``source`` input;
    * ``red``: every channel is the input's *first* channel (RGB: red), in 0..1.

    Every graph has the family's input names/shapes and, for inswapper, an unused 512×512
    ``emap`` initializer named ``buff2fs``.
    """
    s = spec.size
    mean = np.array(spec.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.array(spec.std, np.float32).reshape(1, 3, 1, 1)
    src_shape = source_shape or spec.source_shape
    inits = [_const("mean", mean), _const("std", std), _const("zero", np.zeros(1)), _const("one", np.ones(1))]
    nodes = []
    # pixel (0..1 RGB) = target * std + mean
    nodes += [
        helper.make_node("Mul", [target_name, "std"], ["t_std"]),
        helper.make_node("Add", ["t_std", "mean"], ["pixel"]),
    ]
    if function == "identity":
        nodes.append(helper.make_node("Identity", ["pixel"], ["want"]))
    elif function == "invert":
        nodes.append(helper.make_node("Sub", ["one", "pixel"], ["want"]))
    elif function == "colour":
        inits.append(_const("col", np.array(colour_rgb, np.float32).reshape(1, 3, 1, 1)))
        nodes += [helper.make_node("Mul", ["pixel", "zero"], ["z"]), helper.make_node("Add", ["z", "col"], ["want"])]
    elif function == "red":
        inits.append(helper.make_tensor("starts", TensorProto.INT64, [1], [0]))
        inits.append(helper.make_tensor("ends", TensorProto.INT64, [1], [1]))
        inits.append(helper.make_tensor("axes", TensorProto.INT64, [1], [1]))
        nodes += [
            helper.make_node("Slice", ["pixel", "starts", "ends", "axes"], ["r"]),
            helper.make_node("Concat", ["r", "r", "r"], ["want"], axis=1),
        ]
    elif function == "source":
        if spec.source == "image":
            nodes.append(helper.make_node("ReduceMean", ["source"], ["col"], axes=[2, 3], keepdims=1))
        else:
            inits.append(helper.make_tensor("starts", TensorProto.INT64, [1], [0]))
            inits.append(helper.make_tensor("ends", TensorProto.INT64, [1], [3]))
            inits.append(helper.make_tensor("axes", TensorProto.INT64, [1], [1]))
            inits.append(helper.make_tensor("shape4", TensorProto.INT64, [4], [1, 3, 1, 1]))
            nodes += [
                helper.make_node("Slice", ["source", "starts", "ends", "axes"], ["s3"]),
                helper.make_node("Reshape", ["s3", "shape4"], ["col"]),
            ]
        nodes += [helper.make_node("Mul", ["pixel", "zero"], ["z"]), helper.make_node("Add", ["z", "col"], ["want"])]
    else:
        raise ValueError(function)
    if spec.output == "denorm":  # the model emits normalised values; the swapper multiplies back
        nodes += [helper.make_node("Sub", ["want", "mean"], ["w0"]), helper.make_node("Div", ["w0", "std"], ["out"])]
    else:
        nodes.append(helper.make_node("Identity", ["want"], ["out"]))
    # make the source input part of the graph even when the function ignores it
    nodes += [
        helper.make_node("ReduceSum", ["source"], ["ssum"], keepdims=0),
        helper.make_node("Mul", ["ssum", "zero"], ["szero"]),
        helper.make_node("Add", ["out", "szero"], ["output"]),
    ]
    if spec.source == "emap" and with_emap:
        e = emap if emap is not None else np.eye(512, dtype=np.float32)
        inits.append(_const("buff2fs", e))
    inputs = [
        helper.make_tensor_value_info(target_name, TensorProto.FLOAT, [batch, 3, s, s]),
        helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, *src_shape]),
    ]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 3, s, s])]
    graph = helper.make_graph(nodes, spec.name, inputs, outputs, inits)
    if elem == TensorProto.FLOAT16:
        return _save_fp16(graph, path)
    return _save(graph, path)


def _save_fp16(graph: onnx.GraphProto, path: Path) -> Path:
    """The same graph with float16 inputs, outputs and constants (like inswapper_128_fp16)."""
    for t in graph.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))
    for vi in (*graph.input, *graph.output):
        vi.type.tensor_type.elem_type = TensorProto.FLOAT16
    return _save(graph, path)


def overflow_fp16_model(path: Path, size: int = 128, gain: float = 300000.0) -> Path:
    """An inswapper-shaped fp16 graph whose output is ``x · gain``, computed in fp32 and cast to
    fp16 at the end: inf in half precision (fp16 tops out at 65504), finite once the model is
    upcast to fp32 — a stand-in for the black boxes some GPUs produce with fp16 models."""
    inits = [
        numpy_helper.from_array(np.array([gain], np.float32), "big"),
        numpy_helper.from_array(np.array([0.0], np.float32), "zero"),
        numpy_helper.from_array(np.eye(512, dtype=np.float16), "buff2fs"),
    ]
    nodes = [
        helper.make_node("Cast", ["target"], ["t32"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["t32", "big"], ["b"]),
        helper.make_node("Cast", ["source"], ["s32"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["s32"], ["ss"], keepdims=0),
        helper.make_node("Mul", ["ss", "zero"], ["sz"]),
        helper.make_node("Add", ["b", "sz"], ["d"]),
        helper.make_node("Cast", ["d"], ["output"], to=TensorProto.FLOAT16),
    ]
    inputs = [
        helper.make_tensor_value_info("target", TensorProto.FLOAT16, [1, 3, size, size]),
        helper.make_tensor_value_info("source", TensorProto.FLOAT16, [1, 512]),
    ]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT16, [1, 3, size, size])]
    return _save(helper.make_graph(nodes, "fp16_overflow", inputs, outputs, inits), path)


def arcface_model(path: Path, weights: np.ndarray | None = None) -> Path:
    """w600k_r50 signature: ``input.1`` [1, 3, 112, 112] → ``683`` [1, 512]; embedding =
    (mean normalised RGB over the crop) @ ``weights`` (3 × 512)."""
    w = weights if weights is not None else np.random.default_rng(0).normal(size=(3, 512)).astype(np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["input.1"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("MatMul", ["f", "W"], ["683"]),
    ]
    inputs = [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])]
    outputs = [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", 512])]
    return _save(helper.make_graph(nodes, "arcface", inputs, outputs, [_const("W", w)]), path)


def converter_model(path: Path, scale: float = 2.0, shift: float = 0.25) -> Path:
    """FaceFusion's embedding-converter signature: [1, 512] → [1, 512]; y = x·scale + shift."""
    nodes = [helper.make_node("Mul", ["input", "s"], ["m"]), helper.make_node("Add", ["m", "b"], ["output"])]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 512])]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 512])]
    return _save(
        helper.make_graph(
            nodes, "converter", inputs, outputs, [_const("s", np.array([scale])), _const("b", np.array([shift]))]
        ),
        path,
    )


def dfm_model(
    path: Path,
    resolution: int = 224,
    function: str = "identity",
    *,
    morph: bool = True,
    mask_box: float = 0.0,
    opset: int = 12,
) -> Path:
    """DeepFaceLive signature (NHWC BGR 0..1): ``in_face:0`` [N, R, R, 3] (+ ``morph_value:0`` [1])
    → ``out_face_mask:0``, ``out_celeb_face:0``, ``out_celeb_face_mask:0``.

    ``function``: ``identity`` (celeb = in), ``invert`` (1 - in), ``morph`` (in · morph_value:0);
    masks are 1 (or 1 only inside the centre ``1 - 2·mask_box`` square of the celebrity mask).
    """
    r = resolution
    inits = [_const("one", np.ones(1)), _const("zero", np.zeros(1))]
    nodes = []
    if function == "identity":
        nodes.append(helper.make_node("Identity", ["in_face:0"], ["celeb"]))
    elif function == "invert":
        nodes.append(helper.make_node("Sub", ["one", "in_face:0"], ["celeb"]))
    elif function == "morph":
        nodes.append(helper.make_node("Mul", ["in_face:0", "morph_value:0"], ["celeb"]))
    else:
        raise ValueError(function)
    if morph and function != "morph":
        nodes += [
            helper.make_node("Mul", ["morph_value:0", "zero"], ["mz"]),
            helper.make_node("Add", ["celeb", "mz"], ["celeb2"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["celeb"], ["celeb2"]))
    nodes.append(helper.make_node("Identity", ["celeb2"], ["out_celeb_face:0"]))
    inits.append(helper.make_tensor("c0", TensorProto.INT64, [1], [0]))
    inits.append(helper.make_tensor("c1", TensorProto.INT64, [1], [1]))
    inits.append(helper.make_tensor("ax", TensorProto.INT64, [1], [3]))
    nodes += [
        helper.make_node("Slice", ["in_face:0", "c0", "c1", "ax"], ["ch"]),
        helper.make_node("Mul", ["ch", "zero"], ["chz"]),
        helper.make_node("Add", ["chz", "one"], ["out_face_mask:0"]),
    ]
    cm = np.ones((1, r, r, 1), np.float32)
    if mask_box > 0:
        cm[:] = 0
        b = int(round(r * mask_box))
        cm[:, b : r - b, b : r - b] = 1
    inits.append(_const("cmask", cm))
    nodes += [helper.make_node("Add", ["chz", "cmask"], ["out_celeb_face_mask:0"])]
    inputs = [helper.make_tensor_value_info("in_face:0", TensorProto.FLOAT, ["N", r, r, 3])]
    if morph:
        inputs.append(helper.make_tensor_value_info("morph_value:0", TensorProto.FLOAT, [1]))
    outputs = [
        helper.make_tensor_value_info("out_face_mask:0", TensorProto.FLOAT, ["N", r, r, 1]),
        helper.make_tensor_value_info("out_celeb_face:0", TensorProto.FLOAT, ["N", r, r, 3]),
        helper.make_tensor_value_info("out_celeb_face_mask:0", TensorProto.FLOAT, ["N", r, r, 1]),
    ]
    return _save(helper.make_graph(nodes, "dfm", inputs, outputs, inits), path, opset)


def xseg_model(path: Path, value: float | None = None) -> Path:
    """XSeg signature: [1, 256, 256, 3] NHWC BGR → [1, 256, 256, 1]: the input's *red* channel
    (so a red object is 'face', anything else occludes), or a constant ``value``."""
    inits = [
        helper.make_tensor("c2", TensorProto.INT64, [1], [2]),
        helper.make_tensor("c3", TensorProto.INT64, [1], [3]),
        helper.make_tensor("ax", TensorProto.INT64, [1], [3]),
        _const("zero", np.zeros(1)),
        _const("v", np.array([value if value is not None else 0.0])),
    ]
    nodes = [helper.make_node("Slice", ["in_face:0", "c2", "c3", "ax"], ["red"])]
    if value is not None:
        nodes += [helper.make_node("Mul", ["red", "zero"], ["z"]), helper.make_node("Add", ["z", "v"], ["out_mask:0"])]
    else:
        nodes.append(helper.make_node("Identity", ["red"], ["out_mask:0"]))
    inputs = [helper.make_tensor_value_info("in_face:0", TensorProto.FLOAT, [1, 256, 256, 3])]
    outputs = [helper.make_tensor_value_info("out_mask:0", TensorProto.FLOAT, [1, 256, 256, 1])]
    return _save(helper.make_graph(nodes, "xseg", inputs, outputs, inits), path)


def bisenet_model(path: Path, cls_for_red: int = 1, other: int = 17) -> Path:
    """BiSeNet signature: ``input`` [1, 3, 512, 512] → ``output`` [1, 19, 512, 512]: pixels whose
    ImageNet-normalised red value is positive score highest for ``cls_for_red``, others for ``other``."""
    w = np.zeros((19, 3, 1, 1), np.float32)
    w[cls_for_red, 0] = 1.0
    w[other, 0] = -1.0
    nodes = [helper.make_node("Conv", ["input", "W"], ["output"])]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 512, 512])]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 19, 512, 512])]
    return _save(helper.make_graph(nodes, "bisenet", inputs, outputs, [_const("W", w)]), path)


def enhancer_model(path: Path, size: int = 512, function: str = "identity") -> Path:
    """GFPGAN/GPEN signature: ``input`` [1, 3, S, S] RGB in −1..1 → ``output`` same; identity or invert."""
    nodes = (
        [helper.make_node("Identity", ["input"], ["output"])]
        if function == "identity"
        else [helper.make_node("Neg", ["input"], ["output"])]
    )
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, size, size])]
    return _save(helper.make_graph(nodes, "enhancer", inputs, outputs), path)


def conv_stack_model(
    path: Path, *, size: int = 128, width: int = 64, layers: int = 10, seed: int = 0
) -> tuple[Path, float]:
    """A stand-in with inswapper_128's signature and about its cost: ``layers`` 3×3 convolutions
    of ``width`` channels at ``size``² with random weights (plus an emap). Returns (path, GFLOPs),
    counting a multiply-add as two operations."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array((rng.normal(size=(512, 512)) * 0.05).astype(np.float32), "buff2fs"),
        _const("zero", np.zeros(1)),
    ]
    nodes = []
    x = "target"
    cin = 3
    flops = 0.0
    for i in range(layers):
        cout = 3 if i == layers - 1 else width
        w = (rng.normal(size=(cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        flops += 2.0 * cout * cin * 9 * size * size
        x = f"c{i}"
        cin = cout
        if i < layers - 1:
            nodes.append(helper.make_node("Relu", [x], [f"r{i}"]))
            x = f"r{i}"
    nodes += [
        helper.make_node("Sigmoid", [x], ["sg"]),
        helper.make_node("ReduceSum", ["source"], ["ss"], keepdims=0),
        helper.make_node("Mul", ["ss", "zero"], ["sz"]),
        helper.make_node("Add", ["sg", "sz"], ["output"]),
    ]
    inputs = [
        helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, size, size]),
        helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512]),
    ]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, size, size])]
    return _save(helper.make_graph(nodes, "inswapper_128_standin", inputs, outputs, inits), path), flops / 1e9
