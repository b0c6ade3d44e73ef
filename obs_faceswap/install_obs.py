"""Find OBS Studio and its configuration; add the Face Swap script to it, and take it away again.

``obs-faceswap install-obs``:

1. finds OBS's configuration directory (Linux native and Flatpak, Windows, macOS) and the
   current scene collection (``[Basic] SceneCollectionFile`` of ``user.ini`` — OBS 31 and later
   moved the user's settings there — or ``global.ini`` for OBS 28–30);
2. adds ``obs_faceswap_filter.py`` to that collection's ``modules.scripts-tool`` list, which is
   what OBS → Tools → Scripts reads (a byte-for-byte backup of the file is kept beside it);
3. records the interpreter that runs the engine in ``obs_faceswap/obs/engine_python.txt``
   (what the filter reads, see ``obs/settings.py``).

``obs-faceswap uninstall-obs`` restores the backup when OBS has not changed the file since
(so the configuration is byte-for-byte what it was), otherwise removes just the script's entry,
and deletes ``engine_python.txt`` if install-obs wrote it.

OBS rewrites the scene collection when it exits: close OBS before either command.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from obs_faceswap.errors import ConfigError

FLATPAK_ID = "com.obsproject.Studio"
BACKUP_SUFFIX = ".obs-faceswap-backup"
#: Marker file next to engine_python.txt: install-obs wrote it (so uninstall may delete it).
ENGINE_FILE = Path(__file__).resolve().parent / "obs" / "engine_python.txt"
SCRIPT_FILE = Path(__file__).resolve().parent / "obs" / "obs_faceswap_filter.py"


@dataclass(frozen=True)
class ObsLocation:
    """Where one OBS installation keeps its configuration.

    Attributes:
        kind: ``linux``, ``flatpak``, ``windows`` or ``macos``.
        config_dir: the ``obs-studio`` directory (``global.ini``, ``basic/scenes/``, ...).
        executable: the OBS program when found (None: not found, or the Flatpak).
    """

    kind: str
    config_dir: Path
    executable: Path | None = None

    @property
    def settings_file(self) -> Path:
        """``user.ini`` where OBS 31+ keeps the user's settings, else ``global.ini``."""
        user = self.config_dir / "user.ini"
        return user if user.is_file() else self.config_dir / "global.ini"


def config_dirs(
    home: Path | None = None, environ: Mapping[str, str] | None = None, platform: str | None = None
) -> list[tuple[str, Path]]:
    """Candidate OBS configuration directories, most likely first (existing or not)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home()) if home is None else home
    platform = sys.platform if platform is None else platform
    if platform == "win32":
        appdata = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
        return [("windows", appdata / "obs-studio")]
    if platform == "darwin":
        return [("macos", home / "Library" / "Application Support" / "obs-studio")]
    xdg = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return [("linux", xdg / "obs-studio"), ("flatpak", home / ".var" / "app" / FLATPAK_ID / "config" / "obs-studio")]


def find_executable(environ: Mapping[str, str] | None = None, platform: str | None = None) -> tuple[str, Path] | None:
    """(kind, path) of the OBS program, or None."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    path = env.get("PATH", "")
    if platform == "win32":
        for base in (env.get("ProgramFiles", r"C:\Program Files"), env.get("ProgramFiles(x86)", "")):
            exe = Path(base) / "obs-studio" / "bin" / "64bit" / "obs64.exe"
            if base and exe.is_file():
                return "windows", exe
        found = shutil.which("obs64", path=path)
        return ("windows", Path(found)) if found else None
    if platform == "darwin":
        exe = Path("/Applications/OBS.app/Contents/MacOS/OBS")
        return ("macos", exe) if exe.is_file() else None
    found = shutil.which("obs", path=path)
    if found:
        return "linux", Path(found)
    flatpak = shutil.which("flatpak", path=path)
    if flatpak:
        r = subprocess.run([flatpak, "info", FLATPAK_ID], capture_output=True, text=True, timeout=20)
        if r.returncode == 0:
            return "flatpak", Path(flatpak)
    return None


