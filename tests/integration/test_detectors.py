"""Face detectors on real photos with the real models: YuNet, SCRFD (named and InsightFace's
unnamed 9-output layout), BlazeFace short and full range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from obs_faceswap.config import DetectorConfig
from obs_faceswap.errors import FrameFormatError, ModelLoadError, ModelNotFoundError
from obs_faceswap.nets.detector import SCRFD, BlazeFace, YuNet, create_detector
from obs_faceswap.tracking import box_iou
from obs_faceswap.types import Detections

# Faces located once by eye-checked YuNet runs (640 px input): xyxy per face, left to right.
# Every detector's boxes must overlap these; BlazeFace's boxes are square and start at the
# brows, so the IoU floor is set for that (measured 0.71-0.72 for BlazeFace, >= 0.85 others).
FACES: dict[str, list[tuple[float, float, float, float]]] = {
    "astronaut.png": [(181, 54, 274, 178)],
    "frec_two_people.jpg": [(234, 24, 385, 225), (790, 50, 939, 254)],
    "frec_obama.jpg": [(371, 85, 607, 421)],
}
MIN_IOU = 0.55
# Five keypoints from the same runs (image-left eye, image-right eye, nose, mouth corners).
KEYPOINTS: dict[str, list[list[tuple[float, float]]]] = {
    "astronaut.png": [[(205, 97), (248, 103), (222, 127), (201, 141), (239, 146)]],
    "frec_obama.jpg": [[(437, 210), (544, 204), (499, 276), (446, 327), (546, 323)]],
}
# Keypoints may differ from the reference by this fraction of the face width (BlazeFace's
# mouth corners are estimated from the mouth centre: measured <= 0.06 on these photos).
KEYPOINT_TOL = 0.1

KINDS = ("yunet", "scrfd", "blazeface")


@pytest.fixture(scope="module")
def detectors(store) -> dict[str, object]:
    out = {k: create_detector(DetectorConfig(kind=k, input_size=640), store) for k in KINDS}
    out["blazeface_full"] = BlazeFace(store.path("blazeface_full"), spec=store.detector_spec("blazeface_full"))
    return out


def _match(found: Detections, expected: list[tuple[float, float, float, float]]) -> list[int]:
    """Index of the found box matching each expected box (best IoU), asserting the floor."""
    assert len(found) == len(expected), f"found {len(found)} faces, expected {len(expected)}"
    idx = []
    for box in expected:
        ious = box_iou(box, found.xyxy)
        i = int(np.argmax(ious))
        assert ious[i] >= MIN_IOU, f"best IoU {ious[i]:.2f} with {box}; found {found.xyxy.round()}"
        idx.append(i)
    assert len(set(idx)) == len(idx)
    return idx


def _check_order(kps: np.ndarray) -> None:
    le, re, nose, lm, rm = kps
    assert le[0] < re[0] and lm[0] < rm[0], kps
    eyes_y, mouth_y = (le[1] + re[1]) / 2, (lm[1] + rm[1]) / 2
    assert eyes_y < nose[1] < mouth_y, kps


def test_create_detector_builds_each_kind(detectors) -> None:
    assert isinstance(detectors["yunet"], YuNet)
    assert isinstance(detectors["scrfd"], SCRFD)
    assert isinstance(detectors["blazeface"], BlazeFace)


@pytest.mark.parametrize("kind", [*KINDS, "blazeface_full"])
@pytest.mark.parametrize("photo", ["astronaut.png", "frec_two_people.jpg", "frec_obama.jpg"])
def test_detects_the_faces_with_ordered_keypoints(detectors, read_image, kind: str, photo: str) -> None:
    dets = detectors[kind].detect(read_image(photo))
    assert dets.xyxy.dtype == np.float32 and dets.keypoints.shape == (len(dets), 5, 2)
    assert np.all((dets.scores > 0) & (dets.scores <= 1))
    for i in _match(dets, FACES[photo]):
        _check_order(dets.keypoints[i])
        box = dets.xyxy[i]
        inside = (dets.keypoints[i] >= box[:2] - 0.1 * (box[2:] - box[:2])) & (
            dets.keypoints[i] <= box[2:] + 0.1 * (box[2:] - box[:2])
        )
        assert inside.all(), (box, dets.keypoints[i])


@pytest.mark.parametrize("kind", [*KINDS, "blazeface_full"])
@pytest.mark.parametrize("photo", sorted(KEYPOINTS))
def test_keypoints_land_on_the_features(detectors, read_image, kind: str, photo: str) -> None:
    dets = detectors[kind].detect(read_image(photo))
    (i,) = _match(dets, FACES[photo])
    ref = np.array(KEYPOINTS[photo][0], np.float32)
    width = FACES[photo][0][2] - FACES[photo][0][0]
    err = np.linalg.norm(dets.keypoints[i] - ref, axis=1) / width
    assert err.max() <= KEYPOINT_TOL, err.round(3)


@pytest.mark.parametrize("kind", [*KINDS, "blazeface_full"])
def test_returns_empty_when_no_face(detectors, read_image, kind: str) -> None:
    gray = np.full((480, 640, 3), 128, np.uint8)
    background = np.ascontiguousarray(read_image("frec_two_people.jpg")[:, 420:720])  # between the two
    for image in (gray, background):
        dets = detectors[kind].detect(image)
        assert len(dets) == 0
        assert dets.xyxy.shape == (0, 4) and dets.scores.shape == (0,) and dets.keypoints.shape == (0, 5, 2)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((64, 64, 3), np.float32),
        np.zeros((64, 64), np.uint8),
        np.zeros((64, 64, 4), np.uint8),
        np.zeros((4, 4, 3), np.uint8),
        [[0, 0, 0]],
    ],
    ids=["float32", "gray2d", "bgra", "tiny", "list"],
)
def test_rejects_bad_frames(detectors, kind: str, bad) -> None:
    with pytest.raises(FrameFormatError):
        detectors[kind].detect(bad)


def test_detects_in_non_square_and_rotated_frames(detectors, read_image) -> None:
    """Letterboxing maps back correctly for a wide frame and keeps the keypoint order on a
    mirrored image (the eyes swap sides, so "left" stays image-left)."""
    img = read_image("frec_two_people.jpg")
    mirrored = np.ascontiguousarray(img[:, ::-1])
    w = img.shape[1]
    expected = sorted([(w - b[2], b[1], w - b[0], b[3]) for b in FACES["frec_two_people.jpg"]])
    for kind in KINDS:
        dets = detectors[kind].detect(mirrored)
        for i in _match(dets, expected):
            _check_order(dets.keypoints[i])


# --- SCRFD files in other layouts (users' det_10g.onnx) -----------------------------------


def _rewrite_scrfd(src: Path, dst: Path, order: list[str], rename: dict[str, str], flatten: bool = False) -> Path:
    """Copy of an SCRFD graph with outputs renamed/reordered, optionally unbatched ([A, C])."""
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    g = model.graph
    by_name = {o.name: o for o in g.output}
    new_outputs = []
    for name in order:
        new = rename.get(name, name)
        if flatten:
            c = {"score": 1, "bbox": 4, "kps": 10}[name.split("_")[0]]
            shape_name = f"{new}_shape"
            g.initializer.append(numpy_helper.from_array(np.array([-1, c], np.int64), shape_name))
            g.node.append(helper.make_node("Reshape", [name, shape_name], [new]))
            new_outputs.append(helper.make_tensor_value_info(new, onnx.TensorProto.FLOAT, ["A", c]))
        else:
            for node in g.node:
                for k, o in enumerate(node.output):
                    if o == name:
                        node.output[k] = new
            out = by_name[name]
            out.name = new
            new_outputs.append(out)
    del g.output[:]
    g.output.extend(new_outputs)
    onnx.save(model, str(dst))
    return dst


NAMED = [f"{k}_{s}" for k in ("score", "bbox", "kps") for s in (8, 16, 32)]


@pytest.fixture(scope="module")
def scrfd_variants(store, tmp_path_factory) -> dict[str, Path]:
    src = store.path("scrfd")
    d = tmp_path_factory.mktemp("scrfd")
    # det_10g.onnx's outputs carry numeric names and come scores x3, boxes x3, keypoints x3.
    g = onnx.load(str(src)).graph
    taken = {v for node in g.node for v in (*node.input, *node.output)} | {i.name for i in g.initializer}
    free = (str(n) for n in range(448, 100000) if str(n) not in taken)
    numeric = {n: next(free) for n in NAMED}
    return {
        "unnamed": _rewrite_scrfd(src, d / "unnamed.onnx", NAMED, numeric),
        "unnamed_unbatched": _rewrite_scrfd(src, d / "unbatched.onnx", NAMED, numeric, flatten=True),
        "named_shuffled": _rewrite_scrfd(src, d / "shuffled.onnx", NAMED[6:] + NAMED[:3] + NAMED[3:6], {}),
        "no_keypoints": _rewrite_scrfd(src, d / "nokps.onnx", NAMED[:6], numeric),
    }


@pytest.mark.parametrize("variant", ["unnamed", "unnamed_unbatched", "named_shuffled"])
def test_scrfd_reads_insightface_layouts(store, read_image, scrfd_variants, detectors, variant: str) -> None:
    det = create_detector(DetectorConfig(kind="scrfd", model=str(scrfd_variants[variant]), input_size=640), store)
    assert isinstance(det, SCRFD)
    if variant != "named_shuffled":
        assert not any(n.startswith(("score", "bbox", "kps")) for n in det.output_names)
    for photo in ("frec_two_people.jpg", "astronaut.png"):
        img = read_image(photo)
        got, want = det.detect(img), detectors["scrfd"].detect(img)
        assert len(got) == len(want) == len(FACES[photo])
        np.testing.assert_allclose(got.xyxy, want.xyxy, atol=1e-3)
        np.testing.assert_allclose(got.keypoints, want.keypoints, atol=1e-3)
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)


def test_scrfd_without_keypoints_is_refused(store, scrfd_variants) -> None:
    with pytest.raises(ModelLoadError, match="keypoints"):
        create_detector(DetectorConfig(kind="scrfd", model=str(scrfd_variants["no_keypoints"])), store)


def test_wrong_model_for_kind_is_refused(store) -> None:
    with pytest.raises(ModelLoadError):
        create_detector(DetectorConfig(kind="scrfd", model=str(store.path("yunet"))), store)
    with pytest.raises(ModelLoadError, match=r"blazeface_full_range.onnx is not a blazeface model .*\[N, 128, 128"):
        BlazeFace(store.path("blazeface_full"), spec=store.detector_spec("blazeface"))


# Every pairing of a detector kind with another role's or kind's real file: a clear ModelLoadError
# naming the file, the kind and the setting, never a KeyError on the first frame.
WRONG_FILES = [
    ("yunet", "scrfd", "outputs cls_8"),
    ("yunet", "mesh468", "input"),
    ("yunet", "faceres", "input"),
    ("scrfd", "yunet", "SCRFD"),
    ("scrfd", "blazeface", "input"),
    ("blazeface", "yunet", "input"),
    ("blazeface", "blazeface_full", "input"),
    ("blazeface", "mesh468", "input"),
]


@pytest.mark.parametrize(("kind", "other", "what"), WRONG_FILES)
def test_a_wrong_file_for_the_detector_kind_is_named_clearly(store, read_image, kind, other, what) -> None:
    with pytest.raises(ModelLoadError) as e:
        det = create_detector(DetectorConfig(kind=kind, model=str(store.path(other))), store)
        det.detect(read_image("astronaut.png"))  # must not get here
    msg = str(e.value)
    assert store.entry(other).file in msg and what in msg, msg
    if what != "SCRFD":  # SCRFD's own message lists both accepted output layouts
        assert f"not a {kind} model (detector.model, --detector-model)" in msg and "ound" in msg


def test_missing_model_override(store, tmp_path) -> None:
    with pytest.raises(ModelNotFoundError):
        create_detector(DetectorConfig(kind="scrfd", model=str(tmp_path / "det_10g.onnx")), store)


def test_scrfd_input_size_follows_config(store, read_image) -> None:
    det = create_detector(DetectorConfig(kind="scrfd", input_size=320), store)
    assert det.side == 320
    dets = det.detect(read_image("frec_obama.jpg"))
    _match(dets, FACES["frec_obama.jpg"])
