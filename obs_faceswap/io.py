"""Files and webcams in, files out: frame readers, an ffmpeg video writer, image writing.

Reading goes through OpenCV (``cv2.VideoCapture`` for videos and webcams, ``cv2.imdecode``
for photos). Writing videos pipes raw BGR frames into an ``ffmpeg`` subprocess (H.264,
yuv420p, the input's exact frame rate as a rational), then muxes the input's audio back in
and stamps the disclosure metadata (:data:`obs_faceswap.disclosure.METADATA`). Images get
the same metadata as PNG ``tEXt`` chunks or a JPEG ``COM`` segment (OpenCV cannot write
either, so they are spliced into the encoded bytes here).

The ffmpeg binary comes from the ``imageio-ffmpeg`` package (a static build in its wheel, on
Windows, macOS and Linux alike), or from ``ffmpeg`` on ``PATH``.

Every problem with a file is an :class:`~obs_faceswap.errors.InputError` (or another
:class:`~obs_faceswap.errors.FaceSwapError`) whose message names the file.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar, cast

import cv2
import numpy as np

from obs_faceswap.disclosure import metadata as disclosure_metadata
from obs_faceswap.errors import ConfigError, FaceSwapError, FrameFormatError, InputError
from obs_faceswap.frame import read_image
from obs_faceswap.types import ImageBGR

log = logging.getLogger(__name__)

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
#: Image formats the engine writes (the ones that can carry the disclosure metadata).
IMAGE_OUTPUT_EXTS = (".png", ".jpg", ".jpeg")
#: Video containers the engine writes (H.264 video; audio copied or re-encoded to AAC).
VIDEO_OUTPUT_EXTS = (".mp4", ".m4v", ".mov", ".mkv")
# Audio codecs an MP4/MOV file can hold as they are; anything else is re-encoded to AAC.
_MP4_AUDIO = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})
_WEBCAM = re.compile(r"^webcam:(\d+)$", re.IGNORECASE)

T = TypeVar("T")


# -- ffmpeg ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of an ffmpeg binary: imageio-ffmpeg's bundled one, else ``ffmpeg`` on PATH.

    Raises:
        FaceSwapError: neither exists (the message says how to install one).
    """
    try:
        import imageio_ffmpeg

        exe: str = imageio_ffmpeg.get_ffmpeg_exe()
        if exe and Path(exe).is_file():
            return exe
    except (ImportError, RuntimeError) as e:
        log.debug("imageio-ffmpeg unavailable: %s", e)
    exe_on_path = shutil.which("ffmpeg")
    if exe_on_path:
        return exe_on_path
    raise FaceSwapError(
        "ffmpeg not found: install the Python package imageio-ffmpeg (pip install imageio-ffmpeg, "
        "a dependency of obs-faceswap) or put an ffmpeg binary on PATH"
    )


def _popen_kwargs() -> dict[str, Any]:
    # Keep Ctrl-C away from ffmpeg: the CLI catches KeyboardInterrupt and finalises the file
    # itself; an ffmpeg that received SIGINT too would stop early and break the pipe.
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(t.strip() for t in text.strip().splitlines()[-lines:])


