#!/bin/sh
# Installs what lightning needs on Debian 12 and installs the library as a LuaRocks rock.
# Run as root (or with sudo available). Safe to run again.
set -eu
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# (libdnnl-dev: oneDNN for bf16 mixed precision; libopenmpi-dev, openmpi-bin: Open MPI 4.1.4 for
# data-parallel training; the library builds and runs without either; tmux: a spec runs train.lua in a
# real terminal)
PACKAGES="lua5.4 liblua5.4-dev luarocks lua-busted lua-argparse lua-cjson \
  build-essential cmake pkg-config libopenblas-dev libpng-dev zlib1g-dev \
  libdnnl-dev clang libclang-rt-14-dev libomp-14-dev curl ca-certificates dataset-fashion-mnist tmux \
  libopenmpi-dev openmpi-bin"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
fi

# luarocks and lua-busted bring Lua 5.1 and point `lua` at it; make `lua` mean Lua 5.4.
$SUDO update-alternatives --set lua-interpreter /usr/bin/lua5.4
if update-alternatives --list lua-compiler 2>/dev/null | grep -q luac5.4; then
  $SUDO update-alternatives --set lua-compiler /usr/bin/luac5.4
fi

# argparse and lua-cjson come from Debian's packages, which LuaRocks does not see: --deps-mode=none.
$SUDO luarocks --lua-version=5.4 make --deps-mode=none rockspec/lightning-scm-1.rockspec

lua -e 'local L = require("lightning"); local i = L.info(); print("lightning " .. i.version .. " installed: BLAS core " .. i.blas_core .. ", " .. i.threads .. " threads")'
