"""cuda tier: the indexing family on the GPU (gather, scatter, scatter_add, index_select,
index_add, embedding forward/backward, one_hot, take, advanced indexing reads and writes,
masked_select, nonzero) against the same ops on the CPU; out-of-range indices raise
IndexError on CUDA too. Skips without a GPU."""
import numpy as np
import pytest

import bigmodel as bm
from _cuda import host, requires_cuda

pytestmark = requires_cuda

FLOATS = [bm.float32, bm.float64, bm.float16, bm.bfloat16]
ALL = FLOATS + [bm.int32, bm.int64, bm.bool]
SIZES = [1, 7, 33, 1000, 1023]
# atomicAdd sums in another order than the CPU's loop: a unit or two of the dtype.
TOL = {bm.float32: 1e-5, bm.float64: 1e-12, bm.float16: 2e-3, bm.bfloat16: 1.6e-2}


def make(rng, shape, dtype):
    if dtype == bm.bool:
        return bm.tensor(rng.random(shape) > 0.5)
    if dtype in (bm.int32, bm.int64):
        return bm.tensor(rng.integers(-50, 50, size=shape)).to(dtype)
    return bm.tensor(rng.standard_normal(shape)).to(dtype)


def check(gpu, cpu, exact=False):
    assert gpu.is_cuda
    assert gpu.dtype == cpu.dtype and tuple(gpu.shape) == tuple(cpu.shape), (gpu.shape, cpu.shape)
    tol = 0 if exact else TOL.get(cpu.dtype, 0)
    if tol:
        np.testing.assert_allclose(host(gpu), host(cpu), rtol=tol, atol=tol * 4)
    else:
        np.testing.assert_array_equal(host(gpu), host(cpu))


def idx(rng, high, shape, dtype=bm.int64):
    return bm.tensor(rng.integers(0, high, size=shape)).to(dtype)


# ---- gather / scatter ----

@pytest.mark.parametrize("dtype", ALL, ids=str)
@pytest.mark.parametrize("itype", [bm.int64, bm.int32], ids=str)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_scatter_match_cpu(rng, dtype, itype, dim):
    x = make(rng, (9, 13, 5), dtype)
    d = dim % 3
    ishape = [7, 11, 4]
    ishape[d] = 17  # more indices than the dim: repeats
    ix = idx(rng, x.shape[d], ishape, itype)
    check(bm.gather(x.cuda(), dim, ix.cuda()), bm.gather(x, dim, ix), exact=True)
    # non-contiguous source and index
    xt = x.transpose(0, 2).contiguous().transpose(0, 2)
    check(bm.gather(xt.cuda(), dim, ix.cuda()), bm.gather(xt, dim, ix), exact=True)
    # scatter with unique indices along dim (duplicates would pick an undefined winner)
    src = make(rng, ishape, dtype)
    full = list(ishape)
    full[d] = x.shape[d]
    perm = np.argsort(rng.random(full), axis=d).take(np.arange(x.shape[d] - 1), axis=d)  # a line's values differ
    uix = bm.tensor(perm).to(itype)
    usrc = src[tuple(slice(0, s) for s in uix.shape)].contiguous()
    check(bm.scatter(x.cuda(), dim, uix.cuda(), usrc.cuda()), bm.scatter(x, dim, uix, usrc), exact=True)
    check(x.cuda().scatter(dim, uix.cuda(), 3), x.scatter(dim, uix, 3), exact=True)
    # scatter_add with repeats: atomics on the GPU
    if dtype != bm.bool:
        check(bm.scatter_add(x.cuda(), dim, ix.cuda(), src.cuda()), bm.scatter_add(x, dim, ix, src))


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_scatter_add_many_collisions(rng, n, dtype):
    # n values into 3 slots: every slot takes ~n/3 atomic additions
    x = make(rng, (3,), dtype)
    ix = idx(rng, 3, (n,))
    src = bm.tensor(rng.uniform(-1, 1, size=n)).to(dtype)
    g, c = bm.scatter_add(x.cuda(), 0, ix.cuda(), src.cuda()), bm.scatter_add(x, 0, ix, src)
    tol = TOL[dtype] * (np.sqrt(n) if dtype in (bm.float16, bm.bfloat16) else 1)
    np.testing.assert_allclose(host(g), host(c), rtol=tol, atol=tol * 4)


