"""max_pool2d (values and flat h*W+w indices), avg_pool2d, adaptive_avg_pool2d and
adaptive_max_pool2d against NumPy float64 references written from PyTorch's documented
rules (ceil_mode, count_include_pad, divisor_override, dilation, adaptive windows);
gradients against the references' adjoints and gradcheck; dtypes; bad inputs."""
import math

import numpy as np
import pytest

import bigmodel as bm
from conftest import assert_close

gradcheck = bm.autograd.gradcheck


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_len(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output length; in ceil mode the last window must start inside the
    input or its left padding."""
    span = (size + 2 * p - d * (k - 1) - 1) / s
    n = (math.ceil(span) if ceil_mode else math.floor(span)) + 1
    if ceil_mode and (n - 1) * s >= size + p:
        n -= 1
    return n


def ref_max_pool(x, k, s=None, p=0, d=1, ceil_mode=False):
    k, s, p, d = pair(k), pair(s or k), pair(p), pair(d)
    n, c, h, w = x.shape
    oh, ow = out_len(h, k[0], s[0], p[0], d[0], ceil_mode), out_len(w, k[1], s[1], p[1], d[1], ceil_mode)
    out = np.full((n, c, oh, ow), -np.inf)
    idx = np.full((n, c, oh, ow), -1, dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            for a in range(k[0]):  # row-major window order: the first maximum wins
                for b in range(k[1]):
                    hh, ww = i * s[0] - p[0] + a * d[0], j * s[1] - p[1] + b * d[1]
                    if 0 <= hh < h and 0 <= ww < w:
                        v = x[:, :, hh, ww]
                        better = v > out[:, :, i, j]
                        out[:, :, i, j] = np.where(better, v, out[:, :, i, j])
                        idx[:, :, i, j] = np.where(better, hh * w + ww, idx[:, :, i, j])
    return out, idx


def ref_avg_pool(x, k, s=None, p=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    k, s, p = pair(k), pair(s or k), pair(p)
    n, c, h, w = x.shape
    oh, ow = out_len(h, k[0], s[0], p[0], 1, ceil_mode), out_len(w, k[1], s[1], p[1], 1, ceil_mode)
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
            # The window counts padding cells (up to the right padding) but not the overhang
            # past it that ceil_mode creates.
            h1, w1 = min(h0 + k[0], h + p[0]), min(w0 + k[1], w + p[1])
            padded = (h1 - h0) * (w1 - w0)
            h0c, w0c, h1c, w1c = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            total = x[:, :, h0c:h1c, w0c:w1c].sum(axis=(2, 3))
            div = divisor_override or (padded if count_include_pad else (h1c - h0c) * (w1c - w0c))
            out[:, :, i, j] = total / div
    return out


def adaptive_windows(size, out):
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def ref_adaptive(x, osize, kind):
    n, c, h, w = x.shape
    oh, ow = osize
    out = np.zeros((n, c, oh, ow))
    idx = np.zeros((n, c, oh, ow), dtype=np.int64)
    for i, (h0, h1) in enumerate(adaptive_windows(h, oh)):
        for j, (w0, w1) in enumerate(adaptive_windows(w, ow)):
            win = x[:, :, h0:h1, w0:w1]
            if kind == "avg":
                out[:, :, i, j] = win.mean(axis=(2, 3))
            else:
                flat = win.reshape(n, c, -1)
                arg = flat.argmax(axis=2)  # NumPy's argmax is the first maximum too
                out[:, :, i, j] = flat.max(axis=2)
                idx[:, :, i, j] = (h0 + arg // (w1 - w0)) * w + w0 + arg % (w1 - w0)
    return out, idx


def scatter_grad(shape, idx, gy):
    """d input of a max pool: each output's gradient added at its argmax."""
    n, c, h, w = shape
    g = np.zeros((n * c, h * w))
    np.add.at(g, (np.arange(n * c)[:, None], idx.reshape(n * c, -1)), gy.reshape(n * c, -1))
    return g.reshape(shape)


MAX_CASES = [  # kernel, stride, padding, dilation, ceil_mode
    (2, None, 0, 1, False),
    (3, 2, 1, 1, False),
    (3, 2, 1, 1, True),
    ((3, 2), (2, 1), (1, 0), (2, 1), False),
    ((2, 3), 2, (1, 1), 2, True),
    (3, 1, 1, 1, False),  # overlapping windows: gradients add up
    (3, 3, 1, 1, True),   # ceil mode drops a last window that would start in the right padding
]


@pytest.mark.parametrize("case", MAX_CASES)
@pytest.mark.parametrize("dtype", [bm.float64, bm.float32])
def test_max_pool2d_matches_reference(rng, case, dtype):
    k, s, p, d, ceil_mode = case
    x = rng.standard_normal((2, 3, 9, 8))
    ref, ridx = ref_max_pool(x, k, s, p, d, ceil_mode)
    bx = bm.tensor(x, dtype=dtype, requires_grad=True)
    out, idx = bm.max_pool2d(bx, k, s, p, d, ceil_mode, return_indices=True)
    assert_close(out, ref, atol=1e-6, rtol=1e-6)
    assert idx.dtype == bm.int64
    np.testing.assert_array_equal(idx.numpy(), ridx)
    assert_close(bm.max_pool2d(bx, k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode), ref, atol=1e-6,
                 rtol=1e-6)
    gy = rng.standard_normal(ref.shape)
    out.backward(bm.tensor(gy, dtype=dtype))
    assert_close(bx.grad, scatter_grad(x.shape, ridx, gy), atol=1e-5, rtol=1e-6)


def test_max_pool2d_ties_take_first_and_nan_propagates():
    x = np.ones((1, 1, 4, 4))
    out, idx = bm.max_pool2d(bm.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), [[[[0, 2], [8, 10]]]])
    x[0, 0, 1, 1] = np.nan
    out = bm.max_pool2d(bm.tensor(x), 2).numpy()
    assert np.isnan(out[0, 0, 0, 0]) and not np.isnan(out[0, 0, 1, 1])


