"""GPT: a GPT-2-style decoder-only language model (token + position embeddings, pre-LN blocks
with causal self-attention, GELU(tanh) MLP, final LayerNorm, LM head tied to the token embedding)."""
import math
from dataclasses import dataclass

import numpy as np

from .. import _C
from .. import nn
from ..nn import functional as F
from ..nn.linear import _linear_act_module


@dataclass
class GPTConfig:
    vocab_size: int = 50304
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True


def gpt2_124m(**overrides):
    """GPT-2 small (124M parameters with the 50257-token vocabulary)."""
    cfg = dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768, dropout=0.0)
    cfg.update(overrides)
    return GPTConfig(**cfg)


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.n_embd % config.n_head != 0:
            raise ValueError(f"[GPT] n_embd ({config.n_embd}) must be divisible by n_head ({config.n_head})")
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # packed q, k, v
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, need_weights=False):
        """need_weights=True returns (output, attention probabilities [B, H, T, T])."""
        b, t, c = x.shape
        h = self.n_head
        q, k, v = self.c_attn(x).split(c, 2)
        q = q.reshape(b, t, h, c // h).transpose(1, 2)
        k = k.reshape(b, t, h, c // h).transpose(1, 2)
        v = v.reshape(b, t, h, c // h).transpose(1, 2)
        p = self.dropout if self.training else 0.0
        if need_weights:
            y, weights = _C._sdpa_with_weights(q, k, v, None, dropout_p=p, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        y = self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(b, t, c)))
        return (y, weights) if need_weights else y


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        # c_fc's GEMM applies the bias and the tanh GELU in its epilogue (nn/linear.py).
        return self.dropout(self.c_proj(_linear_act_module(self.c_fc, x, "gelu_tanh")))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x, need_weights=False):
        if need_weights:
            a, weights = self.attn(self.ln_1(x), need_weights=True)
            x = x + a
            return x + self.mlp(self.ln_2(x)), weights
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(config, name) <= 0:
                raise ValueError(f"[GPT] config.{name} must be positive, got {getattr(config, name)}")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: one Parameter, two uses
        self._init_weights()

    def _init_weights(self):
        # GPT-2: N(0, 0.02) everywhere, zero biases, residual projections scaled by 1/sqrt(2 n_layer).
        std_proj = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif name.startswith("ln") or ".ln_" in name:
                nn.init.ones_(p)
            elif name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, std_proj)
            else:
                nn.init.normal_(p, 0.0, 0.02)

    def num_parameters(self, non_embedding=True):
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def forward(self, idx, targets=None, output_attentions=False):
        """(logits [B, T, vocab], loss or None); with output_attentions=True a third item, the
        list of every layer's causal attention probabilities [B, n_head, T, T]."""
        if idx.dim() != 2:
            raise ValueError(f"[GPT] idx must be [batch, time] token ids, got shape {list(idx.shape)}")
        b, t = idx.shape
        if t > self.config.block_size:
            raise ValueError(f"[GPT] sequence length {t} exceeds block_size {self.config.block_size}")
        pos = _C.arange(0, t, dtype=_C.dtype.int64, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        attentions = []
        for block in self.h:
            if output_attentions:
                x, weights = block(x, need_weights=True)
                attentions.append(weights)
            else:
                x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            if tuple(targets.shape) != (b, t):
                raise ValueError(f"[GPT] targets must be [{b}, {t}] like idx, got {list(targets.shape)}")
            loss = F.cross_entropy(logits.reshape(b * t, -1), targets.reshape(b * t), ignore_index=-1)
        if output_attentions:
            return logits, loss, attentions
        return logits, loss

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        """Append max_new_tokens sampled tokens to idx [B, T] (sampling uses bigmodel's generator,
        so bm.manual_seed makes it reproducible). temperature 0 picks the argmax."""
        if temperature < 0:
            raise ValueError(f"[GPT.generate] temperature must be >= 0, got {temperature}")
        if top_k is not None and top_k <= 0:
            raise ValueError(f"[GPT.generate] top_k must be positive, got {top_k}")
        import bigmodel as bm  # the package-level no_grad/tensor (this module loads during bigmodel's import)
        was_training = self.training
        self.eval()
        try:
            with bm.no_grad():
                for _ in range(max_new_tokens):
                    cond = idx if idx.shape[1] <= self.config.block_size else idx[:, -self.config.block_size:]
                    logits, _ = self(cond)
                    # The draw runs on the host; the new tokens go back to idx's device.
                    nxt = self._sample(logits[:, -1, :].cpu().to(_C.dtype.float64).numpy(), temperature, top_k)
                    idx = _C.cat([idx, bm.tensor(nxt, dtype=idx.dtype, device=idx.device).reshape(-1, 1)], 1)
        finally:
            self.train(was_training)
        return idx

    @staticmethod
    def _sample(logits, temperature, top_k):
        if temperature == 0:
            return [int(i) for i in logits.argmax(-1)]
        logits = logits / temperature
        if top_k is not None and top_k < logits.shape[-1]:
            kth = np.sort(logits, axis=-1)[:, -top_k][:, None]
            logits = np.where(logits < kth, -np.inf, logits)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        u = _C.rand(logits.shape[0], dtype=_C.dtype.float64).numpy()  # bigmodel's RNG stream
        cdf = np.cumsum(probs, -1)
        out = []
        for row, ui in zip(cdf, u):
            j = int(np.searchsorted(row, ui * row[-1], side="right"))
            j = min(j, len(row) - 1)
            while probs[len(out), j] == 0 and j > 0:  # never land on a masked-out token
                j -= 1
            out.append(j)
        return out


__all__ = ["GPT", "GPTConfig", "gpt2_124m"]
