"""Readers, the ffmpeg writer, probing and image metadata, on real media and real ffmpeg."""

from __future__ import annotations

import os
import stat
import struct
import subprocess
import zlib
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from obs_faceswap.disclosure import METADATA, is_marked
from obs_faceswap.errors import ConfigError, FaceSwapError, FrameFormatError, InputError
from obs_faceswap.io import (
    VideoWriter,
    exact_fps,
    ffmpeg_exe,
    is_webcam,
    open_input,
    output_rate,
    parse_ffmpeg_info,
    prefetch,
    probe,
    read_image_metadata,
    stream_starts,
    write_image,
)
from obs_faceswap.io import read_image as io_read_image


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.fixture(scope="module")
def clips(tmp_path_factory, media):
    """Short test clips cut from the real talking-head video, with and without sound."""
    d = tmp_path_factory.mktemp("clips")
    obama = str(media("dfl_Obama_speaking.mp4"))
    # 15 frames at 30000/1001 with a 440 Hz AAC track that is *longer* than the video.
    ffmpeg(
        "-i",
        obama,
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=2",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-frames:v",
        "15",
        "-r",
        "30000/1001",
        "-c:v",
        "libx264",
        "-c:a",
        "aac",
        str(d / "aac.mp4"),
    )
    # PCM audio (not allowed in MP4 as is): in a .mov.
    ffmpeg(
        "-i",
        obama,
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:duration=2",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-frames:v",
        "10",
        "-c:v",
        "libx264",
        "-c:a",
        "pcm_s16le",
        str(d / "pcm.mov"),
    )
    # "Empty" video: a valid MP4 with no frames; an audio-only file.
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x64:d=1", "-frames:v", "0", "-c:v", "libx264", str(d / "empty.mp4"))
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(d / "audio_only.mp4"))
    # Picture starting 0.84 s after the sound (a camera that starts late, a cut): 10 frames
    # at 25 fps from 0.84 s, 2 s of audio from 0.
    ffmpeg("-i", obama, "-frames:v", "10", "-r", "25", "-c:v", "libx264", "-an", str(d / "v25.mp4"))
    ffmpeg(
        "-itsoffset",
        "0.84",
        "-i",
        str(d / "v25.mp4"),
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=2",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        str(d / "late_video.mp4"),
    )
    # Variable frame rate: 30 fps, except every third frame only between 0.5 s and 1.5 s.
    ffmpeg(
        "-i",
        obama,
        "-t",
        "2",
        "-vf",
        "fps=30,select='lt(t,0.5)+gte(t,1.5)+not(mod(n,3))'",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        str(d / "vfr.mp4"),
    )
    return d


# -- probing ------------------------------------------------------------------------------------
def test_probe_real_clip(media):
    info = probe(media("dfl_Obama_speaking.mp4"))
    assert "mp4" in info.format
    assert len(info.video) == 1 and not info.has_audio
    v = info.video[0]
    assert v.codec == "h264" and v.size == (512, 388) and v.fps == 30
    assert info.duration_s == pytest.approx(8.63, abs=0.05)


def test_stream_starts_and_rates(clips):
    assert stream_starts(clips / "late_video.mp4") == pytest.approx((0.84, 0.0), abs=1e-3)
    assert stream_starts(clips / "aac.mp4")[0] == pytest.approx(0.0, abs=1e-3)
    assert stream_starts(clips / "v25.mp4") == (pytest.approx(0.0, abs=1e-3), None)
    with open_input(clips / "vfr.mp4") as vfr:
        assert float(vfr.fps) == pytest.approx(20, abs=1)  # OpenCV: the average rate
        assert output_rate(vfr) == 30  # its highest rate: no frame is dropped
    with open_input(clips / "aac.mp4") as cfr:
        assert output_rate(cfr) == Fraction(30000, 1001)


def test_probe_sees_audio(clips):
    info = probe(clips / "aac.mp4")
    assert info.has_audio and info.audio[0].codec == "aac" and info.audio[0].sample_rate == 44100


BANNER = """\
Input #0, matroska,webm, from 'x.mkv':
  Metadata:
    COMMENT         : first line
                    : second line
    ENCODER         : Lavf60.3.100
  Duration: 00:01:02.50, start: 0.000000, bitrate: 1000 kb/s
  Stream #0:0(eng): Video: h264 (High), yuv420p(tv, bt709, progressive), 1920x1080 [SAR 1:1 DAR 16:9], \
59.94 fps, 59.94 tbr, 1k tbn (default)
    Metadata:
      DURATION        : 00:01:02.500000000
  Stream #0:1: Audio: opus, 48000 Hz, stereo, fltp (default)
At least one output file must be specified
"""


