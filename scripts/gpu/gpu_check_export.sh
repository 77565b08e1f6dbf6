#!/usr/bin/env bash
# GPU check for `prnet export` (TensorRT, ORT CUDA, deployment form on CUDA). Run from the repository root:
#   bash scripts/gpu/gpu_check_export.sh
# Optional: a folder of wheels to install first (e.g. onnxslim, tensorrt-cu12*) in $PRNET_WHEELS.
set -u
if [ -n "${PRNET_WHEELS:-}" ] && ls "$PRNET_WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/prnet_site "$PRNET_WHEELS"/*.whl \
    && export PYTHONPATH="/tmp/prnet_site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
if ! command -v nvidia-smi >/dev/null 2>&1; then echo "no nvidia-smi: this machine has no NVIDIA driver"; fi
python3 - <<'PY'
import importlib.util as u
for m in ("tensorrt", "onnxruntime", "onnxslim", "onnx", "typer", "rich", "cv2"):
    print(f"{m:12s}", "present" if u.find_spec(m) else "MISSING")
PY
python3 -m scripts.gpu.gpu_check_export
