"""nn.MultiheadAttention, nn.TransformerEncoderLayer and nn.TransformerDecoderLayer with PyTorch's
constructor arguments, parameter names and mask conventions (attention runs through
scaled_dot_product_attention)."""
import math

from .. import _C
from . import functional as F
from . import init
from .dropout import Dropout
from .linear import Linear, _linear_act_module
from .module import Module
from .normalization import LayerNorm
from .parameter import Parameter
from ._util import empty_param_data


def _to_additive(mask, dtype, op):
    """A float mask to add to the scores; a bool mask (True = NOT allowed, nn's convention) -> -inf there."""
    if mask is None:
        return None
    if mask.dtype == _C.dtype.bool:
        zeros = _C.zeros(*mask.shape, dtype=dtype, device=mask.device)
        return zeros.masked_fill(mask, float("-inf"))
    if not mask.is_floating_point():
        raise TypeError(f"[{op}] masks must be bool or floating, got {mask.dtype}")
    return mask.to(dtype)


class MultiheadAttention(Module):
    """Multi-head attention: in_proj_weight [3E, E] packs the q/k/v projections, out_proj is a Linear.

    Inputs are [L, N, E] ([N, L, E] with batch_first) or unbatched [L, E]. key_padding_mask
    [N, S] and attn_mask [L, S] or [N*num_heads, L, S] are bool (True = masked out) or float (added).
    Returns (output, weights): weights are [N, L, S] averaged over heads (or [N, H, L, S]), or None
    when need_weights is False.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads != 0:
            raise ValueError(f"[MultiheadAttention] embed_dim ({embed_dim}) must be a positive multiple of "
                             f"num_heads ({num_heads})")
        if add_bias_kv or add_zero_attn or (kdim not in (None, embed_dim)) or (vdim not in (None, embed_dim)):
            raise NotImplementedError("[MultiheadAttention] add_bias_kv, add_zero_attn and kdim/vdim != embed_dim "
                                      "are not supported")
        self.embed_dim = embed_dim
        self.kdim = self.vdim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.in_proj_weight = Parameter(empty_param_data(3 * embed_dim, embed_dim, dtype=dtype, device=device))
        if bias:
            self.in_proj_bias = Parameter(empty_param_data(3 * embed_dim, dtype=dtype, device=device))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        self._reset_parameters()

    def _reset_parameters(self):
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _merged_mask(self, attn_mask, key_padding_mask, is_causal, n, length, s, dtype):
        """One additive mask broadcastable to [N, H, L, S], or None."""
        h = self.num_heads
        if attn_mask is None and is_causal:
            attn_mask = _C.triu(_C.ones(length, s, dtype=_C.dtype.bool), 1)
        mask = _to_additive(attn_mask, dtype, "MultiheadAttention")
        if mask is not None:
            if mask.dim() == 2 and tuple(mask.shape) == (length, s):
                pass
            elif mask.dim() == 3 and tuple(mask.shape) == (n * h, length, s):
                mask = mask.reshape(n, h, length, s)
            else:
                raise ValueError(f"[MultiheadAttention] attn_mask must be [{length}, {s}] or "
                                 f"[{n * h}, {length}, {s}], got {list(mask.shape)}")
        kpm = _to_additive(key_padding_mask, dtype, "MultiheadAttention")
        if kpm is not None:
            if tuple(kpm.shape) != (n, s):
                raise ValueError(f"[MultiheadAttention] key_padding_mask must be [{n}, {s}], got {list(kpm.shape)}")
            kpm = kpm.reshape(n, 1, 1, s)
            mask = kpm if mask is None else mask + kpm
        return mask

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        unbatched = query.dim() == 2
        if query.dim() not in (2, 3) or key.dim() != query.dim() or value.dim() != query.dim():
            raise ValueError(f"[MultiheadAttention] query, key and value must all be 2-D or 3-D, got "
                             f"{list(query.shape)}, {list(key.shape)}, {list(value.shape)}")
        if unbatched:  # treat as a batch of one in batch-first layout
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        n, length, e = query.shape
        s = key.shape[1]
        if e != self.embed_dim or key.shape[2] != e or value.shape[2] != e:
            raise ValueError(f"[MultiheadAttention] expected embed_dim {self.embed_dim}, got query "
                             f"{list(query.shape)}, key {list(key.shape)}, value {list(value.shape)}")
        if key.shape[:2] != value.shape[:2] or key.shape[0] != n:
            raise ValueError(f"[MultiheadAttention] key {list(key.shape)} and value {list(value.shape)} must "
                             f"match each other and the query batch size {n}")
        w_q, w_k, w_v = self.in_proj_weight.chunk(3, 0)
        b_q = b_k = b_v = None
        if self.in_proj_bias is not None:
            b_q, b_k, b_v = self.in_proj_bias.chunk(3, 0)
        h, d = self.num_heads, self.head_dim
        q = F.linear(query, w_q, b_q).reshape(n, length, h, d).transpose(1, 2)
        k = F.linear(key, w_k, b_k).reshape(n, s, h, d).transpose(1, 2)
        v = F.linear(value, w_v, b_v).reshape(n, s, h, d).transpose(1, 2)
        mask = self._merged_mask(attn_mask, key_padding_mask, is_causal, n, length, s, q.dtype)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            out, weights = _C._sdpa_with_weights(q, k, v, mask, dropout_p=p)
            if average_attn_weights:
                weights = weights.mean(1)
            if unbatched:
                weights = weights.squeeze(0)
        else:
            out = F.scaled_dot_product_attention(q, k, v, mask, dropout_p=p)
        out = self.out_proj(out.transpose(1, 2).reshape(n, length, e))
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"


def _activation(activation, op):
    if callable(activation):
        return activation
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise ValueError(f"[{op}] activation should be 'relu' or 'gelu' (or a callable), got {activation!r}")


def _ff_first(layer, x):
    """activation(linear1(x)) of a feed-forward block: fused into linear1's GEMM when the
    activation is F.relu or F.gelu (what the 'relu' / 'gelu' strings select)."""
    act = "relu" if layer.activation is F.relu else "gelu" if layer.activation is F.gelu else None
    if act is None:
        return layer.activation(layer.linear1(x))
    return _linear_act_module(layer.linear1, x, act)


class TransformerEncoderLayer(Module):
    """Self-attention + feed-forward block (post-norm by default, pre-norm with norm_first)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation(activation, "TransformerEncoderLayer")

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal, need_weights=False):
        x, w = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                              need_weights=need_weights, average_attn_weights=False, is_causal=is_causal)
        self._last_weights = w
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(_ff_first(self, x))))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False, need_weights=False):
        """need_weights=True returns (output, attention weights [N, H, L, S] per head)."""
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal, need_weights)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal, need_weights))
            x = self.norm2(x + self._ff_block(x))
        if need_weights:
            weights, self._last_weights = self._last_weights, None
            return x, weights
        self._last_weights = None
        return x


