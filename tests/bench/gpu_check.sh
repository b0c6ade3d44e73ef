#!/usr/bin/env bash
# The neural swap path on an NVIDIA GPU in one command (issue 7): per-stage ms, FPS, GPU busy %.
#
# Here (a machine with the project's venv and ../shared), once, to make what travels:
#     tests/bench/gpu_check.sh --prepare      # .gpu-data/ (models + media it needs, ~20 MB) and .whl/
# On the GPU machine (the device tool: carry .gpu-data and .whl), from the repository root:
#     tests/bench/gpu_check.sh [--sizes 720p,1080p] [--variants cuda,cuda+graph,tensorrt-fp16]
# It prints one table (card, variant, provider, per-stage ms, FPS, GPU busy %) and writes
# ${OUT:-/tmp}/gpu_check.json. Budget: about 3-5 minutes on an H200 (TensorRT engine builds included).
set -uo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" == "--prepare" ]]; then
    set -e
    models=${OBS_FACESWAP_MODELS:-../shared/models}
    media=${OBS_FACESWAP_MEDIA:-../shared/media}
    mkdir -p .gpu-data/models .gpu-data/media .whl
    exclude=$(git rev-parse --git-path info/exclude)
    for d in /.gpu-data/ /.whl/; do grep -qx "$d" "$exclude" 2>/dev/null || echo "$d" >> "$exclude"; done
    # what the pipeline needs besides the stand-in: detector, mesh, canonical face, clip, source photo
    python3 - "$models" "$media" <<'EOF'
import shutil, sys, tomllib
from pathlib import Path
dirs = {"models": Path(sys.argv[1]), "media": Path(sys.argv[2])}
manifest = tomllib.loads(Path("obs_faceswap/data/manifest.toml").read_text())
want = {"yunet", "yunet_320", "mesh468", "mesh478", "canonical_face", "obama", "astronaut"}
for kind, section in manifest.items():
    for name, entry in section.items() if kind in dirs else ():
        if name in want:
            for found in dirs[kind].rglob(entry["file"]):
                dest = Path(".gpu-data", kind, found.relative_to(dirs[kind]))
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(found, dest)
                print("  ", dest)
EOF
    du -sh .gpu-data
    # onnxruntime-gpu is the one package the GPU image lacks (it has numpy, OpenCV, numba, onnx and the
    # CUDA 13 / cuDNN wheels onnxruntime-gpu 1.31 needs). But its wheel is 255 MB (1.31.1, measured):
    # over the 64 MiB one device call can carry. Without it the check stops and says so.
    echo "wheels (if a build under ~50 MB exists): python3 -m pip download --no-deps --only-binary=:all:" \
         "--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 -d .whl onnxruntime-gpu"
    exit 0
fi

PY=${PYTHON:-python3}
if compgen -G ".whl/*.whl" > /dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "installing .whl/*.whl failed"; exit 3; }
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
[[ -d .gpu-data/models ]] && export OBS_FACESWAP_MODELS=${OBS_FACESWAP_MODELS:-$PWD/.gpu-data/models}
[[ -d .gpu-data/media ]] && export OBS_FACESWAP_MEDIA=${OBS_FACESWAP_MEDIA:-$PWD/.gpu-data/media}
export OBS_FACESWAP_MODELS=${OBS_FACESWAP_MODELS:-$PWD/../shared/models}
export OBS_FACESWAP_MEDIA=${OBS_FACESWAP_MEDIA:-$PWD/../shared/media}
export PYTHONUNBUFFERED=1
export OBS_FACESWAP_CACHE=${OBS_FACESWAP_CACHE:-/tmp/obs-faceswap-cache}  # no platformdirs needed
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
$PY -c "import onnxruntime as o, cv2, numba, numpy; print('onnxruntime', o.__version__, o.get_available_providers())" \
    || { echo "the project's dependencies are missing here (onnxruntime, opencv, numba, numpy)"; exit 3; }
timeout "${GPU_CHECK_TIMEOUT:-390}" $PY -m tests.bench.gpu_check --json "${OUT:-/tmp}/gpu_check.json" "$@"
