"""cuda tier: F.scaled_dot_product_attention on the GPU (the fused flash kernels of
kernels/cuda/flash_attention*) against the CPU composed path on the same rounded inputs:
head dims 32/64/80/128, Nq != Nk, odd lengths, causal, bool/additive/key-padding masks (with a
fully masked row), float32 and float16/bfloat16, gradients, non-contiguous inputs, explicit
scale, bad inputs. Skips without a GPU."""
import numpy as np
import pytest

import bigmodel as bm
from _cuda import host, requires_cuda

pytestmark = requires_cuda

F = bm.nn.functional
DTYPES = [bm.float32, bm.bfloat16, bm.float16]
# Forward tolerances (atol, rtol) against the float32 CPU path; gradients get three times these.
TOL = {bm.float32: (2e-5, 2e-4), bm.float16: (2e-3, 5e-3), bm.bfloat16: (1.6e-2, 2e-2)}


def rand(rng, shape, dtype, scale=1.0):
    """A CPU tensor of `dtype` (so both paths see the same rounded values)."""
    return bm.tensor(rng.standard_normal(shape) * scale).to(dtype)


def ref(q, k, v, mask=None, causal=False, scale=None):
    """The CPU composed path in float32 from the same inputs."""
    f = lambda x: None if x is None else (x if x.dtype == bm.bool else x.float())
    return F.scaled_dot_product_attention(f(q), f(k), f(v), attn_mask=f(mask), is_causal=causal, scale=scale)


def close(actual, expected, dtype, factor=1.0):
    atol, rtol = TOL[dtype]
    assert actual.shape == expected.shape
    np.testing.assert_allclose(host(actual), host(expected), atol=atol * factor, rtol=rtol * factor)


def gpu(t):
    return None if t is None else t.cuda()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [32, 64, 80, 128])
@pytest.mark.parametrize("Nq,Nk", [(1, 1), (7, 7), (33, 7), (7, 33), (128, 128), (1000, 200)])
@pytest.mark.parametrize("causal", [False, True])
def test_forward_matches_cpu(rng, dtype, D, Nq, Nk, causal):
    q, k, v = rand(rng, (2, 3, Nq, D), dtype), rand(rng, (2, 3, Nk, D), dtype), rand(rng, (2, 3, Nk, D), dtype)
    out = F.scaled_dot_product_attention(gpu(q), gpu(k), gpu(v), is_causal=causal)
    assert out.is_cuda and out.dtype == dtype and tuple(out.shape) == (2, 3, Nq, D)
    close(out, ref(q, k, v, causal=causal), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [32, 64, 128])
