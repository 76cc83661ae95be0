"""GB/s of bigmodel's CUDA copy, cast, binary, unary, where and random kernels against a
same-dtype device copy (cudaMemcpyAsync) and, where PyTorch with CUDA is importable, the same
op in PyTorch on the same GPU; timed with CUDA events after warm-up, median of repeats.
Bytes counted: each input read once plus the output written once (random ops: output only).
One summary line per case; a case whose peer fails prints "peer unavailable: ..." and keeps
its own numbers; a case of ours that raises prints "FAIL ..." and the exit status is 1.
Usage: python bench/bench_elementwise_cuda.py [--smoke]   (--smoke: 4096 elements, 2 reps)"""
import argparse
import math
import sys

import bigmodel as bm
from _cuda_timing import exit_status, parse_gpu_bench_args, print_bandwidth_table, time_case, torch_cuda_peer

torch, TORCH_WHY = torch_cuda_peer()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = parse_gpu_bench_args(ap, TORCH_WHY)
    if args is None:
        return 0
    n = 1 << 12 if args.smoke else 1 << 28  # 1 GiB of float32 per tensor: far past L2
    side = math.isqrt(n)  # n is a power of 4: a square view for the transposed cases
    a = bm.rand(n, device="cuda")
    b = bm.ones(n, device="cuda")
    out = bm.empty(n, device="cuda")
    ta = torch.rand(n, device="cuda") if torch else None
    rows = []  # (name, ms, bytes moved, torch ms or None)
    failed = []

    def case(name, fn, nbytes, torch_fn=None):
        time_case(rows, failed, name, fn, nbytes, torch, torch_fn)

    case("copy f32 (memcpy)", lambda: out.copy_(a), 2 * 4 * n)
    copy_gbs = rows[0][2] / rows[0][1] / 1e6 if rows else float("nan")
    strided = a.view(side, side).t()
    out2 = bm.empty(side, side, device="cuda")
    case("copy f32 transposed", lambda: out2.copy_(strided), 2 * 4 * n)
    half = bm.empty(n, dtype=bm.float16, device="cuda")
    case("cast f32->f16", lambda: half.copy_(a), (4 + 2) * n)
    case("add f32 (new output)", lambda: bm.add(a, b), 3 * 4 * n, torch and (lambda: torch.add(ta, ta)))
    case("add_ f32 in place", lambda: out.add_(b), 3 * 4 * n)
    case("mul f32 by scalar", lambda: bm.mul(a, 2.0), 2 * 4 * n, torch and (lambda: torch.mul(ta, 2.0)))
    hb = bm.ones(n, dtype=bm.bfloat16, device="cuda")
    case("add bf16", lambda: bm.add(hb, hb), 3 * 2 * n)

    # Unary: memory-bound but for the transcendental ones on the ALUs' side of the line.
    unary = [("neg", bm.neg, "neg"), ("relu", bm.relu, "relu"), ("exp", bm.exp, "exp"),
             ("sigmoid", bm.sigmoid, "sigmoid"), ("tanh", bm.tanh, "tanh"),
             ("gelu", bm.nn.functional.gelu, None), ("silu", bm.nn.functional.silu, None),
             ("sin", bm.sin, "sin")]
    for name, fn, tname in unary:
        tf = (lambda f=getattr(torch, tname): f(ta)) if (torch and tname) else None
        if torch and name == "gelu":
            tf = lambda: torch.nn.functional.gelu(ta)  # noqa: E731
        if torch and name == "silu":
            tf = lambda: torch.nn.functional.silu(ta)  # noqa: E731
        case(f"{name} f32", lambda f=fn: f(a), 2 * 4 * n, tf)
    ah = a.to(bm.bfloat16)
    th = ta.to(torch.bfloat16) if torch else None
    case("exp bf16", lambda: bm.exp(ah), 2 * 2 * n, torch and (lambda: torch.exp(th)))
    case("sigmoid_ f32 in place", lambda: out.sigmoid_(), 2 * 4 * n)
    case("exp f32 transposed", lambda: bm.exp(strided), 2 * 4 * n)
    cond = a > 0.5
    tcond = ta > 0.5 if torch else None
    case("where f32", lambda: bm.where(cond, a, b), (1 + 3 * 4) * n,
         torch and (lambda: torch.where(tcond, ta, ta)))

    # Random: output bytes only; Philox rounds cost ALU time.
    case("rand f32", lambda: out.uniform_(), 4 * n, torch and (lambda: ta.uniform_()))
    case("randn f32", lambda: out.normal_(), 4 * n, torch and (lambda: ta.normal_()))
    case("bernoulli_ f32", lambda: out.bernoulli_(0.5), 4 * n, torch and (lambda: ta.bernoulli_(0.5)))

    print_bandwidth_table(rows, copy_gbs, torch is not None, 28)
    return exit_status(failed)


if __name__ == "__main__":
    sys.exit(main())
