#!/usr/bin/env bash
# Runs the CUDA test tiers (C++ Cuda* suites and tests/python/test_cuda_*.py) against the
# CUDA-on-CPU emulation build (tests/cuda_emu, -DBIGMODEL_CUDA=EMULATE) on a machine without
# a GPU. Each CUDA thread is a fiber; between barriers a block's threads run in the order
# BIGMODEL_EMU_ORDER names, and the tiers run once per order in EMU_ORDERS (default
# "forward reverse"), so a missing __syncthreads shows up as a wrong result in one of them.
# cuBLASLt, NCCL and cuDNN's conv and RNN API are emulated (tests/cuda_emu/emu_cublaslt.cpp,
# emu_nccl.cpp, emu_cudnn*.cpp; the NCCL tier tests/dist_cuda runs as one process and as two
# ranks on two emulated GPUs). cuDNN's attention (its graph API) is not: those tests are
# deselected here (they run on a real GPU through bench/device_check.sh). The emulated
# device is compute capability 9.0 (the H200's), so the Hopper TMA + wgmma GEMM runs where it
# applies; BIGMODEL_EMU_CC=80 makes it an sm_80 device, where the mma.sync kernels take every
# half-precision GEMM.
# Passing here is not a GPU run: it checks the kernels' logic (indexing, tails,
# synchronisation, tensor-core fragment layouts), not timing or memory-model races between
# blocks.
# --memcheck (or EMU_MEMCHECK=1): the counterpart of compute-sanitizer memcheck. The build
# (default build-emu-asan) has AddressSanitizer + UBSan, the caching allocator is off
# (BIGMODEL_CUDA_CACHING=0: every tensor is its own exact-size allocation with a poisoned
# tail) and dynamic shared memory past each launch's request is poisoned, so out-of-bounds
# reads and writes of kernels into device or shared memory are reported; any ASan/UBSan
# report fails the run (Python reports land in $BUILD/sanitizer-python.*). One thread
# order by default (EMU_ORDERS=forward).
# EMU_ASYNC=1 adds a pass with asynchronous streams (BIGMODEL_EMU_ASYNC=1: deferred per-stream
# work, so missing stream dependencies show).
# Usage: scripts/cuda_emu_test.sh [--memcheck] [extra pytest args]   (BUILD=... JOBS=2 EMU_ORDERS=... EMU_ASYNC=1)
set -euo pipefail
cd "$(dirname "$0")/.."
MEMCHECK=${EMU_MEMCHECK:-0}
if [ "${1:-}" = "--memcheck" ]; then
  MEMCHECK=1
  shift