def _run_ffmpeg(args: list[str], what: str) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    log.debug("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **_popen_kwargs())
    if proc.returncode != 0:
        raise FaceSwapError(
            f"{what} failed (ffmpeg exit {proc.returncode}): {_tail(proc.stderr.decode(errors='replace'))}"
        )


# -- probing --------------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamInfo:
    """One stream of a media file as ffmpeg describes it.

    Attributes:
        index: stream number in the file.
        kind: ``"video"``, ``"audio"``, ``"subtitle"``, ``"data"`` or ``"attachment"``.
        codec: ffmpeg codec name (``h264``, ``aac``, ...).
        size: ``(width, height)`` for video, else None.
        fps: the frame rate ffmpeg prints (rounded to 2 decimals), video only: the average.
        tbr: ffmpeg's guess of the stream's base rate, video only: the highest rate of a
            variable-frame-rate video, where ``fps`` is its average.
        sample_rate: Hz, audio only.
        metadata: the stream's tags.
    """

    index: int
    kind: str
    codec: str
    size: tuple[int, int] | None = None
    fps: float | None = None
    tbr: float | None = None
    sample_rate: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MediaInfo:
    """What ``ffmpeg -i FILE`` says about a file: container, duration, streams, tags."""

    path: Path
    format: str
    duration_s: float | None
    streams: tuple[StreamInfo, ...]
    metadata: dict[str, str]

    @property
    def video(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.kind == "video"]

    @property
    def audio(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.kind == "audio"]

    @property
    def has_audio(self) -> bool:
        return bool(self.audio)


_STREAM = re.compile(
    r"^\s*Stream #\d+:(\d+)(?:\[0x[0-9a-fA-F]+\])?(?:\([^)]*\))?: (Video|Audio|Subtitle|Data|Attachment): (\S+)"
)
_META = re.compile(r"^(\s*)([^:]*?)\s*: (.*)$")


def parse_ffmpeg_info(text: str, path: Path) -> MediaInfo:
    """Parse the banner ``ffmpeg -i FILE`` prints on stderr (exposed for testing).

    Raises:
        InputError: ffmpeg found no input (the message quotes ffmpeg's reason).
    """
    lines = text.splitlines()
    fmt = ""
    duration: float | None = None
    streams: list[dict[str, Any]] = []
    global_meta: dict[str, str] = {}
    target: dict[str, str] | None = None
    meta_indent = -1
    last_key = ""
    for line in lines:
        if line.startswith("Input #"):
            m = re.match(r"Input #\d+, ([^ ]+), from", line)
            fmt = m.group(1).rstrip(",") if m else ""
            target = None
            continue
        if line.startswith(("Output #", "At least one output")):
            break
        stripped = line.strip()
        if stripped == "Metadata:":
            meta_indent = len(line) - len(line.lstrip())
            target = streams[-1]["metadata"] if streams else global_meta
            last_key = ""
            continue
        sm = _STREAM.match(line)
        if sm:
            idx, kind, codec = int(sm.group(1)), sm.group(2).lower(), sm.group(3).rstrip(",")
            s: dict[str, Any] = {"index": idx, "kind": kind, "codec": codec, "metadata": {}}
            if kind == "video":
                size = re.search(r", (\d{1,5})x(\d{1,5})\b", line)
                if size:
                    s["size"] = (int(size.group(1)), int(size.group(2)))
                fps = re.search(r", ([\d.]+)(k?) fps", line)
                if fps:
                    s["fps"] = float(fps.group(1)) * (1000 if fps.group(2) else 1)
                tbr = re.search(r", ([\d.]+)(k?) tbr", line)
                if tbr:
                    s["tbr"] = float(tbr.group(1)) * (1000 if tbr.group(2) else 1)
            elif kind == "audio":
                hz = re.search(r", (\d+) Hz", line)
                if hz:
                    s["sample_rate"] = int(hz.group(1))
            streams.append(s)
            target = None
            continue
        if stripped.startswith("Duration:"):
            target = None
            d = re.search(r"Duration: (\d+):(\d+):([\d.]+)", stripped)
            if d:
                duration = int(d.group(1)) * 3600 + int(d.group(2)) * 60 + float(d.group(3))
            continue
        if target is not None:
            mm = _META.match(line)
            indent = len(line) - len(line.lstrip())
            if mm and indent > meta_indent:
                key, value = mm.group(2), mm.group(3)
                if key:
                    target[key] = value
                    last_key = key
                elif last_key:  # continuation line of a multi-line value
                    target[last_key] += "\n" + value
                continue
            target = None
    if not fmt:
        reason = _tail(text, 2) or "ffmpeg printed nothing"
        raise InputError(f"cannot read {path}: {reason}")
    return MediaInfo(
        path=path,
        format=fmt,
        duration_s=duration,
        streams=tuple(StreamInfo(**s) for s in streams),
        metadata=global_meta,
    )


def probe(path: str | Path) -> MediaInfo:
    """Container, streams and tags of a media file, from ``ffmpeg -i``.

    Raises:
        InputError: the file does not exist or ffmpeg cannot read it.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"file not found: {p}")
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(p)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **_popen_kwargs(),
    )
    return parse_ffmpeg_info(proc.stderr.decode("utf-8", errors="replace"), p)


_FIRST_FRAME = re.compile(r"Parsed_(a?)showinfo_\d+ @ [^\]]*\] n:\s*0 pts:\s*-?\d+ pts_time:(-?[\d.e+-]+)")


def output_rate(source: InputSource) -> Fraction:
    """The constant frame rate to write ``source``'s frames at.

    Its own rate, except for a variable-frame-rate file, whose average rate (what OpenCV
    reports) would drop frames wherever it runs faster than average: there, its highest
    rate (ffmpeg's ``tbr``), within reason (at most 4x the average and 120 fps).
    """
    assert source.fps is not None
    if source.kind != "video" or source.path is None:
        return source.fps
    try:
        video = probe(source.path).video
    except InputError:
        return source.fps
    tbr = video[0].tbr if video else None
    avg = float(source.fps)
    if tbr is not None and avg * 1.01 < tbr <= min(4 * avg, 120.0):
        log.info(
            "%s has a variable frame rate (%.2f fps on average, up to %.2f): writing %.2f fps",
            source.name,
            avg,
            tbr,
            tbr,
        )
        return exact_fps(tbr)
    return source.fps


def stream_starts(path: str | Path) -> tuple[float | None, float | None]:
    """When the first video frame and the first audio sample of ``path`` play.

    Seconds from the start of the file, as ffmpeg places them (its timeline begins at the
    earliest stream): a clip whose picture starts 0.84 s after its sound gives ``(0.84, 0.0)``.
    Decodes one frame of each (the container's start times ignore edit lists and decoder
    delay; the first decoded frame does not).

    Returns:
        ``(video_start_s, audio_start_s)``; None for a stream the file lacks.

    Raises:
        InputError: the file does not exist.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"file not found: {p}")
    proc = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "info",
            "-i",
            str(p),
            "-map",
            "0:v:0?",
            "-map",
            "0:a:0?",
            "-filter:v",
            "showinfo",
            "-filter:a",
            "ashowinfo",
            "-frames:v",
            "1",
            "-frames:a",
            "1",
            "-f",
            "null",
            "-",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **_popen_kwargs(),
    )
    starts: dict[str, float] = {}
    for m in _FIRST_FRAME.finditer(proc.stderr.decode("utf-8", errors="replace")):
        starts.setdefault("audio" if m.group(1) else "video", float(m.group(2)))
    return starts.get("video"), starts.get("audio")


