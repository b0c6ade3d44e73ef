"""The per-filter "Toggle Face Swap" hotkey, registered on the filter's parent source.

Standard library only. libobs refuses hotkeys on private sources, and every filter is one,
so the hotkey belongs to the camera/media source: it shows up in Settings → Hotkeys under
that source and its binding is saved with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
from typing import Any

log = logging.getLogger(__name__)

HOTKEY_PREFIX = "obs_faceswap.toggle:"
#: obs_hotkey_id's "invalid" value ((size_t)-1).
INVALID_HOTKEY_ID = (1 << (8 * ctypes.sizeof(ctypes.c_size_t))) - 1


class ToggleHotkey:
    """Registers once the parent is known; unregisters on remove/destroy."""

    def __init__(self, api: Any, name: str) -> None:
        self.api = api
        self.name = name
        self.id: int | None = None
        self._callback: tuple[int, int] | None = None
        self._warned = False

    def set_callback(self, callback_addr: int, data: int) -> None:
        """Where the hotkey calls back (the registry's C trampoline and the instance id)."""
        self._callback = (callback_addr, data)

    def hotkey_name(self) -> str:
        """``obs_faceswap.toggle:<filter name>`` (unique per parent source)."""
        return f"{HOTKEY_PREFIX}{self.name}"

    def ensure(self, parent: int | None) -> None:
        if self.id is not None or not parent or self._callback is None:
            return
        addr, data = self._callback
        try:
            hid = int(
                self.api.obs_hotkey_register_source(
                    parent, self.hotkey_name().encode(), f"Toggle Face Swap ({self.name})".encode(), addr, data
                )
            )
        except Exception as e:
            self._warn(f"hotkey not registered: {e}")
            self.id = INVALID_HOTKEY_ID
            return
        self.id = hid
        if hid == INVALID_HOTKEY_ID:
            self._warn("libobs refused the toggle hotkey")

    def drop(self) -> None:
        hid, self.id = self.id, None
        if hid is not None and hid != INVALID_HOTKEY_ID:
            with contextlib.suppress(Exception):
                self.api.obs_hotkey_unregister(hid)

    def _warn(self, text: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("Face Swap %r: %s", self.name, text)
