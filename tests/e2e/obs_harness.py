"""Run real OBS Studio headless (Xvfb + software OpenGL) and drive it through obs-websocket.

Used by the end-to-end tests and by ``tests/bench/bench_obs.py``. Every OBS gets a
throw-away HOME with a pre-seeded profile, scene collections and websocket settings
(``docs/obs-integration.md``: "Running OBS headless"), a private X display picked by Xvfb
itself (``-displayfd``), a free websocket port, and a unique tag in its environment so the
engine processes it starts can be found — and killed — even if OBS hangs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obs_faceswap import obs_demo
from obs_faceswap.obs_demo import MediaSource

INSTALL_HINT = "apt-get install -y obs-studio xvfb"
TAG_VAR = "OBS_FACESWAP_E2E_TAG"
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "obs_faceswap" / "obs" / "obs_faceswap_filter.py"
HELPER_SCRIPT = Path(__file__).resolve().parent / "obs_test_helper.py"
ASYNC_ID = "obs_faceswap_filter"
RENDER_ID = "obs_faceswap_render_filter"


class ObsHarnessError(RuntimeError):
    """OBS or Xvfb is missing, did not start, hung, or crashed."""


def require_binaries() -> tuple[str, str]:
    """Paths of ``obs`` and ``Xvfb``; a clear error naming the install command if absent."""
    obs, xvfb = shutil.which("obs"), shutil.which("Xvfb")
    missing = [n for n, p in (("obs", obs), ("Xvfb", xvfb)) if not p]
    if missing:
        raise ObsHarnessError(
            f"{' and '.join(missing)} not installed: the end-to-end tests drive real OBS Studio "
            f"under Xvfb. Install them with `{INSTALL_HINT}`."
        )
    return obs, xvfb  # type: ignore[return-value]


def obs_version() -> tuple[int, int, int]:
    """Version of the installed ``obs`` binary."""
    obs, _ = require_binaries()
    out = subprocess.run([obs, "--version"], capture_output=True, text=True, timeout=30).stdout
    # "OBS Studio - 29.0.2.1-1+b1 (linux)"
    ver = out.split(" - ", 1)[-1].split()[0]
    parts = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in ver.split(".")[:3]]
    return tuple((parts + [0, 0, 0])[:3])  # type: ignore[return-value]


def stats_stem(filter_name: str) -> str:
    """File name stem of a filter's diagnostics file (as the filter writes it)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in filter_name)


def obs_environment() -> dict[str, str]:
    """This process's environment, minus what would break OBS.

    Importing OpenCV points ``QT_QPA_PLATFORM_PLUGIN_PATH``/``QT_QPA_FONTDIR`` at its own Qt
    and prepends its libraries to ``LD_LIBRARY_PATH``; OBS (Qt 5) then aborts at start-up
    ("Could not load the Qt platform plugin"). The venv's Python variables are not OBS's
    business either.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "QT_"))}
    ld = [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p and "site-packages" not in p]
    if ld:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(ld)
    else:
        env.pop("LD_LIBRARY_PATH", None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FilterSpec:
    """A filter saved in the scene collection (OBS creates it at load)."""

    name: str
    kind: str = ASYNC_ID
    settings: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        return obs_demo.filter_json(self.kind, self.name, self.settings, self.enabled)


@dataclass
class MediaSpec:
    """A looping media source (``ffmpeg_source``) placed at the scene's top-left corner."""

    name: str
    path: Path
    filters: list[FilterSpec] = field(default_factory=list)
    looping: bool = True


def scene_collection(name: str, media: list[MediaSpec], scripts: list[Path]) -> dict[str, Any]:
    """A minimal OBS 28–29 scene collection: one scene holding the media sources (built like obs-demo's)."""
    sources = [MediaSource(m.name, m.path, [f.to_json() for f in m.filters], m.looping) for m in media]
    return obs_demo.scene_collection(name, sources, [(p, {}) for p in scripts])


