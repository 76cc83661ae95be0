"""Elementwise ops against NumPy float64 references: unary math and activations, clamp,
binary ops with broadcasting and promotion, comparisons, logical/bitwise ops, where,
masked_fill, operators, gradients (gradcheck), in-place rules and error messages."""
import math

import numpy as np
import pytest

import bigmodel as bm
from conftest import assert_close

FLOATS = [bm.float32, bm.float64, bm.float16, bm.bfloat16]
_erf = np.vectorize(math.erf)


def _np(t):
    t = t.detach()
    return (t.float() if t.dtype == bm.bfloat16 else t).numpy()


def _quantized(arr, dtype):
    """The tensor of `arr` in dtype, and the float64 values it actually holds."""
    t = bm.tensor(arr, dtype=dtype)
    return t, _np(t).astype(np.float64)


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.log1p(np.exp(beta * x)) / beta)


# name -> (bm function, NumPy reference, input domain). "pos": positive values only,
# "unit": |x| < 1, "any": signed values kept away from 0 (kinks of relu/abs/sign).
UNARY = {
    "neg": (bm.neg, np.negative, "any"),
    "abs": (bm.abs, np.abs, "any"),
    "exp": (bm.exp, np.exp, "any"),
    "log": (bm.log, np.log, "pos"),
    "log1p": (bm.log1p, np.log1p, "pos"),
    "expm1": (bm.expm1, np.expm1, "any"),
    "sqrt": (bm.sqrt, np.sqrt, "pos"),
    "rsqrt": (bm.rsqrt, lambda x: 1 / np.sqrt(x), "pos"),
    "sin": (bm.sin, np.sin, "any"),
    "cos": (bm.cos, np.cos, "any"),
    "tanh": (bm.tanh, np.tanh, "any"),
    "sigmoid": (bm.sigmoid, lambda x: 1 / (1 + np.exp(-x)), "any"),
    "relu": (bm.relu, lambda x: np.maximum(x, 0), "any"),
    "gelu": (bm.gelu, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))), "any"),
    "gelu_tanh": (lambda t: bm.gelu(t, approximate="tanh"), _gelu_tanh, "any"),
    "silu": (bm.silu, lambda x: x / (1 + np.exp(-x)), "any"),
    "softplus": (bm.softplus, _softplus, "any"),
    "softplus_beta": (lambda t: bm.softplus(t, beta=2.0, threshold=1.5), lambda x: _softplus(x, 2.0, 1.5), "any"),
    "sign": (bm.sign, np.sign, "any"),
    "floor": (bm.floor, np.floor, "any"),
    "ceil": (bm.ceil, np.ceil, "any"),
    "round": (bm.round, np.round, "any"),
    "trunc": (bm.trunc, np.trunc, "any"),
    "reciprocal": (bm.reciprocal, lambda x: 1 / x, "any"),
    "square": (bm.square, np.square, "any"),
    "erf": (bm.erf, _erf, "any"),
    "clamp": (lambda t: bm.clamp(t, -0.7, 1.1), lambda x: np.clip(x, -0.7, 1.1), "any"),
    "clamp_min": (lambda t: t.clamp(min=0.3), lambda x: np.maximum(x, 0.3), "any"),
    "clamp_max": (lambda t: bm.clip(t, max=-0.2), lambda x: np.minimum(x, -0.2), "any"),
}
# Ops whose reference is not smooth at integers: values must not sit on the jump.
ROUNDING = {"floor", "ceil", "round", "trunc", "sign"}


