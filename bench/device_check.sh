#!/usr/bin/env bash
# One command for a GPU machine: configure (Release, CUDA on, sm_90 by default) and build
# with all cores, run the cuda test tier (gtest Cuda*, pytest tests/python/test_cuda*.py,
# both also under BIGMODEL_SYNC=1, compute-sanitizer memcheck and racecheck when present),
# the NCCL tier in one process (tests/dist_cuda), the kernel benches (each prints one line
# per case with its ratio to cuBLAS/cuDNN/PyTorch; later ones are skipped once the benches
# have taken BENCH_DEADLINE_S (default 420 s) or the whole check TOTAL_DEADLINE_S (default
# 540 s)), and print a short table last. Full logs go to
# ${BIGMODEL_OUT:-bench/out}. Meant to finish in < 8 minutes on an H100/H200 with 16 cores.
# NCCL and cuDNN come from /usr/local/cuda or, failing that, PyTorch's nvidia/* wheels.
#
# Environment: BIGMODEL_OUT (logs), BIGMODEL_DEVICE_BUILD (build dir, default build-device),
# CUDA_ARCHS (default 90), JOBS (default nproc), PYTHON (a python with numpy and pytest),
# TIER_TIMEOUT_S (limit of each cuda test tier run, default 300),
# SKIP_BUILD=1 (use BIGMODEL_DEVICE_BUILD as it is: no configure/build), BENCH_SMOKE=1 (every
# Python bench with --smoke: tiny sizes; scripts/cuda_emu_benches.sh --device-check uses both
# to dry-run this script on the CUDA emulation build),
# BIGMODEL_DEPS (a folder of .deb files: OpenBLAS, GoogleTest... unpacked into a private
# prefix when the machine lacks them; default debs/, which .gitignore ignores). Fetch them
# on a machine with apt, then name debs in the device tool's `carry`:
#   mkdir -p debs && (cd debs && apt-get download libopenblas-dev libopenblas-pthread-dev \
#     libopenblas0-pthread libopenblas0 libgfortran5 libgtest-dev googletest)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${BIGMODEL_OUT:-$ROOT/bench/out}"
BUILD="${BIGMODEL_DEVICE_BUILD:-$ROOT/build-device}"
ARCHS="${CUDA_ARCHS:-90}"
JOBS="${JOBS:-$(nproc)}"
TIER_S="${TIER_TIMEOUT_S:-300}"  # limit of each C++/Python cuda tier run
mkdir -p "$OUT"
T0=$(date +%s)
ROWS=()  # "step|status|detail"
row() { ROWS+=("$1|$2|$3"); echo "== $1: $2 $3"; }
elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

# ---- machine ----------------------------------------------------------------------------
{
  date -u; echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv 2>&1 || echo "nvidia-smi failed"
  command -v nvcc >/dev/null && nvcc --version | tail -2
  [ -x /usr/local/cuda/bin/nvcc ] && /usr/local/cuda/bin/nvcc --version | tail -1
  echo "cores: $(nproc)"
} >"$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
GPU_NAME="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"

# ---- python with numpy + pytest -----------------------------------------------------------
PY=""
for cand in "${PYTHON:-}" python3 /opt/torch/.venv/bin/python3 /usr/bin/python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c "import numpy, pytest" >/dev/null 2>&1; then PY="$(command -v "$cand" || echo "$cand")"; break; fi
done
[ -n "$PY" ] && echo "python: $PY" || echo "MISSING: no python with numpy and pytest (set PYTHON=...)"

