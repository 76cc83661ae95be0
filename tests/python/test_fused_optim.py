"""Multi-tensor (fused) optimizer steps and norms on the CPU: the fused path of SGD / Adam /
AdamW gives the same bits as the per-tensor loop (foreach=False), the fused norm matches
NumPy, clip_grad_norm_ is unchanged, and bad lists raise errors naming the op."""
import numpy as np
import pytest

import bigmodel as bm
from bigmodel import _C, nn, optim
from bigmodel.nn.utils import clip_grad_norm_

SHAPES = [(1,), (7,), (33, 5), (1000,), (3, 1023), (17, 17, 3)]  # odd sizes, not multiples of a vector


def make_params(rng, dtype, shapes=SHAPES):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def run(cls, init, grads_per_step, groups=None, **kw):
    """Runs cls over params built from `init` for len(grads_per_step) steps; returns (params, optimizer)."""
    params = [nn.Parameter(bm.tensor(a.copy())) for a in init]
    if groups is None:
        opt = cls(params, **kw)
    else:  # groups: list of (indices, options)
        opt = cls([dict(params=[params[i] for i in idx], **o) for idx, o in groups], **kw)
    for grads in grads_per_step:
        for p, g in zip(params, grads):
            p.grad = None if g is None else bm.tensor(g)
        opt.step()
    return params, opt


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same_run(cls, init, grads, monkeypatch, fused_name, groups=None, **kw):
    calls = []
    real = getattr(_C, fused_name)

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(_C, fused_name, counting)
    fused_params, fused_opt = run(cls, init, grads, groups, **kw)
    assert calls, "the fused path was not taken"
    n_fused = len(calls)
    loop_params, loop_opt = run(cls, init, grads, groups, foreach=False, **kw)
    assert len(calls) == n_fused, "foreach=False still took the fused path"
    for i, (a, b) in enumerate(zip(fused_params, loop_params)):
        assert same_bits(a.detach().numpy(), b.detach().numpy()), f"param {i} differs"
    for pa, pb in zip(fused_params, loop_params):
        sa, sb = fused_opt.state[pa], loop_opt.state[pb]
        assert set(sa) == set(sb)
        for k in sa:
            assert same_bits(sa[k].numpy(), sb[k].numpy()), f"state {k} differs"
    return fused_opt


def grads_for(rng, init, steps, dtype, drop=None):
    out = []
    for s in range(steps):
        gs = [rng.standard_normal(a.shape).astype(dtype) for a in init]
        if drop is not None and s == 1:
            gs[drop] = None  # a parameter without a gradient this step
        out.append(gs)
    return out


SGD_CFGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.02, maximize=True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", SGD_CFGS)
def test_sgd_fused_equals_loop_bitwise(rng, monkeypatch, dtype, cfg):
    init = make_params(rng, dtype)
    grads = grads_for(rng, init, 4, dtype, drop=2)
    assert_same_run(optim.SGD, init, grads, monkeypatch, "_fused_sgd_", **cfg)


ADAM_CFGS = [
    dict(lr=1e-2),
    dict(lr=3e-3, weight_decay=0.05),
    dict(lr=3e-3, betas=(0.8, 0.95), eps=1e-6, amsgrad=True),
    dict(lr=1e-2, weight_decay=0.1, amsgrad=True, maximize=True),
]


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", ADAM_CFGS)
def test_adam_fused_equals_loop_bitwise(rng, monkeypatch, cls, dtype, cfg):
    init = make_params(rng, dtype)
    grads = grads_for(rng, init, 4, dtype, drop=0)
    opt = assert_same_run(cls, init, grads, monkeypatch, "_fused_adam_", **cfg)
    steps = sorted(int(s["step"].item()) for s in opt.state.values())
    assert steps == [3] + [4] * (len(init) - 1)  # param 0 had no gradient at step 2


@pytest.mark.parametrize("cls,name", [(optim.SGD, "_fused_sgd_"), (optim.AdamW, "_fused_adam_")])
def test_param_groups_with_their_own_options(rng, monkeypatch, cls, name):
    init = make_params(rng, np.float32)
    grads = grads_for(rng, init, 3, np.float32)
    if cls is optim.SGD:
        groups = [([0, 1, 2], dict(momentum=0.9)), ([3, 4, 5], dict(lr=0.01, nesterov=True, momentum=0.5))]
        kw = dict(lr=0.1)
    else:
        groups = [([0, 2, 4], dict(weight_decay=0.0)), ([1, 3, 5], dict(lr=1e-2, amsgrad=True))]
        kw = dict(lr=3e-3)
    assert_same_run(cls, init, grads, monkeypatch, name, groups=groups, **kw)


