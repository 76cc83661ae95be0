"""LR schedules against their formulas, step(epoch), SequentialLR, OneCycleLR (two and
three phases, momentum cycling) and state_dict resume."""
import math

import pytest

import bigmodel as bm
from bigmodel import nn, optim
from bigmodel.optim import lr_scheduler as sched


def make_opt(lrs=(0.1,), cls=optim.SGD, **kw):
    groups = [{"params": [nn.Parameter(bm.zeros(2))], "lr": lr} for lr in lrs]
    return cls(groups, **kw)


def run(scheduler, opt, n):
    """LRs of group 0 at epochs 0..n-1 (read before each step, as a training loop sees them)."""
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        scheduler.step()
    return out


def approx(values, expected):
    assert len(values) == len(expected)
    for v, e in zip(values, expected):
        assert v == pytest.approx(e, rel=1e-12, abs=1e-15)


def test_step_multistep_exponential_constant():
    opt = make_opt()
    approx(run(sched.StepLR(opt, step_size=3, gamma=0.5), opt, 8), [0.1 * 0.5 ** (t // 3) for t in range(8)])
    opt = make_opt()
    approx(run(sched.MultiStepLR(opt, milestones=[5, 2, 5], gamma=0.1), opt, 7),
           [0.1, 0.1, 0.01, 0.01, 0.01, 1e-4, 1e-4])  # repeated milestone counts twice
    opt = make_opt()
    approx(run(sched.ExponentialLR(opt, gamma=0.9), opt, 6), [0.1 * 0.9 ** t for t in range(6)])
    opt = make_opt()
    approx(run(sched.ConstantLR(opt, factor=0.5, total_iters=3), opt, 5), [0.05, 0.05, 0.05, 0.1, 0.1])


def test_cosine_closed_form_and_groups():
    opt = make_opt((0.1, 0.4))
    s = sched.CosineAnnealingLR(opt, T_max=10, eta_min=0.01)
    for t in range(15):
        for base, group in zip((0.1, 0.4), opt.param_groups):
            assert group["lr"] == pytest.approx(0.01 + (base - 0.01) * (1 + math.cos(math.pi * t / 10)) / 2)
        assert s.get_last_lr() == [g["lr"] for g in opt.param_groups]
        s.step()
    s.step(3)  # explicit epoch: the same closed form
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 + 0.09 * (1 + math.cos(math.pi * 0.3)) / 2)


def test_linear_and_lambda():
    opt = make_opt()
    approx(run(sched.LinearLR(opt, start_factor=0.25, end_factor=1.0, total_iters=4), opt, 6),
           [0.1 * (0.25 + 0.75 * min(t, 4) / 4) for t in range(6)])
    opt = make_opt((0.1, 0.2))
    s = sched.LambdaLR(opt, [lambda e: 0.5 ** e, lambda e: 1.0 / (e + 1)])
    for _ in range(3):
        s.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.125)
    assert opt.param_groups[1]["lr"] == pytest.approx(0.2 / 4)
    assert "lr_lambdas" not in s.state_dict()


def onecycle_ref(t, total, max_lr, pct, div, final_div, three_phase, anneal):
    init, low = max_lr / div, max_lr / div / final_div
    if three_phase:
        phases = [(pct * total - 1, init, max_lr), (2 * pct * total - 2, max_lr, init), (total - 1, init, low)]
    else:
        phases = [(pct * total - 1, init, max_lr), (total - 1, max_lr, low)]
    start = 0
    for i, (end, a, b) in enumerate(phases):
        if t <= end or i == len(phases) - 1:
            pct_t = (t - start) / (end - start)
            if anneal == "cos":
                return b + (a - b) / 2 * (math.cos(math.pi * pct_t) + 1)
            return a + (b - a) * pct_t
        start = end


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_onecycle(three_phase, anneal):
    opt = make_opt(cls=optim.SGD, momentum=0.9)
    s = sched.OneCycleLR(opt, max_lr=1.0, total_steps=20, pct_start=0.25, three_phase=three_phase,
                         anneal_strategy=anneal, div_factor=10.0, final_div_factor=100.0)
    lrs = run(s, opt, 20)
    approx(lrs, [onecycle_ref(t, 20, 1.0, 0.25, 10.0, 100.0, three_phase, anneal) for t in range(20)])
    assert lrs[0] == pytest.approx(0.1) and max(lrs) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="total number of steps"):
        s.step()


