"""Convert MediaPipe's ``.tflite`` face models to ONNX, reproducibly and without TensorFlow.

MediaPipe publishes its face detector and face mesh only as TFLite flatbuffers (inside the
``mediapipe`` wheel on PyPI). The maintained converters either need TensorFlow (tf2onnx) or fail
on ``face_landmark.tflite`` (tflite2onnx 0.4.1, OpenCV's TFLite importer), so this module reads
the flatbuffer with the ``tflite`` schema package and writes ONNX with ``onnx.helper`` for the
few operators these models use: CONV_2D, DEPTHWISE_CONV_2D, ADD, PRELU, RELU, MAX_POOL_2D, PAD,
RESHAPE, CONCATENATION, RESIZE_BILINEAR and DEQUANTIZE (float16 weights, folded into float32 constants).
Anything else is a :class:`~obs_faceswap.errors.ModelLoadError` naming the operator.

Activations are kept NCHW inside the graph; the graph's inputs and outputs keep the TFLite
(NHWC) layout and tensor names, so the result is a drop-in replacement for the tf2onnx
conversion the manifest describes (same input/output names, shapes and values).

:func:`fetch_converted` is what :class:`~obs_faceswap.models.ModelStore` runs for a manifest
entry with a ``[models.NAME.convert]`` table: download the pinned archive (verified by sha256),
extract the pinned member (verified), convert, and check the result's sha256.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from obs_faceswap.download import download, sha256_file
from obs_faceswap.errors import ConfigError, DownloadError, ModelCorruptError, ModelLoadError

if TYPE_CHECKING:  # pragma: no cover
    import onnx

log = logging.getLogger(__name__)

#: ONNX opset and IR version of the converted files (fixed: the output's sha256 is pinned).
OPSET = 13
IR_VERSION = 7
PRODUCER = "obs-faceswap convert"

# TFLite enums (schema.fbs); copied so that the mapping is readable without the package.
_TFL_DTYPES: dict[int, type[np.generic]] = {
    0: np.float32,
    1: np.float16,
    2: np.int32,
    3: np.uint8,
    4: np.int64,
    9: np.int8,
}
_ACTIVATIONS = {0: None, 1: "Relu", 3: "Relu6"}  # NONE, RELU, RELU6 (others: unsupported)
_PADDING_SAME, _PADDING_VALID = 0, 1


@dataclass(frozen=True)
class ConvertSpec:
    """Where a converted model comes from (a ``[models.NAME.convert]`` table of the manifest).

    Attributes:
        archive_url: public URL of the archive holding the original (a wheel on PyPI).
        archive_sha256, archive_size: what the archive must hash to and weigh.
        member: path of the original inside the archive.
        member_sha256: sha256 of the original.
        sha256, size: the converted file's digest and size (what :func:`convert_tflite` writes).
    """

    archive_url: str
    archive_sha256: str
    archive_size: int
    member: str
    member_sha256: str
    sha256: str
    size: int

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, object]) -> ConvertSpec:
        """Build from the manifest's table; a missing or mistyped field is a ConfigError."""
        try:
            return cls(
                archive_url=str(table["archive_url"]),
                archive_sha256=str(table["archive_sha256"]).lower(),
                archive_size=int(str(table["archive_size"])),
                member=str(table["member"]),
                member_sha256=str(table["member_sha256"]).lower(),
                sha256=str(table["sha256"]).lower(),
                size=int(str(table["size"])),
            )
        except (KeyError, ValueError) as e:
            raise ConfigError(f"models/manifest.toml: [models.{name}.convert] lacks or mistypes {e}") from e

    @property
    def archive_name(self) -> str:
        return self.archive_url.rsplit("/", 1)[-1]


