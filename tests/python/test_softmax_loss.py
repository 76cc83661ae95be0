"""softmax / log_softmax and the losses (cross_entropy, nll_loss, mse_loss, l1_loss,
binary_cross_entropy(_with_logits)) against NumPy references written from PyTorch's
documented formulas; dtypes, non-contiguous inputs, gradcheck and bad inputs."""
import numpy as np
import pytest

import bigmodel as bm
from conftest import assert_close, noncontiguous

gradcheck = bm.autograd.gradcheck


def leaf(a):
    return bm.tensor(a, dtype=bm.float64, requires_grad=True)


def np_log_softmax(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return a - m - np.log(np.exp(a - m).sum(axis=axis, keepdims=True))


# ---------------------------------------------------------------- softmax

@pytest.mark.parametrize("dim", [0, 1, 2, -1])
@pytest.mark.parametrize("contig", [True, False])
def test_softmax_matches_numpy(rng, dim, contig):
    a = rng.standard_normal((3, 4, 5)) * 3
    x = bm.tensor(a) if contig else noncontiguous(a)
    ref = np_log_softmax(a, dim)
    assert_close(bm.softmax(x, dim), np.exp(ref))
    assert_close(x.softmax(dim), np.exp(ref))
    assert_close(bm.log_softmax(x, dim=dim), ref)
    assert_close(x.log_softmax(dim), ref)


@pytest.mark.parametrize("dtype", [bm.float32, bm.float16, bm.bfloat16])
def test_softmax_dtypes(rng, dtype):
    a = rng.standard_normal((5, 9)) * 4
    x = bm.tensor(a, dtype=dtype)
    ref_in = x.float().numpy().astype(np.float64)
    tol = {bm.float16: 2e-3, bm.bfloat16: 1e-2}.get(dtype, 1e-5)
    for dim in (0, 1):
        out = x.softmax(dim)
        assert out.dtype == dtype
        assert_close(out, np.exp(np_log_softmax(ref_in, dim)), atol=tol, rtol=tol)
        assert_close(x.log_softmax(dim), np_log_softmax(ref_in, dim), atol=tol * 8, rtol=tol)
    assert x.softmax(1, dtype=bm.float64).dtype == bm.float64
    assert bm.log_softmax(x, 1, dtype=bm.float32).dtype == bm.float32


def test_softmax_is_stable_for_large_values():
    a = np.array([[1000.0, 1001.0, 999.0], [-1e4, -1e4 + 1, -1e4 - 3]])
    for dtype in (bm.float32, bm.float16):
        x = bm.tensor(a if dtype == bm.float32 else a - a.max(1, keepdims=True), dtype=dtype)
        out = x.softmax(1).float().numpy()
        assert np.isfinite(out).all()
        assert_close(bm.tensor(out, dtype=bm.float64), np.exp(np_log_softmax(a, 1)), atol=1e-3, rtol=1e-3)
    lo = bm.tensor(a, dtype=bm.float32).log_softmax(1)
    assert_close(lo, np_log_softmax(a, 1), atol=1e-4, rtol=1e-6)


def test_softmax_implicit_dim_and_scalar():
    x = bm.tensor(np.arange(6.0).reshape(2, 3))
    assert_close(bm.softmax(x), np.exp(np_log_softmax(np.arange(6.0).reshape(2, 3), 1)))  # 2-d: dim 1
    assert bm.tensor(3.0).softmax(0).item() == 1.0
    assert bm.tensor(3.0).log_softmax(-1).item() == 0.0


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_gradcheck(rng, dim):
    a = rng.standard_normal((3, 4, 2))
    assert gradcheck(lambda t: t.softmax(dim), [leaf(a)])
    assert gradcheck(lambda t: t.log_softmax(dim), [leaf(a)])
    assert gradcheck(lambda t: t.transpose(0, 2).log_softmax(dim), [leaf(a)])


def test_softmax_bad_inputs(rng):
    x = bm.tensor(rng.standard_normal((2, 3)))
    with pytest.raises(IndexError, match=r"\[softmax\]"):
        x.softmax(2)
    with pytest.raises(IndexError, match=r"\[log_softmax\]"):
        bm.log_softmax(x, -3)
    with pytest.raises(TypeError, match=r"\[softmax\].*int64"):
        bm.tensor([[1, 2]]).softmax(1)


# ---------------------------------------------------------------- cross entropy / nll

def ce_ref(x, t, w=None, ignore=-100, reduction="mean", eps=0.0):
    """PyTorch's documented cross entropy for class indices, computed in float64."""
    x = np.asarray(x, np.float64)
    C = x.shape[1]
    logp = np_log_softmax(x, 1)
    wv = np.ones(C) if w is None else np.asarray(w, np.float64)
    valid = t != ignore
    tc = np.where(valid, t, 0)
    lp_t = np.take_along_axis(logp, tc[:, None], axis=1)[:, 0]
    wt = wv[tc] * valid
    nll = -wt * lp_t
    smooth = -(logp * wv.reshape([1, C] + [1] * (x.ndim - 2))).sum(1) * valid
    if reduction == "none":
        return (1 - eps) * nll + eps / C * smooth
    if reduction == "sum":
        return (1 - eps) * nll.sum() + eps / C * smooth.sum()
    return (1 - eps) * nll.sum() / wt.sum() + eps / C * smooth.sum() / wt.sum()


def ce_prob_ref(x, y, w=None, reduction="mean", eps=0.0):
    C = x.shape[1]
    logp = np_log_softmax(x, 1)
    wv = np.ones(C) if w is None else w
    y = (1 - eps) * y + eps / C
    loss = -(logp * y * wv.reshape([1, C] + [1] * (x.ndim - 2))).sum(1)
    return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / (x.size / C)}[reduction]