def test_max_pool2d_unbatched_and_noncontiguous(rng):
    x = rng.standard_normal((3, 7, 6))
    ref, ridx = ref_max_pool(x[None], 3, 2, 1)
    out, idx = bm.max_pool2d(bm.tensor(x), 3, 2, 1, return_indices=True)
    assert out.shape == ref.shape[1:]
    assert_close(out, ref[0])
    np.testing.assert_array_equal(idx.numpy(), ridx[0])
    xt = bm.tensor(np.ascontiguousarray(x.transpose(2, 1, 0))).permute(2, 1, 0)
    assert not xt.is_contiguous()
    assert_close(bm.max_pool2d(xt, 3, 2, 1), ref[0])


AVG_CASES = [  # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    (2, None, 0, False, True, None),
    (3, 2, 1, False, True, None),
    (3, 2, 1, True, True, None),
    (3, 2, 1, True, False, None),
    ((3, 2), (2, 1), (1, 1), False, False, None),
    ((2, 3), 2, (1, 1), True, True, 4),
    (3, 3, 1, True, False, None),
]


@pytest.mark.parametrize("case", AVG_CASES)
@pytest.mark.parametrize("dtype", [bm.float64, bm.float32])
def test_avg_pool2d_matches_reference(rng, case, dtype):
    k, s, p, ceil_mode, cip, div = case
    x = rng.standard_normal((2, 3, 9, 8))
    ref = ref_avg_pool(x, k, s, p, ceil_mode, cip, div)
    bx = bm.tensor(x, dtype=dtype, requires_grad=True)
    out = bm.avg_pool2d(bx, k, s, p, ceil_mode, cip, div)
    assert_close(out, ref, atol=1e-6, rtol=1e-6)
    # The adjoint of the (linear) reference, built column by column from unit outputs is
    # slow; instead check <grad_input, u> == <gy, avg_pool(u)> for a random u.
    gy = rng.standard_normal(ref.shape)
    out.backward(bm.tensor(gy, dtype=dtype))
    u = rng.standard_normal(x.shape)
    lhs = (bx.grad.double().numpy() * u).sum()
    rhs = (gy * ref_avg_pool(u, k, s, p, ceil_mode, cip, div)).sum()
    assert abs(lhs - rhs) <= 1e-5 * (1 + abs(rhs))


