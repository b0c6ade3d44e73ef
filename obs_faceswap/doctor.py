"""``obs-faceswap doctor``: one table of everything a working set-up needs, each with its fix.

Every check is a small function returning :class:`Check` rows; the functions take what they
inspect as arguments (directories, environment, a session factory) so that tests can point them
at broken set-ups: no OBS, a wrong Python, a missing or corrupt model, a provider that fails to
load, no camera, a small ``/dev/shm``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from obs_faceswap import install_obs
from obs_faceswap.errors import ConfigError

OK, WARN, FAIL = "ok", "WARN", "FAIL"
#: The engine's shared-memory ring at 1080p (8 slots of BGRA in and out, with headroom).
SHM_NEEDED_BYTES = 8 * 2 * 1920 * 1080 * 4 + (16 << 20)
ENGINE_PACKAGES = ("obs_faceswap", "numpy", "cv2", "onnxruntime")


@dataclass(frozen=True)
class Check:
    """One row of the table: what was checked, the verdict, what was found and how to fix it."""

    name: str
    status: str
    detail: str
    fix: str = ""


# -- OBS ---------------------------------------------------------------------------------------
def check_obs(
    environ: Mapping[str, str] | None = None, home: Path | None = None, platform: str | None = None
) -> list[Check]:
    """OBS found, its version (28–32 supported) and its configuration directory."""
    out: list[Check] = []
    exe = install_obs.find_executable(environ, platform)
    if exe is None:
        out.append(
            Check(
                "OBS Studio",
                FAIL,
                "not found (PATH, Flatpak, standard install folders)",
                "install OBS Studio 28 or later from https://obsproject.com (Linux: your distribution's "
                "obs-studio package or Flatpak com.obsproject.Studio)",
            )
        )
    else:
        kind, path = exe
        version = install_obs.obs_version(kind, path)
        major = int(version.split(".")[0]) if version else 0
        status = OK if 28 <= major <= 32 else WARN
        fix = "" if status == OK else "obs-faceswap is tested with OBS 28–32; update OBS"
        out.append(Check("OBS Studio", status, f"{version or 'unknown version'} ({kind}, {path})", fix))
    try:
        loc = install_obs.locate(home=home, environ=environ, platform=platform)
        detail = f"{loc.config_dir} (settings in {loc.settings_file.name})"
        try:
            coll = install_obs.collection_file(loc)
            text = coll.read_text(encoding="utf-8-sig", errors="replace")
            added = "obs_faceswap_filter.py" in text
            out.append(Check("OBS configuration", OK, f"{detail}; scene collection {coll.stem!r}"))
            out.append(
                Check(
                    "Face Swap script in OBS",
                    OK if added else WARN,
                    "added to Tools → Scripts" if added else "not added yet",
                    "" if added else "run `obs-faceswap install-obs` (with OBS closed)",
                )
            )
        except ConfigError as e:
            out.append(Check("OBS configuration", WARN, f"{detail}; {e}", "start OBS once and close it"))
    except ConfigError as e:
        out.append(
            Check(
                "OBS configuration",
                WARN if exe else FAIL,
                str(e).split(":")[0],
                "start OBS once and close it, then run `obs-faceswap install-obs`",
            )
        )
    return out


def check_obs_python(
    platform: str | None = None,
    scripting_dirs: Sequence[Path] | None = None,
    settings_file: Path | None = None,
    obs_kind: str | None = None,
) -> Check:
    """OBS's own Python (only the standard library is needed in it; any Python 3.8+)."""
    platform = sys.platform if platform is None else platform
    if obs_kind == "flatpak":
        return Check("OBS's Python", OK, "Flatpak OBS brings its own Python (standard library is all the script needs)")
    if platform.startswith("linux"):
        dirs = (
            scripting_dirs
            if scripting_dirs is not None
            else [
                Path("/usr/lib/x86_64-linux-gnu/obs-scripting"),
                Path("/usr/lib/aarch64-linux-gnu/obs-scripting"),
                Path("/usr/lib/obs-scripting"),
                Path("/usr/lib64/obs-scripting"),
                Path("/usr/local/lib/obs-scripting"),
            ]
        )
        for d in dirs:
            mod = d / "_obspython.so"
            if mod.is_file():
                return _linked_python(mod)
        return Check(
            "OBS's Python",
            FAIL,
            "OBS's Python scripting module (_obspython.so) not found",
            "install OBS with Python scripting (Debian/Ubuntu: obs-studio; Flatpak includes it)",
        )
    # Windows and macOS: OBS → Tools → Scripts → Python Settings, stored as [Python] Path64bit.
    py_dir = ""
    if settings_file is not None and settings_file.is_file():
        cp = install_obs._read_ini(settings_file)
        py_dir = cp.get("Python", "Path64bit", fallback="")
    if not py_dir:
        return Check(
            "OBS's Python",
            FAIL,
            "no Python set in OBS",
            "install Python 3.11 or 3.12 from python.org, then OBS → Tools → Scripts → Python Settings → "
            "choose its folder",
        )
    names = [p.name for p in Path(py_dir).glob("python3*.dll")] + [p.name for p in Path(py_dir).rglob("libpython3*")]
    versions = sorted({m.group(1) for n in names if (m := re.search(r"python3\.?(\d+)", n))})
    if not versions:
        return Check(
            "OBS's Python",
            FAIL,
            f"{py_dir} holds no Python 3 library",
            "point OBS → Tools → Scripts → Python Settings at a Python 3.8+ install folder",
        )
    ok = any(int(v) >= 8 for v in versions)
    return Check(
        "OBS's Python",
        OK if ok else FAIL,
        f"{py_dir}: Python 3.{versions[-1]}",
        "" if ok else "OBS's Python must be 3.8 or later: install a newer one and choose it in OBS",
    )


