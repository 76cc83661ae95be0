"""bm.lstm_layer (the whole LSTM recurrence as one op, dW_hh as one GEMM) against the step
loop it replaces (addmm + lstm_cell_pointwise per step), and the column sums that carry
bias gradients (sums over leading dims read in place)."""
import numpy as np
import pytest
from conftest import assert_close

import bigmodel as bm


def _step_loop(xp, h0, c0, w_hh, reverse):
    T = xp.shape[0]
    h, c, out = h0, c0, [None] * T
    for i in range(T):
        t = T - 1 - i if reverse else i
        h, c = bm.lstm_cell_pointwise(bm.addmm(xp[t], h, w_hh.t()), c)
        out[t] = h
    return bm.stack(out, 0), h, c


def _inputs(rng, T, B, H, dtype):
    arrs = [rng.standard_normal((T, B, 4 * H)), rng.standard_normal((B, H)) * 0.5,
            rng.standard_normal((B, H)) * 0.5, rng.standard_normal((4 * H, H)) * 0.4]
    return arrs, [bm.tensor(a, dtype=dtype, requires_grad=True) for a in arrs]


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("T,B,H", [(1, 1, 1), (5, 3, 7), (4, 2, 9), (3, 4, 16)])
def test_matches_step_loop(rng, dtype, reverse, T, B, H):
    arrs, ins = _inputs(rng, T, B, H, dtype)
    ref = [bm.tensor(a, dtype=dtype, requires_grad=True) for a in arrs]
    out, h, c = bm.lstm_layer(*ins, reverse=reverse)
    r_out, r_h, r_c = _step_loop(*ref, reverse)
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == bm.float32 else {}
    for a, b in [(out, r_out), (h, r_h), (c, r_c)]:
        assert_close(a, b.detach().numpy(), **tol)
    w_out, w_h, w_c = (rng.standard_normal(t.shape) for t in (out, h, c))
    loss = (out * bm.tensor(w_out, dtype=dtype)).sum() + (h * bm.tensor(w_h, dtype=dtype)).sum() + \
        (c * bm.tensor(w_c, dtype=dtype)).sum()
    loss.backward()
    r_loss = (r_out * bm.tensor(w_out, dtype=dtype)).sum() + (r_h * bm.tensor(w_h, dtype=dtype)).sum() + \
        (r_c * bm.tensor(w_c, dtype=dtype)).sum()
    r_loss.backward()
    for a, b in zip(ins, ref):
        assert_close(a.grad, b.grad.numpy(), **tol)


def test_only_some_outputs_used_and_noncontiguous_xp(rng):
    T, B, H = 4, 3, 5
    arrs, _ = _inputs(rng, T, B, H, bm.float64)
    # xp as a transposed view of a [B, T, 4H] tensor.
    xp = bm.tensor(np.ascontiguousarray(arrs[0].transpose(1, 0, 2)), requires_grad=True)
    rest = [bm.tensor(a, requires_grad=True) for a in arrs[1:]]
    out, h, c = bm.lstm_layer(xp.transpose(0, 1), *rest)
    (h * 2.0).sum().backward()  # only h_n feeds the loss
    xp2 = bm.tensor(arrs[0], requires_grad=True)
    rest2 = [bm.tensor(a, requires_grad=True) for a in arrs[1:]]
    _, r_h, _ = _step_loop(xp2, *rest2, False)
    (r_h * 2.0).sum().backward()
    assert_close(xp.grad, np.ascontiguousarray(xp2.grad.numpy().transpose(1, 0, 2)))
    for a, b in zip(rest, rest2):
        assert_close(a.grad, b.grad.numpy())


@pytest.mark.parametrize("reverse", [False, True])
def test_gradcheck(rng, reverse):
    _, ins = _inputs(rng, 3, 2, 2, bm.float64)
    assert bm.autograd.gradcheck(lambda *a: bm.lstm_layer(*a, reverse=reverse), ins)


