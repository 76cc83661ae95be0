#!/usr/bin/env bash
# Demo: installs/builds bigmodel (scripts/setup.sh), then trains the article's CNN on
# Fashion-MNIST (examples/train_cnn.py; examples/train_mlp.py is the smaller MLP example).
# Arguments go to train_cnn.py, e.g. scripts/demo.sh --epochs 1 --limit 10000, or --model resnet.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
exec "$PYTHON" "$ROOT/examples/train_cnn.py" "$@"
