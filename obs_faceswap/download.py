"""Fetching files over HTTPS with a progress bar, and their sha256 digests (standard library + tqdm).

One place for both, used by the model store (plain downloads) and the converter (archives
that hold MediaPipe's originals).
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from obs_faceswap.errors import DownloadError


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in ``chunk``-byte pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def download(url: str, out: IO[bytes], *, expected_size: int, label: str, progress: bool) -> None:
    """Stream ``url`` into ``out`` (with a tqdm progress bar when ``progress``).

    Raises:
        DownloadError: the network or the server failed; names the URL.
    """
    req = urllib.request.Request(url, headers={"User-Agent": "obs-faceswap"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            total = int(resp.headers.get("Content-Length") or expected_size)
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=total, unit="B", unit_scale=True, desc=label, leave=False)
            try:
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        raise DownloadError(f"cannot download {url}: {err}") from err