def _inputs(rng, domain, shape):
    x = rng.uniform(0.2, 2.5, shape) if domain == "pos" else rng.uniform(-2.5, 2.5, shape)
    if domain == "any":
        x = np.where(np.abs(x) < 0.1, 0.37, x)  # away from the kinks at 0
    x = np.where(np.abs(x - np.round(x)) < 0.05, x + 0.2, x)  # away from integers (rounding ops)
    for bound in (-0.7, 1.1, 0.3, -0.2):  # and from the clamp bounds
        x = np.where(np.abs(x - bound) < 0.03, x + 0.07, x)
    return x


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_numpy(name, dtype, rng):
    fn, ref, domain = UNARY[name]
    x = _inputs(rng, domain, (3, 5))
    t, xq = _quantized(x, dtype)
    out = fn(t)
    assert out.dtype == dtype
    assert_close(out, ref(xq), dtype=dtype)
    # Non-contiguous views: a transposed copy and a narrowed slice.
    tt = bm.tensor(np.ascontiguousarray(x.T), dtype=dtype).transpose(0, 1)
    assert not tt.is_contiguous()
    assert_close(fn(tt), ref(xq), dtype=dtype)
    sliced = t.narrow(1, 1, 3)
    assert_close(fn(sliced), ref(xq[:, 1:4]), dtype=dtype)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradcheck(name, rng):
    fn, _, domain = UNARY[name]
    x = bm.tensor(_inputs(rng, domain, (3, 4)), requires_grad=True)
    assert bm.autograd.gradcheck(fn, [x])


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sigmoid", "tanh", "sin", "erf", "reciprocal", "rsqrt"])
def test_integer_inputs_promote_to_float32(name):
    fn, ref, _ = UNARY[name]
    x = np.array([1, 2, 3, 4])
    out = fn(bm.tensor(x))
    assert out.dtype == bm.float32
    assert_close(out, ref(x.astype(np.float64)))


def test_integer_unary_keeps_dtype():
    x = np.array([[-3, 5, 0], [7, -1, 2]], dtype=np.int32)
    t = bm.tensor(x)
    for fn, ref in [(bm.neg, np.negative), (bm.abs, np.abs), (bm.relu, lambda v: np.maximum(v, 0)),
                    (bm.sign, np.sign), (bm.square, np.square), (bm.floor, lambda v: v),
                    (lambda v: v.clamp(-1, 4), lambda v: np.clip(v, -1, 4))]:
        out = fn(t)
        assert out.dtype == bm.int32
        np.testing.assert_array_equal(out.numpy(), ref(x))
    assert bm.clamp(t, min=0.5).dtype == bm.float32  # float bound lifts to float32
    assert_close(bm.clamp(t, min=0.5), np.maximum(x, 0.5))


def test_round_is_half_to_even_and_broadcast_inputs():
    assert bm.tensor([0.5, 1.5, 2.5, -0.5, -1.5]).round().tolist() == [0.0, 2.0, 2.0, -0.0, -2.0]
    # A stride-0 (expanded) input.
    t = bm.tensor([[0.25], [1.5]]).expand(2, 3)
    assert_close(t.exp(), np.exp(np.broadcast_to([[0.25], [1.5]], (2, 3))))


def test_predicates_and_nan_propagation():
    x = bm.tensor([1.0, float("nan"), float("inf"), -float("inf"), -2.0])
    assert x.isnan().tolist() == [False, True, False, False, False]
    assert bm.isinf(x).tolist() == [False, False, True, True, False]
    assert bm.isfinite(x).tolist() == [True, False, False, False, True]
    assert x.isnan().dtype == bm.bool
    i = bm.tensor([1, 2])
    assert i.isnan().tolist() == [False, False] and i.isfinite().tolist() == [True, True]
    assert np.isnan(x.clamp(0, 1).tolist()[1])
    assert np.isnan(bm.maximum(x, bm.zeros(5)).tolist()[1])
    assert np.isnan(bm.minimum(bm.zeros(5), x).tolist()[1])
    assert bm.relu(bm.tensor([-1.0, 2.0], dtype=bm.float16)).tolist() == [0.0, 2.0]


def test_logical_not_and_bitwise_not():
    b = bm.tensor([True, False, True])
    assert bm.logical_not(b).tolist() == [False, True, False]
    assert (~b).tolist() == [False, True, False]
    assert bm.logical_not(bm.tensor([0.0, 2.5])).tolist() == [True, False]
    assert (~bm.tensor([0, 5])).tolist() == [-1, -6]
    with pytest.raises(TypeError, match=r"\[bitwise_not\]"):
        ~bm.tensor([1.0])


# ---- in-place unary ---------------------------------------------------------------------
INPLACE = ["neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "reciprocal",
           "square", "erf", "expm1", "log1p", "floor", "sign"]


