"""The fused linear epilogue on the GPU at GPT-2 (124M) shapes: F._linear_act(x, W, b,
"gelu_tanh") (one GEMM whose epilogue adds the bias and applies GELU) against the unfused
bigmodel ops (matmul, add, gelu: three kernels) and against PyTorch's
F.gelu(F.linear(x, W, b), approximate="tanh") on the same GPU; also F.linear with bias
(bias in the epilogue vs matmul + add), and forward + backward (the GELU path then also writes
the pre-activation as the GEMM's aux output). Both GEMM backends (ours, cublas). CUDA events
after warm-up, median of repeats. One summary line per case; 'vs unfused' and 'vs torch' > 1
mean the fused bigmodel op is faster. The cublas rows are a peer: when cuBLASLt is missing or
fails they print "peer unavailable: ..." instead, as does a missing PyTorch (column -); a case
of ours that raises prints "FAIL ..." and the exit status is 1.
Usage: python bench/bench_linear_cuda.py [--quick] [--smoke]   (--smoke: tiny odd shapes, 2 reps)"""
import argparse
import sys

import bigmodel as bm
import bigmodel.nn.functional as F
from _cuda_timing import exit_status, first_line, median_ms, parse_gpu_bench_args, peer_unavailable, torch_cuda_peer

torch, TORCH_WHY = torch_cuda_peer()

# (name, rows = batch * seq, in_features, out_features, activation)
SHAPES = [
    ("c_fc   8x1024 768->3072 gelu_tanh", 8 * 1024, 768, 3072, "gelu_tanh"),
    ("c_proj 8x1024 3072->768 bias", 8 * 1024, 3072, 768, "none"),
    ("c_attn 8x1024 768->2304 bias", 8 * 1024, 768, 2304, "none"),
]
QUICK_SHAPES = SHAPES[:2]
SMOKE_SHAPES = [  # odd sizes: every tile has a tail
    ("smoke 37 48->80 gelu_tanh", 37, 48, 80, "gelu_tanh"),
    ("smoke 37 80->24 bias", 37, 80, 24, "none"),
]


def unfused(x, w, b, act):
    y = bm.matmul(x, w.t()) + b
    return F.gelu(y, approximate="tanh") if act == "gelu_tanh" else y


def fused(x, w, b, act):
    return F._linear_act(x, w, b, act) if act != "none" else F.linear(x, w, b)


def torch_op(x, w, b, act):
    y = torch.nn.functional.linear(x, w, b)
    return torch.nn.functional.gelu(y, approximate="tanh") if act == "gelu_tanh" else y


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="bfloat16, two shapes, 10 reps")
    args = parse_gpu_bench_args(ap, TORCH_WHY, "tiny shapes, 2 reps: checks the script, not speed")
    if args is None:
        return 0
    quick = args.quick
    reps = 10 if quick else 30
    dtypes = [bm.bfloat16] if quick else [bm.bfloat16, bm.float32]
    tnames = {bm.float32: "float32", bm.bfloat16: "bfloat16"}
    shapes = SMOKE_SHAPES if args.smoke else QUICK_SHAPES if quick else SHAPES
    before = bm.backends.gemm
    rows = []  # (name, fused ms, unfused ms, torch ms or None, flops)
    failed = []
    try:
        for backend in ["ours", "cublas"]:
            try:
                bm.backends.gemm = backend
            except Exception as e:  # noqa: BLE001 - a build that cannot select it
                peer_unavailable(backend, first_line(e))
                continue
            for name, m, k, n, act in shapes:
                for dt in dtypes:
                    x = bm.randn(m, k, device="cuda").to(dt)
                    w = (bm.randn(n, k, device="cuda") * (k ** -0.5)).to(dt)
                    b = bm.randn(n, device="cuda").to(dt)
                    g = bm.randn(m, n, device="cuda").to(dt)
                    tx = tw = tb = tg = None
                    if torch:
                        tdt = getattr(torch, tnames[dt])
                        tx = torch.randn(m, k, device="cuda", dtype=tdt)
                        tw = torch.randn(n, k, device="cuda", dtype=tdt) * (k ** -0.5)
                        tb = torch.randn(n, device="cuda", dtype=tdt)
                        tg = torch.randn(m, n, device="cuda", dtype=tdt)
                    label = f"{backend:6s} {name} {tnames[dt]}"
                    flops = 2.0 * m * n * k
                    try:
                        with bm.no_grad():
                            f_ms = median_ms(lambda: fused(x, w, b, act), bm.cuda.Event, reps)
                            u_ms = median_ms(lambda: unfused(x, w, b, act), bm.cuda.Event, reps)
                    except Exception as e:  # noqa: BLE001 - cuBLASLt missing: a peer; ours: a failure
                        if backend == "ours":
                            print(f"FAIL fwd {label}: {first_line(e)}", flush=True)
                            failed.append(f"fwd {label}")
                        else:
                            peer_unavailable(backend, first_line(e), label.strip())
                        continue
                    t_ms = None
                    if torch:
                        try:
                            with torch.no_grad():
                                t_ms = median_ms(lambda: torch_op(tx, tw, tb, act), torch.cuda.Event, reps)
                        except Exception as e:  # noqa: BLE001
                            peer_unavailable("torch", first_line(e), label)
                    rows.append((f"fwd     {label}", f_ms, u_ms, t_ms, flops))

                    # Forward + backward (dX, dW, db): 3x the forward's flops.
                    wl, bl = w.detach().requires_grad_(), b.detach().requires_grad_()

                    def step(fn):
                        xl = x.detach().requires_grad_()
                        fn(xl, wl, bl, act).backward(g)
                        wl.grad = None
                        bl.grad = None

                    try:
                        f_ms = median_ms(lambda: step(fused), bm.cuda.Event, reps)
                        u_ms = median_ms(lambda: step(unfused), bm.cuda.Event, reps)
                    except Exception as e:  # noqa: BLE001
                        if backend == "ours":
                            print(f"FAIL fwd+bwd {label}: {first_line(e)}", flush=True)
                            failed.append(f"fwd+bwd {label}")
                        else:
                            peer_unavailable(backend, first_line(e), f"fwd+bwd {label.strip()}")
                        continue
                    t_ms = None
                    if torch:
                        twl, tbl = tw.detach().requires_grad_(), tb.detach().requires_grad_()

                        def torch_step():
                            xl = tx.detach().requires_grad_()
                            torch_op(xl, twl, tbl, act).backward(tg)
                            twl.grad = None
                            tbl.grad = None
                        try:
                            t_ms = median_ms(torch_step, torch.cuda.Event, reps)
                        except Exception as e:  # noqa: BLE001
                            peer_unavailable("torch", first_line(e), f"fwd+bwd {label}")
                    rows.append((f"fwd+bwd {label}", f_ms, u_ms, t_ms, 3 * flops))
                    del x, w, b, g, tx, tw, tb, tg
    finally:
        bm.backends.gemm = before

    peer = "torch" if torch else "torch (absent)"
    print(f"{'linear case':58s} {'ms':>8s} {'TFLOP/s':>8s} {'unfused ms':>10s} {'vs unfused':>10s} "
          f"{'vs ' + peer:>16s}")
    for name, f_ms, u_ms, t_ms, flops in rows:
        ratio = f"{t_ms / f_ms:16.2f}" if t_ms else f"{'-':>16s}"
        print(f"{name:58s} {f_ms:8.3f} {flops / f_ms / 1e9:8.1f} {u_ms:10.3f} {u_ms / f_ms:10.2f} {ratio}")
    return exit_status(failed)


if __name__ == "__main__":
    sys.exit(main())
