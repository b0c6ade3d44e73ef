"""OBS script used by ``obs-faceswap obs-demo`` when there is no display (standard library only).

OBS starts recording (``--startrecording``); obs-demo then creates files this script polls
for: ``show_filters_when`` opens the Filters dialog of the demo's source (for a screenshot),
``stop_when`` stops the recording (so does ``max_seconds``). Once the recording has stopped the
script closes the main window on OBS's UI thread — what its close button does, the one clean
way to quit OBS 29 from a script (SIGINT can deadlock it). Linux only, like the headless demo.
"""

import ctypes
import os

import obspython as obs

_TASK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_OBS_TASK_UI = 0
_state: dict[str, object] = {}


def _close_main_window(_param: object) -> None:
    try:
        frontend = ctypes.CDLL("libobs-frontend-api.so.0")
        frontend.obs_frontend_get_main_window.restype = ctypes.c_void_p
        window = frontend.obs_frontend_get_main_window()
        qt = None
        for lib in ("libQt6Widgets.so.6", "libQt5Widgets.so.5"):
            try:
                qt = ctypes.CDLL(lib)
                break
            except OSError:
                continue
        if qt is None:
            raise OSError("Qt widgets library not found")
        close = qt._ZN7QWidget5closeEv  # bool QWidget::close()
        close.argtypes = [ctypes.c_void_p]
        close.restype = ctypes.c_bool
        close(window)
    except Exception as e:  # noqa: BLE001 - logged for the user; obs-demo then stops OBS itself
        obs.blog(obs.LOG_ERROR, f"[obs-faceswap demo] could not close OBS: {e!r}")


def _open_filters(_param: object) -> None:
    # Through ctypes.CDLL, which releases the GIL during the call: the dialog waits for the
    # graphics thread, which may be waiting for the GIL (a Python filter) — a deadlock otherwise.
    try:
        libobs = ctypes.CDLL("libobs.so.0")
        libobs.obs_get_source_by_name.restype = ctypes.c_void_p
        libobs.obs_get_source_by_name.argtypes = [ctypes.c_char_p]
        libobs.obs_source_release.argtypes = [ctypes.c_void_p]
        frontend = ctypes.CDLL("libobs-frontend-api.so.0")
        frontend.obs_frontend_open_source_filters.argtypes = [ctypes.c_void_p]
        source = libobs.obs_get_source_by_name(str(_state["source"]).encode())
        if source:
            frontend.obs_frontend_open_source_filters(source)
            libobs.obs_source_release(source)
    except Exception as e:  # noqa: BLE001 - logged; the demo goes on without the dialog
        obs.blog(obs.LOG_ERROR, f"[obs-faceswap demo] could not open the filters: {e!r}")


def _queue_ui(task: str) -> None:
    libobs = ctypes.CDLL("libobs.so.0")
    libobs.obs_queue_task.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_bool]
    libobs.obs_queue_task.restype = None
    libobs.obs_queue_task(_OBS_TASK_UI, ctypes.cast(_state[task], ctypes.c_void_p), None, False)  # type: ignore[arg-type]


def _tick() -> None:
    # Polled every 250 ms: obs-demo drives the steps through files in its output directory.
    trigger = str(_state["trigger"])
    if trigger and not _state.get("shown") and os.path.exists(trigger):
        _state["shown"] = True
        obs.blog(obs.LOG_INFO, "[obs-faceswap demo] opening the Face Swap filter's properties")
        _queue_ui("filters")
    stop = str(_state["stop"])
    if not _state.get("stopping") and ((stop and os.path.exists(stop)) or obs.os_gettime_ns() > _state["deadline"]):
        _state["stopping"] = True
        obs.blog(obs.LOG_INFO, "[obs-faceswap demo] stopping the recording")
        obs.obs_frontend_recording_stop()
    elif _state.get("stopping") and not _state.get("closing") and not obs.obs_frontend_recording_active():
        _state["closing"] = True
        obs.blog(obs.LOG_INFO, "[obs-faceswap demo] recording stopped; closing OBS")
        _queue_ui("close")


def script_description() -> str:
    return "obs-faceswap obs-demo: record for a few seconds, then quit."


def script_load(settings: object) -> None:
    _state["close"] = _TASK(_close_main_window)
    _state["filters"] = _TASK(_open_filters)
    _state["source"] = obs.obs_data_get_string(settings, "source")
    _state["trigger"] = obs.obs_data_get_string(settings, "show_filters_when")
    _state["stop"] = obs.obs_data_get_string(settings, "stop_when")
    seconds = obs.obs_data_get_int(settings, "max_seconds") or 120
    _state["deadline"] = obs.os_gettime_ns() + seconds * 1_000_000_000
    obs.timer_add(_tick, 250)