def test_onecycle_cycles_momentum_and_betas():
    opt = make_opt(cls=optim.SGD, momentum=0.9)
    s = sched.OneCycleLR(opt, max_lr=1.0, epochs=2, steps_per_epoch=5, base_momentum=0.8, max_momentum=0.9)
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.9)
    s.step(), s.step()
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.8)  # peak LR at step 2 (pct 0.3 of 10, minus 1)
    adam = make_opt(cls=optim.Adam)
    sched.OneCycleLR(adam, max_lr=0.01, total_steps=10)
    assert adam.param_groups[0]["betas"] == (pytest.approx(0.95), 0.999)
    with pytest.raises(ValueError, match="momentum"):
        sched.OneCycleLR(make_opt(cls=optim.Adagrad), max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match="total_steps"):
        sched.OneCycleLR(make_opt(), max_lr=0.1)


def test_sequential_warmup_then_cosine():
    opt = make_opt()
    warm = sched.LinearLR(opt, start_factor=0.1, total_iters=3)
    cos = sched.CosineAnnealingLR(opt, T_max=5)
    s = sched.SequentialLR(opt, [warm, cos], milestones=[3])
    lrs = run(s, opt, 9)
    expected = [0.1 * (0.1 + 0.9 * t / 3) for t in range(3)] + \
        [0.1 * (1 + math.cos(math.pi * t / 5)) / 2 for t in range(6)]
    approx(lrs, expected)
    with pytest.raises(ValueError, match="milestones"):
        sched.SequentialLR(opt, [warm, cos], milestones=[])


def test_warmup_cosine():
    opt = make_opt((0.1, 1.0))
    s = sched.warmup_cosine(opt, warmup_steps=4, total_steps=12, min_lr=0.001)
    got = [[] for _ in range(2)]
    for _ in range(14):
        for i, g in enumerate(opt.param_groups):
            got[i].append(g["lr"])
        s.step()
    for base, lrs in zip((0.1, 1.0), got):
        exp = [base * (t + 1) / 4 if t < 4 else
               (0.001 + (base - 0.001) * (1 + math.cos(math.pi * (t - 4) / 8)) / 2 if t <= 12 else 0.001)
               for t in range(14)]
        approx(lrs, exp)
        assert lrs[3] == pytest.approx(base) and lrs[12] == pytest.approx(0.001)
    with pytest.raises(ValueError, match="warmup_steps"):
        sched.warmup_cosine(make_opt(), warmup_steps=10, total_steps=5)


@pytest.mark.parametrize("factory", [
    lambda o: sched.StepLR(o, 2, 0.5),
    lambda o: sched.CosineAnnealingLR(o, T_max=7),
    lambda o: sched.OneCycleLR(o, max_lr=0.5, total_steps=12),
    lambda o: sched.SequentialLR(o, [sched.ConstantLR(o, 0.5, 2), sched.ExponentialLR(o, 0.9)], [3]),
    lambda o: sched.warmup_cosine(o, 3, 10),
])
def test_state_dict_resume(factory, tmp_path):
    opt = make_opt(momentum=0.9)
    s = factory(opt)
    for _ in range(4):
        s.step()
    bm.save({"sched": s.state_dict(), "opt": opt.state_dict()}, tmp_path / "s.ckpt")
    ref = run(s, opt, 5)
    opt2 = make_opt(momentum=0.9)
    s2 = factory(opt2)
    ck = bm.load(tmp_path / "s.ckpt")
    opt2.load_state_dict(ck["opt"])
    s2.load_state_dict(ck["sched"])
    assert s2.last_epoch == 4
    assert run(s2, opt2, 5) == ref


def test_base_requires_optimizer_and_initial_lr():
    with pytest.raises(TypeError):
        sched.StepLR("not an optimizer", 1)
    with pytest.raises(KeyError, match="initial_lr"):
        sched.StepLR(make_opt(), 1, last_epoch=3)
