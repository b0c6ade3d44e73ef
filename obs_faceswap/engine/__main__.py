"""``python -m obs_faceswap.engine``: the engine process (see :mod:`obs_faceswap.engine.server`)."""

import sys

from obs_faceswap.runtime import set_process_environment

if __name__ == "__main__":
    set_process_environment()  # process-wide settings, before anything imports onnxruntime
    from obs_faceswap.engine.server import main

    sys.exit(main())
