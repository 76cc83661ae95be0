"""conv2d and pooling on the GPU: our kernels (kernels/cuda/conv*.cu, pool.cu) against cuDNN
behind the same calls (bm.backends.conv = "cudnn") and PyTorch on the same GPU when it is
importable. conv2d forward, and forward + backward (input and weight gradients), on
ResNet-style layers (batch 32) and the article CNN's two layers (batch 64), in float32 (true
fp32: PyTorch's TF32 is switched off) and bfloat16; pooling as GB/s against a device copy.
CUDA events after warm-up, median of repeats. One summary line per case with the ratios.
A peer that is missing or fails prints "peer unavailable: ..." (its column reads -); a case of
ours that raises prints "FAIL ..." and the exit status is 1.

    python bench/bench_conv_cuda.py [--reps 20] [--quick] [--smoke]
"""
import argparse
import sys

import bigmodel as bm
from _cuda_timing import (exit_status, first_line, median_ms, parse_gpu_bench_args, peer_unavailable, time_backends,
                          torch_cuda_peer)

torch, TORCH_WHY = torch_cuda_peer()
HAVE_TORCH = torch is not None
FAILED = []

# name, N, C, O, H (= W), k, stride, padding
LAYERS = [
    ("resnet 64->64 3x3 56", 32, 64, 64, 56, 3, 1, 1),
    ("resnet 128->128 3x3 28", 32, 128, 128, 28, 3, 1, 1),
    ("resnet 256->256 3x3 14", 32, 256, 256, 14, 3, 1, 1),
    ("resnet 64->128 3x3 s2 56", 32, 64, 128, 56, 3, 2, 1),
    ("resnet 64->256 1x1 56", 32, 64, 256, 56, 1, 1, 0),
    ("resnet 256->64 1x1 56", 32, 256, 64, 56, 1, 1, 0),
    ("resnet 1024->256 1x1 14", 32, 1024, 256, 14, 1, 1, 0),
    ("article 1->32 3x3 28", 64, 1, 32, 28, 3, 1, 0),
    ("article 32->64 3x3 26", 64, 32, 64, 26, 3, 1, 0),
]
# --smoke: odd sizes that still take the 3x3, strided and 1x1 paths, small enough to emulate.
SMOKE_LAYERS = [
    ("smoke 3->8 3x3 9", 2, 3, 8, 9, 3, 1, 1),
    ("smoke 8->16 3x3 s2 10", 2, 8, 16, 10, 3, 2, 1),
    ("smoke 16->8 1x1 7", 2, 16, 8, 7, 1, 1, 0),
]


def fmt(ms):
    return f"{ms:8.3f}" if ms is not None else "       -"


def ratio(a, b):
    return f"{b / a:5.2f}" if a and b else "    -"


def conv_case(layer, dtype_name, reps):
    name, n, c, o, hw, k, s, p = layer
    dtype = getattr(bm, dtype_name)
    oh = (hw + 2 * p - k) // s + 1
    flops = 2.0 * n * o * oh * oh * c * k * k
    x = bm.randn(n, c, hw, hw).to(dtype).cuda()
    w = (bm.randn(o, c, k, k) * (1.0 / (c * k * k) ** 0.5)).to(dtype).cuda()
    gy = bm.randn(n, o, oh, oh).to(dtype).cuda()
    xg, wg = x.detach().requires_grad_(True), w.detach().requires_grad_(True)

    def fwd():
        with bm.no_grad():
            bm.conv2d(x, w, stride=s, padding=p)

    def fwd_bwd():
        xg.grad = None
        wg.grad = None
        bm.conv2d(xg, wg, stride=s, padding=p).backward(gy)

    label = f"conv {name} {dtype_name}"
    res = time_backends("conv", "cudnn", label,
                        lambda: (median_ms(fwd, bm.cuda.Event, reps), median_ms(fwd_bwd, bm.cuda.Event, reps)),
                        FAILED, missing=(None, None))
    res["torch"] = (None, None)
    if HAVE_TORCH:
        tdt = getattr(torch, dtype_name)
        tx = torch.randn(n, c, hw, hw, device="cuda", dtype=tdt)
        tw = (torch.randn(o, c, k, k, device="cuda") / (c * k * k) ** 0.5).to(tdt)
        tgy = torch.randn(n, o, oh, oh, device="cuda", dtype=tdt)
        txg, twg = tx.clone().requires_grad_(True), tw.clone().requires_grad_(True)

        def tfwd():
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, stride=s, padding=p)

        def tfwd_bwd():
            txg.grad = None
            twg.grad = None
            torch.nn.functional.conv2d(txg, twg, stride=s, padding=p).backward(tgy)

        try:
            res["torch"] = (median_ms(tfwd, torch.cuda.Event, reps), median_ms(tfwd_bwd, torch.cuda.Event, reps))
        except Exception as e:  # noqa: BLE001
            peer_unavailable("torch", first_line(e), label)
    for i, mode in enumerate(("fwd", "fwd+bwd")):
        ours, cudnn, tch = res["ours"][i], res["cudnn"][i], res["torch"][i]
        mult = 1 if i == 0 else 3
        tflops = flops * mult / ours / 1e9 if ours else 0
        print(f"conv {name:26s} {dtype_name:8s} {mode:7s} ours {fmt(ours)} ms {tflops:6.1f} TFLOP/s | "
              f"cudnn {fmt(cudnn)} | torch {fmt(tch)} | cudnn/ours {ratio(ours, cudnn)} torch/ours {ratio(ours, tch)}",
              flush=True)


