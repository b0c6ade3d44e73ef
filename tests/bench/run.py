"""One-command benchmark: per-stage ms, FPS at 480p/720p/1080p, pipeline / model time.

    .venv/bin/python tests/bench/run.py            # table
    .venv/bin/python tests/bench/run.py --json     # machine-readable
    .venv/bin/python tests/bench/run.py --sizes 720p --frames 200 --repeats 5 --provider cuda

Models and media come from ``$OBS_FACESWAP_MODELS`` / ``$OBS_FACESWAP_MEDIA``, defaulting to
the sibling ``../shared`` checkout like the tests. Not a pass/fail test: timings depend on
the machine and its load.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    for env, sub in (("OBS_FACESWAP_MODELS", "models"), ("OBS_FACESWAP_MEDIA", "media")):
        shared = ROOT.parent / "shared" / sub
        if not os.environ.get(env) and shared.is_dir():
            os.environ[env] = str(shared)
    from obs_faceswap.cli import main as cli_main

    return cli_main(["bench", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
