#!/usr/bin/env bash
# Fuzzes every target for a share of SECONDS (default 60, split evenly, at least 5 s each):
#  - libFuzzer targets tests/fuzz/fuzz_<name>.cpp (clang + ASan + UBSan, build dir build-fuzz),
#    seeded from tests/fuzz/corpus_<name>/ with tests/fuzz/<name>.dict when present;
#  - Python targets tests/fuzz/fuzz_<name>.py with atheris, from a venv build-fuzz/venv
#    (made with --system-site-packages; `pip install atheris` is tried once), skipped with
#    the reason when atheris or the built extension (BIGMODEL_BUILD_DIR) is missing.
# New inputs go to build-fuzz/corpus_<name>/, crashing inputs to build-fuzz/artifacts/<name>/.
# FUZZ_ONLY="tokenizer idx" runs only those targets (names without fuzz_), SECONDS split among them.
# Exit 0: no crash; 1: a crash or a build failure; 77: clang or libFuzzer is not installed
# (apt-get install clang-14 libclang-rt-14-dev), nothing was run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_TO_RUN="${1:-60}"
BUILD="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
FUZZ_DIR="$ROOT/tests/fuzz"
CXX_FUZZ="${CXX_FUZZ:-$(command -v clang++ || command -v clang++-14 || true)}"
if [ -z "$CXX_FUZZ" ]; then
  echo "fuzz: clang++ not found (apt-get install clang-14 libclang-rt-14-dev): skipped"; exit 77
fi
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
printf '#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' \
  > "$probe/p.cpp"
if ! "$CXX_FUZZ" -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" 2>"$probe/err"; then
  echo "fuzz: $CXX_FUZZ cannot link libFuzzer (apt-get install libclang-rt-14-dev): skipped"
  head -3 "$probe/err"; exit 77
fi

# selected fuzz_NAME: true when FUZZ_ONLY is unset or lists NAME.
selected() { [ -z "${FUZZ_ONLY:-}" ] || [[ " $FUZZ_ONLY " == *" ${1#fuzz_} "* ]]; }

# ---- the Python side: atheris in a venv beside the build (tried once; skipped if unavailable)
PY_BUILD_DIR="${BIGMODEL_BUILD_DIR:-$ROOT/build}"
VENV="$BUILD/venv"
py_targets=()
py_skip=""
mkdir -p "$BUILD"
if [ ! -x "$VENV/bin/python" ] && [ ! -f "$BUILD/atheris-unavailable" ]; then
  if /usr/bin/python3 -m venv --system-site-packages "$VENV" >"$probe/venv.log" 2>&1 &&
     "$VENV/bin/pip" install -q atheris >>"$probe/venv.log" 2>&1; then :; else
    tail -2 "$probe/venv.log" >"$BUILD/atheris-unavailable"; rm -rf "$VENV"
  fi
fi
if [ -f "$BUILD/atheris-unavailable" ]; then
  py_skip="atheris could not be installed into $VENV ($(tr '\n' ' ' <"$BUILD/atheris-unavailable"); delete that file to retry)"
elif ! "$VENV/bin/python" -c "import atheris" 2>/dev/null; then
  py_skip="atheris is not importable in $VENV"
elif ! ls "$PY_BUILD_DIR"/python/bigmodel/_C*.so >/dev/null 2>&1; then
  py_skip="the extension is not built in $PY_BUILD_DIR (set BIGMODEL_BUILD_DIR)"
else
  for f in "$FUZZ_DIR"/fuzz_*.py; do [ -e "$f" ] && selected "$(basename "$f" .py)" && py_targets+=("$(basename "$f" .py)"); done
fi

# ---- the C++ side: build every target; one that fails to build fails the run, the others still run
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$FUZZ_DIR" -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER="$CXX_FUZZ" >/dev/null
fi
status=0
if ! cmake --build "$BUILD" -j2 -- -k 0; then
  echo "fuzz: some targets failed to build"; status=1
fi
cpp_targets=()
for f in "$FUZZ_DIR"/fuzz_*.cpp; do
  name="$(basename "$f" .cpp)"
  selected "$name" || continue
  if [ -x "$BUILD/$name" ]; then cpp_targets+=("$name"); else echo "fuzz: $name did not build"; status=1; fi
done

n=$(( ${#cpp_targets[@]} + ${#py_targets[@]} ))
[ "$n" -eq 0 ] && { echo "fuzz: no target to run"; exit 1; }
share=$(( SECONDS_TO_RUN / n ))
[ "$share" -lt 5 ] && share=5
# Flags common to every target. -timeout: one input taking 10 s is a hang. Every failure exits
# 1 (libFuzzer's own default, 77, is this script's 'skipped').
common=(-max_total_time="$share" -timeout=10 -rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1
        -max_len=4096 -print_final_stats=1)
# run_target NAME CMD...: fuzzes one target with its corpus and dictionary.
run_target() {
  local name="${1#fuzz_}"; shift
  local corpus=("$BUILD/corpus_$name") dict=()
  mkdir -p "$BUILD/corpus_$name" "$BUILD/artifacts/$name"
  [ -d "$FUZZ_DIR/corpus_$name" ] && corpus+=("$FUZZ_DIR/corpus_$name")
  [ -f "$FUZZ_DIR/$name.dict" ] && dict=(-dict="$FUZZ_DIR/$name.dict")
  echo "== fuzzing $name for ${share}s"
  if ! "$@" "${common[@]}" "${dict[@]}" -artifact_prefix="$BUILD/artifacts/$name/" "${corpus[@]}"; then
    echo "fuzz: $name FAILED (input saved under $BUILD/artifacts/$name/)"; status=1
  fi
}
for t in "${cpp_targets[@]}"; do
  # detect_leaks: a parse that throws must not leak.
  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_target "$t" "$BUILD/$t"
done
if [ -n "$py_skip" ]; then
  echo "fuzz: Python targets skipped: $py_skip"
fi
for t in "${py_targets[@]}"; do
  PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}" BIGMODEL_BUILD_DIR="$PY_BUILD_DIR" \
    run_target "$t" "$VENV/bin/python" "$FUZZ_DIR/$t.py"
done
exit $status