def test_scatter_add_integers_are_exact(rng):
    for dtype in (bm.int32, bm.int64):
        x = make(rng, (5, 4), dtype)
        ix = idx(rng, 5, (300, 4))
        src = make(rng, (300, 4), dtype)
        check(bm.scatter_add(x.cuda(), 0, ix.cuda(), src.cuda()), bm.scatter_add(x, 0, ix, src), exact=True)


# ---- index_select / index_add / take / embedding / one_hot ----

@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", ALL, ids=str)
def test_index_select_and_take(rng, n, dtype):
    x = make(rng, (n, 6), dtype)
    for dim, high in ((0, n), (1, 6)):
        ix = idx(rng, high, (n + 3,))
        check(bm.index_select(x.cuda(), dim, ix.cuda()), bm.index_select(x, dim, ix), exact=True)
        check(bm.index_select(x.t().cuda(), 1 - dim, ix.cuda()), bm.index_select(x.t(), 1 - dim, ix), exact=True)
    t = bm.tensor(rng.integers(-x.numel(), x.numel(), size=(4, 5)))  # take allows negative indices
    check(bm.take(x.cuda(), t.cuda()), bm.take(x, t), exact=True)


@pytest.mark.parametrize("dtype", FLOATS + [bm.int64], ids=str)
def test_index_add(rng, dtype):
    x = make(rng, (8, 5, 3), dtype)
    for dim in (0, 1, 2):
        ix = idx(rng, x.shape[dim], (11,), bm.int32)
        shape = list(x.shape)
        shape[dim] = 11
        src = make(rng, shape, dtype)
        alpha = 2 if dtype == bm.int64 else 0.5
        check(bm.index_add(x.cuda(), dim, ix.cuda(), src.cuda(), alpha=alpha), bm.index_add(x, dim, ix, src, alpha=alpha))


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("width", [1, 7, 64, 1023])
def test_embedding_forward_backward(rng, dtype, width):
    w = bm.tensor(rng.standard_normal((50, width))).to(dtype)
    ids = idx(rng, 50, (6, 33))  # many repeats: the backward accumulates with atomics
    g = bm.tensor(rng.standard_normal((6, 33, width))).to(dtype)
    check(bm.embedding(ids.cuda(), w.cuda()), bm.embedding(ids, w), exact=True)
    grads = []
    for dev in ("cuda", "cpu"):
        wd = w.to(dev).requires_grad_(True)
        (bm.embedding(ids.to(dev), wd, padding_idx=3) * g.to(dev)).sum().backward()
        grads.append(wd.grad)
    tol = TOL[dtype] * (6 if dtype in (bm.float16, bm.bfloat16) else 1)
    np.testing.assert_allclose(host(grads[0]), host(grads[1]), rtol=tol, atol=tol * 4)
    assert np.all(host(grads[0])[3] == 0)  # the padding row gets no gradient


def test_one_hot(rng):
    for itype in (bm.int64, bm.int32):
        t = idx(rng, 9, (4, 7), itype)
        check(bm.one_hot(t.cuda()), bm.one_hot(t), exact=True)
        check(bm.one_hot(t.cuda(), 12), bm.one_hot(t, 12), exact=True)


# ---- advanced indexing, masks, nonzero ----

@pytest.mark.parametrize("dtype", ALL, ids=str)
def test_advanced_index_reads_and_writes(rng, dtype):
    x = make(rng, (7, 9, 5), dtype)
    i0 = bm.tensor(rng.integers(-7, 7, size=(4, 3)))  # negative indices wrap
    i2 = bm.tensor(rng.integers(0, 5, size=(3,)))
    for key in [(i0,), (slice(None), bm.tensor([8, 0, 3])), (i0, slice(None), i2), (Ellipsis, i2),
                (slice(1, None, 2), i0)]:
        gk = tuple(k.cuda() if isinstance(k, bm.Tensor) else k for k in key)
        check(x.cuda()[gk], x[key], exact=True)
        xt = x.transpose(0, 1).contiguous().transpose(0, 1)
        check(xt.cuda()[gk], xt[key], exact=True)
    # writes: unique positions, then accumulate with repeats
    rows, cols = bm.tensor([0, 3, 6, 2]), bm.tensor([1, 1, 8, 4])
    v = make(rng, (4, 5), dtype)
    g, c = x.cuda(), x.clone()
    g[rows.cuda(), cols.cuda()] = v.cuda()
    c[rows, cols] = v
    check(g, c, exact=True)
    if dtype != bm.bool:
        rr, cc = bm.tensor([0, 0, 0, 5, 5]), bm.tensor([2, 2, 2, 1, 1])
        vv = make(rng, (5, 5), dtype)
        check(x.cuda().index_put((rr.cuda(), cc.cuda()), vv.cuda(), accumulate=True),
              x.index_put((rr, cc), vv, accumulate=True))


