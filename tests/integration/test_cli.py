"""The command line end to end, on real models, real media and real ffmpeg.

Kept short for 2-core CI: clips of a few dozen frames at most.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from obs_faceswap.cli import main
from obs_faceswap.disclosure import is_marked
from obs_faceswap.io import ffmpeg_exe, open_input, probe, read_image_metadata
from obs_faceswap.runtime import OPENCV_PROVIDER

ROOT = Path(__file__).resolve().parents[2]


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def decode_all(path: Path) -> list[np.ndarray]:
    with open_input(path) as src:
        return [f.image for f in src]


@pytest.fixture(scope="module")
def talking_clip(tmp_path_factory, media) -> Path:
    """24 frames of the talking-head clip at 30000/1001 fps with a sine-wave audio track."""
    out = tmp_path_factory.mktemp("clip") / "talk.mp4"
    ffmpeg("-i", str(media("dfl_Obama_speaking.mp4")), "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
           "-map", "0:v", "-map", "1:a", "-frames:v", "24", "-r", "30000/1001", "-c:v", "libx264", "-crf", "16",
           "-c:a", "aac", str(out))
    return out


def test_swap_image(media, tmp_path, capsys):
    out = tmp_path / "swapped.png"
    rc = main(["swap", "--source", str(media("frec_obama.jpg")), "--input", str(media("frec_biden.jpg")),
               "--output", str(out), "-q"])
    assert rc == 0, capsys.readouterr().err
    assert "1 face(s) found, 1 swapped" in capsys.readouterr().out
    before = cv2.imread(str(media("frec_biden.jpg")))
    after = cv2.imread(str(out))
    assert after.shape == before.shape
    changed = np.any(np.abs(after.astype(int) - before.astype(int)) > 12, axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 5000, "the face was not swapped"
    # The change is local: one face-sized region, not the whole portrait.
    box_area = (xs.max() - xs.min()) * (ys.max() - ys.min())
    assert box_area < 0.15 * before.shape[0] * before.shape[1]
    assert is_marked(read_image_metadata(out))


def test_swap_video_keeps_frames_rate_audio_and_marks_output(media, talking_clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    rc = main(["swap", "--source", str(media("astronaut.png")), "--input", str(talking_clip),
               "--output", str(out), "--badge", "-q"])
    assert rc == 0, capsys.readouterr().err
    stdout = capsys.readouterr().out
    assert "24 frames, faces found in 100%" in stdout
    info = probe(out)
    assert is_marked(info.metadata)
    assert info.has_audio and info.audio[0].codec == "aac"
    assert info.duration_s == pytest.approx(24 * 1001 / 30000, abs=0.06)
    with open_input(out) as back:
        assert back.fps == Fraction(30000, 1001)
        assert back.size == (512, 388)
    frames_in, frames_out = decode_all(talking_clip), decode_all(out)
    assert len(frames_out) == len(frames_in) == 24
    # Swapped: the face region changed a lot, the top-left corner (background) did not.
    face = (slice(100, 300), slice(180, 340))
    corner = (slice(0, 60), slice(0, 80))
    for a, b in zip(frames_in[::6], frames_out[::6], strict=True):
        assert np.abs(a[face].astype(int) - b[face].astype(int)).mean() > 4
        assert np.abs(a[corner].astype(int) - b[corner].astype(int)).mean() < 3
    # The badge is burned into the bottom-right corner.
    br = (slice(350, 388), slice(420, 512))
    assert np.abs(frames_in[0][br].astype(int) - frames_out[0][br].astype(int)).mean() > 10


def test_max_frames_trims_video_and_audio(media, talking_clip, tmp_path, capsys):
    out = tmp_path / "short.mkv"
    rc = main(["swap", "--source", str(media("astronaut.png")), "--input", str(talking_clip),
               "--output", str(out), "--max-frames", "9", "-q"])
    assert rc == 0, capsys.readouterr().err
    assert len(decode_all(out)) == 9
    info = probe(out)
    assert info.has_audio and is_marked(info.metadata)
    assert info.duration_s == pytest.approx(9 * 1001 / 30000, abs=0.06)


# -- bad inputs ---------------------------------------------------------------------------------
def _run_bad(capsys, tmp_path, source: Path, input_: Path, *extra: str) -> str:
    out = tmp_path / "out.mp4"
    rc = main(["swap", "--source", str(source), "--input", str(input_), "--output", str(out), "-q", *extra])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    assert not out.exists()
    assert not list(tmp_path.glob("*.partial*")), "a partial file was left behind"
    return err


def test_source_photo_without_face(media, tmp_path, capsys):
    flat = tmp_path / "wall.png"
    cv2.imwrite(str(flat), np.full((400, 300, 3), 140, np.uint8))
    err = _run_bad(capsys, tmp_path, flat, media("dfl_Obama_speaking.mp4"))
    assert "no face" in err and "wall.png" in err


def test_unreadable_input(media, tmp_path, capsys):
    junk = tmp_path / "clip.mp4"
    junk.write_bytes(os.urandom(20000))
    err = _run_bad(capsys, tmp_path, media("astronaut.png"), junk)
    assert f"cannot read {junk}" in err


def test_unreadable_source_photo(media, tmp_path, capsys):
    junk = tmp_path / "me.jpg"
    junk.write_bytes(b"not a jpeg at all")
    err = _run_bad(capsys, tmp_path, junk, media("dfl_Obama_speaking.mp4"))
    assert "me.jpg" in err


def test_empty_video(media, tmp_path, capsys):
    empty = tmp_path / "empty.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x64:d=1", "-frames:v", "0", "-c:v", "libx264", str(empty))
    err = _run_bad(capsys, tmp_path, media("astronaut.png"), empty)
    assert "empty.mp4 is an empty video" in err


def test_corrupt_model_names_file_digest_and_fix(media, models_dir, tmp_path, capsys):
    bad = tmp_path / "models"
    bad.mkdir()
    data = (models_dir / "mediapipe_face_landmark_468.onnx").read_bytes()
    (bad / "mediapipe_face_landmark_468.onnx").write_bytes(data[: len(data) // 3])  # truncated download
    err = _run_bad(capsys, tmp_path, media("astronaut.png"), media("dfl_Obama_speaking.mp4"), "--models", str(bad))
    assert str(bad / "mediapipe_face_landmark_468.onnx") in err
    assert "d4cdef34d0e6eda9109db7c32e517e54d5d8c83e3443ac97d5e393019db10b44" in err
    assert "obs-faceswap models fetch mesh468" in err


@pytest.mark.parametrize(("flags", "file"), [
    (("--detector", "yunet", "--detector-model"), "scrfd_500m_bnkps.onnx"),
    (("--detector", "scrfd", "--detector-model"), "yunet_n_dynamic.onnx"),
    (("--landmarks", "mesh478", "--landmarks-model"), "mediapipe_face_landmark_468.onnx"),
])
def test_a_model_file_for_another_kind_is_a_clear_error(media, models_dir, tmp_path, capsys, flags, file):
    err = _run_bad(capsys, tmp_path, media("astronaut.png"), media("dfl_Obama_speaking.mp4"), *flags,
                   str(models_dir / file))
    assert file in err and "KeyError" not in err
    assert f"not a {flags[1]} model" in err or "does not look like an SCRFD model" in err


def test_error_exit_code_in_a_real_process(media, tmp_path):
    """The installed entry point: exit status 2 and one line on stderr, no traceback."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "obs_faceswap", "swap", "--source", str(media("astronaut.png")),
         "--input", str(tmp_path / "missing.mp4"), "--output", str(tmp_path / "o.mp4")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"obs-faceswap: error: input not found: {tmp_path / 'missing.mp4'}"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_ctrl_c_finalises_the_output(media, tmp_path):
    long_clip = tmp_path / "long.mp4"
    ffmpeg("-stream_loop", "3", "-i", str(media("dfl_Obama_speaking.mp4")), "-c", "copy", str(long_clip))
    out = tmp_path / "out.mp4"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "obs_faceswap", "swap", "--source", str(media("astronaut.png")),
         "--input", str(long_clip), "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.*partial*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.5)  # let it process some frames
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    n = len(decode_all(out))
    assert 0 < n < 4 * 259
    assert f"{n} frames" in stdout
    assert is_marked(probe(out).metadata)
    assert not list(tmp_path.glob("*.partial*"))


