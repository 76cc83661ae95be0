#!/usr/bin/env python3
"""How much of DistributedDataParallel's gradient all-reduce hides behind backward (issue 7's
goal: >= 80% at the bucket sizes the defaults choose), on the article CNN and the character
GPT of the examples, measured from timestamps:

    mpirun -np 2 python bench/bench_ddp_overlap.py [--steps 12] [--bucket-cap-mb 25]

For each model: the buckets DDP made; per step, how long the reductions went on after the
last rank's backward ended (communication NOT hidden; ranks of one node share one monotonic
clock, so waiting for a slower peer's backward is not counted); and the time the same
bucket all-reduces take when run alone, back to back (the communication to hide). hidden =
1 - exposed / alone, medians over the steps (the first two are warm-up). Rank 0 prints.
"""
import argparse
import time

import numpy as np

import bigmodel as bm
import bigmodel.distributed as dist
from bigmodel import nn
from bigmodel.models import ArticleCNN
from bigmodel.models.gpt import GPT, GPTConfig


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--bucket-cap-mb", type=float, default=None, help="default: DDP's own default")
    p.add_argument("--models", default="cnn,gpt")
    return p.parse_args()


def comm_alone(bucket_bytes, reps=5):
    """Median time of the buckets' all-reduces run one after another, nothing else running."""
    flats = [bm.zeros(max(1, n // 4)) for n in bucket_bytes]
    times = []
    for _ in range(reps):
        dist.barrier()
        t0 = time.perf_counter()
        for f in flats:
            dist.all_reduce(f, dist.ReduceOp.AVG)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def measure(name, model, batch, loss_fn, args):
    kw = {} if args.bucket_cap_mb is None else {"bucket_cap_mb": args.bucket_cap_mb}
    ddp = nn.parallel.DistributedDataParallel(model, **kw)
    opt = bm.optim.SGD(ddp.parameters(), lr=0.01)
    log = ddp.record_comm_timing()
    step_times = []
    for _ in range(args.steps):
        x, y = batch()
        t0 = time.perf_counter()
        opt.zero_grad()
        loss_fn(ddp, x, y).backward()
        opt.step()
        step_times.append(time.perf_counter() - t0)
    ddp.record_comm_timing(False)
    # A rank that finishes backward first also waits for its peers' backward: that is load
    # skew, not communication. perf_counter is CLOCK_MONOTONIC, one clock for every rank of a
    # node, so the exposed communication of a step is (when this rank's reductions were done)
    # minus (when the LAST rank's backward ended).
    ends = bm.tensor([e["backward_end"] for e in log], dtype=bm.float64)
    dist.all_reduce(ends, dist.ReduceOp.MAX)
    last_end = ends.numpy()
    exposed = [max(0.0, e["backward_end"] + e["blocked_s"] - last_end[i]) for i, e in enumerate(log)]
    t = bm.tensor([float(np.median(exposed[2:]))], dtype=bm.float64)
    dist.all_reduce(t, dist.ReduceOp.MAX)
    blocked = t.item()
    alone = comm_alone(ddp.bucket_bytes)
    t = bm.tensor([alone], dtype=bm.float64)
    dist.all_reduce(t, dist.ReduceOp.MAX)
    alone = t.item()
    hidden = max(0.0, 1.0 - blocked / alone) if alone > 0 else 1.0
    if dist.get_rank() == 0:
        mb = [round(b / 2**20, 2) for b in ddp.bucket_bytes]
        print(f"{name}: {sum(p.numel() for p in model.parameters()):,} parameters, buckets (MB, launch order) {mb}; "
              f"step {np.median(step_times[2:]) * 1e3:.1f} ms; all-reduce alone {alone * 1e3:.2f} ms, still running "
              f"after the last backward {blocked * 1e3:.2f} ms: hidden {hidden:.0%}", flush=True)


def main():
    args = parse()
    dist.init_process_group("mpi")
    rank = dist.get_rank()
    rng = np.random.default_rng(rank)
    if dist.get_rank() == 0:
        print(f"DDP overlap, world {dist.get_world_size()}, bucket_cap_mb {args.bucket_cap_mb or 'default'}, "
              f"{args.steps} steps (2 warm-up)")
    if "cnn" in args.models:
        def cnn_batch():
            return (bm.tensor(rng.standard_normal((64, 1, 28, 28)), dtype=bm.float32),
                    bm.tensor(rng.integers(0, 10, 64)))
        bm.manual_seed(0)
        measure("article CNN, batch 64/rank", ArticleCNN(), cnn_batch,
                lambda m, x, y: nn.functional.cross_entropy(m(x), y), args)
    if "gpt" in args.models:
        # examples/train_gpt.py's defaults (character vocabulary of ~100 symbols).
        cfg = GPTConfig(vocab_size=100, block_size=64, n_layer=2, n_head=4, n_embd=96, dropout=0.0)

        def gpt_batch():
            ids = rng.integers(0, 100, size=(16, 65))
            return bm.tensor(ids[:, :-1]), bm.tensor(ids[:, 1:])
        bm.manual_seed(0)
        measure("character GPT, batch 16x64/rank", GPT(cfg), gpt_batch, lambda m, x, y: m(x, y)[1], args)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