def test_parse_ffmpeg_banner_with_multiline_tags():
    info = parse_ffmpeg_info(BANNER, Path("x.mkv"))
    assert info.format == "matroska,webm"
    assert info.duration_s == pytest.approx(62.5)
    assert info.metadata == {"COMMENT": "first line\nsecond line", "ENCODER": "Lavf60.3.100"}
    v, a = info.streams
    assert (v.kind, v.codec, v.size, v.fps) == ("video", "h264", (1920, 1080), 59.94)
    assert v.metadata == {"DURATION": "00:01:02.500000000"}
    assert (a.kind, a.codec, a.sample_rate) == ("audio", "opus", 48000)


def test_parse_ffmpeg_error_names_file():
    with pytest.raises(InputError, match=r"bad\.mp4.*Invalid data"):
        parse_ffmpeg_info(
            "[mov @ 0x1] moov atom not found\nbad.mp4: Invalid data found when processing input\n", Path("bad.mp4")
        )


@pytest.mark.parametrize(
    ("fps", "exact"),
    [
        (29.97002997002997, Fraction(30000, 1001)),
        (30.0, Fraction(30)),
        (23.976023976023978, Fraction(24000, 1001)),
        (59.94005994005994, Fraction(60000, 1001)),
        (25.0, Fraction(25)),
        (12.5, Fraction(25, 2)),
    ],
)
def test_exact_fps(fps, exact):
    assert exact_fps(fps) == exact


@pytest.mark.parametrize("bad", [0.0, -30.0, float("nan"), float("inf")])
def test_exact_fps_rejects_nonsense(bad):
    with pytest.raises(InputError):
        exact_fps(bad)


# -- readers ------------------------------------------------------------------------------------
def test_open_video_reads_every_frame_with_timestamps(media):
    with open_input(media("dfl_Obama_speaking.mp4")) as src:
        assert (src.kind, src.size, src.fps, src.frame_count) == ("video", (512, 388), Fraction(30), 259)
        assert src.has_audio is False
        frames = list(src)
    assert len(frames) == 259
    assert [f.index for f in frames] == list(range(259))
    t = np.array([f.time_s for f in frames])
    assert t[0] == 0 and np.allclose(np.diff(t), 1 / 30, atol=2e-3)
    assert frames[0].image.shape == (388, 512, 3) and frames[0].image.dtype == np.uint8
    assert not np.array_equal(frames[0].image, frames[100].image)


def test_open_video_ntsc_rate_and_audio(clips):
    with open_input(clips / "aac.mp4") as src:
        assert src.fps == Fraction(30000, 1001)
        assert src.has_audio
        assert sum(1 for _ in src) == 15


def test_open_image(media):
    with open_input(media("frec_biden.jpg")) as src:
        assert (src.kind, src.size, src.fps, src.frame_count) == ("image", (970, 2204), None, 1)
        (frame,) = list(src)
    assert frame.image.shape == (2204, 970, 3)


def test_input_is_read_once(media):
    with open_input(media("dfl_Obama_speaking.mp4")) as src:
        next(iter(src))
        with pytest.raises(InputError, match="once"):
            next(iter(src))


JUNK = np.random.default_rng(4000).bytes(4000)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.mp4", "not found"),
        (lambda d: d, "not a file"),
        (lambda d: _write(d / "zero.mp4", b""), r"empty \(0 bytes\)"),
        # fixed junk: random bytes now and then pass FFmpeg's probe as a subtitle stream
        (lambda d: _write(d / "junk.mp4", JUNK), "cannot read .*junk.mp4"),
        (lambda d: _write(d / "junk.png", JUNK), "cannot read .*junk.png as an image"),
    ],
)
def test_unreadable_inputs_are_clear_errors(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(InputError, match=message):
        open_input(path)


def test_empty_video_is_an_error_naming_the_file(clips):
    with pytest.raises(InputError, match=r"empty\.mp4 is an empty video"):
        open_input(clips / "empty.mp4")
    with pytest.raises(InputError, match=r"audio_only\.mp4 has no video stream \(only audio\)"):
        open_input(clips / "audio_only.mp4")


def test_missing_webcam_is_a_clear_error():
    assert is_webcam("webcam:0") and is_webcam("WEBCAM:12") and not is_webcam("webcam0.mp4")
    with pytest.raises(InputError, match="webcam 97"):
        open_input("webcam:97")


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def test_prefetch_keeps_order_and_reraises():
    assert list(prefetch(range(50), size=3)) == list(range(50))

    def broken():
        yield 1
        raise InputError("decoder died")

    got = []
    with pytest.raises(InputError, match="decoder died"):
        for x in prefetch(broken()):
            got.append(x)
    assert got == [1]


def test_prefetch_stops_producer_on_early_exit():
    produced = []

    def slow():
        for i in range(10_000):
            produced.append(i)
            yield i

    gen = prefetch(slow(), size=2)
    assert next(gen) == 0
    gen.close()
    n = len(produced)
    assert n < 10
    assert len(produced) == n  # nothing more is produced after close


# -- the video writer ---------------------------------------------------------------------------
def _frames(n: int, w: int = 160, h: int = 120) -> list[np.ndarray]:
    out = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[:, :, 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
        f[:, :, 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
        cv2.rectangle(f, (5 + 3 * i, 20), (40 + 3 * i, 60), (40, 200, 240), -1)
        out.append(f)
    return out


def test_writer_keeps_rate_frames_audio_and_marks_metadata(clips, tmp_path):
    src = clips / "aac.mp4"
    out = tmp_path / "out.mp4"
    frames = _frames(12)
    with VideoWriter(out, (160, 120), Fraction(30000, 1001), audio_from=src) as w:
        for f in frames:
            w.write(f)
    assert out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"], "no partial files left"
    info = probe(out)
    assert is_marked(info.metadata)
    assert info.metadata["comment"] == METADATA["comment"]
    assert info.has_audio and info.audio[0].codec == "aac"
    # The 2 s audio track is cut to the video's 12 frames.
    assert info.duration_s == pytest.approx(12 * 1001 / 30000, abs=0.06)
    assert count_frames(out) == 12
    with open_input(out) as back:
        assert back.fps == Fraction(30000, 1001)
        decoded = [f.image for f in back]
    err = np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, decoded, strict=True)])
    assert err < 4, f"colours or geometry changed in the round trip (mean abs error {err:.1f})"


