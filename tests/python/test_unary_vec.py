# The float32 fast paths of the CPU unary and softmax kernels (kernels/cpu/unary_vec.cpp,
# softmax.cpp): exp, tanh, sigmoid, GELU's tanh form (forward and backward) and softmax rows
# on contiguous tensors, against NumPy in float64, at sizes around the 8-wide tail, the
# 2048-element chunk and the parallel grain, with special values, and against the generic
# strided loop (a transposed view takes it).
import numpy as np
import pytest

import bigmodel as bm

SIZES = [1, 7, 9, 33, 1000, 2047, 2049, 70001]
K, C = np.sqrt(2 / np.pi), 0.044715


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(K * (x + C * x ** 3)))


def d_gelu_tanh(x):
    t = np.tanh(K * (x + C * x ** 3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * K * (1 + 3 * C * x * x)


REFS = {
    "exp": (bm.exp, np.exp),
    "tanh": (bm.tanh, np.tanh),
    "sigmoid": (bm.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "gelu_tanh": (lambda t: bm.nn.functional.gelu(t, approximate="tanh"), gelu_tanh),
}


def data(n, seed=0, scale=4.0):
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", sorted(REFS))
def test_forward_matches_numpy(name, n):
    ours, ref = REFS[name]
    x = data(n)
    y = ours(bm.tensor(x)).numpy()
    np.testing.assert_allclose(y, ref(x.astype(np.float64)), rtol=4e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(REFS))
def test_special_values(name):
    ours, ref = REFS[name]
    x = np.array([0.0, -0.0, 1e-40, -1e-40, 0.3, -0.7, 9.0, -9.0, 30.0, -30.0, 88.0, -100.0, 1e30, -1e30,
                  np.inf, -np.inf, np.nan], dtype=np.float32)
    with np.errstate(all="ignore"):
        expected = ref(x.astype(np.float64))
    y = ours(bm.tensor(x)).numpy()
    np.testing.assert_allclose(y, expected.astype(np.float32), rtol=4e-6, atol=1e-30, equal_nan=True)


@pytest.mark.parametrize("name", sorted(REFS))
def test_contiguous_and_strided_paths_agree(name):
    ours, _ = REFS[name]
    x = bm.tensor(data(64 * 40).reshape(64, 40))
    fast = ours(x.t().contiguous())
    strided = ours(x.t())  # a transposed view takes the generic loop
    np.testing.assert_allclose(fast.numpy(), strided.numpy(), rtol=4e-6, atol=1e-6)


def test_in_place_tanh_and_sigmoid():
    x = data(3000)
    t = bm.tensor(x)
    t.tanh_()
    np.testing.assert_allclose(t.numpy(), np.tanh(x.astype(np.float64)), rtol=4e-6, atol=1e-6)
    t = bm.tensor(x)
    t.sigmoid_()
    np.testing.assert_allclose(t.numpy(), 1 / (1 + np.exp(-x.astype(np.float64))), rtol=4e-6, atol=1e-6)


@pytest.mark.parametrize("n", [1, 9, 2049, 70001])
def test_gelu_tanh_backward(n):
    x = data(n, seed=3)
    g = data(n, seed=4, scale=1.0)
    t = bm.tensor(x, requires_grad=True)
    bm.nn.functional.gelu(t, approximate="tanh").backward(bm.tensor(g))
    # atol: for x near -5, 1 + tanh(.) cancels in float32 (the libm path errs the same, ~1.5e-6).
    np.testing.assert_allclose(t.grad.numpy(), g * d_gelu_tanh(x.astype(np.float64)), rtol=2e-5, atol=3e-6)


@pytest.mark.parametrize("n", [1, 7, 9, 2049, 70001])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_rows_float32(n, log):
    """kernels/cpu/softmax.cpp's vectorised float32 rows, with -inf entries (masked positions)."""
    x = data(3 * n, seed=5).reshape(3, n)
    x[1, ::3] = -np.inf
    x64 = x.astype(np.float64)
    shifted = x64 - x64.max(axis=1, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = shifted - lse if log else np.exp(shifted - lse)
    fn = bm.nn.functional.log_softmax if log else bm.nn.functional.softmax
    got = fn(bm.tensor(x), dim=1).numpy()
    np.testing.assert_allclose(got, expected, rtol=4e-6, atol=1e-7)
