#!/usr/bin/env bash
# Sets up and builds (scripts/setup.sh), then runs every tier: C++ tests (ctest), Python
# tests (pytest), the 2-rank MPI tier, the sanitizer tier and a short fuzz run. Prints one
# line per tier and a summary; exits non-zero if anything fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
"$ROOT/scripts/fetch_minilm.sh" || true  # all-MiniLM-L6-v2 for the BERT tests (they skip if offline)
status=0
passed=0
failed=0
results=()
# tier NAME RC: records one tier's outcome for the summary.
tier() {
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); results+=("  ok      $1")
  else failed=$((failed + 1)); results+=("  FAILED  $1"); status=1; fi
}
echo "== C++ tests (ctest)"
rc=0; ctest --test-dir "$BUILD_DIR" --output-on-failure || rc=1; tier "C++ tests" $rc
echo "== Python tests (pytest)"
rc=0; "$PYTHON" -m pytest -q -p no:cacheprovider tests/python "$@" || rc=1; tier "Python tests" $rc
echo "== dist tier (mpirun -np 2, MPI backend)"
rc=0
if command -v mpirun >/dev/null; then
  timeout 300 mpirun --allow-run-as-root --oversubscribe -np 2 -x PYTHONPATH -x BIGMODEL_BUILD_DIR \
    "$PYTHON" -m pytest -q -p no:cacheprovider tests/dist || rc=1
else
  echo "mpirun not found (apt-get install openmpi-bin): dist tier not run"; rc=1
fi
tier "dist tier" $rc
echo "== sanitizer tier (ASan + UBSan C++ tests, build-asan)"
# -O1 keeps the instrumented build quick to compile while ASan still sees every access.
ASAN_DIR="$ROOT/build-asan"
if [ ! -f "$ASAN_DIR/build.ninja" ]; then
  cmake -S "$ROOT" -B "$ASAN_DIR" -G Ninja -DBIGMODEL_SANITIZE=ON -DBIGMODEL_PYTHON=OFF -DBIGMODEL_CUDA=OFF \
    -DBIGMODEL_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" >/dev/null
fi
rc=0
if cmake --build "$ASAN_DIR" -j2; then
  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    LSAN_OPTIONS="suppressions=$ROOT/tests/cpp/lsan.supp:fast_unwind_on_malloc=0" \
    ctest --test-dir "$ASAN_DIR" -j2 -E install --output-on-failure || rc=1
else
  rc=1
fi
tier "sanitizer tier" $rc
echo "== fuzz tier (libFuzzer on the safetensors reader, 20 s)"
# scripts/fuzz.sh exits 77 when clang or libFuzzer is missing: then the tier is skipped.
fuzz_rc=0
fuzz_log="$(mktemp)"
"$ROOT/scripts/fuzz.sh" 20 >"$fuzz_log" 2>&1 || fuzz_rc=$?
if [ $fuzz_rc -eq 77 ]; then
  cat "$fuzz_log"; results+=("  skipped fuzz tier (clang/libFuzzer missing)")
elif [ $fuzz_rc -ne 0 ]; then
  cat "$fuzz_log"; echo "fuzz tier failed (input saved under build-fuzz/artifacts/)"; tier "fuzz tier" 1
else
  grep -E "^(Done|stat::)" "$fuzz_log" || true; tier "fuzz tier" 0
fi
rm -f "$fuzz_log"
echo "== summary"
printf '%s\n' "${results[@]}"
echo "tiers: $passed passed, $failed failed"
exit $status
