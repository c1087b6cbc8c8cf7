#!/bin/bash
# The whole GPU check in one call of the device tool (at most 10 minutes), after tools/gpu_check/pack.sh
# prepared .gpu/ here:
#   run(command = "bash tools/gpu_check/run.sh", carry = [".gpu"], timeout_s = 540)
# Every stage writes its log under $OUT and the next one runs whatever the last gave, so one call
# reports everything; $OUT/summary.txt lists each stage's exit status and time. The stages share a
# deadline (DEADLINE seconds, under the tool's 540-second call): each runs under a timeout of what is
# left, and those that find no time left are listed as skipped, so the call always returns its logs.
# They run in the order of what matters most: the specs, then the graphed steps' figures, then the rest.
#   1. unpack .gpu/debs into $ROOT with dpkg -x (never into /: the machine's own libraries stay)
#   2. build lightning with the CUDA module there; on failure use the build pack.sh made (.gpu/build)
#   3. the GPU: nvidia-smi, and what lightning says of it (its device block)
#   4. the specs that need a GPU (device, cuda, cuda_graph, accelerators, data_device_batches) with busted
#   5. the reference model trained a few hundred steps on the carried CIFAR-10 batch, on the GPU
#   6. bench/train_step.lua on the GPU beside this machine's PyTorch (eager, channels_last): our step as a
#      CUDA graph's replay (--cuda_graph) at batch 64 and 256, in float32 and in bf16-mixed (against
#      PyTorch's bf16 autocast)
#   7. airbench94 on the GPU, our recipe
#   8. our eager step (no graph) at batch 64 and 256
#   9. bench/airbench_torch.py --device cuda (eager, compiled)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu_check_out}
ROOT=${ROOT:-/tmp/gpu_root}
STEPS=${STEPS:-300}
DEADLINE=${DEADLINE:-525}
mkdir -p "$OUT" "$ROOT"
summary="$OUT/summary.txt"
: > "$summary"

# stage NAME LOG CMD...: runs CMD with its output in $OUT/LOG, records status and seconds
stage() {
  local name=$1 log=$2; shift 2
  local start=$SECONDS left=$((DEADLINE - SECONDS))
  if [ "$left" -le 5 ]; then
    printf '%-12s skipped: the deadline (%ds) has passed\n' "$name" "$DEADLINE" | tee -a "$summary"
    return 124
  fi
  echo "== $name: $*" >> "$OUT/$log"
  if [ "$(type -t "$1")" = function ]; then "$@" >> "$OUT/$log" 2>&1; else timeout "$left" "$@" >> "$OUT/$log" 2>&1; fi
  local rc=$?
  printf '%-12s rc=%-3d %4ds  (%s)\n' "$name" "$rc" $((SECONDS - start)) "$log" | tee -a "$summary"
  return $rc
}

