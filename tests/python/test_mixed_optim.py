"""Mixed-precision optimizer steps on the CPU: float16/bfloat16 parameters with float32 state
(and optional float32 master weights) through the fused kernels (_C._fused_sgd_/_fused_adam_)
and the per-tensor loop, bit for bit; master weights track float32 training; state dicts carry
the masters (exact resume, older states still load); GradScaler's fused unscale + inf check."""
import os

import numpy as np
import pytest

import bigmodel as bm
from bigmodel import _C, nn, optim

SHAPES = [(1,), (7,), (33, 5), (1000,), (3, 1023), (17, 17, 3)]  # odd sizes, past a 512 sub-block
HALF = [bm.bfloat16, bm.float16]


def bits(t):
    """The exact values of a tensor as float32/float64 bytes (half widens exactly)."""
    t = t.detach()
    if t.dtype in HALF:
        t = t.float()
    return t.numpy().tobytes()


def half_params(init, dtype):
    return [nn.Parameter(bm.tensor(a).to(dtype=dtype)) for a in init]


def run(cls, init, dtype, grads_per_step, **kw):
    params = half_params(init, dtype)
    opt = cls(params, **kw)
    for grads in grads_per_step:
        for p, g in zip(params, grads):
            p.grad = None if g is None else bm.tensor(g).to(dtype=dtype)
        opt.step()
    return params, opt


def make(rng, steps, scale=1.0, shapes=SHAPES, drop=None):
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = []
    for s in range(steps):
        gs = [(scale * rng.standard_normal(a.shape)).astype(np.float32) for a in init]
        if drop is not None and s == 1:
            gs[drop] = None
        grads.append(gs)
    return init, grads


def assert_fused_equals_loop(monkeypatch, cls, fused_name, dtype, init, grads, **kw):
    calls = []
    real = getattr(_C, fused_name)
    monkeypatch.setattr(_C, fused_name, lambda *a, **k: calls.append(1) or real(*a, **k))
    fp, fo = run(cls, init, dtype, grads, **kw)
    assert calls, "the fused path was not taken"
    n = len(calls)
    lp, lo = run(cls, init, dtype, grads, foreach=False, **kw)
    assert len(calls) == n, "foreach=False took the fused path"
    for i, (a, b) in enumerate(zip(fp, lp)):
        assert a.dtype == dtype and bits(a) == bits(b), f"param {i} differs"
    for a, b in zip(fp, lp):
        sa, sb = fo.state[a], lo.state[b]
        assert set(sa) == set(sb)
        for k in sa:
            assert sa[k].dtype == sb[k].dtype and bits(sa[k]) == bits(sb[k]), f"state {k} differs"
            if k != "step":
                assert sa[k].dtype == bm.float32, f"state {k} of a half parameter must be float32"
    return fp, fo


SGD_CFGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.02, maximize=True),
]
ADAM_CFGS = [
    dict(lr=1e-2),
    dict(lr=3e-3, weight_decay=0.05),
    dict(lr=1e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1, amsgrad=True, maximize=True),
]


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("master", [False, True])
@pytest.mark.parametrize("cfg", SGD_CFGS)
def test_sgd_half_fused_equals_loop_bitwise(rng, monkeypatch, dtype, master, cfg):
    init, grads = make(rng, 4, drop=2)
    p, o = assert_fused_equals_loop(monkeypatch, optim.SGD, "_fused_sgd_", dtype, init, grads,
                                    master_weights=master, **cfg)
    if master:
        for q in p:  # p is the rounding of its master copy
            m = o.state[q]["master_param"]
            assert m.dtype == bm.float32 and bits(m.to(dtype=dtype)) == bits(q)


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("master", [False, True])
@pytest.mark.parametrize("cfg", ADAM_CFGS)
def test_adam_half_fused_equals_loop_bitwise(rng, monkeypatch, cls, dtype, master, cfg):
    init, grads = make(rng, 4, drop=0)
    _, o = assert_fused_equals_loop(monkeypatch, cls, "_fused_adam_", dtype, init, grads, master_weights=master,
                                    **cfg)
    assert sorted(int(s["step"].item()) for s in o.state.values()) == [3] + [4] * (len(init) - 1)


def bf16_exact(a):
    """a rounded to bfloat16, as float32 (so float32 and bfloat16 runs see the same gradients)."""
    return bm.tensor(a).to(dtype=bm.bfloat16).float().numpy()


@pytest.mark.parametrize("cls,kw", [(optim.AdamW, dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
                                    (optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01))])
