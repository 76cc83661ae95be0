"""GB/s of bigmodel's CUDA copy, cast and binary kernels against a same-dtype device copy
(cudaMemcpyAsync), timed with CUDA events after warm-up; median of repeats. Bytes counted:
each input read once plus the output written once. Usage: python bench/bench_elementwise_cuda.py"""
import statistics
import sys

import bigmodel as bm


def timed(fn, reps=20):
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        start, end = bm.cuda.Event(enable_timing=True), bm.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main():
    if not bm.cuda.is_available():
        print("SKIP: no CUDA GPU visible")
        return 0
    n = 1 << 28  # 1 GiB of float32 per tensor: far past L2
    a = bm.rand(n).cuda() if hasattr(bm, "rand") else bm.ones(n).cuda()
    b = bm.ones(n, device="cuda")
    out = bm.empty(n, device="cuda")
    rows = []
    ms = timed(lambda: out.copy_(a))
    copy_gbs = 2 * 4 * n / ms / 1e6
    rows.append(("copy f32 (memcpy)", ms, copy_gbs))
    strided = a.view(1 << 14, 1 << 14).t()
    out2 = bm.empty(1 << 14, 1 << 14, device="cuda")
    ms = timed(lambda: out2.copy_(strided))
    rows.append(("copy f32 transposed", ms, 2 * 4 * n / ms / 1e6))
    half = bm.empty(n, dtype=bm.float16, device="cuda")
    ms = timed(lambda: half.copy_(a))
    rows.append(("cast f32->f16", ms, (4 + 2) * n / ms / 1e6))
    ms = timed(lambda: bm.add(a, b))
    rows.append(("add f32 (new output)", ms, 3 * 4 * n / ms / 1e6))
    ms = timed(lambda: out.add_(b))
    rows.append(("add_ f32 in place", ms, 3 * 4 * n / ms / 1e6))
    ms = timed(lambda: bm.mul(a, 2.0))
    rows.append(("mul f32 by scalar", ms, 2 * 4 * n / ms / 1e6))
    hb = bm.ones(n, dtype=bm.bfloat16, device="cuda")
    ms = timed(lambda: bm.add(hb, hb))
    rows.append(("add bf16", ms, 3 * 2 * n / ms / 1e6))
    print(f"{'kernel':28s} {'ms':>8s} {'GB/s':>8s} {'vs copy':>8s}")
    for name, t, gbs in rows:
        print(f"{name:28s} {t:8.3f} {gbs:8.0f} {gbs / copy_gbs:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
