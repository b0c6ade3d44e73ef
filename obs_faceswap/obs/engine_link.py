"""One filter's engine: start it, feed it settings, stop it without blocking OBS.

Standard library only. Rules that keep OBS safe:

* **One engine per filter, ever.** A new engine starts only once the previous one has quit
  (closing runs on a background thread, so no OBS thread waits), and a change of the
  "Engine Python" setting takes effect only after it has stopped changing for
  :data:`PYTHON_DEBOUNCE` seconds (typing a path must not start one engine per keystroke).
* **Settings are coalesced** by the client (a burst of changes reaches the engine once).
* **The source photo is watched**: a photo deleted, replaced or re-chosen at the same path is
  noticed (once a second, and at every settings change) and the engine re-reads it.
* Closing threads are remembered so :func:`join_all` can wait for them before OBS exits
  (no engine process and no shared memory left behind).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from obs_faceswap.obs import settings as st

log = logging.getLogger(__name__)

#: Seconds the "Engine Python" setting must stay unchanged before an engine starts with it.
PYTHON_DEBOUNCE = 1.0
#: How often (s) the source photo's file is checked for changes.
PHOTO_CHECK_INTERVAL = 1.0
#: Shared-memory slots per filter (frames in flight at once).
SLOTS = 8

_ALL_CLOSERS: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_CLOSERS_LOCK = threading.Lock()


def join_all(timeout: float) -> int:
    """Wait (up to ``timeout`` s in all) for every engine still closing; returns how many
    are still alive afterwards. Called when the script unloads (also at OBS exit)."""
    import time

    end = time.monotonic() + timeout
    with _CLOSERS_LOCK:
        threads = list(_ALL_CLOSERS)
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    return sum(t.is_alive() for t in threads)


def photo_stamp(path: str | None) -> str | None:
    """What identifies the photo file's content cheaply (inode, size, mtime), None if absent."""
    if not path:
        return None
    try:
        s = os.stat(path)
    except OSError:
        return None
    return f"{s.st_ino}:{s.st_size}:{s.st_mtime_ns}"


def _close_quietly(client: Any) -> None:
    try:
        client.close(timeout=2.0)
    except Exception as e:
        log.warning("engine close failed: %s", e)


