"""CPU training step of the article's CNN (batch 64): bigmodel against PyTorch in the same run.

One step = forward, cross-entropy, backward, SGD-with-momentum update, on a fixed random
batch. Both frameworks run OMP_NUM_THREADS threads (default 1: on the shared 2-core box more
threads only measure oversubscription), and their steps alternate so that load from other
processes falls on both alike. Prints the median (best) wall time, the median process CPU
time per step (far less sensitive to other load) and bigmodel's ratios (< 1 means bigmodel
is faster; the goal is <= 1).

    PYTHONPATH=python python3 bench/bench_cnn_step_cpu.py [--repeat N]
"""
import argparse
import os

from _cpu_timing import default_threads, time_alternating, torch_peer

THREADS = default_threads()  # before numpy/OpenBLAS/bigmodel load
import numpy as np  # noqa: E402

import bigmodel as bm  # noqa: E402
from bigmodel.models import ArticleCNN  # noqa: E402

torch = torch_peer(THREADS)


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
    steps = [bigmodel_step(x, y)] + ([torch_step(x, y)] if torch is not None else [])
    results = time_alternating(steps, 3, args.repeat)
    print(f"article CNN training step, batch {args.batch}, CPU (median of {args.repeat}, "
          f"{os.environ['OMP_NUM_THREADS']} threads)")
    ours, ours_min, ours_cpu = results[0]
    print(f"  bigmodel {ours:8.2f} ms (best {ours_min:.2f}, CPU {ours_cpu:.2f})")
    if torch is not None:
        peer, peer_min, peer_cpu = results[1]
        print(f"  torch    {peer:8.2f} ms (best {peer_min:.2f}, CPU {peer_cpu:.2f})   bigmodel/torch = "
              f"{ours / peer:.2f} wall, {ours_cpu / peer_cpu:.2f} CPU  (torch {torch.__version__}, "
              f"load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
