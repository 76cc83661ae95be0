"""cuda tier: unary ops (forward, in place and backward through autograd), where and
masked_fill, arange/linspace, tril/triu and flip on the GPU against the same ops on the
CPU: odd sizes, one past 2^20, misaligned, transposed and broadcast inputs, every dtype the
CPU accepts. Skips without a GPU."""
import numpy as np
import pytest

import bigmodel as bm
from _cuda import host, requires_cuda

pytestmark = requires_cuda

FLOATS = [bm.float32, bm.float64, bm.float16, bm.bfloat16]
INTS = [bm.int32, bm.int64]
SIZES = [1, 7, 33, 1000, 1023]
# CUDA's libm and glibc differ by an ulp or two; half types may round that to one of theirs.
TOL = {bm.float32: (1e-6, 1e-5), bm.float64: (1e-12, 1e-12), bm.float16: (1e-3, 1e-3),
       bm.bfloat16: (1e-2, 1e-2)}


def make(rng, shape, dtype, positive=False):
    """Random, never-zero inputs in the op's domain: positive -> [0.1, 5), else N(0, 2)."""
    if dtype == bm.bool:
        return bm.tensor(rng.random(shape) > 0.5)
    if dtype in INTS:
        lo = 1 if positive else -50
        return bm.tensor(rng.integers(lo, 50, size=shape)).to(dtype)
    a = rng.uniform(0.1, 5.0, shape) if positive else rng.standard_normal(shape) * 2
    return bm.tensor(a).to(dtype)


def check(gpu_result, cpu_result, exact=False):
    assert gpu_result.is_cuda
    assert gpu_result.dtype == cpu_result.dtype and gpu_result.shape == cpu_result.shape
    atol, rtol = (0, 0) if exact else TOL.get(cpu_result.dtype, (0, 0))
    np.testing.assert_allclose(host(gpu_result), host(cpu_result), atol=atol, rtol=rtol)


# name -> (function, positive domain, defined on integers)
OPS = {
    "neg": (bm.neg, False, True), "abs": (bm.abs, False, True), "sign": (bm.sign, False, True),
    "relu": (bm.relu, False, True), "square": (bm.square, False, True),
    "clamp": (lambda x: bm.clamp(x, -1, 2), False, True),
    "clamp_min": (lambda x: bm.clamp(x, min=-1), False, True),
    "clamp_max": (lambda x: bm.clamp(x, max=1), False, True),
    "exp": (bm.exp, False, False), "log": (bm.log, True, False), "log1p": (bm.log1p, True, False),
    "expm1": (bm.expm1, False, False), "sqrt": (bm.sqrt, True, False), "rsqrt": (bm.rsqrt, True, False),
    "sin": (bm.sin, False, False), "cos": (bm.cos, False, False), "tanh": (bm.tanh, False, False),
    "sigmoid": (bm.sigmoid, False, False), "erf": (bm.erf, False, False),
    "reciprocal": (bm.reciprocal, True, False),
    "gelu": (bm.nn.functional.gelu, False, False),
    "gelu_tanh": (lambda x: bm.nn.functional.gelu(x, approximate="tanh"), False, False),
    "silu": (bm.nn.functional.silu, False, False),
    "softplus": (lambda x: bm.softplus(x, beta=2.0, threshold=3.0), False, False),
    "floor": (bm.floor, False, False), "ceil": (bm.ceil, False, False),
    "round": (lambda x: bm.round(x * 4), False, False),  # many .5 ties: half to even
    "trunc": (bm.trunc, False, False),
}