@pytest.mark.parametrize("name", INPLACE)
def test_inplace_unary_matches_and_backprops(name, rng):
    fn, ref, domain = UNARY[name]
    x = _inputs(rng, domain, (2, 3))
    t = bm.tensor(x)
    r = getattr(t, name + "_")()
    assert_close(t, ref(x))
    assert_close(r, ref(x))
    # Through a non-leaf: the gradient equals the out-of-place one.
    leaf = bm.tensor(x, requires_grad=True)
    bm.autograd.gradcheck(lambda v: getattr(v * 1.0, name + "_")(), [leaf])


def test_inplace_clamp_and_module_inplace(rng):
    x = rng.uniform(-2, 2, (4, 3))
    t = bm.tensor(x)
    t.clamp_(-0.5, 0.5)
    assert_close(t, np.clip(x, -0.5, 0.5))
    u = bm.tensor(x)
    bm.relu_(u)
    assert_close(u, np.maximum(x, 0))
    leaf = bm.tensor(x + 0.013, requires_grad=True)
    assert bm.autograd.gradcheck(lambda v: (v * 1.0).clamp_(min=-0.5), [leaf])
    i = bm.tensor([-3, 4, 9])
    i.clamp_(0, 5)
    assert i.tolist() == [0, 4, 5]


def test_inplace_result_type_errors():
    i = bm.tensor([1, 2, 3])
    with pytest.raises(TypeError, match=r"\[exp_\].*can't be cast"):
        i.exp_()
    with pytest.raises(TypeError, match=r"\[clamp_\]"):
        i.clamp_(min=0.5)
    with pytest.raises(TypeError, match=r"\[add_\]"):
        i.add_(1.5)
    with pytest.raises(TypeError, match=r"\[pow_\]"):
        i.pow_(0.5)
    with pytest.raises(RuntimeError, match=r"\[exp_\].*leaf"):
        bm.tensor([1.0], requires_grad=True).exp_()


def test_version_counter_catches_modified_saved_tensors():
    x = bm.tensor([0.5, 1.5], dtype=bm.float64, requires_grad=True)
    a = x * 1.0
    y = a.sin()  # saves its input a
    a.add_(1)
    with pytest.raises(RuntimeError, match="modified"):
        y.sum().backward()
    b = x * 1.0
    e = b.exp()  # saves its output e
    e.mul_(2)
    with pytest.raises(RuntimeError, match="modified"):
        e.sum().backward()
    # In-place ops that save only what they need leave untouched graphs valid.
    c = x * 1.0
    s = c.exp()
    c.add_(1)  # exp saved its output, not c
    s.sum().backward()
    assert_close(x.grad, np.exp([0.5, 1.5]))


# ---- binary ops -------------------------------------------------------------------------
BINARY = {
    "pow": (bm.pow, np.power),
    "maximum": (bm.maximum, np.maximum),
    "minimum": (bm.minimum, np.minimum),
    "remainder": (bm.remainder, np.mod),
    "fmod": (bm.fmod, np.fmod),
    "floor_divide": (bm.floor_divide, np.floor_divide),
}


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_broadcast_matches_numpy(name, dtype, rng):
    fn, ref = BINARY[name]
    a = rng.uniform(0.3, 2.0, (3, 1, 4))
    b = rng.uniform(-1.5, 1.5, (2, 4))
    b = np.where(np.abs(b) < 0.2, 0.6, b)
    if name in ("remainder", "fmod", "floor_divide"):
        a = rng.uniform(-4, 4, (3, 1, 4))
    ta, aq = _quantized(a, dtype)
    tb, bq = _quantized(b, dtype)
    out = fn(ta, tb)
    assert out.dtype == dtype and out.shape == (3, 2, 4)
    expected = ref(aq, bq)
    if dtype in (bm.float16, bm.bfloat16) and name in ("remainder", "fmod", "floor_divide"):
        # The quotient rounds in float; compare only where it is not near an integer.
        q = aq / bq
        ok = np.abs(q - np.round(q)) > 0.05
        assert_close(_np(out)[np.broadcast_to(ok, out.shape)], expected[np.broadcast_to(ok, out.shape)], dtype=dtype)
    else:
        assert_close(out, expected, dtype=dtype)
    # Non-contiguous operands.
    tat = bm.tensor(np.ascontiguousarray(a[:, 0, :].T), dtype=dtype).t()
    assert_close(fn(tat, tb.narrow(0, 1, 1)), ref(aq[:, 0, :], bq[1:2]), dtype=dtype,
                 **({} if name not in ("remainder", "fmod", "floor_divide") or dtype in (bm.float32, bm.float64)
                    else {"atol": 1.0}))


