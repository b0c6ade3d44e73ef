"""obs-faceswap: real-time face swapping for OBS Studio and the command line.

This package's top level stays import-light on purpose: the OBS script imports
``obs_faceswap.obs`` inside OBS's own Python, where numpy, OpenCV and onnxruntime
are not installed. Import the engine from its modules (``obs_faceswap.pipeline``).
"""

__version__ = "0.1.0"
