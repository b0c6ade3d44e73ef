"""The model store: every default model declared once in ``models/manifest.toml``.

Lookup order for a model file:

1. an explicit directory (``--models DIR`` / ``ModelStore(models_dir=...)``),
2. the directory in ``$OBS_FACESWAP_MODELS``,
3. the user cache (``platformdirs.user_cache_dir("obs-faceswap")/models``), downloading
   from the manifest's public URL with a progress bar and verifying the sha256.

A file that is present but has the wrong size or digest is never used: the error names the
file, the expected digest and how to get a good copy.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from obs_faceswap.download import download, sha256_file
from obs_faceswap.errors import (
    ConfigError,
    DownloadError,
    ModelCorruptError,
    ModelError,
    ModelNotFoundError,
)
from obs_faceswap.model_specs import DetectorSpec, InputSpec, MeshSpec, ModelSpec, RecognitionSpec, parse_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

ENV_MODELS = "OBS_FACESWAP_MODELS"
ENV_MEDIA = "OBS_FACESWAP_MEDIA"
ENV_CACHE = "OBS_FACESWAP_CACHE"

_S = TypeVar("_S", bound=InputSpec)


def manifest_path() -> Path:
    """``models/manifest.toml`` of a source checkout, or the copy packaged in the wheel."""
    here = Path(__file__).resolve().parent
    for p in (here.parent / "models" / "manifest.toml", here / "data" / "manifest.toml"):
        if p.is_file():
            return p
    raise ConfigError(f"models/manifest.toml not found next to {here}; the installation is broken")


@dataclass(frozen=True)
class Entry:
    """One file declared in the manifest (a model, geometry data or sample media).

    Attributes:
        name: key in the manifest (``yunet``, ``mesh468``, ...).
        kind: ``"models"`` or ``"media"``.
        file: file name on disk.
        sha256, size: what the file must hash to and weigh.
        url: where the exact file can be downloaded; empty when no public copy exists.
        meta: every other field (role, licence, input size, normalisation, template, ...).
        spec: the typed model facts of a detector, landmark or recognition model
            (:mod:`obs_faceswap.model_specs`), validated when the manifest loads; None for
            other roles.
    """

    name: str
    kind: str
    file: str
    sha256: str
    size: int
    url: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    spec: ModelSpec | None = field(default=None, hash=False, compare=False)

    @property
    def license(self) -> str:
        return str(self.meta.get("license", "unknown"))

    @property
    def role(self) -> str:
        return str(self.meta.get("role", ""))

    def get(self, key: str, default: Any = None) -> Any:
        return self.meta.get(key, default)


def load_manifest(path: Path | None = None) -> dict[str, Entry]:
    """Parse the manifest into ``{name: Entry}`` (models and media together; names are unique).

    Raises:
        ConfigError: an entry lacks its file, digest or size, or a name is declared twice.
        ModelError: a model entry lacks a fact its role needs (:func:`~obs_faceswap.model_specs.parse_spec`).
    """
    path = path or manifest_path()
    with open(path, "rb") as f:
        data = tomllib.load(f)
    out: dict[str, Entry] = {}
    for kind in ("models", "media"):
        for name, d in data.get(kind, {}).items():
            if name in out:
                raise ConfigError(f"{path}: {name!r} declared twice")
            try:
                meta = {k: v for k, v in d.items() if k not in ("file", "sha256", "size", "url")}
                spec = parse_spec(name, d, path) if kind == "models" else None
                out[name] = Entry(
                    name, kind, d["file"], d["sha256"].lower(), int(d["size"]), d.get("url", ""), meta, spec
                )
            except KeyError as e:
                raise ConfigError(f"{path}: entry {name!r} lacks {e}") from e
    return out


@lru_cache(maxsize=1)
def _packaged_manifest() -> dict[str, Entry]:
    return load_manifest()


def default_spec(name: str, cls: type[_S]) -> _S:
    """The spec of entry ``name`` in the packaged manifest, for a wrapper built from a bare path.

    Raises:
        ModelError: ``name`` is not a model of that kind.
    """
    spec = _packaged_manifest()[name].spec
    if not isinstance(spec, cls):
        raise ModelError(f"manifest entry {name!r} has no {cls.__name__}")
    return spec


def default_cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("obs-faceswap", appauthor=False))


class ModelStore:
    """Finds, verifies and (optionally) downloads the files the manifest declares.

    Args:
        models_dir: explicit directory searched first (``--models DIR``).
        media_dir: explicit directory for ``media`` entries (``--media DIR``); falls back to
            ``$OBS_FACESWAP_MEDIA``, then the cache.
        cache_dir: where downloads go; defaults to the user cache directory.
        allow_download: fetch missing files from their URL; when False a missing file is an
            error that says how to fetch it.
        progress: show a progress bar while downloading.
    """

    def __init__(
        self,
        models_dir: str | Path | None = None,
        *,
        media_dir: str | Path | None = None,
        cache_dir: str | Path | None = None,
        allow_download: bool = True,
        progress: bool = True,
        manifest: dict[str, Entry] | None = None,
    ) -> None:
        self.entries = manifest if manifest is not None else load_manifest()
        self.models_dir = Path(models_dir) if models_dir else None
        self.media_dir = Path(media_dir) if media_dir else None
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.allow_download = allow_download
        self.progress = progress
        self._verified: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    # -- lookup -------------------------------------------------------------------------
    def entry(self, name: str) -> Entry:
        try:
            return self.entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown model {name!r}; the manifest declares: {', '.join(sorted(self.entries))}"
            ) from None

    def detector_spec(self, name: str) -> DetectorSpec:
        """The detector facts of manifest entry ``name`` (``yunet``, ``scrfd``, ``blazeface_full``...)."""
        return self._spec(name, DetectorSpec, "detector")

    def mesh_spec(self, name: str) -> MeshSpec:
        """The face-mesh facts of manifest entry ``name`` (``mesh468``, ``mesh478``)."""
        return self._spec(name, MeshSpec, "landmarks")

    def recognition_spec(self, name: str) -> RecognitionSpec:
        """The recognition-model facts of manifest entry ``name`` (``faceres``)."""
        return self._spec(name, RecognitionSpec, "recognition")

    def _spec(self, name: str, cls: type[_S], role: str) -> _S:
        spec = self.entry(name).spec
        if not isinstance(spec, cls):
            raise ModelError(f"manifest entry {name!r} is not a {role} model (its role is {self.entry(name).role!r})")
        return spec

    def search_dirs(self, kind: str = "models") -> list[tuple[str, Path]]:
        """(label, directory) pairs in lookup order."""
        dirs: list[tuple[str, Path]] = []
        explicit = self.models_dir if kind == "models" else self.media_dir
        env = os.environ.get(ENV_MODELS if kind == "models" else ENV_MEDIA)
        if explicit:
            dirs.append(("--models" if kind == "models" else "--media", explicit))
        if env:
            dirs.append((f"${ENV_MODELS if kind == 'models' else ENV_MEDIA}", Path(env)))
        dirs.append(("cache", self.cache_dir / kind))
        return dirs

    def locate(self, name: str) -> Path | None:
        """The first existing file for ``name`` in lookup order, unverified (None if none)."""
        e = self.entry(name)
        sub = e.get("subdir")
        for _, d in self.search_dirs(e.kind):
            for p in ((d / sub / e.file) if sub else None, d / e.file):
                if p is not None and p.is_file():
                    return p
        return None

    def path(self, name: str) -> Path:
        """The verified path of ``name``, downloading it into the cache if needed.

        Raises:
            ModelNotFoundError: not found anywhere and downloading is off or impossible.
            ModelCorruptError: found, but the size or sha256 is wrong.
            DownloadError: the download failed or produced a wrong file.
        """
        e = self.entry(name)
        p = self.locate(name)
        if p is None:
            if not self.allow_download or not (e.url or e.get("convert")):
                raise ModelNotFoundError(self._missing_message(e))
            p = self.fetch(name)
        self.verify_file(e, p)
        return p

    def verify_file(self, e: Entry, p: Path) -> None:
        st = p.stat()
        key = (str(p), st.st_size, st.st_mtime_ns)
        with self._lock:
            if self._verified.get(key) == e.sha256:
                return
        # A converted model (see convert.py) is a different file with the same values.
        conv = e.get("convert") or {}
        sizes = {e.size: e.sha256, int(conv.get("size", -1)): str(conv.get("sha256", "")).lower()}
        if st.st_size not in sizes:
            raise ModelCorruptError(self._corrupt_message(e, p, f"size {st.st_size} bytes, expected {e.size}"))
        digest = sha256_file(p)
        if digest != sizes[st.st_size]:
            raise ModelCorruptError(self._corrupt_message(e, p, f"sha256 {digest}"))
        with self._lock:
            self._verified[key] = e.sha256

    def status(self) -> Iterator[tuple[Entry, Path | None, str]]:
        """(entry, path or None, "ok" | "missing" | error text) for every entry."""
        for name, e in self.entries.items():
            p = self.locate(name)
            if p is None:
                yield e, None, "missing"
                continue
            try:
                self.verify_file(e, p)
                yield e, p, "ok"
            except ModelCorruptError as err:
                yield e, p, str(err)

    # -- download -----------------------------------------------------------------------
    def fetch(self, name: str, *, force: bool = False) -> Path:
        """Download ``name`` into the cache, verified; returns its path."""
        e = self.entry(name)
        dest_dir = self.cache_dir / e.kind
        dest = dest_dir / e.file
        if dest.is_file() and not force:
            self.verify_file(e, dest)
            return dest
        if not e.url and e.get("convert"):
            return self._fetch_converted(e, dest)
        if not e.url:
            raise ModelNotFoundError(self._missing_message(e))
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=e.file + ".", suffix=".part", dir=dest_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                self._download(e, out)
            digest = sha256_file(tmp)
            if digest != e.sha256:
                raise DownloadError(
                    f"downloaded {e.file} from {e.url} but its sha256 is {digest}, expected "
                    f"{e.sha256}; the file was not kept. Try again later, or place a good copy in a "
                    f"directory and {_dir_hint(e)}"
                )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("fetched %s into %s", e.file, dest)
        return dest

    def _fetch_converted(self, e: Entry, dest: Path) -> Path:
        """Download the original named in ``[models.NAME.convert]`` and convert it (convert.py)."""
        from obs_faceswap import convert

        spec = convert.ConvertSpec.from_table(e.name, e.get("convert"))
        try:
            convert.fetch_converted(spec, dest, self.cache_dir, progress=self.progress)
        except DownloadError as err:
            raise DownloadError(
                f"{err}. {e.file} ({e.name}) is made from {spec.member} in that archive; without network "
                f"access, copy {e.file} (sha256 {e.sha256}) into a directory and pass --models DIR or set "
                f"${ENV_MODELS}"
            ) from err
        self.verify_file(e, dest)
        return dest

    def _download(self, e: Entry, out: Any) -> None:
        try:
            download(e.url, out, expected_size=e.size, label=e.file, progress=self.progress)
        except DownloadError as err:
            flag, env = ("--models", ENV_MODELS) if e.kind == "models" else ("--media", ENV_MEDIA)
            raise DownloadError(
                f"{err}. Without network access, copy the "
                f"file {e.file} (sha256 {e.sha256}) into a directory and pass {flag} DIR or set ${env}"
            ) from err

    # -- messages -----------------------------------------------------------------------
    def _missing_message(self, e: Entry) -> str:
        looked = "; ".join(f"{label}: {d}" for label, d in self.search_dirs(e.kind))
        conv = e.get("convert")
        flag, env = ("--models", ENV_MODELS) if e.kind == "models" else ("--media", ENV_MEDIA)
        supply = f"copy the file into a directory and pass {flag} DIR (or set ${env})"
        how = (
            f"with network access run `obs-faceswap models fetch {e.name}` (downloads it from {e.url}); "
            f"without, {supply}"
            if e.url
            else f"with network access run `obs-faceswap models fetch {e.name}` (downloads {conv.get('member')} "
            f"from {conv.get('archive_url')} and converts it); without, {supply}"
            if conv
            else f"no public copy of this exact file exists yet ({e.get('source', 'see models/README.md')}); {supply}"
        )
        return (
            f"{e.kind[:-1] if e.kind == 'models' else 'media file'} {e.file} ({e.name}) not found "
            f"(looked in {looked}). Expected sha256 {e.sha256}, {e.size} bytes; {how}"
        )

    def _corrupt_message(self, e: Entry, p: Path, what: str) -> str:
        return (
            f"{p} is corrupt or a different file: {what}. Expected sha256 {e.sha256} "
            f"({e.size} bytes). Delete it and run `obs-faceswap models fetch {e.name}`"
            + (
                f" (from {e.url})"
                if e.url
                else " (downloads and converts it)"
                if e.get("convert")
                else ", or copy a good file over it"
            )
        )


def _dir_hint(e: Entry) -> str:
    """How to point the store at a directory holding ``e`` (models and media differ)."""
    if e.kind == "media":
        return f"pass --media DIR or set ${ENV_MEDIA}"
    return f"pass --models DIR or set ${ENV_MODELS}"


def copy_into(store: ModelStore, name: str, target_dir: Path) -> Path:
    """Copy a verified file into ``target_dir`` (used by packaging)."""
    src = store.path(name)
    target_dir.mkdir(parents=True, exist_ok=True)
    dst = target_dir / src.name
    shutil.copy2(src, dst)
    return dst
