"""One exception tree for the whole project.

Every error raised on purpose derives from :class:`FaceSwapError`, so callers at the
edges (the command line, the engine process, the OBS filter) can catch one type, show
its message to the user and carry on. Messages say what went wrong *and* what to do.
"""

from __future__ import annotations


class FaceSwapError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(FaceSwapError, ValueError):
    """A setting has an invalid value (bad enum name, out-of-range number, ...)."""


class ModelError(FaceSwapError):
    """A model file cannot be used."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A model file is not in any of the places the store looks."""


class ModelCorruptError(ModelError):
    """A model file exists but its size or sha256 differs from the manifest."""


class ModelLoadError(ModelError):
    """onnxruntime (or the parser) refused a model file."""


class DownloadError(ModelError):
    """Fetching a model from its public URL failed."""


class ProviderError(FaceSwapError):
    """No requested execution provider could run the model."""


class InputError(FaceSwapError):
    """An input file, image, frame or camera cannot be used."""


class NoFaceError(InputError):
    """A source photo (or reference photo) contains no detectable face."""


class FrameFormatError(InputError):
    """A frame has a pixel format, shape or dtype this project does not handle."""


class EngineError(FaceSwapError):
    """The engine process failed to start, crashed, hung or reported an error."""
