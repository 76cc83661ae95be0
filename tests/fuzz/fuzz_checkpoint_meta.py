"""atheris target for bm.load's checkpoint metadata (the JSON "structure" record that
python/bigmodel/serialization.py decodes). scripts/fuzz.sh runs it from build-fuzz/venv.

Each input is the structure record of a checkpoint that also holds a few real tensors.
Contract: bm.load either returns or raises ValueError/RuntimeError whose message names the
op ("[load] ..."); any other exception (TypeError, KeyError, AttributeError, RecursionError
escaping as such, ...) is a bug and is reported as a crash.
"""
import io
import os
import sys

import atheris

with atheris.instrument_imports(include=["bigmodel.serialization", "json"]):
    import bigmodel as bm
    from bigmodel import _C
    from bigmodel import serialization

import numpy as np

_TENSORS = [
    ("a", bm.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))),
    ("b.0", bm.tensor(np.array([3, 1, 4, 1], dtype=np.int64))),
    ("n", bm.tensor(np.float64(2.5))),
    ("arr", bm.tensor(np.array([True, False]))),
]


def checkpoint_bytes(structure):
    meta = {"format": "bigmodel.checkpoint", "version": "1", "structure": structure}
    return _C._safetensors_serialize(_TENSORS, meta)


def TestOneInput(data):
    structure = data.decode("utf-8", "replace")
    blob = checkpoint_bytes(structure)
    try:
        serialization.load(io.BytesIO(blob))
    except (ValueError, RuntimeError) as e:
        if not str(e).startswith("["):
            raise AssertionError(f"bm.load raised {type(e).__name__} without naming the op: {e!r}") from e


def main():
    if os.environ.get("FUZZ_CHECKPOINT_META_SELFTEST"):  # sanity: a real checkpoint loads
        buf = io.BytesIO()
        bm.save({"w": bm.ones(2), "step": 3, "t": (1.5, "x")}, buf)
        print(serialization.load(io.BytesIO(buf.getvalue())))
        return
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