def test_resume_from_loop_state_continues_bitwise(rng):
    """A state dict written by the per-tensor path continues identically on the fused path."""
    init = make_params(rng, np.float32, SHAPES[:4])
    grads = grads_for(rng, init, 6, np.float32)
    ref, _ = run(optim.AdamW, init, grads, lr=1e-2, amsgrad=True, foreach=False)
    params, opt = run(optim.AdamW, init, grads[:3], lr=1e-2, amsgrad=True, foreach=False)
    sd = opt.state_dict()
    opt2 = optim.AdamW(params, lr=1e-2, amsgrad=True)  # fused by default
    opt2.load_state_dict(sd)
    opt2.param_groups[0]["foreach"] = None  # the loaded groups carry foreach=False
    for gs in grads[3:]:
        for p, g in zip(params, gs):
            p.grad = bm.tensor(g)
        opt2.step()
    for a, b in zip(params, ref):
        assert same_bits(a.detach().numpy(), b.detach().numpy())


def test_half_params_take_the_fused_path_and_fused_true_refuses_mixtures(rng, monkeypatch):
    p = nn.Parameter(bm.tensor(rng.standard_normal(9).astype(np.float32)).to(dtype=bm.bfloat16))
    p.grad = bm.tensor(rng.standard_normal(9).astype(np.float32)).to(dtype=bm.bfloat16)
    before = p.detach().float().numpy().copy()
    called = []
    real = _C._fused_adam_
    monkeypatch.setattr(_C, "_fused_adam_", lambda *a, **k: called.append(1) or real(*a, **k))
    opt = optim.Adam([p], lr=0.1)
    opt.step()  # float32 state, one fused call (tests/python/test_mixed_optim.py checks the bits)
    assert called and opt.state[p]["exp_avg"].dtype == bm.float32
    assert not np.array_equal(p.detach().float().numpy(), before)
    q = nn.Parameter(bm.ones(3, 3))
    q.grad = bm.ones(3, 3).t()  # not contiguous: no fused kernel takes it
    with pytest.raises(ValueError, match=r"\[Adam\] fused=True"):
        optim.Adam([p, q], lr=0.1, fused=True).step()
    with pytest.raises(ValueError, match=r"\[SGD\] fused=True"):
        optim.SGD([p, q], lr=0.1, foreach=True).step()


@pytest.mark.parametrize("make", [lambda ps, **k: optim.AdamW(ps, lr=0.1, **k),
                                  lambda ps, **k: optim.SGD(ps, lr=0.1, momentum=0.9, **k)])
def test_a_group_mixing_dtypes_makes_one_fused_call_per_dtype(rng, monkeypatch, make):
    """bfloat16 weights beside float32 and float64 tensors in one group: one fused call per
    dtype, with the loop's bits."""
    dtypes = [bm.bfloat16, bm.float32, bm.bfloat16, bm.float64]
    init = [rng.standard_normal(7) for _ in dtypes]
    grads = [[rng.standard_normal(7) for _ in dtypes] for _ in range(3)]

    def run(**kw):
        ps = [nn.Parameter(bm.tensor(a, dtype=dt)) for a, dt in zip(init, dtypes)]
        opt = make(ps, **kw)
        for gs in grads:
            for p, g, dt in zip(ps, gs, dtypes):
                p.grad = bm.tensor(g, dtype=dt)
            opt.step()
        return [p.detach().float().numpy() if p.dtype != bm.float64 else p.detach().numpy() for p in ps]

    calls = []
    for name in ("_fused_adam_", "_fused_sgd_"):
        real = getattr(_C, name)
        monkeypatch.setattr(_C, name, lambda *a, _real=real, **k: calls.append(len(a[0])) or _real(*a, **k))
    fused = run()
    assert calls == [2, 1, 1] * 3  # bfloat16 (2 tensors), float32, float64 on each of 3 steps
    calls.clear()
    loop = run(foreach=False)
    assert not calls
    for a, b in zip(fused, loop):
        assert same_bits(a, b)


