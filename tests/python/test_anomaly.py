"""Anomaly detection (bm.autograd.detect_anomaly / set_detect_anomaly): the first op whose
forward output or backward gradient is NaN/Inf is named, with the traceback of where it
was created; the mode is off by default, nests, and is per thread. Also the optimizers'
opt-in skipping of steps with non-finite gradients."""
import threading
import warnings

import numpy as np
import pytest

import bigmodel as bm
from bigmodel import optim


def leaf(values):
    return bm.tensor(np.array(values, dtype=np.float64), requires_grad=True)


class NanGrad(bm.autograd.Function):
    """Identity forward whose backward returns NaN: a broken custom op."""

    @staticmethod
    def forward(ctx, x):
        return x * 1.0

    @staticmethod
    def backward(ctx, g):
        return g * float("nan")


def test_off_by_default_and_off_mode_unaffected():
    assert not bm.autograd.is_anomaly_enabled()
    a, b = leaf([1.0, 0.0, 3.0]), leaf([2.0, 0.0, 1.5])
    q = a / b  # 0/0 = nan: allowed without the mode
    assert np.isnan(q.detach().numpy()[1])
    x = leaf([0.0, 1.0, 4.0])
    bm.sqrt(x).sum().backward()  # d sqrt(x)/dx at 0 is inf: allowed without the mode
    g = x.grad.numpy()
    assert np.isinf(g[0]) and g[1] == pytest.approx(0.5) and g[2] == pytest.approx(0.25)


def test_forward_nan_names_the_op_and_where_it_was_created():
    a, b = leaf([1.0, 0.0, 3.0]), leaf([2.0, 0.0, 1.5])
    c = a * b  # finite: passes
    with bm.autograd.detect_anomaly():
        assert bm.autograd.is_anomaly_enabled()
        d = c + 1.0
        with pytest.raises(RuntimeError) as info:
            a / b  # the anomalous op
    msg = str(info.value)
    assert "DivBackward0" in msg and "nan" in msg and "forward output 0" in msg
    assert "test_anomaly.py" in msg and "a / b  # the anomalous op" in msg
    assert not bm.autograd.is_anomaly_enabled()
    np.testing.assert_allclose(d.detach().numpy(), [3.0, 1.0, 5.5])


def test_forward_inf_is_reported_as_inf():
    with bm.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match=r"LogBackward0.*inf"):
            bm.log(leaf([1.0, 0.0]))


def test_inputs_without_grad_are_not_checked():
    # Only recorded ops are checked: a NaN in a no-grad computation is the user's business.
    with bm.autograd.detect_anomaly():
        z = bm.tensor([0.0, 1.0]) / bm.tensor([0.0, 1.0])
    assert np.isnan(z.numpy()[0])


def test_backward_inf_names_the_node_with_its_creation_traceback():
    x = leaf([0.0, 1.0, 4.0])
    with bm.autograd.detect_anomaly():
        y = bm.sqrt(x)  # created here
        loss = (y * 2.0).sum()
        with pytest.raises(RuntimeError) as info:
            loss.backward()
    msg = str(info.value)
    assert "SqrtBackward0" in msg and "returned inf" in msg and "for input 0" in msg
    assert "test_anomaly.py" in msg and "y = bm.sqrt(x)  # created here" in msg
    assert "MulBackward0" not in msg  # the first bad node is named, not its consumers


def test_backward_nan_of_a_python_function_is_named():
    x = leaf([1.0, 2.0])
    with bm.autograd.detect_anomaly():
        y = NanGrad.apply(x)  # NaN backward
        with pytest.raises(RuntimeError) as info:
            (y * 3.0).sum().backward()
    msg = str(info.value)
    assert "NanGradBackward0" in msg and "returned nan" in msg
    assert "y = NanGrad.apply(x)  # NaN backward" in msg


def test_graph_recorded_outside_the_mode_is_checked_without_traceback():
    x = leaf([0.0, 9.0])
    loss = bm.sqrt(x).sum()
    with bm.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match="SqrtBackward0") as info:
            loss.backward()
    assert "no creation traceback" in str(info.value)


def test_backward_outside_the_mode_is_not_checked():
    x = leaf([0.0, 9.0])
    with bm.autograd.detect_anomaly():
        loss = bm.sqrt(x).sum()
    loss.backward()
    assert np.isinf(x.grad.numpy()[0])


def test_check_forward_false_checks_backward_only():
    a, b = leaf([1.0, 2.0]), leaf([0.0, 4.0])
    with bm.autograd.detect_anomaly(check_forward=False):
        q = a / b  # inf in forward: not checked
        assert np.isinf(q.detach().numpy()[0])
        assert not bm.autograd.is_anomaly_check_forward_enabled()
        with pytest.raises(RuntimeError, match="DivBackward0"):
            q.sum().backward()
    assert bm.autograd.is_anomaly_check_forward_enabled()


