#!/usr/bin/env bash
# Installs what bigmodel needs on Debian 12 (skipping what is there) and builds it.
# Sourced by scripts/demo.sh and scripts/test.sh; BUILD_DIR and PYTHON may be overridden.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
PYTHON="${PYTHON:-/usr/bin/python3}"
export PYTHON

APT_PACKAGES=(build-essential cmake ninja-build ccache pkg-config libopenblas-dev libgtest-dev
  pybind11-dev python3-dev python3-numpy python3-pytest libopenmpi-dev openmpi-bin
  dataset-fashion-mnist python3-matplotlib fortunes zlib1g-dev clang libclang-rt-14-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

JOBS="${JOBS:-$(nproc)}"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPython_EXECUTABLE="$PYTHON" ${CMAKE_ARGS:-} >/dev/null
fi
echo "== building in $BUILD_DIR ($JOBS jobs)"
cmake --build "$BUILD_DIR" -j "$JOBS"
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
export BIGMODEL_BUILD_DIR="$BUILD_DIR"