def exact_fps(fps: float) -> Fraction:
    """The rational frame rate a float most likely stands for (29.97002997 → 30000/1001).

    Args:
        fps: frames per second, as OpenCV reports it.

    Raises:
        InputError: ``fps`` is not a positive finite number.
    """
    if not (fps > 0 and np.isfinite(fps)):
        raise InputError(f"invalid frame rate {fps!r}")
    # NTSC-style rates are n*1000/1001; everything else in practice has a small denominator.
    ntsc = Fraction(round(fps * 1001 / 1000) * 1000, 1001)
    if abs(float(ntsc) - fps) < 1e-6 * fps:
        return ntsc
    return Fraction(fps).limit_denominator(1001)


# -- readers --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """One input frame.

    Attributes:
        index: 0-based position in the input.
        time_s: presentation time in seconds (from the container for files, from the clock
            for webcams).
        image: ``(H, W, 3)`` uint8 BGR.
    """

    index: int
    time_s: float
    image: ImageBGR


class InputSource:
    """Frames from a video file, an image or a webcam; iterate it for :class:`Frame` objects.

    Attributes:
        kind: ``"video"``, ``"image"`` or ``"webcam"``.
        name: what the user gave (path or ``webcam:N``).
        path: the file, or None for a webcam.
        fps: exact frame rate (None for an image).
        frame_count: number of frames if known (a webcam's is None).
        size: ``(width, height)``.
    """

    kind = "video"

    def __init__(
        self, name: str, path: Path | None, size: tuple[int, int], fps: Fraction | None, frame_count: int | None
    ) -> None:
        self.name = name
        self.path = path
        self.size = size
        self.fps = fps
        self.frame_count = frame_count

    @functools.cached_property
    def has_audio(self) -> bool:
        """Whether the input file has an audio stream (probed with ffmpeg on first use)."""
        if self.path is None or self.kind != "video":
            return False
        return probe(self.path).has_audio

    def __iter__(self) -> Iterator[Frame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release the file or camera (idempotent)."""

    def __enter__(self) -> InputSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        w, h = self.size
        return f"{type(self).__name__}({self.name!r}, {w}x{h}, fps={self.fps}, frames={self.frame_count})"


class ImageInput(InputSource):
    """A single photo as a one-frame input."""

    kind = "image"

    def __init__(self, path: Path) -> None:
        self._image: ImageBGR | None = read_image(path)
        h, w = self._image.shape[:2]
        super().__init__(str(path), path, (w, h), None, 1)

    def __iter__(self) -> Iterator[Frame]:
        if self._image is None:
            raise InputError(f"{self.name} is closed")
        yield Frame(0, 0.0, self._image)

    def close(self) -> None:
        self._image = None


class _CaptureInput(InputSource):
    """Shared part of video files and webcams: a ``cv2.VideoCapture`` whose first frame has
    already been read (so an empty or undecodable input fails at open time)."""

    def __init__(
        self,
        name: str,
        path: Path | None,
        cap: cv2.VideoCapture,
        first: ImageBGR,
        fps: Fraction | None,
        frame_count: int | None,
    ) -> None:
        self._cap: cv2.VideoCapture | None = cap
        self._first: ImageBGR | None = first
        self._consumed = False
        h, w = first.shape[:2]
        super().__init__(name, path, (w, h), fps, frame_count)

    def _read(self) -> ImageBGR | None:
        cap = self._cap
        if cap is None:
            return None
        ok, img = cap.read()
        return cast(ImageBGR, img) if ok and img is not None else None

    def _frames(self) -> Iterator[ImageBGR]:
        if self._consumed:
            raise InputError(f"{self.name} can only be read once; open it again")
        self._consumed = True
        first, self._first = self._first, None
        if first is None:
            return
        yield first
        while (img := self._read()) is not None:
            yield img

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._first = None


class VideoInput(_CaptureInput):
    """A video file read with OpenCV's FFmpeg backend."""

    kind = "video"

    def __iter__(self) -> Iterator[Frame]:
        assert self.fps is not None
        period = 1.0 / float(self.fps)
        last = -1.0
        for i, img in enumerate(self._frames()):
            # The container's timestamp when it is sane (monotonic), else index / fps.
            t = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if self._cap is not None else -1.0
            if not (t > last or (i == 0 and t >= 0)):
                t = i * period
            last = t
            yield Frame(i, t, img)


class WebcamInput(_CaptureInput):
    """A camera opened by index (``webcam:0``); timestamps come from the monotonic clock."""

    kind = "webcam"

    def __iter__(self) -> Iterator[Frame]:
        t0 = time.monotonic()
        for i, img in enumerate(self._frames()):
            yield Frame(i, time.monotonic() - t0, img)


def is_webcam(spec: str | Path) -> bool:
    """True for ``webcam:N`` input specs."""
    return bool(_WEBCAM.match(str(spec)))


def open_input(spec: str | Path) -> InputSource:
    """Open a video file, an image file or ``webcam:N`` for reading.

    The first frame is read at once, so an unreadable or empty input fails here rather than
    half-way through a run.

    Args:
        spec: a path, or ``webcam:N`` for camera number N.

    Returns:
        An :class:`InputSource`; use it as a context manager and iterate it for frames.

    Raises:
        InputError: the file does not exist, is empty, cannot be decoded or has no frames;
            the camera cannot be opened or delivers no frame.
    """
    s = str(spec)
    m = _WEBCAM.match(s)
    if m:
        index = int(m.group(1))
        cap = cv2.VideoCapture(index)
        if not cap.isOpened():
            raise InputError(f"cannot open webcam {index}: no such camera, or another program is using it")
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise InputError(f"webcam {index} opened but delivered no frame")
        cam_fps = cap.get(cv2.CAP_PROP_FPS)
        fps = exact_fps(cam_fps) if 1 <= cam_fps <= 240 else Fraction(30)
        return WebcamInput(s, None, cap, cast(ImageBGR, first), fps, None)

    p = Path(spec)
    if not p.exists():
        raise InputError(f"input not found: {p}")
    if not p.is_file():
        raise InputError(f"input is not a file: {p}")
    if p.stat().st_size == 0:
        raise InputError(f"input {p} is empty (0 bytes)")
    if p.suffix.lower() in IMAGE_EXTS:
        return ImageInput(p)

    cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG)
    ok, first = cap.read() if cap.isOpened() else (False, None)  # type: ignore[assignment]
    if not ok or first is None:
        cap.release()
        raise InputError(_why_unreadable(p))
    raw_fps = cap.get(cv2.CAP_PROP_FPS)
    if raw_fps > 0 and np.isfinite(raw_fps):
        fps = exact_fps(raw_fps)
    else:
        log.warning("%s does not state its frame rate; assuming 30 fps", p)
        fps = Fraction(30)
    n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    count = int(n) if n > 0 and np.isfinite(n) else None
    return VideoInput(str(p), p, cap, cast(ImageBGR, first), fps, count)


