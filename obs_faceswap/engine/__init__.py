"""The engine process and the client the OBS filter uses to drive it.

* :mod:`~obs_faceswap.engine.client` -- :class:`EngineClient`, standard library only (it runs
  inside OBS's embedded Python);
* :mod:`~obs_faceswap.engine.protocol`, :mod:`~obs_faceswap.engine.shm` -- the wire format and
  shared memory, standard library only;
* :mod:`~obs_faceswap.engine.server` -- ``python -m obs_faceswap.engine``, the process that runs
  the pipeline (numpy, OpenCV, onnxruntime);
* :mod:`~obs_faceswap.engine.frames` -- OBS frame planes ↔ BGR (numpy, OpenCV).

This file imports nothing on purpose: importing the client must not pull numpy into OBS.
"""
