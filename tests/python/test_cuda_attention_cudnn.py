"""cuda tier: the cuDNN attention baseline (bm.backends.attention = "cudnn": cuDNN's fused SDPA
through the cuDNN frontend, kernels/cuda/attention_cudnn.cpp) against our flash kernels and the
CPU composed path on the same rounded inputs: forward and gradients, float16/bfloat16, causal,
bool/additive/key-padding masks, odd lengths, non-contiguous and broadcast inputs, the graph
cache, and the clear errors for what it does not take (or a build without the frontend). The
GPU tests skip without a GPU; the CPU-tensor test runs everywhere."""
import contextlib

import numpy as np
import pytest

import bigmodel as bm
from _cuda import host

F = bm.nn.functional
HAVE_GPU = bm.cuda.is_available()
gpu_only = pytest.mark.skipif(not HAVE_GPU, reason="no CUDA GPU visible (bm.cuda.is_available() is False)")
DTYPES = [bm.bfloat16, bm.float16]
# Forward tolerances (atol, rtol) against the float32 CPU path (as test_cuda_attention.py);
# gradients get GRAD_FACTOR times these (P and dS are rounded to the input dtype for the MMAs).
TOL = {bm.float16: (2e-3, 5e-3), bm.bfloat16: (1.6e-2, 2e-2)}
GRAD_FACTOR = 4.0


@contextlib.contextmanager
def attention_backend(name):
    before = bm.backends.attention
    bm.backends.attention = name
    try:
        yield
    finally:
        bm.backends.attention = before


def rand(rng, shape, dtype, scale=1.0):
    """A CPU tensor of `dtype` (so every path sees the same rounded values)."""
    return bm.tensor(rng.standard_normal(shape) * scale).to(dtype)


def f32(x):
    return None if x is None else (x if x.dtype == bm.bool else x.float())


def gpu(t):
    return None if t is None else t.cuda()


def close(actual, expected, dtype, factor=1.0):
    atol, rtol = TOL[dtype]
    assert tuple(actual.shape) == tuple(expected.shape)
    np.testing.assert_allclose(host(actual), host(expected), atol=atol * factor, rtol=rtol * factor)


def run(backend, q, k, v, mask=None, causal=False, scale=None, grad_out=None):
    """Output (and dq, dk, dv when grad_out is given) on the GPU with `backend`."""
    with attention_backend(backend):
        if grad_out is None:
            return F.scaled_dot_product_attention(gpu(q), gpu(k), gpu(v), attn_mask=gpu(mask), is_causal=causal,
                                                  scale=scale), None
        gq, gk, gv = (t.cuda().requires_grad_(True) for t in (q, k, v))
        out = F.scaled_dot_product_attention(gq, gk, gv, attn_mask=gpu(mask), is_causal=causal, scale=scale)
        out.backward(grad_out.cuda())
        return out, (gq.grad, gk.grad, gv.grad)


def reference(q, k, v, mask=None, causal=False, scale=None, grad_out=None):
    """The CPU composed path in float32 from the same inputs (and its gradients)."""
    cq, ck, cv = (t.float().requires_grad_(grad_out is not None) for t in (q, k, v))
    out = F.scaled_dot_product_attention(cq, ck, cv, attn_mask=f32(mask), is_causal=causal, scale=scale)
    if grad_out is None:
        return out, None
    out.backward(grad_out.float())
    return out, (cq.grad, ck.grad, cv.grad)


_missing = []


def frontend_missing():
    """The error a build without the cuDNN frontend raises, or None when it is there."""
    if not _missing:
        q = bm.randn(1, 1, 8, 16).to(bm.bfloat16).cuda()
        try:
            with attention_backend("cudnn"):
                F.scaled_dot_product_attention(q, q, q)
            _missing.append(None)
        except NotImplementedError as e:
            if "cudnn_frontend.h" not in str(e):
                raise
            _missing.append(str(e))
    return _missing[0]


@pytest.fixture
def cudnn():
    if not HAVE_GPU:
        pytest.skip("no CUDA GPU visible (bm.cuda.is_available() is False)")
    why = frontend_missing()
    if why:
        pytest.skip(f"built without the cuDNN frontend: {why}")