@pytest.mark.parametrize("dtype", FLOATS + INTS, ids=str)
@pytest.mark.parametrize("name", sorted(OPS))
def test_unary_matches_cpu(rng, name, dtype):
    fn, positive, ints = OPS[name]
    if dtype in INTS and not ints:
        pytest.skip(f"{name} takes integers through float32: covered by test_integer_inputs_promote")
    for n in SIZES:
        x = make(rng, (n,), dtype, positive)
        g = x.cuda()
        check(fn(g), fn(x))
        if n > 1:  # one element in: misaligned for 16-byte packs, the strided path
            check(fn(g[1:]), fn(x[1:]))


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_unary_noncontiguous_and_broadcast(rng, dtype):
    x = make(rng, (33, 31), dtype)
    row = make(rng, (1, 31), dtype)
    for name, (fn, positive, _) in OPS.items():
        if positive:
            continue
        check(fn(x.cuda().t()), fn(x.t()))
        check(fn(x.cuda()[:, ::3]), fn(x[:, ::3]))
        check(fn(row.cuda().expand(7, 31)), fn(row.expand(7, 31)))  # a stride-0 dim


def test_unary_large_grid_stride(rng):
    x = make(rng, ((1 << 20) + 37,), bm.float32)
    check(bm.sigmoid(x.cuda()), bm.sigmoid(x))
    check(bm.neg(x.cuda()[1:]), bm.neg(x[1:]))
    h = x.half()
    check(bm.exp(h.cuda()), bm.exp(h))


def test_integer_inputs_promote(rng):
    x = make(rng, (1023,), bm.int64, positive=True)
    for fn in (bm.sqrt, bm.log, bm.sigmoid, lambda t: bm.clamp(t, 0.5, 30.5)):
        r = fn(x.cuda())
        assert r.dtype == bm.float32
        check(r, fn(x))


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_predicates(rng, dtype):
    special = bm.tensor([float("inf"), float("-inf"), float("nan"), 1.5, -0.0]).to(dtype)
    for x in (make(rng, (1000,), dtype), special):
        for fn in (bm.isnan, bm.isinf, bm.isfinite):
            check(fn(x.cuda()), fn(x), exact=True)


def test_logical_and_bitwise_not(rng):
    b = make(rng, (1023,), bm.bool)
    check(bm.logical_not(b.cuda()), bm.logical_not(b), exact=True)
    check(bm.bitwise_not(b.cuda()), bm.bitwise_not(b), exact=True)
    check(~b.cuda(), ~b, exact=True)
    for dt in INTS:
        i = make(rng, (1023,), dt)
        check(bm.bitwise_not(i.cuda()), bm.bitwise_not(i), exact=True)
        check(bm.logical_not(i.cuda()), bm.logical_not(i), exact=True)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_inplace_on_views(rng, dtype):
    x = make(rng, (33, 31), dtype)
    g = x.cuda()
    x.t().exp_()
    g.t().exp_()
    check(g, x)
    x[:, 1:].clamp_(0.5, 2.0)
    g[:, 1:].clamp_(0.5, 2.0)
    check(g, x)
    x[::2].sigmoid_()
    g[::2].sigmoid_()
    check(g, x)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("name", sorted(OPS))
def test_unary_backward_matches_cpu(rng, name, dtype):
    fn, positive, _ = OPS[name]
    for n in (7, 1023):
        x = make(rng, (n,), dtype, positive)
        w = make(rng, (n,), dtype)
        xc = x.clone().requires_grad_()
        xg = x.cuda().requires_grad_()
        fn(xc).backward(w)
        fn(xg).backward(w.cuda())
        assert xg.grad is not None and xg.grad.is_cuda
        check(xg.grad, xc.grad)


@pytest.mark.parametrize("dtype", FLOATS + INTS + [bm.bool], ids=str)
def test_where_and_masked_fill(rng, dtype):
    for n in SIZES:
        c, a, b = make(rng, (n,), bm.bool), make(rng, (n,), dtype), make(rng, (n,), dtype)
        check(bm.where(c.cuda(), a.cuda(), b.cuda()), bm.where(c, a, b), exact=True)
    c = make(rng, (7, 1, 5), bm.bool)
    a, b = make(rng, (33, 5), dtype), make(rng, (7, 33, 1), dtype)
    check(bm.where(c.cuda(), a.cuda(), b.cuda()), bm.where(c, a, b), exact=True)  # three-way broadcast
    at = make(rng, (5, 33), dtype).t()
    check(bm.where(c.cuda(), at.cuda(), b.cuda()), bm.where(c, at, b), exact=True)
    m = make(rng, (33, 5), bm.bool)
    check(a.cuda().masked_fill(m.cuda(), 1), a.masked_fill(m, 1), exact=True)
    ac, ag = a.clone(), a.cuda()
    ac.masked_fill_(m, 0)
    ag.masked_fill_(m.cuda(), 0)  # out aliases the input
    check(ag, ac, exact=True)