def _why_unreadable(p: Path) -> str:
    """The most specific reason OpenCV could not give a first frame of ``p``."""
    try:
        info = probe(p)
    except FaceSwapError:  # not even ffmpeg can parse it (or there is no ffmpeg)
        return f"cannot read {p} as a video: not a format FFmpeg can decode, or the file is damaged"
    if not info.streams:
        return f"{p} is an empty video: it has no streams and no frames"
    if not info.video:
        kinds = " and ".join(sorted({s.kind for s in info.streams}))
        return f"{p} has no video stream (only {kinds})"
    return f"{p} contains no video frames (an empty or truncated video)"


def prefetch(items: Iterable[T], size: int = 4) -> Iterator[T]:
    """Iterate ``items`` in a background thread, ``size`` items ahead.

    Decoding in OpenCV releases the GIL, so a video file decodes while the pipeline works
    on the previous frame. Exceptions in the producer are re-raised in the consumer; leaving
    the loop early stops the producer.
    """
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(1, size))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            msg: tuple[str, Any] = ("end", None)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            msg = ("error", e)
        while not stop.is_set():
            try:
                q.put(msg, timeout=0.1)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=produce, name="obs-faceswap-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        thread.join(timeout=5)


# -- image output ---------------------------------------------------------------------------
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_with_text(png: bytes, tags: dict[str, str]) -> bytes:
    """Insert ``tEXt`` chunks right after IHDR (keywords 1-79 Latin-1 characters)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise FrameFormatError("not a PNG stream")
    ihdr_end = 8 + 8 + struct.unpack(">I", png[8:12])[0] + 4
    names = {"comment": "Comment", "description": "Description"}  # PNG's registered keywords
    chunks = b"".join(
        _png_chunk(b"tEXt", names.get(k, k)[:79].encode("latin-1", "replace") + b"\0" + v.encode("latin-1", "replace"))
        for k, v in tags.items()
    )
    return png[:ihdr_end] + chunks + png[ihdr_end:]


def _jpeg_with_comment(jpg: bytes, tags: dict[str, str]) -> bytes:
    """Insert one ``COM`` segment after SOI (and after the JFIF APP0 segment if present)."""
    if jpg[:2] != b"\xff\xd8":
        raise FrameFormatError("not a JPEG stream")
    pos = 2
    if jpg[2:4] == b"\xff\xe0":  # JFIF requires APP0 to come first
        pos = 4 + struct.unpack(">H", jpg[4:6])[0]
    text = "\n".join(f"{k}: {v}" for k, v in tags.items()).encode("utf-8")[:65000]
    return jpg[:pos] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + jpg[pos:]


def write_image(path: str | Path, image: ImageBGR, tags: dict[str, str] | None = None) -> Path:
    """Write a PNG or JPEG carrying the disclosure metadata, atomically.

    Args:
        path: ``.png``, ``.jpg`` or ``.jpeg``; parent directories are created.
        image: ``(H, W, 3)`` uint8 BGR.
        tags: metadata to embed; defaults to :func:`obs_faceswap.disclosure.metadata` for images.

    Returns:
        The path written.

    Raises:
        ConfigError: another extension (it could not carry the metadata).
        FaceSwapError: encoding or writing failed.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in IMAGE_OUTPUT_EXTS:
        raise ConfigError(
            f"cannot write {p}: image output must be {', '.join(IMAGE_OUTPUT_EXTS)} "
            f"(formats that carry the face-swap disclosure metadata)"
        )
    tags = disclosure_metadata("image") if tags is None else tags
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext != ".png" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise FaceSwapError(f"OpenCV could not encode {p}")
    data = buf.tobytes()
    data = _png_with_text(data, tags) if ext == ".png" else _jpeg_with_comment(data, tags)
    _atomic_write(p, data)
    return p


