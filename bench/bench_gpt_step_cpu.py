#!/usr/bin/env python3
"""CPU training step of the character GPT (examples/train_gpt.py's defaults: 2 layers, 4 heads,
n_embd 96, block 64, batch 16, AdamW): bigmodel against PyTorch in the same run (issue 5's
CPU goal: no slower).

The PyTorch model below is the same network (GPT-2 blocks: pre-LN, causal attention, GELU
(tanh) MLP, tied LM head), loaded with bigmodel's initial weights; the first losses are
checked equal before timing, so both frameworks compute the same function. Torch 1.13
(Debian) has no fused SDPA, so its attention is the composed softmax(QK^T/sqrt(d)) V, as
bigmodel's CPU path is. One thread each by default; prints median (best) wall ms, median
CPU ms and bigmodel's ratios (< 1: bigmodel faster).

    PYTHONPATH=python python3 bench/bench_gpt_step_cpu.py [--repeat N] [--n-embd 96]
"""
import argparse
import math
import os

from _cpu_timing import default_threads, time_alternating, torch_peer

THREADS = default_threads()  # before numpy/OpenBLAS/bigmodel load
import numpy as np  # noqa: E402

import bigmodel as bm  # noqa: E402
from bigmodel.models.gpt import GPT, GPTConfig  # noqa: E402

torch = torch_peer(THREADS)


def torch_gpt(cfg, state):
    import torch.nn as tnn
    import torch.nn.functional as tF

    class Attn(tnn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = tnn.Linear(cfg.n_embd, 3 * cfg.n_embd)
            self.c_proj = tnn.Linear(cfg.n_embd, cfg.n_embd)
            self.register_buffer("mask", torch.tril(torch.ones(cfg.block_size, cfg.block_size, dtype=torch.bool)))

        def forward(self, x):
            b, t, c = x.shape
            h = cfg.n_head
            q, k, v = self.c_attn(x).split(c, 2)
            q, k, v = (z.reshape(b, t, h, c // h).transpose(1, 2) for z in (q, k, v))
            att = (q @ k.transpose(-2, -1)) / math.sqrt(c // h)
            att = tF.softmax(att.masked_fill(~self.mask[:t, :t], float("-inf")), dim=-1)
            return self.c_proj((att @ v).transpose(1, 2).reshape(b, t, c))

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = tnn.LayerNorm(cfg.n_embd), tnn.LayerNorm(cfg.n_embd)
            self.attn = Attn()
            self.mlp = tnn.Module()
            self.mlp.c_fc = tnn.Linear(cfg.n_embd, 4 * cfg.n_embd)
            self.mlp.c_proj = tnn.Linear(4 * cfg.n_embd, cfg.n_embd)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp.c_proj(tF.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.wte = tnn.Embedding(cfg.vocab_size, cfg.n_embd)
            self.wpe = tnn.Embedding(cfg.block_size, cfg.n_embd)
            self.h = tnn.ModuleList([Block() for _ in range(cfg.n_layer)])
            self.ln_f = tnn.LayerNorm(cfg.n_embd)
            self.lm_head = tnn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
            self.lm_head.weight = self.wte.weight

        def forward(self, idx, targets):
            t = idx.shape[1]
            x = self.wte(idx) + self.wpe(torch.arange(t))
            for block in self.h:
                x = block(x)
            logits = self.lm_head(self.ln_f(x))
            return tF.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    net = Net()
    own = net.state_dict()
    missing = [k for k in own if k not in state and not k.endswith(".mask")]
    assert not missing, f"torch GPT has parameters bigmodel's lacks: {missing}"
    net.load_state_dict({k: torch.from_numpy(state[k]) if k in state else v for k, v in own.items()})
    return net


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--n-embd", type=int, default=96)
    p.add_argument("--n-layer", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=64)
    args = p.parse_args()
    cfg = GPTConfig(vocab_size=100, block_size=args.block_size, n_layer=args.n_layer, n_head=4, n_embd=args.n_embd,
                    dropout=0.0)
    bm.manual_seed(0)
    model = GPT(cfg)
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(0)
    ids = rng.integers(0, cfg.vocab_size, size=(args.batch_size, args.block_size + 1))
    x, y = ids[:, :-1], ids[:, 1:]

    opt = bm.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    xb, yb = bm.tensor(x), bm.tensor(y)

    def bm_step():
        opt.zero_grad()
        loss = model(xb, yb)[1]
        loss.backward()
        opt.step()
        return loss

    steps, names = [bm_step], ["bigmodel"]
    if torch is not None:
        net = torch_gpt(cfg, state)
        topt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.1)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        with torch.no_grad():
            lt = net(xt, yt).item()
        with bm.no_grad():
            lb = model(xb, yb)[1].item()
        assert abs(lt - lb) < 1e-4 * abs(lt), f"the two networks differ: loss {lb} (bigmodel) vs {lt} (torch)"

        def torch_step():
            topt.zero_grad()
            loss = net(xt, yt)
            loss.backward()
            topt.step()
        steps.append(torch_step)
        names.append(f"torch {torch.__version__}")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"character GPT {n_params:,} parameters, batch {args.batch_size} x {args.block_size}, AdamW, "
          f"{os.environ['OMP_NUM_THREADS']} thread(s), median of {args.repeat} (first loss equal in both)")
    results = time_alternating(steps, args.warmup, args.repeat)
    for name, (med, best, cpu) in zip(names, results):
        print(f"  {name:>16}: {med:8.2f} ms (best {best:.2f}), CPU {cpu:.2f} ms")
    if len(results) == 2:
        print(f"  bigmodel / torch: wall {results[0][0] / results[1][0]:.2f}, CPU {results[0][2] / results[1][2]:.2f} "
              "(goal <= 1)")


if __name__ == "__main__":
    main()