def test_masks(rng, dtype, D):
    B, H, Nq, Nk = 2, 3, 33, 70
    q, k, v = rand(rng, (B, H, Nq, D), dtype), rand(rng, (B, H, Nk, D), dtype), rand(rng, (B, H, Nk, D), dtype)
    masks = [
        bm.tensor(rng.random((B, 1, 1, Nk)) < 0.7),        # key padding
        bm.tensor(rng.random((B, H, Nq, Nk)) < 0.8),       # full bool
        bm.tensor(rng.random((Nq, Nk)) < 0.5),             # broadcast bool
        rand(rng, (Nq, Nk), dtype, 2.0),                   # additive
        rand(rng, (H, 1, Nk), dtype, 2.0),                 # additive, broadcast over rows
    ]
    for mask in masks:
        out = F.scaled_dot_product_attention(gpu(q), gpu(k), gpu(v), attn_mask=gpu(mask))
        close(out, ref(q, k, v, mask=mask), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fully_masked_row_matches_cpu(rng, dtype):
    q, k, v = rand(rng, (1, 2, 9, 64), dtype), rand(rng, (1, 2, 70, 64), dtype), rand(rng, (1, 2, 70, 64), dtype)
    m = rng.random((1, 1, 9, 70)) < 0.9
    m[..., 4, :] = False
    mask = bm.tensor(m)
    out, expected = F.scaled_dot_product_attention(gpu(q), gpu(k), gpu(v), attn_mask=gpu(mask)), ref(q, k, v, mask)
    o, e = host(out), host(expected)
    assert np.array_equal(np.isnan(o), np.isnan(e)) and np.isnan(e[0, :, 4]).all()
    np.testing.assert_allclose(np.nan_to_num(o, nan=0.0), np.nan_to_num(e, nan=0.0), atol=TOL[dtype][0],
                               rtol=TOL[dtype][1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [32, 64, 128])
@pytest.mark.parametrize("variant", ["plain", "causal", "padding", "additive"])
@pytest.mark.parametrize("Nq,Nk", [(7, 33), (130, 65)])
def test_gradients_match_cpu(rng, dtype, D, variant, Nq, Nk):
    B, H = 2, 2
    q, k, v = rand(rng, (B, H, Nq, D), dtype), rand(rng, (B, H, Nk, D), dtype), rand(rng, (B, H, Nk, D), dtype)
    go = rand(rng, (B, H, Nq, D), dtype)
    mask = None
    if variant == "padding":
        m = rng.random((B, 1, 1, Nk)) < 0.7
        m[..., 0] = True
        mask = bm.tensor(m)
    elif variant == "additive":
        mask = rand(rng, (Nq, Nk), dtype)
    causal = variant == "causal"

    gq, gk, gv = (t.cuda().requires_grad_(True) for t in (q, k, v))
    F.scaled_dot_product_attention(gq, gk, gv, attn_mask=gpu(mask), is_causal=causal).backward(go.cuda())
    cq, ck, cv = (t.float().requires_grad_(True) for t in (q, k, v))
    cm = None if mask is None else (mask if mask.dtype == bm.bool else mask.float())
    F.scaled_dot_product_attention(cq, ck, cv, attn_mask=cm, is_causal=causal).backward(go.float())
    for name, a, e in (("dq", gq, cq), ("dk", gk, ck), ("dv", gv, cv)):
        assert a.grad is not None and a.grad.is_cuda, name
        close(a.grad, e.grad, dtype, factor=1.0 if dtype == bm.float32 else 3.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_noncontiguous_inputs_and_scale(rng, dtype):
    B, N, H, D = 2, 77, 3, 64
    q, k, v = (rand(rng, (B, N, H, D), dtype) for _ in range(3))
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, N, D] views, as after a projection
    for scale in (None, 0.3):
        for causal in (False, True):
            out = F.scaled_dot_product_attention(*(t.cuda().transpose(1, 2) for t in (q, k, v)), is_causal=causal,
                                                 scale=scale)
            close(out, ref(qt, kt, vt, causal=causal, scale=scale), dtype)
    # A head dim that is not the innermost (stride != 1), with gradients.
    qs = rand(rng, (B, H, D, N), dtype)
    gq = qs.cuda().requires_grad_(True)
    out = F.scaled_dot_product_attention(gq.transpose(-1, -2), kt.cuda(), vt.cuda())
    close(out, ref(qs.transpose(-1, -2), kt, vt), dtype)
    out.sum().backward()
    cq = qs.float().requires_grad_(True)
    ref(cq.transpose(-1, -2), kt, vt).sum().backward()
    close(gq.grad, cq.grad, dtype, factor=1.0 if dtype == bm.float32 else 3.0)


def test_broadcast_batch_dims_and_3d(rng):
    # k/v shared across heads (batch dim 1) and 3-D inputs: the expand's gradient sums heads.
    q = rand(rng, (2, 4, 20, 32), bm.float32)
    k, v = rand(rng, (2, 1, 25, 32), bm.float32), rand(rng, (2, 1, 25, 32), bm.float32)
    gk = k.cuda().requires_grad_(True)
    out = F.scaled_dot_product_attention(q.cuda(), gk, v.cuda())
    close(out, ref(q, k, v), bm.float32)
    out.sum().backward()
    ck = k.float().requires_grad_(True)
    ref(q, ck, v).sum().backward()
    close(gk.grad, ck.grad, bm.float32)
    q3, k3, v3 = rand(rng, (5, 11, 64), bm.bfloat16), rand(rng, (5, 13, 64), bm.bfloat16), rand(rng, (5, 13, 64), bm.bfloat16)
    close(F.scaled_dot_product_attention(q3.cuda(), k3.cuda(), v3.cuda()), ref(q3, k3, v3), bm.bfloat16)


def test_other_cases_fall_back_to_composed(rng):
    # Different value head dim, float64, head dim > 128 and dropout run the composed path.
    q, k = rand(rng, (1, 2, 9, 32), bm.float32), rand(rng, (1, 2, 12, 32), bm.float32)
    v = rand(rng, (1, 2, 12, 48), bm.float32)
    close(F.scaled_dot_product_attention(q.cuda(), k.cuda(), v.cuda()), ref(q, k, v), bm.float32)
    q64 = rand(rng, (1, 2, 9, 160), bm.float32)
    close(F.scaled_dot_product_attention(q64.cuda(), q64.cuda(), q64.cuda()), ref(q64, q64, q64), bm.float32)
    d = F.scaled_dot_product_attention(q.cuda(), k.cuda(), k.cuda(), dropout_p=0.5)
    assert d.is_cuda and tuple(d.shape) == (1, 2, 9, 32)


def test_bad_inputs_raise():
    q = bm.randn(1, 2, 8, 32).cuda()
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention.*head dims"):
        F.scaled_dot_product_attention(q, bm.randn(1, 2, 8, 16).cuda(), bm.randn(1, 2, 8, 16).cuda())
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention.*attn_mask"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=bm.ones(3, 5, dtype=bm.bool).cuda())
    with pytest.raises(TypeError, match=r"scaled_dot_product_attention"):
        qi = bm.ones(1, 2, 8, 32, dtype=bm.int32).cuda()
        F.scaled_dot_product_attention(qi, qi, qi)


def test_cudnn_backend_refuses_float32():
    """cuDNN's fused SDPA takes half types only: float32 raises (never falls back to ours)."""
    q = bm.randn(1, 1, 4, 32).cuda()
    before = bm.backends.attention
    bm.backends.attention = "cudnn"
    try:
        with pytest.raises(NotImplementedError, match=r"scaled_dot_product_attention.*cuDNN"):
            F.scaled_dot_product_attention(q, q, q)
    finally:
        bm.backends.attention = before
