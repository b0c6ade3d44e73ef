#!/usr/bin/env python3
"""Build the release bundle for one platform.

    python packaging/build_release.py --platform linux|windows|macos [--out dist] [--cache DIR]

Writes ``OUT/obs-faceswap-VERSION-PLATFORM/`` and a ``.zip`` of it holding:

* the wheel (``pip wheel --no-deps`` of this checkout; the OBS script is inside it),
* the platform's installer (``install.sh`` or ``install.ps1``) and ``INSTALL.md`` (its notes),
* ``models/``: the converted MediaPipe models (``packaging/convert_models.py``), which are also
  the release assets the manifest can point at,
* ``SHA256SUMS`` of everything above.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))

from convert_models import convert_all  # noqa: E402

PLATFORMS = {
    "linux": ("install.sh", "cpu or cuda (chosen by install.sh: cuda when nvidia-smi sees a GPU)"),
    "macos": ("install.sh", "cpu (onnxruntime's CoreML provider is included)"),
    "windows": ("install.ps1", "cuda on NVIDIA, directml on AMD/Intel, else cpu"),
}

NOTES = {
    "linux": """\
## Linux

1. Install OBS Studio 28 or later (distribution package or Flatpak `com.obsproject.Studio`),
   start it once and close it.
2. `./install.sh` (Python 3.10–3.12 needed; `--cpu` / `--cuda` to choose). It creates the engine's
   environment, installs the wheel, fetches the models, runs `obs-faceswap install-obs` (adds the
   script to OBS's current scene collection) and `obs-faceswap doctor`.
3. Flatpak OBS: allow it to read the engine's folder, as install-obs prints
   (`flatpak override --user --filesystem=... com.obsproject.Studio`).
4. Virtual camera: `sudo apt install v4l2loopback-dkms` (OBS → Start Virtual Camera needs it).
""",
    "macos": """\
## macOS

1. Install OBS Studio 28 or later and Python 3.11 or 3.12 from python.org.
2. In OBS: Tools → Scripts → Python Settings → choose the Python framework folder
   (`/Library/Frameworks/Python.framework/Versions/3.11`). Start and close OBS once.
3. `./install.sh` — as on Linux. Allow camera access for OBS in System Settings → Privacy.
""",
    "windows": """\
## Windows

1. Install OBS Studio 28 or later and Python 3.11 or 3.12 (python.org, "Add to PATH").
2. In OBS: Tools → Scripts → Python Settings → choose the Python folder
   (`%LOCALAPPDATA%\\Programs\\Python\\Python311`). Start and close OBS once.
3. PowerShell: `./install.ps1` (`-Cpu`, `-Cuda` or `-DirectML` to choose). NVIDIA: CUDA 12 and
   cuDNN 9 come as pip wheels with `[cuda]`, no system CUDA needed.
""",
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(1 << 20):
            h.update(b)
    return h.hexdigest()


def build(platform: str, out: Path, cache: Path | None, *, wheel: Path | None = None) -> Path:
    """Build the bundle directory and its zip; returns the zip's path."""
    import obs_faceswap
    from obs_faceswap.models import default_cache_dir

    installer, engine = PLATFORMS[platform]
    name = f"obs-faceswap-{obs_faceswap.__version__}-{platform}"
    bundle = out / name
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir(parents=True)
    if wheel is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(bundle), str(ROOT)], check=True
        )
    else:
        shutil.copy2(wheel, bundle)
    shutil.copy2(ROOT / "packaging" / installer, bundle)
    convert_all(bundle / "models", cache or default_cache_dir(), progress=False)
    (bundle / "INSTALL.md").write_text(
        f"# obs-faceswap {obs_faceswap.__version__} for {platform}\n\nEngine build: {engine}.\n\n"
        + NOTES[platform]
        + "\nAfterwards: `obs-faceswap doctor` lists what works and how to fix what does not; "
        "`obs-faceswap uninstall-obs` removes the script from OBS again.\n"
        "`models/` holds the converted MediaPipe models (reproduce them with packaging/convert_models.py).\n",
        encoding="utf-8",
    )
    files = sorted(p for p in bundle.rglob("*") if p.is_file())
    (bundle / "SHA256SUMS").write_text(
        "".join(f"{sha256(p)}  {p.relative_to(bundle).as_posix()}\n" for p in files), encoding="utf-8"
    )
    archive = out / f"{name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(bundle.rglob("*")):
            if p.is_file():
                z.write(p, f"{name}/{p.relative_to(bundle).as_posix()}")
    return archive


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--platform", choices=sorted(PLATFORMS), required=True)
    p.add_argument("--out", type=Path, default=ROOT / "dist")
    p.add_argument("--cache", type=Path, default=None, help="where downloaded archives are kept")
    p.add_argument("--wheel", type=Path, default=None, help="use this wheel instead of building one")
    args = p.parse_args(argv)
    archive = build(args.platform, args.out, args.cache, wheel=args.wheel)
    print(f"{sha256(archive)}  {archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
