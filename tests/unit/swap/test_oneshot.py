"""Contract tests for the one-photo family: every row of the spec table, on ONNX graphs with the
family's exact signature and a known function (docs/model-formats.md)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from obs_faceswap import align, merge
from obs_faceswap.config import RuntimeConfig
from obs_faceswap.errors import InputError, ModelLoadError
from obs_faceswap.landmark_indices import LEFT_EYE, MOUTH_LEFT_CORNER, MOUTH_RIGHT_CORNER, NOSE_TIP, RIGHT_EYE
from obs_faceswap.swap import SourceFace, Swapper
from obs_faceswap.swap.oneshot import ArcFace, OneShotSwapper, read_emap
from obs_faceswap.swap.specs import SPECS, OneShotSpec
from obs_faceswap.types import Face
from tests import swap_graphs as g

CPU = RuntimeConfig(providers=("cpu",), threads=1, cpu_backend="onnxruntime")
#: uint8 rounding through float32 normalisation and a bilinear warp there and back.
PIXEL_TOL = 2.0


def face_at(kps: np.ndarray, track_id: int = 0) -> Face:
    """A tracked face whose mesh yields exactly these five keypoints."""
    lm = np.repeat(np.asarray(kps, np.float32).mean(axis=0, keepdims=True), 468, axis=0)
    lm = np.concatenate([lm, np.zeros((468, 1), np.float32)], axis=1)
    lm[list(RIGHT_EYE), :2] = kps[0]
    lm[list(LEFT_EYE), :2] = kps[1]
    lm[NOSE_TIP, :2] = kps[2]
    lm[MOUTH_RIGHT_CORNER, :2] = kps[3]
    lm[MOUTH_LEFT_CORNER, :2] = kps[4]
    return Face(track_id, lm)


#: A face about 200 px wide in a 640×480 frame, slightly rotated.
KPS = np.array([[260, 200], [380, 195], [322, 262], [272, 320], [372, 316]], np.float32)


def textured_frame(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(30, 225, (15, 20, 3), dtype=np.uint8)
    return np.asarray(cv2.resize(small, (640, 480), interpolation=cv2.INTER_CUBIC), np.uint8)


def source_face(image: np.ndarray | None = None, name: str = "src.png") -> SourceFace:
    img = image if image is not None else textured_frame(7)
    return SourceFace(img, np.zeros((468, 3), np.float32), KPS.copy(), name)


@pytest.fixture(scope="module")
def arcface(tmp_path_factory: pytest.TempPathFactory) -> ArcFace:
    return ArcFace(g.arcface_model(tmp_path_factory.mktemp("arc") / "w600k_r50.onnx"), CPU)


def build(tmp: Path, spec: OneShotSpec, function: str, arcface: ArcFace | None, **kw: object) -> OneShotSwapper:
    path = g.oneshot_model(tmp / f"{spec.name}.onnx", spec, function, **kw)  # type: ignore[arg-type]
    conv = g.converter_model(tmp / "conv.onnx") if spec.source == "converter" else None
    return OneShotSwapper(path, recognizer=arcface, runtime=CPU, converter=conv)


@pytest.mark.parametrize("name", list(SPECS))
def test_identity_model_returns_the_live_crop_for_every_family(tmp_path: Path, arcface: ArcFace, name: str) -> None:
    spec = SPECS[name]
    sw = build(tmp_path, spec, "identity", arcface)
    assert isinstance(sw, Swapper)
    assert sw.spec.name == name  # recognised from signature + file name
    frame = textured_frame()
    sw.set_source([source_face()])
    r = sw.swap(frame, face_at(KPS))
    assert r is not None and r.live is not None
    assert r.crop.shape == (spec.size, spec.size, 3)
    # the crop is the family's template crop ...
    want, m = align.warp_face(frame, KPS, spec.template, spec.size)
    assert np.abs(r.live.astype(int) - want.astype(int)).max() == 0
    # ... the model's identity gives it back (normalisation and its inverse agree) ...
    assert np.abs(r.crop.astype(float) - want.astype(float)).mean() < 0.6
    # ... and the transform maps crop pixels back onto the template points in the frame.
    pts = align.template_points(spec.template, spec.size)
    back = pts @ r.transform[:, :2].T + r.transform[:, 2]
    assert np.linalg.norm(back - KPS, axis=1).mean() < 6.0  # least-squares residual of these points
    assert np.allclose(r.transform @ np.vstack([m, [0, 0, 1]]), [[1, 0, 0], [0, 1, 0]], atol=1e-4)
    # Pasted back, the face region is unchanged.
    out = frame.copy()
    merge.paste_back(out, r)
    x0, y0, x1, y1 = 280, 210, 360, 300
    assert np.abs(out[y0:y1, x0:x1].astype(float) - frame[y0:y1, x0:x1]).mean() < PIXEL_TOL


@pytest.mark.parametrize("name", list(SPECS))
def test_channel_order_is_rgb_in_and_out(tmp_path: Path, arcface: ArcFace, name: str) -> None:
    spec = SPECS[name]
    sw = build(tmp_path, spec, "red", arcface)
    sw.set_source([source_face()])
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[..., 2] = 200  # pure red in BGR
    r = sw.swap(frame, face_at(KPS))
    assert r is not None
    # every output channel = the input's first (red) channel: grey 200 only if RGB went in
    assert np.abs(r.crop[spec.size // 2, spec.size // 2].astype(int) - 200).max() <= 2


@pytest.mark.parametrize("name", list(SPECS))
def test_fixed_colour_model_output_is_scaled_back_to_bgr(tmp_path: Path, arcface: ArcFace, name: str) -> None:
    spec = SPECS[name]
    sw = build(tmp_path, spec, "colour", arcface, colour_rgb=(0.8, 0.4, 0.2))
    sw.set_source([source_face()])
    r = sw.swap(textured_frame(), face_at(KPS))
    assert r is not None
    assert np.abs(r.crop.reshape(-1, 3).mean(axis=0) - [51, 102, 204]).max() < 1.0


@pytest.mark.parametrize("name", list(SPECS))
def test_preprocess_uses_the_family_normalisation(tmp_path: Path, arcface: ArcFace, name: str) -> None:
    spec = SPECS[name]
    sw = build(tmp_path, spec, "identity", arcface)
    crop = np.zeros((spec.size, spec.size, 3), np.uint8)
    crop[..., 0] = 255  # blue
    x = sw.preprocess(crop)
    assert x.shape == (1, 3, spec.size, spec.size)
    want = (np.array([0.0, 0.0, 1.0]) - spec.mean) / np.array(spec.std)  # RGB order
    assert np.allclose(x[0, :, 0, 0], want, atol=1e-5)


def test_inswapper_latent_is_normalised_embedding_times_emap_normalised_again(tmp_path: Path, arcface: ArcFace) -> None:
    spec = SPECS["inswapper_128"]
    rng = np.random.default_rng(3)
    emap = rng.normal(size=(512, 512)).astype(np.float32)
    sw = build(tmp_path, spec, "source", arcface, emap=emap)
    assert np.array_equal(read_emap(sw.path), emap)  # dropped by onnxruntime, read with onnx
    src = source_face()
    sw.set_source([src])
    e = arcface.embed(src.image, src.keypoints)
    latent = (e / np.linalg.norm(e)) @ emap
    latent /= np.linalg.norm(latent)
    assert np.allclose(sw.latent(e), latent, atol=1e-5)
    r = sw.swap(textured_frame(), face_at(KPS))
    assert r is not None
    # the graph paints source[0:3] as RGB: what reached the model is that latent
    want_bgr = np.clip(latent[:3][::-1], 0, 1) * 255
    assert np.abs(r.crop.reshape(-1, 3).mean(axis=0) - want_bgr).max() < 1.0


def test_several_source_photos_average_into_one_identity(tmp_path: Path, arcface: ArcFace) -> None:
    spec = SPECS["hyperswap_1a_256"]
    sw = build(tmp_path, spec, "source", arcface)
    a, b = source_face(textured_frame(1)), source_face(textured_frame(2))
    sw.set_source([a, b])
    mean = (arcface.embed(a.image, a.keypoints) + arcface.embed(b.image, b.keypoints)) / 2
    assert sw._source is not None
    assert np.allclose(sw._source[0], mean / np.linalg.norm(mean), atol=1e-5)


def test_converter_families_feed_the_converted_embedding(tmp_path: Path, arcface: ArcFace) -> None:
    src = source_face()
    e = arcface.embed(src.image, src.keypoints)
    conv = e * 2.0 + 0.25  # converter_model's function
    for name, normalised in (("simswap_256", True), ("ghost_2_256", False)):
        sw = build(tmp_path, SPECS[name], "identity", arcface)
        sw.set_source([src])
        want = conv / np.linalg.norm(conv) if normalised else conv
        assert sw._source is not None and np.allclose(sw._source[0], want, rtol=1e-4, atol=1e-4), name


@pytest.mark.parametrize("name", ["blendswap_256", "uniface_256"])
def test_image_source_families_feed_the_aligned_source_photo(tmp_path: Path, name: str) -> None:
    spec = SPECS[name]
    sw = build(tmp_path, spec, "source", None)
    photo = np.zeros((480, 640, 3), np.uint8)
    photo[:] = (40, 120, 200)  # BGR
    sw.set_source([source_face(photo)])
    r = sw.swap(textured_frame(), face_at(KPS))
    assert r is not None
    assert np.abs(r.crop.reshape(-1, 3).mean(axis=0) - [40, 120, 200]).max() < 1.5


def test_no_source_means_no_swap(tmp_path: Path, arcface: ArcFace) -> None:
    sw = build(tmp_path, SPECS["inswapper_128"], "identity", arcface)
    assert sw.swap(textured_frame(), face_at(KPS)) is None
    with pytest.raises(InputError):
        sw.set_source([])


def test_shared_signature_is_told_apart_by_file_name_or_refused(tmp_path: Path, arcface: ArcFace) -> None:
    path = g.oneshot_model(tmp_path / "my_swapper.onnx", SPECS["hyperswap_1a_256"], "identity")
    with pytest.raises(ModelLoadError, match="hyperswap_1a_256.*simswap_256|--model-family"):
        OneShotSwapper(path, recognizer=arcface, runtime=CPU)
    sw = OneShotSwapper(path, recognizer=arcface, runtime=CPU, family="hyperswap_1b_256")
    assert sw.spec.name == "hyperswap_1b_256"


@pytest.mark.parametrize("case", ["wrong_names", "wrong_shape", "no_emap", "text", "truncated"])
def test_malformed_files_get_a_clear_error(tmp_path: Path, arcface: ArcFace, case: str) -> None:
    spec = SPECS["inswapper_128"]
    p = tmp_path / "inswapper_128.onnx"
    if case == "wrong_names":
        g.oneshot_model(p, spec, "identity", target_name="face")
        match = "named 'target' and 'source'"
    elif case == "wrong_shape":
        g.oneshot_model(p, spec, "identity", source_shape=(256,))
        match = r"'source' must be \[1, 512\]"
    elif case == "no_emap":
        g.oneshot_model(p, spec, "identity", with_emap=False)
        match = "emap"
    elif case == "text":
        p.write_text("this is not a model\n")
        match = "corrupt or not an ONNX model"
    else:
        g.oneshot_model(p, spec, "identity")
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
        match = "corrupt or not an ONNX model"
    with pytest.raises(ModelLoadError, match=match) as e:
        OneShotSwapper(p, recognizer=arcface, runtime=CPU)
    assert p.name in str(e.value)


def test_recognizer_with_the_wrong_signature_is_refused(tmp_path: Path) -> None:
    p = g.converter_model(tmp_path / "w600k_r50.onnx")
    with pytest.raises(ModelLoadError, match=r"ArcFace.*\[1, 3, 112, 112\]"):
        ArcFace(p, CPU)


def test_fp16_model_runs_with_fp16_inputs(tmp_path: Path, arcface: ArcFace) -> None:
    from onnx import TensorProto

    p = g.oneshot_model(
        tmp_path / "inswapper_128_fp16.onnx", SPECS["inswapper_128"], "identity", elem=TensorProto.FLOAT16
    )
    sw = OneShotSwapper(p, recognizer=arcface, runtime=CPU)
    sw.set_source([source_face()])
    frame = textured_frame()
    r = sw.swap(frame, face_at(KPS))
    assert r is not None and r.live is not None
    assert np.abs(r.crop.astype(float) - r.live).mean() < 1.0