@pytest.mark.parametrize(("ext", "codec"), [(".mp4", "aac"), (".mov", "aac"), (".mkv", "pcm_s16le")])
def test_writer_reencodes_audio_only_when_the_container_needs_it(clips, tmp_path, ext, codec):
    out = tmp_path / f"out{ext}"
    with VideoWriter(out, (160, 120), 30, audio_from=clips / "pcm.mov") as w:
        for f in _frames(6):
            w.write(f)
    info = probe(out)
    assert info.has_audio and info.audio[0].codec == codec
    assert is_marked(info.metadata)
    assert count_frames(out) == 6


def test_writer_pads_odd_sizes(tmp_path):
    out = tmp_path / "odd.mkv"
    with VideoWriter(out, (33, 17), 25) as w:
        for f in _frames(3, 33, 17):
            w.write(f)
    assert probe(out).video[0].size == (34, 18)
    assert count_frames(out) == 3


def test_writer_finalises_on_interrupt(tmp_path):
    out = tmp_path / "partial.mp4"
    with pytest.raises(KeyboardInterrupt), VideoWriter(out, (160, 120), 30) as w:
        for i, f in enumerate(_frames(20)):
            if i == 7:
                raise KeyboardInterrupt
            w.write(f)
    assert count_frames(out) == 7
    assert is_marked(probe(out).metadata)


def _colour_frames(n: int) -> list[np.ndarray]:
    """Frames told apart by their grey level (i * 20), which survives encoding."""
    return [np.full((64, 64, 3), 20 * i, np.uint8) for i in range(n)]


def _grey_levels(path: Path) -> list[int]:
    with open_input(path) as src:
        return [int(round(float(f.image.mean()) / 20)) for f in src]


def test_writer_places_frames_by_their_time(tmp_path):
    out = tmp_path / "timed.mkv"
    frames = _colour_frames(6)
    times = [0.0, 0.1, 0.2, 0.5, 0.52, 0.6]  # a gap after 0.2 s, two frames in the 0.5 s slot
    with VideoWriter(out, (64, 64), 10) as w:
        for f, t in zip(frames, times, strict=True):
            w.write(f, 10.0 + t)  # any origin: the first frame starts the video
    # Slots of 0.1 s: 0 1 2 2 2 4 5 -> the frame at 0.2 s fills the gap; at 0.5 s the later one shows.
    assert _grey_levels(out) == [0, 1, 2, 2, 2, 4, 5]
    assert w.frames_written == 7


def test_writer_marks_the_file_only_when_a_frame_was_synthetic(tmp_path):
    plain, swapped = tmp_path / "plain.mp4", tmp_path / "swapped.mp4"
    with VideoWriter(plain, (64, 64), 10) as w:
        for f in _colour_frames(3):
            w.write(f, synthetic=False)
    tags = probe(plain).metadata
    assert not is_marked(tags) and "no face was swapped" in tags["comment"]
    with VideoWriter(swapped, (64, 64), 10) as w:
        for i, f in enumerate(_colour_frames(3)):
            w.write(f, synthetic=i == 1)
    assert is_marked(probe(swapped).metadata)