def test_integer_binary_ops():
    a = np.array([[7, -7, 9], [-9, 5, 0]])
    b = np.array([3, -2, 4])
    ta, tb = bm.tensor(a), bm.tensor(b)
    np.testing.assert_array_equal(bm.remainder(ta, tb).numpy(), np.mod(a, b))
    np.testing.assert_array_equal(bm.fmod(ta, tb).numpy(), np.fmod(a, b))
    np.testing.assert_array_equal(bm.floor_divide(ta, tb).numpy(), np.floor_divide(a, b))
    np.testing.assert_array_equal((ta % 4).numpy(), np.mod(a, 4))
    np.testing.assert_array_equal((ta // 2).numpy(), np.floor_divide(a, 2))
    np.testing.assert_array_equal(bm.maximum(ta, tb).numpy(), np.maximum(a, b))
    np.testing.assert_array_equal((ta ** 2).numpy(), a ** 2)
    np.testing.assert_array_equal(bm.pow(ta, bm.tensor([0, 1, 3])).numpy(), a ** np.array([0, 1, 3]))
    assert (ta ** 2).dtype == bm.int64
    assert (ta ** 0.5).dtype == bm.float32
    assert (2 ** ta).dtype == bm.int64
    assert (2.0 ** ta).dtype == bm.float32
    with pytest.raises(RuntimeError, match=r"\[pow\].*negative"):
        ta ** -1


def test_pow_forms_and_special_exponents(rng):
    a = rng.uniform(0.5, 2.0, (2, 3))
    t = bm.tensor(a)
    for e in (2, 3, 0.5, -1, 1.7, 0):
        assert_close(t ** e, a ** e)
    assert_close(2.5 ** t, 2.5 ** a)
    assert_close(bm.pow(2.5, t), 2.5 ** a)
    assert_close(t ** bm.tensor(a[0]), a ** a[0])
    u = bm.tensor(a)
    u **= 2
    assert_close(u, a ** 2)
    h = bm.tensor(a, dtype=bm.float16)
    assert_close(h ** 2, _np(h).astype(np.float64) ** 2, dtype=bm.float16)


def test_binary_gradcheck(rng):
    gc = bm.autograd.gradcheck
    a = bm.tensor(rng.uniform(0.5, 2.0, (3, 1)), requires_grad=True)
    b = bm.tensor(rng.uniform(-1.5, 1.5, (1, 4)), requires_grad=True)
    assert gc(lambda x, y: bm.pow(x, y), [a, b])
    assert gc(lambda x: x ** 2.5, [a])
    assert gc(lambda x: x ** 2, [a])
    assert gc(lambda y: 1.7 ** y, [b])
    assert gc(lambda x, y: bm.maximum(x, y), [a, b])
    assert gc(lambda x, y: bm.minimum(x, y), [a, b])
    c = bm.tensor(rng.uniform(-4, 4, (3, 4)), requires_grad=True)
    d = bm.tensor(np.where(rng.random(4) > 0.5, 1.3, -1.7), requires_grad=True)
    assert gc(lambda x, y: bm.remainder(x, y), [c, d])
    assert gc(lambda x, y: bm.fmod(x, y), [c, d])
    assert gc(lambda x, y: bm.lerp(x, y, 0.3), [c, bm.tensor(rng.standard_normal((3, 4)), requires_grad=True)])
    w = bm.tensor(rng.random((3, 4)), requires_grad=True)
    assert gc(lambda x, y, z: bm.lerp(x, y, z), [c, bm.tensor(rng.standard_normal((3, 4)), requires_grad=True), w])
    e = bm.tensor(rng.uniform(0.5, 2.0, (3, 4)), requires_grad=True)
    assert gc(lambda x: (x * 1.0).pow_(1.5), [e])


def test_pow_gradient_edge_cases():
    x = bm.tensor([0.0, 2.0], dtype=bm.float64, requires_grad=True)
    (x ** 0).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]  # d/dx x^0 = 0, also at x = 0
    e = bm.tensor([1.0, 2.0], dtype=bm.float64, requires_grad=True)
    (0.0 ** e).sum().backward()
    assert e.grad.tolist() == [0.0, 0.0]  # no nan from log(0)


def test_maximum_minimum_split_ties():
    a = bm.tensor([1.0, 2.0, 3.0], dtype=bm.float64, requires_grad=True)
    b = bm.tensor([1.0, 5.0, 0.0], dtype=bm.float64, requires_grad=True)
    bm.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 0.0, 1.0]
    assert b.grad.tolist() == [0.5, 1.0, 0.0]
    a.grad = None
    b.grad = None
    bm.minimum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 1.0, 0.0]
    assert b.grad.tolist() == [0.5, 0.0, 1.0]


