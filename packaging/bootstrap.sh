#!/usr/bin/env bash
# Install ftwiz into ./.venv on a fresh Linux machine, then run the wizard or the tests.
#
#   bash packaging/bootstrap.sh run     # install, then open the wizard (offline demo by default)
#   bash packaging/bootstrap.sh test    # install with the dev extra, then run the whole test suite
#
# PyTorch: on a machine with an NVIDIA driver (nvidia-smi answers) pip's default CUDA build is used.
# Without one we pin a CPU build (set FTWIZ_TORCH to override, e.g. FTWIZ_TORCH="torch==2.5.1").
# llama-cpp-python is compiled from source by pip (a few minutes, once); CMAKE_ARGS is honoured, e.g.
# CMAKE_ARGS="-DGGML_CUDA=on" for a CUDA build. GGML_NATIVE=OFF keeps the build portable.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
shift || true
PY="${PYTHON:-python3}"
VENV="${FTWIZ_VENV:-.venv}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check "$@"; }
pip_install -q --upgrade pip setuptools wheel

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if [ -n "${FTWIZ_TORCH:-}" ]; then
    pip_install -q "$FTWIZ_TORCH"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    pip_install -q "torch>=2.4"
  else
    pip_install -q "torch==2.13.0" || pip_install -q "torch>=2.4"
  fi
fi

export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
case "$mode" in
  run)
    pip_install -q -e .
    exec "$VENV/bin/ftwiz" "$@"
    ;;
  test)
    pip_install -q -e ".[dev]"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  install)
    pip_install -q -e .
    echo "installed: $VENV/bin/ftwiz"
    ;;
  *)
    echo "usage: bash packaging/bootstrap.sh [run|test|install] [args...]" >&2
    exit 2
    ;;
esac
