"""``python -m obs_faceswap.engine``: the engine process (see :mod:`obs_faceswap.engine.server`)."""

import sys

from obs_faceswap.engine.server import main

if __name__ == "__main__":
    sys.exit(main())
