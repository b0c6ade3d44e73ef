"""Typed facts about each model, read from the manifest: one spec per model role.

The manifest (``models/manifest.toml``) is the only place a model's facts are declared: input
size, layout, colour order, normalisation, decoder parameters and its *signature* (output
names with the size of their last dimension). :func:`parse_spec` turns an entry into a
frozen spec, raising :class:`~obs_faceswap.errors.ModelError` that names the entry and the
missing or bad field, so a broken manifest fails when it loads, not on the first frame. The
wrappers in :mod:`obs_faceswap.nets` take these specs and guess nothing from tensor shapes;
:func:`check_outputs` compares a file (e.g. one the user chose with ``--detector-model``)
against the spec and says what was expected and what was found.

Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from obs_faceswap.errors import ModelError, ModelLoadError

LAYOUTS = ("NCHW", "NHWC")
COLORS = ("RGB", "BGR")
DETECTOR_FAMILIES = ("yunet", "scrfd", "blazeface")


@dataclass(frozen=True)
class InputSpec:
    """How an image becomes the model's input tensor.

    Attributes:
        name: manifest entry (``yunet``, ``mesh468``, ...), for messages.
        input_hw: ``(H, W)`` of the input; 0 = dynamic.
        layout: ``NCHW`` or ``NHWC``.
        color: channel order the model expects, ``RGB`` or ``BGR``.
        mean, std: per channel, ``value = (pixel - mean) / std`` with pixels in 0..255.
        outputs: output name → size of its last dimension, in the order the model's
            wrapper reads them.
    """

    name: str
    input_hw: tuple[int, int]
    layout: str
    color: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    outputs: tuple[tuple[str, int], ...]

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.outputs)


@dataclass(frozen=True)
class DetectorSpec(InputSpec):
    """A face detector: box + five keypoints per face.

    Attributes:
        family: the decoder, ``yunet``, ``scrfd`` or ``blazeface``.
        strides: feature strides, in output order.
        anchors_per_cell: anchors per grid cell, one number per stride.
    """

    family: str
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]


@dataclass(frozen=True)
class MeshSpec(InputSpec):
    """A dense face mesh on a rotated square crop.

    Attributes:
        points: 468 (mesh) or 478 (refined mesh + irises).
        crop_scale: side of the square crop as a multiple of the face size.

    The outputs are, in order: the mesh, the face-presence logit, then (478 only) the lips,
    left eye, right eye, left iris and right iris refinements.
    """

    points: int
    crop_scale: float


@dataclass(frozen=True)
class RecognitionSpec(InputSpec):
    """An identity network on template-aligned crops.

    Attributes:
        template: alignment template name (:data:`obs_faceswap.geometry.TEMPLATES`).

    The first output is the identity descriptor; its size is the embedding's length.
    """

    template: str


ModelSpec = DetectorSpec | MeshSpec | RecognitionSpec
#: The roles that have a spec; other roles (geometry, segmentation, media) have none yet.
SPEC_ROLES = ("detector", "landmarks", "recognition")


class _Fields:
    """Typed reads of one manifest entry's fields; every error names the entry and the field."""

    def __init__(self, name: str, data: Mapping[str, Any], source: str) -> None:
        self.name, self.data, self.source = name, data, source

    def error(self, key: str, what: str) -> ModelError:
        return ModelError(
            f"{self.source}: entry [models.{self.name}] {what} field {key!r}; "
            f"see the field list at the top of the manifest"
        )

    def get(self, key: str) -> Any:
        if key not in self.data:
            raise self.error(key, "lacks the")
        return self.data[key]

    def choice(self, key: str, allowed: Sequence[str]) -> str:
        value = self.get(key)
        if value not in allowed:
            raise self.error(key, f"has {value!r} (allowed: {', '.join(allowed)}) in the")
        return str(value)

    def ints(self, key: str, n: int | None = None) -> tuple[int, ...]:
        value = self.get(key)
        seq = value if isinstance(value, list) else [value]
        if not all(isinstance(v, int) and v >= 0 for v in seq) or (n is not None and len(seq) != n):
            count = f"{n} " if n is not None else ""
            raise self.error(key, f"needs {count}non-negative integers, has {value!r}, in the")
        return tuple(int(v) for v in seq)

    def floats(self, key: str, n: int) -> tuple[float, ...]:
        value = self.get(key)
        if not isinstance(value, list) or len(value) != n or not all(isinstance(v, (int, float)) for v in value):
            raise self.error(key, f"needs {n} numbers, has {value!r}, in the")
        return tuple(float(v) for v in value)

    def number(self, key: str) -> float:
        value = self.get(key)
        if not isinstance(value, (int, float)) or value <= 0:
            raise self.error(key, f"needs a positive number, has {value!r}, in the")
        return float(value)

    def outputs(self) -> tuple[tuple[str, int], ...]:
        value = self.get("outputs")
        if not isinstance(value, dict) or not value or not all(isinstance(v, int) and v > 0 for v in value.values()):
            raise self.error("outputs", "needs a table of output name = last-dimension size in the")
        return tuple((str(k), int(v)) for k, v in value.items())


