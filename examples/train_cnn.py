#!/usr/bin/env python3
"""Trains the article's CNN (or a small ResNet) on Fashion-MNIST and reports the test accuracy.

    python examples/train_cnn.py [--model article|resnet] [--epochs 3] [--batch-size 64] [--lr 0.04]
                                 [--augment] [--limit N] [--plot cnn_training.png] [--device auto]
                                 [--save-every N --ckpt cnn_ckpt.bm] [--resume] [--amp bf16]
    mpirun -np 2 python examples/train_cnn.py --ddp    # data-parallel over MPI (docs/DISTRIBUTED.md)

The article's CNN (bigmodel.models.ArticleCNN): two 3x3 convolutions, max pooling, dropout
and two linear layers. SGD with Nesterov momentum; the learning rate warms up over the first
steps and then decays linearly to zero, which reaches its accuracy in the fewest epochs.
Inputs are standardised with the training set's pixel mean/std (a DataLoader transform,
run on the loader's prefetch thread). Each epoch ends with an evaluation on the 10000 test
images; a loss/accuracy plot is written when matplotlib is installed, and the test accuracy
is printed last. Runs on a GPU when bigmodel has CUDA and one is visible, else on the CPU.
--save-every N writes model + optimizer + step + RNG states + the loader's position (its
shuffling generator and the random transforms' generators at the start of the epoch, and
the batch index) to --ckpt every N steps and at the end; --resume continues from there and
gives the same losses, bit for bit on the CPU, as a run that was never stopped.
--amp bf16 runs the forward under bm.autocast (bfloat16 convolutions and matmuls).
With the defaults the test accuracy ends near 0.916 (0.883 after epoch 1, 0.907 after 2);
on a 2-core CPU that takes about 5 minutes.
Data: the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist), or --root.
"""
import argparse
import math
import os
import sys
import time

import numpy as np

import bigmodel as bm
from bigmodel import nn, optim
from bigmodel.data import DataLoader, Subset
from bigmodel.data import transforms as T
from bigmodel.data.datasets import DEFAULT_ROOT, FashionMNIST
from bigmodel.models import ArticleCNN, resnet_small

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _device import add_device_arg, amp_device_type, pick_device  # noqa: E402  (examples/_device.py)

# Pixel mean and std of the Fashion-MNIST training images (in [0, 1]).
PIXEL_MEAN, PIXEL_STD = 0.2860, 0.3530


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["article", "resnet"], default="article")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.04, help="peak learning rate")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--warmup", type=int, default=200, help="steps of linear learning-rate warm-up")
    p.add_argument("--augment", action="store_true", help="random crops (padding 2) and horizontal flips")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="train on the first N samples only (quick runs)")
    p.add_argument("--test-limit", type=int, default=None, help="evaluate on the first N test samples only")
    p.add_argument("--root", default=DEFAULT_ROOT, help="folder holding the Fashion-MNIST IDX files")
    add_device_arg(p)
    p.add_argument("--plot", default="cnn_training.png", help="where to save the loss/accuracy plot ('' = none)")
    p.add_argument("--ddp", action="store_true",
                   help="data-parallel training under mpirun: DistributedDataParallel + DistributedSampler "
                        "(--batch-size is per rank; only rank 0 prints)")
    p.add_argument("--ckpt", default="cnn_ckpt.bm", help="checkpoint path for --save-every / --resume")
    p.add_argument("--save-every", type=int, default=0, help="save a checkpoint every N steps (0 = never)")
    p.add_argument("--resume", action="store_true", help="continue from --ckpt")
    p.add_argument("--stop-at", type=int, default=None,
                   help="save a checkpoint and stop after this step, as an interrupted run would (tests)")
    p.add_argument("--amp", choices=["off", "bf16"], default="off",
                   help="mixed precision: the forward under bm.autocast in bfloat16")
    return p.parse_args(argv)


def build_model(name):
    return ArticleCNN() if name == "article" else resnet_small()


