"""Command-line parsing, option → PipelineConfig mapping, models commands and error handling."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from obs_faceswap.cli import (
    FIELD_OPTIONS,
    FLAG_OPTIONS,
    INDEX_MAX_FACES,
    build_config,
    build_parser,
    main,
    parse_args,
    side_by_side,
)
from obs_faceswap.config import PipelineConfig
from obs_faceswap.errors import ConfigError

SWAP = ["swap", "--source", "s.png", "--input", "in.mp4", "--output", "out.mp4"]


def config_for(*extra: str) -> PipelineConfig:
    return build_config(build_parser().parse_args([*SWAP, *extra]))


def test_no_options_give_the_default_config():
    assert config_for() == PipelineConfig()


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["--detector", "scrfd"], "detector.kind", "scrfd"),
        (["--detector-model", "det.onnx"], "detector.model", "det.onnx"),
        (["--det-threshold", "0.4"], "detector.score_threshold", 0.4),
        (["--det-size", "640"], "detector.input_size", 640),
        (["--landmarks", "mesh478"], "landmarks.kind", "mesh478"),
        (["--detect-interval", "1"], "tracking.detect_interval", 1),
        (["--max-faces", "2"], "tracking.max_faces", 2),
        (["--no-smoothing"], "tracking.smoothing", False),
        (["--select", "all"], "selection.mode", "all"),
        (["--feather", "0.2"], "swapper.photo.mask.feather", 0.2),
        (["--erode", "0.05"], "swapper.photo.mask.erode", 0.05),
        (["--keep-eyes"], "swapper.photo.mask.keep_eyes", True),
        (["--no-keep-mouth"], "swapper.photo.mask.keep_mouth", False),
        (["--no-trim-hair"], "swapper.photo.mask.trim_hair", False),
        (["--color", "linear"], "swapper.photo.color.mode", "linear"),
        (["--color-strength", "0.5"], "swapper.photo.color.strength", 0.5),
        (["--blend", "seamless"], "blend.mode", "seamless"),
        (["--opacity", "0.7"], "blend.opacity", 0.7),
        (["--texture-size", "1024"], "swapper.photo.texture_size", 1024),
        (["--badge"], "badge.enabled", True),
        (["--threads", "2"], "runtime.threads", 2),
        (["--device-id", "1"], "runtime.device_id", 1),
        (["--provider", "cuda,cpu"], "runtime.providers", ("cuda", "cpu")),
        (["--provider", "CPU"], "runtime.providers", ("cpu",)),
    ],
)
def test_option_maps_to_config_field(argv, field, value):
    cfg = config_for(*argv)
    obj = cfg
    for part in field.split("."):
        obj = getattr(obj, part)
    assert obj == value
    # ... and nothing else changed.
    section = field.split(".")[0]
    for name in ("detector", "landmarks", "tracking", "swapper", "blend", "badge", "selection"):
        if name != section:
            assert getattr(cfg, name) == getattr(PipelineConfig(), name), name


def test_every_mapped_option_exists_in_the_parser():
    dests = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["swap"]._actions}
    assert set(FIELD_OPTIONS) <= dests
    assert set(FLAG_OPTIONS) <= dests


def test_reference_and_face_index_imply_their_mode():
    cfg = config_for("--reference", "me.jpg")
    assert (cfg.selection.mode, cfg.selection.reference) == ("reference", "me.jpg")
    assert cfg.selection.min_similarity == PipelineConfig().selection.min_similarity
    assert config_for("--reference", "me.jpg", "--reference-threshold", "0.7").selection.min_similarity == 0.7
    cfg = config_for("--face-index", "2")
    assert (cfg.selection.mode, cfg.selection.index) == ("index", 2)
    assert config_for("--select", "index", "--face-index", "1").selection.index == 1


def test_face_index_counts_every_face_unless_max_faces_is_given():
    # With the default 4 tracked faces, the 4 highest-scoring ones would be counted, not the
    # leftmost ones: index mode tracks every face.
    assert config_for("--face-index", "0").tracking.max_faces == INDEX_MAX_FACES
    assert config_for("--face-index", "1", "--max-faces", "3").tracking.max_faces == 3
    with pytest.raises(ConfigError, match="--face-index 3 needs --max-faces 4 or more"):
        config_for("--face-index", "3", "--max-faces", "2")


def test_reference_threshold_needs_a_reference():
    with pytest.raises(ConfigError, match="--reference-threshold needs --reference"):
        config_for("--reference-threshold", "0.6")


@pytest.mark.parametrize(
    "argv",
    [
        ["models", "--offline", "fetch", "mesh468"],
        ["models", "fetch", "--offline", "mesh468"],
        ["--offline", "models", "fetch", "mesh468"],
        ["models", "fetch", "mesh468", "--offline"],
    ],
)
def test_common_options_work_anywhere_on_the_line(argv):
    args = parse_args(argv)
    assert args.offline is True
    assert args.func.__name__ == "cmd_models_fetch" and args.names == ["mesh468"]
    assert parse_args(["models", "fetch"]).offline is False  # defaults still apply


def test_options_before_and_after_the_command_combine():
    args = parse_args(["--models", "/m", "swap", "--source", "s.png", "-i", "in.mp4", "-o", "o.mp4", "--threads", "2"])
    assert (args.models, args.threads, args.provider, args.verbose) == ("/m", 2, "auto", 0)
    args = parse_args(["-v", "models", "-q", "list"])
    assert (args.verbose, args.quiet) == (1, True)


@pytest.mark.parametrize(
    "argv",
    [
        ["--select", "all", "--reference", "me.jpg"],
        ["--reference", "me.jpg", "--face-index", "1"],
        ["--select", "reference"],  # reference mode without a photo
        ["--opacity", "1.5"],
        ["--feather", "-0.1"],
        ["--detect-interval", "0"],
        ["--provider", "auto,cuda"],
        ["--provider", "quantum"],
        ["--threads", "-1"],
        ["--badge-text", "x" * 65],
    ],
)
def test_contradictory_or_out_of_range_options_are_config_errors(argv):
    with pytest.raises(ConfigError):
        config_for(*argv)


def test_badge_text_or_corner_imply_badge():
    cfg = config_for("--badge-text", "deepfake", "--badge-corner", "top-left")
    assert (cfg.badge.enabled, cfg.badge.text, cfg.badge.corner) == (True, "deepfake", "top-left")
    assert config_for("--badge-corner", "top-right").badge.enabled


def test_bad_option_value_exits_2_with_one_line_and_no_traceback(capsys):
    assert main([*SWAP, "--opacity", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("obs-faceswap: error: --opacity must be in [0.0, 1.0]")
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--opacity", "3"], "--opacity must be in [0.0, 1.0]; got 3.0"),
        (["--feather", "0.9"], "--feather must be in [0.0, 0.5]; got 0.9"),
        (["--det-threshold", "2"], "--det-threshold must be in [0.0, 1.0]; got 2.0"),
        (["--detect-interval", "0"], "--detect-interval must be in [1, 1000]; got 0"),
        (["--threads", "-1"], "--threads"),
        (["--select", "reference"], "--select 'reference' needs --reference"),
        (["--reference", "me.jpg", "--reference-threshold", "1.5"], "--reference-threshold must be in [0.0, 1.0]"),
    ],
)
def test_errors_name_the_flags_not_the_config_keys(argv, expected):
    with pytest.raises(ConfigError) as e:
        config_for(*argv)
    assert expected in str(e.value)
    assert not re.search(r"\b(blend|mask|detector|tracking|selection|runtime)\.", str(e.value)), str(e.value)


def test_swap_needs_output_or_preview(capsys):
    assert main(["swap", "--source", "s.png", "--input", "in.mp4"]) == 2
    assert "--output FILE, --preview" in capsys.readouterr().err


def test_missing_input_file_is_reported(capsys, media, tmp_path):
    assert (
        main(
            [
                "swap",
                "--source",
                str(media("astronaut.png")),
                "--input",
                str(tmp_path / "nope.mp4"),
                "--output",
                str(tmp_path / "o.mp4"),
            ]
        )
        == 2
    )
    assert "input not found" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_output_type_must_match_input(capsys, media, tmp_path):
    assert (
        main(
            [
                "swap",
                "--source",
                str(media("astronaut.png")),
                "--input",
                str(media("frec_biden.jpg")),
                "--output",
                str(tmp_path / "o.mp4"),
            ]
        )
        == 2
    )
    assert "the input is an image" in capsys.readouterr().err
    clip = str(media("dfl_Obama_speaking.mp4"))
    assert main(["swap", "--source", str(media("astronaut.png")), "--input", clip, "--output", clip]) == 2
    assert "is the input file" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["swap", "--source", "x"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert "obs-faceswap 0.1.0" in capsys.readouterr().out


# -- models ---------------------------------------------------------------------------------------
def test_models_list_shows_state_and_defaults(capsys, models_dir):
    assert main(["models", "list", "--models", str(models_dir), "--offline"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("yunet *"))
    assert " ok " in line and str(models_dir / "yunet_n_dynamic.onnx") in line
    assert "astronaut" not in out
    assert main(["models", "list", "--all", "--models", str(models_dir), "--offline"]) == 0
    assert "astronaut" in capsys.readouterr().out


def test_models_verify_ok(capsys, models_dir):
    assert main(["models", "verify", "--models", str(models_dir), "--offline"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok ") >= 10


def test_models_verify_and_path_name_a_corrupt_file_and_its_digest(capsys, models_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("OBS_FACESWAP_MODELS", raising=False)
    bad = tmp_path / "models"
    bad.mkdir()
    shutil.copy(models_dir / "yunet_n_dynamic.onnx", bad)
    (bad / "yunet_n_dynamic.onnx").chmod(0o644)
    with open(bad / "yunet_n_dynamic.onnx", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00" * 64)  # same size, different digest
    args = ["--models", str(bad), "--offline"]
    assert main(["models", "verify", "yunet", *args]) == 2
    cap = capsys.readouterr()
    assert "CORRUPT  yunet" in cap.out
    assert "104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12" in cap.out
    assert "yunet_n_dynamic.onnx" in cap.out and "Traceback" not in cap.err
    assert main(["models", "path", "yunet", *args]) == 2
    err = capsys.readouterr().err
    assert "yunet_n_dynamic.onnx is corrupt" in err and "104ee26c71d5" in err and "models fetch yunet" in err


def test_models_path(capsys, models_dir):
    assert main(["models", "path", "mesh468", "--models", str(models_dir), "--offline"]) == 0
    assert capsys.readouterr().out.strip() == str(models_dir / "mediapipe_face_landmark_468.onnx")
    assert main(["models", "path", "--models", "/somewhere", "--offline"]) == 0
    assert "/somewhere" in capsys.readouterr().out


def test_models_fetch_offline_reports_missing_file(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("OBS_FACESWAP_MODELS", raising=False)
    monkeypatch.setenv("OBS_FACESWAP_CACHE", str(tmp_path / "cache"))
    assert main(["models", "fetch", "mesh468", "--models", str(tmp_path), "--offline"]) == 2
    err = capsys.readouterr().err
    assert "mediapipe_face_landmark_468.onnx" in err and "d4cdef34d0e6" in err


def test_unknown_model_name(capsys, models_dir):
    assert main(["models", "path", "nosuch", "--models", str(models_dir)]) == 2
    assert "unknown model 'nosuch'" in capsys.readouterr().err


def test_models_fetch_honours_offline_given_before_the_action(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("OBS_FACESWAP_MODELS", raising=False)
    monkeypatch.setenv("OBS_FACESWAP_CACHE", str(tmp_path / "cache"))
    # Before the fix, --offline before "fetch" was dropped and a download was attempted.
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: pytest.fail("--offline must not download"))
    assert main(["models", "--offline", "--models", str(tmp_path), "fetch", "mesh468"]) == 2
    err = capsys.readouterr().err
    assert "mediapipe_face_landmark_468.onnx" in err and "not found" in err


# -- helpers --------------------------------------------------------------------------------------
def test_side_by_side_layout():
    a = np.full((100, 80, 3), 10, np.uint8)
    b = np.full((100, 80, 3), 200, np.uint8)
    out = side_by_side(a, b)
    strip = out.shape[0] - 100
    assert out.shape[1] == 160 and strip >= 24
    assert np.array_equal(out[strip:, :80], a) and np.array_equal(out[strip:, 80:], b)
    assert out[:strip, :80].max() > 200 and out[:strip, 80:].max() > 200  # both labels drawn


def test_preview_without_display_is_refused_before_loading_anything(capsys, monkeypatch, tmp_path):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    if not __import__("sys").platform.startswith("linux"):
        pytest.skip("the display check is Linux-only")
    # The input does not exist: the display check must come first.
    assert main(["swap", "--source", "s.png", "--input", str(tmp_path / "x.mp4"), "--preview"]) == 2
    assert "--preview needs a display" in capsys.readouterr().err


def test_missing_media_hint_names_media_not_models(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("OBS_FACESWAP_MEDIA", raising=False)
    monkeypatch.setenv("OBS_FACESWAP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("no network")))
    assert main(["demo", "--media", str(tmp_path), "--output", str(tmp_path / "d"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "--media DIR" in err and "$OBS_FACESWAP_MEDIA" in err
    assert "--models" not in err and "OBS_FACESWAP_MODELS" not in err


def test_existing_output_is_not_replaced_without_overwrite(capsys, media, tmp_path):
    out = tmp_path / "o.png"
    out.write_bytes(b"precious")
    argv = [
        "swap",
        "--source",
        str(media("astronaut.png")),
        "--input",
        str(media("frec_biden.jpg")),
        "--output",
        str(out),
        "-q",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err == f"obs-faceswap: error: --output {out} already exists; add -y (--overwrite) to replace it, "
        "or choose another name\n"
    )
    assert out.read_bytes() == b"precious"
    assert parse_args([*argv, "-y"]).overwrite and parse_args([*argv, "--overwrite"]).overwrite


def test_output_that_is_a_directory_is_refused(capsys, media, tmp_path):
    assert (
        main(
            [
                "swap",
                "--source",
                str(media("astronaut.png")),
                "--input",
                str(media("frec_biden.jpg")),
                "--output",
                str(tmp_path),
                "-y",
            ]
        )
        == 2
    )
    assert "is a directory" in capsys.readouterr().err


def _failing_swap(monkeypatch, error: BaseException) -> None:
    def fail(args):
        raise error

    monkeypatch.setattr("obs_faceswap.cli.cmd_swap", fail)


def test_errors_raised_deeper_also_name_flags(capsys, monkeypatch):
    from obs_faceswap.errors import ModelLoadError

    _failing_swap(monkeypatch, ModelLoadError("det.onnx is not a SCRFD model (detector.model): expected ..."))
    assert main(SWAP) == 2
    assert capsys.readouterr().err == (
        "obs-faceswap: error: det.onnx is not a SCRFD model (--detector-model): expected ...\n"
    )


def test_unexpected_errors_are_one_line_without_traceback(capsys, monkeypatch):
    _failing_swap(monkeypatch, KeyError("cls_8"))
    assert main(SWAP) == 1
    err = capsys.readouterr().err
    assert err.startswith("obs-faceswap: internal error: KeyError: 'cls_8'") and err.count("\n") == 1
    assert "-v" in err


def test_sigterm_handler_is_restored_after_main(monkeypatch):
    import signal

    before = signal.getsignal(signal.SIGTERM)
    _failing_swap(monkeypatch, KeyError("x"))
    main(SWAP)
    assert signal.getsignal(signal.SIGTERM) == before


def test_occluder_and_pose_flags_reach_the_photo_mask():
    default = build_config(parse_args(["swap", "--source", "a.png", "--input", "b.mp4"])).swapper.photo.mask
    assert default.keep_occluders is True and default.fade_beyond_pose is False
    args = parse_args(["swap", "--source", "a.png", "--input", "b.mp4", "--no-keep-occluders", "--fade-beyond-pose"])
    mask = build_config(args).swapper.photo.mask
    assert mask.keep_occluders is False and mask.fade_beyond_pose is True
