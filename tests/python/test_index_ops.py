"""Index ops (index_select, gather, scatter, scatter_add, index_add, index_put, embedding,
one_hot, masked_select, nonzero, take) against NumPy loops, with repeated indices,
strided operands, several dtypes, gradients and bad inputs."""
import numpy as np
import pytest

import bigmodel as bm
from conftest import assert_close


def strided(a):
    """A non-contiguous tensor holding the values of `a` (ndim >= 2)."""
    return bm.tensor(np.ascontiguousarray(a.transpose())).permute(*reversed(range(a.ndim)))


def make(a, contiguous):
    t = bm.tensor(a) if contiguous or a.ndim < 2 else strided(a)
    return t


def gather_ref(a, dim, idx):
    out = np.empty(idx.shape, dtype=a.dtype)
    for p in np.ndindex(*idx.shape):
        q = list(p)
        q[dim] = idx[p]
        out[p] = a[tuple(q)]
    return out


def scatter_ref(a, dim, idx, src, add):
    out = a.copy()
    for p in np.ndindex(*idx.shape):
        q = list(p)
        q[dim] = idx[p]
        v = src if np.isscalar(src) else src[p]
        out[tuple(q)] = out[tuple(q)] + v if add else v
    return out


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather(rng, dim, contiguous):
    a = rng.standard_normal((4, 5, 3))
    d = dim % 3
    shape = [3, 4, 2]
    idx = rng.integers(0, a.shape[d], shape)  # repeats are likely
    x = make(a, contiguous)
    assert_close(bm.gather(x, dim, bm.tensor(idx)), gather_ref(a, d, idx))
    assert_close(x.gather(dim, bm.tensor(idx, dtype=bm.int32)), gather_ref(a, d, idx))


@pytest.mark.parametrize("dtype", [bm.float32, bm.float16, bm.bfloat16, bm.int32, bm.int64, bm.bool])
def test_gather_scatter_dtypes(rng, dtype):
    a = rng.integers(-4, 5, (3, 4))
    x = bm.tensor(a).to(dtype)
    ref = x.float().numpy() if dtype == bm.bfloat16 else x.numpy()
    idx = np.array([[2, 0, 1, 2], [0, 0, 2, 1]])
    g = x.gather(0, bm.tensor(idx))
    assert g.dtype == dtype
    np.testing.assert_array_equal((g.float() if dtype == bm.bfloat16 else g).numpy(), gather_ref(ref, 0, idx))
    src = x[:2]
    perm = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])  # no repeats along a row: scatter is deterministic
    out = bm.scatter(x, 1, bm.tensor(perm), src)
    np.testing.assert_array_equal((out.float() if dtype == bm.bfloat16 else out).numpy(),
                                  scatter_ref(ref, 1, perm, ref[:2], add=False))


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_add_repeated_indices(rng, dim, contiguous):
    a = rng.standard_normal((4, 5))
    src = rng.standard_normal((5, 6))
    idx = rng.integers(0, a.shape[dim], (3, 4))  # smaller than src: only its corner is used
    out = bm.scatter_add(make(a, contiguous), dim, bm.tensor(idx), make(src, contiguous))
    assert_close(out, scatter_ref(a, dim, idx, src, add=True))
    x = make(a, contiguous)
    r = x.scatter_add_(dim, bm.tensor(idx), bm.tensor(src))
    assert_close(x, scatter_ref(a, dim, idx, src, add=True))
    assert r.data_ptr() == x.data_ptr()


def test_scatter_value_and_inplace(rng):
    a = rng.standard_normal((3, 4))
    idx = np.array([[1], [3], [0]])
    x = bm.tensor(a)
    assert_close(x.scatter(1, bm.tensor(idx), 2.5), scatter_ref(a, 1, idx, 2.5, add=False))
    assert_close(bm.scatter(x, 1, bm.tensor(idx), value=-1.0), scatter_ref(a, 1, idx, -1.0, add=False))
    x.scatter_(1, bm.tensor(idx), 0.75)
    assert_close(x, scatter_ref(a, 1, idx, 0.75, add=False))
    src = rng.standard_normal((3, 1))
    x.scatter_(1, bm.tensor(idx), src=bm.tensor(src))
    assert_close(x, scatter_ref(scatter_ref(a, 1, idx, 0.75, add=False), 1, idx, src, add=False))


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_index_select(rng, dim, contiguous):
    a = rng.standard_normal((3, 4, 5))
    idx = np.array([1, 0, 1, 2, 2])
    out = bm.index_select(make(a, contiguous), dim, bm.tensor(idx))
    assert_close(out, np.take(a, idx, axis=dim))
    assert_close(make(a, contiguous).index_select(dim, bm.tensor(idx[:2], dtype=bm.int32)),
                 np.take(a, idx[:2], axis=dim))
    assert bm.index_select(bm.tensor(a), dim, bm.tensor(1)).shape[dim] == 1  # 0-d index