# ---- dependencies: system first, then .deb files unpacked into a private prefix ------------
CMAKE_EXTRA=()
DEPS_DIR="${BIGMODEL_DEPS:-$ROOT/debs}"
if compgen -G "$DEPS_DIR/*.deb" >/dev/null; then
  PREFIX=/tmp/bigmodel-deps
  mkdir -p "$PREFIX"
  for f in "$DEPS_DIR"/*.deb; do dpkg -x "$f" "$PREFIX"; done
  echo "unpacked $(ls "$DEPS_DIR"/*.deb | wc -l) .deb files from $DEPS_DIR into $PREFIX"
  CMAKE_EXTRA+=("-DCMAKE_PREFIX_PATH=$PREFIX/usr;$PREFIX/usr/lib/x86_64-linux-gnu/cmake")
  LIBDIRS="$(find "$PREFIX" -name '*.so*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')"
  export LD_LIBRARY_PATH="${LIBDIRS}${LD_LIBRARY_PATH:-}"
fi
have_sys_blas=0
[ -e /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h ] || [ -e /usr/include/cblas.h ] || \
  [ -e /usr/include/openblas/cblas.h ] && have_sys_blas=1
if [ $have_sys_blas = 0 ] && [ -n "${PREFIX:-}" ]; then
  CBLAS_H="$(find "$PREFIX" -name cblas.h | head -1)"
  BLAS_SO="$(find "$PREFIX" -name 'libopenblas*.so*' | sort | head -1)"
  [ -n "$CBLAS_H" ] && CMAKE_EXTRA+=("-DCBLAS_INCLUDE_DIR=$(dirname "$CBLAS_H")")
  [ -n "$BLAS_SO" ] && CMAKE_EXTRA+=("-DOPENBLAS_LIBRARY=$BLAS_SO")
  [ -z "$CBLAS_H$BLAS_SO" ] && echo "MISSING: OpenBLAS (neither system nor $DEPS_DIR)"
elif [ $have_sys_blas = 0 ]; then
  echo "MISSING: OpenBLAS headers (libopenblas-dev); put its .deb files in $DEPS_DIR (see the header)"
fi
if [ -n "$PY" ]; then
  PYBIND_DIR="$("$PY" -m pybind11 --cmakedir 2>/dev/null)"
  [ -n "$PYBIND_DIR" ] && CMAKE_EXTRA+=("-Dpybind11_DIR=$PYBIND_DIR") || echo "note: pybind11 not importable from $PY"
  CMAKE_EXTRA+=("-DPython_EXECUTABLE=$PY")
else
  CMAKE_EXTRA+=("-DBIGMODEL_PYTHON=OFF")
fi
# NCCL and cuDNN: the system's copy (/usr/local/cuda, /usr/include), else the one PyTorch's
# wheels ship (site-packages/nvidia/<name>/{include,lib}, libraries without a .so link).
wheel_lib() {  # wheel_lib <module> <header> <CMAKE_PREFIX>
  [ -e "/usr/local/cuda/include/$2" ] || [ -e "/usr/include/$2" ] || [ -z "$PY" ] && return 0
  local dir so
  dir="$("$PY" -c "import nvidia.$1 as n; print(list(n.__path__)[0])" 2>/dev/null)"
  if [ -n "$dir" ] && [ -e "$dir/include/$2" ]; then
    so="$(ls "$dir"/lib/lib$1.so* 2>/dev/null | sort | head -1)"
    CMAKE_EXTRA+=("-D$3_INCLUDE_DIR=$dir/include" "-D$3_LIBRARY=$so")
    export LD_LIBRARY_PATH="$dir/lib:${LD_LIBRARY_PATH:-}"
    echo "$1 from $dir"
  else
    echo "note: no $2 found: the parts needing $1 will skip or raise"
  fi
}
wheel_lib nccl nccl.h NCCL
wheel_lib cudnn cudnn.h CUDNN
GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)

# ---- configure + build ----------------------------------------------------------------------
t=$(date +%s)
configure() {
  cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DBIGMODEL_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -DBIGMODEL_MPI=OFF -DBIGMODEL_BENCH=ON "${CMAKE_EXTRA[@]}" "$@"
}
TESTS_ON=1
if [ "${SKIP_BUILD:-0}" = 1 ]; then
  row build SKIP "SKIP_BUILD=1: using $BUILD as it is"
elif ! configure >"$OUT/configure.log" 2>&1; then
  if grep -q "GTest" "$OUT/configure.log"; then
    echo "MISSING: GoogleTest (libgtest-dev): configuring without the C++ tests"
    TESTS_ON=0
    rm -f "$BUILD/CMakeCache.txt"
    configure -DBIGMODEL_TESTS=OFF >>"$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; row configure FAIL "see configure.log"; }
  else
    tail -30 "$OUT/configure.log"; row configure FAIL "see configure.log"
  fi
fi
if [ "${SKIP_BUILD:-0}" = 1 ]; then
  :
elif cmake --build "$BUILD" -j "$JOBS" >"$OUT/build.log" 2>&1; then
  row build ok "$(elapsed $t), $(grep -c -i 'warning' "$OUT/build.log") warning lines, archs $ARCHS"
else
  grep -E "error|Error" "$OUT/build.log" | head -30
  row build FAIL "$(elapsed $t), see build.log"
  # A failing target (someone's bench, say) must not hide the tests: build those alone.
  cmake --build "$BUILD" -j "$JOBS" --target bigmodel >>"$OUT/build.log" 2>&1
  [ $TESTS_ON = 1 ] && cmake --build "$BUILD" -j "$JOBS" --target bigmodel_tests >>"$OUT/build.log" 2>&1
  cmake --build "$BUILD" -j "$JOBS" --target _C >>"$OUT/build.log" 2>&1
fi

# ---- cuda tier --------------------------------------------------------------------------------
count() { grep -Eo "$1" "$2" | tail -1; }
status_of() { case $1 in 0) echo ok ;; 124|137) echo "FAIL(timeout)" ;; *) echo "FAIL rc=$1" ;; esac; }
# gtest's per-test result lines: right also when a timeout cut its summary off.
# When the run was cut (timeout, crash), also name the test that was running.
gtest_counts() {
  local ran fin
  echo -n "$(grep -c '^\[       OK \] ' "$1") passed, $(grep -cE '^\[  FAILED  \] .* \([0-9]+ ms\)$' "$1") failed," \
    "$(grep -cE '^\[  SKIPPED \] .* \([0-9]+ ms\)$' "$1") skipped"
  ran="$(grep -c '^\[ RUN      \] ' "$1")"
  fin="$(grep -cE '^\[ +(OK|FAILED|SKIPPED) +\] .* \([0-9]+ ms\)$' "$1")"
  [ "$ran" -gt "$fin" ] && echo -n "; cut while running $(grep '^\[ RUN      \] ' "$1" | tail -1 | sed 's/^\[ RUN      \] //')"
  echo
}
# pytest's last line, and SKIP for a tier that only skipped (e.g. built without NCCL).
pytest_status() { if [ "$1" = 0 ] && tail -1 "$2" | grep -qE '^[0-9]+ skipped in'; then echo SKIP; else status_of "$1"; fi; }
if [ $TESTS_ON = 1 ] && [ -x "$BUILD/bigmodel_tests" ]; then
  t=$(date +%s)
  # gtest directly (ctest -R Cuda runs the same tests one process each: slower).
  timeout "$TIER_S" "$BUILD/bigmodel_tests" --gtest_filter='Cuda*:CachingAllocator*:CpuAllocator*' \
    >"$OUT/gtest_cuda.log" 2>&1
  rc=$?
  row "C++ cuda tier" "$(status_of $rc)" "$(gtest_counts "$OUT/gtest_cuda.log"); $(elapsed $t)"
  [ $rc = 0 ] || grep -E "FAILED|Failure|error" "$OUT/gtest_cuda.log" | head -20
  t=$(date +%s)
  BIGMODEL_SYNC=1 timeout "$TIER_S" "$BUILD/bigmodel_tests" --gtest_filter='Cuda*' >"$OUT/gtest_cuda_sync.log" 2>&1
  rc=$?
  row "C++ cuda tier, BIGMODEL_SYNC=1" "$(status_of $rc)" "$(gtest_counts "$OUT/gtest_cuda_sync.log"); $(elapsed $t)"
  if command -v compute-sanitizer >/dev/null || [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
    CS="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
    t=$(date +%s)
    timeout 240 "$CS" --tool memcheck --error-exitcode 9 "$BUILD/bigmodel_tests" \
      --gtest_filter='CudaTransfer*:CudaCopy*:CudaFill*:CudaRuntime*:CudaLinear.EpilogueAux*' >"$OUT/memcheck.log" 2>&1
    rc=$?
    row "memcheck (copy/fill/transfer/aux)" "$([ $rc = 0 ] && echo ok || echo "FAIL rc=$rc")" \
      "$(count 'ERROR SUMMARY: [0-9]+ errors?' "$OUT/memcheck.log"); $(elapsed $t)"
    # racecheck: the kernels that share data through shared memory (block reductions,
    # softmax/norm rows, attention tiles), while the time budget allows.
    if [ $(( $(date +%s) - T0 )) -lt "${SANITIZE_DEADLINE_S:-300}" ]; then
      t=$(date +%s)
      timeout 150 "$CS" --tool racecheck --error-exitcode 9 "$BUILD/bigmodel_tests" \
        --gtest_filter='CudaReduce*:CudaSoftmax*:CudaLayerNorm*:CudaAttention*' >"$OUT/racecheck.log" 2>&1
      rc=$?
      row "racecheck (reduce/softmax/norm/attention)" "$([ $rc = 0 ] && echo ok || echo "FAIL rc=$rc")" \
        "$(count '(ERROR|RACECHECK) SUMMARY: [0-9]+ (errors?|hazards?)' "$OUT/racecheck.log"); $(elapsed $t)"
    fi
  fi
else
  row "C++ cuda tier" SKIP "no bigmodel_tests (GoogleTest missing or build failed)"
fi
if [ -n "$PY" ] && compgen -G "$BUILD/python/bigmodel/_C*.so" >/dev/null; then
  export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}" BIGMODEL_BUILD_DIR="$BUILD"
  t=$(date +%s)
  timeout "$TIER_S" "$PY" -m pytest -q -p no:cacheprovider tests/python/test_cuda*.py -rs >"$OUT/pytest_cuda.log" 2>&1
  rc=$?
  row "Python cuda tier" "$(pytest_status $rc "$OUT/pytest_cuda.log")" "$(tail -1 "$OUT/pytest_cuda.log"); $(elapsed $t)"
  [ $rc = 0 ] || grep -E "^(FAILED|ERROR)|Error" "$OUT/pytest_cuda.log" | head -20
  t=$(date +%s)
  BIGMODEL_SYNC=1 timeout "$TIER_S" "$PY" -m pytest -q -p no:cacheprovider tests/python/test_cuda*.py -x \
    >"$OUT/pytest_cuda_sync.log" 2>&1
  rc=$?
  row "Python cuda tier, BIGMODEL_SYNC=1" "$(status_of $rc)" "$(tail -1 "$OUT/pytest_cuda_sync.log"); $(elapsed $t)"
  # NCCL in one process (this build has no MPI): every collective and DDP still go through NCCL.
  t=$(date +%s)
  timeout 180 "$PY" -m pytest -q -p no:cacheprovider tests/dist_cuda -rs >"$OUT/pytest_nccl.log" 2>&1
  rc=$?
  row "NCCL tier (1 process)" "$(pytest_status $rc "$OUT/pytest_nccl.log")" "$(tail -1 "$OUT/pytest_nccl.log"); $(elapsed $t)"
  [ $rc = 0 ] || grep -E "^(FAILED|ERROR)|Error" "$OUT/pytest_nccl.log" | head -20
else
  row "Python cuda tier" SKIP "no python with numpy+pytest, or _C not built"
fi

# ---- kernel benches that exist -------------------------------------------------------------
# The bench budget counts from here, so slow builds or test tiers do not skip every bench.
T_BENCH=$(date +%s)
# Python benches (each prints one summary line per case with its ratio to the peer).
PY_BENCHES="bench_elementwise_cuda bench_reduce_cuda bench_norm_cuda bench_attention_cuda bench_conv_cuda bench_linear_cuda bench_lstm_cuda bench_fused_adamw"
# C++ benches: one executable per bench/*.cu (CMake builds them in CUDA builds only).
CU_BENCHES="$(cd "$ROOT/bench" && ls *.cu 2>/dev/null | sed 's/\.cu$//' | tr '\n' ' ')"
for bench in $CU_BENCHES; do
  exe="$(find "$BUILD" -maxdepth 2 -type f -name "$bench" -perm -u+x | head -1)"
  [ -n "$exe" ] || continue
  t=$(date +%s)
  timeout 150 "$exe" >"$OUT/$bench.log" 2>&1
  rc=$?
  row "$bench" "$(status_of $rc)" "$(elapsed $t); last lines below"
done

if [ -n "$PY" ] && compgen -G "$BUILD/python/bigmodel/_C*.so" >/dev/null; then
  for pybench in $PY_BENCHES; do
    [ -f "$ROOT/bench/$pybench.py" ] || continue
    # The whole check should stay near 8 minutes: later benches give way once time is short.
    # TOTAL_DEADLINE_S keeps the whole check inside one device call (the table prints last).
    if [ $(( $(date +%s) - T_BENCH )) -gt "${BENCH_DEADLINE_S:-420}" ] ||
       [ $(( $(date +%s) - T0 )) -gt "${TOTAL_DEADLINE_S:-540}" ]; then
      row "$pybench" SKIP "time budget (BENCH_DEADLINE_S=${BENCH_DEADLINE_S:-420} s of benches, TOTAL_DEADLINE_S=${TOTAL_DEADLINE_S:-540} s in all)"; continue
    fi
    t=$(date +%s)
    case $pybench in  # per-bench arguments and limits
      bench_fused_adamw) args=(--device cuda); lim=90 ;;
      bench_conv_cuda) args=(--reps 10); lim=150 ;;
      bench_attention_cuda) args=(--n 1024,4096,8192 --d 64,128); lim=180 ;;
      bench_linear_cuda) args=(--quick); lim=90 ;;
      bench_lstm_cuda) args=(--reps 10); lim=120 ;;
      *) args=(); lim=90 ;;
    esac
    [ "${BENCH_SMOKE:-0}" = 1 ] && args+=(--smoke)
    timeout "$lim" "$PY" "$ROOT/bench/$pybench.py" "${args[@]}" >"$OUT/$pybench.log" 2>&1
    rc=$?
    row "$pybench" "$(status_of $rc)" "$(elapsed $t); $(grep -c '^peer unavailable' "$OUT/$pybench.log") peer-unavailable lines; last lines below"
  done
fi

# ---- table last --------------------------------------------------------------------------------
echo
for bench in $CU_BENCHES $PY_BENCHES; do
  [ -f "$OUT/$bench.log" ] && { echo "--- $bench (tail)"; tail -15 "$OUT/$bench.log"; }
done
echo
echo "device check on ${GPU_NAME:-unknown GPU}, commit $(git rev-parse --short HEAD 2>/dev/null), total $(elapsed $T0); logs in $OUT"
printf '%-36s %-14s %s\n' STEP STATUS DETAIL
status=0
for r in "${ROWS[@]}"; do
  IFS='|' read -r a b c <<<"$r"
  printf '%-36s %-14s %s\n' "$a" "$b" "$c"
  case "$b" in FAIL*) status=1 ;; esac
done
exit $status