@pytest.mark.parametrize("foreach", [None, False])
def test_master_weights_are_the_float32_run_exactly(rng, cls, kw, foreach):
    """With gradients that bfloat16 holds exactly, the master copies follow the float32 run bit
    for bit (same float32 operations), and the bfloat16 parameters are their rounding."""
    init, grads = make(rng, 5, shapes=SHAPES[:4])
    init = [bf16_exact(a) for a in init]
    grads = [[bf16_exact(g) for g in gs] for gs in grads]
    p32, o32 = run(cls, init, bm.float32, grads, foreach=foreach, **kw)
    p16, o16 = run(cls, init, bm.bfloat16, grads, foreach=foreach, master_weights=True, **kw)
    for a, b in zip(p32, p16):
        assert bits(o16.state[b]["master_param"]) == bits(a)
        assert bits(b) == bits(a.detach().to(dtype=bm.bfloat16))


@pytest.mark.parametrize("cls", [optim.Adam, optim.SGD])
def test_plain_half_step_is_the_float32_step_on_float_p(rng, cls):
    """Without master weights one step is the float32 step on float(p), rounded into p."""
    init, grads = make(rng, 1, shapes=SHAPES[:3])
    p16, _ = run(cls, init, bm.bfloat16, grads, lr=0.01, weight_decay=0.1)
    start = [bm.tensor(a).to(dtype=bm.bfloat16).float().numpy() for a in init]
    g = [[bf16_exact(x) for x in gs] for gs in grads]
    p32, _ = run(cls, start, bm.float32, g, lr=0.01, weight_decay=0.1)
    for a, b in zip(p32, p16):
        assert bits(b) == bits(a.detach().to(dtype=bm.bfloat16))


def test_small_updates_accumulate_only_with_master_weights():
    """lr * grad far below bfloat16's spacing at 1.0: plain bfloat16 SGD never moves, the
    master copy accumulates the updates (to within float32 rounding) and p follows it."""
    def train(master):
        p = nn.Parameter(bm.ones(64, dtype=bm.bfloat16))
        opt = optim.SGD([p], lr=1e-3, master_weights=master)
        for _ in range(200):
            p.grad = bm.full([64], 0.25, dtype=bm.bfloat16)
            opt.step()
        return p, opt
    p, _ = train(False)
    assert np.all(p.detach().float().numpy() == 1.0)  # each 2.5e-4 step rounds away
    p, opt = train(True)
    master = opt.state[p]["master_param"].numpy()
    np.testing.assert_allclose(master, 1.0 - 200 * 2.5e-4, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(p.detach().float().numpy(), bm.tensor(master).to(dtype=bm.bfloat16).float().numpy())
    assert np.all(p.detach().float().numpy() < 1.0)


def _mlp(dtype, seed=0):
    bm.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
    return model.to(dtype=dtype)


def _train(model, dtype, steps, rng_seed=3, **kw):
    rng = np.random.default_rng(rng_seed)
    x = rng.standard_normal((64, 8)).astype(np.float32)
    y = np.sin(x[:, :1] * 2.0) + 0.5 * x[:, 1:2]
    xt, yt = bm.tensor(x).to(dtype=dtype), bm.tensor(y.astype(np.float32)).to(dtype=dtype)
    opt = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01, **kw)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(xt).float(), yt.float())
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    return losses


def test_bfloat16_master_weight_training_tracks_float32():
    l32 = _train(_mlp(bm.float32), bm.float32, 150)
    l16 = _train(_mlp(bm.bfloat16), bm.bfloat16, 150, master_weights=True)
    assert l32[-1] < 0.3 * l32[0]  # the float32 run learns
    # bfloat16 forward/backward with float32 masters: the same curve to within bf16 noise
    # (measured: final 8.5e-4 vs 8.0e-4; without masters 1.5e-3).
    assert abs(l16[-1] - l32[-1]) <= 0.2 * l32[-1], (l16[-1], l32[-1])
    assert max(abs(a - b) for a, b in zip(l16[:50], l32[:50])) <= 0.01 * l32[0]
    plain = _train(_mlp(bm.bfloat16), bm.bfloat16, 150)  # bfloat16 weights alone lose the late small steps
    assert abs(plain[-1] - l32[-1]) > abs(l16[-1] - l32[-1])


def _clone_state(sd):
    def c(v):
        if isinstance(v, bm.Tensor):
            return v.detach().clone()
        if isinstance(v, dict):
            return {k: c(x) for k, x in v.items()}
        if isinstance(v, list):
            return [c(x) for x in v]
        return v
    return c(sd)