class EngineLink:
    """The engine client of one filter (or none, with the reason in :attr:`error`).

    Args:
        name: the filter's name (for the log).
        engine_api: the engine client module, or None when unavailable.
        engine_error: why ``engine_api`` is None.
        env: extra environment for the engine process.
        clock: ``time.perf_counter_ns``.
        frame_interval: returns OBS's frame interval in seconds.
    """

    def __init__(
        self,
        name: str,
        engine_api: Any,
        engine_error: str,
        env: dict[str, str] | None,
        clock: Callable[[], int],
        frame_interval: Callable[[], float],
    ) -> None:
        self.name = name
        self.engine_api = engine_api
        self.engine_api_error = engine_error
        self.env = env
        self.clock = clock
        self.frame_interval = frame_interval
        self.client: Any = None
        self.python: str | None = None
        self.error = ""
        self.closers: list[threading.Thread] = []
        self.values: dict[str, Any] = {}
        self.latency_mode = False
        self._start_at: int | None = None  # clock() after which the engine may start
        self._stamp: str | None = None
        self._photo: str | None = None
        self._next_photo_check = 0
        self._warned: set[str] = set()

    # --- lifecycle -------------------------------------------------------------------
    def set_api(self, engine_api: Any, engine_error: str) -> None:
        self.engine_api = engine_api
        self.engine_api_error = engine_error

    def want_start(self, delay_s: float = 0.0) -> None:
        """Start an engine as soon as the previous one is gone (and ``delay_s`` passed)."""
        self._start_at = self.clock() + int(delay_s * 1e9)
        self.try_start()

    @property
    def start_pending(self) -> bool:
        """An engine will start (once the previous one has quit and the setting settled)."""
        return self._start_at is not None

    def try_start(self) -> None:
        if self.client is not None or self._start_at is None or self.clock() < self._start_at:
            return
        self.closers = [t for t in self.closers if t.is_alive()]
        if self.closers:
            return  # the previous engine is still quitting: one engine per filter
        self._start_at = None
        self._start()

    def _start(self) -> None:
        if self.engine_api is None:
            self.error = self.engine_api_error or "engine client unavailable"
            return
        python, origin = st.resolve_interpreter(str(self.values.get("engine_python", "")))
        if python is None:
            self.error = origin
            return
        try:
            client = self.engine_api.EngineClient(
                python, self.engine_settings(), slots=SLOTS, env=self.env, log=self._engine_log
            )
            client.start()
        except Exception as e:
            self.error = f"engine could not start with {python}: {e}"
            log.warning("Face Swap %r: %s", self.name, self.error)
            return
        self.client = client
        self.python = python
        self.error = ""
        self.apply_max_age()
        log.info("Face Swap %r: starting engine with %s (from %s)", self.name, python, origin)

    def retire(self) -> None:
        """Stop the current engine on a background thread (never blocks the caller)."""
        client, self.client = self.client, None
        if client is None:
            return
        t = threading.Thread(target=_close_quietly, args=(client,), name="obs-faceswap-close")
        with _CLOSERS_LOCK:
            _ALL_CLOSERS.add(t)
        t.start()
        self.closers.append(t)

    def close(self, wait: bool) -> None:
        """Stop the engine; with ``wait``, also wait for every earlier close of this filter."""
        self._start_at = None
        if wait and self.client is not None:
            client, self.client = self.client, None
            _close_quietly(client)
        else:
            self.retire()
        if wait:
            for t in self.closers:
                t.join(timeout=5.0)
            self.closers.clear()

    # --- settings --------------------------------------------------------------------
    def engine_settings(self) -> dict[str, Any]:
        e = st.engine_settings(self.values)
        self._photo = str(e.get("source") or "") or None
        self._stamp = photo_stamp(self._photo)
        self._next_photo_check = self.clock() + int(PHOTO_CHECK_INTERVAL * 1e9)
        e["source_stamp"] = self._stamp
        return e

    def configure(self, values: dict[str, Any], latency_mode: bool) -> None:
        """First settings: start the engine now."""
        self.values = dict(values)
        self.latency_mode = latency_mode
        self.want_start()

    def update(self, values: dict[str, Any], latency_mode: bool, active: bool) -> None:
        """New settings: live changes go to the engine; a new interpreter replaces it (debounced)."""
        old, self.values = self.values, dict(values)
        self.latency_mode = latency_mode
        self.apply_max_age()
        if not active:
            return
        if old.get("engine_python") != values.get("engine_python"):
            self.retire()
            self.want_start(PYTHON_DEBOUNCE)
            return
        if self.client is None:
            if self._start_at is None:
                self.want_start()
            return
        old_e = st.engine_settings(old)
        old_e["source_stamp"] = self._stamp
        new_e = self.engine_settings()
        diff = {k: v for k, v in new_e.items() if old_e.get(k) != v}
        if diff:
            self._send(diff)

    def _send(self, diff: dict[str, Any]) -> None:
        try:
            self.client.update_settings(diff)
        except Exception as e:
            log.warning("Face Swap %r: settings not sent to the engine: %s", self.name, e)

    def apply_max_age(self) -> None:
        # Lowest latency: a result more than ~2 frames old is never used, so the engine may
        # skip such frames and stay current. Synchronised: let it finish every frame.
        client = self.client
        if client is None:
            return
        try:
            client.max_age = 2.0 * (self.frame_interval() or 1 / 30) if self.latency_mode else None
        except Exception as e:
            self._warn_once("max_age", f"cannot set max_age: {e}")

    # --- every video tick ---------------------------------------------------------------
    def tick(self) -> None:
        """Start a pending engine, poll the running one, notice a changed photo file."""
        if self.client is None:
            self.try_start()
        client = self.client
        if client is None:
            return
        try:
            client.poll()
        except Exception as e:
            self._warn_once("poll:" + str(e), f"engine poll failed: {e}")
        now = self.clock()
        if now >= self._next_photo_check:
            self._next_photo_check = now + int(PHOTO_CHECK_INTERVAL * 1e9)
            stamp = photo_stamp(self._photo)
            if stamp != self._stamp:
                self._stamp = stamp
                what = "was deleted" if stamp is None else "changed"
                log.info("Face Swap %r: source photo %s %s; the engine re-reads it", self.name, self._photo, what)
                self._send({"source_stamp": stamp})

    def status(self) -> Any:
        client = self.client
        if client is None:
            return None
        try:
            return client.status
        except Exception:
            return None

    def _engine_log(self, text: str) -> None:
        # The client reports its own events ("[client] ...") and forwards the engine's log
        # lines ("LEVEL logger: message"); keep the engine's level in OBS's log.
        try:
            head = str(text).split(" ", 1)[0]
            level = {
                "ERROR": logging.ERROR,
                "CRITICAL": logging.ERROR,
                "WARNING": logging.WARNING,
                "DEBUG": logging.DEBUG,
            }.get(head, logging.INFO)
            log.log(level, "Face Swap %r engine: %s", self.name, text)
        except Exception:  # logging must never break the client
            pass

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("Face Swap %r: %s", self.name, text)
