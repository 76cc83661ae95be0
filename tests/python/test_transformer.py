"""Tests for nn.Embedding, nn.LayerNorm, nn.MultiheadAttention (vs a NumPy re-implementation with the
module's own weights, masks, head-averaged weights) and the Transformer encoder/decoder layers."""
import math

import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn
from conftest import assert_close


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def ref_mha(m, q, k, v, add_mask=None):
    """q [N, L, E], k/v [N, S, E] (batch first); add_mask broadcasts to [N, H, L, S]."""
    w = m.in_proj_weight.detach().numpy()
    b = m.in_proj_bias.detach().numpy()
    e, h = m.embed_dim, m.num_heads
    d = e // h

    def heads(x, i):
        y = x @ w[i * e:(i + 1) * e].T + b[i * e:(i + 1) * e]
        return y.reshape(x.shape[0], x.shape[1], h, d).transpose(0, 2, 1, 3)
    qh, kh, vh = heads(q, 0), heads(k, 1), heads(v, 2)
    s = qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(d)
    if add_mask is not None:
        s = s + add_mask
    p = softmax(s)
    o = (p @ vh).transpose(0, 2, 1, 3).reshape(q.shape[0], q.shape[1], e)
    o = o @ m.out_proj.weight.detach().numpy().T + m.out_proj.bias.detach().numpy()
    return o, p


def test_embedding(rng):
    emb = nn.Embedding(10, 4, padding_idx=2)
    w = emb.weight.detach().numpy()
    np.testing.assert_array_equal(w[2], 0.0)
    assert 0.5 < w.std() < 1.5  # N(0, 1) init
    idx = bm.tensor(np.array([[1, 2], [9, 1]]))
    out = emb(idx)
    assert_close(out, w[[[1, 2], [9, 1]]])
    out.sum().backward()
    g = emb.weight.grad.numpy()
    np.testing.assert_array_equal(g[2], 0.0)  # the padding row gets no gradient
    np.testing.assert_array_equal(g[1], 2.0)
    with pytest.raises(ValueError, match=r"\[Embedding\]"):
        nn.Embedding(5, 3, padding_idx=5)


def test_layer_norm(rng):
    ln = nn.LayerNorm(6)
    with bm.no_grad():
        ln.weight.copy_(bm.tensor(rng.standard_normal(6)).float())
        ln.bias.copy_(bm.tensor(rng.standard_normal(6)).float())
    x = rng.standard_normal((3, 4, 6))
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    ref = (x - mu) / np.sqrt(var + 1e-5) * ln.weight.detach().numpy() + ln.bias.detach().numpy()
    assert_close(ln(bm.tensor(x).float()), ref, atol=1e-5, rtol=1e-5)
    assert [n for n, _ in ln.named_parameters()] == ["weight", "bias"]
    assert list(nn.LayerNorm(6, elementwise_affine=False).parameters()) == []


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_matches_numpy(rng, batch_first):
    bm.manual_seed(0)
    m = nn.MultiheadAttention(12, 3, batch_first=batch_first).double()
    with bm.no_grad():
        m.in_proj_bias.copy_(bm.tensor(rng.standard_normal(36)))
        m.out_proj.bias.copy_(bm.tensor(rng.standard_normal(12)))
    assert [n for n, _ in m.named_parameters()] == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                                    "out_proj.bias"]
    q, k = rng.standard_normal((2, 5, 12)), rng.standard_normal((2, 7, 12))
    v = rng.standard_normal((2, 7, 12))
    kpm = np.zeros((2, 7), dtype=bool)
    kpm[1, 5:] = True
    am = rng.standard_normal((5, 7))
    add = am[None, None] + np.where(kpm, -np.inf, 0.0)[:, None, None, :]
    ref_o, ref_p = ref_mha(m, q, k, v, add)

    def arrange(a):
        return bm.tensor(a if batch_first else np.ascontiguousarray(a.transpose(1, 0, 2)))
    out, w = m(arrange(q), arrange(k), arrange(v), key_padding_mask=bm.tensor(kpm), attn_mask=bm.tensor(am))
    o = out.detach().numpy() if batch_first else out.detach().numpy().transpose(1, 0, 2)
    np.testing.assert_allclose(o, ref_o, atol=1e-10)
    assert_close(w, ref_p.mean(1), atol=1e-10, rtol=1e-10)
    _, w_all = m(arrange(q), arrange(k), arrange(v), key_padding_mask=bm.tensor(kpm), attn_mask=bm.tensor(am),
                 average_attn_weights=False)
    assert_close(w_all, ref_p, atol=1e-10, rtol=1e-10)
    out2, none = m(arrange(q), arrange(k), arrange(v), key_padding_mask=bm.tensor(kpm), attn_mask=bm.tensor(am),
                   need_weights=False)
    assert none is None
    assert_close(out2, out.detach().numpy(), atol=1e-12, rtol=1e-12)


