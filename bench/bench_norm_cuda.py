"""GB/s of bigmodel's CUDA softmax, log_softmax, layer_norm (forward; forward + backward)
and fused cross-entropy (forward + backward) against a same-size device copy and, where
PyTorch with CUDA is importable, the same op in PyTorch on the same GPU. CUDA events after
warm-up, median of repeats; inputs rotate over >= 256 MB so small cases do not run from L2.
Bytes counted: forward = input read + output written; layer_norm fwd+bwd = forward plus
x and grad read and grad_input written (the weight/bias gradients are O(cols));
cross-entropy fwd+bwd = logits read twice + grad written. One summary line per case;
'vs torch' > 1 means bigmodel is faster. A case whose peer fails prints "peer unavailable: ..."
and keeps its own numbers; a case of ours that raises prints "FAIL ..." and the exit status is 1.
Usage: python bench/bench_norm_cuda.py [--quick] [--smoke]   (--smoke: tiny shapes, 2 reps)"""
import argparse
import sys

import bigmodel as bm
from _cuda_timing import exit_status, parse_gpu_bench_args, print_bandwidth_table, time_case, torch_cuda_peer
import bigmodel.nn.functional as F

torch, TORCH_WHY = torch_cuda_peer()

ROTATE_BYTES = 256 << 20


def copies(make, nbytes):
    """Enough independent inputs that cycling through them exceeds the L2 several times."""
    return [make() for _ in range(max(1, -(-ROTATE_BYTES // max(nbytes, 1))))]


def main():
    global ROTATE_BYTES
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="float32 only, fewer shapes and repeats")
    args = parse_gpu_bench_args(ap, TORCH_WHY, "tiny shapes, 2 reps: checks the script, not speed")
    if args is None:
        return 0
    quick = args.quick
    reps = 10 if quick else 25
    if args.smoke:
        ROTATE_BYTES = 1 << 14
    rows = []  # (name, ms, bytes, torch ms or None)
    failed = []

    def case(name, fn, nbytes, torch_fn=None):
        time_case(rows, failed, name, fn, nbytes, torch, torch_fn, reps=reps, pass_index=True)

    n = 1 << 12 if args.smoke else 1 << 28
    a, out = bm.rand(n, device="cuda"), bm.empty(n, device="cuda")
    case(f"copy f32 {4 * n / 2**20:g} MiB (memcpy)", lambda i: out.copy_(a), 2 * 4 * n)
    del a, out
    copy_gbs = rows[0][2] / rows[0][1] / 1e6 if rows else float("nan")

    tdt = {bm.float32: "float32", bm.bfloat16: "bfloat16", bm.float16: "float16"}
    # Smoke shapes: one short row (a warp per row) and one long, odd row (block per row, tail).
    softmax_shapes = [(8, 64), (3, 1500)] if args.smoke else [(4096, 1024), (16384, 4096), (8192, 50257)]
    for (r, c) in softmax_shapes:
        for dt in ([bm.float32] if quick else [bm.float32, bm.bfloat16]):
            es = 4 if dt == bm.float32 else 2
            nbytes = r * c * es
            xs = copies(lambda: bm.randn(r, c, device="cuda").to(dt), nbytes)
            txs = copies(lambda: torch.randn(r, c, device="cuda").to(getattr(torch, tdt[dt])), nbytes) if torch else None
            name = f"{r}x{c} {tdt[dt]}"
            case(f"softmax {name}", lambda i: bm.softmax(xs[i % len(xs)], -1), 2 * nbytes,
                 torch and (lambda i: torch.softmax(txs[i % len(txs)], -1)))
            case(f"log_softmax {name}", lambda i: bm.log_softmax(xs[i % len(xs)], -1), 2 * nbytes,
                 torch and (lambda i: torch.log_softmax(txs[i % len(txs)], -1)))
            del xs, txs

    ln_shapes = [(8, 64), (3, 1500)] if args.smoke else [(4096, 1024), (16384, 4096), (4096, 12288)]
    for (r, c) in ln_shapes:
        for dt in ([bm.float32] if quick else [bm.float32, bm.bfloat16]):
            es = 4 if dt == bm.float32 else 2
            nbytes = r * c * es
            xs = copies(lambda: bm.randn(r, c, device="cuda").to(dt), nbytes)
            w, b = bm.randn(c, device="cuda").to(dt), bm.randn(c, device="cuda").to(dt)
            tdtype = getattr(torch, tdt[dt]) if torch else None
            txs = copies(lambda: torch.randn(r, c, device="cuda", dtype=tdtype), nbytes) if torch else None
            tw = torch.randn(c, device="cuda", dtype=tdtype) if torch else None
            tb = torch.randn(c, device="cuda", dtype=tdtype) if torch else None
            name = f"{r}x{c} {tdt[dt]}"
            case(f"layer_norm fwd {name}", lambda i: F.layer_norm(xs[i % len(xs)], (c,), w, b), 2 * nbytes,
                 torch and (lambda i: torch.nn.functional.layer_norm(txs[i % len(txs)], (c,), tw, tb)))
            # Forward + backward with a fresh leaf per call (no gradient accumulation).
            g = bm.randn(r, c, device="cuda").to(dt)
            wl, bl = w.detach().requires_grad_(), b.detach().requires_grad_()
            tg = torch.randn(r, c, device="cuda", dtype=tdtype) if torch else None
            twl = tw.detach().requires_grad_() if torch else None
            tbl = tb.detach().requires_grad_() if torch else None

            def ln_step(i):
                x = xs[i % len(xs)].detach().requires_grad_()
                F.layer_norm(x, (c,), wl, bl).backward(g)

            def torch_ln_step(i):
                x = txs[i % len(txs)].detach().requires_grad_()
                torch.nn.functional.layer_norm(x, (c,), twl, tbl).backward(tg)
            case(f"layer_norm fwd+bwd {name}", ln_step, 5 * nbytes, torch and torch_ln_step)
            del xs, txs

    ce_shapes = [(8192, 50257)] if quick else [(4096, 32000), (8192, 50257)]
    for (r, c) in [(4, 1000)] if args.smoke else ce_shapes:
        for dt in [bm.float32, bm.bfloat16]:
            es = 4 if dt == bm.float32 else 2
            nbytes = r * c * es
            x = bm.randn(r, c, device="cuda").to(dt)
            t = bm.randint(0, c, (r,), device="cuda")
            tdtype = getattr(torch, tdt[dt]) if torch else None
            tx = torch.randn(r, c, device="cuda", dtype=tdtype) if torch else None
            tt = torch.randint(0, c, (r,), device="cuda") if torch else None

            def ce_step(i):
                xl = x.detach().requires_grad_()
                F.cross_entropy(xl, t, label_smoothing=0.1).backward()

            def torch_ce_step(i):
                xl = tx.detach().requires_grad_()
                torch.nn.functional.cross_entropy(xl, tt, label_smoothing=0.1).backward()
            case(f"cross_entropy fwd+bwd {r}x{c} {tdt[dt]}", ce_step, 3 * nbytes, torch and torch_ce_step)
            del x, tx

    print_bandwidth_table(rows, copy_gbs, torch is not None, 40)
    return exit_status(failed)


if __name__ == "__main__":
    sys.exit(main())
