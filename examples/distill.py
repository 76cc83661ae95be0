#!/usr/bin/env python3
"""Knowledge distillation on Fashion-MNIST: trains a ResNet teacher, then the same small
student twice, alone (cross-entropy on the labels) and distilled (Hinton et al. 2015:
alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy), and prints both
students' test accuracy and every model's parameter count.

    python examples/distill.py [--limit 8000] [--student-limit 2000] [--teacher-epochs 2]
                               [--student-epochs 15] [--temperature 4] [--alpha 0.5] [--hidden 16]

The teacher trains on the first --limit images; the students on the first --student-limit
of them (the common setting: a big model trained on much data, a small one for a small
labelled set). The defaults take about 4 minutes on 2 idle CPU cores; --limit 60000
--student-limit 60000 with more epochs gives the full-data figures. The teacher's logits are
computed once (the teacher is frozen), so distilled training costs what plain training
costs. Distillation pays when the teacher is clearly better than the student trained alone:
the default budget gives a teacher only a little better (about 0.82 test accuracy), so the
gain is small or negative. With --limit 16000 --teacher-epochs 3 (about 8 minutes) the
teacher reaches 0.880 and the distilled student 0.818 against 0.812 alone. (With alpha near 1
the distilled student tracks the teacher's accuracy, good or bad.)
Data: the Debian package dataset-fashion-mnist, or --root.
"""
import argparse
import time

import numpy as np

import bigmodel as bm
from bigmodel import nn, optim
from bigmodel.data.datasets import DEFAULT_ROOT, FashionMNIST
from bigmodel.models import resnet_small
from bigmodel.nn import functional as F

PIXEL_MEAN, PIXEL_STD = 0.2860, 0.3530


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=8000, help="training images used (first N)")
    p.add_argument("--student-limit", type=int, default=2000, help="training images for the students")
    p.add_argument("--test-limit", type=int, default=None, help="test images used (default all 10000)")
    p.add_argument("--teacher-epochs", type=int, default=2)
    p.add_argument("--student-epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the soft (teacher) term")
    p.add_argument("--hidden", type=int, default=16, help="hidden units of the student MLP")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", default=DEFAULT_ROOT)
    return p.parse_args()


def make_student(hidden):
    """A small MLP: 784 -> hidden -> 10."""
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def batches(n, batch_size, rng):
    order = rng.permutation(n)
    for i in range(0, n, batch_size):
        yield order[i:i + batch_size]


def train(model, images, labels, epochs, batch_size, lr, seed, teacher_logits=None, temperature=4.0, alpha=0.9,
          name="model"):
    """SGD with Nesterov momentum and a linear decay; distillation when teacher_logits is given."""
    rng = np.random.default_rng(seed)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    steps = epochs * ((len(labels) + batch_size - 1) // batch_size)
    step = 0
    model.train()
    start = time.perf_counter()
    for epoch in range(epochs):
        loss_sum, seen = 0.0, 0
        for idx in batches(len(labels), batch_size, rng):
            for g in opt.param_groups:
                g["lr"] = lr * (1 - step / steps)
            step += 1
            x, y = bm.tensor(images[idx]), bm.tensor(labels[idx])
            logits = model(x)
            if teacher_logits is None:
                loss = F.cross_entropy(logits, y)
            else:
                loss = F.distillation_loss(logits, bm.tensor(teacher_logits[idx]), y, temperature=temperature,
                                           alpha=alpha)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += float(loss) * len(idx)
            seen += len(idx)
        print(f"  {name} epoch {epoch + 1}/{epochs}: loss {loss_sum / seen:.4f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)


def predict(model, images, batch_size=500):
    model.eval()
    out = []
    with bm.no_grad():
        for i in range(0, len(images), batch_size):
            out.append(model(bm.tensor(images[i:i + batch_size])).numpy())
    return np.concatenate(out)


def load(root, train, limit):
    ds = FashionMNIST(root, train=train)
    n = len(ds) if limit is None else min(limit, len(ds))
    x = (ds.data[:n].astype(np.float32)[:, None] / 255.0 - PIXEL_MEAN) / PIXEL_STD
    return np.ascontiguousarray(x, dtype=np.float32), ds.targets.numpy()[:n].astype(np.int64)


def main():
    args = parse_args()
    bm.manual_seed(args.seed)
    x_train, y_train = load(args.root, True, args.limit)
    x_test, y_test = load(args.root, False, args.test_limit)
    print(f"Fashion-MNIST: {len(y_train)} training images, {len(y_test)} test images", flush=True)

    teacher = resnet_small()
    print(f"teacher: ResNet, {n_params(teacher):,} parameters", flush=True)
    train(teacher, x_train, y_train, args.teacher_epochs, args.batch_size, 0.1, args.seed, name="teacher")
    teacher_acc = float((predict(teacher, x_test).argmax(1) == y_test).mean())
    ns = min(args.student_limit, len(y_train))
    x_student, y_student = x_train[:ns], y_train[:ns]
    teacher_logits = predict(teacher, x_student)
    print(f"teacher test accuracy {teacher_acc:.4f}", flush=True)

    bm.manual_seed(args.seed + 1)
    alone = make_student(args.hidden)
    bm.manual_seed(args.seed + 1)  # the same initial weights for both students
    distilled = make_student(args.hidden)
    print(f"student: MLP 784-{args.hidden}-10, {n_params(alone):,} parameters "
          f"({n_params(teacher) / n_params(alone):.1f}x fewer than the teacher)", flush=True)
    print(f"students train on {ns} images", flush=True)
    train(alone, x_student, y_student, args.student_epochs, args.batch_size, 0.05, args.seed + 2, name="student alone")
    train(distilled, x_student, y_student, args.student_epochs, args.batch_size, 0.05, args.seed + 2,
          teacher_logits=teacher_logits, temperature=args.temperature, alpha=args.alpha, name="student distilled")
    acc_alone = float((predict(alone, x_test).argmax(1) == y_test).mean())
    acc_distilled = float((predict(distilled, x_test).argmax(1) == y_test).mean())
    print()
    print(f"{'model':<22}{'parameters':>12}{'test accuracy':>16}")
    print(f"{'teacher (ResNet)':<22}{n_params(teacher):>12,}{teacher_acc:>16.4f}")
    print(f"{'student alone':<22}{n_params(alone):>12,}{acc_alone:>16.4f}")
    print(f"{'student distilled':<22}{n_params(distilled):>12,}{acc_distilled:>16.4f}")
    print(f"distillation: {100 * (acc_distilled - acc_alone):+.2f} points for the student "
          f"(T={args.temperature}, alpha={args.alpha})")


if __name__ == "__main__":
    main()
