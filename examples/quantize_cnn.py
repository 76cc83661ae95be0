#!/usr/bin/env python3
"""int8 post-training quantization of the article's CNN on Fashion-MNIST: trains the CNN
briefly (or loads --checkpoint), calibrates activation scales on a few training batches,
replaces its Conv2d/Linear layers by int8 ones (per-channel weight scales), and prints the
test accuracy of both models, their file sizes and their CPU inference times.

    python examples/quantize_cnn.py [--limit 12000] [--epochs 1] [--calibration 8]
                                    [--checkpoint cnn.safetensors] [--out out_dir]

With the defaults (12000 training images, one epoch) it runs in about 2 minutes on 2 idle cores.
Data: the Debian package dataset-fashion-mnist, or --root.
"""
import argparse
import os
import tempfile
import time

import numpy as np

import bigmodel as bm
from bigmodel import optim, quantization as Q
from bigmodel.data.datasets import DEFAULT_ROOT, FashionMNIST
from bigmodel.models import ArticleCNN
from bigmodel.nn import functional as F

PIXEL_MEAN, PIXEL_STD = 0.2860, 0.3530


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=12000, help="training images (first N)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.04)
    p.add_argument("--calibration", type=int, default=8, help="calibration batches of 64 training images")
    p.add_argument("--observer", default="minmax", choices=["minmax", "percentile"])
    p.add_argument("--checkpoint", default=None, help="a float state_dict to start from instead of training")
    p.add_argument("--out", default=None, help="folder for the two model files (default: a temporary one)")
    p.add_argument("--root", default=DEFAULT_ROOT)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def load(root, train, limit=None):
    ds = FashionMNIST(root, train=train)
    n = len(ds) if limit is None else min(limit, len(ds))
    x = ((ds.data[:n].astype(np.float32)[:, None] / 255.0 - PIXEL_MEAN) / PIXEL_STD).astype(np.float32)
    return x, ds.targets.numpy()[:n]


def train(model, x, y, epochs, lr, seed):
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    rng = np.random.default_rng(seed)
    steps, step = epochs * ((len(y) + 63) // 64), 0
    for epoch in range(epochs):
        for idx in np.array_split(rng.permutation(len(y)), (len(y) + 63) // 64):
            for g in opt.param_groups:
                g["lr"] = lr * min(1.0, (step + 1) / 50) * (1 - step / steps)
            step += 1
            loss = F.cross_entropy(model(bm.tensor(x[idx])), bm.tensor(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"  epoch {epoch + 1}/{epochs}: last loss {float(loss):.4f}", flush=True)


def evaluate(model, x, y, batch=500):
    model.eval()
    correct, start = 0, time.perf_counter()
    with bm.no_grad():
        for i in range(0, len(y), batch):
            correct += int((model(bm.tensor(x[i:i + batch])).numpy().argmax(1) == y[i:i + batch]).sum())
    return correct / len(y), time.perf_counter() - start


def main():
    args = parse_args()
    bm.manual_seed(args.seed)
    x_test, y_test = load(args.root, False)
    model = ArticleCNN()
    if args.checkpoint:
        model.load_state_dict(bm.load(args.checkpoint))
    else:
        x_train, y_train = load(args.root, True, args.limit)
        print(f"training the article CNN on {len(y_train)} images, {args.epochs} epoch(s)", flush=True)
        train(model, x_train, y_train, args.epochs, args.lr, args.seed)
    float_acc, float_time = evaluate(model, x_test, y_test)
    out = args.out or tempfile.mkdtemp(prefix="bm_quant_")
    os.makedirs(out, exist_ok=True)
    float_path, int8_path = os.path.join(out, "cnn_float32.safetensors"), os.path.join(out, "cnn_int8.safetensors")
    bm.save(model.state_dict(), float_path)

    x_cal, _ = load(args.root, True, 64 * args.calibration)
    calib = [bm.tensor(x_cal[i:i + 64]) for i in range(0, len(x_cal), 64)]
    Q.quantize_model(model, calib, observer=args.observer)
    Q.save_quantized(model, int8_path)
    reloaded = Q.load_quantized(ArticleCNN(), int8_path)  # what a deployment would run
    int8_acc, int8_time = evaluate(reloaded, x_test, y_test)

    fsize, qsize = os.path.getsize(float_path), os.path.getsize(int8_path)
    print()
    print(f"{'model':<10}{'test accuracy':>15}{'file size':>14}{'inference (10000 images)':>27}")
    print(f"{'float32':<10}{float_acc:>15.4f}{fsize / 1e6:>11.2f} MB{float_time:>25.2f} s")
    print(f"{'int8':<10}{int8_acc:>15.4f}{qsize / 1e6:>11.2f} MB{int8_time:>25.2f} s")
    print(f"int8 vs float32: accuracy {100 * (int8_acc - float_acc):+.2f} points, file {fsize / qsize:.2f}x smaller, "
          f"inference time ratio {int8_time / float_time:.2f}")
    print(f"files in {out}")


if __name__ == "__main__":
    main()
