#!/usr/bin/env bash
# Install obs-faceswap for OBS Studio on Linux or macOS.
#
#   packaging/install.sh [--prefix DIR] [--cpu|--cuda] [--models DIR]
#
# Creates a Python environment for the engine (OBS's own Python needs nothing installed),
# installs obs-faceswap from this checkout into it, fetches the default models that have a
# public download, records the engine interpreter for the OBS script, and prints the path of
# the script to add in OBS -> Tools -> Scripts.
set -euo pipefail

prefix="${OBS_FACESWAP_HOME:-$HOME/.local/share/obs-faceswap}"
extra=""
models=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --cpu) extra=cpu; shift ;;
    --cuda) extra=cuda; shift ;;
    --models) models="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

src="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 12)))' 2>/dev/null; then
  echo "install.sh: needs Python 3.10-3.12 (found: $("$py" --version 2>&1)); set PYTHON=/path/to/python3.x" >&2
  exit 2
fi
if [ -z "$extra" ]; then
  # onnxruntime-gpu needs an NVIDIA driver; the engine falls back to the CPU if CUDA fails
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then extra=cuda; else extra=cpu; fi
fi

echo "obs-faceswap: installing into $prefix/venv (onnxruntime: $extra)"
"$py" -m venv "$prefix/venv"
"$prefix/venv/bin/python" -m pip install -q --upgrade pip
here="$(cd "$(dirname "$0")" && pwd)"
wheel="$(ls "$here"/obs_faceswap-*.whl 2>/dev/null | head -1 || true)"
# In a release bundle the wheel sits beside this script; in a checkout, install the checkout.
"$prefix/venv/bin/python" -m pip install -q "${wheel:-$src}[$extra]"
if [ -d "$here/models" ]; then  # a release bundle's converted models: straight into the user cache
  cache="$("$prefix/venv/bin/python" -c 'from obs_faceswap.models import default_cache_dir; print(default_cache_dir() / "models")')"
  mkdir -p "$cache" && cp "$here"/models/*.onnx "$cache"/
fi

fetch_args=()
[ -n "$models" ] && fetch_args=(--models "$models")
if ! "$prefix/venv/bin/obs-faceswap" models fetch "${fetch_args[@]}"; then
  echo "obs-faceswap: some models could not be downloaded (see above); place them in a directory" >&2
  echo "              and set it as 'Models directory' in the filter, or run: obs-faceswap models list" >&2
fi

script="$("$prefix/venv/bin/python" -c 'import pathlib, obs_faceswap.obs as o; print(pathlib.Path(o.__file__).parent / "obs_faceswap_filter.py")')"

# Adds the script to OBS's current scene collection and records the engine interpreter
# (close OBS first; `obs-faceswap uninstall-obs` undoes it).
if "$prefix/venv/bin/obs-faceswap" install-obs; then
  echo
  echo "Done. Start OBS, right-click your camera -> Filters -> + -> Face Swap."
else
  echo "$prefix/venv/bin/python" > "$(dirname "$script")/engine_python.txt"
  cat <<MSG

Done, one click left: in OBS Studio, Tools -> Scripts -> "+" and choose
  $script
then add the "Face Swap" filter to your camera (right-click the source -> Filters).
The filter runs the engine with $prefix/venv/bin/python.
MSG
fi
"$prefix/venv/bin/obs-faceswap" doctor || echo "obs-faceswap: see the fixes above (obs-faceswap doctor)"