def test_writer_keeps_a_late_video_start_relative_to_the_audio(clips, tmp_path):
    out = tmp_path / "late.mp4"
    with (
        open_input(clips / "late_video.mp4") as src,
        VideoWriter(out, src.size, src.fps, audio_from=clips / "late_video.mp4") as w,
    ):
        for frame in src:
            w.write(frame.image, frame.time_s)
        w.whole_input = True
    assert stream_starts(out) == pytest.approx((0.84, 0.0), abs=0.01)
    assert probe(out).duration_s == pytest.approx(2.0, abs=0.06)  # the audio after the last frame is kept
    assert count_frames(out) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.mp4"], "no partial files left"


def test_writer_cuts_the_audio_where_a_partial_run_ends(clips, tmp_path):
    out = tmp_path / "first4.mp4"
    with (
        open_input(clips / "late_video.mp4") as src,
        VideoWriter(out, src.size, src.fps, audio_from=clips / "late_video.mp4") as w,
    ):
        for frame, _ in zip(src, range(4), strict=False):
            w.write(frame.image, frame.time_s)
    # Not the whole input (Ctrl-C, --max-frames): the audio ends with the 4th frame.
    assert probe(out).duration_s == pytest.approx(0.84 + 4 / 25, abs=0.03)


def test_writer_with_no_frames_creates_nothing(tmp_path):
    w = VideoWriter(tmp_path / "none.mp4", (64, 64), 30)
    assert w.close() is None
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_bad_frames_and_formats(tmp_path):
    with pytest.raises(ConfigError, match=r"\.avi"):
        VideoWriter(tmp_path / "x.avi", (64, 64), 30)
    w = VideoWriter(tmp_path / "x.mp4", (64, 64), 30)
    with pytest.raises(FrameFormatError, match=r"\(64, 64, 3\)"):
        w.write(np.zeros((64, 65, 3), np.uint8))
    with pytest.raises(FrameFormatError):
        w.write(np.zeros((64, 64, 3), np.float32))
    w.write(np.zeros((64, 64, 3), np.uint8))
    assert w.close() == tmp_path / "x.mp4"
    assert w.close() == tmp_path / "x.mp4"  # idempotent
    with pytest.raises(FaceSwapError, match="closed"):
        w.write(np.zeros((64, 64, 3), np.uint8))


def test_writer_abort_removes_partial_file(tmp_path):
    w = VideoWriter(tmp_path / "x.mp4", (64, 64), 30)
    w.write(np.zeros((64, 64, 3), np.uint8))
    w.abort()
    assert list(tmp_path.iterdir()) == []


# -- images -------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_write_image_embeds_disclosure(read_image, tmp_path, ext):
    img = read_image("astronaut.png")
    out = write_image(tmp_path / "sub" / f"a{ext}", img)
    tags = read_image_metadata(out)
    assert is_marked(tags)
    assert "image contains synthetic" in tags["comment"]
    back = io_read_image(out)
    if ext == ".png":
        assert np.array_equal(back, img)
    else:
        assert np.abs(back.astype(int) - img.astype(int)).mean() < 3
    assert [p.name for p in out.parent.iterdir()] == [out.name]
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask


def test_png_chunks_are_well_formed(read_image, tmp_path):
    """Every chunk's CRC is right and the text chunks come before the image data."""
    data = write_image(tmp_path / "a.png", read_image("astronaut.png")).read_bytes()
    pos, kinds = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        kinds.append(kind)
        pos += 12 + n
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert kinds.count(b"tEXt") == 3
    assert max(i for i, k in enumerate(kinds) if k == b"tEXt") < kinds.index(b"IDAT")


def test_write_image_refuses_formats_without_metadata(tmp_path):
    with pytest.raises(ConfigError, match="webp"):
        write_image(tmp_path / "a.webp", np.zeros((8, 8, 3), np.uint8))


class FakeCamera:
    """Stands in for cv2.VideoCapture(N): a few frames, then the camera goes away."""

    def __init__(self, n: int) -> None:
        self.frames = [np.full((48, 64, 3), i, np.uint8) for i in range(n)]
        self.released = False

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def release(self) -> None:
        self.released = True


def test_webcam_input_yields_until_the_camera_stops():
    from obs_faceswap.io import WebcamInput

    cam = FakeCamera(5)
    ok, first = cam.read()
    with WebcamInput("webcam:0", None, cam, first, Fraction(30), None) as src:
        assert (src.kind, src.size, src.frame_count, src.has_audio) == ("webcam", (64, 48), None, False)
        frames = list(src)
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 1, 2, 3, 4]
    t = [f.time_s for f in frames]
    assert t == sorted(t) and t[0] >= 0
    assert cam.released