def test_skip_nonfinite_still_skips(rng):
    init = make_params(rng, np.float32, SHAPES[:3])
    params = [nn.Parameter(bm.tensor(a.copy())) for a in init]
    opt = optim.AdamW(params, lr=0.1, skip_nonfinite=True)
    for p in params:
        p.grad = bm.ones(p.shape)
    g = np.ones(params[1].shape, np.float32)
    g.flat[0] = np.nan
    params[1].grad = bm.tensor(g)
    with pytest.warns(RuntimeWarning, match="skipped"):
        opt.step()
    assert opt.skipped_steps == 1 and not opt.state
    for p, a in zip(params, init):
        assert same_bits(p.detach().numpy(), a)


def test_sgd_first_step_buffer_is_a_copy_of_the_gradient(rng):
    p = nn.Parameter(bm.tensor(rng.standard_normal(40).astype(np.float32)))
    g = rng.standard_normal(40).astype(np.float32)
    p.grad = bm.tensor(g)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt.step()
    buf = opt.state[p]["momentum_buffer"]
    assert same_bits(buf.numpy(), g)
    p.grad.mul_(2.0)  # the buffer must not alias the gradient
    assert same_bits(buf.numpy(), g)


# ------------------------------------------------------------------ fused norm / clip_grad_norm_
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, float("inf")])
def test_fused_norm_matches_numpy(rng, dtype, p):
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(1,), (7,), (1000,), (33, 31), (40000,)]]
    flat = np.concatenate([a.ravel() for a in arrays]).astype(np.float64)
    want = np.max(np.abs(flat)) if np.isinf(p) else np.sum(np.abs(flat) ** p) ** (1 / p)
    got = _C._fused_norm([bm.tensor(a) for a in arrays], p)
    assert got.dtype == (bm.float32 if dtype == np.float32 else bm.float64) and got.dim() == 0
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(float(got.item()), want, rtol=rtol)


def test_fused_norm_noncontiguous_half_and_nan(rng):
    a = rng.standard_normal((6, 9)).astype(np.float32)
    t = bm.tensor(a).transpose(0, 1)
    np.testing.assert_allclose(float(_C._fused_norm([t]).item()), np.linalg.norm(a), rtol=1e-6)
    h = bm.tensor(a).to(dtype=bm.float16)
    np.testing.assert_allclose(float(_C._fused_norm([h]).item()), np.linalg.norm(h.float().numpy()), rtol=1e-3)
    a[2, 3] = np.nan
    for p in (2.0, float("inf")):
        assert np.isnan(float(_C._fused_norm([bm.tensor(a), bm.ones(3)], p).item()))


def test_fused_mul_matches_per_tensor(rng):
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(1,), (7,), (300,)]]
    ts = [bm.tensor(a) for a in arrays]
    scale = bm.tensor(np.float32(0.37)).reshape(())
    _C._fused_mul_(ts, scale)
    for t, a in zip(ts, arrays):
        assert same_bits(t.numpy(), a * np.float32(0.37))


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e4])
def test_clip_grad_norm_fused_equals_loop(rng, monkeypatch, norm_type, max_norm):
    shapes = [(1,), (7,), (33, 5), (1000,)]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]

    def clip(foreach):
        ps = [nn.Parameter(bm.zeros(s)) for s in shapes]
        for p, g in zip(ps, grads):
            p.grad = bm.tensor(g)
        total = clip_grad_norm_(ps, max_norm, norm_type, foreach=foreach)
        return float(total.item()), [p.grad.numpy() for p in ps]

    calls = []
    real = _C._fused_norm
    monkeypatch.setattr(_C, "_fused_norm", lambda *a: calls.append(1) or real(*a))
    t_fused, g_fused = clip(None)
    assert calls == [1]
    t_loop, g_loop = clip(False)
    assert calls == [1]
    np.testing.assert_allclose(t_fused, t_loop, rtol=1e-6)
    flat = np.concatenate([g.ravel() for g in grads]).astype(np.float64)
    want = np.max(np.abs(flat)) if np.isinf(norm_type) else np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type)
    np.testing.assert_allclose(t_fused, want, rtol=1e-6)
    for a, b in zip(g_fused, g_loop):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=0)
    if max_norm > t_loop:  # no clipping: the gradients are untouched
        for a, g in zip(g_fused, grads):
            assert same_bits(a, g)


def test_clip_grad_norm_foreach_true_refuses_mixtures(rng):
    a, b = nn.Parameter(bm.zeros(3)), nn.Parameter(bm.zeros(3, dtype=bm.float64))
    a.grad, b.grad = bm.ones(3), bm.ones(3, dtype=bm.float64)
    with pytest.raises(ValueError, match=r"\[clip_grad_norm_\] foreach=True.*mixture"):
        clip_grad_norm_([a, b], 1.0, foreach=True)
    total = clip_grad_norm_([a, b], 1.0)  # default: the per-tensor path takes the mixture
    np.testing.assert_allclose(float(total.item()), np.sqrt(6), rtol=1e-6)