def _linked_python(module: Path) -> Check:
    ldd = shutil.which("ldd")
    if not ldd:
        return Check("OBS's Python", OK, f"{module} (ldd missing: its Python was not checked)")
    r = subprocess.run([ldd, str(module)], capture_output=True, text=True, timeout=20)
    for line in r.stdout.splitlines():
        if "libpython" in line:
            lib = line.split("=>")[0].strip()
            if "not found" in line:
                return Check(
                    "OBS's Python",
                    FAIL,
                    f"{module.name} needs {lib}, which is missing",
                    f"install the Python that provides {lib} (Debian/Ubuntu: libpython3.X package)",
                )
            return Check("OBS's Python", OK, f"{lib} (OBS's scripts need only its standard library)")
    return Check("OBS's Python", WARN, f"{module} links no libpython", "reinstall OBS")


# -- engine ------------------------------------------------------------------------------------
_PROBE = (
    "import importlib, sys\n"
    "for n in sys.argv[1:]:\n"
    "    try:\n"
    "        m = importlib.import_module(n); print(n, getattr(m, '__version__', 'ok'))\n"
    "    except Exception as e:\n"
    "        print(n, 'MISSING', type(e).__name__, str(e).splitlines()[0] if str(e) else '')\n"
)


def check_engine(python: str | None = None, origin: str = "") -> list[Check]:
    """The interpreter that runs the engine (as the filter resolves it) and its packages."""
    if python is None:
        from obs_faceswap.obs.settings import resolve_interpreter

        python, origin = resolve_interpreter("")
    if python is None:
        return [
            Check(
                "engine Python",
                FAIL,
                origin,
                "run `obs-faceswap install-obs` from the environment where obs-faceswap is installed",
            )
        ]
    try:
        # cwd elsewhere: `python -c` imports from its working directory, which may be a checkout.
        r = subprocess.run(
            [python, "-c", _PROBE, *ENGINE_PACKAGES],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tempfile.gettempdir(),
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return [Check("engine Python", FAIL, f"{python} cannot run: {e}", "point it at a working Python 3.10–3.12")]
    v = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True, timeout=60
    ).stdout.strip()
    rows = [
        Check(
            "engine Python",
            OK if v in ("3.10", "3.11", "3.12") else FAIL,
            f"{python} (Python {v}; {origin})",
            "" if v in ("3.10", "3.11", "3.12") else "use Python 3.10–3.12 for the engine",
        )
    ]
    missing = [line.split(" ", 2) for line in r.stdout.splitlines() if " MISSING" in line]
    found = [line for line in r.stdout.splitlines() if " MISSING" not in line]
    if missing or r.returncode != 0:
        what = ", ".join(m[0] for m in missing) or r.stderr.strip()[-200:]
        rows.append(
            Check(
                "engine packages",
                FAIL,
                f"missing in {python}: {what}",
                f"{python} -m pip install 'obs-faceswap[cpu]' (or [cuda] / [directml])",
            )
        )
    else:
        rows.append(Check("engine packages", OK, "; ".join(found)))
    return rows


