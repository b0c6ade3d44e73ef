"""The model store: lookup order, verification, downloads and the messages users see."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from obs_faceswap.errors import DownloadError, ModelCorruptError, ModelNotFoundError
from obs_faceswap.models import Entry, ModelStore, load_manifest, sha256_file

NAME = "yunet"


@pytest.fixture()
def manifest():
    return load_manifest()


@pytest.fixture()
def good_file(models_dir) -> Path:
    return models_dir / load_manifest()[NAME].file


def copy_to(src: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(src, directory / src.name))


def test_manifest_declares_every_shared_file_with_the_right_digest(models_dir, media_dir, tmp_path):
    store = ModelStore(models_dir, media_dir=media_dir, cache_dir=tmp_path, allow_download=False)
    states = {e.name: state for e, _, state in store.status()}
    # on-demand entries (face-swap weights users fetch themselves) cannot be present here
    on_demand = {n for n, e in store.entries.items() if e.get("on_demand")}
    assert states and all(state == "ok" for n, state in states.items() if n not in on_demand), states
    assert all(states[n] in ("ok", "missing") for n in on_demand), states
    for e in store.entries.values():
        assert len(e.sha256) == 64 and e.size > 0 and e.license and e.role, e.name
        if e.kind == "models" and e.role in ("detector", "landmarks", "recognition", "segmentation"):
            for key in ("input", "layout", "color", "mean", "std"):
                assert e.get(key) is not None, f"{e.name} lacks {key}"


def test_lookup_order_is_explicit_dir_then_environment_then_cache(good_file, tmp_path, monkeypatch):
    explicit, env, cache = tmp_path / "explicit", tmp_path / "env", tmp_path / "cache"
    for d in (env, cache / "models"):
        copy_to(good_file, d)
    monkeypatch.setenv("OBS_FACESWAP_MODELS", str(env))
    store = ModelStore(explicit, cache_dir=cache, allow_download=False)
    assert store.path(NAME).parent == env  # explicit dir has no copy
    copy_to(good_file, explicit)
    assert store.path(NAME).parent == explicit
    monkeypatch.delenv("OBS_FACESWAP_MODELS")
    assert ModelStore(cache_dir=cache, allow_download=False).path(NAME).parent == cache / "models"


def test_a_corrupt_file_is_refused_with_file_digest_and_remedy(good_file, tmp_path, monkeypatch, manifest):
    monkeypatch.delenv("OBS_FACESWAP_MODELS", raising=False)
    bad = copy_to(good_file, tmp_path / "bad")
    data = bad.read_bytes()
    bad.write_bytes(data[:1000] + bytes(len(data) - 1000))  # same size, wrong content
    store = ModelStore(tmp_path / "bad", cache_dir=tmp_path / "cache", allow_download=False)
    with pytest.raises(ModelCorruptError) as e:
        store.path(NAME)
    msg = str(e.value)
    assert str(bad) in msg and manifest[NAME].sha256 in msg and "models fetch yunet" in msg
    bad.write_bytes(data[:100])  # truncated: caught by the size, before hashing
    with pytest.raises(ModelCorruptError, match="size 100 bytes"):
        ModelStore(tmp_path / "bad", cache_dir=tmp_path / "cache", allow_download=False).path(NAME)


def test_a_missing_file_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch, manifest):
    monkeypatch.delenv("OBS_FACESWAP_MODELS", raising=False)
    monkeypatch.delenv("OBS_FACESWAP_MEDIA", raising=False)
    store = ModelStore(tmp_path / "none", cache_dir=tmp_path / "cache", allow_download=False)
    with pytest.raises(ModelNotFoundError) as e:
        store.path(NAME)
    msg = str(e.value)
    assert manifest[NAME].file in msg and manifest[NAME].sha256 in msg and str(tmp_path / "none") in msg
    assert "obs-faceswap models fetch yunet" in msg and "pass --models DIR" in msg
    with pytest.raises(ModelNotFoundError, match="no public copy") as e:
        store.path("mesh478")  # no public download exists
    assert "pass --models DIR" in str(e.value)
    with pytest.raises(ModelNotFoundError, match="converts it") as e:
        store.path("mesh468")  # made from MediaPipe's .tflite in the mediapipe wheel
    assert "face_landmark.tflite" in str(e.value) and "files.pythonhosted.org" in str(e.value)
    with pytest.raises(ModelNotFoundError, match="pass --media DIR"):
        store.path("astronaut")


@pytest.fixture()
def http_dir(tmp_path):
    """A local HTTP server (the store's downloads go through real sockets)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def entry_at(e: Entry, url: str) -> Entry:
    return Entry(e.name, e.kind, e.file, e.sha256, e.size, url, e.meta)


def test_fetch_downloads_verifies_and_keeps_the_file(http_dir, good_file, tmp_path, manifest, monkeypatch):
    monkeypatch.delenv("OBS_FACESWAP_MODELS", raising=False)
    root, base = http_dir
    copy_to(good_file, root)
    entries = {NAME: entry_at(manifest[NAME], f"{base}/{good_file.name}")}
    store = ModelStore(cache_dir=tmp_path / "cache", manifest=entries, progress=False)
    path = store.path(NAME)  # missing → downloaded on first use
    assert path == tmp_path / "cache" / "models" / good_file.name
    assert sha256_file(path) == manifest[NAME].sha256
    assert not list(path.parent.glob("*.part"))


def test_a_download_with_the_wrong_content_is_not_kept(http_dir, good_file, tmp_path, manifest):
    root, base = http_dir
    (root / good_file.name).write_bytes(b"<html>not a model</html>")
    entries = {NAME: entry_at(manifest[NAME], f"{base}/{good_file.name}")}
    store = ModelStore(cache_dir=tmp_path / "cache", manifest=entries, progress=False)
    with pytest.raises(DownloadError, match="sha256"):
        store.fetch(NAME)
    assert not any((tmp_path / "cache" / "models").iterdir())
    entries = {NAME: entry_at(manifest[NAME], f"{base}/nothing-here.onnx")}
    with pytest.raises(DownloadError, match="--models DIR"):
        ModelStore(cache_dir=tmp_path / "cache2", manifest=entries, progress=False).fetch(NAME)


def test_face_swap_models_have_a_pinned_public_download(manifest):
    from obs_faceswap.swap.specs import SPECS

    for name in ("inswapper_128", "inswapper_128_fp16", "hyperswap_1a_256", "w600k_r50", "gfpgan_1_4"):
        e = manifest[name]
        assert e.url.startswith("https://") and len(e.sha256) == 64 and e.size > 1_000_000 and e.get("on_demand")
        if e.role == "swapper":
            assert e.get("family") in SPECS


def test_fetch_inswapper_uses_its_url_and_digest(tmp_path, manifest, monkeypatch):
    store = ModelStore(cache_dir=tmp_path, manifest={"inswapper_128": manifest["inswapper_128"]}, progress=False)
    asked = []

    def fake_download(e, out):
        asked.append(e.url)
        out.write(b"not the model")

    monkeypatch.setattr(store, "_download", fake_download)
    with pytest.raises(Exception, match="e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af"):
        store.fetch("inswapper_128")
    assert asked == ["https://huggingface.co/hacksider/deep-live-cam/resolve/main/inswapper_128.onnx"]


def test_restrictive_licence_is_shown_once(tmp_path, caplog):
    import logging

    from obs_faceswap.licences import show_once

    with caplog.at_level(logging.WARNING, logger="obs_faceswap.licences"):
        assert show_once("inswapper_128", "InsightFace: non-commercial research only", state_dir=tmp_path)
        assert not show_once("inswapper_128", "InsightFace: non-commercial research only", state_dir=tmp_path)
        assert not show_once("gfpgan_1_4", "Apache-2.0", state_dir=tmp_path)
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 1 and "non-commercial" in notes[0] and "inswapper_128" in notes[0]
