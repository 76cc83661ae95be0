"""cuda tier: reductions on the GPU (sum, mean, prod, amax/amin, max/min with indices,
argmax/argmin, all/any, var/std, logsumexp, norm and their backward) against the same ops on
the CPU: odd sizes, long rows, full reductions, every dim, keepdim, non-contiguous inputs,
several dtypes; and autograd of a small MLP on CUDA. Skips without a GPU."""
import numpy as np
import pytest

import bigmodel as bm
from _cuda import host, requires_cuda

pytestmark = requires_cuda

FLOATS = [bm.float32, bm.float64, bm.float16, bm.bfloat16]
INTS = [bm.int32, bm.int64]
SIZES = [1, 7, 33, 1000, 1023]
# GPU sums accumulate in float (float32/16/bf16) in another order than the CPU's double:
# relative tolerances one or two units of the result's precision, absolute ones scaled by n.
RTOL = {bm.float32: 2e-5, bm.float64: 1e-10, bm.float16: 2e-3, bm.bfloat16: 1.6e-2}


def make(rng, shape, dtype, kind="normal"):
    if dtype == bm.bool:
        return bm.tensor(rng.random(shape) > 0.3)
    if dtype in INTS:
        if kind == "unit":  # products of +-1 and 2 stay small
            return bm.tensor(rng.choice([-1, 1, 1, 2], size=shape)).to(dtype)
        return bm.tensor(rng.integers(-50, 50, size=shape)).to(dtype)
    if kind == "unit":  # products near 1
        a = rng.uniform(0.98, 1.02, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    elif kind == "positive":
        a = rng.uniform(0.5, 1.5, size=shape)
    else:
        a = rng.standard_normal(shape) * 2
    return bm.tensor(a).to(dtype)


def check(gpu, cpu, n=1, atol=None):
    """gpu result vs cpu result of one op; n is the number of reduced elements."""
    assert gpu.is_cuda, "result should stay on the GPU"
    assert gpu.dtype == cpu.dtype, (gpu.dtype, cpu.dtype)
    assert tuple(gpu.shape) == tuple(cpu.shape), (gpu.shape, cpu.shape)
    if cpu.dtype in RTOL:
        rtol = RTOL[cpu.dtype]
        if atol is None:
            atol = rtol * 4 * np.sqrt(max(n, 1))
        np.testing.assert_allclose(host(gpu), host(cpu), atol=atol, rtol=rtol)
    else:
        np.testing.assert_array_equal(host(gpu), host(cpu))


def both(x, fn):
    return fn(x.cuda()), fn(x)


# ---- plain reductions over odd sizes, rows, columns and everything ----

@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", FLOATS + INTS + [bm.bool], ids=str)
def test_sum_prod_extrema_truth_match_cpu(rng, dtype, n):
    for shape, dim in [((n,), None), ((5, n), 1), ((n, 5), 0), ((3, n), None)]:
        x = make(rng, shape, dtype)
        cols = n if dim is not None else int(np.prod(shape))
        ops = [lambda t: t.sum(dim) if dim is not None else t.sum(),
               lambda t: t.amax(dim) if dim is not None else t.amax(),
               lambda t: t.amin(dim) if dim is not None else t.amin(),
               lambda t: t.all(dim) if dim is not None else t.all(),
               lambda t: t.any(dim) if dim is not None else t.any()]
        if dtype in FLOATS:
            ops.append(lambda t: t.mean(dim) if dim is not None else t.mean())
        for op in ops:
            g, c = both(x, op)
            check(g, c, cols)
        p = make(rng, shape, dtype, "unit")
        g, c = both(p, lambda t: t.prod(dim) if dim is not None else t.prod())
        check(g, c, cols)


@pytest.mark.parametrize("dtype", [bm.float32, bm.float16, bm.bfloat16, bm.int64], ids=str)
def test_long_rows_and_columns_split_across_blocks(rng, dtype):
    n = 300_007  # > 100k: the split (two-pass) path
    for shape, dim in [((1, n), 1), ((3, n), 1), ((n, 3), 0), ((n, 2), 1), ((7, n // 7), 0)]:
        x = make(rng, shape, dtype, "positive")
        cols = shape[dim]
        for op in (lambda t: t.sum(dim), lambda t: t.amax(dim), lambda t: t.amin(dim)):
            g, c = both(x, op)
            check(g, c, cols, atol=0 if dtype == bm.int64 else None)
        gv, gi = x.cuda().max(dim)
        cv, ci = x.max(dim)
        check(gv, cv)
        np.testing.assert_array_equal(host(gi), host(ci))


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64, bm.int64, bm.bool], ids=str)
def test_full_reduction_of_more_than_4m_elements(rng, dtype):
    n = (1 << 22) + 333
    x = make(rng, (n,), dtype, "positive")
    g, c = both(x, lambda t: t.sum())
    if dtype in (bm.float32, bm.float64):
        # positive data: the relative error of a float tree sum stays ~log2(n) * eps
        np.testing.assert_allclose(host(g), host(c), rtol=1e-5 if dtype == bm.float32 else 1e-12)
        check(*both(x, lambda t: t.mean()), atol=0)
        check(*both(x, lambda t: t.amax()))
        check(*both(x, lambda t: t.norm()), atol=0)
    else:
        check(g, c)
    np.testing.assert_array_equal(host(x.cuda().argmax()), host(x.argmax()))
    np.testing.assert_array_equal(host(x.cuda().argmin()), host(x.argmin()))
    # the same elements as a 2-d tensor reduced over both dims, and over the leading one
    y = x[: (n // 1024) * 1024].reshape(-1, 1024)
    check(*both(y, lambda t: t.sum((0, 1))), n)
    check(*both(y, lambda t: t.sum(0)), y.shape[0])


DIMS = [None, 0, 1, 2, (0, 2), (1, 2), (0, 1), (0, 1, 2), -1]


def views(x):
    """The tensor as given, transposed (non-contiguous) and sliced with a step."""
    return [("contig", x), ("transposed", x.transpose(0, 2)), ("sliced", x[:, ::2])]


@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_every_dim_keepdim_and_views(rng, dim, keepdim):
    base = make(rng, (6, 9, 11), bm.float32)
    for name, x in views(base):
        kw = {} if dim is None else {"dim": dim, "keepdim": keepdim}
        for op in ("sum", "mean", "amax", "amin", "var", "std", "norm", "prod"):
            src = x if op != "prod" else (x.abs() * 0.05 + 0.98)
            g, c = both(src, lambda t: getattr(t, op)(**kw))
            check(g, c, src.numel())
        if dim is not None:
            check(*both(x, lambda t: t.logsumexp(dim, keepdim=keepdim)), x.numel())
        if isinstance(dim, int):
            gv, gi = x.cuda().max(dim, keepdim=keepdim)
            cv, ci = x.max(dim, keepdim=keepdim)
            check(gv, cv)
            np.testing.assert_array_equal(host(gi), host(ci), err_msg=name)
            np.testing.assert_array_equal(host(x.cuda().argmin(dim, keepdim=keepdim)),
                                          host(x.argmin(dim, keepdim=keepdim)), err_msg=name)


@pytest.mark.parametrize("dtype", FLOATS + INTS + [bm.bool], ids=str)
@pytest.mark.parametrize("n", SIZES)
def test_max_min_with_dim_and_argmax_all_dtypes(rng, dtype, n):
    x = make(rng, (4, n), dtype)
    for dim in (0, 1):
        for is_max in (True, False):
            gv, gi = (x.cuda().max(dim) if is_max else x.cuda().min(dim))
            cv, ci = (x.max(dim) if is_max else x.min(dim))
            check(gv, cv)
            np.testing.assert_array_equal(host(gi), host(ci))
        np.testing.assert_array_equal(host(x.cuda().argmax(dim)), host(x.argmax(dim)))
    np.testing.assert_array_equal(host(x.cuda().argmin()), host(x.argmin()))


def test_ties_take_the_first_index_and_the_first_nan_wins():
    n = 200_003  # long enough for several blocks per row: ties across blocks
    a = np.zeros((3, n))
    a[:, :] = -1.0
    a[0, [17, 5000, 150_000]] = 7.0               # three equal maxima
    a[1, [99_999, 100_000]] = [np.nan, np.nan]    # two NaNs: the first wins
    a[1, 3] = 50.0
    a[2, [n - 1, 0]] = 3.0                        # tie at both ends
    x = bm.tensor(a).float()
    for t in (x, x.transpose(0, 1).contiguous().transpose(0, 1)):  # row and column layouts
        gi, ci = t.cuda().argmax(1), t.argmax(1)
        np.testing.assert_array_equal(host(gi), host(ci))
        assert host(gi).tolist() == [17, 99_999, 0]
        np.testing.assert_array_equal(host(t.cuda().argmin(1)), host(t.argmin(1)))
        gv, _ = t.cuda().max(1)
        assert np.isnan(host(gv)[1]) and host(gv)[0] == 7.0
        assert np.isnan(host(t.cuda().amax(1))[1]) and np.isnan(host(t.cuda().amin(1))[1])
        assert np.isnan(host(t.cuda().sum(1))[1])


# ---- statistics ----

@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("n", SIZES + [150_001])
def test_var_std_logsumexp_norm_match_cpu(rng, dtype, n):
    x = make(rng, (3, n), dtype)
    for correction in (0, 1, 2):
        check(*both(x, lambda t: t.var(1, correction=correction)))
        check(*both(x, lambda t: t.std(1, correction=correction)))
    check(*both(x, lambda t: t.var(0)))
    check(*both(x, lambda t: t.logsumexp(1)))
    check(*both(x, lambda t: t.logsumexp(0)))
    for p in (0, 1, 2, 3, 0.5, float("inf"), float("-inf")):
        g, c = both(x, lambda t: t.norm(p, 1))
        check(g, c, n, atol=RTOL[dtype] * float(np.abs(host(c)).max()) * 4 + 1e-6)


def test_logsumexp_special_values():
    inf, nan = float("inf"), float("nan")
    a = np.array([[-inf, -inf, -inf], [1.0, inf, 2.0], [1.0, nan, 2.0], [-inf, 0.5, 1e3], [1e30, 1e30, -1e30]])
    for dtype in (bm.float32, bm.float64):
        x = bm.tensor(a).to(dtype)
        g, c = both(x, lambda t: t.logsumexp(1))
        np.testing.assert_allclose(host(g), host(c), rtol=1e-6)  # inf == inf, nan == nan
    empty = bm.zeros(4, 0).cuda()
    assert host(empty.logsumexp(1)).tolist() == [-inf] * 4
    assert host(empty.sum(1)).tolist() == [0.0] * 4
    assert host(empty.prod(1)).tolist() == [1.0] * 4


# ---- backward ----

def grads_on(x_cpu, fn):
    out = []
    for dev in ("cuda", "cpu"):
        x = x_cpu.detach().to(dev).requires_grad_(True)
        y = fn(x)
        w = bm.tensor(np.linspace(0.5, 1.5, y.numel()).reshape(tuple(y.shape))).to(y.dtype).to(dev)
        (y * w).sum().backward()
        out.append(x.grad)
    return out


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64], ids=str)
@pytest.mark.parametrize("n", [1, 7, 33, 1023, 120_001])
def test_reduction_gradients_match_cpu(rng, dtype, n):
    a = rng.standard_normal((3, n))
    a[0, :: max(1, n // 4)] = 10.0  # ties for amax
    x = bm.tensor(a).to(dtype)
    fns = [lambda t: t.amax(1), lambda t: t.amin(0), lambda t: t.max(1)[0], lambda t: t.min(0)[0],
           lambda t: t.max(), lambda t: t.sum(1), lambda t: t.mean(0), lambda t: t.var(1),
           lambda t: t.std(1), lambda t: t.logsumexp(1)]
    for p in (1, 2, 3, float("inf")):
        fns.append(lambda t, p=p: t.norm(p, 1))
    for fn in fns:
        g, c = grads_on(x, fn)
        check(g, c)
    small = bm.tensor(rng.uniform(0.9, 1.1, size=(3, min(n, 40)))).to(dtype)
    g, c = grads_on(small, lambda t: t.prod(1))
    check(g, c)


def test_prod_gradient_with_zeros():
    a = np.array([[2.0, 0.0, 3.0, 4.0], [0.0, 1.5, 0.0, 2.0], [1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 2.0, 0.0]])
    for dtype in (bm.float32, bm.float64):
        g, c = grads_on(bm.tensor(a).to(dtype), lambda t: t.prod(1))
        check(g, c)
        g, c = grads_on(bm.tensor(a).to(dtype), lambda t: t.prod(0))
        check(g, c)


def test_norm_gradient_of_a_zero_row_is_zero():
    a = np.array([[0.0, 0.0, 0.0], [3.0, -4.0, 0.0]])
    for p in (1, 2, 3, float("inf")):
        g, c = grads_on(bm.tensor(a), lambda t: t.norm(p, 1))
        check(g, c)


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64], ids=str)
def test_mlp_backward_on_cuda_matches_cpu(rng, dtype):
    """matmul, add with broadcast (sum_to in backward needs reduce_kernel), relu, sum, mean."""
    xs = rng.standard_normal((9, 5))
    w1, b1 = rng.standard_normal((5, 7)), rng.standard_normal(7)
    w2, b2 = rng.standard_normal((7, 3)), rng.standard_normal((1, 3))
    grads = {}
    for dev in ("cuda", "cpu"):
        params = [bm.tensor(v).to(dtype).to(dev).requires_grad_(True) for v in (w1, b1, w2, b2)]
        x = bm.tensor(xs).to(dtype).to(dev)
        h = bm.relu(bm.matmul(x, params[0]) + params[1])
        y = bm.matmul(h, params[2]) + params[3]
        loss = (y * y).mean() + y.sum(0).amax()
        loss.backward()
        grads[dev] = [p.grad for p in params] + [loss]
    for g, c in zip(grads["cuda"], grads["cpu"]):
        assert g.is_cuda
        np.testing.assert_allclose(host(g), host(c), rtol=1e-4 if dtype == bm.float32 else 1e-10, atol=1e-5)
