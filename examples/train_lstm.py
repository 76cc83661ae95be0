#!/usr/bin/env python3
"""Trains a character-level LSTM language model on Debian's fortunes and samples from it.

    python examples/train_lstm.py [--steps 1000] [--batch-size 32] [--seq-len 64] [--hidden 192]
                                  [--layers 1] [--lr 0.005] [--out lstm_out] [--resume]
                                  [--save-every 250] [--ckpt PATH] [--root DIR] [--device auto|cpu|cuda[:i]]

The text is every fortune file in /usr/share/games/fortunes (the Debian package `fortunes`;
the .dat index and .u8 link files are skipped), split 90/10 into training and validation
text as in examples/train_gpt.py. Each step draws random windows of seq_len + 1 characters;
the model (an embedding, bm.nn.LSTM, a linear read-out) predicts every next character with
cross-entropy, trained with Adam, gradient clipping and a cosine decay to 10% of --lr
(LambdaLR). Every --sample-every steps it prints train/validation loss (nats per character,
on fixed windows) and a sample; metrics go to <out>/metrics.jsonl and a loss plot to
<out>/loss.png when matplotlib is installed. Every --save-every steps it saves model +
optimizer + scheduler + step + RNG states (bigmodel's and the batch sampler's) to --ckpt
(default <out>/ckpt.bm); --resume (with the same arguments) carries on from there, and on
the CPU the resumed losses equal the uninterrupted run's bit for bit. With the defaults
(199k parameters, 1000 steps) the loss falls from ln(113) = 4.73 to 1.95 train / 1.97
validation in about 3.5 minutes on one thread of a busy 2-core box; with --hidden 211
--batch-size 16 --steps 800 (234k parameters, as train_gpt.py's defaults) to 2.08 / 2.08
(README.md, "Character models"). On a machine busy with other work, OMP_NUM_THREADS=1 is faster.
--device (default auto: a GPU when bigmodel has CUDA and one is usable, else the CPU) holds
the model, batches and optimizer state; checkpoints load on any device, and --resume on the
device that saved one continues exactly.
"""
import argparse
import math
import os
import sys
import time

import numpy as np

import bigmodel as bm
from bigmodel import nn, optim
from bigmodel.nn import functional as F
from bigmodel.utils import MetricsWriter, ProgressBar, plot_metrics

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _ckpt import load_checkpoint, save_checkpoint  # noqa: E402  (examples/_ckpt.py)
from _device import add_device_arg, pick_device  # noqa: E402  (examples/_device.py)

DEFAULT_ROOT = "/usr/share/games/fortunes"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--embed", type=int, default=32)
    p.add_argument("--hidden", type=int, default=192)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--dropout", type=float, default=0.0, help="between LSTM layers (needs --layers >= 2)")
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--clip", type=float, default=1.0, help="max gradient norm")
    p.add_argument("--sample-every", type=int, default=250, help="steps between evaluations and samples")
    p.add_argument("--sample-len", type=int, default=200)
    p.add_argument("--eval-batches", type=int, default=8)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", default=DEFAULT_ROOT, help="folder of fortune files")
    p.add_argument("--out", default="lstm_out", help="folder for checkpoint, metrics and plot")
    p.add_argument("--save-every", "--ckpt-every", dest="save_every", type=int, default=250,
                   help="steps between checkpoints")
    p.add_argument("--ckpt", default=None, help="checkpoint path (default <out>/ckpt.bm)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint (--ckpt)")
    p.add_argument("--stop-at", type=int, default=None,
                   help="save a checkpoint and stop after this step, as an interrupted run would (tests)")
    p.add_argument("--no-plot", action="store_true", help="skip the loss plot")
    add_device_arg(p)
    return p.parse_args(argv)


def load_text(root):
    if not os.path.isdir(root):
        raise SystemExit(f"error: {root} not found; install the Debian package `fortunes` "
                         f"(apt-get install fortunes) or pass --root")
    parts = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if name.endswith((".dat", ".u8")) or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            parts.append(f.read().decode("utf-8", errors="replace"))
    text = "".join(parts)
    if not text:
        raise SystemExit(f"error: no fortune files in {root}; install the Debian package `fortunes`")
    return text


class CharLSTM(nn.Module):
    def __init__(self, vocab, embed, hidden, layers, dropout):
        super().__init__()
        self.embedding = nn.Parameter(bm.randn(vocab, embed) * 0.1)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, dropout=dropout, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, idx, state=None):
        out, state = self.lstm(F.embedding(idx, self.embedding), state)  # [B, T, H]
        return self.head(out), state


def batch(data, batch_size, seq_len, rng, device="cpu"):
    starts = rng.integers(0, len(data) - seq_len - 1, size=batch_size)
    win = np.stack([data[s:s + seq_len + 1] for s in starts])
    return bm.tensor(win[:, :-1]).to(device=device), bm.tensor(win[:, 1:]).to(device=device)