@dataclass
class ObsConfig:
    """What the OBS under test looks like."""

    media: list[MediaSpec]
    width: int = 512
    height: int = 388
    fps: int = 10
    scripts: list[Path] = field(default_factory=lambda: [SCRIPT, HELPER_SCRIPT])
    #: further collections (name → media) to switch to
    extra_collections: dict[str, list[MediaSpec]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


class Obs:
    """One headless OBS process with its Xvfb, HOME and websocket client.

    Args:
        workdir: empty directory for HOME, logs, recordings and stats.
        config: scene and output settings.
    """

    def __init__(self, workdir: Path, config: ObsConfig) -> None:
        self.workdir = workdir
        self.config = config
        self.home = workdir / "home"
        self.recordings = workdir / "recordings"
        self.stats_dir = workdir / "stats"
        self.tag = uuid.uuid4().hex
        self.port = free_port()
        self.xvfb: subprocess.Popen[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: Any = None
        self.display = ""
        self.exit_code: int | None = None
        self.killed = False
        self.seen_engine_pids: set[int] = set()

    # --- setup -------------------------------------------------------------------------
    def _write_config(self) -> None:
        cfg = self.config
        base = self.home / ".config" / "obs-studio"
        (base / "basic" / "profiles" / "P").mkdir(parents=True, exist_ok=True)
        (base / "basic" / "scenes").mkdir(parents=True, exist_ok=True)
        (base / "logs").mkdir(parents=True, exist_ok=True)
        self.recordings.mkdir(parents=True, exist_ok=True)
        self.stats_dir.mkdir(parents=True, exist_ok=True)
        major, minor, patch = obs_version()
        (base / "global.ini").write_text(
            obs_demo.global_ini(
                version=(major << 24) | (minor << 16) | patch,
                profile="P",
                collection="C",
                collection_file="C",
                websocket_port=self.port,
            ),
            encoding="utf-8",
        )
        (base / "basic" / "profiles" / "P" / "basic.ini").write_text(
            obs_demo.profile_ini(
                name="P", width=cfg.width, height=cfg.height, fps=cfg.fps, recordings=self.recordings, video_kbps=2500
            ),
            encoding="utf-8",
        )
        collections = {"C": cfg.media, **cfg.extra_collections}
        for name, media in collections.items():
            (base / "basic" / "scenes" / f"{name}.json").write_text(
                json.dumps(scene_collection(name, media, cfg.scripts), indent=1), encoding="utf-8"
            )

    def _start_xvfb(self, xvfb: str) -> None:
        r, w = os.pipe()
        try:
            with open(self.workdir / "xvfb.log", "wb") as xlog:  # the child keeps its own copy
                self.xvfb = subprocess.Popen(
                    [xvfb, "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset"],
                    pass_fds=(w,),
                    stdout=subprocess.DEVNULL,
                    stderr=xlog,
                    start_new_session=True,
                )
            os.close(w)
            w = -1
            deadline = time.monotonic() + 30
            buf = b""
            while not buf.endswith(b"\n"):
                if time.monotonic() > deadline or self.xvfb.poll() is not None:
                    raise ObsHarnessError(f"Xvfb did not start (see {self.workdir / 'xvfb.log'})")
                chunk = _read_with_timeout(r, 1.0)
                buf += chunk
            self.display = ":" + buf.decode().strip()
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)

    def start(self, timeout: float = 120.0) -> Obs:
        """Start Xvfb and OBS and connect the websocket client.

        Raises:
            ObsHarnessError: OBS did not accept a websocket connection in ``timeout`` s.
        """
        obs, xvfb = require_binaries()
        import obsws_python  # the test extra; imported here so unit tests do not need it

        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._start_xvfb(xvfb)
        env = obs_environment()
        env.update(
            {
                "HOME": str(self.home),
                "XDG_CONFIG_HOME": str(self.home / ".config"),
                "DISPLAY": self.display,
                "QT_QPA_PLATFORM": "xcb",
                "LIBGL_ALWAYS_SOFTWARE": "1",
                TAG_VAR: self.tag,
                "OBS_FACESWAP_STATS_DIR": str(self.stats_dir),
            }
        )
        env.update(self.config.env)
        # OBS_E2E_WRAPPER: a debugging aid, e.g. a script running OBS under gdb.
        wrapper = os.environ.get("OBS_E2E_WRAPPER")
        with open(self.workdir / "obs.stdout", "wb") as out:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [wrapper or obs, "--multi", "--verbose", "--collection", "C", "--profile", "P", "--scene", "Scene"],
                env=env,
                cwd=str(self.workdir),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_allow_core_dumps,
            )
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ObsHarnessError(f"OBS exited with {self.proc.returncode} during start-up\n" + self.log_tail())
            try:
                # Probe first: obsws-python logs a traceback for every refused connection.
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                self.client = obsws_python.ReqClient(host="127.0.0.1", port=self.port, password="", timeout=30)
                break
            except Exception as e:  # refused until obs-websocket is listening
                last = e
                time.sleep(0.5)
        else:
            self.kill()
            raise ObsHarnessError(f"OBS did not open its websocket in {timeout:.0f} s ({last})\n" + self.log_tail())
        return self

    # --- requests ----------------------------------------------------------------------
    def call(self, request: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """One obs-websocket request; its ``responseData`` as a dict (empty if none)."""
        if self.client is None:
            raise ObsHarnessError("OBS is not running")
        return self.client.send(request, data, raw=True) or {}

    def responsive(self) -> bool:
        """OBS answers a websocket request."""
        try:
            return bool(self.call("GetVersion").get("obsVersion"))
        except Exception:
            return False

    def screenshot(self, source: str, width: int | None = None, height: int | None = None) -> bytes:
        """PNG bytes of ``source`` rendered with its filters."""
        data: dict[str, Any] = {"sourceName": source, "imageFormat": "png"}
        if width:
            data["imageWidth"] = width
        if height:
            data["imageHeight"] = height
        uri = self.call("GetSourceScreenshot", data)["imageData"]
        return base64.b64decode(uri.split(",", 1)[1])

    def stats(self, filter_name: str) -> dict[str, Any] | None:
        """The filter's diagnostics file (written once a second), or None if not there yet."""
        p = self.stats_dir / f"{stats_stem(filter_name)}.json"
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def wait_for(self, predicate: Any, timeout: float, what: str, interval: float = 0.25) -> Any:
        """Poll ``predicate()`` until truthy; ObsHarnessError naming ``what`` on timeout."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except Exception as e:  # a transient websocket/file error: keep polling
                last = e
            if last and not isinstance(last, Exception):
                return last
            if self.proc is not None and self.proc.poll() is not None:
                raise ObsHarnessError(f"OBS exited ({self.proc.returncode}) while waiting for {what}")
            time.sleep(interval)
        raise ObsHarnessError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")

    # --- processes ---------------------------------------------------------------------
    def engine_pids(self) -> list[int]:
        """PIDs of engine processes started by this OBS (found by the environment tag)."""
        pids = _pids_with_env(f"{TAG_VAR}={self.tag}", "obs_faceswap.engine")
        self.seen_engine_pids.update(pids)
        return pids

    def engines_after_exit(self, grace: float = 5.0) -> list[int]:
        """Engine processes still alive ``grace`` seconds after OBS is gone (an engine notices
        its parent's exit on stdin EOF and shuts down its models: that takes a moment, and
        runs below OBS's priority; still being there after the grace period is a leak)."""
        deadline = time.monotonic() + grace
        while (pids := self.engine_pids()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return pids

    def stop(self, timeout: float = 45.0) -> int:
        """Close OBS cleanly, then SIGKILL after ``timeout`` s; kills Xvfb.

        The clean way is the test helper's ``obs_faceswap_test.quit`` hotkey (the main
        window closes on the UI thread, as with its close button); SIGINT is only the
        fallback, because OBS 29 closes the window inside its SIGINT handler, which crashes
        or deadlocks now and then (see tests/e2e/obs_test_helper.py).

        Returns OBS's exit code; :attr:`killed` says whether it had to be killed.
        """
        if self.proc is not None and self.proc.poll() is None:
            asked = False
            if self.client is not None and HELPER_SCRIPT in self.config.scripts:
                with contextlib.suppress(Exception):
                    self.call("TriggerHotkeyByName", {"hotkeyName": "obs_faceswap_test.quit"})
                    asked = True
            if self.client is not None:
                with contextlib.suppress(Exception):
                    self.client.disconnect()
                self.client = None
            if asked:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=timeout)
            if self.proc.poll() is None:
                if asked:
                    self.killed = True  # the clean exit hung
                    self.backtrace(attach=True)
                else:
                    self.proc.send_signal(signal.SIGINT)
                    try:
                        self.proc.wait(timeout=timeout)
                    except subprocess.TimeoutExpired:
                        self.killed = True
                        self.backtrace(attach=True)
            if self.proc.poll() is None:
                self._kill_group(self.proc)
                self.proc.wait(timeout=10)
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.disconnect()
            self.client = None
        if self.proc is not None:
            self.exit_code = self.proc.returncode
            if self.exit_code is not None and self.exit_code < 0 and not self.killed:
                self.backtrace(attach=False)
        self._stop_xvfb()
        return self.exit_code if self.exit_code is not None else -1

    def backtrace(self, attach: bool) -> str:
        """All threads' stacks of the hung OBS (``attach``) or of its core dump, saved to
        ``workdir/backtrace.txt``; "" when gdb or the core file is not there."""
        gdb, obs = shutil.which("gdb"), shutil.which("obs")
        if not gdb or not obs or self.proc is None:
            return ""
        if attach:
            args = [gdb, "-q", "-batch", "-p", str(self.proc.pid), "-ex", "thread apply all bt 25"]
        else:
            cores = sorted(self.workdir.glob("core*"), key=lambda p: p.stat().st_mtime)
            if not cores:
                return ""
            args = [gdb, "-q", "-batch", obs, str(cores[-1]), "-ex", "thread apply all bt 25"]
        try:
            text = subprocess.run(args, capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""
        (self.workdir / "backtrace.txt").write_text(text)
        return text

    def exit_report(self, lines: int = 40) -> str:
        """What to print when OBS did not exit cleanly: the end of its own output (where
        Qt, glibc and Python write why they abort) and the backtrace gdb took, if any."""
        parts = []
        out = self.workdir / "obs.stdout"
        if out.exists():
            tail = out.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            parts.append("--- end of OBS's output ---\n" + "\n".join(tail))
        bt = self.workdir / "backtrace.txt"
        if bt.exists():
            parts.append("--- backtrace ---\n" + bt.read_text(encoding="utf-8", errors="replace")[:12000])
        else:
            parts.append("(no backtrace: gdb or the core file is missing)")
        return "\n".join(parts)

    def kill(self) -> None:
        """Kill OBS, Xvfb and every engine this OBS started (used on failures and timeouts)."""
        if self.proc is not None and self.proc.poll() is None:
            self.killed = True
            self._kill_group(self.proc)
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=10)
        self._stop_xvfb()
        self.kill_engines()

    def kill_engines(self) -> list[int]:
        pids = self.engine_pids()
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return pids

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)

    def _stop_xvfb(self) -> None:
        if self.xvfb is not None and self.xvfb.poll() is None:
            self.xvfb.terminate()
            try:
                self.xvfb.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill_group(self.xvfb)

    # --- logs --------------------------------------------------------------------------
    def log_path(self) -> Path | None:
        logs = sorted((self.home / ".config" / "obs-studio" / "logs").glob("*.txt"), key=lambda p: p.stat().st_mtime)
        return logs[-1] if logs else None

    def log_text(self) -> str:
        p = self.log_path()
        return p.read_text(encoding="utf-8", errors="replace") if p else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def watchdog(self, seconds: float) -> threading.Timer:
        """Kill everything after ``seconds`` (a hung OBS must fail the run, not stall CI)."""
        t = threading.Timer(seconds, self.kill)
        t.daemon = True
        t.start()
        return t


def _allow_core_dumps() -> None:
    # A crash at exit then leaves a core file in the work directory for Obs.backtrace().
    import resource

    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _read_with_timeout(fd: int, timeout: float) -> bytes:
    import select

    ready, _, _ = select.select([fd], [], [], timeout)
    return os.read(fd, 64) if ready else b""


def _pids_with_env(marker: str, cmd_part: str) -> list[int]:
    found = []
    needle = marker.encode()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
            if cmd_part.encode() not in cmd:
                continue
            if needle in (d / "environ").read_bytes().split(b"\0"):
                found.append(int(d.name))
        except OSError:
            continue
    return found


@contextlib.contextmanager
def running_obs(workdir: Path, config: ObsConfig, budget_s: float = 240.0) -> Iterator[Obs]:
    """Start OBS, yield it, and always stop it (and anything it left behind)."""
    obs = Obs(workdir, config)
    timer = obs.watchdog(budget_s)
    try:
        obs.start()
        yield obs
    finally:
        timer.cancel()
        try:
            obs.stop()
        finally:
            obs.kill_engines()