def test_avg_pool2d_unbatched_noncontiguous(rng):
    x = rng.standard_normal((3, 7, 6))
    xt = bm.tensor(np.ascontiguousarray(x.transpose(2, 1, 0))).permute(2, 1, 0)
    assert_close(bm.avg_pool2d(xt, 3, 2, 1, count_include_pad=False),
                 ref_avg_pool(x[None], 3, 2, 1, count_include_pad=False)[0])


@pytest.mark.parametrize("osize", [(4, 3), (5, 7), (1, 1), (9, 8), (2, 5)])
def test_adaptive_pools_match_reference(rng, osize):
    x = rng.standard_normal((2, 3, 9, 8))
    ref_avg, _ = ref_adaptive(x, osize, "avg")
    ref_max, ridx = ref_adaptive(x, osize, "max")
    bx = bm.tensor(x, requires_grad=True)
    out = bm.adaptive_avg_pool2d(bx, osize)
    assert_close(out, ref_avg)
    gy = rng.standard_normal(ref_avg.shape)
    out.backward(bm.tensor(gy))
    u = rng.standard_normal(x.shape)
    assert abs((bx.grad.numpy() * u).sum() - (gy * ref_adaptive(u, osize, "avg")[0]).sum()) < 1e-9
    bx.grad = None
    mout, midx = bm.adaptive_max_pool2d(bx, osize, return_indices=True)
    assert_close(mout, ref_max)
    np.testing.assert_array_equal(midx.numpy(), ridx)
    mout.backward(bm.tensor(gy))
    assert_close(bx.grad, scatter_grad(x.shape, ridx, gy))


def test_adaptive_output_size_forms(rng):
    x = rng.standard_normal((3, 7, 6))
    assert_close(bm.adaptive_avg_pool2d(bm.tensor(x), 3), ref_adaptive(x[None], (3, 3), "avg")[0][0])
    assert_close(bm.adaptive_avg_pool2d(bm.tensor(x), (None, 2)), ref_adaptive(x[None], (7, 2), "avg")[0][0])
    assert bm.adaptive_max_pool2d(bm.tensor(x), (2, None)).shape == (3, 2, 6)
    x32 = bm.tensor(x, dtype=bm.float32)
    assert_close(bm.adaptive_avg_pool2d(x32, (2, 4)), ref_adaptive(x[None], (2, 4), "avg")[0][0])


@pytest.mark.parametrize("dtype", [bm.float16, bm.bfloat16])
def test_pools_half_types(rng, dtype):
    x = bm.tensor(rng.standard_normal((2, 3, 8, 8)), dtype=dtype, requires_grad=True)
    xr = x.detach().float().numpy().astype(np.float64)
    tol = 1e-2 if dtype == bm.float16 else 4e-2
    out, idx = bm.max_pool2d(x, 2, return_indices=True)
    ref, ridx = ref_max_pool(xr, 2)
    assert out.dtype == dtype
    assert_close(out, ref, atol=0, rtol=0)  # a max is exact
    np.testing.assert_array_equal(idx.numpy(), ridx)
    assert_close(bm.avg_pool2d(x, 3, 2, 1), ref_avg_pool(xr, 3, 2, 1), atol=tol, rtol=tol)
    assert_close(bm.adaptive_avg_pool2d(x, 3), ref_adaptive(xr, (3, 3), "avg")[0], atol=tol, rtol=tol)
    bm.avg_pool2d(x, 2).sum().backward()
    assert x.grad.dtype == dtype
    assert_close(x.grad, np.full(xr.shape, 0.25), atol=0, rtol=0)


