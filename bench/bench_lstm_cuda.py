"""LSTM / GRU on the GPU: our layer loop (kernels/cuda/rnn.cu cells + our GEMMs) against cuDNN
behind the same nn.LSTM (bm.backends.rnn = "cudnn", kernels/cuda/rnn_cudnn.cu), and PyTorch's
nn.LSTM (cuDNN) on the same GPU when it is importable. Issue 8's case first: a training step
(forward, MSE loss, backward through time, SGD update) of a 2-layer LSTM, batch 64, sequence
256, hidden 512 (input size = hidden size), in float32 (true fp32: PyTorch's TF32 is off) and
bfloat16; then forward-only (no_grad), variable lengths, and a GRU. CUDA events after warm-up,
median of repeats. One summary line per case with the ratios (cudnn/ours > 1: ours faster).
A peer that is missing or fails prints "peer unavailable: ..." (its column reads -); a case of
ours that raises prints "FAIL ..." and the exit status is 1.

    python bench/bench_lstm_cuda.py [--reps 10] [--quick] [--smoke]
"""
import argparse
import sys

import numpy as np

import bigmodel as bm
from _cuda_timing import (exit_status, first_line, median_ms, parse_gpu_bench_args, peer_unavailable, time_backends,
                          torch_cuda_peer)

torch, TORCH_WHY = torch_cuda_peer()
HAVE_TORCH = torch is not None
FAILED = []


def fmt(ms):
    return f"{ms:8.2f}" if ms is not None else "       -"


def ratio(a, b):
    return f"{b / a:5.2f}" if a and b else "    -"


def bm_step(kind, B, T, H, layers, dtype_name, train, lengths):
    dtype = getattr(bm, dtype_name)
    bm.manual_seed(0)
    cls = bm.nn.LSTM if kind == "lstm" else bm.nn.GRU
    model = cls(H, H, num_layers=layers).to(device="cuda", dtype=dtype)
    opt = bm.optim.SGD(model.parameters(), lr=0.01)
    x = bm.randn(T, B, H).to(dtype).cuda()
    y = bm.randn(T, B, H).to(dtype).cuda()

    def step():
        if not train:
            with bm.no_grad():
                model(x, lengths=lengths)
            return
        opt.zero_grad()
        out, _ = model(x, lengths=lengths)
        bm.nn.functional.mse_loss(out, y).backward()
        opt.step()
    return step


def torch_step(kind, B, T, H, layers, dtype_name, train, lengths):
    tdt = getattr(torch, dtype_name)
    torch.manual_seed(0)
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    model = cls(H, H, num_layers=layers).to(device="cuda", dtype=tdt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(T, B, H, device="cuda", dtype=tdt)
    y = torch.randn(T, B, H, device="cuda", dtype=tdt)
    pack = torch.nn.utils.rnn.pack_padded_sequence
    unpack = torch.nn.utils.rnn.pad_packed_sequence

    def run():
        if lengths is None:
            return model(x)[0]
        out = model(pack(x, torch.tensor(lengths), enforce_sorted=False))[0]
        return unpack(out, total_length=T)[0]

    def step():
        if not train:
            with torch.no_grad():
                run()
            return
        opt.zero_grad()
        torch.nn.functional.mse_loss(run(), y).backward()
        opt.step()
    return step


def case(kind, B, T, H, layers, dtype_name, train, lengths, reps):
    label = f"{kind} B{B} T{T} H{H} L{layers}{' lengths' if lengths is not None else ''} {dtype_name} " \
        f"{'train' if train else 'fwd'}"
    res = time_backends("rnn", "cudnn", label,
                        lambda: median_ms(bm_step(kind, B, T, H, layers, dtype_name, train, lengths), bm.cuda.Event,
                                          reps, warmup=2, budget_s=6.0),
                        FAILED, fail_name=f"rnn {label}")
    res["torch"] = None
    if HAVE_TORCH:
        try:
            res["torch"] = median_ms(torch_step(kind, B, T, H, layers, dtype_name, train, lengths), torch.cuda.Event,
                                     reps, warmup=2, budget_s=6.0)
        except Exception as e:  # noqa: BLE001 - e.g. a cuDNN without bfloat16 RNNs
            peer_unavailable("torch", first_line(e), label)
    # Matmul FLOPs per layer and step: forward 2*B*G*H*(in+H); a training step adds twice that.
    gates = 4 if kind == "lstm" else 3
    steps = T if lengths is None else float(np.mean(lengths))
    tflop = (3 if train else 1) * layers * steps * 2 * B * gates * H * (H + H) / 1e12
    ours, cudnn, tch = res["ours"], res["cudnn"], res["torch"]
    tflops = tflop / ours * 1e3 if ours else 0.0
    name = f"{kind} B{B} T{T} H{H} L{layers}" + (" lengths" if lengths is not None else "")
    mode = "train" if train else "fwd"
    print(f"rnn {name:28s} {dtype_name:8s} {mode:5s} ours {fmt(ours)} ms {tflops:6.1f} TFLOP/s | "
          f"cudnn {fmt(cudnn)} | torch {fmt(tch)} | cudnn/ours {ratio(ours, cudnn)} torch/ours {ratio(ours, tch)}",
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="issue 8's float32 training step only")
    args = parse_gpu_bench_args(ap, TORCH_WHY, "B=3 T=5 H=16, 2 reps: checks the script, not speed")
    if args is None:
        return 0
    if HAVE_TORCH:
        torch.backends.cudnn.allow_tf32 = False  # true fp32, as ours and bm's cuDNN backend
        torch.backends.cuda.matmul.allow_tf32 = False
    print(f"PyTorch: {torch.__version__ if HAVE_TORCH else 'not available'}", flush=True)
    B, T, H, L = (3, 5, 16, 2) if args.smoke else (64, 256, 512, 2)
    case("lstm", B, T, H, L, "float32", True, None, args.reps)
    if args.quick:
        return 1 if FAILED else 0
    case("lstm", B, T, H, L, "bfloat16", True, None, args.reps)
    case("lstm", B, T, H, L, "float32", False, None, args.reps)
    lengths = [int(v) for v in np.random.default_rng(0).integers(max(1, T // 4), T + 1, size=B)]
    case("lstm", B, T, H, L, "float32", True, lengths, args.reps)
    case("gru", B, T, H, L, "float32", True, None, args.reps)
    return exit_status(FAILED)


if __name__ == "__main__":
    sys.exit(main())
