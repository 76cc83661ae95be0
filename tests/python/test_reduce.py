"""Reductions (sum, mean, prod, max/min, amax/amin, argmax/argmin, var/std, logsumexp, norm,
all/any) against NumPy float64 references; dtypes, non-contiguous inputs, gradcheck, errors."""
import numpy as np
import pytest

import bigmodel as bm
from conftest import assert_close, noncontiguous

DIMS = [None, 0, 1, -1, (0, 2), (1, 2), (-1, 0), (0, 1, 2)]


def np_dims(dim):
    return None if dim is None else dim


def lse_ref(a, axis, keepdims):
    m = np.max(a, axis=axis, keepdims=True)
    r = m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))
    return r if keepdims else np.squeeze(r, axis=axis if axis is not None else tuple(range(a.ndim)))


def kw(dim, keepdim):
    return {} if dim is None else {"dim": dim, "keepdim": keepdim}


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("contig", [True, False])
def test_float_reductions_match_numpy(rng, dim, keepdim, contig):
    a = rng.standard_normal((3, 4, 5))
    x = bm.tensor(a) if contig else noncontiguous(a)
    assert x.is_contiguous() == contig
    kd = keepdim if dim is not None else False
    ax = np_dims(dim)
    assert_close(x.sum(**kw(dim, keepdim)), a.sum(axis=ax, keepdims=kd))
    assert_close(x.mean(**kw(dim, keepdim)), a.mean(axis=ax, keepdims=kd))
    assert_close(x.prod(**kw(dim, keepdim)), a.prod(axis=ax, keepdims=kd))
    assert_close(bm.amax(x, **kw(dim, keepdim)), a.max(axis=ax, keepdims=kd))
    assert_close(x.amin(**kw(dim, keepdim)), a.min(axis=ax, keepdims=kd))
    assert_close(x.var(**kw(dim, keepdim)), a.var(axis=ax, keepdims=kd, ddof=1))
    assert_close(bm.std(x, **kw(dim, keepdim)), a.std(axis=ax, keepdims=kd, ddof=1))
    assert_close(x.norm(**kw(dim, keepdim)), np.sqrt((a * a).sum(axis=ax, keepdims=kd)))
    if dim is not None:
        assert_close(x.logsumexp(dim, keepdim=keepdim), lse_ref(a, ax, keepdim))
    assert_close(x.all(**kw(dim, keepdim)), np.all(a != 0, axis=ax, keepdims=kd))
    assert_close(bm.any(x > 0.5, **kw(dim, keepdim)), np.any(a > 0.5, axis=ax, keepdims=kd))


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64, bm.float16, bm.bfloat16])
def test_dtypes_keep_floating_type(rng, dtype):
    a = rng.standard_normal((6, 7))
    x = bm.tensor(a, dtype=dtype)
    ref = x.float().numpy().astype(np.float64) if dtype == bm.bfloat16 else x.numpy().astype(np.float64)
    tol = {bm.float16: 2e-3, bm.bfloat16: 2e-2}.get(dtype)
    for out, exp in [(x.sum(1), ref.sum(1)), (x.mean(0), ref.mean(0)), (x.amax(1), ref.max(1)),
                     (x.var(1), ref.var(1, ddof=1)), (x.logsumexp(1), lse_ref(ref, 1, False)),
                     (x.norm(dim=1), np.sqrt((ref ** 2).sum(1)))]:
        assert out.dtype == dtype
        assert_close(out, exp, atol=tol, rtol=tol)
    assert x.sum(dtype=bm.float64).dtype == bm.float64
    assert_close(x.sum(dtype=bm.float64), ref.sum())