GRAD_POOLS = [
    lambda x: bm.max_pool2d(x, 2),
    lambda x: bm.max_pool2d(x, 3, 2, 1, ceil_mode=True),
    lambda x: bm.max_pool2d(x, (2, 3), 1, (1, 1), dilation=(2, 1)),
    lambda x: bm.avg_pool2d(x, 3, 2, 1, ceil_mode=True),
    lambda x: bm.avg_pool2d(x, (2, 3), 1, (1, 1), count_include_pad=False),
    lambda x: bm.avg_pool2d(x, 2, divisor_override=3),
    lambda x: bm.adaptive_avg_pool2d(x, (3, 2)),
    lambda x: bm.adaptive_max_pool2d(x, (3, 2)),
]


@pytest.mark.parametrize("k", range(len(GRAD_POOLS)))
def test_pool_gradcheck(rng, k):
    # A permutation keeps values distinct, so a max's argmax is unambiguous under eps steps.
    x = bm.tensor(rng.permutation(2 * 5 * 6).reshape(1, 2, 5, 6) / 7.0, requires_grad=True)
    assert gradcheck(GRAD_POOLS[k], [x])


# ------------------------------------------------------------------ bad inputs

def test_pool_bad_inputs(rng):
    x = bm.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"\[max_pool2d\] padding should be at most half of the kernel size, "
                                         r"got padding \(2, 2\) with kernel_size \(3, 3\)"):
        bm.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"\[avg_pool2d\] padding should be at most half"):
        bm.avg_pool2d(x, 2, padding=(0, 2))
    with pytest.raises(ValueError, match=r"\[max_pool2d\] stride must be positive"):
        bm.max_pool2d(x, 2, stride=0)
    with pytest.raises(ValueError, match=r"\[avg_pool2d\] kernel_size must be positive"):
        bm.avg_pool2d(x, 0)
    with pytest.raises(ValueError, match=r"\[max_pool2d\] dilation must be positive"):
        bm.max_pool2d(x, 2, dilation=0)
    with pytest.raises(ValueError, match=r"\[max_pool2d\] negative padding"):
        bm.max_pool2d(x, 2, padding=-1)
    with pytest.raises(ValueError, match=r"\[max_pool2d\] expected a 3-D \(unbatched\) or 4-D \(batched\) input, "
                                         r"got input \[8, 8\]"):
        bm.max_pool2d(bm.randn(8, 8), 2)
    with pytest.raises(ValueError, match=r"\[adaptive_avg_pool2d\] expected a 3-D"):
        bm.adaptive_avg_pool2d(bm.randn(1, 1, 2, 8, 8), 2)
    with pytest.raises(ValueError, match=r"\[max_pool2d\] output size \(0, 0\) is too small for input \[2, 3, 2, 2\]"):
        bm.max_pool2d(bm.randn(2, 3, 2, 2), 3)
    with pytest.raises(ValueError, match=r"\[avg_pool2d\] divisor_override must be non-zero"):
        bm.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match=r"\[adaptive_max_pool2d\] output_size must have 2 elements"):
        bm.adaptive_max_pool2d(x, (1, 2, 3))
    with pytest.raises(ValueError, match=r"\[adaptive_avg_pool2d\] output_size must be non-negative"):
        bm.adaptive_avg_pool2d(x, -1)
    with pytest.raises(ValueError, match=r"\[max_pool2d\] expected non-empty channel and spatial dims"):
        bm.max_pool2d(bm.randn(2, 0, 4, 4), 2)
    with pytest.raises(TypeError, match=r"\[max_pool2d\] expected a floating point input, got int64"):
        bm.max_pool2d(bm.ones(1, 1, 4, 4, dtype=bm.int64), 2)
    with pytest.raises(TypeError, match=r"\[avg_pool2d\] expected a floating point input"):
        bm.avg_pool2d(bm.ones(1, 1, 4, 4, dtype=bm.int32), 2)


def test_pool_empty_batch():
    x = bm.zeros(0, 2, 4, 4, requires_grad=True)
    out = bm.max_pool2d(x, 2)
    assert out.shape == (0, 2, 2, 2)
    out.sum().backward()
    assert x.grad.shape == (0, 2, 4, 4)
    assert bm.avg_pool2d(x, 2).shape == (0, 2, 2, 2)
    assert bm.adaptive_avg_pool2d(x, 3).shape == (0, 2, 3, 3)
