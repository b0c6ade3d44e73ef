"""The OBS Studio side of obs-faceswap (standard library only: runs in OBS's own Python).

``obs_faceswap_filter.py`` is the file users add under Tools → Scripts. The rest:
``structs`` (versioned libobs layouts), ``libobs`` (ctypes binding), ``registry`` (source
types and C callbacks kept alive across script reloads), ``filters`` (the "Face Swap" and
"Face Swap (any source)" filters), ``settings`` / ``properties`` (settings table and
properties dialog), ``obs_logging`` (Python logging into OBS's log), ``script`` (load/unload).
"""