CE_CASES = [
    dict(),
    dict(ignore=2),
    dict(weight=True),
    dict(weight=True, ignore=1),
    dict(eps=0.1),
    dict(eps=0.2, ignore=3),
    dict(eps=0.15, weight=True, ignore=0),
]


@pytest.mark.parametrize("case", CE_CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(6, 5), (3, 5, 2, 3)])
def test_cross_entropy_matches_pytorch_formula(rng, case, reduction, shape):
    a = rng.standard_normal(shape) * 2
    N, C = shape[0], shape[1]
    t = rng.integers(0, C, size=(N,) + shape[2:])
    ignore = case.get("ignore", -100)
    if ignore >= 0:
        t.reshape(-1)[::3] = ignore  # make sure some targets are ignored
    w = rng.uniform(0.2, 2.0, size=C) if case.get("weight") else None
    eps = case.get("eps", 0.0)
    x = bm.tensor(a)
    out = bm.cross_entropy(x, bm.tensor(t), weight=None if w is None else bm.tensor(w), ignore_index=ignore,
                           reduction=reduction, label_smoothing=eps)
    assert_close(out, ce_ref(a, t, w, ignore, reduction, eps))
    # nll_loss on log-probabilities is the eps = 0 part
    if eps == 0:
        lp = bm.log_softmax(x, 1)
        nll = bm.nll_loss(lp, bm.tensor(t), weight=None if w is None else bm.tensor(w), ignore_index=ignore,
                          reduction=reduction)
        assert_close(nll, ce_ref(a, t, w, ignore, reduction))


@pytest.mark.parametrize("case", CE_CASES)
def test_cross_entropy_gradcheck(rng, case):
    a = rng.standard_normal((4, 3, 2))
    t = rng.integers(0, 3, size=(4, 2))
    ignore = case.get("ignore", -100)
    if ignore >= 0:
        t[0, 0] = ignore
    w = bm.tensor(rng.uniform(0.5, 2.0, size=3)) if case.get("weight") else None
    eps = case.get("eps", 0.0)
    tt = bm.tensor(t)
    for red in ("mean", "sum", "none"):
        assert gradcheck(lambda x: bm.cross_entropy(x, tt, weight=w, ignore_index=ignore, reduction=red,
                                                    label_smoothing=eps), [leaf(a)])
    assert gradcheck(lambda x: bm.nll_loss(x, tt, weight=w, ignore_index=ignore), [leaf(a)])


