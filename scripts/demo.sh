#!/usr/bin/env bash
# Demo: installs/builds bigmodel (scripts/setup.sh), then trains an MLP on Fashion-MNIST.
# Arguments go to examples/train_mlp.py, e.g. scripts/demo.sh --epochs 1 --limit 10000
set -euo pipefail
source "$(dirname "$0")/setup.sh"
exec "$PYTHON" "$ROOT/examples/train_mlp.py" "$@"