@pytest.mark.parametrize("dtype", [bm.int32, bm.int64])
def test_integer_reductions(rng, dtype):
    a = rng.integers(-5, 6, size=(4, 5))
    x = bm.tensor(a, dtype=dtype)
    assert x.sum().dtype == bm.int64 and x.sum().item() == a.sum()
    assert x.sum(1).tolist() == a.sum(1).tolist()
    assert x.prod(0).dtype == bm.int64 and x.prod(0).tolist() == a.prod(0).tolist()
    assert x.max().dtype == dtype and x.max().item() == a.max()
    v, i = x.max(1)
    assert v.tolist() == a.max(1).tolist() and i.tolist() == a.argmax(1).tolist()
    assert x.argmin(0).tolist() == a.argmin(0).tolist()
    assert x.amin((0, 1)).item() == a.min()
    b = bm.tensor(a > 0)
    assert b.sum().dtype == bm.int64 and b.sum().item() == (a > 0).sum()
    assert b.any(1).tolist() == (a > 0).any(1).tolist()
    assert b.all().item() == bool((a > 0).all())
    with pytest.raises(TypeError, match=r"\[mean\]"):
        x.mean()
    with pytest.raises(TypeError, match=r"\[var\]"):
        x.var()


def test_logsumexp_of_integers_is_float(rng):
    a = rng.integers(0, 4, size=(3, 4))
    out = bm.logsumexp(bm.tensor(a), 1)
    assert out.dtype == bm.float32
    assert_close(out, lse_ref(a.astype(np.float64), 1, False), atol=1e-5, rtol=1e-5)


def test_max_min_with_dim_namedtuple(rng):
    a = rng.standard_normal((3, 5, 4))
    x = noncontiguous(a)
    for dim in [0, 1, -1]:
        for keepdim in [False, True]:
            res = x.max(dim=dim, keepdim=keepdim)
            v, i = res
            assert res.values is v and res.indices is i
            assert i.dtype == bm.int64
            assert_close(v, a.max(axis=dim, keepdims=keepdim))
            exp_i = a.argmax(axis=dim)
            assert i.tolist() == (np.expand_dims(exp_i, dim) if keepdim else exp_i).tolist()
            r = bm.min(x, dim, keepdim)
            assert_close(r.values, a.min(axis=dim, keepdims=keepdim))
            assert r.indices.tolist() == (np.expand_dims(a.argmin(dim), dim) if keepdim else a.argmin(dim)).tolist()
    assert type(res).__name__ == "max" and isinstance(res, tuple)


def test_max_ties_take_first_index_and_nan_wins():
    x = bm.tensor([[1.0, 3.0, 3.0, 2.0], [float("nan"), 1.0, float("nan"), 5.0]])
    v, i = x.max(1)
    assert i.tolist() == [1, 0]
    assert v[0].item() == 3.0 and np.isnan(v[1].item())
    assert x.argmin(1).tolist() == [0, 0]
    assert np.isnan(x.max().item())


def test_argmax_flattens_without_dim(rng):
    a = rng.standard_normal((3, 4, 2))
    x = noncontiguous(a)
    assert x.argmax().item() == a.argmax()
    assert bm.argmin(x).item() == a.argmin()
    assert x.argmax().ndim == 0
    k = x.argmax(keepdim=True)
    assert k.shape == (1, 1, 1) and k.item() == a.argmax()
    assert x.argmax(1, keepdim=True).tolist() == np.expand_dims(a.argmax(1), 1).tolist()


@pytest.mark.parametrize("dim", [None, 1, (0, 1)])
def test_var_std_corrections(rng, dim):
    a = rng.standard_normal((4, 6))
    x = bm.tensor(a)
    ax = dim
    assert_close(x.var(dim, unbiased=False), a.var(axis=ax, ddof=0))
    assert_close(x.var(dim, correction=0), a.var(axis=ax, ddof=0))
    assert_close(x.std(dim, correction=2), a.std(axis=ax, ddof=2))
    assert_close(x.std(dim, True, True), a.std(axis=ax, ddof=1, keepdims=True))
    assert_close(bm.var(x, dim, keepdim=True), a.var(axis=ax, ddof=1, keepdims=True))
    assert_close(x.var(False), a.var(ddof=0))  # legacy var(unbiased)


