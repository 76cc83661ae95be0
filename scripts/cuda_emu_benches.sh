#!/usr/bin/env bash
# Dry run of bench/device_check.sh's GPU benches on the CUDA-on-CPU emulation build
# (tests/cuda_emu, -DBIGMODEL_CUDA=EMULATE), so a rare GPU session does not die on a script bug:
#  1. every gtest filter in device_check.sh, and each of its patterns, must match tests
#     (--gtest_list_tests), and every pytest path must collect tests (--collect-only);
#  2. every Python bench in its PY_BENCHES runs with the arguments device_check.sh gives it
#     plus --smoke (tiny sizes, 2 repeats). Peers that are missing here (cuBLASLt, cuDNN, NCCL,
#     PyTorch on CUDA) must print "peer unavailable: ..." and the bench must go on; a case of
#     ours that raises prints "FAIL ..." and fails the bench;
#  3. where a (CPU-only) PyTorch is importable, every bench again with it posing as PyTorch on
#     CUDA (bench/_torch_cpu_as_cuda.py), so the torch peer code runs too.
# It checks the scripts (arguments, API calls, fallbacks), never the numbers. The C++ benches
# (bench/*.cu) need nvcc and are not built here.
# Usage: scripts/cuda_emu_benches.sh [--no-build] [--device-check]
#   --no-build      use $BUILD as it is (it must hold bigmodel_tests and _C)
#   --device-check  then also run bench/device_check.sh itself on $BUILD (SKIP_BUILD=1
#                   BENCH_SMOKE=1): checks its flow and reporting; its cuda test tiers are cut
#                   at TIER_TIMEOUT_S (default 60 here) and its cuBLAS/cuDNN tests fail when
#                   emulated, so those rows read FAIL (scripts/cuda_emu_test.sh is the tier run)
# Environment: BUILD (default build-emu), JOBS (2), PYTHON (/usr/bin/python3), OUT (logs,
# default $BUILD/emu_benches), BENCH_TIMEOUT (seconds per bench, default 900).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
BUILD=${BUILD:-build-emu}
JOBS=${JOBS:-2}
PY=${PYTHON:-/usr/bin/python3}
case $BUILD in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
OUT=${OUT:-$BUILD/emu_benches}
case $OUT in /*) ;; *) OUT="$ROOT/$OUT" ;; esac
build=1 device_check=0
for a in "$@"; do
  case $a in
    --no-build) build=0 ;;
    --device-check) device_check=1 ;;
    *) echo "unknown argument: $a (see the header of $0)"; exit 2 ;;
  esac
done
if [ $build = 1 ]; then
  cmake -S . -B "$BUILD" -G Ninja -DPython_EXECUTABLE="$PY" -DBIGMODEL_CUDA=EMULATE -DBIGMODEL_BENCH=OFF >/dev/null || exit 1
  cmake --build "$BUILD" -j"$JOBS" --target bigmodel_tests _C || exit 1
fi
mkdir -p "$OUT"
export BIGMODEL_BUILD_DIR="$BUILD" PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
DC=bench/device_check.sh
status=0
ROWS=()
row() { ROWS+=("$1|$2|$3"); echo "== $1: $2 $3"; }

# ---- 1. test selections ---------------------------------------------------------------------
if [ -x "$BUILD/bigmodel_tests" ]; then
  "$BUILD/bigmodel_tests" --gtest_list_tests >"$OUT/gtest_all.txt" 2>&1
  n_in() { "$BUILD/bigmodel_tests" --gtest_filter="$1" --gtest_list_tests 2>/dev/null | grep -c '^  '; }
  for f in $(grep -o "gtest_filter='[^']*'" "$DC" | sed "s/gtest_filter='\(.*\)'/\1/" | sort -u); do
    total=$(n_in "$f")
    dead=""
    IFS=':' read -ra pats <<<"${f%%-*}"
    for p in "${pats[@]}"; do [ "$(n_in "$p")" = 0 ] && dead+=" $p"; done
    if [ "$total" = 0 ] || [ -n "$dead" ]; then
      row "gtest filter $f" FAIL "$total tests; patterns matching nothing:${dead:- (all)}"; status=1
    else
      row "gtest filter $f" ok "$total tests"
    fi
  done
else
  row "gtest filters" FAIL "no $BUILD/bigmodel_tests"; status=1
fi
for p in $(grep -E 'pytest' "$DC" | grep -oE 'tests/[A-Za-z0-9_/.*]+' | sort -u); do
  # shellcheck disable=SC2086  # $p may be a glob: expand it as device_check.sh does
  n=$("$PY" -m pytest --collect-only -q -p no:cacheprovider $p 2>&1 | grep -c '::')
  if [ "$n" = 0 ]; then row "pytest $p" FAIL "collects no tests"; status=1; else row "pytest $p" ok "$n tests"; fi
done

# ---- 2./3. benches, with device_check.sh's own arguments plus --smoke --------------------------
PY_BENCHES=$(sed -n 's/^PY_BENCHES="\(.*\)"$/\1/p' "$DC")
[ -n "$PY_BENCHES" ] || { row "PY_BENCHES" FAIL "not found in $DC"; status=1; }
run_bench() {  # run_bench <bench> <tag or ""> [launcher...]
  local b=$1 tag=$2 args log t rc peers fails detail
  shift 2
  args=$(sed -n "s/^ *$b) args=(\(.*\)); lim=.*/\1/p" "$DC")
  log="$OUT/$b${tag:+_$tag}.log"
  t=$(date +%s)
  # shellcheck disable=SC2086  # args are device_check.sh's words
  timeout "${BENCH_TIMEOUT:-900}" "$PY" "$@" "bench/$b.py" $args --smoke >"$log" 2>&1
  rc=$?
  peers=$(grep -c '^peer unavailable' "$log")
  fails=$(grep -c '^FAIL' "$log")
  detail="$(( $(date +%s) - t ))s, args: ${args:-none} --smoke; $peers peer-unavailable lines, $fails FAIL lines"
  if [ $rc = 0 ] && ! grep -q Traceback "$log"; then
    row "$b${tag:+ [$tag]}" ok "$detail"
  else
    row "$b${tag:+ [$tag]}" "FAIL rc=$rc" "$detail; log $log"; status=1
    tail -5 "$log" | sed 's/^/    /'
  fi
}
for b in $PY_BENCHES; do
  if [ ! -f "bench/$b.py" ]; then row "$b" FAIL "bench/$b.py does not exist"; status=1; continue; fi
  run_bench "$b" ""