@pytest.mark.parametrize("dim", [0, 1])
def test_index_add(rng, dim):
    a = rng.standard_normal((4, 3))
    idx = np.array([2, 0, 2, 2, 1])
    src = rng.standard_normal((5, 3) if dim == 0 else (4, 5))
    ref = np.moveaxis(a.copy(), dim, 0)
    np.add.at(ref, idx, 2.0 * np.moveaxis(src, dim, 0))
    ref = np.moveaxis(ref, 0, dim)
    assert_close(bm.index_add(bm.tensor(a), dim, bm.tensor(idx), bm.tensor(src), alpha=2.0), ref)
    x = bm.tensor(a)
    x.index_add_(dim, bm.tensor(idx), bm.tensor(src), alpha=2)
    assert_close(x, ref)


@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put(rng, accumulate):
    a = rng.standard_normal((4, 5))
    rows, cols = np.array([0, 3, 3, 0]), np.array([1, 2, 2, 1])
    v = rng.standard_normal(4)
    ref = a.copy()
    if accumulate:
        np.add.at(ref, (rows, cols), v)
    else:
        rows, cols, v = rows[:2], cols[:2], v[:2]  # no repeats: the write order does not matter
        ref[rows, cols] = v
    x = bm.tensor(a)
    out = x.index_put((bm.tensor(rows), bm.tensor(cols)), bm.tensor(v), accumulate=accumulate)
    assert_close(out, ref)
    assert_close(x, a)  # out of place
    x.index_put_((bm.tensor(rows), bm.tensor(cols)), bm.tensor(v), accumulate)
    assert_close(x, ref)
    y = bm.tensor(a)
    y.index_put_((None, bm.tensor([4, 0])), bm.tensor(1.5))  # None indexes the whole dim
    ref2 = a.copy()
    ref2[:, [4, 0]] = 1.5
    assert_close(y, ref2)


@pytest.mark.parametrize("dtype", [bm.float64, bm.float32, bm.float16])
def test_embedding(rng, dtype):
    w = rng.standard_normal((6, 3))
    idx = np.array([[5, 0, 5], [2, 2, 1]])
    weight = bm.tensor(w).to(dtype)
    out = bm.embedding(bm.tensor(idx), weight)
    assert out.shape == (2, 3, 3) and out.dtype == dtype
    assert_close(out, weight.double().numpy()[idx], dtype=dtype)
    assert_close(bm.embedding(bm.tensor(idx, dtype=bm.int32), strided(w)), w[idx])


def test_embedding_gradient(rng):
    w = bm.tensor(rng.standard_normal((6, 3)), requires_grad=True)
    idx = np.array([[5, 0, 5], [2, 2, 5]])
    g = rng.standard_normal((2, 3, 3))
    (bm.embedding(bm.tensor(idx), w) * bm.tensor(g)).sum().backward()
    expected = np.zeros((6, 3))
    np.add.at(expected, idx.ravel(), g.reshape(-1, 3))
    assert_close(w.grad, expected)
    w.grad = None
    (bm.embedding(bm.tensor(idx), w, padding_idx=5) * bm.tensor(g)).sum().backward()
    expected[5] = 0.0
    assert_close(w.grad, expected)
    w.grad = None
    bm.embedding(bm.tensor(idx), w, padding_idx=-4).sum().backward()  # -4 wraps to row 2
    assert w.grad.numpy()[2].tolist() == [0.0, 0.0, 0.0] and w.grad.numpy()[5, 0] == 3.0
    # (padding_idx rows get no gradient by design, so finite differences would disagree there)
    assert bm.autograd.gradcheck(lambda t: bm.embedding(bm.tensor(idx), t),
                                 [w.detach().requires_grad_(True)])