def check_all(rng, dtype, q, k, v, mask=None, causal=False, scale=None, grads=False):
    """cuDNN against the CPU reference and against ours (both within the dtype's tolerance)."""
    go = rand(rng, tuple(q.shape[:-1]) + (v.shape[-1],), dtype) if grads else None
    out, g = run("cudnn", q, k, v, mask, causal, scale, go)
    assert out.is_cuda and out.dtype == dtype
    ref_out, ref_g = reference(q, k, v, mask, causal, scale, go)
    ours_out, ours_g = run("ours", q, k, v, mask, causal, scale, go)
    close(out, ref_out, dtype)
    close(out, ours_out, dtype, factor=2.0)
    if grads:
        for name, a, e, o in zip(("dq", "dk", "dv"), g, ref_g, ours_g):
            assert a is not None and a.is_cuda and a.dtype == dtype, name
            close(a, e, dtype, factor=GRAD_FACTOR)
            close(a, o, dtype, factor=2 * GRAD_FACTOR)


# Head dims 32..128 (multiples of 8) and odd, unequal lengths; both dtypes at d=64.
FORWARD_CASES = [(dt, 64, nq, nk) for dt in DTYPES for nq, nk in [(1, 1), (7, 7), (33, 7), (7, 33), (257, 130)]]
FORWARD_CASES += [(bm.bfloat16, d, nq, nk) for d in (32, 80, 128) for nq, nk in [(17, 17), (1000, 200)]]


@pytest.mark.parametrize("dtype,D,Nq,Nk", FORWARD_CASES)
@pytest.mark.parametrize("causal", [False, True])
def test_forward(cudnn, rng, dtype, D, Nq, Nk, causal):
    shape_q, shape_k = (2, 3, Nq, D), (2, 3, Nk, D)
    check_all(rng, dtype, rand(rng, shape_q, dtype), rand(rng, shape_k, dtype), rand(rng, shape_k, dtype),
              causal=causal)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [64, 128])
@pytest.mark.parametrize("Nq,Nk", [(33, 33), (17, 70), (130, 65)])
@pytest.mark.parametrize("causal", [False, True])
def test_gradients(cudnn, rng, dtype, D, Nq, Nk, causal):
    B, H = 2, 2
    q, k, v = rand(rng, (B, H, Nq, D), dtype), rand(rng, (B, H, Nk, D), dtype), rand(rng, (B, H, Nk, D), dtype)
    check_all(rng, dtype, q, k, v, causal=causal, grads=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["key_padding", "full_bool", "broadcast_bool", "additive", "additive_heads"])
