#!/usr/bin/env bash
# Runs the CUDA test tiers (C++ Cuda* suites and tests/python/test_cuda_*.py) against the
# CUDA-on-CPU emulation build (tests/cuda_emu, -DBIGMODEL_CUDA=EMULATE) on a machine without
# a GPU. Each CUDA thread is a fiber; between barriers a block's threads run in the order
# BIGMODEL_EMU_ORDER names, and the tiers run once per order in EMU_ORDERS (default
# "forward reverse"), so a missing __syncthreads shows up as a wrong result in one of them.
# cuBLASLt, cuDNN, NCCL and the Hopper wgmma/TMA kernel are not emulated: their tests are
# deselected here (they run on a real GPU through bench/device_check.sh).
# Passing here is not a GPU run: it checks the kernels' logic (indexing, tails,
# synchronisation, tensor-core fragment layouts), not timing, memory-model races between
# blocks or out-of-bounds accesses.
# Usage: scripts/cuda_emu_test.sh [extra pytest args]   (BUILD=build-emu JOBS=2 EMU_ORDERS=...)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-emu}
JOBS=${JOBS:-2}
PY=${PYTHON:-/usr/bin/python3}
cmake -S . -B "$BUILD" -G Ninja -DPython_EXECUTABLE="$PY" -DBIGMODEL_CUDA=EMULATE -DBIGMODEL_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target bigmodel_tests _C
export BIGMODEL_BUILD_DIR="$BUILD" PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
not_emulated='*Cublas*:*cublas*:*Cudnn*:*Wgmma*:CudaGemm.BackendSwitchRoutesGemm:CudaGemm.FusedEpilogues:CudaGemm.Int8TensorCorePathExact:CudaGemm.MatmulOpMatchesCpu:CudaGemm.OursAgreesWithCublas:CudaLinear.OpsMatchCpuBothBackends:CudaLinear.TransposedWeightViewNeedsNoCopy'
status=0
for order in ${EMU_ORDERS:-forward reverse}; do
  echo "== CUDA emulation, thread order: $order"
  BIGMODEL_EMU_ORDER=$order "$BUILD/bigmodel_tests" --gtest_filter="Cuda*:-$not_emulated" --gtest_brief=1 || status=1
  BIGMODEL_EMU_ORDER=$order "$PY" -m pytest -q -p no:cacheprovider tests/python/test_cuda_*.py \
    -k "not cublas and not cudnn" "$@" || status=1
done
exit $status
