"""Named shared-memory segments without multiprocessing's resource tracker.

Standard library only: this module is imported inside OBS's embedded Python.

:class:`multiprocessing.shared_memory.SharedMemory` registers every segment it creates *or
attaches to* with ``multiprocessing.resource_tracker`` (before Python 3.13). That is wrong
for this project on both sides:

* in OBS, starting the tracker spawns ``sys.executable -c ...`` -- and ``sys.executable`` is
  the OBS binary there;
* in the engine, the tracker would unlink the client's segments when the engine exits
  (and warn about "leaked" segments it never owned).

The client creates, owns and unlinks every segment; the engine only attaches. So tracking
is switched off: ``track=False`` on Python 3.13+, and on older versions the module-level
``resource_tracker`` reference inside ``multiprocessing.shared_memory`` is swapped for a
no-op while the constructor / ``unlink`` runs (under a lock; only that module is affected).
Names are generated here (short enough for macOS's 31-character limit); nothing assumes
``/dev/shm``, so the same code works with Windows named file mappings.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import sys
import threading
from collections.abc import Iterator
from multiprocessing import shared_memory
from typing import Any

__all__ = ["SharedBuffer", "new_name", "remove_stale_segments"]

_PREFIX = "ofs"
_patch_lock = threading.Lock()
# segments whose mapping could not be closed yet because a view was still alive somewhere
# (say, in a traceback being logged); retried on later calls so they do not pile up
_lingering: list[shared_memory.SharedMemory] = []


def _close_lingering() -> None:
    for shm in list(_lingering):
        try:
            shm.close()
        except BufferError:
            continue
        _lingering.remove(shm)


class _NoTracker:
    """Stands in for ``multiprocessing.resource_tracker`` while we create/attach/unlink."""

    @staticmethod
    def register(name: str, rtype: str) -> None:
        return None

    @staticmethod
    def unregister(name: str, rtype: str) -> None:
        return None


@contextlib.contextmanager
def _untracked() -> Iterator[None]:
    if sys.version_info >= (3, 13):
        yield
        return
    with _patch_lock:
        saved = shared_memory.resource_tracker  # type: ignore[attr-defined]
        shared_memory.resource_tracker = _NoTracker  # type: ignore[attr-defined]
        try:
            yield
        finally:
            shared_memory.resource_tracker = saved  # type: ignore[attr-defined]


def _open(name: str | None, create: bool, size: int) -> shared_memory.SharedMemory:
    with _untracked():
        if sys.version_info >= (3, 13):
            return shared_memory.SharedMemory(name, create=create, size=size, track=False)
        return shared_memory.SharedMemory(name, create=create, size=size)


def new_name() -> str:
    """A fresh segment name: ``ofs<pid hex>_<8 random hex>`` (at most 22 characters)."""
    return f"{_PREFIX}{os.getpid() & 0xFFFFFFFF:x}_{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def remove_stale_segments(directory: str = "/dev/shm") -> list[str]:
    """Unlink segments this project created in processes that no longer exist.

    A client that is killed (OBS crashing, SIGKILL) cannot unlink its segments, and nothing
    else will: the resource tracker is off on purpose. Names carry the creator's pid, so a
    later client can tell which ones are orphans. Only where POSIX shared memory is visible
    as files (Linux); elsewhere this does nothing (Windows frees a mapping with its last
    handle; macOS keeps orphans until reboot).

    Returns:
        The names removed.
    """
    if sys.platform == "win32" or not os.path.isdir(directory):
        return []
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        if not name.startswith(_PREFIX):
            continue
        pid_hex, sep, tail = name[len(_PREFIX) :].partition("_")
        try:
            pid = int(pid_hex, 16)
        except ValueError:
            continue
        if not sep or len(tail) != 8 or pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            continue
        removed.append(name)
    return removed


class SharedBuffer:
    """One named shared-memory segment.

    Create with :meth:`create` (the owner, which must :meth:`unlink` it) or :meth:`attach`
    (the engine). ``buf`` is a writable memoryview and ``address`` the segment's address in
    this process (for ``ctypes.memmove``).

    Every memoryview handed out must be dropped before :meth:`close` (mmap refuses to close
    while views exist); :meth:`close` releases the ones this class made.
    """

    def __init__(self, shm: shared_memory.SharedMemory, owner: bool) -> None:
        self._shm: shared_memory.SharedMemory | None = shm
        self.owner = owner
        self.name: str = shm.name
        self.size: int = shm.size
        buf = shm.buf
        assert buf is not None  # a freshly opened segment is mapped
        self.buf: memoryview = buf
        # c_char.from_buffer pins the mapping (an export) -- released in close()
        self._anchor: Any = ctypes.c_char.from_buffer(buf)
        self.address: int = ctypes.addressof(self._anchor)

    @classmethod
    def create(cls, size: int) -> SharedBuffer:
        """A new zero-filled segment of at least ``size`` bytes, owned by the caller.

        Raises:
            OSError: the system refused (out of memory, too many segments, ...).
        """
        for _ in range(8):
            try:
                return cls(_open(new_name(), True, size), owner=True)
            except FileExistsError:  # a random-name clash: try another
                continue
        raise FileExistsError("could not find a free shared-memory name")

    @classmethod
    def attach(cls, name: str) -> SharedBuffer:
        """Map an existing segment created by another process.

        Raises:
            FileNotFoundError: no segment of that name exists.
        """
        return cls(_open(name, False, 0), owner=False)

    @property
    def closed(self) -> bool:
        return self._shm is None

    def close(self) -> None:
        """Unmap (idempotent). Views obtained from ``buf`` must be gone by now."""
        shm, self._shm = self._shm, None
        if shm is None:
            return
        self._anchor = None
        self.address = 0
        self.buf.release()
        try:
            shm.close()
        except BufferError:
            _lingering.append(shm)
        _close_lingering()

    def unlink(self) -> None:
        """Remove the segment's name (owner only; idempotent). Close it too."""
        name = self.name
        shm = self._shm
        self.close()
        if not self.owner or not name:
            return
        self.name = ""
        with _untracked():
            try:
                if shm is not None:
                    shm.unlink()
                else:  # pragma: no cover - close() was called before unlink()
                    _open(name, False, 0).unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> SharedBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.owner:
            self.unlink()
        else:
            self.close()

    def __repr__(self) -> str:
        return f"SharedBuffer({self.name!r}, size={self.size}, owner={self.owner})"
