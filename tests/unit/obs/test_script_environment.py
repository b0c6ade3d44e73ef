"""Loading the OBS script leaves OBS's process environment as it was.

OBS runs every script (and every other plugin) in one process: a variable set while our
script loads would change how other plugins' thread pools behave. Process-wide settings
(``OMP_WAIT_POLICY``) are set only by the engine's and the CLI's entry points.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from obs_faceswap.config import PROCESS_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "obs_faceswap" / "obs" / "obs_faceswap_filter.py"


def test_loading_the_obs_script_leaves_os_environ_unchanged(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import importlib.util, json, os, sys
        before = dict(os.environ)
        spec = importlib.util.spec_from_file_location('obs_faceswap_filter', {str(SCRIPT)!r})
        m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
        m.script_description()
        # what script_load() and the filters bring in when OBS calls them
        import obs_faceswap.obs.registry, obs_faceswap.obs.filters, obs_faceswap.obs.settings
        import obs_faceswap.engine.client, obs_faceswap.config
        after = dict(os.environ)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        print(json.dumps({{"changed": changed, "modules": "obs_faceswap.obs.script" in sys.modules}}))
    """)
    env = {k: v for k, v in os.environ.items() if k not in PROCESS_ENVIRONMENT}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"changed": [], "modules": True}


def test_entry_points_set_the_process_environment(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import os
        from obs_faceswap.runtime import set_process_environment
        import obs_faceswap.runtime, obs_faceswap.pipeline  # library imports change nothing
        print(os.environ.get("OMP_WAIT_POLICY"))
        set_process_environment()
        print(os.environ.get("OMP_WAIT_POLICY"))
    """)
    env = {k: v for k, v in os.environ.items() if k not in PROCESS_ENVIRONMENT}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "PASSIVE"]
