"""Model specs: every fact a wrapper needs comes from the manifest, checked when it loads."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

from obs_faceswap.errors import ModelError, ModelLoadError
from obs_faceswap.model_specs import DetectorSpec, MeshSpec, RecognitionSpec, check_input, check_outputs, parse_spec
from obs_faceswap.models import load_manifest, manifest_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def raw_manifest() -> dict[str, Any]:
    with open(manifest_path(), "rb") as f:
        return tomllib.load(f)["models"]


def test_every_model_role_gets_its_typed_spec() -> None:
    entries = load_manifest()
    assert {n: type(e.spec).__name__ for n, e in entries.items() if e.spec is not None} == {
        "yunet": "DetectorSpec",
        "yunet_320": "DetectorSpec",
        "scrfd": "DetectorSpec",
        "blazeface": "DetectorSpec",
        "blazeface_full": "DetectorSpec",
        "mesh468": "MeshSpec",
        "mesh478": "MeshSpec",
        "faceres": "RecognitionSpec",
    }
    blaze = entries["blazeface"].spec
    assert isinstance(blaze, DetectorSpec) and blaze.anchors_per_cell == (2, 6) and blaze.strides == (8, 16)
    yunet = entries["yunet"].spec
    assert isinstance(yunet, DetectorSpec) and yunet.anchors_per_cell == (1, 1, 1) and yunet.input_hw == (0, 0)
    mesh = entries["mesh478"].spec
    assert isinstance(mesh, MeshSpec) and (mesh.points, mesh.crop_scale, mesh.input_hw) == (478, 1.5, (192, 192))
    assert mesh.output_names[:2] == ("output_mesh_identity", "conv_faceflag") and len(mesh.outputs) == 7
    rec = entries["faceres"].spec
    assert isinstance(rec, RecognitionSpec) and rec.outputs == (("global_pooling/Mean", 1024),)


def test_the_packaged_manifest_is_the_source_checkouts() -> None:
    assert (ROOT / "obs_faceswap" / "data" / "manifest.toml").read_bytes() == (
        ROOT / "models" / "manifest.toml"
    ).read_bytes()


# (entry, field removed or replaced, new value or None to remove, words the message must hold)
BROKEN = [
    ("yunet", "strides", None, "lacks the field 'strides'"),
    ("scrfd", "family", "retina", "'retina' (allowed: yunet, scrfd, blazeface)"),
    ("blazeface", "anchors_per_cell", [2, 6, 1], "one per stride (2)"),
    ("mesh468", "crop_scale", None, "lacks the field 'crop_scale'"),
    ("mesh478", "points", 500, "field 'outputs'"),
    ("faceres", "template", None, "lacks the field 'template'"),
    ("faceres", "outputs", None, "lacks the field 'outputs'"),
    ("faceres", "std", [1.0, 0.0, 1.0], "field 'std'"),
    ("faceres", "layout", "NWHC", "'NWHC' (allowed: NCHW, NHWC)"),
    ("mesh468", "input", [192], "field 'input'"),
]


@pytest.mark.parametrize(("name", "key", "value", "words"), BROKEN)
def test_a_broken_entry_names_the_manifest_entry_and_field(name: str, key: str, value: Any, words: str) -> None:
    fields = copy.deepcopy(raw_manifest()[name])
    if value is None:
        del fields[key]
    else:
        fields[key] = value
    with pytest.raises(ModelError) as e:
        parse_spec(name, fields, "models/manifest.toml")
    msg = str(e.value)
    assert msg.startswith(f"models/manifest.toml: entry [models.{name}]") and words in msg, msg


def test_a_broken_manifest_file_fails_when_it_loads(tmp_path: Path) -> None:
    text = manifest_path().read_text(encoding="utf-8").replace("crop_scale = 1.5        #", "#", 1)
    bad = tmp_path / "manifest.toml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ModelError, match=r"entry \[models.mesh468\] lacks the field 'crop_scale'"):
        load_manifest(bad)


class _T:
    def __init__(self, name: str, shape: list[Any]) -> None:
        self.name, self.shape = name, shape


class _Session:
    """Only the signature of a model (what ``check_*`` read), like onnxruntime's metadata."""

    def __init__(self, inputs: list[_T], outputs: list[_T]) -> None:
        self._inputs, self._outputs = inputs, outputs

    def get_inputs(self) -> list[_T]:
        return self._inputs

    def get_outputs(self) -> list[_T]:
        return self._outputs


def test_signature_checks_name_expected_and_found() -> None:
    spec = load_manifest()["mesh468"].spec
    assert isinstance(spec, MeshSpec)
    good = _Session(
        [_T("input_1:0", [1, 192, 192, 3])], [_T("conv2d_31:0", [1, 1, 1, 1]), _T("conv2d_21:0", [1, 1, 1, 1404])]
    )
    check_input(good, spec, "m.onnx", "landmarks.model")
    assert check_outputs(good, spec, "m.onnx", "landmarks.model") == ["conv2d_21:0", "conv2d_31:0"]
    nchw = _Session([_T("x", [1, 3, 192, 192])], good.get_outputs())
    with pytest.raises(
        ModelLoadError,
        match=r"m.onnx is not a mesh468 model \(landmarks.model\): expected one image "
        r"input \[N, 192, 192, 3\] \(NHWC\), found x \[1, 3, 192, 192\]",
    ):
        check_input(nchw, spec, "m.onnx", "landmarks.model")
    wrong = _Session(good.get_inputs(), [_T("conv2d_21", [1, 1, 1, 1434]), _T("conv2d_31", [1, 1, 1, 1])])
    with pytest.raises(
        ModelLoadError,
        match=r"missing or different: conv2d_21 \(last dimension 1404\)\. "
        r"Found conv2d_21 \[1, 1, 1, 1434\]",
    ):
        check_outputs(wrong, spec, "m.onnx", "landmarks.model")
