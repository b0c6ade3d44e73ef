"""``python -m obs_faceswap``: the same as the ``obs-faceswap`` command."""

import sys

from obs_faceswap.cli import main

if __name__ == "__main__":
    sys.exit(main())