def test_mha_bool_attn_mask_causal_and_unbatched(rng):
    m = nn.MultiheadAttention(8, 2, batch_first=True).double()
    x = rng.standard_normal((1, 4, 8))
    causal_bool = np.triu(np.ones((4, 4), dtype=bool), 1)  # True = not allowed
    ref_o, _ = ref_mha(m, x, x, x, np.where(causal_bool, -np.inf, 0.0))
    out, _ = m(bm.tensor(x), bm.tensor(x), bm.tensor(x), attn_mask=bm.tensor(causal_bool))
    np.testing.assert_allclose(out.detach().numpy(), ref_o, atol=1e-10)
    out_c, _ = m(bm.tensor(x), bm.tensor(x), bm.tensor(x), is_causal=True)
    np.testing.assert_allclose(out_c.detach().numpy(), ref_o, atol=1e-10)
    out_u, w_u = m(bm.tensor(x[0]), bm.tensor(x[0]), bm.tensor(x[0]), attn_mask=bm.tensor(causal_bool))
    assert tuple(out_u.shape) == (4, 8) and tuple(w_u.shape) == (4, 4)
    np.testing.assert_allclose(out_u.detach().numpy(), ref_o[0], atol=1e-10)


def test_mha_bad_inputs():
    with pytest.raises(ValueError, match=r"\[MultiheadAttention\]"):
        nn.MultiheadAttention(10, 3)
    m = nn.MultiheadAttention(8, 2)
    x = bm.randn(4, 2, 8)
    with pytest.raises(ValueError, match=r"\[MultiheadAttention\].*key_padding_mask"):
        m(x, x, x, key_padding_mask=bm.zeros(3, 4, dtype=bm.bool))
    with pytest.raises(ValueError, match=r"\[MultiheadAttention\].*attn_mask"):
        m(x, x, x, attn_mask=bm.zeros(3, 3))
    with pytest.raises(ValueError, match=r"\[MultiheadAttention\]"):
        m(x, x, bm.randn(4, 2, 6))


def _grads_flow(module, loss):
    loss.backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        assert float(p.grad.abs().sum()) > 0, name


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer(norm_first, activation):
    bm.manual_seed(1)
    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.1, activation=activation,
                                       batch_first=True, norm_first=norm_first)
    names = {n for n, _ in layer.named_parameters()}
    assert {"self_attn.in_proj_weight", "self_attn.out_proj.weight", "linear1.weight", "linear2.bias",
            "norm1.weight", "norm2.bias"} <= names
    x = bm.randn(3, 5, 16, requires_grad=True)
    kpm = bm.tensor(np.array([[False] * 5, [False] * 4 + [True], [False] * 5]))
    out = layer(x, src_key_padding_mask=kpm)
    assert tuple(out.shape) == (3, 5, 16)
    _grads_flow(layer, (out * bm.randn(3, 5, 16)).sum())
    assert float(x.grad.abs().sum()) > 0
    layer.eval()
    a, b = layer(x), layer(x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())  # no dropout in eval


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer(norm_first):
    bm.manual_seed(2)
    layer = nn.TransformerDecoderLayer(16, 2, dim_feedforward=24, dropout=0.0, norm_first=norm_first)
    names = {n for n, _ in layer.named_parameters()}
    assert {"self_attn.in_proj_weight", "multihead_attn.in_proj_weight", "norm3.weight", "linear1.bias"} <= names
    tgt, mem = bm.randn(6, 2, 16), bm.randn(4, 2, 16, requires_grad=True)  # seq-first
    out = layer(tgt, mem, tgt_is_causal=True)
    assert tuple(out.shape) == (6, 2, 16)
    _grads_flow(layer, (out * bm.randn(6, 2, 16)).sum())
    assert float(mem.grad.abs().sum()) > 0
    # Causal self-attention: changing the last target step leaves the earlier outputs unchanged.
    tgt2 = tgt.detach().numpy().copy()
    tgt2[-1] += 5.0
    out2 = layer(bm.tensor(tgt2), mem, tgt_is_causal=True)
    np.testing.assert_allclose(out2.detach().numpy()[:-1], out.detach().numpy()[:-1], atol=1e-5)
    with pytest.raises(ValueError, match=r"\[TransformerDecoderLayer\]"):
        nn.TransformerDecoderLayer(16, 2, activation="tanh")
