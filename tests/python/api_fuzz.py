"""Random calls into the public API with odd arguments; run by test_api_fuzz.py in a child
process, so a crash (segfault, abort) fails the test instead of killing pytest.

Usage: python3 api_fuzz.py SEED CALLS. Prints 'ok N' at the end; writes the call it is
about to make to stderr first when BIGMODEL_FUZZ_TRACE=1, to find a crashing call.
"""
import os
import random
import sys

import numpy as np

import bigmodel as bm

ALLOWED = (ValueError, TypeError, IndexError, RuntimeError, NotImplementedError, KeyError,
           AttributeError, OverflowError, ZeroDivisionError, MemoryError)

SKIP = {"set_grad_enabled", "manual_seed", "seed", "set_rng_state", "Generator", "no_grad", "enable_grad",
        "save", "load", "save_file", "load_file"}


def values():
    return [None, 0, -1, 1, 2, 3, 10 ** 12, -10 ** 12, 2 ** 63, 2.5, float("nan"), float("inf"), True, "x", [],
            [1, 2], [[1], [2, 3]], (2, -1), (), slice(None, None, -1), slice(0, 5, 2), Ellipsis,
            bm.tensor(1.0), bm.tensor([1.0, 2.0]), bm.tensor([[1, 2], [3, 4]]), bm.zeros(0), bm.zeros(2, 0, 3),
            bm.tensor([True, False]), bm.ones(2, 3).t(), bm.tensor([1.0]).bfloat16(), bm.tensor([5, -7]),
            bm.tensor([0, 1]), bm.ones(2, 3, dtype=bm.float64), bm.ones(3, 2).half(), bm.ones(3, 1, 2),
            bm.arange(6).reshape(2, 3), np.zeros((2, 2)), np.array([1, 0]), bm.float64, bm.int32, bm.bool]


def main():
    seed, calls = int(sys.argv[1]), int(sys.argv[2])
    trace = os.environ.get("BIGMODEL_FUZZ_TRACE") == "1"
    rng = random.Random(seed)
    vals = values()
    tensors = [v for v in vals if isinstance(v, bm.Tensor)]
    funcs = sorted(n for n in dir(bm) if not n.startswith("_") and n not in SKIP and callable(getattr(bm, n))
                   and not isinstance(getattr(bm, n), type))
    meths = sorted(n for n in dir(bm.Tensor) if not n.startswith("_") and callable(getattr(bm.Tensor, n))
                   and n not in ("register_hook", "register_post_accumulate_grad_hook"))
    dunders = ["__getitem__", "__setitem__", "__add__", "__mul__", "__matmul__", "__pow__", "__truediv__",
               "__floordiv__", "__mod__", "__and__", "__eq__", "__lt__", "__neg__", "__invert__", "__iadd__"]
    kw_names = ["dim", "keepdim", "dtype", "out", "alpha", "p", "reduction", "weight"]
    for _ in range(calls):
        kind = rng.random()
        if kind < 0.4:
            name = rng.choice(funcs)
            fn = getattr(bm, name)
        else:
            source = rng.choice(tensors)
            t = source.clone()
            name = rng.choice(meths if kind < 0.8 else dunders)
            fn = getattr(t, name)
        args = [rng.choice(vals) for _ in range(rng.randint(0, 3))]
        kwargs = {rng.choice(kw_names): rng.choice(vals)} if rng.random() < 0.25 else {}
        if trace:
            where = f"on {source.dtype} {tuple(source.shape)}" if kind >= 0.4 else ""
            print(name, where, [type(a).__name__ for a in args], list(kwargs), file=sys.stderr, flush=True)
        try:
            r = fn(*args, **kwargs)
            if isinstance(r, bm.Tensor) and r.numel() < 10 ** 5:
                repr(r)
        except ALLOWED:
            pass
    print(f"ok {calls}")


if __name__ == "__main__":
    main()