done
if "$PY" -c "import torch" >/dev/null 2>&1; then
  for b in $PY_BENCHES; do
    [ -f "bench/$b.py" ] && run_bench "$b" torch-cpu-as-cuda bench/_torch_cpu_as_cuda.py
  done
else
  row "torch peer code" SKIP "no torch importable from $PY: the torch columns' code did not run"
fi

# ---- 4. optionally, device_check.sh itself ---------------------------------------------------
if [ $device_check = 1 ]; then
  t=$(date +%s)
  SKIP_BUILD=1 BENCH_SMOKE=1 BIGMODEL_DEVICE_BUILD="$BUILD" BIGMODEL_OUT="$OUT/device_check" \
    PYTHON="$PY" BENCH_DEADLINE_S=100000 SANITIZE_DEADLINE_S=0 TIER_TIMEOUT_S="${TIER_TIMEOUT_S:-60}" bash "$DC" >"$OUT/device_check.log" 2>&1
  rc=$?
  row "device_check.sh (emulated)" "$([ $rc = 0 ] && echo ok || echo "FAIL rc=$rc")" \
    "$(( $(date +%s) - t ))s; log $OUT/device_check.log"
  [ $rc = 0 ] || status=1
fi

echo
printf '%-60s %-9s %s\n' STEP STATUS DETAIL
for r in "${ROWS[@]}"; do
  IFS='|' read -r a b c <<<"$r"
  printf '%-60s %-9s %s\n' "$a" "$b" "$c"
done
exit $status
