"""AdamW step over GPT-2 small's parameters (124M float32, its 148 tensor shapes): the fused
multi-tensor path (bm.optim.AdamW default, one _C._fused_adam_ call) against the per-tensor loop
(foreach=False) and PyTorch's AdamW (fused=True on CUDA, foreach=True on the CPU) when torch is
importable, in the same run. GB/s counts what an AdamW step must move: read p, g, m, v and
write p, m, v (28 bytes per float32 parameter); the copy line is a device copy of a flat
buffer (8 bytes per element) as the bandwidth yardstick.

bfloat16 rows (skip with --no-bf16): the same model with bfloat16 parameters and gradients and
float32 state, fused and per-tensor, without and with float32 master weights (master_weights=True);
their bytes per parameter: 22 (read p, g, m, v; write p, m, v) and 30 (+ read/write the master).
The torch bf16 row is PyTorch's AdamW on bfloat16 parameters (its state is bfloat16: 14 bytes).

Usage: python bench/bench_fused_adamw.py [--device cpu|cuda] [--small] [--smoke] [--reps N] [--no-bf16]
One summary line per case; --small uses a ~1M-parameter model for a quick check, --smoke a
~10K-parameter one and 2 reps (checks the script on the CUDA emulation build, not speed).
A missing or failing PyTorch prints "peer unavailable: ..."; a case of ours that raises
prints "FAIL ..." and the exit status is 1."""
import argparse
import statistics
import sys
import time

import numpy as np

import bigmodel as bm
from bigmodel import nn, optim

try:  # the peer, when the machine has it
    import torch
    TORCH_WHY = None
except Exception as e:  # noqa: BLE001 - any import failure just drops the column
    torch, TORCH_WHY = None, f"torch not importable ({type(e).__name__}: {e})"

FAILED = []


def peer_unavailable(peer, reason, case=None):
    where = f" [{case}]" if case else ""
    print(f"peer unavailable: {peer}{where}: {reason}", flush=True)


def torch_peer(dev):
    """True when PyTorch can run the peer rows on dev; otherwise prints why, once."""
    if torch is None:
        peer_unavailable("torch", TORCH_WHY)
        return False
    if dev == "cuda" and not torch.cuda.is_available():
        peer_unavailable("torch (CUDA)", f"torch {torch.__version__} sees no CUDA device")
        return False
    return True


def torch_adamw(tp, dev):
    """PyTorch's fastest AdamW for dev (fused on CUDA: torch >= 2.0), or None after saying why."""
    try:
        return torch.optim.AdamW(tp, lr=1e-4, weight_decay=0.1,
                                 **({"fused": True} if dev == "cuda" else {"foreach": True}))
    except Exception as e:  # noqa: BLE001 - e.g. a torch without fused AdamW
        peer_unavailable("torch AdamW", f"{type(e).__name__}: {str(e).splitlines()[0][:120]}")
        return None


def gpt2_shapes(d=768, layers=12, vocab=50257, ctx=1024):
    shapes = [(vocab, d), (ctx, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,), (d,), (d,), (d, 4 * d), (4 * d,), (4 * d, d), (d,)]
    return shapes + [(d,), (d,)]


def timer(device):
    """fn -> median milliseconds of `reps` calls after 2 warm-up calls."""
    def run(fn, reps):
        for _ in range(2):
            fn()
        times = []
        for _ in range(reps):
            if device == "cuda":
                start, end = bm.cuda.Event(enable_timing=True), bm.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)
    return run