def test_where_backward_on_cuda(rng):
    c = make(rng, (33, 5), bm.bool)
    a, b = make(rng, (33, 5), bm.float32), make(rng, (5,), bm.float32)
    grads = []
    for dev in ("cpu", "cuda"):
        ad, bd = a.detach().to(dev).requires_grad_(), b.detach().to(dev).requires_grad_()
        (bm.where(c.to(dev), ad, bd) * 3).sum().backward()
        grads.append((ad.grad.cpu().numpy(), bd.grad.cpu().numpy()))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-6)


@pytest.mark.parametrize("dtype", FLOATS + INTS, ids=str)
def test_arange_linspace_bitwise(dtype):
    check(bm.arange(1023, dtype=dtype, device="cuda"), bm.arange(1023, dtype=dtype), exact=True)
    check(bm.arange(-7, 1000, 3, dtype=dtype, device="cuda"), bm.arange(-7, 1000, 3, dtype=dtype), exact=True)
    check(bm.arange(0.1, 33.3, 0.37, dtype=dtype, device="cuda"), bm.arange(0.1, 33.3, 0.37, dtype=dtype),
          exact=True)
    for n in (1, 2, 7, 33, 1000, 1023):
        check(bm.linspace(-3.3, 17.1, n, dtype=dtype, device="cuda"), bm.linspace(-3.3, 17.1, n, dtype=dtype),
              exact=True)
        check(bm.linspace(5, -1, n, dtype=dtype, device="cuda"), bm.linspace(5, -1, n, dtype=dtype), exact=True)


def test_arange_linspace_large():
    n = (1 << 20) + 3
    check(bm.arange(n, device="cuda"), bm.arange(n), exact=True)
    check(bm.linspace(0, 1, n, device="cuda"), bm.linspace(0, 1, n), exact=True)


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64, bm.float16, bm.bfloat16, bm.int32, bm.int64, bm.bool],
                         ids=str)
def test_tril_triu_flip(rng, dtype):
    for shape in ((1, 1), (7, 33), (33, 7), (3, 5, 1000), (2, 1023, 3)):
        x = make(rng, shape, dtype)
        g = x.cuda()
        for d in (-40, -2, 0, 1, 5, 1100):
            check(bm.tril(g, d), bm.tril(x, d), exact=True)
            check(bm.triu(g, d), bm.triu(x, d), exact=True)
        check(bm.tril(g.transpose(-1, -2), 1), bm.tril(x.transpose(-1, -2), 1), exact=True)
        for dims in ([0], [-1], [0, -1]):
            check(bm.flip(g, dims), bm.flip(x, dims), exact=True)
        check(bm.flip(g.transpose(0, -1), [0]), bm.flip(x.transpose(0, -1), [0]), exact=True)
    x = make(rng, (4, 1, 5, 6), dtype)
    check(bm.flip(x.cuda()[..., 1::2], [1, 3]), bm.flip(x[..., 1::2], [1, 3]), exact=True)


def test_tril_flip_backward_on_cuda(rng):
    x = make(rng, (33, 7), bm.float32)
    w = make(rng, (33, 7), bm.float32)
    xc, xg = x.clone().requires_grad_(), x.cuda().requires_grad_()
    (bm.flip(bm.triu(xc, 1), [0]) * w).sum().backward()
    (bm.flip(bm.triu(xg, 1), [0]) * w.cuda()).sum().backward()
    check(xg.grad, xc.grad, exact=True)
