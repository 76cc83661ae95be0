"""TFLOP/s of bigmodel's fused attention (F.scaled_dot_product_attention on CUDA, kernels/cuda/
flash_attention*) against PyTorch's F.scaled_dot_product_attention on the same GPU: bfloat16,
batch*heads = 128 (B=16, H=8), N = 512..8192, head dims 64 and 128, causal and not, forward and
forward+backward. CUDA events after warm-up, median of repeats (repeats sized to ~0.25 s a case).
FLOPs: forward 4*B*H*N*N*d (two matmuls), forward+backward 3.5x that (backward = five
matmuls), halved when causal. One summary line per case with the ratio ours/torch, and with
the cuDNN baseline (bm.backends.attention = "cudnn", cuDNN's fused SDPA) in the same run, ours/cudnn.
A peer that is missing or fails prints "peer unavailable: ..." (its columns read nan) and the
case keeps our numbers; a case of ours that raises prints "FAIL ..." and the exit status is 1.
Usage: python bench/bench_attention_cuda.py [--n 512,1024,...] [--d 64,128] [--fwd-only] [--no-cudnn]
       [--smoke]   (--smoke: B=1 H=2 N=64,100 d=64,128, 2 reps: checks the script, not speed)"""
import argparse
import sys

import bigmodel as bm
from _cuda_timing import exit_status, first_line, median_ms, parse_gpu_bench_args, peer_unavailable, torch_cuda_peer


def timed(fn, event_cls):
    # Two warm-ups keep first-call set-up (smem opt-in, allocator) out of the numbers; repeats
    # sized to ~0.25 s a case, 3..50.
    return median_ms(fn, event_cls, reps=50, warmup=2, budget_s=0.25)


def with_backend(name, fn):
    """fn run with bm.backends.attention = name (the choice is read at each call)."""
    def run():
        before = bm.backends.attention
        bm.backends.attention = name
        try:
            return fn()
        finally:
            bm.backends.attention = before
    return run


def cudnn_missing():
    """None when the cuDNN attention baseline runs in this build, else the reason."""
    q = bm.randn(1, 1, 64, 64).to(bm.bfloat16).cuda()
    try:
        with_backend("cudnn", lambda: bm.nn.functional.scaled_dot_product_attention(q, q, q))()
        return None
    except Exception as e:  # noqa: BLE001 - NotImplementedError (built without it), a cuDNN failure
        return first_line(e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="512,1024,2048,4096,8192")
    ap.add_argument("--d", default="64,128")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--fwd-only", action="store_true")
    ap.add_argument("--no-cudnn", action="store_true", help="skip the cuDNN baseline columns")
    args = parse_gpu_bench_args(ap, smoke_help="tiny shapes, 2 reps: checks the script, not speed")
    if args is None:
        return 0
    if args.smoke:
        args.n, args.d, args.batch, args.heads = "64,100", "64,128", 1, 2
    torch, why = torch_cuda_peer()
    if torch is not None and not hasattr(torch.nn.functional, "scaled_dot_product_attention"):
        torch, why = None, f"torch {torch.__version__} has no F.scaled_dot_product_attention (needs >= 2.0)"
    have_torch = torch is not None
    if have_torch:
        import torch.nn.functional as TF
    else:
        peer_unavailable("torch (CUDA)", why)
    F = bm.nn.functional
    B, H = args.batch, args.heads
    rows = []
    cudnn_why = "skipped (--no-cudnn)" if args.no_cudnn else cudnn_missing()
    if cudnn_why:
        peer_unavailable("cudnn attention", cudnn_why)
    failed = []
    cudnn_tflops = {}  # (mode, d, n, causal) -> cuDNN TFLOP/s
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
                    label = f"{mode} N={n} d={d} causal={int(causal)}"
                    try:
                        ms = timed(ours, bm.cuda.Event)
                    except Exception as e:  # noqa: BLE001 - report ours failing, keep the other cases
                        print(f"FAIL attention {label}: {first_line(e)}", flush=True)
                        failed.append(label)
                        continue
                    tms = float("nan")
                    if theirs:
                        try:
                            tms = timed(theirs, torch.cuda.Event)
                        except Exception as e:  # noqa: BLE001
                            peer_unavailable("torch", first_line(e), label)
                            theirs = None
                    cms = float("nan")
                    if not cudnn_why:
                        try:
                            cms = timed(with_backend("cudnn", ours), bm.cuda.Event)
                        except Exception as e:  # noqa: BLE001 - a case cuDNN rejects: say so, keep going
                            peer_unavailable("cudnn", first_line(e), label)
                    cudnn_tflops[(mode, d, n, causal)] = fl / cms / 1e9
                    rows.append((mode, d, n, causal, ms, fl / ms / 1e9, tms, fl / tms / 1e9 if theirs else float("nan")))
                    r = rows[-1]
                    print(f"attention bf16 {mode:7s} B={B} H={H} N={n:5d} d={d:3d} causal={int(causal)}: "
                          f"ours {r[4]:9.3f} ms {r[5]:7.1f} TFLOP/s | torch {r[6]:9.3f} ms {r[7]:7.1f} TFLOP/s | "
                          f"ratio ours/torch {r[5] / r[7] if theirs else float('nan'):.2f} | "
                          f"cudnn {cms:9.3f} ms {fl / cms / 1e9:7.1f} TFLOP/s | ratio ours/cudnn "
                          f"{cms / r[4]:.2f}", flush=True)
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
    if not cudnn_why:
        print("\nsummary: ours TFLOP/s (ours/cudnn) per N, bf16, B*H = %d" % (B * H))
        for mode in ("fwd", "fwd+bwd"):
            for d in sorted({r[1] for r in rows}):
                for causal in (False, True):
                    cells = [f"{n}: {o:.0f} ({o / cudnn_tflops[(m, dd, n, c)]:.2f})"
                             for m, dd, n, c, _, o, _, _ in rows if m == mode and dd == d and c == causal]
                    if cells:
                        print(f"{mode:7s} d={d:3d} causal={int(causal)}  " + "  ".join(cells))
    return exit_status(failed)


if __name__ == "__main__":
    sys.exit(main())
