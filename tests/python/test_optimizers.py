"""Adam, AdamW, RMSprop and Adagrad against NumPy re-implementations of PyTorch's published
update rules (float64, several steps), param groups, and state_dict round trips."""
import math

import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn, optim
from conftest import assert_close


def adam_ref(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
             decoupled=False):
    p = p.copy()
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, 1):
        g = -g if maximize else g
        if decoupled:
            p = p * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        if amsgrad:
            vmax = np.maximum(vmax, v)
        vhat = (vmax if amsgrad else v) / (1 - betas[1] ** t)
        p = p - lr * (m / (1 - betas[0] ** t)) / (np.sqrt(vhat) + eps)
        out.append(p.copy())
    return out


def rmsprop_ref(p, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                maximize=False):
    p = p.copy()
    sq, ga, buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    out = []
    for g in grads:
        g = -g if maximize else g
        g = g + weight_decay * p
        sq = alpha * sq + (1 - alpha) * g * g
        if centered:
            ga = alpha * ga + (1 - alpha) * g
            avg = np.sqrt(sq - ga * ga) + eps
        else:
            avg = np.sqrt(sq) + eps
        if momentum > 0:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg
        out.append(p.copy())
    return out


def adagrad_ref(p, grads, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                maximize=False):
    p = p.copy()
    s = np.full_like(p, initial_accumulator_value)
    out = []
    for t, g in enumerate(grads, 1):
        g = -g if maximize else g
        g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        p = p - clr * g / (np.sqrt(s) + eps)
        out.append(p.copy())
    return out


def adamw_ref(p, grads, weight_decay=1e-2, **kw):  # AdamW's default weight decay differs from Adam's
    return adam_ref(p, grads, weight_decay=weight_decay, decoupled=True, **kw)


CASES = [
    (optim.Adam, adam_ref, dict(lr=0.01)),
    (optim.Adam, adam_ref, dict(lr=0.02, betas=(0.8, 0.95), weight_decay=0.1)),
    (optim.Adam, adam_ref, dict(lr=0.02, amsgrad=True, eps=1e-6)),
    (optim.Adam, adam_ref, dict(lr=0.01, maximize=True, weight_decay=0.05, amsgrad=True)),
    (optim.AdamW, adamw_ref, dict(lr=0.01)),  # default wd=1e-2
    (optim.AdamW, adamw_ref, dict(lr=0.05, weight_decay=0.3)),
    (optim.AdamW, adamw_ref,
     dict(lr=0.05, weight_decay=0.1, amsgrad=True, maximize=True)),
    (optim.RMSprop, rmsprop_ref, dict(lr=0.01)),
    (optim.RMSprop, rmsprop_ref, dict(lr=0.01, alpha=0.9, weight_decay=0.1)),
    (optim.RMSprop, rmsprop_ref, dict(lr=0.01, momentum=0.9)),
    (optim.RMSprop, rmsprop_ref, dict(lr=0.01, centered=True, momentum=0.5, eps=1e-4, maximize=True)),
    (optim.Adagrad, adagrad_ref, dict(lr=0.1)),
    (optim.Adagrad, adagrad_ref, dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.5)),
    (optim.Adagrad, adagrad_ref, dict(lr=0.1, weight_decay=0.2, eps=1e-6, maximize=True)),
]


@pytest.mark.parametrize("cls, ref, cfg", CASES, ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_matches_reference(rng, cls, ref, cfg):
    p0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(6)]
    expected = ref(p0, grads, **cfg)
    p = nn.Parameter(bm.tensor(p0))
    ptr = p.data_ptr()
    opt = cls([p], **cfg)
    for g, want in zip(grads, expected):
        p.grad = bm.tensor(g)
        opt.step()
        assert_close(p, want, atol=1e-12, rtol=1e-10)
    assert p.data_ptr() == ptr and p.is_leaf and p.requires_grad
    assert int(opt.state[p]["step"].item()) == 6


def test_defaults_match_pytorch():
    p = nn.Parameter(bm.zeros(2))
    d = optim.Adam([p]).defaults
    assert (d["lr"], d["betas"], d["eps"], d["weight_decay"], d["amsgrad"]) == (1e-3, (0.9, 0.999), 1e-8, 0.0, False)
    assert optim.AdamW([p]).defaults["weight_decay"] == 1e-2
    d = optim.RMSprop([p]).defaults
    assert (d["lr"], d["alpha"], d["eps"], d["momentum"], d["centered"]) == (1e-2, 0.99, 1e-8, 0.0, False)
    d = optim.Adagrad([p]).defaults
    assert (d["lr"], d["lr_decay"], d["eps"], d["initial_accumulator_value"]) == (1e-2, 0.0, 1e-10, 0.0)


def test_float32_params_and_closure(rng):
    p0 = rng.standard_normal(5).astype(np.float32)
    g = rng.standard_normal(5).astype(np.float32)
    p = nn.Parameter(bm.tensor(p0))
    opt = optim.Adam([p], lr=0.1)

    def closure():
        p.grad = bm.tensor(g)
        return 42.0
    assert opt.step(closure) == 42.0
    assert p.dtype == bm.float32 and opt.state[p]["exp_avg"].dtype == bm.float32
    assert_close(p, adam_ref(p0.astype(np.float64), [g.astype(np.float64)], lr=0.1)[0], atol=1e-5, rtol=1e-5)