def parse_spec(name: str, fields: Mapping[str, Any], source: str | Path) -> ModelSpec | None:
    """The spec of one ``[models.NAME]`` manifest entry, or None for roles without one.

    Raises:
        ModelError: a field the role needs is missing or malformed (the message names the
            manifest, the entry and the field).
    """
    f = _Fields(name, fields, str(source))
    role = fields.get("role")
    if role not in SPEC_ROLES:
        return None
    h, w = f.ints("input", 2)
    std = f.floats("std", 3)
    if not all(s > 0 for s in std):
        raise f.error("std", "needs positive numbers in the")
    common: dict[str, Any] = {
        "name": name,
        "input_hw": (h, w),
        "layout": f.choice("layout", LAYOUTS),
        "color": f.choice("color", COLORS),
        "mean": f.floats("mean", 3),
        "std": std,
        "outputs": f.outputs(),
    }
    if role == "detector":
        strides = f.ints("strides")
        anchors = f.ints("anchors_per_cell")
        if len(anchors) == 1:
            anchors = anchors * len(strides)
        if len(anchors) != len(strides):
            raise f.error("anchors_per_cell", f"needs one number or one per stride ({len(strides)}) in the")
        return DetectorSpec(
            **common, family=f.choice("family", DETECTOR_FAMILIES), strides=strides, anchors_per_cell=anchors
        )
    if role == "landmarks":
        points = f.ints("points", 1)[0]
        if points not in (468, 478) or len(common["outputs"]) != (2 if points == 468 else 7):
            raise f.error("outputs", "needs mesh and presence outputs (and 5 refinements for 478 points) in the")
        return MeshSpec(**common, points=points, crop_scale=f.number("crop_scale"))
    return RecognitionSpec(**common, template=str(f.get("template")))


class _TensorInfo(Protocol):
    name: str
    shape: Sequence[Any]


class _SessionInfo(Protocol):
    def get_inputs(self) -> Sequence[_TensorInfo]: ...

    def get_outputs(self) -> Sequence[_TensorInfo]: ...


def _base(name: str) -> str:
    return name.split(":")[0]  # TF-converted files name tensors "x:0"


def _signature(infos: Sequence[_TensorInfo]) -> str:
    return ", ".join(f"{t.name} {list(t.shape)}" for t in infos)


def check_input(session: _SessionInfo, spec: InputSpec, path: str | Path, setting: str) -> None:
    """Raise :class:`ModelLoadError` unless the file's one image input fits ``spec``.

    Checked: rank 4, 3 channels where ``spec.layout`` puts them, and ``spec.input_hw``
    where both the spec and the file fix a size.
    """
    inputs = session.get_inputs()
    file = Path(path).name
    ok = len(inputs) == 1 and len(inputs[0].shape) == 4
    if ok:
        shape = list(inputs[0].shape)
        c, hw = (shape[1], shape[2:4]) if spec.layout == "NCHW" else (shape[3], shape[1:3])
        ok = c in (3, None) or not isinstance(c, int)
        ok = ok and all(
            not (isinstance(d, int) and d > 0 and want and d != want) for d, want in zip(hw, spec.input_hw, strict=True)
        )
    if not ok:
        h, w = spec.input_hw[0] or "H", spec.input_hw[1] or "W"
        want = f"[N, 3, {h}, {w}]" if spec.layout == "NCHW" else f"[N, {h}, {w}, 3]"
        raise ModelLoadError(
            f"{file} is not a {spec.name} model ({setting}): expected one image input {want} "
            f"({spec.layout}), found {_signature(inputs) or 'no inputs'}"
        )


def check_outputs(
    session: _SessionInfo, spec: InputSpec, path: str | Path, setting: str, names: Sequence[str] | None = None
) -> list[str]:
    """The file's output names matching ``spec.outputs`` in order; :class:`ModelLoadError`
    naming expected and found outputs when one is missing or has another last dimension.

    Args:
        session: the loaded model (anything with ``get_outputs``).
        spec: what the manifest declares.
        path: the file, for the message.
        setting: the setting or flag that chose the file (``detector.model``), for the message.
        names: the file's outputs to check in place of looking them up by name (the
            InsightFace order of an SCRFD file with numeric names).
    """
    outs = {o.name: o for o in session.get_outputs()}
    by_base = {_base(n): n for n in outs}
    found = list(names) if names is not None else [by_base.get(n, "") for n in spec.output_names]
    bad = [
        f"{want} (last dimension {size})"
        for (want, size), got in zip(spec.outputs, found, strict=True)
        if not got or got not in outs or (isinstance(outs[got].shape[-1], int) and outs[got].shape[-1] != size)
    ]
    if bad:
        raise ModelLoadError(
            f"{Path(path).name} is not a {spec.name} model ({setting}): expected outputs "
            f"{', '.join(f'{n} [..., {s}]' for n, s in spec.outputs)}; missing or different: {', '.join(bad)}. "
            f"Found {_signature(session.get_outputs())}. Choose a file made for {spec.name}, or another kind"
        )
    return found
