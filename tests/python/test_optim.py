"""Tests for bm.optim: SGD against a NumPy re-implementation of PyTorch's rule, param groups,
zero_grad, bad options, and state_dict round trips."""
import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn, optim
from conftest import assert_close


def sgd_reference(param, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                  maximize=False):
    """PyTorch's SGD written out in float64 NumPy; returns the parameter after each step."""
    p = param.copy()
    buf = None
    history = []
    for g in grads:
        d = -g if maximize else g.copy()
        if weight_decay:
            d = d + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
        history.append(p.copy())
    return history


CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.02, momentum=0.9, weight_decay=0.1),
    dict(lr=0.02, momentum=0.5, weight_decay=0.01, nesterov=True, maximize=True),
    dict(lr=0.1, weight_decay=0.2),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_sgd_matches_reference(rng, cfg):
    p0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(5)]
    expected = sgd_reference(p0, grads, **cfg)
    p = nn.Parameter(bm.tensor(p0))
    opt = optim.SGD([p], **cfg)
    for g, want in zip(grads, expected):
        p.grad = bm.tensor(g)
        opt.step()
        assert_close(p, want)
    assert p.requires_grad and p.is_leaf


def test_sgd_updates_in_place_and_skips_params_without_grad(rng):
    a = nn.Parameter(bm.tensor(rng.standard_normal(5)))
    b = nn.Parameter(bm.tensor(rng.standard_normal(5)))
    b_before = b.detach().numpy().copy()
    ptr = a.data_ptr()
    a.grad = bm.tensor(np.ones(5))
    optim.SGD([a, b], lr=0.5).step()
    assert a.data_ptr() == ptr
    np.testing.assert_array_equal(b.detach().numpy(), b_before)


def test_param_groups_have_their_own_options(rng):
    a = nn.Parameter(bm.tensor(rng.standard_normal(4)))
    b = nn.Parameter(bm.tensor(rng.standard_normal(4)))
    a0, b0 = a.detach().numpy().copy(), b.detach().numpy().copy()
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 1.0
    assert opt.param_groups[1]["momentum"] == 0.9
    g = np.full(4, 2.0)
    a.grad, b.grad = bm.tensor(g), bm.tensor(g)
    opt.step()
    assert_close(a, a0 - 0.1 * g)
    assert_close(b, b0 - 1.0 * g)
    c = nn.Parameter(bm.tensor(rng.standard_normal(2)))
    opt.add_param_group({"params": c, "lr": 0.3})
    assert opt.param_groups[2]["params"][0] is c and opt.param_groups[2]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_zero_grad(rng):
    p = nn.Parameter(bm.tensor(rng.standard_normal(3)))
    opt = optim.SGD([p], lr=0.1)
    p.grad = bm.tensor(np.ones(3))
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), np.zeros(3))
    opt.zero_grad()
    assert p.grad is None


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-0.1), "learning rate"),
    (dict(lr=0.1, momentum=-1.0), "momentum"),
    (dict(lr=0.1, weight_decay=-1.0), "weight_decay"),
    (dict(lr=0.1, nesterov=True), "Nesterov"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
])
def test_sgd_rejects_bad_options(kwargs, match):
    p = nn.Parameter(bm.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=match):
        optim.SGD([p], **kwargs)


def test_optimizer_rejects_bad_params():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable"):
        optim.SGD(nn.Parameter(bm.tensor([1.0])), lr=0.1)
    p = nn.Parameter(bm.tensor([1.0]))
    with pytest.raises(ValueError, match="duplicate"):
        optim.SGD([p, p], lr=0.1)


def test_state_dict_round_trip_continues_identically(rng):
    p0 = rng.standard_normal((2, 3))
    grads = [rng.standard_normal((2, 3)) for _ in range(6)]
    a = nn.Parameter(bm.tensor(p0))
    opt_a = optim.SGD([a], lr=0.05, momentum=0.9, nesterov=True)
    for g in grads[:3]:
        a.grad = bm.tensor(g)
        opt_a.step()
    sd = opt_a.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert sd["param_groups"][0]["params"] == [0] and sd["param_groups"][0]["lr"] == 0.05
    assert "momentum_buffer" in sd["state"][0]

    b = nn.Parameter(bm.tensor(a.detach().numpy().copy()))
    opt_b = optim.SGD([b], lr=1.0, momentum=0.9, nesterov=True)
    opt_b.load_state_dict(sd)
    assert opt_b.param_groups[0]["lr"] == 0.05
    # The loaded buffer is a copy: stepping A must not change B's state.
    for g in grads[3:]:
        a.grad = bm.tensor(g)
        opt_a.step()
    for g in grads[3:]:
        b.grad = bm.tensor(g)
        opt_b.step()
    assert_close(b, a.detach().numpy())
    expected = sgd_reference(p0, grads, lr=0.05, momentum=0.9, nesterov=True)[-1]
    assert_close(b, expected)


def test_load_state_dict_rejects_mismatched_groups():
    a = nn.Parameter(bm.tensor([1.0]))
    b = nn.Parameter(bm.tensor([2.0]))
    sd = optim.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="parameters"):
        optim.SGD([a], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="groups"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)


def test_step_with_closure_returns_loss(rng):
    x = nn.Parameter(bm.tensor(np.array([3.0, -2.0])))
    opt = optim.SGD([x], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (x * x).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss) == pytest.approx(13.0)
    assert_close(x, np.array([3.0, -2.0]) * 0.5)  # x - 0.25 * 2x