def test_param_groups_and_skipped_params(rng):
    a = nn.Parameter(bm.tensor(rng.standard_normal(4)))
    b = nn.Parameter(bm.tensor(rng.standard_normal(4)))
    c = nn.Parameter(bm.tensor(rng.standard_normal(4)))
    a0, b0, c0 = (t.detach().numpy().copy() for t in (a, b, c))
    opt = optim.AdamW([{"params": [a]}, {"params": [b, c], "lr": 0.5, "weight_decay": 0.0}], lr=0.1)
    g = rng.standard_normal(4)
    a.grad, b.grad = bm.tensor(g), bm.tensor(g)
    opt.step()
    assert_close(a, adam_ref(a0, [g], lr=0.1, weight_decay=0.01, decoupled=True)[0])
    assert_close(b, adam_ref(b0, [g], lr=0.5, decoupled=True)[0])
    np.testing.assert_array_equal(c.detach().numpy(), c0)
    assert c not in opt.state or not opt.state[c]


@pytest.mark.parametrize("cls, cfg", [
    (optim.Adam, dict(lr=0.05, amsgrad=True)), (optim.AdamW, dict(lr=0.05)),
    (optim.RMSprop, dict(lr=0.01, momentum=0.9, centered=True)), (optim.Adagrad, dict(lr=0.1, lr_decay=0.01)),
])
def test_state_dict_round_trip_continues_identically(rng, cls, cfg, tmp_path):
    p0 = rng.standard_normal((2, 3))
    grads = [rng.standard_normal((2, 3)) for _ in range(6)]
    p = nn.Parameter(bm.tensor(p0))
    opt = cls([p], **cfg)
    for g in grads[:3]:
        p.grad = bm.tensor(g)
        opt.step()
    sd = opt.state_dict()
    assert set(sd["state"]) == {0} and "step" in sd["state"][0]
    bm.save({"opt": sd, "p": p}, tmp_path / "o.ckpt")
    loaded = bm.load(tmp_path / "o.ckpt")
    q = nn.Parameter(loaded["p"].clone())
    opt2 = cls([q], lr=123.0)  # options come back from the state dict
    opt2.load_state_dict(loaded["opt"])
    assert opt2.param_groups[0]["lr"] == cfg["lr"]
    assert isinstance(opt2.param_groups[0].get("betas", ()), tuple)
    for g in grads[3:]:
        p.grad, q.grad = bm.tensor(g), bm.tensor(g)
        opt.step()
        opt2.step()
    np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    assert int(opt2.state[q]["step"].item()) == 6


@pytest.mark.parametrize("cls, kwargs, match", [
    (optim.Adam, dict(lr=-1.0), "learning rate"),
    (optim.Adam, dict(betas=(1.0, 0.9)), "beta parameter at index 0"),
    (optim.AdamW, dict(betas=(0.9, -0.1)), "beta parameter at index 1"),
    (optim.Adam, dict(eps=-1e-8), "epsilon"),
    (optim.AdamW, dict(weight_decay=-0.1), "weight_decay"),
    (optim.RMSprop, dict(alpha=-0.5), "alpha"),
    (optim.RMSprop, dict(momentum=-0.5), "momentum"),
    (optim.Adagrad, dict(lr_decay=-1.0), "lr_decay"),
    (optim.Adagrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
])
def test_bad_options(cls, kwargs, match):
    p = nn.Parameter(bm.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=match):
        cls([p], **kwargs)


def test_trains_a_small_model():
    bm.manual_seed(0)
    model = nn.Linear(3, 1)
    x = bm.randn(32, 3)
    y = x.sum(dim=1, keepdim=True) * 0.5 + 1.0
    opt = optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-3 * losses[0] and math.isfinite(losses[-1])


# ------------------------------------------------------------------ gradient clipping
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm(rng, norm_type, max_norm):
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    params = [nn.Parameter(bm.tensor(rng.standard_normal(g.shape))) for g in grads]
    params.append(nn.Parameter(bm.tensor(rng.standard_normal(2))))  # no grad: ignored
    for p, g in zip(params, grads):
        p.grad = bm.tensor(g)
    flat = np.concatenate([g.ravel() for g in grads])
    want = np.abs(flat).max() if math.isinf(norm_type) else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    total = nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    assert total.item() == pytest.approx(want, rel=1e-12)
    coef = min(1.0, max_norm / (want + 1e-6))
    for p, g in zip(params, grads):
        assert_close(p.grad, g * coef)
    assert params[2].grad is None


def test_clip_grad_norm_nonfinite_and_empty(rng):
    p = nn.Parameter(bm.tensor([1.0, 2.0]))
    assert nn.utils.clip_grad_norm_([p], 1.0).item() == 0.0  # no gradients at all
    p.grad = bm.tensor([math.inf, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    nn.utils.clip_grad_norm_(p, 1.0)  # no error by default


def test_clip_grad_value(rng):
    g = rng.standard_normal((4, 5)) * 3
    p = nn.Parameter(bm.tensor(rng.standard_normal((4, 5))))
    p.grad = bm.tensor(g)
    ptr = p.grad.data_ptr()
    nn.utils.clip_grad_value_([p], 1.5)
    assert_close(p.grad, np.clip(g, -1.5, 1.5))
    assert p.grad.data_ptr() == ptr
