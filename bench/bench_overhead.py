"""Per-op overhead from Python: tiny tensors, so the time is the framework's, not the math's.

Measures add of two 16-element tensors, x * 2, sum, and a small backward, for bigmodel and
(where installed) PyTorch and NumPy in the same run. Prints median microseconds per call
and bigmodel's ratio to PyTorch (< 1 means bigmodel is faster).

    PYTHONPATH=python python3 bench/bench_overhead.py
"""
import argparse
import statistics
import timeit

import numpy as np

import bigmodel as bm

try:
    import torch
except ImportError:  # the peer is optional
    torch = None


def median_us(fn, number, repeat):
    times = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(times) / number * 1e6


def cases(lib):
    """name -> zero-argument callable for one framework (bm or torch)."""
    a = lib.ones(16) * 1.5
    b = lib.ones(16) * 2.5
    w = (lib.ones(16) * 0.5).requires_grad_(True)

    def backward():
        (w * 2).sum().backward()

    return {
        "add (16 elems)": lambda: a + b,
        "x * 2": lambda: a * 2,
        "sum": lambda: a.sum(),
        "(w*2).sum().backward()": backward,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--number", type=int, default=20000)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    if torch is not None:
        torch.set_num_threads(1)
    ours = cases(bm)
    peer = cases(torch) if torch is not None else {}
    na, nb = np.full(16, 1.5, np.float32), np.full(16, 2.5, np.float32)
    numpy_add = median_us(lambda: na + nb, args.number, args.repeat)
    print(f"{'op':28s} {'bigmodel us':>12s} {'torch us':>10s} {'ratio':>7s}")
    for name, fn in ours.items():
        t_ours = median_us(fn, args.number, args.repeat)
        if name in peer:
            t_peer = median_us(peer[name], args.number, args.repeat)
            print(f"{name:28s} {t_ours:12.2f} {t_peer:10.2f} {t_ours / t_peer:7.2f}")
        else:
            print(f"{name:28s} {t_ours:12.2f} {'-':>10s} {'-':>7s}")
    print(f"numpy add (16 elems): {numpy_add:.2f} us")
    print(f"torch: {torch.__version__ if torch else 'not installed'}")


if __name__ == "__main__":
    main()