def _default_mode() -> int:
    """Permissions a newly created file gets (0o666 minus the umask); mkstemp would use 0o600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write(p: Path, data: bytes) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".partial", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_image_metadata(path: str | Path) -> dict[str, str]:
    """Text metadata of a PNG (``tEXt``/``iTXt``) or JPEG (``COM``, as ``key: value`` lines).

    Returns keys as written (PNG's ``Comment``/``Description`` are reported lower-case, like
    ffmpeg does for videos). Other formats give an empty dict.
    """
    data = Path(path).read_bytes()
    out: dict[str, str] = {}
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        pos = 8
        while pos + 8 <= len(data):
            n = struct.unpack(">I", data[pos : pos + 4])[0]
            kind = data[pos + 4 : pos + 8]
            body = data[pos + 8 : pos + 8 + n]
            if kind == b"tEXt" and b"\0" in body:
                k, v = body.split(b"\0", 1)
                out[_norm_key(k.decode("latin-1"))] = v.decode("latin-1")
            elif kind == b"iTXt" and b"\0" in body:
                k, rest = body.split(b"\0", 1)
                if rest[:1] == b"\0":  # uncompressed: flag, method, language\0, keyword\0, text
                    parts = rest[2:].split(b"\0", 2)
                    if len(parts) == 3:
                        out[_norm_key(k.decode("latin-1"))] = parts[2].decode("utf-8", "replace")
            elif kind == b"IEND":
                break
            pos += 12 + n
    elif data[:2] == b"\xff\xd8":
        pos = 2
        while pos + 4 <= len(data) and data[pos] == 0xFF:
            marker = data[pos + 1]
            if marker in (0xD9, 0xDA):  # end of image / start of scan: no more headers
                break
            n = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
            if marker == 0xFE:
                for line in data[pos + 4 : pos + 2 + n].decode("utf-8", "replace").splitlines():
                    key, sep, value = line.partition(": ")
                    if sep:
                        out[key] = value
            pos += 2 + n
    return out


def _norm_key(k: str) -> str:
    return k.lower() if k in ("Comment", "Description") else k


# -- video output ---------------------------------------------------------------------------
_SENTINEL = object()


class VideoWriter:
    """Encode BGR frames to H.264 through an ffmpeg subprocess; mux audio; stamp metadata.

    Frames are handed to a writer thread (bounded queue) that feeds ffmpeg's stdin, so the
    pipeline keeps working while ffmpeg encodes. The file is written under a temporary name
    next to ``path`` and renamed on :meth:`close`: a crash never leaves a half-written file
    at ``path``.

    Timing: frames given with their presentation time (``write(frame, time_s)``) are placed
    on the output's constant frame rate by that time, as ffmpeg does for a constant-rate
    output: a frame is repeated over a gap and the earlier of two frames sharing a slot is
    dropped. So a variable-frame-rate input keeps its timing, and its audio stays in sync.

    Audio: with ``audio_from`` (the file the frames came from), its audio streams are
    copied (re-encoded to AAC where the container needs it) with the picture placed where
    it starts in that file, so a clip whose video starts after its audio stays in sync. The
    audio is cut where the video ends unless :attr:`whole_input` is set before closing (the
    frames were the whole input: then the audio is kept to its end).

    Metadata: the disclosure tags (:func:`obs_faceswap.disclosure.metadata`) say
    "face-swapped" only when a frame was written with ``synthetic=True``.

    Args:
        path: ``.mp4``, ``.m4v``, ``.mov`` or ``.mkv``; parent directories are created.
        size: ``(width, height)`` of every frame (odd sizes are padded by one pixel, since
            yuv420p needs even dimensions).
        fps: exact frame rate, e.g. ``Fraction(30000, 1001)``.
        audio_from: a media file whose audio is muxed in, or None.
        tags: container metadata; default: the disclosure tags, decided on :meth:`close`.
        crf: x264 quality (lower is better; 18 is visually lossless for most content).
        preset: x264 speed preset.
        queue_size: frames buffered between the caller and ffmpeg.

    Raises:
        ConfigError: unsupported extension or bad size/fps.
        FaceSwapError: ffmpeg missing, or it failed (message quotes its error).

    Example:
        >>> with VideoWriter("out.mp4", (1280, 720), Fraction(30)) as w:  # doctest: +SKIP
        ...     w.write(frame, time_s=0.0)
    """

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        fps: Fraction | float,
        *,
        audio_from: str | Path | None = None,
        tags: dict[str, str] | None = None,
        crf: int = 18,
        preset: str = "veryfast",
        queue_size: int = 8,
    ) -> None:
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in VIDEO_OUTPUT_EXTS:
            raise ConfigError(f"cannot write {self.path}: video output must be {', '.join(VIDEO_OUTPUT_EXTS)}")
        w, h = int(size[0]), int(size[1])
        if w < 2 or h < 2:
            raise ConfigError(f"invalid video size {w}x{h}")
        self.size = (w, h)
        self.fps = fps if isinstance(fps, Fraction) else exact_fps(float(fps))
        if self.fps <= 0:
            raise ConfigError(f"invalid frame rate {fps}")
        self.audio_from = Path(audio_from) if audio_from else None
        self.tags = dict(tags) if tags is not None else None
        #: Frames sent to the encoder (repeats included).
        self.frames_written = 0
        #: Of those, frames written with ``synthetic=True`` (a face was swapped in them).
        self.frames_synthetic = 0
        #: Set before closing when the frames were the whole input: the audio is kept to its end.
        self.whole_input = False
        self._pending: tuple[ImageBGR, int, bool] | None = None  # frame, its slot, synthetic
        self._t0: float | None = None
        self._closed = False
        self._error: BaseException | None = None

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".partial{ext}", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        # ffmpeg's stderr goes to a file (a pipe nobody reads could fill up and block ffmpeg);
        # it lives as long as the writer, so no context manager.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115

        cmd = [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "bgr24",
            "-s",
            f"{w}x{h}",
            "-framerate",
            f"{self.fps.numerator}/{self.fps.denominator}",
            "-i",
            "pipe:0",
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            preset,
            "-crf",
            str(crf),
        ]
        # Convert with the BT.709 matrix and say so, so players do not guess the colours.
        vf = "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"
        if w % 2 or h % 2:
            vf = "pad=ceil(iw/2)*2:ceil(ih/2)*2," + vf
            log.info("%s: padding %dx%d to even dimensions for yuv420p", self.path.name, w, h)
        cmd += [
            "-vf",
            vf,
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
            "-color_range",
            "tv",
            "-map_metadata",
            "-1",
            str(self._tmp),
        ]
        log.debug("running %s", " ".join(cmd))
        try:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log, **_popen_kwargs()
            )
        except OSError as e:
            self._cleanup()
            raise FaceSwapError(f"cannot start ffmpeg ({cmd[0]}): {e}") from e
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
        self._thread = threading.Thread(target=self._pump, name="obs-faceswap-writer", daemon=True)
        self._thread.start()

    def _metadata_args(self, ext: str) -> list[str]:
        tags = self.tags
        if tags is None:
            tags = disclosure_metadata("video", swapped=self.frames_synthetic > 0)
        # -map_metadata -1: only our tags; nothing inherited from the intermediate file.
        args: list[str] = ["-map_metadata", "-1"]
        for k, v in tags.items():
            args += ["-metadata", f"{k}={v}"]
        if ext in (".mp4", ".m4v", ".mov"):
            # use_metadata_tags: keep custom keys (synthetic_content); faststart: playable
            # while downloading.
            args += ["-movflags", "+faststart+use_metadata_tags"]
        return args

    def _pump(self) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        while True:
            item = self._queue.get()
            if item is _SENTINEL:
                return
            if self._error is not None:
                continue  # drain so the producer never blocks
            try:
                stdin.write(memoryview(item).cast("B"))
            except (BrokenPipeError, OSError) as e:
                self._error = e

    def _ffmpeg_log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")

    def write(self, frame: ImageBGR, time_s: float | None = None, *, synthetic: bool = True) -> None:
        """Queue one ``(height, width, 3)`` uint8 BGR frame for encoding.

        The frame is kept (not copied) until the next one's time is known; do not modify it
        afterwards.

        Args:
            frame: the picture.
            time_s: its presentation time in seconds (any origin; the first frame's time is
                the start of the video). None: the slot after the previous frame.
            synthetic: whether a face was swapped in it (see the class's Metadata note).

        Raises:
            FrameFormatError: wrong shape or dtype.
            FaceSwapError: ffmpeg stopped (its error is quoted) or the writer is closed.
        """
        if self._closed:
            raise FaceSwapError(f"{self.path} is already closed")
        w, h = self.size
        if frame.shape != (h, w, 3) or frame.dtype != np.uint8:
            raise FrameFormatError(
                f"frame must be ({h}, {w}, 3) uint8 for {self.path.name}, got {frame.shape} {frame.dtype}"
            )
        if self._error is not None or self._proc.poll() is not None:
            self._raise_ffmpeg("encoding")
        pending = self._pending
        if time_s is None:
            slot = pending[1] + 1 if pending is not None else 0
        else:
            if self._t0 is None:
                self._t0 = time_s
            slot = max(0, round((time_s - self._t0) * float(self.fps)))
        if pending is not None and slot > pending[1]:
            # The previous frame shows until this one's slot (repeated over a gap).
            self._emit(pending[0], slot - pending[1], pending[2])
        elif pending is not None:
            slot = pending[1]  # two frames in one slot: the later one is shown
        self._pending = (frame, slot, synthetic)

    def _emit(self, frame: ImageBGR, count: int, synthetic: bool) -> None:
        data = np.ascontiguousarray(frame)
        for _ in range(count):
            self._queue.put(data)
        self.frames_written += count
        self.frames_synthetic += count if synthetic else 0

    def _raise_ffmpeg(self, what: str) -> None:
        self._proc.wait()
        raise FaceSwapError(
            f"writing {self.path} failed while {what}: ffmpeg exit {self._proc.returncode}: "
            f"{_tail(self._ffmpeg_log()) or self._error}"
        )

    def close(self) -> Path | None:
        """Finish encoding, mux audio, stamp metadata, move the file into place (idempotent).

        Returns:
            The output path, or None when no frame was written (nothing is created then).

        Raises:
            FaceSwapError: ffmpeg failed; the partial file is removed.
        """
        if self._closed:
            return self.path if self.path.exists() else None
        self._closed = True
        try:
            if self._pending is not None:
                frame, _, synthetic = self._pending
                self._pending = None
                self._emit(frame, 1, synthetic)
            self._queue.put(_SENTINEL)
            self._thread.join()
            if self._proc.stdin is not None:
                with contextlib.suppress(OSError):  # ffmpeg may already have exited
                    self._proc.stdin.close()
            rc = self._proc.wait()
            if self.frames_written == 0:
                log.warning("no frames were written; %s not created", self.path)
                return None
            if rc != 0 or self._error is not None:
                self._raise_ffmpeg("finishing")
            self._finish()
            os.chmod(self._tmp, _default_mode())
            os.replace(self._tmp, self.path)
            log.info("wrote %s (%d frames at %s fps)", self.path, self.frames_written, self.fps)
            return self.path
        finally:
            self._cleanup()

    def abort(self) -> None:
        """Stop ffmpeg and delete the partial file (idempotent)."""
        if not self._closed:
            self._closed = True
            self._pending = None
            self._error = self._error or FaceSwapError("aborted")
            self._proc.kill()
            self._queue.put(_SENTINEL)
            self._thread.join(timeout=5)
            self._proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        self._tmp.unlink(missing_ok=True)
        self._log.close()

    def _audio_source(self) -> tuple[MediaInfo, float] | None:
        """The audio file's streams and where its picture starts, or None for no audio."""
        if self.audio_from is None:
            return None
        try:
            info = probe(self.audio_from)
            if not info.has_audio:
                return None
            video_start, _ = stream_starts(self.audio_from)
        except InputError as e:
            log.warning("not keeping audio: %s", e)
            return None
        return info, max(0.0, video_start or 0.0)

    def _finish(self) -> None:
        """Remux the encoded video with the audio of ``audio_from`` and the metadata."""
        ext = self.path.suffix.lower()
        finished = self._tmp.with_name(self._tmp.stem + ".mux" + ext)
        source = self._audio_source()
        # (inputs, output options): with audio first, copied or re-encoded; the video alone
        # last, since it is still good: better without sound than losing the whole run.
        attempts: list[tuple[list[str], list[str]]] = []
        if source is not None:
            info, video_start = source
            # -itsoffset puts the first frame where the input's first frame was, relative to
            # its audio (ffmpeg starts both files' timelines at 0 the same way).
            inputs = ["-itsoffset", f"{video_start:.6f}", "-i", str(self._tmp), "-i", str(self.audio_from)]
            maps = ["-map", "0:v:0", "-map", "1:a?", "-c:v", "copy"]
            if not self.whole_input:
                maps += ["-t", f"{video_start + float(self.frames_written / self.fps):.6f}"]
            if ext == ".mkv" or all(s.codec in _MP4_AUDIO for s in info.audio):
                attempts.append((inputs, [*maps, "-c:a", "copy"]))
            attempts.append((inputs, [*maps, "-c:a", "aac", "-b:a", "192k"]))
        attempts.append((["-i", str(self._tmp)], ["-map", "0:v:0", "-c:v", "copy"]))
        last: FaceSwapError | None = None
        try:
            for inputs, options in attempts:
                try:
                    _run_ffmpeg(
                        [*inputs, *options, *self._metadata_args(ext), str(finished)],
                        f"finishing {self.path}" + (f" with the audio of {self.audio_from}" if len(inputs) > 2 else ""),
                    )
                except FaceSwapError as e:
                    last = e
                    continue
                if source is not None and len(inputs) == 2:
                    log.warning("%s written without audio: %s", self.path, last)
                os.replace(finished, self._tmp)
                return
            assert last is not None
            raise last
        finally:
            finished.unlink(missing_ok=True)  # also when interrupted half-way

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self._failed():
            self.abort()
            return
        if exc is None:
            self.close()
            return
        # Interrupted (Ctrl-C) or the caller failed mid-run: keep what was processed so far,
        # without hiding the original exception.
        try:
            path = self.close()
            if path is not None:
                log.warning("stopped early: %s holds the first %d frames", path, self.frames_written)
        except FaceSwapError as e:
            log.error("could not finalise %s: %s", self.path, e)

    def _failed(self) -> bool:
        return self._error is not None or self._proc.poll() not in (None, 0)