def test_cross_entropy_float32_and_noncontiguous(rng):
    a = rng.standard_normal((5, 7)).astype(np.float32)
    t = rng.integers(0, 7, size=5)
    x = noncontiguous(a)
    out = bm.cross_entropy(x, bm.tensor(t), label_smoothing=0.05)
    assert out.dtype == bm.float32
    assert_close(out, ce_ref(a.astype(np.float64), t, eps=0.05), atol=1e-6, rtol=1e-5)
    h = bm.cross_entropy(bm.tensor(a, dtype=bm.float16), bm.tensor(t))
    assert h.dtype == bm.float16
    assert_close(h, ce_ref(a.astype(np.float16).astype(np.float64), t), atol=5e-3, rtol=5e-3)


def test_cross_entropy_backward_is_softmax_minus_onehot(rng):
    a = rng.standard_normal((4, 6))
    t = np.array([0, 5, 2, 2])
    x = leaf(a)
    bm.cross_entropy(x, bm.tensor(t)).backward()
    onehot = np.eye(6)[t]
    assert_close(x.grad, (np.exp(np_log_softmax(a, 1)) - onehot) / 4)


def test_cross_entropy_unbatched_and_all_ignored(rng):
    a = rng.standard_normal(5)
    out = bm.cross_entropy(bm.tensor(a), bm.tensor(3))
    assert out.ndim == 0
    assert_close(out, -np_log_softmax(a, 0)[3])
    allign = bm.cross_entropy(bm.tensor(rng.standard_normal((2, 3))), bm.tensor([-100, -100]))
    assert np.isnan(allign.item())  # 0 / 0, as in PyTorch


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cross_entropy_probability_targets(rng, reduction, eps):
    a = rng.standard_normal((4, 5, 3))
    y = rng.uniform(size=a.shape)
    y /= y.sum(1, keepdims=True)
    w = rng.uniform(0.5, 1.5, size=5)
    out = bm.cross_entropy(bm.tensor(a), bm.tensor(y), weight=bm.tensor(w), reduction=reduction, label_smoothing=eps)
    assert_close(out, ce_prob_ref(a, y, w, reduction, eps))
    yt = leaf(y)
    assert gradcheck(lambda x, yy: bm.cross_entropy(x, yy, reduction=reduction, label_smoothing=eps),
                     [leaf(a), yt])