def test_mixed_dtype_promotion():
    i = bm.tensor([1, 2, 3])
    f = bm.tensor([0.5, 1.5, 2.5])
    assert bm.maximum(i, f).dtype == bm.float32
    assert bm.maximum(i, f).tolist() == [1.0, 2.0, 3.0]
    assert bm.maximum(bm.tensor([1.0], dtype=bm.float16), bm.tensor([2.0], dtype=bm.bfloat16)).dtype == bm.float32
    assert bm.pow(f.double(), i).dtype == bm.float64


# ---- comparisons, logical and bitwise ---------------------------------------------------
COMPARE = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
           "ge": np.greater_equal}


@pytest.mark.parametrize("name", sorted(COMPARE))
def test_comparisons(name, rng):
    ref = COMPARE[name]
    a = rng.integers(-2, 3, (3, 4)).astype(np.float64)
    b = rng.integers(-2, 3, (4,)).astype(np.float64)
    for dtype in (bm.float32, bm.float64, bm.float16, bm.bfloat16, bm.int32, bm.int64):
        ta, tb = bm.tensor(a, dtype=dtype), bm.tensor(b, dtype=dtype)
        out = getattr(bm, name)(ta, tb)
        assert out.dtype == bm.bool and not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), ref(a, b))
        np.testing.assert_array_equal(getattr(ta, name)(1).numpy(), ref(a, 1))
    # Non-contiguous, mixed dtypes (int vs float scalar compares in float).
    t = bm.tensor(np.ascontiguousarray(a.T)).t()
    np.testing.assert_array_equal(getattr(bm, name)(t, bm.tensor(b).int()).numpy(), ref(a, b))
    np.testing.assert_array_equal(getattr(bm.tensor([1, 2, 3]), name)(1.5).numpy(), ref(np.array([1, 2, 3]), 1.5))
    x = bm.tensor(a, requires_grad=True)
    assert not getattr(x, name)(0.0).requires_grad


def test_comparison_operators_and_hash():
    t = bm.tensor([1.0, 2.0, 3.0])
    assert (t == 2).tolist() == [False, True, False]
    assert (t != 2).tolist() == [True, False, True]
    assert (t < 2).tolist() == [True, False, False]
    assert (t <= 2).tolist() == [True, True, False]
    assert (t > 2).tolist() == [False, False, True]
    assert (t >= 2).tolist() == [False, True, True]
    assert (2 < t).tolist() == [False, False, True]  # reflected via __gt__
    assert (t == bm.tensor([1.0, 0.0, 3.0])).tolist() == [True, False, True]
    assert (t == None) is False  # noqa: E711 (falls back to identity)
    assert (t != "x") is True
    # Tensors stay hashable (by identity) despite __eq__.
    d = {t: 1}
    assert d[t] == 1 and len({t, bm.tensor([1.0])}) == 2


