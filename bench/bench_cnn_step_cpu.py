"""CPU training step of the article's CNN (batch 64): bigmodel against PyTorch in the same run.

One step = forward, cross-entropy, backward, SGD-with-momentum update, on a fixed random
batch. Both frameworks use all cores. Prints the median step time and bigmodel's ratio
(< 1 means bigmodel is faster; the goal is <= 1).

    PYTHONPATH=python python3 bench/bench_cnn_step_cpu.py
"""
import argparse
import os
import statistics
import time

import numpy as np

import bigmodel as bm
from bigmodel.models import ArticleCNN

try:
    import torch
    torch.set_num_threads(os.cpu_count())  # Debian's build defaults to one thread per physical core
except ImportError:
    torch = None


def median_ms(step, warmup, repeat):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def bigmodel_step(x, y):
    model = ArticleCNN()
    opt = bm.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xb, yb = bm.tensor(x), bm.tensor(y)

    def step():
        opt.zero_grad()
        loss = bm.nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
    return step


def torch_step(x, y):
    import torch.nn as tnn
    import torch.nn.functional as tF

    class Net(tnn.Module):  # the same network, as the article writes it for PyTorch
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = tnn.Conv2d(1, 32, 3, 1), tnn.Conv2d(32, 64, 3, 1)
            self.dropout1, self.dropout2 = tnn.Dropout(0.25), tnn.Dropout(0.5)
            self.fc1, self.fc2 = tnn.Linear(9216, 128), tnn.Linear(128, 10)

        def forward(self, t):
            t = tF.max_pool2d(tF.relu(self.conv2(tF.relu(self.conv1(t)))), 2)
            t = self.fc1(torch.flatten(self.dropout1(t), 1))
            return self.fc2(self.dropout2(tF.relu(t)))

    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xb, yb = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss = tF.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
    return step


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, args.batch).astype(np.int64)
    ours = median_ms(bigmodel_step(x, y), 3, args.repeat)
    print(f"article CNN training step, batch {args.batch}, CPU (median of {args.repeat})")
    print(f"  bigmodel {ours:8.2f} ms")
    if torch is not None:
        peer = median_ms(torch_step(x, y), 3, args.repeat)
        print(f"  torch    {peer:8.2f} ms   bigmodel/torch = {ours / peer:.2f}  (torch {torch.__version__},"
              f" {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