def torch_timer(device):
    def run(fn, reps):
        for _ in range(2):
            fn()
        times = []
        for _ in range(reps):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if bm.cuda.is_available() else "cpu")
    ap.add_argument("--small", action="store_true", help="a ~1M-parameter model (quick check)")
    ap.add_argument("--smoke", action="store_true", help="a ~10K-parameter model, 2 reps (script check)")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 (mixed-precision) rows")
    args = ap.parse_args()
    dev = args.device
    if dev == "cuda" and not bm.cuda.is_available():
        print("SKIP: no CUDA GPU visible")
        return 0
    if args.smoke:
        shapes = gpt2_shapes(d=16, layers=1, vocab=300, ctx=32)
    else:
        shapes = gpt2_shapes(d=128, layers=2, vocab=5000, ctx=256) if args.small else gpt2_shapes()
    reps = args.reps or (2 if args.smoke else 20 if dev == "cuda" else 5)
    have_torch = torch_peer(dev)
    n = sum(int(np.prod(s)) for s in shapes)
    rng = np.random.default_rng(0)
    host = [(rng.standard_normal(s) * 0.02).astype(np.float32) for s in shapes]
    grads = [(rng.standard_normal(s) * 1e-3).astype(np.float32) for s in shapes]
    params = [nn.Parameter(bm.tensor(a).to(dev)) for a in host]
    for p, g in zip(params, grads):
        p.grad = bm.tensor(g).to(dev)
    step_bytes = 28 * n
    t = timer(dev)
    print(f"# AdamW step, {len(shapes)} tensors, {n / 1e6:.1f}M float32 parameters on {dev}"
          f" (bigmodel threads: {bm.get_num_threads() if hasattr(bm, 'get_num_threads') else '?'})")
    rows = []

    flat = bm.tensor(np.ones(n, np.float32)).to(dev)
    dst = bm.tensor(np.zeros(n, np.float32)).to(dev)
    copy_ms = t(lambda: dst.copy_(flat), reps)
    copy_gbs = 8 * n / copy_ms / 1e6
    del flat, dst
    print(f"copy        n={n / 1e6:.1f}M  {copy_ms:9.3f} ms  {copy_gbs:7.1f} GB/s")

    for name, kw in (("fused", {}), ("per-tensor", {"foreach": False})):
        opt = optim.AdamW(params, lr=1e-4, weight_decay=0.1, **kw)
        try:
            ms = t(opt.step, reps)
        except Exception as e:  # noqa: BLE001 - e.g. an op of the loop path without a CUDA kernel
            print(f"FAIL adamw {name}: {type(e).__name__}: {str(e).splitlines()[0][:100]}", flush=True)
            FAILED.append(name)
            continue
        finally:
            del opt
        rows.append((name, ms))

    torch_ms = None
    if have_torch:
        tdev = "cuda" if dev == "cuda" else "cpu"
        tp = [torch.nn.Parameter(torch.tensor(a, device=tdev)) for a in host]
        for p, g in zip(tp, grads):
            p.grad = torch.tensor(g, device=tdev)
        topt = torch_adamw(tp, dev)
        try:
            torch_ms = torch_timer(dev)(topt.step, reps) if topt is not None else None
        except Exception as e:  # noqa: BLE001
            peer_unavailable("torch AdamW", f"{type(e).__name__}: {str(e).splitlines()[0][:120]}")
        if torch_ms:
            print(f"torch       {'fused' if dev == 'cuda' else 'foreach'}  {torch_ms:9.3f} ms  "
                  f"{step_bytes / torch_ms / 1e6:7.1f} GB/s")

    for name, ms in rows:
        gbs = step_bytes / ms / 1e6
        vs_torch = f"  vs torch {torch_ms / ms:5.2f}x speed" if torch_ms else "  vs torch n/a (peer unavailable)"
        print(f"adamw {name:11s} n={n / 1e6:.1f}M  {ms:9.3f} ms  {gbs:7.1f} GB/s  {gbs / copy_gbs:5.2f} of copy"
              f"{vs_torch}")
    if len(rows) == 2:
        print(f"fused / per-tensor speedup: {rows[1][1] / rows[0][1]:.2f}x")
    if not args.no_bf16:
        del params
        bench_bf16(dev, t, host, grads, n, reps, copy_gbs, have_torch)
    if FAILED:
        print(f"FAILED cases ({len(FAILED)}): {', '.join(FAILED)}")
    return 1 if FAILED else 0


def bench_bf16(dev, t, host, grads, n, reps, copy_gbs, have_torch):
    """bfloat16 parameters + float32 state: fused vs per-tensor, plain and with master weights."""
    params = [nn.Parameter(bm.tensor(a).to(dev).to(dtype=bm.bfloat16)) for a in host]
    for p, g in zip(params, grads):
        p.grad = bm.tensor(g).to(dev).to(dtype=bm.bfloat16)
    torch_ms = None
    if have_torch:
        tdev = "cuda" if dev == "cuda" else "cpu"
        tp = [torch.nn.Parameter(torch.tensor(a, device=tdev).bfloat16()) for a in host]
        for p, g in zip(tp, grads):
            p.grad = torch.tensor(g, device=tdev).bfloat16()
        topt = torch_adamw(tp, dev)
        try:
            torch_ms = torch_timer(dev)(topt.step, reps) if topt is not None else None
        except Exception as e:  # noqa: BLE001 - e.g. an old CPU torch without bfloat16 foreach kernels
            peer_unavailable("torch bf16 AdamW", f"{type(e).__name__}: {str(e).splitlines()[0][:120]}")
        if torch_ms:
            print(f"torch bf16  {'fused' if dev == 'cuda' else 'foreach'}  {torch_ms:9.3f} ms  "
                  f"{14 * n / torch_ms / 1e6:7.1f} GB/s (bf16 state)")
    results = {}
    for master in (False, True):
        for name, kw in (("fused", {}), ("per-tensor", {"foreach": False})):
            opt = optim.AdamW(params, lr=1e-4, weight_decay=0.1, master_weights=master, **kw)
            try:
                ms = t(opt.step, reps)
            except Exception as e:  # noqa: BLE001 - e.g. an op of the loop path without a CUDA kernel
                label = f"bf16 {name}{'+master' if master else ''}"
                print(f"FAIL adamw {label}: {type(e).__name__}: {str(e).splitlines()[0][:100]}", flush=True)
                FAILED.append(label)
                continue
            finally:
                del opt
            results[(master, name)] = ms
            gbs = (30 if master else 22) * n / ms / 1e6
            vs_torch = f"  vs torch bf16 {torch_ms / ms:5.2f}x speed" if torch_ms else "  vs torch n/a"
            label = f"bf16 {name}{'+master' if master else ''}"
            print(f"adamw {label:22s} n={n / 1e6:.1f}M  {ms:9.3f} ms  {gbs:7.1f} GB/s  {gbs / copy_gbs:5.2f} of copy"
                  f"{vs_torch}")
    for master in (False, True):
        if (master, "fused") in results and (master, "per-tensor") in results:
            print(f"bf16{'+master' if master else ''} fused / per-tensor speedup: "
                  f"{results[(master, 'per-tensor')] / results[(master, 'fused')]:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