# ------------------------------------------------------------------ bad inputs
def test_bad_lists_raise_naming_the_op():
    p = [bm.ones(3), bm.ones(4)]
    g = [bm.ones(3)]
    with pytest.raises(ValueError, match=r"\[fused_sgd_\] expected one grads per parameter: got 2 params and 1"):
        _C._fused_sgd_(p, g, [], lr=0.1)
    with pytest.raises(ValueError, match=r"\[fused_adam_\] expected one exp_avgs per parameter"):
        _C._fused_adam_(p, [bm.ones(3), bm.ones(4)], [bm.ones(3)], [bm.ones(3), bm.ones(4)], [],
                        [bm.zeros([]), bm.zeros([])], lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8)
    with pytest.raises(TypeError, match=r"\[fused_sgd_\] expected every tensor of dtype float32.*float64"):
        _C._fused_sgd_(p, [bm.ones(3), bm.ones(4, dtype=bm.float64)], [], lr=0.1)
    with pytest.raises(TypeError, match=r"\[fused_adam_\] supports float32, float64, float16 and bfloat16 "
                                        r"parameters, got int64"):
        h = [bm.ones(3, dtype=bm.int64)]
        _C._fused_adam_(h, h, h, h, [], [bm.zeros([])], lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8)
    with pytest.raises(TypeError, match=r"\[fused_adam_\] expected every state tensor of dtype float32 \(the state "
                                        r"of the parameters' dtype float16\), got exp_avgs\[0\] of dtype float16"):
        h = [bm.ones(3, dtype=bm.float16)]
        _C._fused_adam_(h, h, h, h, [], [bm.zeros([])], lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8)
    with pytest.raises(ValueError, match=r"\[fused_sgd_\] grads\[1\] has shape \[5\] but params\[1\] has shape \[4\]"):
        _C._fused_sgd_(p, [bm.ones(3), bm.ones(5)], [], lr=0.1)
    with pytest.raises(ValueError, match=r"\[fused_sgd_\] expects contiguous tensors"):
        _C._fused_sgd_([bm.ones(3, 4).transpose(0, 1)], [bm.ones(4, 3)], [], lr=0.1)
    with pytest.raises(ValueError, match=r"\[fused_norm\] expects at least one tensor"):
        _C._fused_norm([])
    with pytest.raises(ValueError, match=r"\[fused_norm\] norm_type must be positive"):
        _C._fused_norm([bm.ones(3)], 0.0)
    with pytest.raises(TypeError, match=r"\[fused_norm\] expected every tensor of dtype float32"):
        _C._fused_norm([bm.ones(3), bm.ones(3, dtype=bm.float64)])
    with pytest.raises(ValueError, match=r"\[fused_mul_\] expects a one-element scale"):
        _C._fused_mul_([bm.ones(3)], bm.ones(2))
    with pytest.raises(ValueError, match=r"\[fused_adam_\] max_exp_avg_sqs given without amsgrad"):
        _C._fused_adam_([bm.ones(3)], [bm.ones(3)], [bm.ones(3)], [bm.ones(3)], [bm.ones(3)], [bm.zeros([])],
                        lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8)
    x = bm.ones(3)
    steps = [bm.zeros([])]
    with pytest.raises(ValueError):  # a failed check changes nothing, not even the step counters
        _C._fused_adam_([x], [bm.ones(3)], [bm.ones(3)], [bm.ones(4)], [], steps, lr=0.1, beta1=0.9, beta2=0.99,
                        eps=1e-8)
    assert float(steps[0].item()) == 0.0 and same_bits(x.numpy(), np.ones(3, np.float32))


def test_fused_blocker_reasons():
    assert _C._fused_blocker([bm.ones(3), bm.ones(2, 2)]) is None
    assert "bfloat16" in _C._fused_blocker([bm.ones(3, dtype=bm.bfloat16)])
    assert _C._fused_blocker([bm.ones(3, dtype=bm.bfloat16)], any_floating=True) is None
    assert "non-contiguous" in _C._fused_blocker([bm.ones(3, 4).transpose(0, 1)])
    assert "mixture" in _C._fused_blocker([bm.ones(3), bm.ones(3, dtype=bm.float64)])
