#!/usr/bin/env python3
"""Trains a small character-level GPT on the fortune cookies of Debian's `fortunes` package.

    python examples/train_gpt.py [--steps 800] [--batch-size 16] [--block-size 64] [--n-layer 2]
                                 [--n-embd 96] [--n-head 4] [--lr 6e-3] [--out gpt_out] [--resume]
                                 [--save-every 400] [--ckpt PATH] [--amp bf16|fp16] [--checkpoint]
                                 [--device auto|cpu|cuda[:i]]
    mpirun -np 2 python examples/train_gpt.py --ddp [--zero]    # data-parallel over MPI (or NCCL on GPUs)

bigmodel.models.GPT (GPT-2 architecture: pre-LN blocks, causal scaled_dot_product_attention,
GELU MLP, tied LM head) learns to predict the next character of the fortunes text (every
file of /usr/share/games/fortunes except the .dat/.u8 index files; 90% train, 10% val).
AdamW with a linear warm-up and cosine decay (bm.optim.lr_scheduler.warmup_cosine). Every
--eval-every steps it estimates train/val loss and prints a sample; every --save-every steps
it saves model + optimizer + scheduler + step + RNG states (bigmodel's and the batch
sampler's) to --ckpt (default <out>/ckpt.bm), and --resume (with the same arguments)
carries on from there: on the CPU the resumed losses equal the uninterrupted run's bit for
bit (evaluation draws its batches from its own generator, so it never shifts training's).
--amp bf16 runs the forward under bm.autocast (float16: fp16 plus a GradScaler);
--checkpoint recomputes each transformer block in backward (bm.utils.checkpoint) to save
activation memory. A loss plot goes to <out>/loss.png when matplotlib is installed.
--device (default auto: a GPU when bigmodel has CUDA and one is usable, else the CPU) holds
the model, batches, optimizer state and autocast; checkpoints load on any device (a GPU
run's checkpoint resumes on the CPU and the reverse), and --resume on the device that saved
it continues exactly. Under --ddp "cuda" (or auto) is each rank's own GPU.
--ddp (under mpirun): DistributedDataParallel averages the gradients; every step all ranks
draw one global batch of batch-size x world-size windows from the same generator and rank r
trains on rows r, r+W, ... (so the run sees the batches a single process with the W-times
larger batch would); the printed loss is the mean over ranks; only rank 0 prints, plots and
saves. --zero (implies --ddp) shards the AdamW state over the ranks with
bm.distributed.optim.ZeroRedundancyOptimizer (ZeRO-1); checkpoints stay in the plain layout.
With the defaults (235k parameters, 800 steps) the loss falls from ~4.76 (ln of the 113-char
vocabulary) to about 2.1 train / 2.1 val: about 2 minutes on 2 idle cores.
"""
import argparse
import math
import os
import sys
import time

import numpy as np

import bigmodel as bm
from bigmodel import optim
from bigmodel.models import GPT, GPTConfig
from bigmodel.utils import MetricsWriter, ProgressBar, plot_metrics

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _device import add_device_arg, amp_device_type, pick_device  # noqa: E402  (examples/_device.py)

