"""Matmul family (matmul/mm/bmm/mv/dot/outer/linear/addmm): NumPy references, strided and
broadcast operands, dtypes, gradients and bad inputs."""
import numpy as np
import pytest

import bigmodel as bm
from conftest import assert_close

# (shape of a, shape of b) for every rank combination np.matmul accepts.
MATMUL_CASES = [
    ((5,), (5,)),            # dot
    ((3, 5), (5,)),          # matrix @ vector
    ((5,), (5, 4)),          # vector @ matrix
    ((3, 5), (5, 4)),        # mm
    ((2, 3, 5), (5,)),       # batched @ vector
    ((5,), (2, 5, 4)),       # vector @ batched
    ((2, 3, 5), (5, 4)),     # batched @ matrix (folded into one GEMM)
    ((3, 5), (2, 5, 4)),     # matrix @ batched
    ((2, 3, 5), (2, 5, 4)),  # bmm
    ((2, 1, 3, 5), (4, 5, 2)),  # batch dims broadcast both ways
    ((1, 3, 5), (2, 2, 5, 4)),
]


def _t(arr, dtype):
    return bm.tensor(arr, dtype=dtype)


def _transposed(arr, dtype):
    """Same values as arr, as a tensor whose last two dims are a transposed view."""
    if arr.ndim < 2:
        return _t(arr, dtype)
    return _t(np.ascontiguousarray(np.swapaxes(arr, -1, -2)), dtype).transpose(-1, -2)


def _strided(arr, dtype):
    """Same values as arr, with no unit stride in the last two dims (forces a packed copy)."""
    if arr.ndim < 2:
        big = np.stack([arr, np.full_like(arr, 99.0)], axis=-1)  # [n, 2], take column 0
        return _t(big, dtype).select(-1, 0)
    t = np.ascontiguousarray(np.swapaxes(arr, -1, -2))
    big = np.stack([t, np.full_like(t, 99.0)], axis=-1)
    return _t(big, dtype).select(-1, 0).transpose(-1, -2)


@pytest.mark.parametrize("sa,sb", MATMUL_CASES)
@pytest.mark.parametrize("dtype", [bm.float32, bm.float64])
def test_matmul_matches_numpy(rng, sa, sb, dtype):
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    expected = np.matmul(a, b)
    for make_a, make_b in [(_t, _t), (_transposed, _t), (_t, _transposed), (_transposed, _transposed),
                           (_strided, _t), (_t, _strided)]:
        ta, tb = make_a(a, dtype), make_b(b, dtype)
        out = bm.matmul(ta, tb)
        assert out.dtype == dtype
        assert_close(out, expected, atol=1e-5 if dtype == bm.float32 else None)
        assert_close(ta @ tb, expected, atol=1e-5 if dtype == bm.float32 else None)


@pytest.mark.parametrize("dtype", [bm.float16, bm.bfloat16])
@pytest.mark.parametrize("sa,sb", [((3, 5), (5, 4)), ((2, 3, 5), (5, 4)), ((2, 1, 3, 5), (4, 5, 2)), ((6,), (6,))])
def test_matmul_half_types(rng, dtype, sa, sb):
    a, b = _t(rng.standard_normal(sa), dtype), _t(rng.standard_normal(sb), dtype)
    # Reference from the rounded inputs; the only error left is the final rounding.
    ref = np.matmul(a.float().numpy().astype(np.float64), b.float().numpy().astype(np.float64))
    out = a @ b
    assert out.dtype == dtype
    assert_close(out, ref, atol=2e-3 if dtype == bm.float16 else 2e-2)
    assert_close(_transposed(a.float().numpy(), dtype) @ b, ref, atol=2e-3 if dtype == bm.float16 else 2e-2)


@pytest.mark.parametrize("dtype,np_dtype", [(bm.int64, np.int64), (bm.int32, np.int32)])
@pytest.mark.parametrize("sa,sb", [((3, 5), (5, 4)), ((2, 3, 5), (2, 5, 4)), ((5,), (5,)), ((3, 5), (2, 5, 4))])
def test_matmul_integers_exact(rng, dtype, np_dtype, sa, sb):
    a = rng.integers(-20, 20, sa).astype(np_dtype)
    b = rng.integers(-20, 20, sb).astype(np_dtype)
    out = _transposed(a, dtype) @ _t(b, dtype)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.numpy(), np.matmul(a, b))


def test_matmul_broadcast_expanded_operand(rng):
    # A stride-0 batch (from expand) goes to BLAS without a copy and must still be right.
    a = rng.standard_normal((3, 4))
    b = rng.standard_normal((5, 4, 2))
    ta = bm.tensor(a).expand(5, 3, 4)
    assert ta.stride(0) == 0
    assert_close(ta @ bm.tensor(b), np.matmul(a, b))
    # Expanded inside the matrix (stride 0 row): packed path.
    row = rng.standard_normal((1, 4))
    assert_close(bm.tensor(row).expand(3, 4) @ bm.tensor(b), np.matmul(np.broadcast_to(row, (3, 4)), b))


