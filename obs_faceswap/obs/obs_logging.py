"""Route the ``obs_faceswap`` loggers into OBS's own log file (standard library only)."""

from __future__ import annotations

import logging
from typing import Any

from obs_faceswap.obs import structs

_LEVELS = ((logging.ERROR, structs.LOG_ERROR), (logging.WARNING, structs.LOG_WARNING), (logging.INFO, structs.LOG_INFO))


class ObsLogHandler(logging.Handler):
    """Writes records with ``blog`` as ``[obs-faceswap] message``."""

    def __init__(self, api: Any) -> None:
        super().__init__(logging.INFO)
        self.api = api

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = next((obs for py, obs in _LEVELS if record.levelno >= py), structs.LOG_DEBUG)
            self.api.blog(level, "[obs-faceswap] " + self.format(record))
        except Exception:
            self.handleError(record)


def install(api: Any) -> ObsLogHandler | None:
    """Attach one :class:`ObsLogHandler` to the ``obs_faceswap`` logger (idempotent).

    A handler left by an earlier load of the script is replaced, so a reload never logs
    every line twice. Returns None where ``blog`` cannot be called (Python's default
    handling then applies; OBS shows stderr in the script log).
    """
    root = logging.getLogger("obs_faceswap")
    for h in list(root.handlers):
        if type(h).__name__ == "ObsLogHandler":
            root.removeHandler(h)
    if getattr(api, "_blog", None) is None:
        return None
    handler = ObsLogHandler(api)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    return handler
