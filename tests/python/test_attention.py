"""Tests for scaled_dot_product_attention (core/ops/attention.*): NumPy float64 reference with
causal/bool/float masks, L != S, odd lengths and several head dims; non-contiguous and
broadcast inputs; dropout; gradcheck; bad inputs."""
import math

import numpy as np
import pytest

import bigmodel as bm
from conftest import assert_close

F = bm.nn.functional
gradcheck = bm.autograd.gradcheck


def ref_sdpa(q, k, v, mask=None, causal=False, scale=None):
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q @ np.swapaxes(k, -1, -2)) * scale
    if causal:
        keep = np.tril(np.ones((q.shape[-2], k.shape[-2]), dtype=bool))
        s = np.where(keep, s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(-1, keepdims=True)
    return p @ v


def t(a, dtype=bm.float64, grad=False):
    x = bm.tensor(a).to(dtype)
    if grad:
        x.requires_grad_(True)
    return x


@pytest.mark.parametrize("L,S", [(1, 1), (17, 17), (5, 9), (9, 3)])
@pytest.mark.parametrize("E", [32, 64, 80])
@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_matches_numpy(rng, L, S, E, causal):
    q, k = rng.standard_normal((2, 3, L, E)), rng.standard_normal((2, 3, S, E))
    v = rng.standard_normal((2, 3, S, 16))
    out = F.scaled_dot_product_attention(t(q), t(k), t(v), is_causal=causal)
    assert tuple(out.shape) == (2, 3, L, 16)
    assert_close(out, ref_sdpa(q, k, v, causal=causal), atol=1e-10, rtol=1e-10)
    out32 = F.scaled_dot_product_attention(t(q, bm.float32), t(k, bm.float32), t(v, bm.float32), is_causal=causal)
    assert out32.dtype == bm.float32
    assert_close(out32, ref_sdpa(q, k, v, causal=causal), atol=2e-5, rtol=2e-4)


def test_sdpa_bool_and_float_masks(rng):
    q, k, v = rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 6, 8)), rng.standard_normal((2, 6, 5))
    bmask = rng.random((4, 6)) < 0.6
    bmask[:, 0] = True  # every row keeps at least one key
    out = F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=bm.tensor(bmask))
    assert_close(out, ref_sdpa(q, k, v, mask=bmask), atol=1e-10, rtol=1e-10)
    fmask = rng.standard_normal((2, 1, 6))  # broadcast over L
    out = F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=t(fmask))
    assert_close(out, ref_sdpa(q, k, v, mask=fmask), atol=1e-10, rtol=1e-10)
    # A bool mask equals the float mask with -inf where False.
    out_b = F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=bm.tensor(bmask))
    out_f = F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=t(np.where(bmask, 0.0, -np.inf)))
    assert_close(out_b, out_f.numpy(), atol=1e-12, rtol=1e-12)


def test_sdpa_scale_noncontiguous_and_broadcast(rng):
    q = rng.standard_normal((3, 7, 16))
    k, v = rng.standard_normal((1, 5, 16)), rng.standard_normal((1, 5, 4))
    qt = t(np.ascontiguousarray(np.swapaxes(q, 1, 2))).transpose(1, 2)  # non-contiguous
    out = F.scaled_dot_product_attention(qt, t(k), t(v), scale=0.3)
    assert_close(out, ref_sdpa(q, k, v, scale=0.3), atol=1e-10, rtol=1e-10)
    assert_close(bm.scaled_dot_product_attention(qt, t(k), t(v), scale=0.3), ref_sdpa(q, k, v, scale=0.3),
                 atol=1e-10, rtol=1e-10)


def test_sdpa_causal_ignores_future(rng):
    q, k, v = (rng.standard_normal((1, 6, 8)) for _ in range(3))
    out1 = F.scaled_dot_product_attention(t(q), t(k), t(v), is_causal=True).numpy()
    k2, v2 = k.copy(), v.copy()
    k2[:, 4:] += 10.0
    v2[:, 4:] -= 3.0
    out2 = F.scaled_dot_product_attention(t(q), t(k2), t(v2), is_causal=True).numpy()
    np.testing.assert_allclose(out1[:, :4], out2[:, :4], atol=1e-12)
    assert not np.allclose(out1[:, 4:], out2[:, 4:])


@pytest.mark.parametrize("dtype,tol", [(bm.float16, 5e-3), (bm.bfloat16, 4e-2)])
def test_sdpa_half_types(rng, dtype, tol):
    q, k, v = rng.standard_normal((2, 5, 16)), rng.standard_normal((2, 7, 16)), rng.standard_normal((2, 7, 8))
    out = F.scaled_dot_product_attention(t(q, dtype), t(k, dtype), t(v, dtype), is_causal=True)
    assert out.dtype == dtype
    assert_close(out.float(), ref_sdpa(q, k, v, causal=True), atol=tol, rtol=tol)


def test_sdpa_dropout(rng):
    q, k, v = (rng.standard_normal((2, 8, 8)) for _ in range(3))
    bm.manual_seed(3)
    a = F.scaled_dot_product_attention(t(q), t(k), t(v), dropout_p=0.5).numpy()
    bm.manual_seed(3)
    b = F.scaled_dot_product_attention(t(q), t(k), t(v), dropout_p=0.5).numpy()
    np.testing.assert_array_equal(a, b)  # bigmodel's generator drives the mask
    assert not np.allclose(a, ref_sdpa(q, k, v))
    np.testing.assert_array_equal(F.scaled_dot_product_attention(t(q), t(k), t(v), dropout_p=1.0).numpy(), 0.0)


def test_sdpa_gradcheck(rng):
    q, k, v = t(rng.standard_normal((2, 3, 4)), grad=True), t(rng.standard_normal((2, 5, 4)), grad=True), \
        t(rng.standard_normal((2, 5, 3)), grad=True)
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c), [q, k, v])
    q2, k2, v2 = (t(rng.standard_normal((1, 4, 3)), grad=True) for _ in range(3))
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True), [q2, k2, v2])
    fmask = t(rng.standard_normal((3, 5)), grad=True)
    assert gradcheck(lambda a, b, c, m: F.scaled_dot_product_attention(a, b, c, attn_mask=m), [q, k, v, fmask])


def test_sdpa_bad_inputs(rng):
    q, k, v = t(rng.standard_normal((2, 3, 4))), t(rng.standard_normal((2, 5, 4))), t(rng.standard_normal((2, 5, 3)))
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\].*\[2, 3, 4\].*\[2, 5, 6\]"):
        F.scaled_dot_product_attention(q, t(rng.standard_normal((2, 5, 6))), v)
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\].*\[4, 5\]"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=bm.ones(4, 5, dtype=bm.bool))
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\]"):
        F.scaled_dot_product_attention(q, k, t(rng.standard_normal((2, 4, 3))))
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\]"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=bm.ones(3, 5, dtype=bm.bool), is_causal=True)
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\]"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=1.5)
    with pytest.raises(TypeError, match=r"\[scaled_dot_product_attention\]"):
        F.scaled_dot_product_attention(q, k.to(bm.float32), v)
