#!/usr/bin/env bash
# GPU check (see bench/gpu_check.py): estimate vs measured peak and tokens/s, NVML seam, real OOM back-off.
#   bash bench/gpu_check.sh --wheels /path/to/wheels [--out gpu_check.json] [--work DIR] [--dry-run]
# Needs a Python with PyTorch (CUDA build) as $PYTHON or python3; everything else comes from --wheels.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-python3}"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do  # a wrong folder is said before anything slow runs
  if [[ "${args[i]}" == "--wheels" && ! -d "${args[i + 1]:-}" ]]; then
    echo "gpu_check: --wheels ${args[i + 1]:-}: no such folder" >&2
    exit 2
  fi
done
if ! command -v "$py" >/dev/null 2>&1; then
  echo "gpu_check: no Python found ($py); set PYTHON=/path/to/python (the one with PyTorch)" >&2
  exit 2
fi
if ! "$py" -c "import torch" >/dev/null 2>&1; then
  echo "gpu_check: $py cannot import torch; this check expects PyTorch already installed (CUDA build)" >&2
  exit 2
fi
exec timeout --kill-after=20 480 "$py" "$here/gpu_check.py" "$@"
