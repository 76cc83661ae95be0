"""CPU LSTM training step (issue 8's size: batch 64, sequence 256, hidden 512, 2 layers):
bigmodel against PyTorch in the same run.

One step = forward of a 2-layer nn.LSTM (input size = hidden size) over a fixed random
sequence, MSE against a fixed random target, backward through time, plain SGD update. Both
frameworks run OMP_NUM_THREADS threads (default 1: on the shared 2-core box more threads
only measure oversubscription). The two frameworks' steps alternate (ours, theirs, ours,
...) so that load from other processes falls on both alike. Prints each median (and best)
wall time, the median process CPU time per step (far less sensitive to other load than
wall time), the GFLOP/s of the matmuls and bigmodel's ratios (< 1 means bigmodel is faster;
the goal is <= 1).

    PYTHONPATH=python python3 bench/bench_lstm_cpu.py [--small] [--repeat N] [--warmup N]
"""
import argparse
import os

from _cpu_timing import default_threads, time_alternating, torch_peer

THREADS = default_threads()  # before numpy/OpenBLAS/bigmodel load
import numpy as np  # noqa: E402

import bigmodel as bm  # noqa: E402

torch = torch_peer(THREADS)


def bigmodel_step(x, target, hidden, layers):
    bm.manual_seed(0)
    model = bm.nn.LSTM(x.shape[2], hidden, num_layers=layers)
    opt = bm.optim.SGD(model.parameters(), lr=0.01)
    xb, yb = bm.tensor(x), bm.tensor(target)

    def step():
        opt.zero_grad()
        out, _ = model(xb)
        loss = bm.nn.functional.mse_loss(out, yb)
        loss.backward()
        opt.step()
    return step


def torch_step(x, target, hidden, layers):
    torch.manual_seed(0)
    model = torch.nn.LSTM(x.shape[2], hidden, num_layers=layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    xb, yb = torch.from_numpy(x), torch.from_numpy(target)

    def step():
        opt.zero_grad()
        out, _ = model(xb)
        loss = torch.nn.functional.mse_loss(out, yb)
        loss.backward()
        opt.step()
    return step


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--small", action="store_true", help="batch 16, sequence 32, hidden 128: a quick run")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--seq", type=int, default=None)
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--no-torch", action="store_true")
    args = p.parse_args()
    B, T, H = (16, 32, 128) if args.small else (64, 256, 512)
    B, T, H = args.batch or B, args.seq or T, args.hidden or H
    warmup = args.warmup if args.warmup is not None else (2 if args.small else 1)
    repeat = args.repeat or (10 if args.small else 3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    target = rng.standard_normal((T, B, H)).astype(np.float32)
    # Matmul FLOPs: per layer and step, forward 2*B*4H*(in+H); backward twice that.
    gflop = 3 * args.layers * T * 2 * B * 4 * H * (H + H) / 1e9
    print(f"LSTM training step, batch {B}, sequence {T}, hidden {H}, {args.layers} layers, float32, CPU "
          f"(warm-up {warmup}, median of {repeat}; {gflop:.1f} GFLOP of matmuls per step)", flush=True)
    steps = [bigmodel_step(x, target, H, args.layers)]
    with_torch = torch is not None and not args.no_torch
    if with_torch:
        steps.append(torch_step(x, target, H, args.layers))
    results = time_alternating(steps, warmup, repeat)
    (ours, ours_min, ours_cpu) = results[0]
    print(f"  bigmodel {ours:10.1f} ms (best {ours_min:.1f}, CPU {ours_cpu:.1f})  {gflop / ours * 1e3:6.1f} GFLOP/s",
          flush=True)
    if with_torch:
        (peer, peer_min, peer_cpu) = results[1]
        print(f"  torch    {peer:10.1f} ms (best {peer_min:.1f}, CPU {peer_cpu:.1f})  {gflop / peer * 1e3:6.1f} "
              f"GFLOP/s", flush=True)
        print(f"  bigmodel/torch = {ours / peer:.2f} wall, {ours_cpu / peer_cpu:.2f} CPU  (torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
