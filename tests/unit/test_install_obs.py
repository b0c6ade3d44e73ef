"""Finding OBS's configuration on each platform and OBS version, and install/uninstall round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from obs_faceswap import install_obs
from obs_faceswap.errors import ConfigError


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [
        ("linux", {}, [".config/obs-studio", ".var/app/com.obsproject.Studio/config/obs-studio"]),
        ("linux", {"XDG_CONFIG_HOME": "XDG"}, ["XDG/obs-studio", ".var/app/com.obsproject.Studio/config/obs-studio"]),
        ("darwin", {}, ["Library/Application Support/obs-studio"]),
        ("win32", {"APPDATA": "AppData/Roaming"}, ["AppData/Roaming/obs-studio"]),
    ],
)
def test_config_dirs_per_platform(tmp_path: Path, platform: str, env: dict[str, str], expected: list[str]) -> None:
    env = {k: str(tmp_path / v) for k, v in env.items()}
    dirs = install_obs.config_dirs(tmp_path, env, platform)
    assert [d for _, d in dirs] == [tmp_path / e for e in expected]


def _obs_config(base: Path, *, user_ini: bool, stem: str = "My_Scenes") -> Path:
    (base / "basic" / "scenes").mkdir(parents=True)
    basic = f"[Basic]\nProfile=P\nSceneCollection=My Scenes\nSceneCollectionFile={stem}\n"
    if user_ini:  # OBS 31+: user settings in user.ini, global.ini keeps app-wide ones
        (base / "global.ini").write_text("[General]\nLastVersion=520093696\n", encoding="utf-8")
        (base / "user.ini").write_text(basic, encoding="utf-8")
    else:
        (base / "global.ini").write_text(basic, encoding="utf-8")
    coll = base / "basic" / "scenes" / f"{stem}.json"
    # OBS's own formatting (4-space indent, a script already there): must come back byte for byte.
    coll.write_bytes(
        b'{\n    "name": "My Scenes",\n    "modules": {\n        "scripts-tool": [\n'
        b'            {"path": "/x/other.lua", "settings": {}}\n        ]\n    },\n'
        b'    "sources": [], "x": 1.50\n}'
    )
    return coll


@pytest.mark.parametrize("user_ini", [False, True], ids=["obs28-30-global.ini", "obs31+-user.ini"])
def test_install_then_uninstall_round_trip(tmp_path: Path, user_ini: bool) -> None:
    base = tmp_path / ".config" / "obs-studio"
    coll = _obs_config(base, user_ini=user_ini)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    loc = install_obs.locate(home=tmp_path, environ={"PATH": "", "HOME": str(tmp_path)}, platform="linux")
    assert loc.kind == "linux" and loc.settings_file.name == ("user.ini" if user_ini else "global.ini")
    script = tmp_path / "pkg" / "obs_faceswap" / "obs" / "obs_faceswap_filter.py"
    engine = tmp_path / "pkg" / "obs_faceswap" / "obs" / "engine_python.txt"
    engine.parent.mkdir(parents=True)
    rep = install_obs.install(loc, Path("/venv/bin/python"), script=script, engine_file=engine)
    paths = [e["path"] for e in json.loads(coll.read_text())["modules"]["scripts-tool"]]
    assert paths == ["/x/other.lua", str(script)]
    assert engine.read_text().strip() == "/venv/bin/python"
    assert any(str(coll) in line for line in rep.lines)
    # Installing twice changes nothing.
    again = coll.read_bytes()
    install_obs.install(loc, Path("/venv/bin/python"), script=script, engine_file=engine)
    assert coll.read_bytes() == again
    install_obs.uninstall(loc, script=script, engine_file=engine)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_flatpak_config_is_found_and_gets_the_override_hint(tmp_path: Path) -> None:
    base = tmp_path / ".var" / "app" / "com.obsproject.Studio" / "config" / "obs-studio"
    _obs_config(base, user_ini=True)
    loc = install_obs.locate(home=tmp_path, environ={"PATH": "", "HOME": str(tmp_path)}, platform="linux")
    assert loc.kind == "flatpak"
    script = tmp_path / "pkg" / "obs_faceswap" / "obs" / "obs_faceswap_filter.py"
    rep = install_obs.install(loc, Path("/venv/bin/python"), script=script, engine_file=tmp_path / "engine.txt")
    assert any("flatpak override --user --filesystem=" in line for line in rep.lines)


def test_no_configuration_says_start_obs_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="start it once"):
        install_obs.locate(home=tmp_path, environ={"PATH": "", "HOME": str(tmp_path)}, platform="linux")
    (tmp_path / ".config" / "obs-studio").mkdir(parents=True)
    loc = install_obs.locate(home=tmp_path, environ={"PATH": "", "HOME": str(tmp_path)}, platform="linux")
    with pytest.raises(ConfigError, match="no current scene collection"):
        install_obs.collection_file(loc)
