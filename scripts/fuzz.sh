#!/usr/bin/env bash
# Builds the libFuzzer target for the safetensors reader (tests/fuzz, clang + ASan + UBSan,
# build dir build-fuzz) and fuzzes it for SECONDS (default 60), starting from the committed
# seeds in tests/fuzz/corpus_safetensors. New inputs go to build-fuzz/corpus, a crashing
# input to build-fuzz/artifacts/. Exit 0: no crash; 1: crash or build failure; 77: clang or
# libFuzzer is not installed (apt-get install clang-14 libclang-rt-14-dev), nothing was run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_TO_RUN="${1:-60}"
BUILD="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
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
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT/tests/fuzz" -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER="$CXX_FUZZ" >/dev/null
fi
cmake --build "$BUILD" -j2
mkdir -p "$BUILD/corpus" "$BUILD/artifacts"
echo "== fuzzing the safetensors reader for ${SECONDS_TO_RUN}s"
# detect_leaks: a parse that throws must not leak. -timeout: a single input taking 10 s is a hang.
# Every failure exits 1 (libFuzzer's own default, 77, is this script's 'skipped').
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  "$BUILD/fuzz_safetensors" -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 \
  -error_exitcode=1 -timeout_exitcode=1 -max_len=4096 \
  -dict="$ROOT/tests/fuzz/safetensors.dict" -artifact_prefix="$BUILD/artifacts/" -print_final_stats=1 \
  "$BUILD/corpus" "$ROOT/tests/fuzz/corpus_safetensors"
