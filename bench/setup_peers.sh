#!/bin/sh
# Makes the virtual environment of the peers that the benchmarks and a few specs compare against:
# PyTorch 2.x (eager and torch.compile on the CPU) with torchvision, TensorBoard (its own reader checks
# our event files) and PyTorch Lightning (its hook order and checkpoint layout). None of them is a
# dependency of the library or of the suite's pass/fail: specs that need a peer report themselves
# pending without it.
#
#   bench/setup_peers.sh [--tensorboard-only | --onednn3] [VENV]   (VENV defaults to .venv-peers in the repository)
#
# Versions are pinned so that figures can be reproduced. PyPI's torch wheel for Linux carries CUDA
# libraries (several GB); --tensorboard-only installs just TensorBoard (what CI needs, about 60 MB).
# --onednn3 installs just oneDNN 3.x (PyPI's onednn-devel: headers in VENV/include, libdnnl.so.3 and
# the SYCL, TBB and OpenCL runtimes it needs in VENV/lib, about 2 GB) to build the library against
# instead of Debian's 2.6: cmake -DLIGHTNING_DNNL_ROOT=VENV (docs/development.md).
set -eu
cd "$(dirname "$0")/.."

mode=all
case "${1:-}" in
  --tensorboard-only) mode=tensorboard; shift ;;
  --onednn3) mode=onednn3; shift ;;
esac
VENV="${1:-.venv-peers}"

TENSORBOARD="tensorboard==2.21.0"
TORCH="torch==2.15.0"
# 0.29 is the newest torchvision on PyPI; it needs torch >= 2.14 (its C++ ops use PyTorch's stable ABI)
TORCHVISION="torchvision==0.29.2"
LIGHTNING="pytorch-lightning==2.6.6"
# oneDNN 3.13.2 (PyPI numbers it by Intel's oneAPI release), with the runtimes it was built for
ONEDNN="onednn-devel==2026.1.0 onednn==2026.1.0 dpcpp-cpp-rt==2026.2.0 intel-opencl-rt==2026.2.0"

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
if [ "$mode" = onednn3 ]; then
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install --quiet $ONEDNN
  grep -h 'define DNNL_VERSION_M[AI]' "$VENV/include/oneapi/dnnl/dnnl_version.h"
  echo "oneDNN 3 in $(cd "$VENV" && pwd): cmake -DLIGHTNING_DNNL_ROOT=$(cd "$VENV" && pwd)"
  exit 0
elif [ "$mode" = tensorboard ]; then
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
