"""GB/s of bigmodel's CUDA reductions (full sums, row sums of short/long rows, column sums,
amax/argmax, var, logsumexp) and indexing kernels (embedding gather, index_select,
scatter_add) against a device-to-device copy of the same bytes and, where PyTorch with CUDA is
importable, the same op in PyTorch on the same GPU. CUDA events after warm-up, median of 20.
Bytes counted: the input read once plus the output written once (copy: read + write).
One summary line per case; "vs torch" > 1 means bigmodel is faster. A case whose peer
fails prints "peer unavailable: ..." and keeps its own numbers; a case of ours that raises
prints "FAIL ..." and the exit status is 1.
Usage: python bench/bench_reduce_cuda.py [--smoke]   (--smoke: 64K elements, 2 reps)"""
import argparse
import sys

import bigmodel as bm
from _cuda_timing import exit_status, parse_gpu_bench_args, print_bandwidth_table, time_case, torch_cuda_peer

torch, TORCH_WHY = torch_cuda_peer()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = parse_gpu_bench_args(ap, TORCH_WHY)
    if args is None:
        return 0
    # 1 GiB of float32: far past the 50 MB L2, so every run reads HBM. Smoke: 64K elements
    # (still >= 4096 * 16, so every row/column shape below is non-empty).
    n = 1 << 16 if args.smoke else 1 << 28
    a = bm.rand(n, device="cuda")
    out = bm.empty(n, device="cuda")
    ta = torch.rand(n, device="cuda") if torch else None
    rows = []  # (name, ms, bytes, torch ms or None)
    failed = []

    def case(name, fn, nbytes, torch_fn=None):
        time_case(rows, failed, name, fn, nbytes, torch, torch_fn)

    def both(shape):
        return a.view(*shape), (ta.view(*shape) if torch else None)

    case("copy f32 (D2D, reference)", lambda: out.copy_(a), 2 * 4 * n)
    copy_gbs = rows[0][2] / rows[0][1] / 1e6 if rows else float("nan")
    case("sum f32 full (scalar)", lambda: a.sum(), 4 * n, torch and (lambda: ta.sum()))
    for r, c in [(n // 64, 64), (n // 4096, 4096), (4, n // 4)]:
        x, tx = both((r, c))
        case(f"sum f32 rows [{r}x{c}] dim1", lambda x=x: x.sum(1), 4 * n + 4 * r,
             torch and (lambda tx=tx: tx.sum(1)))
    for r, c in [(4096, n // 4096), (n // 64, 64)]:
        x, tx = both((r, c))
        case(f"sum f32 cols [{r}x{c}] dim0", lambda x=x: x.sum(0), 4 * n + 4 * c,
             torch and (lambda tx=tx: tx.sum(0)))
    x, tx = both((n // 1024, 1024))
    case("argmax f32 rows [.x1024]", lambda: x.argmax(1), 4 * n + 8 * (n // 1024),
         torch and (lambda: tx.argmax(1)))
    case("var f32 rows [.x1024]", lambda: x.var(1), 4 * n + 4 * (n // 1024), torch and (lambda: tx.var(1)))
    case("logsumexp f32 rows [.x1024]", lambda: x.logsumexp(1), 4 * n + 4 * (n // 1024),
         torch and (lambda: tx.logsumexp(1)))
    h = a.to(bm.bfloat16)
    th = ta.to(torch.bfloat16) if torch else None
    case("sum bf16 full", lambda: h.sum(), 2 * n, torch and (lambda: th.sum()))

    # Indexing: an embedding lookup (32k rows of 1024 floats from a 50k-row table), a
    # scatter_add of those rows back (atomics) and an index_select of columns.
    vocab, width, count = (500, 64, 256) if args.smoke else (50_000, 1024, 32_768)
    ncols = min(512, width)
    w = bm.rand(vocab, width, device="cuda")
    ids = bm.randint(0, vocab, (count,), device="cuda")
    tw = torch.rand(vocab, width, device="cuda") if torch else None
    tids = torch.randint(0, vocab, (count,), device="cuda") if torch else None
    row_bytes = count * width * 4
    case(f"embedding f32 [{count} x {width}]", lambda: bm.embedding(ids, w), 2 * row_bytes + 8 * count,
         torch and (lambda: torch.nn.functional.embedding(tids, tw)))
    src = bm.rand(count, width, device="cuda")
    tsrc = torch.rand(count, width, device="cuda") if torch else None
    case("index_add_ f32 rows (atomics)", lambda: w.index_add_(0, ids, src), 3 * row_bytes,
         torch and (lambda: tw.index_add_(0, tids, tsrc)))
    cols = bm.randint(0, width, (ncols,), device="cuda")
    tcols = torch.randint(0, width, (ncols,), device="cuda") if torch else None
    case(f"index_select f32 dim1 [{vocab} x {ncols}]", lambda: bm.index_select(w, 1, cols), 2 * vocab * ncols * 4,
         torch and (lambda: torch.index_select(tw, 1, tcols)))

    print_bandwidth_table(rows, copy_gbs, torch is not None, 36)
    return exit_status(failed)


if __name__ == "__main__":
    sys.exit(main())
