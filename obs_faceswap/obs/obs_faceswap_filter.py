"""obs-faceswap: the script to add in OBS Studio under Tools → Scripts → "+".

It adds the "Face Swap" and "Face Swap (any source)" filters. Only Python's standard library
is needed inside OBS: the face swap itself runs in a separate engine process, using the
Python environment where obs-faceswap is installed (by default the ``.venv`` next to this
checkout; see the filter's "Engine Python" property).

Keep this file inside the obs-faceswap checkout (``obs_faceswap/obs/``): it finds the package
from its own location, or from ``OBS_FACESWAP_ROOT`` when set.
"""

import os
import sys

_ROOT = os.environ.get("OBS_FACESWAP_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from obs_faceswap.obs import script as _script  # noqa: E402  (needs the path above)


def script_description() -> str:
    return _script.description()


def script_load(settings: object) -> None:
    _script.load()


def script_unload() -> None:
    _script.unload()