# -- the converter ---------------------------------------------------------------------------
def _tflite() -> object:
    try:
        import tflite
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ModelLoadError(
            "converting a .tflite model needs the packages tflite and onnx: "
            "pip install 'obs-faceswap[convert]' (the cpu, cuda and directml extras include them)"
        ) from e
    return tflite


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class _Graph:
    """Collects ONNX nodes and initializers while walking the TFLite operators."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper = helper
        self.numpy_helper = numpy_helper
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, array: npt.NDArray[np.generic], stem: str = "const") -> str:
        name = self.name(stem)
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: object) -> str:
        out = output or self.name(op.lower())
        node = self.helper.make_node(op, inputs, [out], name=self.name("n_" + op.lower()))
        node.attribute.extend(self.helper.make_attribute(k, v) for k, v in sorted(attrs.items()))
        self.nodes.append(node)
        return out


def convert_tflite(data: bytes, *, graph_name: str = "model") -> onnx.ModelProto:
    """Convert a float TFLite model (float16 or float32 weights) to an ONNX model.

    Args:
        data: the ``.tflite`` flatbuffer.
        graph_name: name of the ONNX graph.

    Returns:
        The ONNX model: opset 13, inputs and outputs as in the TFLite file (NHWC, same names).

    Raises:
        ModelLoadError: the file uses an operator, data type or option this converter lacks.
    """
    tfl = _tflite()
    from onnx import TensorProto, helper

    model = tfl.Model.GetRootAsModel(data, 0)  # type: ignore[attr-defined]
    if model.SubgraphsLength() != 1:
        raise ModelLoadError(f"expected one subgraph in the .tflite file, found {model.SubgraphsLength()}")
    sg = model.Subgraphs(0)
    opnames = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}  # type: ignore[attr-defined]

    def shape(t: int) -> list[int]:
        return [int(x) for x in sg.Tensors(t).ShapeAsNumpy()]

    def tensor_name(t: int) -> str:
        return str(sg.Tensors(t).Name().decode())

    def buffer(t: int) -> npt.NDArray[np.generic] | None:
        tensor = sg.Tensors(t)
        raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(raw, int) or raw.size == 0:
            return None
        dtype = _TFL_DTYPES.get(tensor.Type())
        if dtype is None:
            raise ModelLoadError(f"tensor {tensor_name(t)} has unsupported TFLite type {tensor.Type()}")
        arr: npt.NDArray[np.generic] = np.frombuffer(raw.tobytes(), dtype=dtype).reshape(shape(t))
        return arr

    g = _Graph()
    consts: dict[int, npt.NDArray[np.generic]] = {}  # TFLite tensor → folded constant
    values: dict[int, str] = {}  # TFLite tensor → ONNX value name (rank-4 values are NCHW)

    for t in range(sg.TensorsLength()):
        arr = buffer(t)
        if arr is not None:
            consts[t] = arr

    graph_inputs = []
    for t in sg.InputsAsNumpy():
        name = tensor_name(int(t))
        graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape(int(t))))
        values[int(t)] = g.node("Transpose", [name], perm=[0, 3, 1, 2]) if len(shape(int(t))) == 4 else name

    def f32(t: int) -> npt.NDArray[np.float32]:
        return np.asarray(consts[t], dtype=np.float32)

    def value(t: int) -> str:
        if t in values:
            return values[t]
        if t in consts:  # a constant used as an activation: NHWC → NCHW like the activations
            c = f32(t)
            if c.ndim == 4:
                c = c.transpose(0, 3, 1, 2)
            elif c.ndim == 1:  # per-channel, broadcast over H and W
                c = c.reshape(1, -1, 1, 1)
            values[t] = g.const(c)
            return values[t]
        raise ModelLoadError(f"tensor {tensor_name(t)} is used before it is produced")

    def activate(x: str, code: int, out: str | None = None) -> str:
        if code not in _ACTIVATIONS:
            raise ModelLoadError(f"unsupported fused activation {code}")
        act = _ACTIVATIONS[code]
        if act is None:
            return g.node("Identity", [x], out) if out else x
        if act == "Relu6":
            return g.node("Clip", [x, g.const(np.array(0, np.float32)), g.const(np.array(6, np.float32))], out)
        return g.node(act, [x], out)

    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code_t = model.OperatorCodes(op.OpcodeIndex())
        code = max(code_t.BuiltinCode(), code_t.DeprecatedBuiltinCode())
        opname = opnames.get(code, str(code))
        ins = [int(x) for x in op.InputsAsNumpy()]
        out_t = int(op.OutputsAsNumpy()[0])
        opts = op.BuiltinOptions()

        def options(cls: type, table: object = opts) -> object:
            o = cls()
            o.Init(table.Bytes, table.Pos)  # type: ignore[attr-defined]
            return o

        if opname == "DEQUANTIZE":
            if ins[0] not in consts:
                raise ModelLoadError("DEQUANTIZE of a non-constant tensor is not supported")
            consts[out_t] = f32(ins[0])
        elif opname in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            depthwise = opname == "DEPTHWISE_CONV_2D"
            o = options(tfl.DepthwiseConv2DOptions if depthwise else tfl.Conv2DOptions)  # type: ignore[attr-defined]
            w = f32(ins[1])  # conv: O,H,W,I; depthwise: 1,H,W,C*M
            x_shape = shape(ins[0])
            if depthwise:
                if o.DepthMultiplier() not in (0, 1):  # type: ignore[attr-defined]
                    raise ModelLoadError("depthwise convolution with a depth multiplier is not supported")
                weight = w.transpose(3, 0, 1, 2)  # C,1,H,W
                group = x_shape[3]
            else:
                weight = w.transpose(0, 3, 1, 2)  # O,I,H,W
                group = 1
            kh, kw = weight.shape[2], weight.shape[3]
            sh, sw = o.StrideH(), o.StrideW()  # type: ignore[attr-defined]
            dh, dw = o.DilationHFactor(), o.DilationWFactor()  # type: ignore[attr-defined]
            if o.Padding() == _PADDING_SAME:  # type: ignore[attr-defined]
                (pt, pb), (pl, pr) = _same_pads(x_shape[1], kh, sh, dh), _same_pads(x_shape[2], kw, sw, dw)
            else:
                pt = pb = pl = pr = 0
            inputs = [value(ins[0]), g.const(weight, "weight")]
            if len(ins) > 2 and ins[2] >= 0:
                inputs.append(g.const(f32(ins[2]), "bias"))
            y = g.node(
                "Conv",
                inputs,
                kernel_shape=[kh, kw],
                strides=[sh, sw],
                dilations=[dh, dw],
                pads=[pt, pl, pb, pr],
                group=group,
            )
            values[out_t] = activate(y, o.FusedActivationFunction())  # type: ignore[attr-defined]
        elif opname == "MAX_POOL_2D":
            o = options(tfl.Pool2DOptions)  # type: ignore[attr-defined]
            x_shape = shape(ins[0])
            kh, kw = o.FilterHeight(), o.FilterWidth()  # type: ignore[attr-defined]
            sh, sw = o.StrideH(), o.StrideW()  # type: ignore[attr-defined]
            if o.Padding() == _PADDING_SAME:  # type: ignore[attr-defined]
                (pt, pb), (pl, pr) = _same_pads(x_shape[1], kh, sh), _same_pads(x_shape[2], kw, sw)
            else:
                pt = pb = pl = pr = 0
            y = g.node("MaxPool", [value(ins[0])], kernel_shape=[kh, kw], strides=[sh, sw], pads=[pt, pl, pb, pr])
            values[out_t] = activate(y, o.FusedActivationFunction())  # type: ignore[attr-defined]
        elif opname == "ADD":
            o = options(tfl.AddOptions)  # type: ignore[attr-defined]
            y = g.node("Add", [value(ins[0]), value(ins[1])])
            values[out_t] = activate(y, o.FusedActivationFunction())  # type: ignore[attr-defined]
        elif opname == "PRELU":
            alpha = f32(ins[1]).reshape(-1, 1, 1)  # per channel, broadcast over H and W
            values[out_t] = g.node("PRelu", [value(ins[0]), g.const(alpha, "alpha")])
        elif opname == "RELU":
            values[out_t] = g.node("Relu", [value(ins[0])])
        elif opname == "PAD":
            pads = np.asarray(consts[ins[1]], dtype=np.int64)  # NHWC rows of (before, after)
            if len(shape(ins[0])) != 4:
                raise ModelLoadError("PAD is supported on 4-D tensors only")
            nchw = pads[[0, 3, 1, 2]]
            onnx_pads = np.concatenate([nchw[:, 0], nchw[:, 1]]).astype(np.int64)
            values[out_t] = g.node("Pad", [value(ins[0]), g.const(onnx_pads, "pads")], mode="constant")
        elif opname == "RESHAPE":
            x = value(ins[0])
            if len(shape(ins[0])) == 4:  # back to TFLite's NHWC element order before reshaping
                x = g.node("Transpose", [x], perm=[0, 2, 3, 1])
            new_shape = np.asarray(shape(out_t), dtype=np.int64)
            y = g.node("Reshape", [x, g.const(new_shape, "shape")])
            values[out_t] = g.node("Transpose", [y], perm=[0, 3, 1, 2]) if new_shape.size == 4 else y
        elif opname == "RESIZE_BILINEAR":
            o = options(tfl.ResizeBilinearOptions)  # type: ignore[attr-defined]
            out_shape = shape(out_t)  # NHWC
            if o.AlignCorners():  # type: ignore[attr-defined]
                mode = "align_corners"
            elif o.HalfPixelCenters():  # type: ignore[attr-defined]
                mode = "half_pixel"
            else:
                mode = "asymmetric"
            sizes = np.asarray([out_shape[0], out_shape[3], out_shape[1], out_shape[2]], dtype=np.int64)
            values[out_t] = g.node(
                "Resize",
                [value(ins[0]), "", "", g.const(sizes, "sizes")],
                mode="linear",
                coordinate_transformation_mode=mode,
            )
        elif opname == "CONCATENATION":
            o = options(tfl.ConcatenationOptions)  # type: ignore[attr-defined]
            rank = len(shape(out_t))
            axis = o.Axis() % rank  # type: ignore[attr-defined]
            if rank == 4:
                axis = [0, 2, 3, 1][axis]
            y = g.node("Concat", [value(t) for t in ins], axis=axis)
            values[out_t] = activate(y, o.FusedActivationFunction())  # type: ignore[attr-defined]
        else:
            raise ModelLoadError(f"the .tflite file uses operator {opname}, which the converter does not support")

    graph_outputs = []
    for t in sg.OutputsAsNumpy():
        name = tensor_name(int(t))
        x = value(int(t))
        if len(shape(int(t))) == 4:
            g.node("Transpose", [x], name, perm=[0, 2, 3, 1])
        else:
            g.node("Identity", [x], name)
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape(int(t))))

    graph = helper.make_graph(g.nodes, graph_name, graph_inputs, graph_outputs, g.inits)
    onnx_model = helper.make_model(graph, producer_name=PRODUCER, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx_model.ir_version = IR_VERSION
    return onnx_model


def convert_tflite_bytes(data: bytes, *, graph_name: str = "model") -> bytes:
    """:func:`convert_tflite`, checked by ``onnx.checker`` and serialised."""
    import onnx

    model = convert_tflite(data, graph_name=graph_name)
    onnx.checker.check_model(model)
    out: bytes = model.SerializeToString()
    return out


# -- fetching the original -------------------------------------------------------------------
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_archive(spec: ConvertSpec, cache_dir: Path, *, progress: bool = True) -> Path:
    """The verified archive in ``cache_dir/archives``, downloaded if absent.

    Raises:
        DownloadError: the download failed or its sha256 is wrong (the file is not kept).
    """
    dest_dir = cache_dir / "archives"
    dest = dest_dir / spec.archive_name
    if dest.is_file() and dest.stat().st_size == spec.archive_size and sha256_file(dest) == spec.archive_sha256:
        return dest
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=spec.archive_name + ".", suffix=".part", dir=dest_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            download(spec.archive_url, out, expected_size=spec.archive_size, label=spec.archive_name, progress=progress)
        digest = sha256_file(tmp)
        if digest != spec.archive_sha256:
            raise DownloadError(
                f"downloaded {spec.archive_url} but its sha256 is {digest}, expected "
                f"{spec.archive_sha256}; the file was not kept. Try again later"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def extract_member(archive: Path, spec: ConvertSpec) -> bytes:
    """The original model file from the archive, verified.

    Raises:
        ModelCorruptError: the member is absent or its sha256 is wrong.
    """
    try:
        with zipfile.ZipFile(archive) as z:
            data = z.read(spec.member)
    except (KeyError, zipfile.BadZipFile) as e:
        raise ModelCorruptError(f"{archive} does not hold {spec.member} ({e}); delete it and try again") from e
    digest = _sha256(data)
    if digest != spec.member_sha256:
        raise ModelCorruptError(f"{spec.member} in {archive} has sha256 {digest}, expected {spec.member_sha256}")
    return data


def fetch_converted(spec: ConvertSpec, dest: Path, cache_dir: Path, *, progress: bool = True) -> Path:
    """Download the original, convert it and write ``dest`` (atomically), verified.

    Raises:
        DownloadError: the archive could not be downloaded.
        ModelCorruptError: the original or the converted file has the wrong digest.
    """
    archive = fetch_archive(spec, cache_dir, progress=progress)
    original = extract_member(archive, spec)
    converted = convert_tflite_bytes(original, graph_name=Path(spec.member).stem)
    digest = _sha256(converted)
    if digest != spec.sha256 or len(converted) != spec.size:
        raise ModelCorruptError(
            f"converting {spec.member} gave sha256 {digest} ({len(converted)} bytes), expected {spec.sha256} "
            f"({spec.size} bytes): the installed onnx package may serialise differently; "
            "report this with `pip show onnx` output"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(converted)
    os.replace(tmp_name, dest)
    log.info("converted %s from %s into %s", spec.member, spec.archive_name, dest)
    return dest


def convert_file(src: Path, dst: Path) -> str:
    """Convert one ``.tflite`` file on disk; returns the output's sha256 (used by packaging)."""
    data = convert_tflite_bytes(src.read_bytes(), graph_name=src.stem)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data)
    return _sha256(data)


def read_member(path_or_bytes: Path | bytes, member: str) -> bytes:
    """One file from a zip archive given as a path or bytes."""
    src: Path | IO[bytes] = path_or_bytes if isinstance(path_or_bytes, Path) else io.BytesIO(path_or_bytes)
    with zipfile.ZipFile(src) as z:
        return z.read(member)
