"""Activation checkpointing on the GPT example: peak memory of a training step with and
without bm.utils.checkpoint around each transformer block (examples/train_gpt.py --checkpoint).

Each configuration runs in a fresh subprocess. The figure is the peak growth during the
training steps over the memory held once the model, optimizer state and batch exist:
  - from bigmodel's CPU allocator counters (bm.memory_stats("cpu"), bytes of live tensor
    storage) when this build has them;
  - otherwise from the process's peak resident set (resource.getrusage ru_maxrss) minus the
    resident set before the steps, which also counts allocator and Python overheads.
Also prints the step time, since checkpointing pays for its memory with one more forward.

    PYTHONPATH=python python3 bench/bench_checkpoint_memory.py [--n-layer 4 --n-embd 128 ...]
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--block-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--vocab", type=int, default=96)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--source", choices=["auto", "allocator", "rss"], default="auto",
                   help="where the peak comes from (auto: the allocator counters when present)")
    p.add_argument("--child", choices=["plain", "checkpoint"], default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _cpu_stats(bm):
    """(current, peak) bytes from bm.memory_stats("cpu"), or None when the build lacks it."""
    fn = getattr(bm, "memory_stats", None)
    if fn is None:
        return None
    try:
        st = fn("cpu")
    except Exception:  # noqa: BLE001  (an older signature or CUDA-only build)
        return None
    if not isinstance(st, dict):
        st = {k: getattr(st, k) for k in dir(st) if not k.startswith("_")}
    cur = next((st[k] for k in ("current", "allocated_bytes", "current_bytes", "allocated") if k in st), None)
    peak = next((st[k] for k in ("peak", "peak_allocated_bytes", "peak_bytes") if k in st), None)
    return None if cur is None or peak is None else (int(cur), int(peak))


def _reset_peak(bm):
    fn = getattr(bm, "reset_peak_memory_stats", None)
    if fn is not None:
        try:
            fn("cpu")
        except Exception:  # noqa: BLE001
            pass


def _rss_kib():
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(args):
    import importlib.util
    import resource
    import time

    import numpy as np

    import bigmodel as bm
    from bigmodel.models import GPT, GPTConfig

    spec = importlib.util.spec_from_file_location("train_gpt", os.path.join(ROOT, "examples", "train_gpt.py"))
    train_gpt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_gpt)

    bm.manual_seed(0)
    cfg = GPTConfig(vocab_size=args.vocab, block_size=args.block_size, n_layer=args.n_layer, n_head=args.n_head,
                    n_embd=args.n_embd, dropout=0.0)
    model = GPT(cfg)
    if args.child == "checkpoint":
        train_gpt.enable_activation_checkpointing(model)
    opt = bm.optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = bm.tensor(rng.integers(0, args.vocab, (args.batch_size, args.block_size)))
    y = bm.tensor(rng.integers(0, args.vocab, (args.batch_size, args.block_size)))

    def step():
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    step()  # warm-up: optimizer state and one-off buffers exist from here on
    use_alloc = args.source != "rss" and _cpu_stats(bm) is not None
    if args.source == "allocator" and not use_alloc:
        raise SystemExit("bm.memory_stats('cpu') is not available in this build")
    _reset_peak(bm)
    base_alloc = _cpu_stats(bm)
    base_rss = _rss_kib() * 1024
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    losses = [step() for _ in range(args.steps)]
    dt = (time.perf_counter() - t0) / args.steps
    out = {"mode": args.child, "step_s": dt, "loss": losses[-1]}
    if use_alloc:
        cur, peak = _cpu_stats(bm)
        out.update(source="allocator", peak_growth=peak - base_alloc[0], baseline=base_alloc[0])
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        # If the warm-up already reached a higher peak, the growth is bounded by it.
        out.update(source="rss", peak_growth=max(peak, peak_before) - base_rss, baseline=base_rss,
                   warmup_peak_over_baseline=peak_before - base_rss)
    print(json.dumps(out))


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    base = [sys.executable, os.path.abspath(__file__)] + [a for a in (argv or sys.argv[1:])]
    results = {}
    for mode in ("plain", "checkpoint"):
        proc = subprocess.run(base + ["--child", mode], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{mode} run failed:\n{proc.stderr}")
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"GPT n_layer={args.n_layer} n_head={args.n_head} n_embd={args.n_embd} block={args.block_size} "
          f"batch={args.batch_size} vocab={args.vocab}; peak growth during a training step "
          f"(source: {results['plain']['source']})")
    print(f"{'mode':<12}{'peak MiB':>10}{'step s':>9}{'loss':>10}")
    for mode, r in results.items():
        print(f"{mode:<12}{r['peak_growth'] / 2**20:>10.1f}{r['step_s']:>9.2f}{r['loss']:>10.4f}")
    p, c = results["plain"]["peak_growth"], results["checkpoint"]["peak_growth"]
    print(f"checkpointing saves {(p - c) / 2**20:.1f} MiB ({100 * (p - c) / max(p, 1):.0f}% of the plain peak) "
          f"for {results['checkpoint']['step_s'] / results['plain']['step_s']:.2f}x the step time")


if __name__ == "__main__":
    main()