def test_one_hot():
    t = np.array([[0, 3], [2, 2]])
    out = bm.one_hot(bm.tensor(t))
    assert out.dtype == bm.int64 and out.shape == (2, 2, 4)
    np.testing.assert_array_equal(out.numpy(), np.eye(4, dtype=np.int64)[t])
    np.testing.assert_array_equal(bm.one_hot(bm.tensor(t, dtype=bm.int32), num_classes=6).numpy(),
                                  np.eye(6, dtype=np.int64)[t])
    assert bm.one_hot(bm.tensor([], dtype=bm.int64), 3).shape == (0, 3)


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((1, 4), (3, 1)), ((), ())])
def test_masked_select(rng, shapes):
    sa, sm = shapes
    a = rng.standard_normal(sa)
    m = rng.random(sm) > 0.5
    shape = np.broadcast_shapes(sa, sm)
    expected = np.broadcast_to(a, shape)[np.broadcast_to(m, shape)]
    assert_close(bm.masked_select(bm.tensor(a), bm.tensor(m)), expected)
    assert_close(bm.tensor(a).masked_select(bm.tensor(m)), expected)


def test_masked_select_gradcheck(rng):
    x = bm.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    m = bm.tensor(rng.random((4,)) > 0.3)
    assert bm.autograd.gradcheck(lambda t: bm.masked_select(t, m), [x])


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.bool_])
def test_nonzero(rng, dtype):
    a = (rng.integers(-1, 2, (3, 4, 2))).astype(dtype)
    x = make(a, False)
    np.testing.assert_array_equal(bm.nonzero(x).numpy(), np.argwhere(a))
    for got, exp in zip(x.nonzero(as_tuple=True), np.nonzero(a)):
        np.testing.assert_array_equal(got.numpy(), exp)
    assert bm.nonzero(bm.zeros(2, 3)).shape == (0, 2)


def test_take(rng):
    a = rng.standard_normal((3, 4))
    idx = np.array([[0, 11], [-1, 5]])
    assert_close(bm.take(strided(a), bm.tensor(idx)), a.ravel()[idx])
    assert_close(bm.tensor(a).take(bm.tensor(idx)), a.ravel()[idx])


# ---- gradients ----

def test_gradchecks(rng):
    gc = bm.autograd.gradcheck
    x = bm.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    src = bm.tensor(rng.standard_normal((3, 3)), requires_grad=True)
    idx = bm.tensor([[3, 0, 3], [3, 3, 1]])  # repeated indices
    perm = bm.tensor([[2, 0, 1], [1, 2, 0]])
    assert gc(lambda t: bm.gather(t, 0, idx), [x])
    assert gc(lambda t: t.gather(1, perm[:, :2].contiguous()), [x[:2].detach().requires_grad_(True)])
    assert gc(lambda t, s: bm.scatter_add(t, 0, idx, s), [x, src])
    assert gc(lambda t, s: bm.scatter(t, 1, perm, s), [x[:2].detach().requires_grad_(True), src])
    assert gc(lambda t: bm.scatter(t, 0, idx, 1.5), [x])
    assert gc(lambda t: bm.index_select(t, 0, bm.tensor([3, 0, 3, 3])), [x])
    assert gc(lambda t: bm.index_select(t, 1, bm.tensor([2, 2])), [x])
    s2 = bm.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    assert gc(lambda t, s: bm.index_add(t, 0, bm.tensor([1, 1, 0, 3, 1]), s, alpha=-0.5), [x, s2])
    v = bm.tensor(rng.standard_normal((4,)), requires_grad=True)
    rows, cols = bm.tensor([0, 3, 3, 0]), bm.tensor([1, 2, 2, 1])
    assert gc(lambda t, v: t.index_put((rows, cols), v, accumulate=True), [x, v])
    v2 = bm.tensor(rng.standard_normal((2,)), requires_grad=True)
    assert gc(lambda t, v: t.index_put((rows[:2], cols[:2]), v), [x, v2])
    assert gc(lambda t: bm.take(t, bm.tensor([[0, 11], [0, -1]])), [x])


def test_inplace_ops_on_leaf_raise(rng):
    x = bm.tensor(rng.standard_normal((3, 3)), requires_grad=True)
    idx = bm.tensor([[0, 1, 2]])
    with pytest.raises(RuntimeError, match=r"\[scatter_add_\].*leaf"):
        x.scatter_add_(0, idx, bm.ones(1, 3, dtype=bm.float64))
    with pytest.raises(RuntimeError, match=r"\[index_put_\].*leaf"):
        x.index_put_((bm.tensor([0]),), bm.tensor(1.0, dtype=bm.float64))


# ---- bad inputs ----