class Progress:
    """One self-overwriting line on a terminal; a plain line every ~10% of the epoch otherwise."""

    def __init__(self, total, prefix):
        self.total, self.prefix = total, prefix
        self.tty = sys.stdout.isatty()
        self.start = time.perf_counter()
        self.next_plain = 0

    def update(self, done, images, loss):
        elapsed = time.perf_counter() - self.start
        rate = images / elapsed if elapsed > 0 else 0.0
        eta = elapsed / done * (self.total - done) if done else 0.0
        text = (f"{self.prefix} {done}/{self.total} loss {loss:.4f}  {rate:,.0f} img/s  "
                f"ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        if self.tty:
            width = 30
            filled = int(width * done / self.total)
            print(f"\r{self.prefix} [{'#' * filled}{'.' * (width - filled)}] " + text[len(self.prefix) + 1:] + "\033[K",
                  end="", flush=True)  # \033[K clears what a longer previous line left
        elif done >= self.next_plain or done == self.total:
            print(text, flush=True)
            self.next_plain = done + max(1, self.total // 10)

    def finish(self):
        if self.tty:
            print()


def evaluate(model, loader, device):
    """(mean loss, accuracy) over a loader, in eval mode without autograd."""
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    with bm.no_grad():
        for images, labels in loader:
            images, labels = images.to(device=device), labels.to(device=device)
            logits = model(images)
            loss_sum += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
            correct += int((logits.argmax(1) == labels).sum().item())
            total += labels.shape[0]
    model.train()
    return loss_sum / total, correct / total


def save_plot(path, step_losses, steps_per_epoch, epoch_stats):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (apt-get install python3-matplotlib): no plot written", flush=True)
        return
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    steps = np.arange(1, len(step_losses) + 1) / steps_per_epoch
    window = max(1, steps_per_epoch // 20)
    smooth = np.convolve(step_losses, np.ones(window) / window, mode="valid")
    ax_loss.plot(steps[window - 1:], smooth, label="train (running mean)")
    epochs = [e for e, _, _, _ in epoch_stats]
    ax_loss.plot(epochs, [s[1] for s in epoch_stats], "o-", label="test")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_loss.legend()
    ax_acc.plot(epochs, [s[2] for s in epoch_stats], "o-", label="train")
    ax_acc.plot(epochs, [s[3] for s in epoch_stats], "o-", label="test")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"plot saved to {path}", flush=True)


def _rng_state(gen):
    """A NumPy generator's state as JSON-able values (bm.save keeps non-tensors as JSON)."""
    st = gen.bit_generator.state
    return {"state": str(st["state"]["state"]), "inc": str(st["state"]["inc"]),
            "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"])}


def _set_rng_state(gen, d):
    gen.bit_generator.state = {"bit_generator": "PCG64", "state": {"state": int(d["state"]), "inc": int(d["inc"])},
                               "has_uint32": int(d["has_uint32"]), "uinteger": int(d["uinteger"])}


def _transform_rngs(tf):
    """The NumPy generators of the random transforms in tf (a Compose or a single transform)."""
    parts = getattr(tf, "transforms", [tf])
    return [t.rng for t in parts if isinstance(getattr(t, "rng", None), np.random.Generator)]


