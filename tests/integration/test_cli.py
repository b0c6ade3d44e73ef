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
    ffmpeg(
        "-i",
        str(media("dfl_Obama_speaking.mp4")),
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=3",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-frames:v",
        "24",
        "-r",
        "30000/1001",
        "-c:v",
        "libx264",
        "-crf",
        "16",
        "-c:a",
        "aac",
        str(out),
    )
    return out


# -- audio and picture together ----------------------------------------------------------------
FLASH = "drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill"
BEEP = "aevalsrc='if(between(t,2.0,2.05),sin(2*PI*1000*t),0)':s=48000"
ENVELOPE_HZ = 500  # both signals are compared at 2 ms steps


def av_offset(path: Path) -> tuple[float, float, float]:
    """How late the sound is relative to the picture, by cross-correlating the white-flash
    frame's brightness with the beep's loudness, both decoded by ffmpeg onto the file's own
    timeline (edit lists, start offsets and frame timestamps applied, as a player does).

    Returns:
        ``(offset_s, audio_duration_s, video_duration_s)``; offset > 0: the beep comes after
        the flash.
    """
    video = subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-vf",
            f"fps={ENVELOPE_HZ}:start_time=0,scale=8:8,format=gray",
            "-f",
            "rawvideo",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    audio = subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-af",
            "aresample=async=1:first_pts=0",
            "-ac",
            "1",
            "-ar",
            "48000",
            "-f",
            "s16le",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    bright = np.frombuffer(video, np.uint8).reshape(-1, 64).mean(axis=1)
    pcm = np.abs(np.frombuffer(audio, np.int16).astype(np.float32))
    loud = pcm[: len(pcm) // 96 * 96].reshape(-1, 96).max(axis=1)  # 2 ms bins
    flash = (bright > 200).astype(np.float32)
    beep = (loud > 0.3 * loud.max()).astype(np.float32)
    assert flash.any() and beep.any(), f"{path.name}: the flash frame or the beep is missing"
    corr = np.correlate(beep, flash, mode="full")
    lag = int(np.argmax(corr)) - (len(flash) - 1)
    return lag / ENVELOPE_HZ, len(pcm) / 48000, len(bright) / ENVELOPE_HZ


@pytest.fixture(scope="module")
def sync_clips(tmp_path_factory, media) -> dict[str, Path]:
    """Clips whose flash frame and beep coincide, at 2.0 s on the file's timeline.

    ``late``: the picture starts 0.84 s after the sound (25 fps, 2.5 s of video, 4 s of audio).
    ``vfr``: 30 fps, but only every third frame between 0.5 s and 1.5 s (3 s, audio to 3 s).
    """
    d = tmp_path_factory.mktemp("sync")
    talk = str(media("dfl_Obama_speaking.mp4"))
    ffmpeg(
        "-i",
        talk,
        "-t",
        "2.5",
        "-vf",
        f"fps=25,{FLASH}:enable='between(t,1.16,1.195)'",
        "-c:v",
        "libx264",
        "-an",
        str(d / "v.mp4"),
    )
    ffmpeg("-f", "lavfi", "-i", f"{BEEP}:d=4", "-c:a", "aac", str(d / "a.m4a"))
    ffmpeg(
        "-itsoffset",
        "0.84",
        "-i",
        str(d / "v.mp4"),
        "-i",
        str(d / "a.m4a"),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c",
        "copy",
        str(d / "late.mp4"),
    )
    ffmpeg(
        "-i",
        talk,
        "-f",
        "lavfi",
        "-i",
        f"{BEEP}:d=3",
        "-t",
        "3",
        "-vf",
        f"fps=30,{FLASH}:enable='between(t,2.0,2.03)',select='lt(t,0.5)+gte(t,1.5)+not(mod(n,3))'",
        "-fps_mode",
        "vfr",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-c:a",
        "aac",
        str(d / "vfr.mp4"),
    )
    return {"late": d / "late.mp4", "vfr": d / "vfr.mp4"}


@pytest.mark.slow
@pytest.mark.parametrize(("clip", "frame_s", "audio_s"), [("late", 1 / 25, 4.0), ("vfr", 1 / 30, 3.0)])
def test_swap_keeps_sound_and_picture_together(media, sync_clips, tmp_path, capsys, clip, frame_s, audio_s):
    src = sync_clips[clip]
    offset_in, audio_in, video_in = av_offset(src)
    assert abs(offset_in) < 0.005 and audio_in == pytest.approx(audio_s, abs=0.05)  # the clip is right
    out = tmp_path / "out.mp4"
    rc = main(["swap", "--source", str(media("astronaut.png")), "--input", str(src), "--output", str(out), "-q"])
    assert rc == 0, capsys.readouterr().err
    offset, audio, video = av_offset(out)
    print(
        f"{clip}: audio/video offset {offset * 1000:+.0f} ms (input {offset_in * 1000:+.0f} ms), audio "
        f"{audio:.2f} s (input {audio_in:.2f} s), video {video:.2f} s (input {video_in:.2f} s)"
    )
    assert abs(offset) < frame_s, f"sound and picture {offset * 1000:+.0f} ms apart"
    assert audio == pytest.approx(audio_in, abs=0.05), "the audio was cut"
    assert video == pytest.approx(video_in, abs=frame_s + 0.005)
    assert is_marked(probe(out).metadata)


# -- images ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_swap_image(media, tmp_path, capsys):
    out = tmp_path / "swapped.png"
    rc = main(
        [
            "swap",
            "--source",
            str(media("frec_obama.jpg")),
            "--input",
            str(media("frec_biden.jpg")),
            "--output",
            str(out),
            "-q",
        ]
    )
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


@pytest.mark.slow
def test_swap_video_keeps_frames_rate_audio_and_marks_output(media, talking_clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    rc = main(
        [
            "swap",
            "--source",
            str(media("astronaut.png")),
            "--input",
            str(talking_clip),
            "--output",
            str(out),
            "--badge",
            "-q",
        ]
    )
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
    rc = main(
        [
            "swap",
            "--source",
            str(media("astronaut.png")),
            "--input",
            str(talking_clip),
            "--output",
            str(out),
            "--max-frames",
            "9",
            "-q",
        ]
    )
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
    # Fixed bytes: now and then os.urandom's passed FFmpeg's probe as a subtitle stream (the
    # message then, rightly, says the file has no video stream).
    junk.write_bytes(np.random.default_rng(20000).bytes(20000))
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


@pytest.mark.parametrize(
    ("flags", "file"),
    [
        (("--detector", "yunet", "--detector-model"), "scrfd_500m_bnkps.onnx"),
        (("--detector", "scrfd", "--detector-model"), "yunet_n_dynamic.onnx"),
        (("--landmarks", "mesh478", "--landmarks-model"), "mediapipe_face_landmark_468.onnx"),
    ],
)
def test_a_model_file_for_another_kind_is_a_clear_error(media, models_dir, tmp_path, capsys, flags, file):
    err = _run_bad(
        capsys, tmp_path, media("astronaut.png"), media("dfl_Obama_speaking.mp4"), *flags, str(models_dir / file)
    )
    assert file in err and "KeyError" not in err
    assert f"not a {flags[1]} model" in err or "does not look like an SCRFD model" in err


@pytest.mark.slow
def test_error_exit_code_in_a_real_process(media, tmp_path):
    """The installed entry point: exit status 2 and one line on stderr, no traceback."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "obs_faceswap",
            "swap",
            "--source",
            str(media("astronaut.png")),
            "--input",
            str(tmp_path / "missing.mp4"),
            "--output",
            str(tmp_path / "o.mp4"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"obs-faceswap: error: input not found: {tmp_path / 'missing.mp4'}"


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_ctrl_c_finalises_the_output(media, tmp_path):
    long_clip = tmp_path / "long.mp4"
    ffmpeg("-stream_loop", "3", "-i", str(media("dfl_Obama_speaking.mp4")), "-c", "copy", str(long_clip))
    out = tmp_path / "out.mp4"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "obs_faceswap",
            "swap",
            "--source",
            str(media("astronaut.png")),
            "--input",
            str(long_clip),
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
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
@pytest.mark.slow
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


@pytest.mark.slow
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


# -- which faces ------------------------------------------------------------------------------------
def test_reference_not_in_the_picture_swaps_nobody_and_says_so(media, tmp_path, capsys, caplog):
    out = tmp_path / "out.png"
    # frec_two_people.jpg shows Obama and Biden; astronaut.png is neither.
    rc = main(
        [
            "swap",
            "--source",
            str(media("astronaut.png")),
            "--input",
            str(media("frec_two_people.jpg")),
            "--output",
            str(out),
            "--reference",
            str(media("astronaut.png")),
            "-q",
        ]
    )
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "0 swapped" in cap.out and "no face like the --reference person" in cap.out
    warned = cap.err + caplog.text  # the warning is logged (on stderr outside pytest)
    assert "no face looked like the --reference person" in warned and "--reference-threshold 0.50" in warned
    assert np.array_equal(cv2.imread(str(out)), cv2.imread(str(media("frec_two_people.jpg"))))
    assert not is_marked(read_image_metadata(out)), "nothing was swapped, so the file must not say so"


def test_reference_in_the_picture_is_swapped(media, tmp_path, capsys):
    out = tmp_path / "out.png"
    rc = main(
        [
            "swap",
            "--source",
            str(media("astronaut.png")),
            "--input",
            str(media("frec_two_people.jpg")),
            "--output",
            str(out),
            "--reference",
            str(media("frec_biden.jpg")),
            "-q",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert "1 face(s) found, 1 swapped" in capsys.readouterr().out
    changed = np.abs(cv2.imread(str(out)).astype(int) - cv2.imread(str(media("frec_two_people.jpg"))).astype(int))
    xs = np.nonzero(changed.max(axis=2) > 20)[1]
    assert np.median(xs) > 563, "Biden is the face on the right"
    assert is_marked(read_image_metadata(out))


def test_reference_missing_from_a_video_is_in_the_summary(media, talking_clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    rc = main(
        [
            "swap",
            "--source",
            str(media("astronaut.png")),
            "--input",
            str(talking_clip),
            "--output",
            str(out),
            "--reference",
            str(media("astronaut.png")),
            "--max-frames",
            "6",
            "-q",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    stdout = capsys.readouterr().out
    assert "6 frames, faces found in 100%, swapped in 0" in stdout
    assert "no face looked like the --reference person in 6 frames with faces" in stdout
    tags = probe(out).metadata
    assert not is_marked(tags) and "no face was swapped" in tags["comment"]


@pytest.fixture(scope="module")
def six_faces(tmp_path_factory, media) -> Path:
    """Six people side by side, 240 px each: more faces than the 4 tracked by default."""
    tiles = []
    for name in ("dicaprio_1", "johansson_1", "jolie_1", "musk_1", "perry_1", "johansson_2"):
        img = cv2.imread(str(media(f"faces/{name}.jpg")))
        h, w = img.shape[:2]
        img = cv2.resize(img, (int(w * 300 / h), 300))
        c = img.shape[1] // 2
        img = img[:, max(0, c - 120) : c + 120]
        tiles.append(cv2.copyMakeBorder(img, 0, 0, 0, 240 - img.shape[1], cv2.BORDER_CONSTANT))
    path = tmp_path_factory.mktemp("crowd") / "six.png"
    cv2.imwrite(str(path), np.hstack(tiles))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 1, 4])
def test_face_index_counts_from_the_left(media, six_faces, tmp_path, capsys, index):
    out = tmp_path / "out.png"
    rc = main(
        [
            "swap",
            "--source",
            str(media("astronaut.png")),
            "--input",
            str(six_faces),
            "--output",
            str(out),
            "--face-index",
            str(index),
            "-q",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    changed = np.abs(cv2.imread(str(out)).astype(int) - cv2.imread(str(six_faces)).astype(int)).max(axis=2) > 20
    xs = np.nonzero(changed)[1]
    assert set((xs // 240).tolist()) == {index}, "the swapped face is not the one counted from the left"


# -- damaged input, wrong model file ------------------------------------------------------------------
def test_truncated_input_is_reported(media, tmp_path, capsys, caplog):
    full, cut = tmp_path / "full.mp4", tmp_path / "cut.mp4"
    ffmpeg(
        "-i",
        str(media("dfl_Obama_speaking.mp4")),
        "-frames:v",
        "60",
        "-c:v",
        "libx264",
        "-movflags",
        "+faststart",
        str(full),
    )
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])  # an interrupted download: the index lists all 60 frames
    out = tmp_path / "out.mp4"
    rc = main(["swap", "--source", str(media("astronaut.png")), "--input", str(cut), "--output", str(out), "-q"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    n = len(decode_all(out))
    assert 0 < n < 60
    assert f"{cut}: read {n} of the 60 frames the file declares; it looks truncated" in cap.err + caplog.text


def test_a_complete_input_gives_no_truncation_warning(media, talking_clip, tmp_path, capsys, caplog):
    rc = main(
        [
            "swap",
            "--source",
            str(media("astronaut.png")),
            "--input",
            str(talking_clip),
            "--output",
            str(tmp_path / "o.mkv"),
            "-q",
        ]
    )
    assert rc == 0
    assert "truncated" not in capsys.readouterr().err + caplog.text


@pytest.mark.slow
def test_wrong_detector_file_is_one_clear_line(media, models_dir, tmp_path):
    """A YuNet file given as the SCRFD detector: a ModelError naming the file, no traceback."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "obs_faceswap",
            "swap",
            "--source",
            str(media("astronaut.png")),
            "--input",
            str(media("frec_biden.jpg")),
            "--output",
            str(tmp_path / "o.png"),
            "--detector",
            "scrfd",
            "--detector-model",
            str(models_dir / "yunet_n_320_320.onnx"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("obs-faceswap: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "yunet_n_320_320.onnx" in proc.stderr and "scrfd" in proc.stderr.lower()
    assert "detector.model" not in proc.stderr  # the flag's name, if any, not the config key
    assert not (tmp_path / "o.png").exists()


def test_overwrite_replaces_an_existing_output(media, tmp_path, capsys):
    out = tmp_path / "o.png"
    out.write_bytes(b"old")
    rc = main(
        [
            "swap",
            "--source",
            str(media("astronaut.png")),
            "--input",
            str(media("frec_biden.jpg")),
            "--output",
            str(out),
            "-y",
            "-q",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert is_marked(read_image_metadata(out))
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="no SIGTERM on Windows")
def test_sigterm_finalises_the_output_like_ctrl_c(media, tmp_path):
    long_clip = tmp_path / "long.mp4"
    ffmpeg("-stream_loop", "3", "-i", str(media("dfl_Obama_speaking.mp4")), "-c", "copy", str(long_clip))
    out = tmp_path / "out.mp4"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "obs_faceswap",
            "swap",
            "--source",
            str(media("astronaut.png")),
            "--input",
            str(long_clip),
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.*partial*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.5)  # let it process some frames
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    n = len(decode_all(out))
    assert 0 < n < 4 * 259
    assert f"{n} frames" in stdout
    assert is_marked(probe(out).metadata)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4", "out.mp4"], "a temporary file was left"