unpack() {
  for deb in .gpu/debs/*.deb; do dpkg -x "$deb" "$ROOT" || return 1; done
  [ -e "$ROOT/usr/bin/lua" ] || ln -s lua5.4 "$ROOT/usr/bin/lua"
}
stage unpack setup.log unpack

# Libraries: the unpacked ones, then the CUDA libraries PyTorch's wheels bring (cuDNN, cuBLASLt)
arch=x86_64-linux-gnu
torch_libs=$(python3 - <<'PY' 2>/dev/null
import glob, os
try:
    import nvidia
    roots = list(nvidia.__path__)
except Exception:
    roots = []
print(":".join(sorted({os.path.dirname(p) for r in roots for p in glob.glob(os.path.join(r, "*", "lib", "*.so*"))})))
PY
)
# NCCL's header for the build where the toolkit has none (PyPI's nvidia-nccl wheel has it; its library is
# among torch_libs, where the CUDA module's dlopen finds it)
nccl_root=$(python3 -c 'import glob, os, nvidia; print(next((os.path.dirname(os.path.dirname(h)) for r in nvidia.__path__ for h in glob.glob(os.path.join(r, "nccl", "include", "nccl.h"))), ""))' 2>/dev/null)
export PATH="$ROOT/usr/bin:$PATH"
export LD_LIBRARY_PATH="$ROOT/usr/lib/$arch:$ROOT/lib/$arch:$ROOT/usr/lib/$arch/openblas-pthread:${torch_libs}:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;$ROOT/usr/share/lua/5.4/?.lua;$ROOT/usr/share/lua/5.4/?/init.lua;;"
export LUA_CPATH="$ROOT/usr/lib/$arch/lua/5.4/?.so;;"

build() {
  cmake -S . -B build-gpu-here -DCMAKE_BUILD_TYPE=Release -DLIGHTNING_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DLIGHTNING_WITH_MPI=OFF -DLIGHTNING_WITH_DNNL=OFF -DLUA_INCDIR="$ROOT/usr/include/lua5.4" -DNCCL_ROOT="$nccl_root" \
    -DPNG_PNG_INCLUDE_DIR="$ROOT/usr/include/libpng16" -DPNG_LIBRARY="$ROOT/usr/lib/$arch/libpng16.so" \
    -DZLIB_INCLUDE_DIR="$ROOT/usr/include" -DZLIB_LIBRARY="$ROOT/usr/lib/$arch/libz.so" &&
    cmake --build build-gpu-here -j16 && [ -f build-gpu-here/lightning/cuda.so ]
}
if stage build build.log build; then BUILD=build-gpu-here; else BUILD=.gpu/build; echo "using pack.sh's build" >> "$summary"; fi
export LUA_CPATH="$BUILD/?.so;$LUA_CPATH"

stage gpu gpu.log nvidia-smi
stage device gpu.log lua5.4 -e 'local L = require "lightning"; print(L.cuda.is_available()); for _, line in ipairs(L.cuda.describe()) do print(line) end'

# busted's runner from the unpacked packages, with .busted's paths but the build's module. (No ';' in its
# arguments: busted starts .busted's lua5.4 again through the shell, unquoted.)
stage specs specs.log lua5.4 "$ROOT/usr/bin/busted" --cpath="$BUILD/?.so" \
  spec/device_spec.lua spec/cuda_spec.lua spec/cuda_graph_spec.lua spec/accelerators_spec.lua \
  spec/data_device_batches_spec.lua

# One carried batch file stands for the five training batches and the test batch.
data=/tmp/gpu_check_data/cifar-10-batches-bin
mkdir -p "$data"
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
  ln -sf "$PWD/.gpu/data/data_batch_1.bin" "$data/$f.bin"
done
cp .gpu/data/batches.meta.txt "$data/" 2>/dev/null
stage train train.log lua5.4 examples/train.lua --cifar10 --data_root /tmp/gpu_check_data --no_download \
  --accelerator gpu --batch_size 64 --max_epochs 1 --limit_train_batches "$STEPS" --limit_val_batches 20 \
  --no_progress_bar --output_dir /tmp/gpu_check_runs

export LIGHTNING_PEER_PYTHON=${LIGHTNING_PEER_PYTHON:-python3}   # the machine's PyTorch is the peer
# the training step in a CUDA graph (issue 21): one launch a step; float32, then bf16-mixed (cuDNN's bf16
# convolutions on channels-last bf16 activations, issue 19's second row) against PyTorch's bf16 autocast
for precision in 32 bf16-mixed; do
  for batch in 64 256; do
    stage "bench${batch}_${precision}_graph" bench.log lua5.4 bench/train_step.lua --build "$BUILD" \
      --accelerator gpu --batch "$batch" --pairs 5 --seconds 1 --peer torch --cuda_graph --precision "$precision"
  done
done

# airbench94 on the GPU (issue 21): our recipe with its batches and test-time augmentation on the GPU,
# then the airbench script in PyTorch, eager and compiled, on the same data (the carried batch five
# times over: the accuracy is not CIFAR-10's, the times compare). Each has its own time limit.
stage airbench airbench.log timeout 180 lua5.4 examples/train.lua --cifar10 --data_root /tmp/gpu_check_data \
  --no_download --recipe airbench94 --accelerator gpu --no_progress_bar --output_dir /tmp/gpu_check_runs
# our eager step (no graph) beside PyTorch eager
for batch in 64 256; do
  stage "bench${batch}_eager" bench.log lua5.4 bench/train_step.lua --build "$BUILD" --accelerator gpu --batch "$batch" \
    --pairs 3 --seconds 1 --peer torch
done
stage airbench_pt airbench.log timeout 120 "$LIGHTNING_PEER_PYTHON" bench/airbench_torch.py --data "$data" --device cuda
stage airbench_ptc airbench.log timeout 180 "$LIGHTNING_PEER_PYTHON" bench/airbench_torch.py --data "$data" \
  --device cuda --compile