@pytest.mark.parametrize("cls", [optim.AdamW, optim.SGD])
@pytest.mark.parametrize("foreach", [None, False])
def test_state_dict_carries_masters_and_resume_is_exact(rng, tmp_path, cls, foreach):
    kw = dict(lr=1e-2, momentum=0.9) if cls is optim.SGD else dict(lr=1e-2, amsgrad=True)
    init, grads = make(rng, 6, shapes=SHAPES[:4])
    ref, _ = run(cls, init, bm.bfloat16, grads, foreach=foreach, master_weights=True, **kw)
    params, opt = run(cls, init, bm.bfloat16, grads[:3], foreach=foreach, master_weights=True, **kw)
    sd = opt.state_dict()
    assert all(s["master_param"].dtype == bm.float32 for s in sd["state"].values())
    assert sd["param_groups"][0]["master_weights"] is True
    path = os.path.join(str(tmp_path), "ckpt.safetensors")
    bm.save({"model": [p.detach() for p in params], "optim": sd}, path)
    ck = bm.load(path)
    resumed = [nn.Parameter(t.clone()) for t in ck["model"]]
    opt2 = cls(resumed, **kw, master_weights=True)  # a fresh optimizer, as after a restart
    opt2.load_state_dict(ck["optim"])
    for gs in grads[3:]:
        for p, g in zip(resumed, gs):
            p.grad = bm.tensor(g).to(dtype=bm.bfloat16)
        opt2.step()
    for a, b in zip(ref, resumed):
        assert bits(a) == bits(b)


def test_older_state_without_masters_still_loads(rng):
    """A state saved by a bfloat16 run without master weights, with its state in bfloat16 (the
    layout before float32 state), loads into master_weights=True: state becomes float32 and the
    master copy is made from the parameter at the next step."""
    init, grads = make(rng, 3, shapes=SHAPES[:3])
    params, opt = run(optim.Adam, init, bm.bfloat16, grads[:2], lr=1e-2)
    sd = _clone_state(opt.state_dict())
    for s in sd["state"].values():
        assert "master_param" not in s
        s["exp_avg"] = s["exp_avg"].to(dtype=bm.bfloat16)
        s["exp_avg_sq"] = s["exp_avg_sq"].to(dtype=bm.bfloat16)
    del sd["param_groups"][0]["master_weights"]  # older groups lack the option
    opt2 = optim.Adam(params, lr=1e-2, master_weights=True)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["master_weights"] is True
    assert all(opt2.state[p]["exp_avg"].dtype == bm.float32 for p in params)
    before = [bits(p) for p in params]
    for p, g in zip(params, grads[2]):
        p.grad = bm.tensor(g).to(dtype=bm.bfloat16)
    opt2.step()
    for p, b in zip(params, before):
        st = opt2.state[p]
        assert st["master_param"].dtype == bm.float32 and int(st["step"].item()) == 3
        assert bits(p) != b and bits(st["master_param"].to(dtype=bm.bfloat16)) == bits(p)


# ------------------------------------------------------------------ bad inputs
def test_master_weights_bad_inputs_raise_clearly():
    f32 = nn.Parameter(bm.ones(3))
    h = nn.Parameter(bm.ones(3, dtype=bm.bfloat16))
    with pytest.raises(ValueError, match=r"\[AdamW\] master_weights=True keeps float32 master copies of "
                                         r"float16/bfloat16 parameters, but parameter 1 of group 0 is .*float32"):
        optim.AdamW([h, f32], master_weights=True)
    with pytest.raises(ValueError, match=r"\[SGD\] master_weights=True .* parameter 0 of group 1"):
        optim.SGD([h], lr=0.1, master_weights=True).add_param_group({"params": [f32]})
    opt = optim.Adam([h, f32], fused=True)
    h.grad, f32.grad = bm.ones(3, dtype=bm.bfloat16), bm.ones(6)[::2]  # a strided gradient
    with pytest.raises(ValueError, match=r"\[Adam\] fused=True.*contiguous"):
        opt.step()
    with pytest.raises(TypeError, match=r"\[fused_adam_\] master_params are float32 copies of float16/bfloat16 "
                                        r"parameters, but the parameters are float32"):
        _C._fused_adam_([bm.ones(3)], [bm.ones(3)], [bm.zeros(3)], [bm.zeros(3)], [], [bm.zeros([])], lr=0.1,
                        beta1=0.9, beta2=0.99, eps=1e-8, master_params=[bm.ones(3)])
    hp = [bm.ones(3, dtype=bm.bfloat16)]
    with pytest.raises(TypeError, match=r"\[fused_sgd_\] expected every state tensor of dtype float32 .*"
                                        r"master_params\[0\] of dtype bfloat16"):
        _C._fused_sgd_(hp, hp, [], lr=0.1, master_params=hp)
    with pytest.raises(ValueError, match=r"\[fused_sgd_\] expected one master_params entry per parameter"):
        _C._fused_sgd_(hp, hp, [], lr=0.1, master_params=[bm.ones(3), bm.ones(3)])
    with pytest.raises(ValueError, match=r"\[fused_sgd_\] master_params\[0\] has shape \[4\]"):
        _C._fused_sgd_(hp, hp, [], lr=0.1, master_params=[bm.ones(4)])


