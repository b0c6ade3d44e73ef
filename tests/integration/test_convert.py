"""MediaPipe's .tflite originals, from the pinned mediapipe wheel on PyPI, converted by
obs_faceswap/convert.py: the same file every time, and the same numbers as the tf2onnx files
in ../shared/models on real faces.

Needs the wheel (33 MB): downloaded from PyPI once into ``.pytest_cache/obs-faceswap-archives``
(or ``$OBS_FACESWAP_ARCHIVES``); skipped, saying so, only when PyPI is unreachable and no copy
is there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from obs_faceswap import convert
from obs_faceswap.config import DetectorConfig
from obs_faceswap.errors import DownloadError
from obs_faceswap.models import ModelStore, load_manifest
from obs_faceswap.nets.detector import create_detector
from obs_faceswap.nets.landmarks import FaceMesh, Roi

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# The converter writes the same float32 weights and the same operators as tf2onnx did; onnxruntime
# then gives bit-identical outputs (measured max difference 0.0). Allow float rounding only.
MAX_LANDMARK_DIFF_PX = 1e-3
MAX_OUTPUT_DIFF = 1e-4
PHOTOS = ("astronaut.png", "frec_obama.jpg", "frec_two_people.jpg", "faces/pichai_1.jpg", "faces/perry_3.jpg")


@pytest.fixture(scope="module")
def archive_cache() -> Path:
    """A cache directory holding the verified wheels the originals come from (downloaded once)."""
    cache = Path(os.environ.get("OBS_FACESWAP_ARCHIVES") or ROOT / ".pytest_cache" / "obs-faceswap-archives")
    for e in load_manifest().values():
        if e.get("convert"):
            spec = convert.ConvertSpec.from_table(e.name, e.get("convert"))
            try:
                convert.fetch_archive(spec, cache, progress=False)
            except DownloadError as err:
                pytest.skip(f"{spec.archive_name} is not cached in {cache} and PyPI is unreachable: {err}")
    return cache


@pytest.fixture(scope="module")
def converted(archive_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """mesh468 and blazeface as the user's cache gets them: through ModelStore, nothing else found."""
    cache = tmp_path_factory.mktemp("user-cache")
    shutil.copytree(archive_cache / "archives", cache / "archives")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("OBS_FACESWAP_MODELS", raising=False)
        store = ModelStore(tmp_path_factory.mktemp("empty"), cache_dir=cache, progress=False)
        return {name: store.path(name) for name in ("mesh468", "blazeface", "blazeface_full")}


def test_conversion_is_reproducible_and_pinned(converted: dict[str, Path]) -> None:
    manifest = load_manifest()
    for name, path in converted.items():
        conv = manifest[name].get("convert")
        assert path.parent.name == "models" and path.name == manifest[name].file
        assert hashlib.sha256(path.read_bytes()).hexdigest() == conv["sha256"]
        assert path.stat().st_size == conv["size"]


def test_converted_mesh_gives_the_same_landmarks_on_real_faces(converted, store, read_image) -> None:
    detector = create_detector(DetectorConfig(input_size=640), store)
    ours = FaceMesh(converted["mesh468"])
    reference = FaceMesh(store.path("mesh468"))
    assert ours.output_names == reference.output_names and ours.output_names[0] == "conv2d_21"
    faces = 0
    for photo in PHOTOS:
        image = read_image(photo)
        dets = detector.detect(image)
        for i in range(len(dets)):
            roi = Roi.from_keypoints(dets.xyxy[i], dets.keypoints[i], reference.crop_scale)
            pts_ref, score_ref = reference.infer(image, roi)
            pts, score = ours.infer(image, roi)
            assert pts.shape == pts_ref.shape == (468, 3)
            assert np.abs(pts - pts_ref).max() <= MAX_LANDMARK_DIFF_PX, photo
            assert abs(score - score_ref) <= MAX_OUTPUT_DIFF and score > 0.5, photo
            faces += 1
    assert faces >= len(PHOTOS)


def test_converted_blazefaces_give_the_same_outputs_on_real_faces(converted, models_dir, read_image) -> None:
    import cv2
    import onnxruntime as ort

    for name, side in (("blazeface", 128), ("blazeface_full", 192)):
        ours = ort.InferenceSession(str(converted[name]), providers=["CPUExecutionProvider"])
        reference = load_manifest()[name].file
        ref = ort.InferenceSession(str(models_dir / reference), providers=["CPUExecutionProvider"])
        assert [o.name for o in ours.get_outputs()] == [o.name for o in ref.get_outputs()]
        for photo in PHOTOS:
            rgb = cv2.cvtColor(cv2.resize(read_image(photo), (side, side)), cv2.COLOR_BGR2RGB)
            blob = (rgb.astype(np.float32)[None] - 127.5) / 127.5
            a = ours.run(None, {ours.get_inputs()[0].name: blob})
            b = ref.run(None, {ref.get_inputs()[0].name: blob})
            for x, y in zip(a, b, strict=True):
                assert np.abs(x - y).max() <= MAX_OUTPUT_DIFF * max(1.0, float(np.abs(y).max())), (name, photo)


def test_a_corrupt_archive_is_never_used(archive_cache: Path, tmp_path: Path, monkeypatch) -> None:
    spec = convert.ConvertSpec.from_table("mesh468", load_manifest()["mesh468"].get("convert"))
    cache = tmp_path / "cache"
    (cache / "archives").mkdir(parents=True)
    bad = cache / "archives" / spec.archive_name
    data = bytearray((archive_cache / "archives" / spec.archive_name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    # Same size, wrong digest: fetch_archive downloads again (here: a URL that cannot answer).
    monkeypatch.setattr(convert, "download", _no_network)
    with pytest.raises(DownloadError, match="unreachable"):
        convert.fetch_archive(spec, cache, progress=False)


def _no_network(url: str, out: object, **_: object) -> None:
    raise DownloadError(f"cannot download {url}: network unreachable (test)")
