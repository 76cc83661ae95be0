#!/usr/bin/env python3
"""Trains a 784-256-128-10 ReLU MLP on Fashion-MNIST with SGD + momentum, on the CPU.

    python examples/train_mlp.py --epochs 3 --batch-size 64 --lr 0.05 --seed 0 [--limit 6000]

Prints one line per epoch (train loss, train accuracy, samples/s) and the test accuracy last.
Inputs are standardised with the training set's pixel mean/std, and the learning rate decays
linearly to zero over the run; with the defaults the test accuracy ends near 0.88.
Data: the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist), or --root.
"""
import argparse
import time

import numpy as np

import bigmodel as bm
from bigmodel import nn, optim
from bigmodel.data import DataLoader, Subset
from bigmodel.data.datasets import DEFAULT_ROOT, FashionMNIST

# Pixel mean and std of the Fashion-MNIST training images (in [0, 1]).
PIXEL_MEAN, PIXEL_STD = 0.2860, 0.3530


def normalize(images):
    return (images - PIXEL_MEAN) / PIXEL_STD


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="train on the first N samples only (quick runs)")
    p.add_argument("--root", default=DEFAULT_ROOT, help="folder holding the Fashion-MNIST IDX files")
    return p.parse_args()


def build_model():
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )


def evaluate(model, dataset, batch_size=1000):
    model.eval()
    correct = 0
    with bm.no_grad():
        for images, labels in DataLoader(dataset, batch_size=batch_size):
            pred = model(normalize(images)).numpy().argmax(axis=1)
            correct += int((pred == labels.numpy()).sum())
    model.train()
    return correct / len(dataset)


def main():
    args = parse_args()
    bm.manual_seed(args.seed)
    train_set = FashionMNIST(args.root, train=True)
    test_set = FashionMNIST(args.root, train=False)
    if args.limit is not None:
        train_set = Subset(train_set, np.arange(min(args.limit, len(train_set))))
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed)

    model = build_model()
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    loss_fn = nn.CrossEntropyLoss()
    print(f"training {sum(p.numel() for p in model.parameters())} parameters on {len(train_set)} samples, "
          f"batch {args.batch_size}, lr {args.lr}, momentum {args.momentum}", flush=True)

    step, total_steps = 0, args.epochs * len(loader)
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        total_loss, correct, seen = 0.0, 0, 0
        for images, labels in loader:
            # Linear decay to zero: large steps early, fine ones at the end.
            for group in opt.param_groups:
                group["lr"] = args.lr * (1 - step / total_steps)
            step += 1
            logits = model(normalize(images))
            loss = loss_fn(logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            n = labels.shape[0]
            total_loss += float(loss) * n
            correct += int((logits.detach().numpy().argmax(axis=1) == labels.numpy()).sum())
            seen += n
        elapsed = time.perf_counter() - start
        print(f"epoch {epoch}: train loss {total_loss / seen:.4f}  train acc {correct / seen:.4f}  "
              f"{seen / elapsed:,.0f} samples/s", flush=True)

    print(f"test accuracy: {evaluate(model, test_set):.4f}")


if __name__ == "__main__":
    main()
