"""Knowledge distillation: F.kl_div / nn.KLDivLoss and F.distillation_loss / nn.DistillationLoss
against their formulas in NumPy float64, gradchecks, and bad arguments."""
import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn
from bigmodel.nn import functional as F
from conftest import assert_close


def log_softmax_np(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def kl_np(logq, p, log_target=False):
    if log_target:
        return np.exp(p) * (p - logq)
    return np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - logq), 0.0)


def reduce_np(v, reduction, batch):
    return {"none": v, "sum": v.sum(), "mean": v.mean(), "batchmean": v.sum() / batch}[reduction]


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("dtype", [bm.float32, bm.float64])
def test_kl_div_matches_formula(rng, reduction, log_target, dtype):
    logq = log_softmax_np(rng.standard_normal((4, 7)))
    p_logits = rng.standard_normal((4, 7))
    target = log_softmax_np(p_logits) if log_target else np.exp(log_softmax_np(p_logits))
    if not log_target:
        target[0, 3] = 0.0  # a zero probability contributes exactly 0
    npdt = np.float32 if dtype == bm.float32 else np.float64
    got = F.kl_div(bm.tensor(logq.astype(npdt)), bm.tensor(target.astype(npdt)), reduction=reduction,
                   log_target=log_target)
    want = reduce_np(kl_np(logq, target, log_target), reduction, 4)
    assert_close(got, want, atol=1e-6 if dtype == bm.float32 else 1e-12, rtol=1e-5 if dtype == bm.float32 else 1e-10)
    module = nn.KLDivLoss(reduction=reduction, log_target=log_target)
    assert_close(module(bm.tensor(logq.astype(npdt)), bm.tensor(target.astype(npdt))), want,
                 atol=1e-6 if dtype == bm.float32 else 1e-12, rtol=1e-5)


def test_kl_div_noncontiguous_and_zero_for_equal_distributions(rng):
    logits = rng.standard_normal((5, 3))
    logp = log_softmax_np(logits)
    t = bm.tensor(np.ascontiguousarray(logp.T)).t()  # non-contiguous view
    assert not t.is_contiguous()
    got = F.kl_div(t, bm.tensor(np.exp(logp)), reduction="batchmean")
    assert abs(float(got)) < 1e-12
    q = log_softmax_np(rng.standard_normal((5, 3)))
    got = F.kl_div(bm.tensor(q), bm.tensor(np.exp(logp)), reduction="batchmean")
    assert float(got) > 0  # Gibbs' inequality
    assert_close(got, kl_np(q, np.exp(logp)).sum() / 5)


@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_gradcheck(rng, log_target):
    logq = bm.tensor(log_softmax_np(rng.standard_normal((3, 4))), requires_grad=True)
    p = log_softmax_np(rng.standard_normal((3, 4)))
    target = bm.tensor(p if log_target else np.exp(p), requires_grad=True)
    assert bm.autograd.gradcheck(lambda a, b: F.kl_div(a, b, reduction="batchmean", log_target=log_target),
                                 [logq, target])


def test_kl_div_gradient_is_finite_at_zero_target():
    logq = bm.tensor(np.log([[0.5, 0.25, 0.25]]), requires_grad=True)
    target = bm.tensor([[0.0, 0.5, 0.5]], dtype=bm.float64, requires_grad=True)
    F.kl_div(logq, target, reduction="sum").backward()
    assert np.all(np.isfinite(target.grad.numpy()))
    np.testing.assert_allclose(logq.grad.numpy(), [[-0.0, -0.5, -0.5]])


def distill_np(s, t, y, temperature, alpha):
    ls = log_softmax_np(s / temperature)
    lt = log_softmax_np(t / temperature)
    soft = (np.exp(lt) * (lt - ls)).sum() / s.shape[0] * temperature ** 2
    hard = -log_softmax_np(s)[np.arange(s.shape[0]), y].mean()
    return alpha * soft + (1 - alpha) * hard, soft


@pytest.mark.parametrize("temperature,alpha", [(1.0, 0.5), (4.0, 0.9), (2.5, 0.0), (3.0, 1.0)])
def test_distillation_loss_matches_formula(rng, temperature, alpha):
    s, t = rng.standard_normal((6, 5)) * 2, rng.standard_normal((6, 5)) * 2
    y = rng.integers(0, 5, 6)
    want, soft = distill_np(s, t, y, temperature, alpha)
    got = F.distillation_loss(bm.tensor(s), bm.tensor(t), bm.tensor(y), temperature=temperature, alpha=alpha)
    assert_close(got, want)
    mod = nn.DistillationLoss(temperature=temperature, alpha=alpha)
    assert_close(mod(bm.tensor(s), bm.tensor(t), bm.tensor(y)), want)
    assert_close(F.distillation_loss(bm.tensor(s), bm.tensor(t), temperature=temperature), soft)


def test_distillation_loss_gradcheck_and_teacher_is_constant(rng):
    s = bm.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    t = bm.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    y = bm.tensor(rng.integers(0, 3, 4))
    assert bm.autograd.gradcheck(lambda a: F.distillation_loss(a, t, y, temperature=2.0, alpha=0.7), [s])
    F.distillation_loss(s, t, y).backward()
    assert t.grad is None and s.grad is not None


def test_distillation_soft_gradient_formula(rng):
    # d(T^2 KL)/d s = T (softmax(s/T) - softmax(t/T)) / N
    s, t, temperature = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), 3.0
    st = bm.tensor(s, requires_grad=True)
    F.distillation_loss(st, bm.tensor(t), temperature=temperature).backward()
    want = temperature * (np.exp(log_softmax_np(s / temperature)) - np.exp(log_softmax_np(t / temperature))) / 3
    assert_close(st.grad, want)


def test_bad_inputs_raise():
    a = bm.randn(2, 3)
    with pytest.raises(ValueError, match=r"\[kl_div\].*reduction"):
        F.kl_div(a, a, reduction="avg")
    with pytest.raises(ValueError, match=r"\[kl_div\].*shape"):
        F.kl_div(a, bm.randn(3, 2))
    with pytest.raises(TypeError, match=r"\[kl_div\]"):
        F.kl_div(a, bm.ones(2, 3, dtype=bm.int64))
    with pytest.raises(ValueError, match=r"\[distillation_loss\].*temperature"):
        F.distillation_loss(a, a, temperature=0)
    with pytest.raises(ValueError, match=r"\[distillation_loss\].*alpha"):
        F.distillation_loss(a, a, alpha=1.5)
    with pytest.raises(ValueError, match=r"\[distillation_loss\].*same shape"):
        F.distillation_loss(a, bm.randn(2, 4))
    with pytest.raises(ValueError, match=r"\[KLDivLoss\]"):
        nn.KLDivLoss(reduction="bad")