def test_logsumexp_is_stable():
    a = np.array([[1000.0, 1000.0, 999.0], [-1000.0, -1001.0, -1000.5]])
    out = bm.tensor(a, dtype=bm.float32).logsumexp(1)
    assert_close(out, lse_ref(a, 1, False), rtol=1e-6)
    assert bm.tensor([[-np.inf, -np.inf]]).logsumexp(1).item() == -np.inf
    assert bm.tensor([[np.inf, 1.0]]).logsumexp(1).item() == np.inf


@pytest.mark.parametrize("p", [1, 2, 3, 0.5, float("inf"), float("-inf"), 0, "fro"])
def test_norm_orders(rng, p):
    a = rng.standard_normal((4, 5))
    a[0, 1] = 0.0
    x = noncontiguous(a)
    pn = 2 if p == "fro" else p
    for dim in [None, 1, (0, 1)]:
        axis = dim
        absx = np.abs(a)
        if pn == float("inf"):
            exp = absx.max(axis=axis)
        elif pn == float("-inf"):
            exp = absx.min(axis=axis)
        elif pn == 0:
            exp = (a != 0).sum(axis=axis).astype(np.float64)
        else:
            exp = (absx ** pn).sum(axis=axis) ** (1.0 / pn)
        assert_close(x.norm(p, dim), exp)
        assert_close(bm.norm(x, p=p, dim=dim, keepdim=True), np.asarray(exp).reshape(
            np.sum(a, axis=axis, keepdims=True).shape))


def test_empty_reductions():
    e = bm.tensor(np.zeros((0, 3)))
    assert e.sum().item() == 0
    assert e.prod().item() == 1
    assert e.sum(0).tolist() == [0, 0, 0]
    assert e.amax(1).shape == (0,)
    assert np.isnan(e.mean().item())
    assert e.logsumexp(0).tolist() == [-np.inf] * 3
    with pytest.raises(RuntimeError, match=r"\[max\].*empty"):
        e.max()
    with pytest.raises(IndexError, match=r"\[max\]"):
        e.max(0)
    with pytest.raises(IndexError, match=r"\[amax\]"):
        e.amax(0)
    with pytest.raises(RuntimeError, match=r"\[argmax\]"):
        e.argmax()


def test_scalar_tensor_reductions():
    x = bm.tensor(2.5)
    assert x.sum().item() == 2.5 and x.max().item() == 2.5 and x.argmax().item() == 0
    assert x.sum(0).item() == 2.5 and x.amax(-1).item() == 2.5
    assert x.logsumexp(0).item() == pytest.approx(2.5)


def test_bad_dims_raise_index_error_with_op_name(rng):
    x = bm.tensor(rng.standard_normal((2, 3)))
    for name, call in [("sum", lambda: x.sum(2)), ("mean", lambda: x.mean(-3)), ("prod", lambda: x.prod(5)),
                       ("max", lambda: x.max(2)), ("amin", lambda: x.amin((0, 7))),
                       ("argmax", lambda: x.argmax(3)), ("var", lambda: x.var(2)), ("std", lambda: x.std(-4)),
                       ("logsumexp", lambda: x.logsumexp(2)), ("norm", lambda: x.norm(dim=2)),
                       ("all", lambda: x.all(2)), ("any", lambda: x.any(-3))]:
        with pytest.raises(IndexError, match=rf"\[{name}\]"):
            call()
    with pytest.raises(ValueError, match=r"\[sum\].*more than once"):
        x.sum((0, 0))
    with pytest.raises(TypeError, match=r"\[max\]"):
        x.max((0, 1))
    with pytest.raises(ValueError, match=r"\[norm\]"):
        x.norm("nuc")


# ---------------------------------------------------------------- gradients

