#!/usr/bin/env bash
# Sets up and builds (scripts/setup.sh), then runs every C++ test (ctest) and every
# Python test (pytest). Exits non-zero if anything fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
"$ROOT/scripts/fetch_minilm.sh" || true  # all-MiniLM-L6-v2 for the BERT tests (they skip if offline)
status=0
echo "== C++ tests (ctest)"
ctest --test-dir "$BUILD_DIR" --output-on-failure || status=1
echo "== Python tests (pytest)"
"$PYTHON" -m pytest -q -p no:cacheprovider tests/python "$@" || status=1
echo "== dist tier (mpirun -np 2, MPI backend)"
if command -v mpirun >/dev/null; then
  timeout 300 mpirun --allow-run-as-root --oversubscribe -np 2 -x PYTHONPATH -x BIGMODEL_BUILD_DIR \
    "$PYTHON" -m pytest -q -p no:cacheprovider tests/dist || status=1
else
  echo "mpirun not found (apt-get install openmpi-bin): dist tier not run"; status=1
fi
exit $status
