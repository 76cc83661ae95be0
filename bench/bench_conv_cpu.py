"""CPU conv2d forward + backward for the article CNN's layers (batch 64: conv 1->32 3x3 on
28x28, conv 32->64 3x3 on 26x26) and its 2x2 max pool, bigmodel vs PyTorch in the same
run with the same thread count; prints median times and the ratio bigmodel / PyTorch.

    BIGMODEL_BUILD_DIR=build /usr/bin/python3 bench/bench_conv_cpu.py [--threads N] [--reps R]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import bigmodel as bm  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the bench still times bigmodel alone
    torch = None

LAYERS = [  # name, N, C, H, W, O, k
    ("conv1 1->32 3x3 28x28", 64, 1, 28, 28, 32, 3),
    ("conv2 32->64 3x3 26x26", 64, 32, 26, 26, 64, 3),
]


def time_ms(fn, reps, warmup=2):
    """(median, best) wall time in ms. The best is the steadier figure on a shared machine."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def conv_fns(lib, x_np, w_np, b_np, g_np):
    """(forward, forward+backward) closures for one library."""
    if lib == "bm":
        x = bm.tensor(x_np, requires_grad=True)
        w = bm.tensor(w_np, requires_grad=True)
        b = bm.tensor(b_np, requires_grad=True)
        g = bm.tensor(g_np)
        fwd = lambda: bm.conv2d(x, w, b)  # noqa: E731
        grad_ctx = bm.no_grad
    else:
        x = torch.tensor(x_np, requires_grad=True)
        w = torch.tensor(w_np, requires_grad=True)
        b = torch.tensor(b_np, requires_grad=True)
        g = torch.tensor(g_np)
        fwd = lambda: F.conv2d(x, w, b)  # noqa: E731
        grad_ctx = torch.no_grad

    def forward():
        with grad_ctx():
            fwd()

    def train_step():
        x.grad = w.grad = b.grad = None
        fwd().backward(g)

    return forward, train_step


def pool_fns(lib, x_np, g_np):
    if lib == "bm":
        x = bm.tensor(x_np, requires_grad=True)
        g = bm.tensor(g_np)
        pool = lambda: bm.max_pool2d(x, 2)  # noqa: E731
    else:
        x = torch.tensor(x_np, requires_grad=True)
        g = torch.tensor(g_np)
        pool = lambda: F.max_pool2d(x, 2)  # noqa: E731

    def train_step():
        x.grad = None
        pool().backward(g)

    return pool, train_step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    if torch is not None:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"threads={args.threads} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), "
          f"median and best of {args.reps}, float32")
    print(f"{'case':38s} {'bigmodel ms (best)':>19s} {'torch ms (best)':>16s} {'ratio med/best':>15s}")
    rows = []
    for name, n, c, h, w, o, k in LAYERS:
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = (rng.standard_normal((o, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
        b = rng.standard_normal(o).astype(np.float32)
        g = rng.standard_normal((n, o, h - k + 1, w - k + 1)).astype(np.float32)
        fns = {lib: conv_fns(lib, x, wt, b, g) for lib in (["bm", "torch"] if torch else ["bm"])}
        for what, idx in (("fwd", 0), ("fwd+bwd", 1)):
            rows.append((f"{name} {what}", {lib: time_ms(f[idx], args.reps) for lib, f in fns.items()}))
    x = rng.standard_normal((64, 64, 24, 24)).astype(np.float32)
    g = rng.standard_normal((64, 64, 12, 12)).astype(np.float32)
    fns = {lib: pool_fns(lib, x, g) for lib in (["bm", "torch"] if torch else ["bm"])}
    for what, idx in (("fwd", 0), ("fwd+bwd", 1)):
        rows.append((f"max_pool2d 2x2 64x64x24x24 {what}", {lib: time_ms(f[idx], args.reps) for lib, f in fns.items()}))
    for name, t in rows:
        (bm_med, bm_best), tt = t["bm"], t.get("torch")
        cell = f"{bm_med:10.2f} ({bm_best:6.2f})"
        if tt:
            print(f"{name:38s} {cell:>19s} {tt[0]:8.2f} ({tt[1]:6.2f}) {bm_med / tt[0]:7.2f}/{bm_best / tt[1]:.2f}")
        else:
            print(f"{name:38s} {cell:>19s}")
    print("ratio = bigmodel time / PyTorch time (below 1: bigmodel faster)")


if __name__ == "__main__":
    main()