def test_bad_inputs():
    x = bm.zeros(3, 4)
    with pytest.raises(TypeError, match=r"\[gather\] index tensor must be int64 or int32, got float32"):
        bm.gather(x, 0, bm.zeros(1, 4))
    with pytest.raises(IndexError, match=r"\[gather\] index 3 is out of bounds for dimension 0 with size 3"):
        bm.gather(x, 0, bm.tensor([[3, 0, 0, 0]]))
    with pytest.raises(IndexError, match=r"\[gather\] index -1 is out of bounds"):
        bm.gather(x, 1, bm.tensor([[-1]]))
    with pytest.raises(ValueError, match=r"\[gather\].*\[4\].*\[3, 4\]"):
        bm.gather(x, 0, bm.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match=r"\[gather\].*larger"):
        bm.gather(x, 0, bm.zeros(1, 5, dtype=bm.int64))
    with pytest.raises(IndexError, match=r"\[gather\] dim 2 out of range"):
        bm.gather(x, 2, bm.zeros(1, 1, dtype=bm.int64))
    with pytest.raises(IndexError, match=r"\[scatter_add_\] index 4 is out of bounds for dimension 1"):
        bm.scatter_add(x, 1, bm.tensor([[4]]), bm.ones(1, 1))
    with pytest.raises(TypeError, match=r"\[scatter_add_\].*src dtype float64"):
        bm.scatter_add(x, 1, bm.tensor([[1]]), bm.ones(1, 1, dtype=bm.float64))
    with pytest.raises(ValueError, match=r"\[scatter_add_\].*larger than src"):
        bm.scatter_add(x, 1, bm.tensor([[1, 2]]), bm.ones(1, 1))
    with pytest.raises(IndexError, match=r"\[index_select\] index 3 is out of bounds for dimension 0 with size 3"):
        bm.index_select(x, 0, bm.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"\[index_select\] index must be 0-d or 1-d"):
        bm.index_select(x, 0, bm.tensor([[0]]))
    with pytest.raises(TypeError, match=r"\[index_select\]"):
        bm.index_select(x, 0, bm.tensor([True]))
    with pytest.raises(IndexError, match=r"\[embedding\] index 6 is out of bounds for dimension 0 with size 6"):
        bm.embedding(bm.tensor([1, 6]), bm.zeros(6, 2))
    with pytest.raises(IndexError, match=r"\[embedding\] index -1"):
        bm.embedding(bm.tensor([-1]), bm.zeros(6, 2))
    with pytest.raises(TypeError, match=r"\[embedding\].*float32"):
        bm.embedding(bm.tensor([1.0]), bm.zeros(6, 2))
    with pytest.raises(ValueError, match=r"\[embedding\] weight must be 2-D"):
        bm.embedding(bm.tensor([1]), bm.zeros(6))
    with pytest.raises(ValueError, match=r"\[embedding\] padding_idx 6"):
        bm.embedding(bm.tensor([1]), bm.zeros(6, 2), padding_idx=6)
    with pytest.raises(ValueError, match=r"\[one_hot\] class values must be non-negative"):
        bm.one_hot(bm.tensor([0, -1]))
    with pytest.raises(ValueError, match=r"\[one_hot\] class values must be smaller than num_classes 2"):
        bm.one_hot(bm.tensor([0, 2]), 2)
    with pytest.raises(TypeError, match=r"\[one_hot\]"):
        bm.one_hot(bm.tensor([0.0]))
    with pytest.raises(ValueError, match=r"\[one_hot\]"):
        bm.one_hot(bm.tensor([], dtype=bm.int64))
    with pytest.raises(TypeError, match=r"\[masked_select\] mask must be a bool tensor"):
        bm.masked_select(x, bm.ones(3, 4))
    with pytest.raises(ValueError, match=r"\[masked_select\].*\[3, 4\].*\[2\]"):
        bm.masked_select(x, bm.tensor([True, False]))
    with pytest.raises(IndexError, match=r"\[take\] index 12 is out of bounds"):
        bm.take(x, bm.tensor([12]))
    with pytest.raises(IndexError, match=r"\[index_put_\].*out of bounds"):
        x.index_put_((bm.tensor([3]),), bm.tensor(1.0))
    with pytest.raises(IndexError, match=r"\[index_put_\].*float32"):
        x.index_put_((bm.tensor([0.0]),), bm.tensor(1.0))
    with pytest.raises(ValueError, match=r"\[index_put_\] shape mismatch"):
        x.index_put_((bm.tensor([0, 1]),), bm.ones(3))
    with pytest.raises(ValueError, match=r"\[index_add_\]"):
        bm.index_add(x, 0, bm.tensor([0, 1]), bm.ones(3, 4))