def leaf(a):
    return bm.tensor(a, dtype=bm.float64, requires_grad=True)


@pytest.mark.parametrize("dim", [None, 1, (0, 2), -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_gradcheck_smooth_reductions(rng, dim, keepdim):
    a = rng.standard_normal((2, 3, 4))
    x = leaf(a)
    k = kw(dim, keepdim)
    assert bm.autograd.gradcheck(lambda t: t.sum(**k), [x])
    assert bm.autograd.gradcheck(lambda t: t.transpose(0, 2).mean(**k), [x])
    assert bm.autograd.gradcheck(lambda t: t.prod(**k), [x])
    assert bm.autograd.gradcheck(lambda t: t.var(**k), [x])
    assert bm.autograd.gradcheck(lambda t: t.std(**k), [x])
    assert bm.autograd.gradcheck(lambda t: t.norm(**k), [x])
    assert bm.autograd.gradcheck(lambda t: t.amax(**k), [x])
    assert bm.autograd.gradcheck(lambda t: t.amin(**k), [x])
    if dim is not None:
        assert bm.autograd.gradcheck(lambda t: t.transpose(0, 1).logsumexp(dim, keepdim=keepdim), [x])


def test_gradcheck_prod_with_a_zero(rng):
    a = rng.standard_normal((3, 4))
    a[1, 2] = 0.0
    a[2, 0] = a[2, 3] = 0.0
    assert bm.autograd.gradcheck(lambda t: t.prod(1), [leaf(a)])
    assert bm.autograd.gradcheck(lambda t: t.prod(), [leaf(a)])


@pytest.mark.parametrize("p", [1, 3, float("inf"), float("-inf")])
def test_gradcheck_norm_orders(rng, p):
    a = rng.standard_normal((3, 4))
    assert bm.autograd.gradcheck(lambda t: t.norm(p, dim=1), [leaf(a)])
    assert bm.autograd.gradcheck(lambda t: t.norm(p), [leaf(a)])


def test_gradcheck_max_min_with_dim(rng):
    a = rng.standard_normal((3, 4, 2))
    x = leaf(a)
    assert bm.autograd.gradcheck(lambda t: t.max(1).values, [x])
    assert bm.autograd.gradcheck(lambda t: t.min(dim=-1, keepdim=True)[0], [x])
    assert bm.autograd.gradcheck(lambda t: t.max(), [x])
    assert bm.autograd.gradcheck(lambda t: bm.min(t), [x])


def test_extremum_gradients_at_ties():
    x = leaf(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]))
    x.amax(1).sum().backward()
    assert_close(x.grad, np.array([[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]]))
    y = leaf(np.array([[1.0, 3.0, 3.0]]))
    y.max(1).values.sum().backward()  # with dim: the gradient goes to the returned index
    assert_close(y.grad, np.array([[0.0, 1.0, 0.0]]))
    z = leaf(np.array([4.0, 1.0, 4.0]))
    z.max().backward()
    assert_close(z.grad, np.array([0.5, 0.0, 0.5]))


def test_half_gradients_flow(rng):
    x = bm.tensor(rng.standard_normal((3, 4)), dtype=bm.float16, requires_grad=True)
    (x.sum(1) * 2).sum().backward()
    assert x.grad.dtype == bm.float16
    assert_close(x.grad, np.full((3, 4), 2.0))
    y = bm.tensor(rng.standard_normal((3, 4)), dtype=bm.float32, requires_grad=True)
    y.var(1).sum().backward()
    a = y.detach().numpy().astype(np.float64)
    assert_close(y.grad, 2 * (a - a.mean(1, keepdims=True)) / 3, atol=1e-5, rtol=1e-5)


def test_max_min_of_two_tensors_is_elementwise(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert_close(bm.max(bm.tensor(a), bm.tensor(b)), np.maximum(a, b))
    assert_close(bm.tensor(a).min(bm.tensor(b)), np.minimum(a, b))