def test_cross_entropy_bad_inputs(rng):
    x = bm.tensor(rng.standard_normal((4, 10)))
    with pytest.raises(IndexError, match=r"\[cross_entropy\] target 12 is out of bounds for 10 classes"):
        bm.cross_entropy(x, bm.tensor([1, 12, 3, 4]))
    with pytest.raises(IndexError, match=r"\[cross_entropy\] target -1 is out of bounds"):
        bm.cross_entropy(x, bm.tensor([1, -1, 3, 4]))
    with pytest.raises(IndexError, match=r"\[nll_loss\] target 10 is out of bounds for 10 classes"):
        bm.nll_loss(x, bm.tensor([1, 10, 3, 4]))
    with pytest.raises(ValueError, match=r"\[cross_entropy\].*\[4\].*\[4, 10\].*\[5\]"):
        bm.cross_entropy(x, bm.tensor([1, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match=r"\[nll_loss\].*shape"):
        bm.nll_loss(x, bm.tensor([[1, 2, 3, 4]]))
    with pytest.raises(TypeError, match=r"\[cross_entropy\].*float32"):
        bm.cross_entropy(x, bm.tensor([1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(TypeError, match=r"\[cross_entropy\].*int64"):
        bm.cross_entropy(bm.tensor([[1, 2]]), bm.tensor([0]))
    with pytest.raises(ValueError, match=r"\[cross_entropy\].*weight.*\[10\]"):
        bm.cross_entropy(x, bm.tensor([1, 2, 3, 4]), weight=bm.ones(3))
    with pytest.raises(ValueError, match=r"\[cross_entropy\].*reduction"):
        bm.cross_entropy(x, bm.tensor([1, 2, 3, 4]), reduction="avg")
    with pytest.raises(ValueError, match=r"\[cross_entropy\].*label_smoothing"):
        bm.cross_entropy(x, bm.tensor([1, 2, 3, 4]), label_smoothing=1.5)


def test_legacy_reduction_flags(rng):
    a = rng.standard_normal((3, 4))
    t = bm.tensor([0, 1, 3])
    x = bm.tensor(a)
    assert_close(bm.cross_entropy(x, t, size_average=False), ce_ref(a, np.array([0, 1, 3]), reduction="sum"))
    assert bm.nll_loss(x, t, reduce=False).shape == (3,)


# ---------------------------------------------------------------- pointwise losses

def softplus(v):
    return np.log1p(np.exp(-np.abs(v))) + np.maximum(-v, 0)


def bcel_ref(x, y, w=None, pw=None):
    pw = 1.0 if pw is None else pw
    loss = (1 - y) * x + (1 + (pw - 1) * y) * softplus(x)
    return loss if w is None else loss * w


def reduce_np(v, reduction):
    return {"none": v, "sum": v.sum(), "mean": v.mean()}[reduction]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_l1_match_numpy(rng, reduction):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    x, y = noncontiguous(a), bm.tensor(b)
    assert_close(bm.mse_loss(x, y, reduction=reduction), reduce_np((a - b) ** 2, reduction))
    assert_close(bm.l1_loss(x, y, reduction=reduction), reduce_np(np.abs(a - b), reduction))
    assert gradcheck(lambda p, q: bm.mse_loss(p, q, reduction=reduction), [leaf(a), leaf(b)])
    assert gradcheck(lambda p, q: bm.l1_loss(p, q, reduction=reduction), [leaf(a), leaf(b)])
    # broadcasting target, as PyTorch allows
    c = rng.standard_normal(4)
    assert_close(bm.l1_loss(x, bm.tensor(c), reduction=reduction), reduce_np(np.abs(a - c), reduction))
    assert gradcheck(lambda p, q: bm.l1_loss(p, q, reduction=reduction), [leaf(a), leaf(c)])


@pytest.mark.parametrize("dtype", [bm.float32, bm.float16, bm.bfloat16])
def test_pointwise_loss_dtypes(rng, dtype):
    a, b = rng.standard_normal((4, 6)), rng.uniform(size=(4, 6))
    x, y = bm.tensor(a, dtype=dtype), bm.tensor(b, dtype=dtype)
    ra, rb = x.float().numpy().astype(np.float64), y.float().numpy().astype(np.float64)
    tol = {bm.float16: 3e-3, bm.bfloat16: 2e-2}.get(dtype, 1e-5)
    for out, exp in [(bm.l1_loss(x, y), np.abs(ra - rb).mean()), (bm.mse_loss(x, y), ((ra - rb) ** 2).mean()),
                     (bm.binary_cross_entropy_with_logits(x, y), bcel_ref(ra, rb).mean())]:
        assert out.dtype == dtype
        assert_close(out, exp, atol=tol, rtol=tol)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits(rng, reduction):
    a = rng.standard_normal((4, 3)) * 3
    y = rng.uniform(size=(4, 3))
    w = rng.uniform(0.5, 2, size=(4, 3))
    pw = rng.uniform(0.5, 3, size=3)
    x = bm.tensor(a)
    f = bm.binary_cross_entropy_with_logits
    assert_close(f(x, bm.tensor(y), reduction=reduction), reduce_np(bcel_ref(a, y), reduction))
    assert_close(f(x, bm.tensor(y), weight=bm.tensor(w), pos_weight=bm.tensor(pw), reduction=reduction),
                 reduce_np(bcel_ref(a, y, w, pw), reduction))
    assert gradcheck(lambda p, q: f(p, q, reduction=reduction), [leaf(a), leaf(y)])
    assert gradcheck(lambda p, q: f(p, q, weight=bm.tensor(w), pos_weight=bm.tensor(pw), reduction=reduction),
                     [leaf(a), leaf(y)])


def test_bce_with_logits_is_stable():
    a = np.array([1000.0, -1000.0, 50.0, -50.0])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    out = bm.binary_cross_entropy_with_logits(bm.tensor(a, dtype=bm.float32), bm.tensor(y, dtype=bm.float32),
                                              reduction="none")
    assert np.isfinite(out.numpy()).all()
    assert_close(out, bcel_ref(a, y), rtol=1e-6)
    x = leaf(a)
    bm.binary_cross_entropy_with_logits(x, bm.tensor(y), reduction="sum").backward()
    assert_close(x.grad, 0.5 * (1 + np.tanh(a / 2)) - y)  # sigmoid without overflow


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy(rng, reduction):
    p = rng.uniform(0.05, 0.95, size=(3, 4))
    y = rng.uniform(size=(3, 4))
    w = rng.uniform(0.5, 2, size=4)
    ref = -(y * np.log(p) + (1 - y) * np.log(1 - p)) * w
    out = bm.binary_cross_entropy(bm.tensor(p), bm.tensor(y), weight=bm.tensor(w), reduction=reduction)
    assert_close(out, reduce_np(ref, reduction))
    assert gradcheck(lambda q, t: bm.binary_cross_entropy(q, t, reduction=reduction), [leaf(p), leaf(y)])
    edge = bm.binary_cross_entropy(bm.tensor([0.0, 1.0]), bm.tensor([1.0, 0.0]), reduction="none")
    assert edge.tolist() == [100.0, 100.0]  # logs clamped at -100, as in PyTorch


def test_pointwise_loss_bad_inputs(rng):
    x = bm.tensor(rng.standard_normal((3, 4)))
    with pytest.raises(ValueError, match=r"\[binary_cross_entropy_with_logits\].*\[3\].*\[3, 4\]"):
        bm.binary_cross_entropy_with_logits(x, bm.tensor(rng.uniform(size=3)))
    with pytest.raises(ValueError, match=r"\[mse_loss\].*\[3, 4\].*\[5\]"):
        bm.mse_loss(x, bm.tensor(rng.standard_normal(5)))
    with pytest.raises(ValueError, match=r"\[l1_loss\].*\[3, 4\].*\[2, 4\]"):
        bm.l1_loss(x, bm.tensor(rng.standard_normal((2, 4))))
    with pytest.raises(ValueError, match=r"\[binary_cross_entropy\].*between 0 and 1"):
        bm.binary_cross_entropy(x, bm.tensor(rng.uniform(size=(3, 4))))
    with pytest.raises(TypeError, match=r"\[l1_loss\]"):
        bm.l1_loss(bm.tensor([1, 2]), bm.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"\[mse_loss\].*reduction"):
        bm.mse_loss(x, x, reduction="max")


def test_nn_functional_reexports(rng):
    F = pytest.importorskip("bigmodel.nn.functional")
    a = rng.standard_normal((3, 4))
    t = np.array([0, 3, 1])
    x = bm.tensor(a)
    assert_close(F.cross_entropy(x, bm.tensor(t), ignore_index=3, label_smoothing=0.1),
                 ce_ref(a, t, ignore=3, eps=0.1))
    assert_close(F.softmax(x, dim=0), np.exp(np_log_softmax(a, 0)))
    assert_close(F.log_softmax(x, 1), np_log_softmax(a, 1))
