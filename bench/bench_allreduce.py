#!/usr/bin/env python3
"""all_reduce bus bandwidth from 1 KB to 256 MB (issue 7), nccl-tests' convention:
algorithm bandwidth = bytes / time, bus bandwidth = algbw * 2 (n - 1) / n, which is what
a ring all-reduce moves over the slowest link and makes different world sizes comparable.

    mpirun -np 2 python bench/bench_allreduce.py                        # MPI, CPU tensors
    mpirun -np 2 python bench/bench_allreduce.py --backend nccl         # NCCL, one GPU per rank
    python bench/bench_allreduce.py --backend nccl                      # NCCL, one process

float32 SUM, in place; warm-up, then the median of --iters timed runs (barrier before each,
time of the slowest rank). Rank 0 prints one line per size.
"""
import argparse
import time

import numpy as np

import bigmodel as bm
import bigmodel.distributed as dist


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="mpi", choices=["mpi", "nccl"])
    p.add_argument("--min-bytes", type=int, default=1 << 10)
    p.add_argument("--max-bytes", type=int, default=256 << 20)
    p.add_argument("--iters", type=int, default=10)
    return p.parse_args()


def main():
    args = parse()
    dist.init_process_group(args.backend)
    world, rank = dist.get_world_size(), dist.get_rank()
    device = f"cuda:{bm.cuda.current_device()}" if args.backend == "nccl" else "cpu"
    sync = (lambda: bm.cuda.synchronize()) if device != "cpu" else (lambda: None)
    if rank == 0:
        print(f"all_reduce float32 SUM, backend {args.backend}, world {world}, device {device}")
        print(f"{'bytes':>12} {'time us':>10} {'algbw GB/s':>11} {'busbw GB/s':>11}")
    size = args.min_bytes
    while size <= args.max_bytes:
        t = bm.ones(size // 4, device=device)
        iters = args.iters if size < (64 << 20) else max(3, args.iters // 3)
        for _ in range(2):
            dist.all_reduce(t)
        sync()
        times = []
        for _ in range(iters):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            sync()
            times.append(time.perf_counter() - t0)
        slowest = bm.tensor([float(np.median(times))], dtype=bm.float64)
        if device != "cpu":
            slowest = slowest.to(device)
        dist.all_reduce(slowest, dist.ReduceOp.MAX)
        sec = slowest.item()
        if rank == 0:
            algbw = size / sec / 1e9
            busbw = algbw * 2 * (world - 1) / world
            print(f"{size:>12} {sec * 1e6:>10.1f} {algbw:>11.3f} {busbw:>11.3f}", flush=True)
        size *= 4
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
