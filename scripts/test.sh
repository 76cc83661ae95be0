#!/usr/bin/env bash
# Sets up and builds (scripts/setup.sh), then runs every C++ test (ctest) and every
# Python test (pytest). Exits non-zero if anything fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
status=0
echo "== C++ tests (ctest)"
ctest --test-dir "$BUILD_DIR" --output-on-failure || status=1
echo "== Python tests (pytest)"
"$PYTHON" -m pytest -q -p no:cacheprovider tests/python "$@" || status=1
exit $status
