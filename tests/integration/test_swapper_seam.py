"""The swapper seam on real models and media: a swapper written against the protocol alone runs
through :class:`Pipeline` by setting, and no stage reads a lazy frame's unloaded pixels."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from obs_faceswap.config import BadgeConfig, BlendConfig, PipelineConfig, RuntimeConfig, SwapperConfig
from obs_faceswap.errors import ConfigError, ModelError
from obs_faceswap.frame import Box, LazyFrame, clip_box
from obs_faceswap.pipeline import Pipeline
from obs_faceswap.swap import Swapper
from obs_faceswap.swap.meshwarp import PhotoSwapper
from obs_faceswap.types import Face, ImageBGR
from tests.swappers import INVERT, InvertFace

PLUGIN = PipelineConfig(swapper=SwapperConfig(kind="plugin", plugin=INVERT))


@pytest.fixture(scope="module")
def clip(media) -> list[ImageBGR]:
    cap = cv2.VideoCapture(str(media("dfl_Obama_speaking.mp4")))
    out = []
    for _ in range(6):
        ok, f = cap.read()
        assert ok
        out.append(f)
    cap.release()
    return out


def test_plugin_swapper_inverts_the_face_through_the_pipeline(store, clip):
    with Pipeline(PLUGIN, store) as pipe:
        assert isinstance(pipe.swapper, InvertFace) and isinstance(pipe.swapper, Swapper)
        assert pipe.has_source  # it needs no photo
        frame = clip[0]
        out, report = pipe.process(frame)
        assert report.swapped == 1 and len(report.faces) == 1
        x0, y0, x1, y1 = report.changed_xyxy
        assert (x0, y0, x1, y1) == clip_box(report.faces[0].xyxy, frame.shape[1], frame.shape[0])
        # the face of dfl_Obama_speaking.mp4 (512x388) is ~145 px wide around (250, 200)
        assert 90 < x1 - x0 < 260 and 150 < (x0 + x1) / 2 < 350
        assert np.array_equal(out[y0:y1, x0:x1], 255 - frame[y0:y1, x0:x1])
        rest = np.ones(frame.shape[:2], bool)
        rest[y0:y1, x0:x1] = False
        assert np.array_equal(out[rest], frame[rest])
        swapper = pipe.swapper
    assert swapper.closed


def test_pipeline_takes_several_source_photos_and_gives_them_to_the_swapper(store, media):
    photos = [media("astronaut.png"), media("frec_obama.jpg")]
    with Pipeline(PLUGIN, store, source=photos) as pipe:
        names = [s.name for s in pipe.sources]
        assert names == [str(p) for p in photos]
        assert [s.name for s in pipe.swapper.sources] == names  # type: ignore[attr-defined]
        for s in pipe.sources:
            assert s.landmarks.shape == (468, 3) and s.keypoints.shape == (5, 2)


def test_photo_swapper_is_the_default_and_needs_a_source(store, clip):
    with Pipeline(PipelineConfig(), store) as pipe:
        assert isinstance(pipe.swapper, PhotoSwapper) and isinstance(pipe.swapper, Swapper)
        assert not pipe.has_source
        out, report = pipe.process(clip[0])
        assert report.swapped == 0 and np.array_equal(out, clip[0])


@pytest.mark.parametrize(
    ("content", "needle"), [(None, "face-swap model not found"), ("not a model\n", "corrupt or not an ONNX model")]
)
def test_unusable_model_files_are_a_clear_model_error(store, tmp_path, content, needle):
    model = tmp_path / "face.dfm"
    if content is not None:
        model.write_text(content)
    config = PipelineConfig(swapper=SwapperConfig(kind="model", model=str(model)))
    with pytest.raises(ModelError, match=needle) as e:
        Pipeline(config, store)
    assert model.name in str(e.value)


@pytest.mark.parametrize(
    ("plugin", "needle"),
    [
        ("tests.no_such_module:invert", "cannot import 'tests.no_such_module'"),
        ("tests.swappers:no_such_factory", "has no callable 'no_such_factory'"),
        ("tests.swappers:not_a_swapper", "does not implement obs_faceswap.swap.Swapper"),
    ],
)
def test_unusable_plugins_are_config_errors_naming_the_setting(store, plugin, needle):
    config = PipelineConfig(swapper=SwapperConfig(kind="plugin", plugin=plugin))
    with pytest.raises(ConfigError, match="swapper plugin") as e:
        Pipeline(config, store)
    assert plugin in str(e.value) and needle in str(e.value)


def test_switching_swappers_live_keeps_the_sources(store, media, clip):
    with Pipeline(PipelineConfig(), store, source=media("astronaut.png")) as pipe:
        photo = pipe.swapper
        pipe.update(PLUGIN)
        assert isinstance(pipe.swapper, InvertFace) and pipe.swapper.sources == pipe.sources
        pipe.update(PipelineConfig())
        assert isinstance(pipe.swapper, PhotoSwapper) and pipe.swapper is not photo
        assert pipe.process(clip[0])[1].swapped == 1
        with pytest.raises(ModelError):
            pipe.update(PipelineConfig(swapper=SwapperConfig(kind="model", model="x.dfm")))
        assert pipe.config == PipelineConfig() and isinstance(pipe.swapper, PhotoSwapper)


# -- the lazy-frame contract -------------------------------------------------------------------


#: What an unloaded pixel holds: a stage that reads one puts magenta noise into the output.
def _poison(shape: tuple[int, ...]) -> ImageBGR:
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, shape, dtype=np.uint8)
    noise[..., 1] //= 4
    return noise


class PoisonedFrame(LazyFrame):
    """A lazy frame over a BGR image whose buffer holds noise except in the loaded boxes.

    ``resize`` and ``warp`` convert from the image itself (as a real lazy frame converts from
    its planes), so everything a stage gets through the frame's own methods is right, and
    anything read from :attr:`array` outside a loaded box is noise.
    """

    def __init__(self, image: ImageBGR) -> None:
        self.image = image
        self.shape = (image.shape[0], image.shape[1], 3)
        self._array = _poison(image.shape)
        self.loaded: list[Box] = []

    @property
    def array(self) -> ImageBGR:
        return self._array

    def load(self, box: Sequence[float]) -> Box:
        b = clip_box(box, self.shape[1], self.shape[0])
        assert b is not None, box
        x0, y0, x1, y1 = b
        self._array[y0:y1, x0:x1] = self.image[y0:y1, x0:x1]
        self.loaded.append(b)
        return b

    def resize(self, size: tuple[int, int]) -> ImageBGR:
        return np.asarray(cv2.resize(self.image, size, interpolation=cv2.INTER_LINEAR), np.uint8)

    def warp(self, matrix: npt.ArrayLike, size: tuple[int, int], border: int = cv2.BORDER_CONSTANT) -> ImageBGR:
        out = cv2.warpAffine(
            self.image, np.asarray(matrix, np.float64), size, flags=cv2.INTER_LINEAR, borderMode=border
        )
        return np.asarray(out, np.uint8)


def run_both(config: PipelineConfig, store, clip, source=None, swapper=None):
    """Eager and lazy outputs of the same clip, frame by frame (inside the changed boxes)."""
    # One CPU backend for both: ``auto`` picks by timing, and two backends differ by ~1e-4 px.
    config = dataclasses.replace(config, runtime=RuntimeConfig(cpu_backend="onnxruntime"))
    eager, lazy = Pipeline(config, store, source=source), Pipeline(config, store, source=source)
    if swapper is not None:
        eager.swapper, lazy.swapper = swapper(), swapper()
    pairs = []
    with eager, lazy:
        for i, bgr in enumerate(clip):
            expected, rep_e = eager.process(bgr.copy(), i / 30)
            frame = PoisonedFrame(bgr)
            got, rep_l = lazy.process(frame, i / 30)
            assert got is frame.array
            assert rep_l.changed_boxes == rep_e.changed_boxes
            pairs.append((expected, got, rep_e))
    return pairs


def assert_same_inside_changes(pairs) -> None:
    for i, (expected, got, rep) in enumerate(pairs):
        assert rep.changed_boxes, f"frame {i}: nothing changed, so nothing was checked"
        for x0, y0, x1, y1 in rep.changed_boxes:
            diff = np.abs(got[y0:y1, x0:x1].astype(int) - expected[y0:y1, x0:x1]).max()
            assert diff == 0, f"frame {i}: box {(x0, y0, x1, y1)} differs by up to {diff}"


@pytest.mark.slow
@pytest.mark.parametrize("blend", ["feather", "seamless"])
def test_no_stage_reads_unloaded_pixels_of_a_lazy_frame(store, media, clip, blend):
    """Photo swapper, merge and badge on poisoned lazy frames give exactly the eager output."""
    config = PipelineConfig(blend=BlendConfig(mode=blend), badge=BadgeConfig(enabled=True, corner="top-left"))
    pairs = run_both(config, store, clip, source=media("astronaut.png"))
    assert all(rep.swapped == 1 for _, _, rep in pairs)
    assert_same_inside_changes(pairs)


class Overreaching(InvertFace):
    """Declares a smaller region than it reads (the bug the contract prevents)."""

    def reads(self, face: Face, frame_hw: tuple[int, int]) -> Box | None:
        box = super().reads(face, frame_hw)
        assert box is not None
        x0, y0, x1, y1 = box
        return x0 + (x1 - x0) // 4, y0, x1, y1


def test_the_poisoned_frame_catches_a_swapper_that_reads_more_than_it_declares(store, clip):
    """The check above can fail: a swapper under-declaring its reads is caught."""
    pairs = run_both(PLUGIN, store, clip[:2])
    assert_same_inside_changes(pairs)  # the honest one passes
    with pytest.raises(AssertionError, match="differs"):
        assert_same_inside_changes(run_both(PLUGIN, store, clip[:2], swapper=Overreaching))