def obs_version(kind: str, executable: Path) -> str | None:
    """OBS's version string (``29.0.2``), from ``obs --version``; None if it cannot tell."""
    cmd = [str(executable), "run", FLATPAK_ID, "--version"] if kind == "flatpak" else [str(executable), "--version"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", r.stdout + r.stderr)
    return m.group(0) if m else None


def locate(
    config_dir: Path | None = None,
    *,
    home: Path | None = None,
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
) -> ObsLocation:
    """The OBS configuration to change: ``config_dir`` if given, else the first candidate that exists.

    Raises:
        ConfigError: no OBS configuration exists (OBS not installed, or never started).
    """
    exe = find_executable(environ, platform)
    if config_dir is not None:
        if not config_dir.is_dir():
            raise ConfigError(f"--obs-config {config_dir} is not a directory")
        return ObsLocation("custom", config_dir, exe[1] if exe else None)
    candidates = config_dirs(home, environ, platform)
    for kind, d in candidates:
        if d.is_dir():
            return ObsLocation(kind, d, exe[1] if exe else None)
    looked = ", ".join(str(d) for _, d in candidates)
    what = "OBS Studio was found but" if exe else "OBS Studio was not found and"
    raise ConfigError(
        f"{what} it has no configuration yet (looked in {looked}): install OBS "
        "(https://obsproject.com), start it once and close it, then run `obs-faceswap install-obs` "
        "again, or pass --obs-config DIR"
    )


def _read_ini(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.optionxform = str  # type: ignore[assignment,method-assign]  # OBS's keys are case-sensitive
    if path.is_file():
        cp.read_string(path.read_text(encoding="utf-8-sig", errors="replace"))
    return cp


def collection_file(loc: ObsLocation) -> Path:
    """The current scene collection's JSON file.

    Raises:
        ConfigError: OBS has no scene collection yet.
    """
    ini = _read_ini(loc.settings_file)
    stem = ini.get("Basic", "SceneCollectionFile", fallback="")
    scenes = loc.config_dir / "basic" / "scenes"
    path = scenes / f"{stem}.json" if stem else None
    if path is None or not path.is_file():
        jsons = sorted(p for p in scenes.glob("*.json")) if scenes.is_dir() else []
        if len(jsons) == 1:
            return jsons[0]
        raise ConfigError(
            f"no current scene collection in {loc.settings_file} ({scenes}/{stem or '?'}.json): "
            "start OBS once and close it, then run this again"
        )
    return path


@dataclass
class Report:
    """What a command did, line by line (printed for the user)."""

    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _same_script(entry: object, script: Path) -> bool:
    return (
        isinstance(entry, dict)
        and Path(str(entry.get("path", ""))).name == script.name
        and ("obs_faceswap" in str(entry.get("path", "")))
    )


def install(loc: ObsLocation, python: Path, *, script: Path = SCRIPT_FILE, engine_file: Path = ENGINE_FILE) -> Report:
    """Add the script to the current scene collection and record the engine interpreter.

    Raises:
        ConfigError: the collection cannot be read, or OBS's configuration is missing.
    """
    rep = Report()
    coll = collection_file(loc)
    original = coll.read_bytes()
    try:
        data = json.loads(original.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{coll} is not valid JSON ({e}); open and save the collection in OBS first") from e
    modules = data.setdefault("modules", {})
    scripts = modules.setdefault("scripts-tool", [])
    if not isinstance(scripts, list):
        raise ConfigError(f"{coll}: modules.scripts-tool is not a list; remove the script in OBS → Tools → Scripts")
    if any(_same_script(e, script) and Path(e["path"]) == script for e in scripts):
        rep.add(f"already in OBS's scripts ({coll}): {script}")
    else:
        scripts[:] = [e for e in scripts if not _same_script(e, script)]  # an older copy's path
        scripts.append({"path": str(script), "settings": {}})
        backup = coll.with_name(coll.name + BACKUP_SUFFIX)
        if not backup.exists():
            backup.write_bytes(original)
        new = json.dumps(data, indent=4, ensure_ascii=False).encode("utf-8")
        coll.write_bytes(new)
        (backup.with_name(backup.name + ".sha256")).write_text(_sha(new) + "\n", encoding="ascii")
        rep.add(f"added {script} to OBS → Tools → Scripts of scene collection {coll.stem!r} ({coll})")
        rep.add(f"kept the previous file as {backup} (uninstall-obs restores it)")
    previous = engine_file.read_text(encoding="utf-8").strip() if engine_file.is_file() else None
    engine_file.write_text(str(python) + "\n", encoding="utf-8")
    marker = engine_file.with_name(engine_file.name + ".installed")
    if not marker.exists():
        marker.write_text("" if previous is None else previous + "\n", encoding="utf-8")
    rep.add(f"the engine runs with {python} (recorded in {engine_file})")
    if loc.kind == "flatpak":
        rep.add(
            f"Flatpak OBS: let it see this Python and package: flatpak override --user "
            f"--filesystem={Path(sys.prefix)} --filesystem={script.parent.parent.parent} {FLATPAK_ID}"
        )
    rep.add("start OBS, right-click a source → Filters → + → Face Swap")
    return rep


def uninstall(loc: ObsLocation, *, script: Path = SCRIPT_FILE, engine_file: Path = ENGINE_FILE) -> Report:
    """Undo :func:`install`: restore the backup byte for byte when OBS has not changed the file since."""
    rep = Report()
    coll = collection_file(loc)
    backup = coll.with_name(coll.name + BACKUP_SUFFIX)
    digest = backup.with_name(backup.name + ".sha256")
    current = coll.read_bytes()
    if backup.is_file() and digest.is_file() and digest.read_text(encoding="ascii").strip() == _sha(current):
        coll.write_bytes(backup.read_bytes())
        rep.add(f"restored {coll} exactly as it was before install-obs")
    else:
        data = json.loads(current.decode("utf-8-sig"))
        scripts = data.get("modules", {}).get("scripts-tool", [])
        kept = [e for e in scripts if not _same_script(e, script)]
        if len(kept) != len(scripts):
            data["modules"]["scripts-tool"] = kept
            coll.write_bytes(json.dumps(data, indent=4, ensure_ascii=False).encode("utf-8"))
            rep.add(
                f"removed the Face Swap script from {coll} (OBS changed the file since install-obs, "
                "so the rest is kept as OBS left it)"
            )
        else:
            rep.add(f"the Face Swap script was not in {coll}")
    for p in (backup, digest):
        p.unlink(missing_ok=True)
    marker = engine_file.with_name(engine_file.name + ".installed")
    if marker.is_file():
        previous = marker.read_text(encoding="utf-8").strip()
        if previous:
            engine_file.write_text(previous + "\n", encoding="utf-8")
            rep.add(f"restored {engine_file} to {previous}")
        else:
            engine_file.unlink(missing_ok=True)
            rep.add(f"removed {engine_file}")
        marker.unlink()
    return rep