FORTUNES_DIR = "/usr/share/games/fortunes"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--n-layer", type=int, default=2)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=96)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--lr", type=float, default=6e-3, help="peak learning rate")
    p.add_argument("--min-lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=40)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--eval-every", type=int, default=200, help="steps between evaluations (0: only at the end)")
    p.add_argument("--eval-batches", type=int, default=8)
    p.add_argument("--save-every", "--ckpt-every", dest="save_every", type=int, default=400,
                   help="steps between checkpoints (0: only at the end)")
    p.add_argument("--ckpt", default=None, help="checkpoint path (default <out>/ckpt.bm)")
    p.add_argument("--sample-len", type=int, default=200)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--root", default=FORTUNES_DIR, help="folder of fortune files")
    p.add_argument("--out", default="gpt_out", help="folder for checkpoint, metrics and plot")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint (--ckpt)")
    p.add_argument("--stop-at", type=int, default=None,
                   help="save a checkpoint and stop after this step, as an interrupted run would (tests)")
    p.add_argument("--amp", choices=["off", "bf16", "fp16"], default="off",
                   help="mixed precision: run the forward under bm.autocast in bfloat16 or float16")
    p.add_argument("--checkpoint", action="store_true",
                   help="activation checkpointing: recompute each block during backward")
    p.add_argument("--no-plot", action="store_true", help="skip the loss plot")
    p.add_argument("--ddp", action="store_true",
                   help="data-parallel training under mpirun (DistributedDataParallel; --batch-size is per rank)")
    p.add_argument("--zero", action="store_true",
                   help="with --ddp: shard the optimizer state over the ranks (ZeroRedundancyOptimizer, ZeRO-1)")
    add_device_arg(p)
    return p.parse_args(argv)


def load_fortunes(root=FORTUNES_DIR):
    """The concatenated text of every fortune file under root (skipping .dat/.u8 index files)."""
    if not os.path.isdir(root):
        raise SystemExit(f"no fortunes text at {root}: install Debian's `fortunes` package "
                         f"(apt-get install fortunes) or pass --root")
    parts = []
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if name.endswith((".dat", ".u8")):
                continue
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and not os.path.exists(path):
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                parts.append(f.read())
    text = "".join(parts)
    if not text:
        raise SystemExit(f"no fortune files found under {root}: install Debian's `fortunes` package")
    return text


class CharCodec:
    def __init__(self, text):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self):
        return len(self.chars)

    def encode(self, s):
        return np.array([self.index[c] for c in s if c in self.index], dtype=np.int64)

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in ids)


def get_batch(data, batch_size, block_size, rng, rank=0, world_size=1, device="cpu"):
    """Random windows: x = data[i:i+T], y = data[i+1:i+T+1], on `device`. With world_size > 1
    every rank draws the same batch_size * world_size windows and keeps rows rank, rank + W, ..."""
    starts = rng.integers(0, len(data) - block_size - 1, size=batch_size * world_size)[rank::world_size]
    x = np.stack([data[s:s + block_size] for s in starts])
    y = np.stack([data[s + 1:s + block_size + 1] for s in starts])
    return bm.tensor(x).to(device=device), bm.tensor(y).to(device=device)


def estimate_loss(model, splits, args, rng, device="cpu"):
    model.eval()
    out = {}
    with bm.no_grad():
        for name, data in splits.items():
            losses = [model(*get_batch(data, args.batch_size, args.block_size, rng, device=device))[1].item()
                      for _ in range(args.eval_batches)]
            out[name] = float(np.mean(losses))
    model.train()
    return out


def sample(model, codec, prompt, length, top_k=10, device="cpu"):
    idx = bm.tensor(codec.encode(prompt)).reshape(1, -1).to(device=device)
    return codec.decode(model.generate(idx, length, temperature=0.8, top_k=top_k)[0].cpu().tolist())


def enable_activation_checkpointing(model):
    """Wraps each block's forward in bm.utils.checkpoint (only while training with grad on):
    the block's activations are dropped after the forward and recomputed in backward.
    The blocks stay where they are, so state dict names do not change."""
    from bigmodel.utils import checkpoint
    for block in model.h:
        plain = block.forward

        def forward(x, _plain=plain, _block=block):
            if _block.training and bm.is_grad_enabled():
                return checkpoint(_plain, x)
            return _plain(x)
        block.forward = forward