def test_matmul_large_and_threaded_paths(rng):
    # Above the small-GEMM threshold (OpenBLAS threads) and below it (batches in parallel).
    a, b = rng.standard_normal((70, 90)), rng.standard_normal((90, 80))
    assert_close(bm.tensor(a) @ bm.tensor(b), a @ b)
    a, b = rng.standard_normal((16, 9, 7)), rng.standard_normal((16, 7, 5))
    assert_close(bm.tensor(a) @ bm.tensor(b), a @ b)
    assert_close(bm.tensor(a, dtype=bm.float32) @ bm.tensor(b, dtype=bm.float32), a @ b, atol=1e-5)


def test_matmul_empty_dims(rng):
    out = bm.tensor(np.zeros((3, 0))) @ bm.tensor(np.zeros((0, 4)))
    assert out.shape == (3, 4)
    np.testing.assert_array_equal(out.numpy(), np.zeros((3, 4)))
    out = bm.tensor(rng.standard_normal((0, 3))) @ bm.tensor(rng.standard_normal((3, 4)))
    assert out.shape == (0, 4)
    out = bm.tensor(rng.standard_normal((2, 0, 3))) @ bm.tensor(rng.standard_normal((3, 4)))
    assert out.shape == (2, 0, 4)
    out = bm.tensor(np.ones((2, 3, 0))) @ bm.tensor(np.ones((0, 4)))
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out.numpy(), np.zeros((2, 3, 4)))
    out = bm.tensor(np.ones((2, 3, 0))) @ bm.tensor(np.ones(0))
    assert out.shape == (2, 3)