def test_logical_and_bitwise():
    a = np.array([True, True, False, False])
    b = np.array([True, False, True, False])
    ta, tb = bm.tensor(a), bm.tensor(b)
    np.testing.assert_array_equal((ta & tb).numpy(), a & b)
    np.testing.assert_array_equal((ta | tb).numpy(), a | b)
    np.testing.assert_array_equal((ta ^ tb).numpy(), a ^ b)
    np.testing.assert_array_equal((ta & True).numpy(), a)
    np.testing.assert_array_equal(bm.logical_and(ta, tb).numpy(), a & b)
    np.testing.assert_array_equal(bm.logical_or(ta, tb).numpy(), a | b)
    np.testing.assert_array_equal(bm.logical_xor(ta, tb).numpy(), a ^ b)
    x = np.array([0.0, 1.5, -2.0, 0.0])
    np.testing.assert_array_equal(bm.logical_and(bm.tensor(x), bm.tensor([1, 0, 3, 0])).numpy(),
                                  np.logical_and(x, [1, 0, 3, 0]))
    i, j = np.array([12, -5, 7]), np.array([10, 3, -1])
    np.testing.assert_array_equal((bm.tensor(i) & bm.tensor(j)).numpy(), i & j)
    np.testing.assert_array_equal((bm.tensor(i) | 3).numpy(), i | 3)
    np.testing.assert_array_equal(bm.bitwise_xor(bm.tensor(i), bm.tensor(j)).numpy(), i ^ j)
    m = bm.tensor(a)
    m &= tb
    np.testing.assert_array_equal(m.numpy(), a & b)
    m |= True
    assert m.tolist() == [True] * 4
    with pytest.raises(TypeError, match=r"\[bitwise_and\]"):
        bm.tensor([1.0]) & bm.tensor([2.0])
    # Broadcast logical ops.
    assert bm.logical_or(bm.tensor([[True], [False]]), bm.tensor([False, False])).shape == (2, 2)


# ---- where and masked_fill --------------------------------------------------------------
def test_where_matches_numpy(rng):
    c = rng.random((3, 1, 4)) > 0.5
    a = rng.standard_normal((2, 4))
    b = rng.standard_normal((3, 2, 1))
    for dtype in (bm.float32, bm.float64, bm.float16, bm.bfloat16, bm.int64):
        ta, aq = _quantized(a * 3, dtype)
        tb, bq = _quantized(b * 3, dtype)
        out = bm.where(bm.tensor(c), ta, tb)
        assert out.dtype == dtype and out.shape == (3, 2, 4)
        assert_close(out, np.where(c, aq, bq), dtype=dtype)
    tc = bm.tensor(c)
    assert_close(bm.where(tc, bm.tensor(a), 0.5), np.where(c, a, 0.5))
    assert_close(bm.where(tc, -1.0, bm.tensor(b)), np.where(c, -1.0, b))
    assert bm.where(tc, 1.0, 0.0).dtype == bm.float32
    assert bm.where(tc, 1, 0).dtype == bm.int64
    assert bm.where(tc, bm.tensor([1, 2, 3, 4]), 0.5).dtype == bm.float32
    assert bm.where(tc, bm.tensor(a).float(), bm.tensor(b)).dtype == bm.float64
    assert_close(bm.tensor(a).where(tc, 0.0), np.where(c, a, 0.0))
    # Non-contiguous condition and operand.
    tt = bm.tensor(np.ascontiguousarray(a.T)).t()
    ct = bm.tensor(np.ascontiguousarray((a > 0).T)).t()
    assert_close(bm.where(ct, tt, -tt), np.abs(a))


def test_where_gradients_and_errors(rng):
    c = bm.tensor(rng.random((3, 4)) > 0.5)
    a = bm.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = bm.tensor(rng.standard_normal((1, 4)), requires_grad=True)
    assert bm.autograd.gradcheck(lambda x, y: bm.where(c, x, y), [a, b])
    assert bm.autograd.gradcheck(lambda x: bm.where(c, x, 2.0), [a])
    with pytest.raises(TypeError, match=r"\[where\]"):
        bm.where(bm.tensor([1.0, 0.0]), bm.tensor([1.0, 2.0]), 0.0)
    with pytest.raises(ValueError, match=r"\[where\]"):
        bm.where(bm.tensor([True, False, True]), bm.tensor([1.0, 2.0]), 0.0)