def test_masks_forward_and_gradients(cudnn, rng, dtype, kind):
    B, H, Nq, Nk, D = 2, 3, 33, 70, 64
    q, k, v = rand(rng, (B, H, Nq, D), dtype), rand(rng, (B, H, Nk, D), dtype), rand(rng, (B, H, Nk, D), dtype)
    if kind == "key_padding":  # per-batch valid lengths, as a padded batch has
        lengths = np.array([50, 9])
        mask = bm.tensor((np.arange(Nk)[None, :] < lengths[:, None]).reshape(B, 1, 1, Nk))
    elif kind == "full_bool":
        m = rng.random((B, H, Nq, Nk)) < 0.7
        m[..., 0] = True  # every row sees a key (cuDNN's result for an empty row is not ours: NaN)
        mask = bm.tensor(m)
    elif kind == "broadcast_bool":
        m = rng.random((Nq, Nk)) < 0.5
        m[:, 3] = True
        mask = bm.tensor(m)
    elif kind == "additive":
        mask = rand(rng, (Nq, Nk), dtype, 2.0)
    else:
        mask = rand(rng, (H, 1, Nk), dtype, 2.0)  # broadcast over rows
    check_all(rng, dtype, q, k, v, mask=mask, grads=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_noncontiguous_broadcast_3d_and_scale(cudnn, rng, dtype):
    B, N, H, D = 2, 77, 3, 64
    # [B, N, H, D] storage viewed as [B, H, N, D] (after a projection): read in place.
    q, k, v = (rand(rng, (B, N, H, D), dtype).transpose(1, 2) for _ in range(3))
    for scale in (None, 0.3):
        check_all(rng, dtype, q, k, v, causal=scale is None, scale=scale, grads=True)
    # A head dim that is not innermost: copied for cuDNN.
    qs = rand(rng, (B, H, D, N), dtype).transpose(-1, -2)
    check_all(rng, dtype, qs, k, v, grads=True)
    # k/v shared across heads (stride-0 broadcast): gradients sum back over heads.
    k1, v1 = rand(rng, (B, 1, 25, D), dtype), rand(rng, (B, 1, 25, D), dtype)
    check_all(rng, dtype, rand(rng, (B, H, 20, D), dtype), k1, v1, grads=True)
    # 3-D and 2-D inputs.
    check_all(rng, dtype, rand(rng, (5, 11, 32), dtype), rand(rng, (5, 13, 32), dtype), rand(rng, (5, 13, 32), dtype),
              causal=True, grads=True)
    check_all(rng, dtype, rand(rng, (9, 32), dtype), rand(rng, (12, 32), dtype), rand(rng, (12, 32), dtype))


def test_misaligned_views(cudnn, rng):
    # Views 2 bytes off a 16-byte boundary (cuDNN needs aligned rows): copied, same result.
    dt, shape, n = bm.bfloat16, (1, 2, 33, 64), 2 * 33 * 64
    pool = rand(rng, (3 * n + 1,), dt)
    q, k, v = (pool.narrow(0, 1 + i * n, n).view(*shape) for i in range(3))
    gpool = pool.cuda()
    gq, gk, gv = (gpool.narrow(0, 1 + i * n, n).view(*shape) for i in range(3))
    with attention_backend("cudnn"):
        out = F.scaled_dot_product_attention(gq, gk, gv, is_causal=True)
    close(out, reference(q, k, v, causal=True)[0], dt)


def test_cached_graph_sees_new_data(cudnn, rng):
    # The second call reuses the cached graph; its result must follow the new inputs.
    dt = bm.bfloat16
    for _ in range(2):
        q, k, v = (rand(rng, (2, 2, 40, 64), dt) for _ in range(3))
        check_all(rng, dt, q, k, v, causal=True, grads=True)


def test_unsupported_cases_raise(cudnn, rng):
    q = rand(rng, (1, 2, 8, 64), bm.bfloat16).cuda()
    with attention_backend("cudnn"):
        q32 = q.float()
        with pytest.raises(NotImplementedError, match=r"scaled_dot_product_attention.*float32.*'ours'"):
            F.scaled_dot_product_attention(q32, q32, q32)
        with pytest.raises(NotImplementedError, match=r"scaled_dot_product_attention.*dropout_p"):
            F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
        q36 = rand(rng, (1, 2, 8, 36), bm.bfloat16).cuda()
        with pytest.raises(NotImplementedError, match=r"scaled_dot_product_attention.*head dim 36"):
            F.scaled_dot_product_attention(q36, q36, q36)
        q160 = rand(rng, (1, 2, 8, 160), bm.bfloat16).cuda()
        with pytest.raises(NotImplementedError, match=r"head dim 160"):
            F.scaled_dot_product_attention(q160, q160, q160)
        v32 = rand(rng, (1, 2, 8, 32), bm.bfloat16).cuda()
        with pytest.raises(NotImplementedError, match=r"value head dim"):
            F.scaled_dot_product_attention(q, q, v32)
        m = rand(rng, (8, 8), bm.bfloat16).cuda().requires_grad_(True)
        with pytest.raises(NotImplementedError, match=r"attn_mask that requires grad"):
            F.scaled_dot_product_attention(q, q, q, attn_mask=m)
        q1 = rand(rng, (1, 2, 1, 64), bm.bfloat16).cuda().requires_grad_(True)
        with pytest.raises(NotImplementedError, match=r"one query and one key"):
            F.scaled_dot_product_attention(q1, q1, q1)
        with pytest.raises(ValueError, match=r"scaled_dot_product_attention.*attn_mask"):
            F.scaled_dot_product_attention(q, q, q, attn_mask=bm.ones(3, 5, dtype=bm.bool).cuda())
        with pytest.raises(ValueError, match=r"scaled_dot_product_attention.*head dims"):
            F.scaled_dot_product_attention(q, v32, v32)


@gpu_only
def test_missing_frontend_error_is_clear():
    why = frontend_missing()
    if why is None:
        pytest.skip("this build has the cuDNN frontend (the error path is not reachable)")
    for part in ("cudnn_frontend.h", "scripts/fetch_cudnn_frontend.sh", "BIGMODEL_CUDNN_FRONTEND_DIR", "'ours'"):
        assert part in why, (part, why)
    assert why.startswith("[scaled_dot_product_attention]")


def test_cpu_tensors_ignore_the_cudnn_choice(rng):
    # The backend choice only matters for CUDA tensors: on the CPU "cudnn" runs the composed path.
    q, k, v = rand(rng, (2, 3, 9, 8), bm.float64), rand(rng, (2, 3, 5, 8), bm.float64), rand(rng, (2, 3, 5, 8), bm.float64)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy()
    with attention_backend("cudnn"):
        got = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)
    # And against NumPy, so the test fails if both paths broke alike.
    s = np.einsum("bhld,bhsd->bhls", q.numpy(), k.numpy()) / np.sqrt(8)
    s = np.where(np.tril(np.ones((9, 5), bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(got.numpy(), np.einsum("bhls,bhsd->bhld", p, v.numpy()), rtol=1e-10, atol=1e-12)
