"""The fused linear epilogue on the GPU at GPT-2 (124M) shapes: F._linear_act(x, W, b,
"gelu_tanh") (one GEMM whose epilogue adds the bias and applies GELU) against the unfused
bigmodel ops (matmul, add, gelu: three kernels) and against PyTorch's
F.gelu(F.linear(x, W, b), approximate="tanh") on the same GPU; also F.linear with bias
(bias in the epilogue vs matmul + add), and forward + backward (the GELU path then also writes
the pre-activation as the GEMM's aux output). Both GEMM backends (ours, cublas). CUDA events
after warm-up, median of repeats. One summary line per case; 'vs unfused' and 'vs torch' > 1
mean the fused bigmodel op is faster. Usage: python bench/bench_linear_cuda.py [--quick]"""
import sys

import bigmodel as bm
import bigmodel.nn.functional as F
from _cuda_timing import median_ms

try:  # the peer, when the machine has it
    import torch
    if not torch.cuda.is_available():
        torch = None
except Exception:  # noqa: BLE001 - any import failure just drops the column
    torch = None

# (name, rows = batch * seq, in_features, out_features, activation)
SHAPES = [
    ("c_fc   8x1024 768->3072 gelu_tanh", 8 * 1024, 768, 3072, "gelu_tanh"),
    ("c_proj 8x1024 3072->768 bias", 8 * 1024, 3072, 768, "none"),
    ("c_attn 8x1024 768->2304 bias", 8 * 1024, 768, 2304, "none"),
]
QUICK_SHAPES = SHAPES[:2]


def unfused(x, w, b, act):
    y = bm.matmul(x, w.t()) + b
    return F.gelu(y, approximate="tanh") if act == "gelu_tanh" else y


def fused(x, w, b, act):
    return F._linear_act(x, w, b, act) if act != "none" else F.linear(x, w, b)


def torch_op(x, w, b, act):
    y = torch.nn.functional.linear(x, w, b)
    return torch.nn.functional.gelu(y, approximate="tanh") if act == "gelu_tanh" else y


def main():
    if not bm.cuda.is_available():
        print("SKIP: no CUDA GPU visible")
        return 0
    quick = "--quick" in sys.argv
    reps = 10 if quick else 30
    dtypes = [bm.bfloat16] if quick else [bm.bfloat16, bm.float32]
    tnames = {bm.float32: "float32", bm.bfloat16: "bfloat16"}
    before = bm.backends.gemm
    rows = []  # (name, fused ms, unfused ms, torch ms or None, flops)
    try:
        for backend in ["ours", "cublas"]:
            bm.backends.gemm = backend
            for name, m, k, n, act in (QUICK_SHAPES if quick else SHAPES):
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
                    with bm.no_grad():
                        f_ms = median_ms(lambda: fused(x, w, b, act), bm.cuda.Event, reps)
                        u_ms = median_ms(lambda: unfused(x, w, b, act), bm.cuda.Event, reps)
                    t_ms = None
                    if torch:
                        with torch.no_grad():
                            t_ms = median_ms(lambda: torch_op(tx, tw, tb, act), torch.cuda.Event, reps)
                    rows.append((f"fwd     {label}", f_ms, u_ms, t_ms, flops))

                    # Forward + backward (dX, dW, db): 3x the forward's flops.
                    wl, bl = w.detach().requires_grad_(), b.detach().requires_grad_()

                    def step(fn):
                        xl = x.detach().requires_grad_()
                        fn(xl, wl, bl, act).backward(g)
                        wl.grad = None
                        bl.grad = None

                    f_ms = median_ms(lambda: step(fused), bm.cuda.Event, reps)
                    u_ms = median_ms(lambda: step(unfused), bm.cuda.Event, reps)
                    t_ms = None
                    if torch:
                        twl, tbl = tw.detach().requires_grad_(), tb.detach().requires_grad_()

                        def torch_step():
                            xl = tx.detach().requires_grad_()
                            torch_op(xl, twl, tbl, act).backward(tg)
                            twl.grad = None
                            tbl.grad = None
                        t_ms = median_ms(torch_step, torch.cuda.Event, reps)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
