"""Test-only OBS script loaded next to obs_faceswap_filter.py by the end-to-end tests.

obs-websocket 5 cannot reload a script or quit OBS, so this script registers two frontend
hotkeys that tests trigger with ``TriggerHotkeyByName``; each queues a task on OBS's UI
thread:

* ``obs_faceswap_test.reload`` calls ``obs_script_reload`` on the Face Swap script — what
  the "Reload Scripts" button in Tools → Scripts does (same function, same thread);
* ``obs_faceswap_test.quit`` closes the main window — what the window's close button does.
  SIGINT is not used for a clean exit: OBS 29.0.2 closes its window *inside* the SIGINT
  handler, and when the signal interrupts the UI thread while it paints or talks to the X
  server, OBS crashes or deadlocks (seen in the tests' backtraces: ``close_helper`` called
  from ``<signal handler called>`` inside ``xcb_flush``).
"""

import ctypes
import sys

import obspython as obs

_TASK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_OBS_TASK_UI = 0
_state = {}


def _reload_face_swap(_param):
    try:
        module = sys.modules["obs_faceswap_filter"]
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype = ctypes.c_void_p
        get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        script = get_pointer(module.__script_data__, None)
        lib = ctypes.CDLL("libobs-scripting.so.1")
        lib.obs_script_reload.restype = ctypes.c_bool
        lib.obs_script_reload.argtypes = [ctypes.c_void_p]
        ok = lib.obs_script_reload(script)
        obs.blog(obs.LOG_INFO, f"[obs-faceswap-test] obs_script_reload -> {ok}")
    except Exception as e:  # reported in the log the test reads
        obs.blog(obs.LOG_ERROR, f"[obs-faceswap-test] reload failed: {e!r}")


def _close_main_window(_param):
    try:
        frontend = ctypes.CDLL("libobs-frontend-api.so.0")
        frontend.obs_frontend_get_main_window.restype = ctypes.c_void_p
        window = frontend.obs_frontend_get_main_window()
        qt = ctypes.CDLL("libQt5Widgets.so.5")
        close = qt._ZN7QWidget5closeEv  # bool QWidget::close()
        close.argtypes = [ctypes.c_void_p]
        close.restype = ctypes.c_bool
        close(window)
    except Exception as e:
        obs.blog(obs.LOG_ERROR, f"[obs-faceswap-test] quit failed: {e!r}")


def _queue_ui_task(task):
    libobs = ctypes.CDLL("libobs.so.0")
    libobs.obs_queue_task.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_bool]
    libobs.obs_queue_task.restype = None
    libobs.obs_queue_task(_OBS_TASK_UI, ctypes.cast(task, ctypes.c_void_p), None, False)


def _on_reload_hotkey(pressed):
    if pressed:
        _queue_ui_task(_state["task"])


def _on_quit_hotkey(pressed):
    if pressed:
        _queue_ui_task(_state["quit"])


def script_description():
    return "obs-faceswap end-to-end test helper (reload hotkey)."


def script_load(settings):
    _state["task"] = _TASK(_reload_face_swap)
    _state["quit"] = _TASK(_close_main_window)
    _state["hotkey"] = obs.obs_hotkey_register_frontend(
        "obs_faceswap_test.reload", "obs-faceswap test: reload the Face Swap script", _on_reload_hotkey
    )
    _state["quit_hotkey"] = obs.obs_hotkey_register_frontend(
        "obs_faceswap_test.quit", "obs-faceswap test: close OBS like the window's close button", _on_quit_hotkey
    )
