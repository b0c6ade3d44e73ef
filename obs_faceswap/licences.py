"""Tell the user once, at first use, that a model's licence restricts what they may do with it.

InsightFace's models (inswapper, ArcFace) and most public swap models are licensed for
non-commercial research only. Streaming is often commercial, so the user must hear it — once
per model, not on every start: the names already shown are kept in the user cache.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

_RESTRICTIVE = ("non-commercial", "noncommercial", "research")
_FILE = "licences-shown.txt"


def is_restrictive(license: str) -> bool:
    """True for licences that forbid commercial use (non-commercial, research only, ResearchRAIL)."""
    t = license.lower()
    return any(w in t for w in _RESTRICTIVE)


def _state_file(state_dir: Path | None) -> Path:
    if state_dir is None:
        from obs_faceswap.models import default_cache_dir

        state_dir = default_cache_dir()
    return state_dir / _FILE


def show_once(name: str, license: str, *, state_dir: Path | None = None) -> bool:
    """Warn about ``name``'s restrictive ``license`` if it was never shown; True when shown now.

    Never raises: a read-only cache only means the notice may be shown again next time.
    """
    if not is_restrictive(license):
        return False
    path = _state_file(state_dir)
    try:
        seen = set(path.read_text(encoding="utf-8").split("\n")) if path.is_file() else set()
    except OSError:
        seen = set()
    if name in seen:
        return False
    log.warning(
        "%s is licensed %s: you may not use it commercially (streams with ads, sponsors or paid "
        "work included). This notice is shown once.",
        name,
        license,
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(name + "\n")
    except OSError as e:
        log.debug("cannot record the licence notice in %s: %s", path, e)
    return True
