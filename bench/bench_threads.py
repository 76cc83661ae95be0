"""Python threads running ops at once: wall time of the same work in 1 thread and in
--threads threads, with the GIL released around kernels (the default) and held
(bm._C._set_kernel_gil_release(False)). Set OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 to see
the threads' own parallelism rather than the kernels'.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=python python3 bench/bench_threads.py
"""
import argparse
import threading
import time

import numpy as np

import bigmodel as bm


def work(a, b, reps):
    for _ in range(reps):
        c = a @ b
        (c * 0.5 + 1.0).tanh().sum()


def timed(threads, a, b, reps):
    per = reps // threads
    ts = [threading.Thread(target=work, args=(a, b, per)) for _ in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--reps", type=int, default=40)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    a = bm.tensor(rng.standard_normal((args.size, args.size)).astype(np.float32))
    b = bm.tensor(rng.standard_normal((args.size, args.size)).astype(np.float32))
    work(a, b, 2)
    for release in (True, False):
        bm._C._set_kernel_gil_release(release)
        one = min(timed(1, a, b, args.reps) for _ in range(args.repeat))
        many = min(timed(args.threads, a, b, args.reps) for _ in range(args.repeat))
        print(f"GIL {'released' if release else 'held    '}: 1 thread {one * 1e3:8.1f} ms, "
              f"{args.threads} threads {many * 1e3:8.1f} ms, speed-up {one / many:5.2f}x")
    bm._C._set_kernel_gil_release(True)


if __name__ == "__main__":
    main()