# -- demo and bench -----------------------------------------------------------------------------
def test_demo_writes_video_and_side_by_side(tmp_path, capsys):
    rc = main(["demo", "--output", str(tmp_path / "demo"), "--max-frames", "20", "-q"])
    assert rc == 0, capsys.readouterr().err
    stdout = capsys.readouterr().out
    video, png = tmp_path / "demo" / "demo.mp4", tmp_path / "demo" / "side_by_side.png"
    assert f"wrote {video}" in stdout and f"wrote {png}" in stdout
    assert "20 frames, faces found in 100%" in stdout
    assert len(decode_all(video)) == 20
    assert is_marked(probe(video).metadata)
    sbs = cv2.imread(str(png))
    assert sbs.shape[1] == 2 * 512 and sbs.shape[0] > 388
    assert is_marked(read_image_metadata(png))
    strip = sbs.shape[0] - 388
    left, right = sbs[strip:, :512].astype(int), sbs[strip:, 512:].astype(int)
    assert np.abs(left[100:300, 180:340] - right[100:300, 180:340]).mean() > 4  # swapped face
    assert np.abs(left[-38:, -92:] - right[-38:, -92:]).mean() > 10  # badge on the swapped half


def test_bench_json(capsys):
    rc = main(["bench", "--json", "--sizes", "360p,480p", "--frames", "6", "--warmup", "3", "--repeats", "2"])
    assert rc == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert result["provider"] in ("CPUExecutionProvider", OPENCV_PROVIDER)  # no GPU here
    assert [s["name"] for s in result["sizes"]] == ["360p", "480p"]
    for s in result["sizes"]:
        assert s["frames"] == 12 and len(s["fps_repeats"]) == 2 and s["fps"] > 0
        assert s["faces_pct"] == 100
        assert {"landmarks", "swap", "merge"} <= set(s["stages"])
        assert s["stages"]["landmarks"]["median_ms"] > 0
        # Pipeline time includes the model time, so the ratio is above 1.
        assert s["ratio"] > 1 and s["inference_ms"]["median_ms"] > 0


def test_bench_table(capsys):
    rc = main(["bench", "--sizes", "360p", "--frames", "3", "--warmup", "2", "--repeats", "1", "-q"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "360p 640x360" in out and "FPS (median of repeats)" in out and "pipeline / model time" in out
