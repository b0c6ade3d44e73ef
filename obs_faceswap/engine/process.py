"""The engine process seen from OBS: spawn it, talk over its pipes, watch it, restart it.

Standard library only (this runs inside OBS's embedded Python). Nothing here waits on the
engine except :meth:`EngineProcess.stop`: two reader threads (stdout, stderr) do blocking reads
only -- blocked in I/O they do not hold the GIL -- and just append lines to deques that
:meth:`EngineProcess.poll` (called from ``video_tick``) reads.

Watchdog: a frame the engine owes for longer than :data:`STALL_AFTER` seconds makes the
status say "not responding" at once (the filter covers the face meanwhile); after
``hang_timeout`` the engine is killed and restarted with back-off.

Settings are coalesced: a burst of changes (typing in a text field, a script setting many
values) reaches the engine as one message once the changes pause for
:data:`SETTINGS_DEBOUNCE` seconds (at most :data:`SETTINGS_MAX_WAIT` after the first), so the
engine rebuilds its models once, for the latest settings only. The last settings the engine
accepted are sent first to every restarted engine, so "keeping the previous configuration"
survives a restart.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from obs_faceswap.engine import protocol as P
from obs_faceswap.engine.slots import SlotRing, _now

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: A frame owed for this long (s) makes the status say "not responding".
STALL_AFTER = 0.75
#: Settings are sent once changes pause this long (s) ...
SETTINGS_DEBOUNCE = 0.3
#: ... or at the latest this long (s) after the first unsent change.
SETTINGS_MAX_WAIT = 1.0
#: Log levels whose lines never explain why an engine died.
_QUIET_LEVELS = ("INFO", "DEBUG", "WARNING")


@dataclass(frozen=True)
class EngineStatus:
    """What the properties view shows.

    Attributes:
        state: ``stopped`` | ``starting`` | ``loading`` | ``running`` | ``error`` |
            ``restarting`` | ``disabled`` | ``not responding``.
        message: the reason / last error, "" when fine.
        provider: execution provider the engine uses (``CPUExecutionProvider``...).
        fps: frames the engine processed per second, recently.
        latency_ms: submit → result ready, recent median.
        restarts: how many times the engine was restarted.
        pid: the engine's process id while one runs.
        source_note: what to change about the source photo ("" when it is good).
    """

    state: str
    message: str
    provider: str
    fps: float
    latency_ms: float
    restarts: int
    pid: int | None
    source_note: str = ""


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"engine was killed by {name}"
    return f"engine exited with code {code}"


def error_line(lines: list[str]) -> str:
    """The line of an engine's last stderr output that explains a failure, or "".

    Log lines are ``LEVEL logger: message``: INFO/DEBUG/WARNING lines never explain a crash
    (quoting one would mislead); an ERROR/CRITICAL line or a traceback's last line does.
    """
    for text in reversed(lines):
        t = text.strip()
        if not t or text.startswith(" ") or t.split(" ", 1)[0] in _QUIET_LEVELS or t.startswith("Traceback"):
            continue
        return t[:300]
    return ""


def truthy(v: object) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


class EngineProcess:
    """One engine at a time: ``python -m obs_faceswap.engine``, restarted when it dies or hangs.

    Args: see :class:`~obs_faceswap.engine.client.EngineClient`; ``ring`` is the client's slot
    ring (told when frames fail, asked which frame is oldest, re-announced to a new engine).
    """

    def __init__(
        self,
        python: str,
        settings: dict[str, object],
        ring: SlotRing,
        *,
        env: dict[str, str] | None,
        emit: Callable[[str, bool], None],
        processor: str | None,
        hang_timeout: float,
        start_timeout: float,
        backoff_initial: float,
        backoff_max: float,
    ) -> None:
        self.python = python
        self.ring = ring
        self.settings: dict[str, object] = dict(settings)
        self.good_settings: dict[str, object] | None = None
        """The last settings the engine ran with and reported no problem for."""
        self._sent: dict[str, object] | None = None
        self._unsent_since: float | None = None
        self._last_change = 0.0
        self._env = dict(env or {})
        self._emit = emit
        self._processor = processor
        self.hang_timeout = hang_timeout
        self.start_timeout = start_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max

        self._proc: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._outbuf = bytearray()
        self._threads: list[threading.Thread] = []
        # bounded: if nobody calls poll() for a long time, old lines are dropped
        self._lines: collections.deque[bytes] = collections.deque(maxlen=1000)
        self._errlines: collections.deque[str] = collections.deque(maxlen=1000)
        self._last_err: collections.deque[str] = collections.deque(maxlen=8)
        self._kill_reason = ""
        self._t_start = 0.0
        self._t_state = 0.0
        self._next_start: float | None = None
        self._failures = 0
        self.started = False
        self.closed = False

        self._state = "stopped"  # process-level: stopped / starting / restarting / up
        self._engine_state = ""  # what the engine reported: loading / running / error / ...
        self._message = ""
        self._source_note = ""
        self._stall = ""  # "not responding" reason while a frame is overdue
        self._provider = ""
        self._fps = 0.0
        self._latency = 0.0
        self.restarts = 0
        self.pid: int | None = None
        self._status_cache: EngineStatus | None = None

    # -- what the client asks --------------------------------------------------------------
    @property
    def accepting(self) -> bool:
        """Whether frames may be submitted now."""
        return (
            self._engine_state == "running"
            and self._fd >= 0
            and not self._stall
            and truthy(self.settings.get("enabled", True))
        )

    @property
    def status(self) -> EngineStatus:
        st = self._status_cache
        if st is None:
            st = self._status_cache = self._make_status()
        return st

    def update_settings(self, settings: dict[str, object]) -> None:
        """Merge ``settings``; they reach the engine coalesced (see the module doc)."""
        self.settings.update(settings)
        self._status_cache = None
        now = _now()
        self._last_change = now
        if self._unsent_since is None:
            self._unsent_since = now

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self, timeout: float) -> None:
        """Ask the engine to quit, then terminate, then kill; join the readers. Never raises."""
        self.closed = True
        proc = self._proc
        if proc is not None:
            self.send(P.QUIT)
            try:
                if proc.stdin is not None:
                    proc.stdin.close()  # EOF: the engine exits by itself
            except OSError:
                pass
            self._fd = -1
            try:
                proc.wait(max(0.0, timeout))
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    try:
                        proc.wait(5.0)
                    except subprocess.TimeoutExpired:
                        self._emit(f"engine pid {proc.pid} did not die after SIGKILL", False)
        for t in self._threads:
            t.join(timeout=max(0.5, timeout))
        self._threads.clear()
        for stream in (proc.stdout, proc.stderr) if proc is not None else ():
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._proc = None
        self.pid = None
        self._forward_stderr(limit=None)
        self._state = "stopped"
        self._engine_state = ""
        self._stall = ""
        self._status_cache = None

    def poll(self) -> None:
        """Housekeeping, cheap: forward log lines, read status lines, send coalesced
        settings, flush pending writes, flag a stalled engine, kill a hung one, restart a
        dead one."""
        if self.closed:
            return
        if self._errlines:
            self._forward_stderr(limit=50)
        while self._lines:
            self._on_status_line(self._lines.popleft())
        now = _now()
        if (
            self._unsent_since is not None
            and self._fd >= 0
            and (now - self._last_change >= SETTINGS_DEBOUNCE or now - self._unsent_since >= SETTINGS_MAX_WAIT)
        ):
            self._send_settings()
        if self._outbuf and self._fd >= 0:
            self._flush()
        proc = self._proc
        if proc is not None:
            code = proc.poll()
            if code is not None:
                self._on_exit(code, now)
            elif not self._kill_reason:
                self._watchdog(proc, now)
        elif self._next_start is not None and now >= self._next_start and self.started:
            self._next_start = None
            self.restarts += 1
            self.spawn()
        self.ring.reclaim()

    def spawn(self) -> None:
        self.started = True
        cmd = [self.python, "-m", "obs_faceswap.engine", "--parent-pid", str(os.getpid())]
        if self._processor:
            cmd += ["--processor", self._processor]
        env = dict(os.environ)
        env.update(self._env)
        # run the same obs_faceswap as this client: the protocol must match
        paths = [_PACKAGE_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        env.setdefault("PYTHONIOENCODING", "utf-8")
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        else:
            kwargs["start_new_session"] = True  # keep OBS's terminal signals away from it
        self._kill_reason = ""
        self._engine_state = ""
        self._stall = ""
        self._status_cache = None
        self._t_start = self._t_state = _now()
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                close_fds=True,
                **kwargs,
            )
        except (OSError, ValueError) as e:
            reason = f"cannot start the engine with Python interpreter {self.python!r}: {e}"
            self._schedule_restart(reason, _now())
            return
        self._proc = proc
        self.pid = proc.pid
        self._state = "starting"
        self._message = ""
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self._fd = proc.stdin.fileno()
        # Windows before 3.12 cannot make a pipe non-blocking: it stays blocking there, which
        # is safe because at most `slots` frame notices can be outstanding (a few hundred bytes)
        with contextlib.suppress(OSError):
            os.set_blocking(self._fd, False)
        self._outbuf.clear()
        self._lines.clear()
        for name, stream, sink in (("stdout", proc.stdout, self._lines), ("stderr", proc.stderr, None)):
            t = threading.Thread(
                target=self._reader, args=(stream, sink), name=f"obs-faceswap-engine-{proc.pid}-{name}", daemon=True
            )
            t.start()
            self._threads.append(t)
        self._threads = [t for t in self._threads if t.is_alive()]
        # a new engine knows nothing: tell it every slot, then the last good settings (so an
        # invalid change keeps the previous configuration), then the current ones
        for msg in self.ring.attach_messages():
            self.send(msg)
        if self.good_settings is not None and self.good_settings != self.settings:
            self.send(P.encode_settings(self.good_settings))
        self._send_settings()
        self._emit(f"engine started (pid {proc.pid}): {' '.join(cmd)}", False)

    # -- internals -------------------------------------------------------------------------
    def _send_settings(self) -> None:
        self._unsent_since = None
        self._sent = dict(self.settings)
        self.send(P.encode_settings(self._sent))

    def _reader(self, stream: IO[bytes], sink: collections.deque[bytes] | None) -> None:
        # Runs in its own thread: blocking reads only, tiny per-line work.
        try:
            for line in stream:
                if sink is not None:
                    sink.append(line)
                else:
                    text = line.decode("utf-8", "replace").rstrip()
                    self._errlines.append(text)
                    self._last_err.append(text)
        except (OSError, ValueError):  # closed under us by stop()
            pass

    def _on_exit(self, code: int, now: float) -> None:
        reason = self._kill_reason or describe_exit(code)
        if not self._kill_reason and code != 0:
            last = error_line(list(self._last_err))
            if last:
                reason += f": {last}"
        proc = self._proc
        self._proc = None
        self.pid = None
        self._fd = -1
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        self.ring.fail_pending(free_abandoned=True)  # a dead engine writes nothing more
        if now - self._t_start > 60.0:
            self._failures = 0  # it ran fine for a while: restart quickly
        self._schedule_restart(reason, now)

    def _schedule_restart(self, reason: str, now: float) -> None:
        delay = min(self.backoff_max, self.backoff_initial * (2**self._failures))
        self._failures += 1
        self._next_start = now + delay
        self._state = "restarting"
        self._engine_state = ""
        self._stall = ""
        self._message = f"{reason}; restarting in {delay:g} s"
        self._fps = 0.0
        self._status_cache = None
        self._last_err.clear()
        self._emit(self._message, False)

    def _watchdog(self, proc: subprocess.Popen[bytes], now: float) -> None:
        if self._engine_state in ("", "starting", "loading"):
            if now - self._t_state > self.start_timeout:
                self._kill(proc, f"engine did not finish starting within {self.start_timeout:g} s")
            return
        oldest = self.ring.oldest_pending()
        late = 0.0 if oldest is None else now - oldest
        if late > self.hang_timeout:
            self._kill(proc, f"engine hung (no result for {late:.1f} s)")
            return
        stall = f"no result for over {STALL_AFTER:g} s" if late > STALL_AFTER else ""
        if bool(stall) != bool(self._stall):
            self._emit(f"engine not responding ({stall})" if stall else "engine responds again", False)
            self._status_cache = None
        self._stall = stall

    def _kill(self, proc: subprocess.Popen[bytes], reason: str) -> None:
        self._kill_reason = reason + "; killed it"
        # its pending frames have failed as far as the filter is concerned; the slots are not
        # reused before the next engine runs, by when this one is certainly dead
        self.ring.fail_pending(free_abandoned=False)
        self._engine_state = ""
        self._stall = ""
        self._state = "restarting"
        self._message = self._kill_reason
        self._status_cache = None
        with contextlib.suppress(OSError):
            proc.kill()  # SIGKILL / TerminateProcess: does not wait

    def send(self, data: bytes) -> None:
        if self._fd < 0:
            return
        if self._outbuf:
            self._outbuf += data
            self._flush()
            return
        try:
            n = os.write(self._fd, data)
        except BlockingIOError:
            n = 0
        except OSError:  # broken pipe: the engine is gone, poll() notices
            self._fd = -1
            return
        if n < len(data):
            self._outbuf += data[n:]

    def _flush(self) -> None:
        try:
            n = os.write(self._fd, self._outbuf)
        except BlockingIOError:
            return
        except OSError:
            self._fd = -1
            return
        del self._outbuf[:n]

    def _on_status_line(self, line: bytes) -> None:
        d = P.decode_status(line)
        if d is None:
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                self._emit(f"engine stdout: {text}", False)
            return
        if d.get("protocol") != P.PROTOCOL_VERSION:
            if self._proc is not None and not self._kill_reason:
                self._kill(
                    self._proc,
                    f"engine speaks protocol {d.get('protocol')}, expected "
                    f"{P.PROTOCOL_VERSION} (an obs_faceswap of another version?)",
                )
            return
        state = str(d.get("state", self._engine_state))
        if state != self._engine_state:
            self._t_state = _now()
            self._engine_state = state
        self._state = "up"
        self._message = str(d.get("message", ""))
        self._source_note = str(d.get("source_note", ""))
        self._provider = str(d.get("provider", self._provider))
        self._fps = float(d.get("fps", 0.0))
        self._latency = float(d.get("latency_ms", self._latency))
        self._status_cache = None
        if (
            state in ("running", "disabled")
            and not self._message
            and self._unsent_since is None
            and self._sent is not None
        ):
            self.good_settings = self._sent

    def _make_status(self) -> EngineStatus:
        message = self._message
        if self._state == "up":
            state = self._engine_state or "starting"
            if state == "running" and not truthy(self.settings.get("enabled", True)):
                state = "disabled"
            if self._stall and state in ("running", "disabled"):
                state, message = "not responding", f"engine not responding ({self._stall})"
        else:
            state = self._state
        return EngineStatus(
            state,
            message,
            self._provider,
            self._fps if self._state == "up" else 0.0,
            self._latency,
            self.restarts,
            self.pid,
            self._source_note if self._state == "up" else "",
        )

    def _forward_stderr(self, limit: int | None) -> None:
        n = 0
        while self._errlines and (limit is None or n < limit):
            self._emit(self._errlines.popleft(), True)
            n += 1