def test_named_functions_and_methods(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    ta, tb = bm.tensor(a), bm.tensor(b)
    assert_close(bm.mm(ta, tb), a @ b)
    assert_close(ta.mm(tb), a @ b)
    assert_close(ta.matmul(tb), a @ b)
    x, y = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    assert_close(bm.bmm(bm.tensor(x), bm.tensor(y)), x @ y)
    assert_close(bm.tensor(x).bmm(bm.tensor(y)), x @ y)
    v, w = rng.standard_normal(4), rng.standard_normal(4)
    d = bm.dot(bm.tensor(v), bm.tensor(w))
    assert d.shape == ()
    assert_close(d, np.dot(v, w))
    assert_close(bm.tensor(v).dot(bm.tensor(w)), np.dot(v, w))
    assert_close(bm.mv(ta, bm.tensor(v)), a @ v)
    u = rng.standard_normal(3)
    assert_close(bm.outer(bm.tensor(u), bm.tensor(v)), np.outer(u, v))
    assert_close(bm.tensor(u).outer(bm.tensor(v)), np.outer(u, v))
    c = rng.standard_normal((3, 2))
    assert_close(bm.addmm(bm.tensor(c), ta, tb), c + a @ b)
    assert_close(bm.addmm(bm.tensor(c), ta, tb, beta=0.5, alpha=2.0), 0.5 * c + 2 * (a @ b))
    assert_close(bm.addmm(bm.tensor(c[0]), ta, tb), c[0] + a @ b)


def test_dot_strided(rng):
    v = rng.standard_normal((6, 2))
    a = bm.tensor(v).select(1, 0)  # stride 2
    b = bm.tensor(v).select(1, 1)
    assert a.stride(0) == 2
    assert_close(bm.dot(a, b), np.dot(v[:, 0], v[:, 1]))
    assert_close(bm.dot(a, bm.tensor(v[:1, 0]).expand(6)), np.dot(v[:, 0], np.full(6, v[0, 0])))


@pytest.mark.parametrize("x_shape", [(4,), (3, 4), (2, 3, 4), (2, 2, 3, 4)])
def test_linear(rng, x_shape):
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal((5, 4)), rng.standard_normal(5)
    assert_close(bm._C.linear(bm.tensor(x), bm.tensor(w), bm.tensor(b)), x @ w.T + b)
    assert_close(bm._C.linear(bm.tensor(x), bm.tensor(w)), x @ w.T)
    assert_close(bm._C.linear(bm.tensor(x), bm.tensor(w), None), x @ w.T)
    # A transposed input (non-contiguous leading dims) must give the same answer.
    xt = _transposed(x, bm.float64)
    assert_close(bm._C.linear(xt, bm.tensor(w), bm.tensor(b)), x @ w.T + b)


@pytest.mark.parametrize("sa,sb", MATMUL_CASES)
def test_matmul_gradcheck(rng, sa, sb):
    a = bm.tensor(rng.standard_normal(sa)).requires_grad_()
    b = bm.tensor(rng.standard_normal(sb)).requires_grad_()
    assert bm.autograd.gradcheck(bm.matmul, [a, b])
    out = a @ b
    assert out.grad_fn is not None


def test_matmul_grad_matches_formula(rng):
    # Broadcast batch: dA sums dC @ B^T over the batch A was broadcast over.
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((2, 4, 5))
    g = rng.standard_normal((2, 3, 5))
    ta, tb = bm.tensor(a).requires_grad_(), bm.tensor(b).requires_grad_()
    (ta @ tb).backward(bm.tensor(g))
    assert_close(ta.grad, np.einsum("bmn,bkn->mk", g, b))
    assert_close(tb.grad, np.einsum("mk,bmn->bkn", a, g))


def test_gradcheck_transposed_and_named(rng):
    gc = bm.autograd.gradcheck
    a = bm.tensor(rng.standard_normal((4, 3))).requires_grad_()
    b = bm.tensor(rng.standard_normal((5, 4))).requires_grad_()
    assert gc(lambda x, y: x.transpose(0, 1) @ y.transpose(0, 1), [a, b])
    assert gc(lambda x, y: bm.mm(y, x), [a, b])
    x = bm.tensor(rng.standard_normal((2, 3, 4))).requires_grad_()
    y = bm.tensor(rng.standard_normal((2, 4, 2))).requires_grad_()
    assert gc(bm.bmm, [x, y])
    assert gc(lambda p, q: bm.bmm(p.transpose(1, 2).transpose(1, 2), q.transpose(1, 2).transpose(1, 2)), [x, y])
    u = bm.tensor(rng.standard_normal(4)).requires_grad_()
    v = bm.tensor(rng.standard_normal(4)).requires_grad_()
    assert gc(bm.dot, [u, v])
    assert gc(bm.outer, [u, v])
    assert gc(lambda m, w: bm.mv(m, w), [b, u])
    c = bm.tensor(rng.standard_normal((5, 3))).requires_grad_()
    assert gc(lambda i, m1, m2: bm.addmm(i, m1, m2, beta=0.5, alpha=2.0), [c, b, a])


@pytest.mark.parametrize("x_shape", [(4,), (3, 4), (2, 3, 4)])
def test_linear_gradcheck(rng, x_shape):
    x = bm.tensor(rng.standard_normal(x_shape)).requires_grad_()
    w = bm.tensor(rng.standard_normal((3, 4))).requires_grad_()
    b = bm.tensor(rng.standard_normal(3)).requires_grad_()
    assert bm.autograd.gradcheck(bm._C.linear, [x, w, b])
    assert bm.autograd.gradcheck(lambda p, q: bm._C.linear(p, q), [x, w])


def test_only_needed_grads_flow(rng):
    a = bm.tensor(rng.standard_normal((3, 4))).requires_grad_()
    b = bm.tensor(rng.standard_normal((4, 2)))
    (a @ b).sum().backward()
    assert b.grad is None
    assert_close(a.grad, np.ones((3, 2)) @ b.numpy().T)


def test_matmul_errors():
    a, b = bm.tensor(np.ones((2, 3))), bm.tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\[matmul\] shapes \[2, 3\] and \[4, 5\] cannot be multiplied \(3 != 4\)"):
        bm.matmul(a, b)
    with pytest.raises(ValueError, match=r"\[matmul\]"):
        a @ b
    with pytest.raises(ValueError, match=r"\[matmul\].*at least 1-D"):
        bm.matmul(bm.tensor(2.0, dtype=bm.float64), a)
    with pytest.raises(TypeError, match="same dtype"):
        bm.matmul(a, bm.tensor(np.ones((3, 2)), dtype=bm.float32))
    with pytest.raises(TypeError, match=r"\[matmul\].*bool"):
        bm.tensor(np.ones((2, 2), dtype=bool)) @ bm.tensor(np.ones((2, 2), dtype=bool))
    with pytest.raises(ValueError, match=r"\[matmul\] shapes \[2, 3\] and \[2\]"):
        a @ bm.tensor(np.ones(2))
    with pytest.raises(ValueError, match=r"\[matmul\]"):  # batch dims that do not broadcast
        bm.tensor(np.ones((2, 2, 3))) @ bm.tensor(np.ones((3, 3, 2)))
    with pytest.raises(ValueError, match=r"\[mm\].*2-D"):
        bm.mm(bm.tensor(np.ones((2, 2, 3))), bm.tensor(np.ones((3, 2))))
    with pytest.raises(ValueError, match=r"\[mm\] shapes \[2, 3\] and \[4, 5\]"):
        bm.mm(a, b)
    with pytest.raises(ValueError, match=r"\[bmm\].*batch"):
        bm.bmm(bm.tensor(np.ones((2, 2, 3))), bm.tensor(np.ones((3, 3, 2))))
    with pytest.raises(ValueError, match=r"\[dot\].*1-D"):
        bm.dot(a, a)
    with pytest.raises(ValueError, match=r"\[dot\] shapes \[3\] and \[4\]"):
        bm.dot(bm.tensor(np.ones(3)), bm.tensor(np.ones(4)))
    with pytest.raises(ValueError, match=r"\[linear\].*\[2, 3\].*\[4, 5\]"):
        bm._C.linear(a, b)
    with pytest.raises(ValueError, match=r"\[linear\].*bias"):
        bm._C.linear(a, bm.tensor(np.ones((4, 3))), bm.tensor(np.ones(3)))
    with pytest.raises(TypeError):
        a @ "x"