class TransformerDecoderLayer(Module):
    """Self-attention, cross-attention over `memory`, then feed-forward (post-norm unless norm_first)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                                 **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation(activation, "TransformerDecoderLayer")

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal, need_weights=False):
        x, self._self_weights = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                               need_weights=need_weights, average_attn_weights=False,
                                               is_causal=is_causal)
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal, need_weights=False):
        x, self._cross_weights = self.multihead_attn(x, mem, mem, attn_mask=attn_mask,
                                                     key_padding_mask=key_padding_mask, need_weights=need_weights,
                                                     average_attn_weights=False, is_causal=is_causal)
        return self.dropout2(x)

    def _ff_block(self, x):
        return self.dropout3(self.linear2(self.dropout(_ff_first(self, x))))

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False, need_weights=False):
        """need_weights=True returns (output, (self-attention weights, cross-attention weights)),
        each [N, H, L, S] per head."""
        x = tgt
        w = need_weights
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal, w)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal, w)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal, w))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal, w))
            x = self.norm3(x + self._ff_block(x))
        weights = (self._self_weights, self._cross_weights)
        self._self_weights = self._cross_weights = None
        return (x, weights) if need_weights else x


__all__ = ["MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer"]


class TransformerEncoder(Module):
    """num_layers deep copies of encoder_layer, applied in turn, then an optional final norm."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        import copy
        from .container import ModuleList
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(Module):
    """num_layers deep copies of decoder_layer, applied in turn, then an optional final norm."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        import copy
        from .container import ModuleList
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, **kwargs):
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask, **kwargs)
        return self.norm(x) if self.norm is not None else x


class Transformer(Module):
    """The encoder-decoder model of "Attention Is All You Need": num_encoder_layers encoder layers
    and num_decoder_layers decoder layers, each stack closed by a LayerNorm (PyTorch's layout and
    parameter names: encoder.layers.N..., encoder.norm, decoder.layers.N..., decoder.norm)."""

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
                 dropout=0.1, activation="relu", custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                                            batch_first, norm_first, bias, **kw)
            self.encoder = TransformerEncoder(layer, num_encoder_layers, LayerNorm(d_model, eps=layer_norm_eps,
                                                                                   bias=bias, **kw))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            layer = TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                                            batch_first, norm_first, bias, **kw)
            self.decoder = TransformerDecoder(layer, num_decoder_layers, LayerNorm(d_model, eps=layer_norm_eps,
                                                                                   bias=bias, **kw))
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        for p in self.parameters():  # xavier_uniform_ on the matrices, as PyTorch's _reset_parameters
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=bool(src_is_causal))
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        """A float mask with -inf above the diagonal (position i may attend to 0..i)."""
        dt = dtype or _C.dtype.float32
        upper = _C.triu(_C.ones(sz, sz, dtype=_C.dtype.bool, device=device or "cpu"), 1)
        return _C.zeros(sz, sz, dtype=dt, device=device or "cpu").masked_fill(upper, float("-inf"))