def main(argv=None):
    """Runs the training; returns {"losses": per-step training losses from step 1, "final": ...,
    "device": the device it trained on}."""
    args = parse_args(argv)
    rank, world = 0, 1
    if args.zero:
        args.ddp = True
    if args.ddp:
        import bigmodel.distributed as dist
        from bigmodel.nn.parallel import DistributedDataParallel
        if not dist.is_initialized():
            dist.init_process_group()
        rank, world = dist.get_rank(), dist.get_world_size()
    device = pick_device(args.device)  # after init_process_group: "cuda" is then this rank's GPU
    log = print if rank == 0 else (lambda *a, **k: None)  # only rank 0 reports
    text = load_fortunes(args.root)
    codec = CharCodec(text)
    data = codec.encode(text)
    n_train = int(0.9 * len(data))
    splits = {"train": data[:n_train], "val": data[n_train:]}
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = args.ckpt or os.path.join(args.out, "ckpt.bm")
    metrics_path = os.path.join(args.out, "metrics.jsonl")

    bm.manual_seed(args.seed)
    config = GPTConfig(vocab_size=codec.vocab_size, block_size=args.block_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout)
    # `raw`: the unwrapped model (evaluation, sampling, state dicts).
    model = raw = GPT(config).to(device=device)
    if args.checkpoint:
        enable_activation_checkpointing(model)
    # Weight decay on matrices only (not biases, LayerNorm gains or position/token vectors' norms).
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if args.ddp:
        model = DistributedDataParallel(raw)  # rank 0's initial parameters are broadcast
        if rank > 0:
            bm.manual_seed(args.seed + 7919 * rank)  # other dropout masks than rank 0's
    if args.zero:
        # DDP has averaged the gradients (clipping needs the full ones), so ZeRO only slices them.
        from bigmodel.distributed.optim import ZeroRedundancyOptimizer
        opt = ZeroRedundancyOptimizer(groups, optimizer_class=optim.AdamW, reduce_grads=False, lr=args.lr,
                                      betas=(0.9, 0.99))
    else:
        opt = optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.99))
    sched = optim.lr_scheduler.warmup_cosine(opt, min(args.warmup, args.steps), args.steps, min_lr=args.min_lr)
    rng = np.random.default_rng(args.seed)  # training batches only
    amp_dtype = {"bf16": bm.bfloat16, "fp16": bm.float16}.get(args.amp)
    amp_device = amp_device_type(device)
    scaler = bm.amp.GradScaler(amp_device, enabled=args.amp == "fp16")
    step, losses = 0, []
    if args.resume:
        if not os.path.exists(ckpt_path):
            raise SystemExit(f"--resume: no checkpoint at {ckpt_path}")
        ckpt = bm.load(ckpt_path)
        raw.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        bm.set_rng_state(ckpt["rng"])
        rng.bit_generator.state = _np_state_from(ckpt["np_rng"])
        step = int(ckpt["step"])
        losses = list(ckpt.get("losses", []))
        if "scaler" in ckpt and ckpt["scaler"]:
            scaler.load_state_dict(ckpt["scaler"])
        log(f"resumed from {ckpt_path} at step {step}", flush=True)

    log(f"fortunes: {len(text):,} characters, vocab {codec.vocab_size}; GPT {config.n_layer} layers, "
          f"{config.n_head} heads, n_embd {config.n_embd}, block {config.block_size}, "
          f"{raw.num_parameters():,} parameters; {args.steps} steps of batch {args.batch_size}"
          + (f" on each of {world} ranks{' (ZeRO-1 optimizer)' if args.zero else ''}" if args.ddp else "")
          + f"; on {device}", flush=True)
    first = None
    if rank == 0:
        first = estimate_loss(raw, splits, args, eval_rng(args, step), device)
        print(f"step {step}: train loss {first['train']:.4f}, val loss {first['val']:.4f}", flush=True)

    writer = MetricsWriter(metrics_path, append=args.resume) if rank == 0 else None
    bar = ProgressBar(total=args.steps, desc="train", unit="step", disable=rank != 0)
    bar.update(step)
    start = time.perf_counter()
    while step < args.steps:
        x, y = get_batch(splits["train"], args.batch_size, args.block_size, rng, rank, world, device)
        with bm.autocast(amp_device, dtype=amp_dtype, enabled=amp_dtype is not None):
            _, loss = model(x, y)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)  # clip the true gradients (a no-op without fp16)
        bm.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        sched.step()
        step += 1
        if args.ddp:  # report the mean over ranks (the loss of the global batch)
            value_t = loss.detach().reshape(1).clone()
            dist.all_reduce(value_t, dist.ReduceOp.AVG)
            value = value_t.item()
        else:
            value = loss.item()
        losses.append(value)
        if not math.isfinite(value):
            raise SystemExit(f"training diverged at step {step} (loss {value}); lower --lr")
        if rank == 0:
            writer.write(step=step, loss=value, lr=opt.param_groups[0]["lr"])
        bar.update(1, loss=value)
        if rank == 0 and ((args.eval_every > 0 and step % args.eval_every == 0) or step == args.steps):
            est = estimate_loss(raw, splits, args, eval_rng(args, step), device)
            writer.write(step=step, train_loss=est["train"], val_loss=est["val"])
            text_out = sample(raw, codec, chr(10), args.sample_len // 2, device=device)
            bar.write(f"step {step}: train loss {est['train']:.4f}, val loss {est['val']:.4f}\n"
                      f"--- sample ---\n{text_out}\n--------------")
        stopping = args.stop_at is not None and step >= args.stop_at
        if (args.save_every > 0 and step % args.save_every == 0) or step == args.steps or stopping:
            if args.zero:
                opt.consolidate_state_dict(to=0)  # a collective: every rank takes part
            if rank == 0:
                bm.save({"model": raw.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                         "rng": bm.get_rng_state(), "np_rng": _np_state_to(rng.bit_generator.state), "step": step,
                         "losses": losses, "scaler": scaler.state_dict(), "config": vars(config)}, ckpt_path)
        if stopping:
            break
    bar.close()
    if rank == 0:
        writer.close()
    elapsed = time.perf_counter() - start
    if args.ddp:
        dist.barrier()  # rank 0's checkpoint is on disk before any rank returns
    if step < args.steps:
        log(f"stopped at step {step} (--stop-at); continue with --resume", flush=True)
        return {"losses": losses, "final": None, "device": device}
    if rank != 0:
        return {"losses": losses, "final": None, "device": device}

    final = estimate_loss(raw, splits, args, eval_rng(args, step), device)
    if not args.no_plot:
        try:
            plot_metrics(os.path.join(args.out, "loss.png"), metrics_path, keys=["loss", "val_loss"],
                         title="char-level GPT on fortunes")
            print(f"loss plot saved to {os.path.join(args.out, 'loss.png')}")
        except RuntimeError as e:  # matplotlib missing
            print(f"no plot: {e}")
    print(f"trained {args.steps} steps in {elapsed:.0f} s")
    print(f"final: train loss {final['train']:.4f}, val loss {final['val']:.4f} "
          f"(started at {first['train']:.4f} / {first['val']:.4f})")
    print("sample:\n" + sample(raw, codec, "Q: ", args.sample_len, device=device))
    return {"losses": losses, "final": final, "device": device}


def eval_rng(args, step):
    """Evaluation's own generator (seeded by step), so estimating the loss never moves the
    training batches' generator: a resumed run then draws exactly the batches it would have."""
    return np.random.default_rng([args.seed, step, 1])


def _np_state_to(state):
    """NumPy's PCG64 state as plain ints-as-strings (bm.save stores JSON-able values)."""
    return {"state": str(state["state"]["state"]), "inc": str(state["state"]["inc"]),
            "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}


def _np_state_from(d):
    return {"bit_generator": "PCG64", "state": {"state": int(d["state"]), "inc": int(d["inc"])},
            "has_uint32": int(d["has_uint32"]), "uinteger": int(d["uinteger"])}


if __name__ == "__main__":
    main()
    sys.exit(0)