# ------------------------------------------------------------------ GradScaler
@pytest.mark.parametrize("dtype", [bm.float32, bm.float64, bm.bfloat16, bm.float16])
def test_fused_unscale_matches_mul_and_flags_inf(rng, dtype):
    gs = [bm.tensor(rng.standard_normal(s).astype(np.float32)).to(dtype=dtype) for s in SHAPES]
    ref = [(g * 0.125).detach() for g in gs]
    found = bm.zeros([1])
    _C._fused_unscale_(gs, found, bm.full([1], 0.125))
    assert float(found.item()) == 0.0
    for a, b in zip(gs, ref):
        assert bits(a) == bits(b)
    gs[4][1, 1000] = float("inf")
    gs[2][0, 0] = float("nan")
    _C._fused_unscale_(gs, found, bm.full([1], 0.5))
    assert float(found.item()) == 1.0


def test_fused_unscale_bad_inputs():
    with pytest.raises(TypeError, match=r"\[fused_unscale_\] found_inf must be float32, got float64"):
        _C._fused_unscale_([bm.ones(3)], bm.zeros([1], dtype=bm.float64), bm.ones(1))
    with pytest.raises(ValueError, match=r"\[fused_unscale_\] expects a one-element inv_scale"):
        _C._fused_unscale_([bm.ones(3)], bm.zeros([1]), bm.ones(2))
    with pytest.raises(TypeError, match=r"\[fused_unscale_\] expected every grad of dtype float32"):
        _C._fused_unscale_([bm.ones(3), bm.ones(3, dtype=bm.bfloat16)], bm.zeros([1]), bm.ones(1))
    with pytest.raises(ValueError, match=r"\[fused_unscale_\] expects contiguous grads"):
        _C._fused_unscale_([bm.ones(3, 4).transpose(0, 1)], bm.zeros([1]), bm.ones(1))


def _scaled_step(params, opt, scaler, grads):
    for p, g in zip(params, grads):
        p.grad = g
    return scaler.step(opt)


def test_grad_scaler_with_master_weights_skips_inf_and_steps_otherwise(rng, monkeypatch):
    calls = []
    real = _C._fused_unscale_
    monkeypatch.setattr(_C, "_fused_unscale_", lambda *a, **k: calls.append(len(a[0])) or real(*a, **k))
    init, _ = make(rng, 0, shapes=SHAPES[:3])
    params = half_params(init, bm.float16) + [nn.Parameter(bm.ones(5))]  # two buckets: float16, float32
    opt = optim.Adam([{"params": params[:3], "master_weights": True}, {"params": params[3:]}], lr=1e-2)
    scaler = bm.amp.GradScaler("cpu", init_scale=1024.0)
    good = [bm.full(list(p.shape), 512.0, dtype=p.dtype) for p in params]
    _scaled_step(params, opt, scaler, good)
    scaler.update()
    assert sorted(calls) == [1, 3]
    assert all(np.allclose(p.grad.detach().float().numpy(), 0.5) for p in params)  # unscaled in place
    state = {id(p): {k: bits(v) for k, v in opt.state[p].items()} for p in params}
    before = [bits(p) for p in params]
    bad = [g.clone() for g in good]
    bad[1][3] = float("inf")
    assert _scaled_step(params, opt, scaler, bad) is None
    scaler.update()
    assert scaler.get_scale() == 512.0
    assert [bits(p) for p in params] == before  # nothing moved: params, masters, state
    assert state == {id(p): {k: bits(v) for k, v in opt.state[p].items()} for p in params}
    _scaled_step(params, opt, scaler, [g * 0.5 for g in good])
    assert [bits(p) for p in params] != before
    assert all(int(opt.state[p]["step"].item()) == 2 for p in params)


def test_grad_scaler_non_contiguous_grad_is_unscaled_alone(rng):
    p = nn.Parameter(bm.ones(4, 3))
    q = nn.Parameter(bm.ones(3))
    opt = optim.SGD([p, q], lr=0.1, foreach=False)
    scaler = bm.amp.GradScaler("cpu", init_scale=4.0)
    p.grad = bm.full([3, 4], 8.0).transpose(0, 1)
    q.grad = bm.full([3], float("nan"))
    scaler.unscale_(opt)
    np.testing.assert_array_equal(p.grad.numpy(), np.full((4, 3), 2.0, np.float32))
    assert scaler.step(opt) is None  # the NaN in the fused bucket skips the step
    np.testing.assert_array_equal(p.detach().numpy(), np.ones((4, 3), np.float32))
