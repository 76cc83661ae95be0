#!/usr/bin/env python3
"""Optimizer-state memory per rank: plain AdamW vs ZeroRedundancyOptimizer(AdamW) (ZeRO-1),
for world sizes 1 and 2, on a small GPT (bigmodel.models.GPT).

    python bench/bench_zero_memory.py [--n-layer 4] [--n-embd 256] [--np 2]

Run without mpirun: it measures a world of one itself, then starts
`mpirun -np N` of itself for the larger world and prints one table. The figure is the
bytes of the tensors in the optimizer's state after one step (exp_avg, exp_avg_sq, step).
"""
import argparse
import os
import shutil
import subprocess
import sys

import numpy as np

import bigmodel as bm
import bigmodel.distributed as dist
from bigmodel import optim
from bigmodel.distributed.optim import ZeroRedundancyOptimizer
from bigmodel.models import GPT, GPTConfig


def state_bytes(opt):
    return sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values()
               if isinstance(v, bm.Tensor))


def measure(args):
    """(parameters, plain AdamW state bytes, ZeRO state bytes on each rank) in this world."""
    bm.manual_seed(0)
    config = GPTConfig(vocab_size=96, block_size=32, n_layer=args.n_layer, n_head=4, n_embd=args.n_embd)
    model = GPT(config)
    x = bm.tensor(np.random.default_rng(0).integers(0, 96, size=(2, 32)))
    plain = optim.AdamW(model.parameters(), lr=1e-3)
    model(x, x)[1].backward()
    plain.step()
    plain_bytes = state_bytes(plain)
    zero = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=optim.AdamW, lr=1e-3)
    zero.step()  # same gradients: the state is allocated on the first step
    mine = bm.tensor([float(zero.local_state_bytes())], dtype=bm.float64)
    per_rank = [bm.zeros(1, dtype=bm.float64) for _ in range(dist.get_world_size())]
    dist.all_gather(per_rank, mine)
    return model.num_parameters(), plain_bytes, [int(t.item()) for t in per_rank]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=256)
    p.add_argument("--np", type=int, default=2, help="the larger world size")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        dist.init_process_group()
        per_rank = measure(args)[2]
        if dist.get_rank() == 0:
            print("ZERO", " ".join(str(b) for b in per_rank), flush=True)
        return
    # The larger world first: mpirun started from a process that already joined MPI (as a
    # world of one) would inherit its environment and fail.
    rows = []
    mpirun = shutil.which("mpirun")
    if mpirun is None or not dist.is_available():
        print("mpirun (or MPI in the build) missing: only the world of one is measured")
    else:
        cmd = [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", str(args.np), "-x", "PYTHONPATH",
               "-x", "BIGMODEL_BUILD_DIR", "-x", "OMP_NUM_THREADS=1", sys.executable, os.path.abspath(__file__),
               "--child", "--n-layer", str(args.n_layer), "--n-embd", str(args.n_embd)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("ZERO ")]
        if out.returncode != 0 or not line:
            raise SystemExit(f"mpirun -np {args.np} failed:\n{out.stdout}\n{out.stderr}")
        rows.append((args.np, [int(v) for v in line[0].split()[1:]]))
    dist.init_process_group()
    n_params, plain_bytes, per_rank = measure(args)
    rows.insert(0, (1, per_rank))
    print(f"GPT {args.n_layer} layers, n_embd {args.n_embd}: {n_params:,} parameters; "
          f"plain AdamW state {plain_bytes:,} bytes ({plain_bytes / 2**20:.2f} MiB)")
    print(f"{'world':>5}  {'ZeRO-1 state per rank (bytes)':>40}  {'max MiB':>8}  {'plain / max':>11}")
    for world, per_rank in rows:
        print(f"{world:>5}  {', '.join(f'{b:,}' for b in per_rank):>40}  {max(per_rank) / 2**20:8.2f}  "
              f"{plain_bytes / max(per_rank):11.2f}")


if __name__ == "__main__":
    main()
