"""Small real processors the engine tests inject at the processor seam.

The engine imports this module (``--processor tests.engine_processors:invert``):
each factory is called like ``Pipeline(config, store, source)``. Behaviour is steered by
environment variables the test passes through ``EngineClient(env=...)``:

* ``OFS_TEST_RECT="x0,y0,x1,y1"`` -- the rectangle :class:`Invert` inverts (default: an odd,
  unaligned box in the middle of the frame, so alignment to chroma blocks is exercised);
* ``OFS_TEST_SLEEP`` -- seconds to sleep in every ``process`` (a slow engine);
* ``OFS_TEST_HANG_IF_EXISTS`` -- while this file exists, ``process`` never returns (a hang);
* ``OFS_TEST_FAIL_LOAD`` -- raise this message as a :class:`ModelCorruptError` when built;
* ``OFS_TEST_LOG`` -- a file that gets one line per processed frame (``timestamp``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from obs_faceswap.config import PipelineConfig
from obs_faceswap.errors import ModelCorruptError, NoFaceError
from obs_faceswap.swap import SwapperContext, create_swapper
from obs_faceswap.types import FrameReport


def build_swapper(config: PipelineConfig, store: Any) -> None:
    """Build (and close) the configured swapper through the real factory, as the pipeline does, so
    its errors reach the engine's status; the photo swapper is skipped (it needs the model store)."""
    if config.swapper.kind != "photo":
        create_swapper(config.swapper, SwapperContext(store)).close()


def default_rect(width: int, height: int) -> tuple[int, int, int, int]:
    """The rectangle inverted when ``OFS_TEST_RECT`` is unset (odd coordinates on purpose)."""
    return width // 4 + 1, height // 3 + 1, width // 2 + 3, (2 * height) // 3 - 1


class Invert:
    """Inverts one rectangle of every frame: a real, checkable change."""

    provider = "TestProvider"

    def __init__(self, config: PipelineConfig, store: Any, source: str | None) -> None:
        fail = os.environ.get("OFS_TEST_FAIL_LOAD")
        if fail:
            raise ModelCorruptError(fail)
        build_swapper(config, store)
        self.config = config
        self.store = store
        self.set_source(source)
        rect = os.environ.get("OFS_TEST_RECT")
        self.rect = tuple(int(v) for v in rect.split(",")) if rect else None
        self.sleep = float(os.environ.get("OFS_TEST_SLEEP", "0") or 0)
        hang = os.environ.get("OFS_TEST_HANG_IF_EXISTS")
        self.hang = Path(hang) if hang else None
        log = os.environ.get("OFS_TEST_LOG")
        self.log = Path(log) if log else None

    def set_source(self, source: str | Path | None) -> None:
        if source is not None and "noface" in Path(source).name:
            raise NoFaceError(f"no face found in {source}")
        self.source = source

    def update(self, config: PipelineConfig) -> None:
        build_swapper(config, self.store)
        self.config = config

    def process(self, frame: np.ndarray, timestamp: float | None = None) -> tuple[np.ndarray, FrameReport]:
        if self.sleep:
            time.sleep(self.sleep)
        while self.hang is not None and self.hang.exists():
            time.sleep(0.05)
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = self.rect or default_rect(w, h)
        out = frame.copy()
        out[y0:y1, x0:x1] = 255 - out[y0:y1, x0:x1]
        if self.log is not None:
            with open(self.log, "a") as f:
                f.write(f"{timestamp}\n")
        return out, FrameReport(changed_xyxy=(x0, y0, x1, y1))

    def close(self) -> None:
        pass


def invert(config: PipelineConfig, store: Any, source: str | None) -> Invert:
    return Invert(config, store, source)


class Unchanged(Invert):
    """Reports that nothing changed (no face in view)."""

    def process(self, frame: np.ndarray, timestamp: float | None = None) -> tuple[np.ndarray, FrameReport]:
        return frame, FrameReport(changed_xyxy=None)


def unchanged(config: PipelineConfig, store: Any, source: str | None) -> Unchanged:
    return Unchanged(config, store, source)


class Raises(Invert):
    """Fails on every frame."""

    def process(self, frame: np.ndarray, timestamp: float | None = None) -> tuple[np.ndarray, FrameReport]:
        raise RuntimeError("processor exploded")


def raises(config: PipelineConfig, store: Any, source: str | None) -> Raises:
    return Raises(config, store, source)
