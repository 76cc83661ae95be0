"""F.binary_cross_entropy and nn.BCELoss (probabilities in, PyTorch's formula with the logs
clamped at -100) against NumPy, gradients by gradcheck, and bad inputs."""
import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn
from bigmodel.nn import functional as F
from conftest import assert_close


def reference(p, t, w=None):
    loss = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log1p(-p), -100))
    return loss if w is None else loss * w


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_formula_with_weight_and_broadcast(rng, reduction):
    p = rng.uniform(0.01, 0.99, (5, 3))
    t = rng.uniform(0.0, 1.0, (5, 3))
    w = rng.uniform(0.5, 2.0, (3,))
    want = reference(p, t, w)
    want = {"mean": want.mean(), "sum": want.sum(), "none": want}[reduction]
    got = F.binary_cross_entropy(bm.tensor(p), bm.tensor(t), weight=bm.tensor(w), reduction=reduction)
    assert_close(got, want)
    mod = nn.BCELoss(weight=bm.tensor(w), reduction=reduction)
    assert_close(mod(bm.tensor(p), bm.tensor(t)), want)


def test_zero_and_one_probabilities_give_finite_loss():
    p = np.array([0.0, 1.0, 0.0, 1.0])
    t = np.array([0.0, 1.0, 1.0, 0.0])
    got = F.binary_cross_entropy(bm.tensor(p), bm.tensor(t), reduction="none")
    assert_close(got, np.array([0.0, 0.0, 100.0, 100.0]))


def test_gradcheck(rng):
    p = bm.tensor(rng.uniform(0.1, 0.9, (4, 3))).requires_grad_()
    t = bm.tensor(rng.uniform(0.0, 1.0, (4, 3)))
    assert bm.autograd.gradcheck(lambda a: F.binary_cross_entropy(a, t, reduction="sum"), [p])


def test_bad_inputs_raise():
    p = bm.tensor(np.array([0.2, 1.5, 0.3]), dtype=bm.float32)
    t = bm.tensor(np.array([0.0, 1.0, 1.0]), dtype=bm.float32)
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        F.binary_cross_entropy(p, t)
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        F.binary_cross_entropy(bm.tensor(np.array([0.2, 0.5])), t)  # shapes do not broadcast
    with pytest.raises(ValueError, match="reduction"):
        F.binary_cross_entropy(p.clamp(0, 1), t, reduction="avg")
