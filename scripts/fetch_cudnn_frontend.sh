#!/usr/bin/env bash
# Fetches NVIDIA's cuDNN frontend (header-only C++, MIT licence; the include/ folder of the
# PyPI wheel nvidia-cudnn-frontend) into debs/cudnn_frontend/include (git-ignored), where
# CMake finds it for the cuDNN attention baseline (bm.backends.attention = "cudnn").
# Idempotent; re-run the CMake configure step afterwards. Another location: set
# BIGMODEL_CUDNN_FRONTEND_DIR (cache variable or environment) to a folder holding cudnn_frontend.h.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/debs/cudnn_frontend"
VERSION="${CUDNN_FRONTEND_VERSION:-}"  # e.g. 1.32.0; empty = the newest on the index
if [ -f "$DEST/include/cudnn_frontend.h" ]; then
  echo "== cuDNN frontend already in $DEST/include"
  exit 0
fi
PY=""
for cand in ${PIP_PYTHON:-} python3 /usr/bin/python3 python; do
  if "$cand" -m pip --version >/dev/null 2>&1; then PY="$cand"; break; fi
done
[ -n "$PY" ] || { echo "error: no Python with pip found (set PIP_PYTHON)"; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# Any wheel of the package carries the same headers; pip download only fetches, installs nothing.
SPEC="nvidia-cudnn-frontend${VERSION:+==$VERSION}"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$WORK" "$SPEC"
WHEEL="$(ls "$WORK"/nvidia_cudnn_frontend-*.whl | head -n1)"
mkdir -p "$DEST"
# Only the headers are needed (the wheel's Python parts are not used).
"$PY" - "$WHEEL" "$DEST" <<'EOF'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    z.extractall(dest, [n for n in z.namelist() if n.startswith("include/")])
EOF
[ -f "$DEST/include/cudnn_frontend.h" ] || { echo "error: $WHEEL has no include/cudnn_frontend.h"; exit 1; }
echo "== cuDNN frontend $(basename "$WHEEL") -> $DEST/include (re-run the cmake configure step)"