def test_bad_inputs():
    xp, s, w = bm.zeros(3, 2, 8), bm.zeros(2, 2), bm.zeros(8, 2)
    with pytest.raises(ValueError, match=r"\[lstm_layer\]"):
        bm.lstm_layer(bm.zeros(3, 2, 7), s, s, w)
    with pytest.raises(ValueError, match=r"\[lstm_layer\]"):
        bm.lstm_layer(xp, bm.zeros(3, 2), s, w)
    with pytest.raises(ValueError, match=r"\[lstm_layer\]"):
        bm.lstm_layer(xp, s, s, bm.zeros(8, 3))
    with pytest.raises(ValueError, match=r"\[lstm_layer\] expected at least one time step"):
        bm.lstm_layer(bm.zeros(0, 2, 8), s, s, w)
    with pytest.raises(TypeError, match=r"\[lstm_layer\]"):
        bm.lstm_layer(xp, s, s, bm.zeros(8, 2, dtype=bm.float64))


# ---- column sums (sum over leading dims, read in place) --------------------------------------

@pytest.mark.parametrize("dtype", [bm.float32, bm.float64, bm.bfloat16])
@pytest.mark.parametrize("shape,dims", [((37, 11), [0]), ((5, 3, 513), [0, 1]), ((6, 4, 3), [0]),
                                        ((1000, 2), [0])])
def test_leading_dim_sum(rng, dtype, shape, dims):
    a = rng.standard_normal(shape)
    t = bm.tensor(a, dtype=dtype)
    ref = t.double().numpy() if dtype == bm.bfloat16 else a
    assert_close(bm.sum(t, dims), ref.sum(axis=tuple(dims)), dtype=dtype)
    assert_close(bm.sum(t, dims, keepdim=True), ref.sum(axis=tuple(dims), keepdims=True), dtype=dtype)


def test_leading_dim_sum_of_views(rng):
    a = rng.standard_normal((9, 6, 5))
    t = bm.tensor(a)
    # a contiguous slice with an offset, a transposed view and a strided slice
    assert_close(bm.sum(t[2:7], [0]), a[2:7].sum(0))
    assert_close(bm.sum(t.transpose(0, 2), [0]), a.transpose(2, 1, 0).sum(0))
    assert_close(bm.sum(t[::2], [0, 1]), a[::2].sum((0, 1)))
    # integers keep the row path (int64 result)
    ti = bm.tensor(np.arange(24).reshape(4, 6))
    assert bm.sum(ti, [0]).tolist() == np.arange(24).reshape(4, 6).sum(0).tolist()


def test_bias_gradient_through_broadcast(rng):
    x = rng.standard_normal((7, 5, 12))
    b = bm.tensor(rng.standard_normal(12), requires_grad=True)
    w = rng.standard_normal((7, 5, 12))
    ((bm.tensor(x) + b) * bm.tensor(w)).sum().backward()
    assert_close(b.grad, w.sum((0, 1)))


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64])
def test_leading_and_trailing_dim_sum(rng, dtype):
    # [N, C, H, W] over {0, 2, 3} (a conv bias gradient) and [A, B, C, D, E] over {0, 1, 4}
    for shape, dims in [((4, 3, 5, 6), [0, 2, 3]), ((2, 3, 4, 5, 3), [0, 1, 4]), ((3, 4, 5), [0, 2])]:
        a = rng.standard_normal(shape)
        t = bm.tensor(a, dtype=dtype, requires_grad=True)
        s = bm.sum(t, dims)
        assert_close(s, a.sum(axis=tuple(dims)), dtype=dtype)
        assert_close(bm.sum(t, dims, keepdim=True), a.sum(axis=tuple(dims), keepdims=True), dtype=dtype)
        w = rng.standard_normal(s.shape)
        (s * bm.tensor(w, dtype=dtype)).sum().backward()
        assert_close(t.grad, np.broadcast_to(np.expand_dims(w, tuple(dims)), shape), dtype=dtype)