def sample(model, stoi, itos, prime, length, temperature, rng, device="cpu"):
    """Feeds `prime`, then draws `length` characters one at a time, carrying the LSTM state
    (on `device`; only the last logits come to the host for NumPy's draw)."""
    model.eval()
    chars = [stoi.get(ch, 0) for ch in prime]
    out = []
    with bm.no_grad():
        logits, state = model(bm.tensor(np.array([chars])).to(device=device))
        for _ in range(length):
            z = logits[0, -1].cpu().numpy().astype(np.float64) / temperature
            p = np.exp(z - z.max())
            nxt = int(rng.choice(len(p), p=p / p.sum()))
            out.append(itos[nxt])
            logits, state = model(bm.tensor(np.array([[nxt]])).to(device=device), state)
    model.train()
    return prime + "".join(out)


def evaluate(model, data, batch_size, seq_len, batches=8, device="cpu"):
    """Mean loss over fixed windows: its own generator, so it never moves training's batches."""
    rng = np.random.default_rng(1)
    model.eval()
    total = 0.0
    with bm.no_grad():
        for _ in range(batches):
            x, y = batch(data, batch_size, seq_len, rng, device)
            logits, _ = model(x)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)))
    model.train()
    return total / batches


def main(argv=None):
    """Runs the training; returns {"losses": per-step training losses from step 1, "final": ...,
    "device": the device it trained on}."""
    args = parse_args(argv)
    bm.manual_seed(args.seed)
    device = pick_device(args.device)
    rng = np.random.default_rng(args.seed)  # training batches only
    text = load_text(args.root)
    itos = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(itos)}
    data = np.array([stoi[ch] for ch in text], dtype=np.int64)
    split = int(len(data) * 0.9)
    splits = {"train": data[:split], "val": data[split:]}
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = args.ckpt or os.path.join(args.out, "ckpt.bm")
    metrics_path = os.path.join(args.out, "metrics.jsonl")

    model = CharLSTM(len(itos), args.embed, args.hidden, args.layers, args.dropout).to(device=device)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    # Cosine decay to 10% of the peak rate over the run.
    sched = optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t, args.steps) / args.steps)))
    step, losses, running = 0, [], None
    if args.resume:
        ckpt = load_checkpoint(ckpt_path, model=model, optimizer=opt, scheduler=sched, np_rng=rng)
        step, losses, running = int(ckpt["step"]), list(ckpt.get("losses", [])), ckpt.get("running")
        print(f"resumed from {ckpt_path} at step {step}", flush=True)

    def evaluate_splits():
        return {k: evaluate(model, v, args.batch_size, args.seq_len, args.eval_batches, device)
                for k, v in splits.items()}

    print(f"fortunes: {len(text):,} characters, vocabulary {len(itos)}, {len(splits['train']):,} for training; "
          f"LSTM {args.layers} layer(s), hidden {args.hidden}, embed {args.embed}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters; {args.steps} steps of batch "
          f"{args.batch_size} x {args.seq_len}; loss at start ~ ln({len(itos)}) = {math.log(len(itos)):.2f}; "
          f"on {device}", flush=True)
    writer = MetricsWriter(metrics_path, append=args.resume)
    bar = ProgressBar(total=args.steps, desc="train", unit="step")
    bar.update(step)
    start = time.perf_counter()
    while step < args.steps:
        x, y = batch(splits["train"], args.batch_size, args.seq_len, rng, device)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        sched.step()
        step += 1
        value = float(loss)
        if not math.isfinite(value):
            raise SystemExit(f"training diverged at step {step} (loss {value}); lower --lr")
        losses.append(value)
        running = value if running is None else 0.95 * running + 0.05 * value
        writer.write(step=step, loss=value, lr=opt.param_groups[0]["lr"])
        bar.update(1, loss=running)
        if args.sample_every and (step % args.sample_every == 0 or step == args.steps):
            est = evaluate_splits()
            writer.write(step=step, train_loss=est["train"], val_loss=est["val"])
            # Sampling draws from its own generator (seeded by step), not the batch sampler's.
            text_out = sample(model, stoi, itos, "The ", args.sample_len, args.temperature,
                              np.random.default_rng([args.seed, step, 2]), device)
            bar.write(f"--- step {step}: train loss {est['train']:.3f}, validation loss {est['val']:.3f}:\n{text_out}")
        stopping = args.stop_at is not None and step >= args.stop_at
        if step % args.save_every == 0 or step == args.steps or stopping:
            save_checkpoint(ckpt_path, model=model, optimizer=opt, scheduler=sched, step=step, np_rng=rng,
                            losses=losses, running=running, config=vars(args))
        if stopping:
            break
    bar.close()
    writer.close()
    elapsed = time.perf_counter() - start
    if step < args.steps:
        print(f"stopped at step {step} (--stop-at); continue with --resume", flush=True)
        return {"losses": losses, "final": None, "device": device}

    final = evaluate_splits()
    if not args.no_plot:
        try:
            plot_metrics(os.path.join(args.out, "loss.png"), metrics_path, keys=["loss", "val_loss"],
                         title="char-level LSTM on fortunes")
            print(f"loss plot saved to {os.path.join(args.out, 'loss.png')}")
        except RuntimeError as e:  # matplotlib missing
            print(f"no plot: {e}")
    print(f"trained to step {args.steps} in {elapsed:.0f} s (this run)")
    print(f"final: train loss {final['train']:.4f}, validation loss {final['val']:.4f} nats/char "
          f"(running training loss {running:.3f})", flush=True)
    return {"losses": losses, "final": final, "device": device}


if __name__ == "__main__":
    main()
    sys.exit(0)