# -- providers ---------------------------------------------------------------------------------
SessionFactory = Callable[[bytes, str], Sequence[str]]


def tiny_model() -> bytes:
    """A one-node ONNX graph (y = x + x) to open a session on each provider."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "doctor", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    data: bytes = model.SerializeToString()
    return data


def _real_session(model: bytes, provider: str) -> Sequence[str]:
    import numpy as np
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls") and provider == "CUDAExecutionProvider":
        with contextlib.suppress(Exception):  # the session below reports the real cause
            ort.preload_dlls()
    so = ort.SessionOptions()
    so.log_severity_level = 4
    s = ort.InferenceSession(model, sess_options=so, providers=[provider])
    s.run(None, {"x": np.ones((1, 4), np.float32)})
    used: list[str] = s.get_providers()
    return used


_LIB = re.compile(
    r"((?:lib)?(?:cudnn|cublas|cublasLt|cudart|cufft|curand|nvinfer|nvrtc|onnxruntime_providers_\w+|"
    r"DirectML|d3d12)[\w.\-]*\.(?:so[\d.]*|dll|dylib))",
    re.IGNORECASE,
)


def missing_library(text: str) -> str | None:
    """The library an onnxruntime provider could not load, from its error text.

    onnxruntime says e.g. "Failed to load library libonnxruntime_providers_cuda.so with error:
    libcudnn.so.9: cannot open shared object file": the missing one is the last name before
    "cannot open" (the provider library itself is found; what it needs is not).
    """
    cut = text.find("cannot open")
    names = _LIB.findall(text[:cut] if cut >= 0 else text)
    return names[-1] if names else None


def check_providers(providers: Iterable[str] | None = None, make_session: SessionFactory | None = None) -> list[Check]:
    """Open a tiny session on every provider onnxruntime lists; name the missing library when one fails."""
    try:
        import onnxruntime as ort
    except ImportError:
        return [Check("onnxruntime", FAIL, "not installed here", "pip install 'obs-faceswap[cpu]' (or [cuda])")]
    listed = list(providers) if providers is not None else list(ort.get_available_providers())
    make = make_session or _real_session
    model = tiny_model()
    rows = []
    for p in listed:
        if p in ("AzureExecutionProvider",):
            continue
        try:
            used = make(model, p)
        except Exception as e:  # noqa: BLE001 - every failure is a row, never a crash
            text = str(e) or type(e).__name__
            lib = missing_library(text)
            detail = f"fails to load: {lib} is missing" if lib else f"fails: {text.splitlines()[0][:160]}"
            fix = (
                (
                    "install the matching CUDA 12 / cuDNN 9 wheels: pip install 'obs-faceswap[cuda]' "
                    "(or add the CUDA/cuDNN folders to the library path)"
                )
                if "CUDA" in p or "Tensorrt" in p
                else ("update the GPU driver, or use --provider cpu")
            )
            rows.append(Check(f"provider {p}", FAIL, detail, fix))
            continue
        if used and used[0] != p:
            rows.append(
                Check(
                    f"provider {p}",
                    FAIL,
                    f"listed, but the session fell back to {used[0]}",
                    "see onnxruntime's log (obs-faceswap -vv) for the library it could not load",
                )
            )
        else:
            rows.append(Check(f"provider {p}", OK, "runs a session"))
    return rows


# -- models, cameras, shared memory ------------------------------------------------------------
def check_models(store: object | None = None) -> list[Check]:
    """Every default model present and verified (sha256)."""
    from obs_faceswap.models import ModelStore

    st = store if isinstance(store, ModelStore) else ModelStore(allow_download=False, progress=False)
    rows = []
    for e, path, state in st.status():
        if not e.get("default"):
            continue
        if state == "ok":
            rows.append(Check(f"model {e.name}", OK, str(path)))
        elif state == "missing":
            rows.append(
                Check(
                    f"model {e.name}",
                    FAIL,
                    f"{e.file} missing",
                    f"obs-faceswap models fetch {e.name} (or --models DIR / $OBS_FACESWAP_MODELS)",
                )
            )
        else:
            rows.append(
                Check(
                    f"model {e.name}",
                    FAIL,
                    f"{path} is corrupt (wrong sha256)",
                    f"delete it, then obs-faceswap models fetch {e.name}",
                )
            )
    return rows


def check_cameras(
    dev: Path = Path("/dev"), sys_class: Path = Path("/sys/class/video4linux"), platform: str | None = None
) -> Check:
    """Cameras the engine and OBS can open (Linux: /dev/video*; elsewhere: OpenCV indices 0–3)."""
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux"):
        nodes = sorted(dev.glob("video*"))
        if not nodes:
            return Check(
                "cameras",
                WARN,
                f"no camera ({dev}/video* absent)",
                "plug in a camera (and add your user to the 'video' group); files and other OBS sources still work",
            )
        names = []
        for n in nodes:
            name_file = sys_class / n.name / "name"
            name = name_file.read_text(errors="replace").strip() if name_file.is_file() else "?"
            names.append(f"{n.name} ({name}{'' if os.access(n, os.R_OK) else ', NOT readable'})")
        unreadable = any(not os.access(n, os.R_OK) for n in nodes)
        return Check(
            "cameras",
            WARN if unreadable else OK,
            ", ".join(names),
            "sudo usermod -aG video $USER, then log in again" if unreadable else "",
        )
    import cv2

    found = []
    for i in range(4):
        cap = cv2.VideoCapture(i)
        if cap.isOpened():
            found.append(f"webcam:{i}")
        cap.release()
    if not found:
        return Check(
            "cameras", WARN, "no camera opens", "connect a camera, and allow camera access for the terminal/OBS"
        )
    return Check("cameras", OK, ", ".join(found))


def check_shared_memory(
    path: Path = Path("/dev/shm"), needed: int = SHM_NEEDED_BYTES, platform: str | None = None
) -> Check:
    """Room for the engine's shared-memory frame ring (Docker's default 64 MB /dev/shm is too small)."""
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return Check("shared memory", OK, "provided by the OS (no size limit to check)")
    if not path.is_dir():
        return Check("shared memory", FAIL, f"{path} does not exist", "mount a tmpfs on /dev/shm")
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    mb = 1 << 20
    if free < needed:
        return Check(
            "shared memory",
            FAIL,
            f"{path}: {free // mb} MB free, the engine needs {needed // mb} MB at 1080p",
            "enlarge it: sudo mount -o remount,size=1G /dev/shm (Docker: --shm-size=1g)",
        )
    return Check("shared memory", OK, f"{path}: {free // mb} MB free (needs {needed // mb} MB at 1080p)")


# -- the table ---------------------------------------------------------------------------------
def run_all(store: object | None = None) -> list[Check]:
    """Every check, in the order of the table."""
    rows = check_obs()
    loc_settings = None
    with contextlib.suppress(ConfigError):
        loc_settings = install_obs.locate().settings_file
    exe = install_obs.find_executable()
    rows.append(check_obs_python(settings_file=loc_settings, obs_kind=exe[0] if exe else None))
    rows += check_engine()
    rows += check_providers()
    rows += check_models(store)
    rows.append(check_cameras())
    rows.append(check_shared_memory())
    return rows


def format_table(rows: Sequence[Check]) -> str:
    """Plain-text table: check, status, what was found; the fix on its own line under failures."""
    w = max(len(r.name) for r in rows)
    lines = []
    for r in rows:
        lines.append(f"{r.name.ljust(w)}  {r.status.ljust(4)}  {r.detail}")
        if r.fix and r.status != OK:
            lines.append(f"{''.ljust(w)}        fix: {r.fix}")
    return "\n".join(lines)
