"""What the OBS script file does, kept in the package so a reload re-uses it.

Standard library only. ``obs_faceswap_filter.py`` (the file users add under Tools → Scripts)
calls :func:`load` from ``script_load`` and :func:`unload` from ``script_unload``.
"""

from __future__ import annotations

import logging
import sys

from obs_faceswap import __version__
from obs_faceswap.obs import obs_logging, settings
from obs_faceswap.obs.libobs import LibObs, LibObsError
from obs_faceswap.obs.registry import get_registry

log = logging.getLogger(__name__)


def description() -> str:
    """The text OBS shows for the script (HTML)."""
    return (
        f"<h3>obs-faceswap {__version__}</h3>"
        "<p>Adds two filters: <b>Face Swap</b> for cameras and media sources, and "
        "<b>Face Swap (any source)</b> for everything else (slower: reads the picture back "
        "from the GPU). Right-click a source → Filters → + to add one.</p>"
        "<p>The swap runs in a separate engine process using the Python environment where "
        "obs-faceswap is installed (set <i>Engine Python</i> in the filter if it is not the "
        f"<code>.venv</code> in <code>{settings.package_parent()}</code>).</p>"
        "<p>A 'face swap' badge is shown on the video by default; please keep it on when "
        "others cannot know the face is not real.</p>"
    )


def load() -> None:
    """``script_load``: bind libobs, route logging to OBS, register or re-enable filters."""
    # A callback waiting for the GIL while another Python thread runs bytecode waits a whole
    # switch interval (5 ms by default); 1 ms keeps OBS's threads from stalling on ours.
    sys.setswitchinterval(0.001)
    reg = get_registry()
    try:
        api = reg.api if reg.api is not None else LibObs()
    except LibObsError as e:
        log.error("%s", e)
        return
    obs_logging.install(api)
    reg.load(api)


def unload() -> None:
    """``script_unload``: filters pass frames through, engines stop, types are hidden."""
    get_registry().unload()