@pytest.mark.parametrize("dtype", ALL, ids=str)
@pytest.mark.parametrize("shape", [(1,), (7,), (33, 31), (1000, 3), (5, 1023), (2, 3, 4, 5), (70_001,)])
def test_nonzero_and_masks(rng, dtype, shape):
    a = rng.standard_normal(shape)
    a[rng.random(shape) < 0.4] = 0
    x = bm.tensor(a).to(dtype)
    check(bm.nonzero(x.cuda()), bm.nonzero(x), exact=True)
    if len(shape) >= 2:
        xt = x.transpose(0, 1)
        check(bm.nonzero(xt.cuda()), bm.nonzero(xt), exact=True)
    for g, c in zip(x.cuda().nonzero(as_tuple=True), x.nonzero(as_tuple=True)):
        check(g, c, exact=True)
    mask = bm.tensor(a > 0.3)
    check(bm.masked_select(x.cuda(), mask.cuda()), bm.masked_select(x, mask), exact=True)
    check(x.cuda()[mask.cuda()], x[mask], exact=True)
    g = x.cuda()
    g[mask.cuda()] = 0
    c = x.clone()
    c[mask] = 0
    check(g, c, exact=True)


def test_nonzero_edge_cases():
    z = bm.zeros(5, 4).cuda()
    assert tuple(bm.nonzero(z).shape) == (0, 2) and bm.nonzero(z).is_cuda
    assert tuple(bm.nonzero(bm.zeros(0, 3).cuda()).shape) == (0, 2)
    assert tuple(bm.nonzero(bm.tensor(2.0).cuda()).shape) == (1, 0)
    assert tuple(bm.nonzero(bm.tensor(0.0).cuda()).shape) == (0, 0)
    nan = bm.tensor([0.0, float("nan"), -0.0, 1.0]).cuda()
    assert host(bm.nonzero(nan)).tolist() == [[1], [3]]


def test_gradients_of_gather_and_index_on_cuda(rng):
    a = rng.standard_normal((6, 5))
    ix = idx(rng, 6, (9, 5))
    out = []
    for dev in ("cuda", "cpu"):
        x = bm.tensor(a).to(dev).requires_grad_(True)
        y = bm.gather(x, 0, ix.to(dev)).sum() + x[bm.tensor([0, 0, 4]).to(dev)].sum() * 2
        y.backward()
        out.append(x.grad)
    np.testing.assert_allclose(host(out[0]), host(out[1]), rtol=1e-12)


# ---- errors ----

def test_out_of_range_indices_raise_index_error_on_cuda(rng):
    x = make(rng, (4, 5), bm.float32).cuda()
    before = host(x).copy()
    bad = bm.tensor([0, 4]).cuda()
    neg = bm.tensor([-1]).cuda()
    with pytest.raises(IndexError, match=r"\[index_select\].*out of bounds"):
        bm.index_select(x, 0, bad)
    with pytest.raises(IndexError, match=r"\[gather\]"):
        bm.gather(x, 1, bm.tensor([[5]]).cuda())
    with pytest.raises(IndexError, match=r"\[gather\]"):
        bm.gather(x, 1, bm.tensor([[-1]]).cuda())
    with pytest.raises(IndexError, match=r"\[scatter_add_\]"):
        bm.scatter_add(x, 0, bm.tensor([[4]]).cuda(), x[:1, :1].contiguous())
    with pytest.raises(IndexError, match=r"\[embedding\]"):
        bm.embedding(bm.tensor([[1, 9]]).cuda(), x)
    with pytest.raises(IndexError, match=r"\[embedding\]"):
        bm.embedding(neg, x)
    with pytest.raises(IndexError, match=r"\[index\]"):
        x[bm.tensor([-5]).cuda()]
    with pytest.raises(IndexError, match=r"\[take\]"):
        bm.take(x, bm.tensor([20]).cuda())
    with pytest.raises(IndexError, match=r"\[index_add_\]"):
        bm.index_add(x, 1, bm.tensor([5]).cuda(), x[:, :1].contiguous())
    # the tensor is untouched and the device still works after the errors
    np.testing.assert_array_equal(host(x), before)
    np.testing.assert_allclose(float(host(x.sum())), float(before.astype(np.float64).sum()), atol=1e-5)
