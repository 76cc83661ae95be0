"""TFLOP/s of bigmodel's fused attention (F.scaled_dot_product_attention on CUDA, kernels/cuda/
flash_attention*) against PyTorch's F.scaled_dot_product_attention on the same GPU: bfloat16,
batch*heads = 128 (B=16, H=8), N = 512..8192, head dims 64 and 128, causal and not, forward and
forward+backward. CUDA events after warm-up, median of repeats (repeats sized to ~0.25 s a case).
FLOPs: forward 4*B*H*N*N*d (two matmuls), forward+backward 3.5x that (backward = five
matmuls), halved when causal. One summary line per case with the ratio ours/torch.
Usage: python bench/bench_attention_cuda.py [--n 512,1024,...] [--d 64,128] [--fwd-only]"""
import argparse
import statistics
import sys
import time

import bigmodel as bm


def timed(fn, budget_s=0.25, max_reps=50):
    fn()  # warm-up: first-call set-up (smem opt-in, allocator) stays out of the numbers
    fn()
    start, end = bm.cuda.Event(enable_timing=True), bm.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    once_ms = start.elapsed_time(end)
    reps = max(3, min(max_reps, int(budget_s * 1e3 / max(once_ms, 1e-3))))
    times = []
    for _ in range(reps):
        start, end = bm.cuda.Event(enable_timing=True), bm.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def torch_timed(torch, fn, budget_s=0.25, max_reps=50):
    fn()
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    once_ms = (time.perf_counter() - t0) * 1e3
    reps = max(3, min(max_reps, int(budget_s * 1e3 / max(once_ms, 1e-3))))
    times = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="512,1024,2048,4096,8192")
    ap.add_argument("--d", default="64,128")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--fwd-only", action="store_true")
    args = ap.parse_args()
    if not bm.cuda.is_available():
        print("SKIP: no CUDA GPU visible")
        return 0
    try:
        import torch
        import torch.nn.functional as TF
        have_torch = torch.cuda.is_available()
    except ImportError:
        have_torch = False
    if not have_torch:
        print("note: PyTorch with CUDA not found; ratios are n/a")
    F = bm.nn.functional
    B, H = args.batch, args.heads
    rows = []
    for d in (int(x) for x in args.d.split(",")):
        for n in (int(x) for x in args.n.split(",")):
            shape = (B, H, n, d)
            # One random pool, four views at offsets of 1024 elements (16-byte aligned): CPU
            # sampling of four separate 134M-element tensors would dominate the run.
            numel = B * H * n * d
            pool = bm.randn(numel + 3 * 1024).to(bm.bfloat16).cuda()
            q, k, v, g = (pool.narrow(0, i * 1024, numel).view(*shape) for i in range(4))
            qg, kg, vg = (t.detach().requires_grad_(True) for t in (q, k, v))
            if have_torch:
                tq, tk, tv, tg = (torch.randn(shape, device="cuda", dtype=torch.bfloat16) for _ in range(4))
                tqg, tkg, tvg = (t.detach().requires_grad_(True) for t in (tq, tk, tv))
            for causal in (False, True):
                flops = 4.0 * B * H * n * n * d * (0.5 if causal else 1.0)
                modes = ["fwd"] if args.fwd_only else ["fwd", "fwd+bwd"]
                for mode in modes:
                    if mode == "fwd":
                        ours = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                        theirs = (lambda: TF.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)) \
                            if have_torch else None
                        fl = flops
                    else:
                        def ours():
                            F.scaled_dot_product_attention(qg, kg, vg, is_causal=causal).backward(g)

                        def theirs():
                            torch.autograd.grad(TF.scaled_dot_product_attention(tqg, tkg, tvg, is_causal=causal),
                                                (tqg, tkg, tvg), tg)
                        if not have_torch:
                            theirs = None
                        fl = 3.5 * flops
                    ms = timed(ours)
                    tms = torch_timed(torch, theirs) if theirs else float("nan")
                    rows.append((mode, d, n, causal, ms, fl / ms / 1e9, tms, fl / tms / 1e9 if theirs else float("nan")))
                    r = rows[-1]
                    print(f"attention bf16 {mode:7s} B={B} H={H} N={n:5d} d={d:3d} causal={int(causal)}: "
                          f"ours {r[4]:9.3f} ms {r[5]:7.1f} TFLOP/s | torch {r[6]:9.3f} ms {r[7]:7.1f} TFLOP/s | "
                          f"ratio ours/torch {r[5] / r[7] if theirs else float('nan'):.2f}", flush=True)
    # Compact summary last (device_check.sh shows the tail): one line per mode, d and causality,
    # "N: ours TFLOP/s (ratio to torch)" across the lengths.
    print("\nsummary: ours TFLOP/s (ours/torch) per N, bf16, B*H = %d" % (B * H))
    for mode in ("fwd", "fwd+bwd"):
        for d in sorted({r[1] for r in rows}):
            for causal in (False, True):
                cells = [f"{n}: {o:.0f} ({o / t:.2f})" for m, dd, n, c, _, o, _, t in rows
                         if m == mode and dd == d and c == causal]
                if cells:
                    print(f"{mode:7s} d={d:3d} causal={int(causal)}  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
