#!/bin/sh
# Makes the virtual environment of the peers that the benchmarks and a few specs compare against:
# PyTorch 2.x (eager and torch.compile on the CPU) with torchvision, TensorBoard (its own reader checks
# our event files) and PyTorch Lightning (its hook order and checkpoint layout). None of them is a
# dependency of the library or of the suite's pass/fail: specs that need a peer report themselves
# pending without it.
#
#   bench/setup_peers.sh [--tensorboard-only] [VENV]     (VENV defaults to .venv-peers in the repository)
#
# Versions are pinned so that figures can be reproduced. PyPI's torch wheel for Linux carries CUDA
# libraries (several GB); --tensorboard-only installs just TensorBoard (what CI needs, about 60 MB).
set -eu
cd "$(dirname "$0")/.."

only_tb=0
if [ "${1:-}" = "--tensorboard-only" ]; then only_tb=1; shift; fi
VENV="${1:-.venv-peers}"

TENSORBOARD="tensorboard==2.21.0"
TORCH="torch==2.15.0"
# 0.29 is the newest torchvision on PyPI; it needs torch >= 2.14 (its C++ ops use PyTorch's stable ABI)
TORCHVISION="torchvision==0.29.2"
LIGHTNING="pytorch-lightning==2.6.6"

if ! [ -x "$VENV/bin/python" ]; then
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    # Debian's python3 needs its venv package; pyenv's and others' have it built in.
    SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends python3-venv
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
if [ "$only_tb" = 1 ]; then
  "$VENV/bin/python" -m pip install --quiet "$TENSORBOARD"
else
  "$VENV/bin/python" -m pip install --quiet "$TENSORBOARD" "$TORCH" "$TORCHVISION" "$LIGHTNING"
fi
"$VENV/bin/python" - <<'PY'
import importlib
for name in ("tensorboard", "torch", "torchvision", "pytorch_lightning"):
    try:
        print(f"{name} {importlib.import_module(name).__version__}")
    except ImportError:
        print(f"{name}: not installed")
PY