def test_nesting_and_set_detect_anomaly_restore_the_previous_mode():
    a, b = leaf([0.0]), leaf([0.0])
    with bm.autograd.detect_anomaly():
        with bm.autograd.set_detect_anomaly(False):
            assert not bm.autograd.is_anomaly_enabled()
            a / b  # no check inside
        assert bm.autograd.is_anomaly_enabled()
        with bm.autograd.detect_anomaly():
            pass
        assert bm.autograd.is_anomaly_enabled()
        with pytest.raises(RuntimeError, match="DivBackward0"):
            a / b
    assert not bm.autograd.is_anomaly_enabled()
    bm.autograd.set_detect_anomaly(True)  # plain call: switches at once
    try:
        assert bm.autograd.is_anomaly_enabled()
        with pytest.raises(RuntimeError, match="DivBackward0"):
            a / b
    finally:
        bm.autograd.set_detect_anomaly(False)
    assert not bm.autograd.is_anomaly_enabled()


def test_mode_is_restored_when_the_block_raises():
    with pytest.raises(KeyError):
        with bm.autograd.detect_anomaly():
            raise KeyError("boom")
    assert not bm.autograd.is_anomaly_enabled()


def test_decorator_form():
    @bm.autograd.detect_anomaly()
    def divide(a, b):
        assert bm.autograd.is_anomaly_enabled()
        return a / b

    assert divide(leaf([4.0]), leaf([2.0])).item() == pytest.approx(2.0)
    with pytest.raises(RuntimeError, match="DivBackward0"):
        divide(leaf([0.0]), leaf([0.0]))
    assert not bm.autograd.is_anomaly_enabled()


def test_mode_is_per_thread():
    seen = {}

    def other_thread():
        seen["enabled"] = bm.autograd.is_anomaly_enabled()
        q = leaf([0.0]) / leaf([0.0])  # would raise if the mode leaked into this thread
        seen["nan"] = bool(np.isnan(q.detach().numpy()[0]))
        with bm.autograd.detect_anomaly():
            seen["inner"] = bm.autograd.is_anomaly_enabled()

    with bm.autograd.detect_anomaly():
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert bm.autograd.is_anomaly_enabled()
    assert seen == {"enabled": False, "nan": True, "inner": True}
    assert not bm.autograd.is_anomaly_enabled()


def test_finite_training_step_is_unchanged_by_the_mode(rng):
    w0 = rng.standard_normal((3, 2))
    x = bm.tensor(rng.standard_normal((5, 3)))
    grads = []
    for on in (False, True):
        w = bm.tensor(w0, requires_grad=True)
        with bm.autograd.set_detect_anomaly(on):
            (bm.tanh(x @ w) ** 2).mean().backward()
        grads.append(w.grad.numpy())
    np.testing.assert_array_equal(grads[0], grads[1])


# ---- optimizers: skipping steps whose gradients are not finite ----

def _nan_then_finite_steps(opt, p):
    """One step with a NaN gradient, then one with a finite one."""
    results = []
    for bad in (True, False):
        opt.zero_grad()
        scale = float("nan") if bad else 1.0
        (p * bm.tensor([scale, 1.0, 2.0], dtype=p.dtype)).sum().backward()
        opt.step()
        results.append(p.detach().numpy().copy())
    return results


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.1)])
def test_optimizer_skips_nonfinite_steps_when_asked(make):
    p = bm.tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32), requires_grad=True)
    opt = make([p])
    opt.skip_nonfinite = True
    with pytest.warns(RuntimeWarning, match=r"step skipped.*parameter 0 of group 0"):
        after_bad, after_good = _nan_then_finite_steps(opt, p)
    np.testing.assert_array_equal(after_bad, [1.0, 2.0, 3.0])  # untouched by the NaN step
    assert opt.skipped_steps == 1 and not opt.last_step_skipped
    assert np.all(np.isfinite(after_good)) and not np.array_equal(after_good, after_bad)
    # The state is as if the bad step never happened: same as a fresh optimizer's one step.
    q = bm.tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32), requires_grad=True)
    ref = make([q])
    (q * bm.tensor([1.0, 1.0, 2.0])).sum().backward()
    ref.step()
    np.testing.assert_array_equal(after_good, q.detach().numpy())


def test_optimizer_skip_counts_inf_and_reports_the_parameter():
    a = bm.tensor([1.0, 2.0], requires_grad=True)
    b = bm.tensor([3.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    opt.skip_nonfinite = True
    for _ in range(2):
        opt.zero_grad()
        (a.sum() + b.sum() * float("inf")).backward()
        with pytest.warns(RuntimeWarning, match="parameter 0 of group 1"):
            opt.step()
        assert opt.last_step_skipped
    assert opt.skipped_steps == 2
    np.testing.assert_array_equal(a.detach().numpy(), [1.0, 2.0])


def test_optimizer_without_skip_applies_nonfinite_steps():
    p = bm.tensor([1.0, 2.0, 3.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    assert opt.skip_nonfinite is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        after_bad, _ = _nan_then_finite_steps(opt, p)
    assert np.isnan(after_bad[0]) and opt.skipped_steps == 0


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad])
def test_every_optimizer_takes_skip_nonfinite_in_its_constructor(cls):
    p = bm.tensor([1.0, 2.0], requires_grad=True)
    opt = cls([p], lr=0.1, skip_nonfinite=True)
    assert opt.skip_nonfinite is True
    (p * float("nan")).sum().backward()
    with pytest.warns(RuntimeWarning, match="step skipped"):
        opt.step()
    np.testing.assert_array_equal(p.detach().numpy(), [1.0, 2.0])
    assert opt.skipped_steps == 1