def pool_cases(reps, smoke=False):
    n, c, hw = (2, 3, 17) if smoke else (32, 64, 112)
    x = bm.randn(n, c, hw, hw).cuda()
    out = bm.empty(n, c, hw, hw, device="cuda")
    ms = median_ms(lambda: out.copy_(x), bm.cuda.Event, reps)
    copy_gbs = 2 * x.numel() * 4 / ms / 1e6
    print(f"pool device copy f32 {n}x{c}x{hw}x{hw}: {ms:.3f} ms, {copy_gbs:.0f} GB/s")
    xg = x.detach().requires_grad_(True)
    cases = [
        ("max_pool2d 3x3 s2 p1", lambda: bm.max_pool2d(x, 3, 2, 1), ((hw - 1) // 2 + 1) ** 2, True),
        ("avg_pool2d 2x2 s2", lambda: bm.avg_pool2d(x, 2), (hw // 2) ** 2, False),
        ("adaptive_avg_pool2d 1x1", lambda: bm.adaptive_avg_pool2d(x, 1), 1, False),
    ]
    for name, fn, out_plane, indices in cases:
        with bm.no_grad():
            ms = median_ms(fn, bm.cuda.Event, reps)
        out_bytes = n * c * out_plane * (4 + (8 if indices else 0))
        gbs = (x.numel() * 4 + out_bytes) / ms / 1e6
        print(f"pool {name:26s} f32 fwd     {ms:8.3f} ms {gbs:6.0f} GB/s  vs copy {gbs / copy_gbs:5.2f}", flush=True)
    y = bm.max_pool2d(xg, 3, 2, 1)
    gy = bm.ones(y.shape, device="cuda")

    def max_bwd():
        xg.grad = None
        bm.max_pool2d(xg, 3, 2, 1).backward(gy)
    ms = median_ms(max_bwd, bm.cuda.Event, reps)
    gbs = (2 * x.numel() * 4 + gy.numel() * (4 + 8) * 2) / ms / 1e6  # fwd + zero + scatter
    print(f"pool {'max_pool2d fwd+bwd':26s} f32 fwd+bwd {ms:8.3f} ms {gbs:6.0f} GB/s  vs copy {gbs / copy_gbs:5.2f}",
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="float32 and bfloat16 of three layers only")
    args = parse_gpu_bench_args(ap, TORCH_WHY, "tiny layers, 2 reps: checks the script, not speed")
    if args is None:
        return 0
    if HAVE_TORCH:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False  # true fp32, as ours and bm's cuDNN backend
        torch.backends.cuda.matmul.allow_tf32 = False
    print(f"PyTorch: {torch.__version__ if HAVE_TORCH else 'not available'}")
    layers = SMOKE_LAYERS if args.smoke else [LAYERS[0], LAYERS[4], LAYERS[8]] if args.quick else LAYERS
    for dtype_name in ("float32", "bfloat16"):
        for layer in layers:
            conv_case(layer, dtype_name, args.reps)
    try:
        pool_cases(args.reps, args.smoke)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL pool: {first_line(e)}", flush=True)
        FAILED.append("pool")
    return exit_status(FAILED)


if __name__ == "__main__":
    sys.exit(main())
