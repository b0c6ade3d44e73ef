"""OBS exits in a row with each filter kind after resolution changes (the issue's 20).

Runs tests/e2e/test_obs_faults.py::test_exits_after_resolution_changes with
``OBS_FACESWAP_EXIT_RUNS`` launches per filter kind (the test suite runs 1):

    .venv/bin/python -m tests.bench.exits_obs --runs 20
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args(argv)
    env = dict(os.environ, OBS_FACESWAP_EXIT_RUNS=str(args.runs))
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-x",
        "tests/e2e/test_obs_faults.py::test_exits_after_resolution_changes",
    ]
    return subprocess.call(cmd, env=env, cwd=ROOT)


if __name__ == "__main__":
    raise SystemExit(main())