fi
JOBS=${JOBS:-2}
PY=${PYTHON:-/usr/bin/python3}
cfg=(-DBIGMODEL_CUDA=EMULATE -DBIGMODEL_BENCH=OFF)
if [ "$MEMCHECK" = 1 ]; then
  BUILD=${BUILD:-build-emu-asan}
  # -O1 as in the ASan tier of scripts/test.sh: quick to compile, every access still checked.
  cfg+=(-DBIGMODEL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1")
  orders=${EMU_ORDERS:-forward}
else
  BUILD=${BUILD:-build-emu}
  orders=${EMU_ORDERS:-forward reverse}
fi
cmake -S . -B "$BUILD" -G Ninja -DPython_EXECUTABLE="$PY" "${cfg[@]}" >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target bigmodel_tests _C cuda_emu_selftest
export BIGMODEL_BUILD_DIR="$BUILD" PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
cxx_env=()
py_env=()
if [ "$MEMCHECK" = 1 ]; then
  rm -f "$BUILD"/sanitizer-python.*
  # Leak checks stay with the CPU ASan tier: the emulator's device pools live until exit.
  export BIGMODEL_CUDA_CACHING=0
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
  cxx_env=(ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1")
  # The interpreter is not instrumented: libasan (and libstdc++, for ASan's __cxa_throw
  # interceptor) is preloaded, as in scripts/test.sh's Python sanitizer tier.
  cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
  py_env=(LD_PRELOAD="$("${cxx:-c++}" -print-file-name=libasan.so) $("${cxx:-c++}" -print-file-name=libstdc++.so)"
          ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:abort_on_error=1:log_path=$PWD/$BUILD/sanitizer-python"
          UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$PWD/$BUILD/sanitizer-python")
fi
not_emulated='*AttentionCudnn*:CudaAttention.Cudnn*'
# The CudaReduce layout sweeps include 300001-row shapes: tens of minutes each when emulated.
# EMU_SLOW=1 runs them too.
if [ "${EMU_SLOW:-0}" != 1 ]; then
  not_emulated+=':CudaReduce.ReduceKernelMatchesCpuOnEveryLayout:CudaReduce.RowStatsMatchCpuOnEveryLayout:CudaReduce.ArgReduceMatchesCpuIncludingTiesAndNaN'
fi
py_k="not (attention and cudnn)"
if [ "$MEMCHECK" = 1 ]; then  # these check the cache itself, which memcheck turns off
  not_emulated+=':CudaAllocator.StatsReuseAndEmptyCache'
  py_k+=" and not test_allocator_stats_and_reuse"
fi
status=0
echo "== CUDA emulator self-test (its detectors fire; TMA + wgmma against a reference)"
env "${cxx_env[@]}" "$BUILD/cuda_emu_selftest" 2>/dev/null || status=1
for order in $orders; do
  echo "== CUDA emulation$([ "$MEMCHECK" = 1 ] && echo ' (memcheck)'), thread order: $order"
  env "${cxx_env[@]}" BIGMODEL_EMU_ORDER=$order "$BUILD/bigmodel_tests" --gtest_filter="Cuda*:-$not_emulated" --gtest_brief=1 || status=1
  env "${py_env[@]}" BIGMODEL_EMU_ORDER=$order "$PY" -m pytest -q -p no:cacheprovider tests/python/test_cuda_*.py \
    -k "$py_k" "$@" || status=1
done
if [ "$MEMCHECK" != 1 ] && [ "${EMU_ASYNC:-0}" = 1 ]; then
  # Asynchronous streams (BIGMODEL_EMU_ASYNC=1, tests/cuda_emu/emu_streams.cpp): work runs only
  # when CUDA's semantics force it, so a missing stream dependency gives wrong results. The
  # CudaEmuCudnn tests hand host buffers to the emulated cuDNN: synchronous mode only.
  echo "== CUDA emulation, asynchronous streams (BIGMODEL_EMU_ASYNC=1)"
  BIGMODEL_EMU_ASYNC=1 "$BUILD/cuda_emu_selftest" 2>/dev/null || status=1
  BIGMODEL_EMU_ASYNC=1 "$BUILD/bigmodel_tests" --gtest_filter="Cuda*:-$not_emulated:CudaEmuCudnn.*" --gtest_brief=1 || status=1
  BIGMODEL_EMU_ASYNC=1 "$PY" -m pytest -q -p no:cacheprovider tests/python/test_cuda_*.py -k "$py_k" "$@" || status=1
fi
if [ "$MEMCHECK" != 1 ]; then
  # The NCCL tier on the emulated NCCL (tests/cuda_emu/emu_nccl.cpp): one process, then two
  # ranks with two emulated GPUs (the 2-rank NCCL path no single-GPU machine can run).
  # With EMU_ASYNC=1 a second pass runs it on asynchronous streams (the collectives are jobs
  # in their stream's queue there).
  nccl_modes="0"
  [ "${EMU_ASYNC:-0}" = 1 ] && nccl_modes="0 1"
  for async in $nccl_modes; do
    echo "== NCCL tier on the emulated NCCL (1 process, then mpirun -np 2 with 2 emulated GPUs; async streams: $async)"
    BIGMODEL_EMU_ASYNC=$async "$PY" -m pytest -q -p no:cacheprovider tests/dist_cuda || status=1
    if command -v mpirun >/dev/null; then
      BIGMODEL_EMU_ASYNC=$async BIGMODEL_EMU_DEVICES=2 timeout 300 mpirun --allow-run-as-root --oversubscribe -np 2 \
        -x PYTHONPATH -x BIGMODEL_BUILD_DIR -x BIGMODEL_EMU_DEVICES -x BIGMODEL_EMU_ASYNC -x OMP_NUM_THREADS=1 \
        "$PY" -m pytest -q -p no:cacheprovider tests/dist_cuda || status=1
    fi
  done
fi
if [ "$MEMCHECK" = 1 ]; then
  reports="$(grep -lE "ERROR: AddressSanitizer|runtime error:" "$BUILD"/sanitizer-python.* 2>/dev/null || true)"
  if [ -n "$reports" ]; then
    echo "sanitizer reports from the Python tier:"
    cat $reports
    status=1
  fi
fi
exit $status
