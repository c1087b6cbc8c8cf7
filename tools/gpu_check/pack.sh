#!/bin/bash
# Prepares what the GPU machine's one call needs (tools/gpu_check/run.sh runs it there), in .gpu/
# (ignored by git; the device tool carries it with `carry: [".gpu"]`):
#   .gpu/debs/    Debian 12's packages the library and its specs need there (Lua 5.4 and its headers,
#                 OpenBLAS, libpng, zlib, argparse, busted and its modules): the GPU machine has no Lua and
#                 no network; run.sh unpacks them with dpkg -x, never into /
#   .gpu/build/   lightning built here with the CUDA module for Hopper (sm_90), in case building there fails
#   .gpu/data/    one CIFAR-10 batch file (10,000 images) for the training run
# Usage: tools/gpu_check/pack.sh [--cifar DIR]  (default ../shared/data/cifar-10-batches-bin)
set -euo pipefail
cd "$(dirname "$0")/../.."
cifar=../shared/data/cifar-10-batches-bin
[ "${1:-}" = "--cifar" ] && cifar=$2
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/debs .gpu/data

packages="lua5.4 liblua5.4-0 liblua5.4-dev libreadline8 libncursesw6 libtinfo6
  libopenblas0-pthread libgfortran5 libquadmath0 libpng16-16 libpng-dev zlib1g zlib1g-dev
  lua-argparse lua-cjson lua-busted lua-cliargs lua-dkjson lua-filesystem lua-luassert lua-mediator
  lua-penlight lua-say lua-system lua-term"
(cd .gpu/debs && apt-get download $packages >/dev/null)

cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DLIGHTNING_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DLIGHTNING_WITH_MPI=OFF -DLIGHTNING_WITH_DNNL=OFF >/dev/null
cmake --build build-gpu -j2 >/dev/null
[ -f build-gpu/lightning/cuda.so ] || { echo "pack.sh: build-gpu has no lightning/cuda.so (nvcc or cuDNN missing?)" >&2; exit 1; }
mkdir -p .gpu/build && cp -r build-gpu/lightning build-gpu/testing .gpu/build/
cp "$cifar/data_batch_1.bin" "$cifar/batches.meta.txt" .gpu/data/ 2>/dev/null || cp "$cifar/data_batch_1.bin" .gpu/data/
du -sh .gpu .gpu/*
