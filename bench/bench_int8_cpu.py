#!/usr/bin/env python3
"""int8 vs float32 on the CPU: the int8 GEMM (int32 accumulation + float epilogue) against
OpenBLAS sgemm on the same shapes, and the article's CNN (Fashion-MNIST sized input) run
with int8 Linear/Conv2d layers against float32. Prints the median times and ratios.

    python bench/bench_int8_cpu.py [--batch 64] [--repeat 7] [--threads N]

Time is the median wall-clock and process CPU time after a warm-up run, the float32 and
int8 cases run in turns (the CNN 3 x --repeat times); weights are random (speed does not depend on
them). Accuracy of the int8 model is shown by examples/quantize_cnn.py and the tests.
"""
import argparse
import os
import statistics
import time

import numpy as np

import bigmodel as bm
from bigmodel import quantization as Q
from bigmodel.models import ArticleCNN


def median_time(fn, repeat):
    """(median wall seconds, median process CPU seconds): on a shared machine the CPU time
    is the steadier figure of the two."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def median_times(fns, repeat):
    """median_time of several functions, run in turns: [(wall, cpu), ...]."""
    for fn in fns:
        fn()  # warm-up
    wall, cpu = [[] for _ in fns], [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[i].append(time.perf_counter() - t0)
            cpu[i].append(time.process_time() - c0)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu)]


def bench_gemm(m, n, k, repeat):
    rng = np.random.default_rng(0)
    a = bm.tensor(rng.standard_normal((m, k)).astype(np.float32))
    b = bm.tensor(rng.standard_normal((n, k)).astype(np.float32))
    qa, qb = Q.quantize_per_tensor(a), Q.quantize_per_channel(b)
    bt = b.t()
    (t_f, c_f), (t_q, c_q) = median_times([lambda: bm.matmul(a, bt), lambda: Q.int8_matmul(qa, qb)], repeat)
    gmacs = m * n * k / 1e9
    print(f"gemm {m:>6} x {n:>5} x {k:>5}:  float32 {t_f * 1e3:8.2f} ms ({gmacs / t_f:6.1f} GMAC/s)   "
          f"int8 {t_q * 1e3:8.2f} ms ({gmacs / t_q:6.1f} GMAC/s)   int8/float32 wall {t_q / t_f:5.2f}, "
          f"cpu {c_q / c_f:5.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cpus {os.cpu_count()}")
    # The ArticleCNN's layers as GEMMs (conv2 via im2col, fc1) and a square one.
    for m, n, k in [(args.batch * 24 * 24, 64, 288), (args.batch, 128, 9216), (512, 512, 512)]:
        bench_gemm(m, n, k, args.repeat)

    # Two models with the same weights, timed alternately so that the shared box's load
    # drifts over both alike.
    bm.manual_seed(0)
    model = ArticleCNN().eval()
    bm.manual_seed(0)
    qmodel = ArticleCNN().eval()
    x = bm.randn(args.batch, 1, 28, 28)
    with bm.no_grad():
        Q.quantize_model(qmodel, [x])
        (t_float, c_float), (t_int8, c_int8) = median_times([lambda: model(x), lambda: qmodel(x)],
                                                            3 * args.repeat)
    print(f"ArticleCNN inference, batch {args.batch}: float32 {t_float * 1e3:.1f} ms, int8 {t_int8 * 1e3:.1f} ms, "
          f"int8/float32 time ratio {t_int8 / t_float:.2f} (speed-up {t_float / t_int8:.2f}x); "
          f"CPU-time ratio {c_int8 / c_float:.2f}")


if __name__ == "__main__":
    main()