def test_masked_fill(rng):
    x = rng.standard_normal((3, 4))
    mask = rng.random(4) > 0.5
    t = bm.tensor(x)
    out = t.masked_fill(bm.tensor(mask), -7.5)
    assert_close(out, np.where(mask, -7.5, x))
    assert out.dtype == bm.float64
    i = bm.tensor([1, 2, 3]).masked_fill(bm.tensor([True, False, True]), 9)
    assert i.tolist() == [9, 2, 9] and i.dtype == bm.int64
    # Out of place broadcasts self up to the mask's shape.
    assert bm.masked_fill(bm.tensor([1.0, 2.0]), bm.tensor([[True, False], [False, True]]), 0.0).shape == (2, 2)
    t.masked_fill_(bm.tensor(mask), 3.0)
    assert_close(t, np.where(mask, 3.0, x))
    with pytest.raises(ValueError, match=r"\[masked_fill_\]"):
        t.masked_fill_(bm.tensor(np.ones((2, 3, 4), dtype=bool)), 0.0)
    with pytest.raises(TypeError, match=r"\[masked_fill\]"):
        t.masked_fill(bm.tensor([1, 0, 1, 0]), 0.0)
    with pytest.raises(ValueError, match=r"\[masked_fill\]"):
        t.masked_fill(bm.tensor(mask), bm.tensor([1.0, 2.0]))


def test_masked_fill_gradients(rng):
    mask = bm.tensor(rng.random((3, 4)) > 0.5)
    x = bm.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    v = bm.tensor(0.25, dtype=bm.float64, requires_grad=True)
    assert bm.autograd.gradcheck(lambda a, b: a.masked_fill(mask, b), [x, v])
    assert bm.autograd.gradcheck(lambda a: (a * 1.0).masked_fill_(mask, 2.0), [x])
    x.grad = None
    (x.masked_fill(mask, 0.0) * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.where(mask.numpy(), 0.0, 3.0))


# ---- operators and errors ---------------------------------------------------------------
def test_unary_operators():
    t = bm.tensor([-1.5, 2.0])
    assert (-t).tolist() == [1.5, -2.0]
    assert abs(t).tolist() == [1.5, 2.0]
    assert t.negative().tolist() == [1.5, -2.0] and t.absolute().tolist() == [1.5, 2.0]
    with pytest.raises(TypeError, match=r"\[neg\]"):
        -bm.tensor([True])


def test_bad_inputs_raise_with_op_name():
    a, b = bm.zeros(2, 3), bm.zeros(4, 3)
    for name in ("maximum", "minimum", "pow", "remainder", "eq", "lt", "logical_and"):
        with pytest.raises(ValueError, match=rf"\[{name}\].*\[2, 3\]"):
            getattr(bm, name)(a, b)
    with pytest.raises(TypeError, match=r"\[sub\].*bool"):
        bm.tensor([True]) - bm.tensor([False])
    with pytest.raises(ValueError, match=r"\[gelu\].*approximate"):
        bm.gelu(a, approximate="fast")
    with pytest.raises(TypeError, match=r"\[gelu\]"):
        bm.gelu(bm.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"\[clamp\]"):
        a.clamp()
    with pytest.raises(TypeError, match=r"\[lerp\]"):
        bm.lerp(a, b.int(), 0.5)


def test_tensor_clamp_bounds(rng):
    x = rng.standard_normal((3, 4))
    lo, hi = rng.uniform(-1, -0.1, (4,)), rng.uniform(0.1, 1, (3, 1))
    out = bm.clamp(bm.tensor(x), bm.tensor(lo), bm.tensor(hi))
    assert_close(out, np.clip(x, lo, hi))
    assert_close(bm.tensor(x).clamp(min=bm.tensor(lo)), np.maximum(x, lo))


def test_half_precision_activations_large_tensor(rng):
    # Large enough to take the OpenMP path; values stay finite in float16.
    x = rng.uniform(-4, 4, (300, 130))
    for dtype in (bm.float16, bm.bfloat16):
        t, xq = _quantized(x, dtype)
        assert_close(bm.sigmoid(t), 1 / (1 + np.exp(-xq)), dtype=dtype)
        assert_close(bm.gelu(t), 0.5 * xq * (1 + _erf(xq / math.sqrt(2))), dtype=dtype)
        assert_close(bm.silu(t), xq / (1 + np.exp(-xq)), dtype=dtype)


def test_inplace_on_expanded_tensor_applies_once():
    base = bm.tensor([[0.5], [1.5]])
    e = base.expand(2, 3)
    e.exp_()  # each memory location holds one element value: exp applied once, not three times
    assert_close(base, np.exp([[0.5], [1.5]]))
    f = bm.tensor([2.0, -3.0])
    f.logical_not_()
    assert f.tolist() == [0.0, 0.0] and f.dtype == bm.float32
