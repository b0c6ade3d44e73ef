"""obs-faceswap: the script to add in OBS Studio under Tools → Scripts → "+".

It adds the "Face Swap" and "Face Swap (any source)" filters. Only Python's standard library
is needed inside OBS: the face swap itself runs in a separate engine process, using the
Python environment where obs-faceswap is installed (by default the ``.venv`` next to this
checkout; see the filter's "Engine Python" property).

Keep this file inside the obs-faceswap checkout (``obs_faceswap/obs/``): it finds the package
from its own location, or from ``OBS_FACESWAP_ROOT`` when set.
"""

import importlib.util
import os
import sys

_ROOT = os.environ.get("OBS_FACESWAP_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


def _import_package() -> None:
    """Import the ``obs_faceswap`` package from ``_ROOT`` without putting ``_ROOT`` on
    ``sys.path``: when obs-faceswap is pip-installed, ``_ROOT`` is a site-packages directory
    (maybe of another Python version) whose numpy & co. must stay invisible to OBS's Python
    and its other scripts. Submodules are then found through the package's own path."""
    if "obs_faceswap" in sys.modules:  # a script reload re-executes this file: keep it
        return
    pkg = os.path.join(_ROOT, "obs_faceswap")
    spec = importlib.util.spec_from_file_location(
        "obs_faceswap", os.path.join(pkg, "__init__.py"), submodule_search_locations=[pkg]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"obs-faceswap not found in {_ROOT} (set OBS_FACESWAP_ROOT)")
    module = importlib.util.module_from_spec(spec)
    sys.modules["obs_faceswap"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["obs_faceswap"]
        raise


_import_package()

from obs_faceswap.obs import script as _script  # noqa: E402  (needs the package above)


def script_description() -> str:
    return _script.description()


def script_load(settings: object) -> None:
    _script.load()


def script_unload() -> None:
    _script.unload()
