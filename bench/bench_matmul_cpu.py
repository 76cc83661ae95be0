"""CPU matmul 1024x1024x1024 float32: bigmodel against NumPy and PyTorch in the same run.

Reports the median time over repeats, GFLOP/s, and bigmodel's time ratio to each peer
(< 1.10 against NumPy is the goal). All three use all cores.

    PYTHONPATH=python python3 bench/bench_matmul_cpu.py
"""
import argparse
import os
import statistics
import time

import numpy as np

import bigmodel as bm

try:
    import torch
    torch.set_num_threads(os.cpu_count())  # Debian's build defaults to one thread per physical core
except ImportError:
    torch = None


def median_seconds(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=15)
    args = p.parse_args()
    n = args.n
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    ta, tb = bm.tensor(a), bm.tensor(b)
    np.testing.assert_allclose((ta @ tb).numpy(), a @ b, rtol=1e-3, atol=1e-2)
    flops = 2.0 * n ** 3
    results = {"bigmodel": median_seconds(lambda: ta @ tb, args.repeat),
               "numpy": median_seconds(lambda: a @ b, args.repeat)}
    if torch is not None:
        pa, pb = torch.from_numpy(a), torch.from_numpy(b)
        results["torch"] = median_seconds(lambda: pa @ pb, args.repeat)
    print(f"matmul {n}x{n}x{n} float32 (median of {args.repeat})")
    for name, s in results.items():
        print(f"  {name:9s} {s * 1e3:8.2f} ms  {flops / s / 1e9:7.1f} GFLOP/s  "
              f"bigmodel/{name} = {results['bigmodel'] / s:.2f}")


if __name__ == "__main__":
    main()