def main(argv=None):
    """Trains and evaluates; returns {"losses": per-step training losses from step 1,
    "test_acc": final test accuracy or None when stopped early}."""
    args = parse_args(argv)
    if args.ddp and (args.resume or args.save_every or args.stop_at):
        raise SystemExit("--resume / --save-every / --stop-at are not supported with --ddp in this example")
    rank, sampler = 0, None
    if args.ddp:
        import bigmodel.distributed as dist
        import bigmodel.nn.parallel  # noqa: F401  (bm.nn.parallel.DistributedDataParallel)
        dist.init_process_group()
        rank = dist.get_rank()
        if rank != 0:  # only rank 0 reports
            sys.stdout = open(os.devnull, "w")
    bm.manual_seed(args.seed)
    device = pick_device(args.device)
    train_set = FashionMNIST(args.root, train=True)
    test_set = FashionMNIST(args.root, train=False)
    if args.limit is not None:
        train_set = Subset(train_set, np.arange(min(args.limit, len(train_set))))
    if args.test_limit is not None:
        test_set = Subset(test_set, np.arange(min(args.test_limit, len(test_set))))
    normalize = T.Normalize([PIXEL_MEAN], [PIXEL_STD])
    train_tf = T.Compose([T.RandomCrop(28, padding=2), T.RandomHorizontalFlip(), normalize]) if args.augment \
        else normalize
    # The shuffling generator is ours, so a checkpoint can record and restore it.
    shuffle_rng = np.random.default_rng(args.seed)
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, generator=shuffle_rng,
                        transform=train_tf)
    test_loader = DataLoader(test_set, batch_size=1000, transform=normalize)
    if args.ddp:  # each rank trains on its share of a permutation redrawn every epoch
        from bigmodel.data.distributed import DistributedSampler
        sampler = DistributedSampler(train_set, shuffle=True, seed=args.seed)
        loader = DataLoader(Subset(train_set, sampler.indices()), batch_size=args.batch_size, transform=train_tf)

    model = build_model(args.model).to(device=device)
    if args.ddp:
        model = nn.parallel.DistributedDataParallel(model)
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, nesterov=args.momentum > 0,
                    weight_decay=args.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.model} model, {n_params:,} parameters, on {device}; {len(train_set)} training images, "
          f"batch {args.batch_size}, {args.epochs} epochs, peak lr {args.lr}, momentum {args.momentum}"
          f"{', augmented' if args.augment else ''}", flush=True)

    total_steps = args.epochs * len(loader)
    warmup = min(args.warmup, total_steps // 4)
    step, step_losses, epoch_stats = 0, [], []
    start_epoch, skip, epoch_sums = 1, 0, (0, 0, 0.0)
    aug_rngs = _transform_rngs(train_tf)
    if args.resume:
        ck = bm.load(args.ckpt)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        bm.set_rng_state(ck["rng"])
        step, step_losses = int(ck["step"]), list(ck["losses"])
        epoch_stats = [tuple(e) for e in ck["epoch_stats"]]
        start_epoch, skip = int(ck["epoch"]), int(ck["batch"])
        epoch_sums = tuple(ck["epoch_sums"])
        # Rewind the loader to the start of the interrupted epoch; its first `skip` batches
        # are drawn again below (and dropped), which replays the random transforms too.
        _set_rng_state(shuffle_rng, ck["epoch_start"]["shuffle"])
        for gen, st in zip(aug_rngs, ck["epoch_start"]["transforms"]):
            _set_rng_state(gen, st)
        print(f"resumed from {args.ckpt} at step {step} (epoch {start_epoch}, batch {skip})", flush=True)
    amp_dtype = bm.bfloat16 if args.amp == "bf16" else None
    amp_device = amp_device_type(device)
    stopped = False
    run_start = time.perf_counter()
    for epoch in range(start_epoch, args.epochs + 1):
        if sampler is not None:
            sampler.set_epoch(epoch)
            loader = DataLoader(Subset(train_set, sampler.indices()), batch_size=args.batch_size, transform=train_tf)
        epoch_start = {"shuffle": _rng_state(shuffle_rng), "transforms": [_rng_state(g) for g in aug_rngs]}
        progress = Progress(len(loader), f"epoch {epoch}/{args.epochs}")
        seen, correct, loss_sum = epoch_sums if epoch == start_epoch else (0, 0, 0.0)
        for i, (images, labels) in enumerate(loader, 1):
            if epoch == start_epoch and i <= skip:
                continue  # already trained on before the checkpoint
            # Linear warm-up, then linear decay to zero at the last step.
            if step < warmup:
                lr = args.lr * (step + 1) / warmup
            else:
                lr = args.lr * max(0.0, 1 - (step - warmup) / max(1, total_steps - warmup))
            for group in opt.param_groups:
                group["lr"] = lr
            step += 1
            images, labels = images.to(device=device), labels.to(device=device)
            with bm.autocast(amp_device, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(images)
                loss = loss_fn(logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            value = float(loss)
            if not math.isfinite(value):
                raise SystemExit(f"training diverged at step {step} (loss {value}); lower --lr")
            n = labels.shape[0]
            step_losses.append(value)
            loss_sum += value * n
            correct += int((logits.detach().argmax(1) == labels).sum().item())
            seen += n
            progress.update(i, seen, loss_sum / seen)
            stopping = args.stop_at is not None and step >= args.stop_at
            if rank == 0 and ((args.save_every and step % args.save_every == 0) or stopping):
                bm.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": bm.get_rng_state(),
                         "step": step, "losses": step_losses, "epoch_stats": [list(e) for e in epoch_stats],
                         "epoch": epoch, "batch": i, "epoch_sums": [seen, correct, loss_sum],
                         "epoch_start": epoch_start}, args.ckpt)
            if stopping:
                stopped = True
                break
        progress.finish()
        if stopped:
            print(f"stopped at step {step} (--stop-at); continue with --resume", flush=True)
            return {"losses": step_losses, "test_acc": None}
        test_loss, test_acc = evaluate(model, test_loader, device)
        epoch_stats.append((epoch, test_loss, correct / seen, test_acc))
        print(f"epoch {epoch}: train loss {loss_sum / seen:.4f}  train acc {correct / seen:.4f}  "
              f"test loss {test_loss:.4f}  test acc {test_acc:.4f}  "
              f"({time.perf_counter() - run_start:.0f} s so far)", flush=True)

    if args.plot and rank == 0:
        save_plot(args.plot, step_losses, len(loader), epoch_stats)
    print(f"test accuracy: {epoch_stats[-1][3]:.4f}")
    return {"losses": step_losses, "test_acc": epoch_stats[-1][3]}


if __name__ == "__main__":
    main()
