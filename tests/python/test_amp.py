"""Mixed precision: bm.autocast (which ops run in the autocast dtype, which in float32,
nesting, gradients to float32 weights, a small model trained under bfloat16) and
bm.amp.GradScaler (skipped steps, back-off and growth of the scale, state_dict)."""
import math

import numpy as np
import pytest

import bigmodel as bm
import bigmodel.nn.functional as F
from conftest import assert_close

LOW = [bm.bfloat16, bm.float16]


def t32(rng, *shape, requires_grad=False):
    return bm.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=requires_grad)


def np32(t):
    return t.detach().float().numpy().astype(np.float64)


@pytest.mark.parametrize("dtype", LOW)
def test_lower_precision_ops_run_in_autocast_dtype(rng, dtype):
    a, b = t32(rng, 4, 6), t32(rng, 6, 5)
    x3, y3 = t32(rng, 2, 4, 6), t32(rng, 2, 6, 3)
    w, bias = t32(rng, 5, 6), t32(rng, 5)
    img, k = t32(rng, 2, 3, 7, 6), t32(rng, 4, 3, 3, 3)
    q = t32(rng, 2, 3, 5, 8)
    v = t32(rng, 8)
    with bm.autocast("cpu", dtype=dtype):
        outs = {
            "matmul": (bm.matmul(a, b), np32(a) @ np32(b)),
            "mm": (bm.mm(a, b), np32(a) @ np32(b)),
            "bmm": (bm.bmm(x3, y3), np32(x3) @ np32(y3)),
            "mv": (bm.mv(a, b[:, 0].contiguous()), np32(a) @ np32(b)[:, 0]),
            "dot": (bm.dot(v, v), np32(v) @ np32(v)),
            "linear": (F.linear(a, w, bias), np32(a) @ np32(w).T + np32(bias)),
            "addmm": (bm.addmm(bias, a, w.t()), np32(a) @ np32(w).T + np32(bias)),
            "@": (a @ b, np32(a) @ np32(b)),
            "conv2d": (F.conv2d(img, k, padding=1), None),
            "sdpa": (F.scaled_dot_product_attention(q, q, q, is_causal=True), None),
        }
    for name, (out, ref) in outs.items():
        assert out.dtype == dtype, name
        if ref is not None:
            # Rounding the inputs to 8 (bf16) or 11 (fp16) bits: compare loosely against float64.
            tol = 0.1 if dtype == bm.bfloat16 else 0.01
            np.testing.assert_allclose(np32(out), ref, atol=tol * (1 + np.abs(ref).max()), rtol=0, err_msg=name)
    conv_ref = F.conv2d(img, k, padding=1)
    assert conv_ref.dtype == bm.float32
    np.testing.assert_allclose(np32(outs["conv2d"][0]), np32(conv_ref), atol=0.15, rtol=0)
    sdpa_ref = F.scaled_dot_product_attention(q, q, q, is_causal=True)
    np.testing.assert_allclose(np32(outs["sdpa"][0]), np32(sdpa_ref), atol=0.1, rtol=0)


@pytest.mark.parametrize("dtype", LOW)
def test_float32_ops_upcast_half_inputs(rng, dtype):
    x = t32(rng, 4, 6)
    target = bm.tensor(np.array([1, 0, 5, 2]))
    ln = bm.nn.LayerNorm(6)
    with bm.autocast("cpu", dtype=dtype):
        h = F.linear(x, t32(rng, 6, 6))  # half
        assert h.dtype == dtype
        results = {
            "softmax": F.softmax(h, dim=-1), "log_softmax": F.log_softmax(h, dim=-1),
            "Tensor.softmax": h.softmax(-1), "layer_norm": ln(h),
            "cross_entropy": F.cross_entropy(h, target), "mse_loss": F.mse_loss(h, bm.ones(4, 6)),
            "sum": bm.sum(h), "Tensor.sum": h.sum(), "mean": h.mean(dim=0), "bm.softmax": bm.softmax(h, -1),
        }
        relu = F.relu(h)
        f64 = bm.matmul(x.double(), x.double().t())
    for name, r in results.items():
        assert r.dtype == bm.float32, name
    assert relu.dtype == dtype  # not listed: runs in its input dtype
    assert f64.dtype == bm.float64  # float64 is never cast
    # The float32 results equal the float32 op on the (upcast) half values.
    hf = h.float()
    assert_close(results["softmax"], np32(F.softmax(hf, dim=-1)), dtype=bm.float32)
    assert_close(results["sum"], np32(bm.sum(hf)), dtype=bm.float32, atol=1e-4)


def test_outside_autocast_nothing_changes(rng):
    a = t32(rng, 3, 4)
    h = a.to(dtype=bm.bfloat16)
    assert bm.matmul(a, a.t()).dtype == bm.float32
    assert bm.matmul(h, h.t()).dtype == bm.bfloat16
    assert h.softmax(-1).dtype == bm.bfloat16  # the float32 list only applies inside autocast
    assert not bm.amp.is_autocast_enabled("cpu")


def test_nesting_disable_and_restore(rng):
    a = t32(rng, 3, 4)
    with bm.autocast("cpu", dtype=bm.bfloat16):
        assert bm.amp.is_autocast_enabled("cpu") and bm.amp.get_autocast_dtype("cpu") == bm.bfloat16
        with bm.autocast("cpu", enabled=False):
            assert (a @ a.t()).dtype == bm.float32
            assert not bm.amp.is_autocast_enabled("cpu")
        with bm.autocast("cpu", dtype=bm.float16):
            assert (a @ a.t()).dtype == bm.float16
        assert (a @ a.t()).dtype == bm.bfloat16  # restored after the inner regions
        # The other device type's state is separate.
        assert not bm.amp.is_autocast_enabled("cuda")
    assert not bm.amp.is_autocast_enabled("cpu")
    # Restored on an exception too.
    with pytest.raises(KeyError):
        with bm.autocast("cpu"):
            raise KeyError("x")
    assert not bm.amp.is_autocast_enabled("cpu")
    # "cuda" is plain state, accepted without a GPU; CPU tensors are not affected by it.
    with bm.autocast("cuda", dtype=bm.bfloat16):
        assert bm.amp.is_autocast_enabled("cuda")
        assert (a @ a.t()).dtype == bm.float32


def test_decorator_form(rng):
    a = t32(rng, 3, 4)

    @bm.autocast("cpu", dtype=bm.bfloat16)
    def f(x):
        return x @ x.t()
    assert f(a).dtype == bm.bfloat16
    assert not bm.amp.is_autocast_enabled("cpu")


def test_bad_arguments():
    with pytest.raises(ValueError, match="autocast"):
        bm.autocast("tpu")
    with pytest.raises(TypeError, match="autocast"):
        bm.autocast("cpu", dtype=bm.float32)
    with pytest.raises(TypeError, match="autocast"):
        bm.autocast(3)


def test_gradients_reach_float32_weights(rng):
    x = t32(rng, 8, 6)
    w1, b1 = t32(rng, 16, 6, requires_grad=True), t32(rng, 16, requires_grad=True)
    w2 = t32(rng, 3, 16, requires_grad=True)
    target = bm.tensor(np.array([0, 1, 2, 1, 0, 2, 2, 1]))

    def loss_fn():
        h = F.relu(F.linear(x, w1, b1))
        return F.cross_entropy(F.linear(h, w2), target)

    with bm.autocast("cpu", dtype=bm.bfloat16):
        loss = loss_fn()
    assert loss.dtype == bm.float32
    loss.backward()
    grads = [p.grad for p in (w1, b1, w2)]
    for p, g in zip((w1, b1, w2), grads):
        assert g is not None and g.dtype == bm.float32 and p.dtype == bm.float32
    for p in (w1, b1, w2):
        p.grad = None
    loss_fn().backward()
    for p, g in zip((w1, b1, w2), grads):
        ref = np32(p.grad)
        np.testing.assert_allclose(np32(g), ref, atol=0.05 * np.abs(ref).max() + 1e-3, rtol=0)


def _train(autocast_on, steps=20):
    rng = np.random.default_rng(7)
    x = bm.tensor(rng.standard_normal((64, 10)).astype(np.float32))
    true_w = rng.standard_normal((10, 3))
    # Labels from a noisy linear rule: learnable, not trivially.
    logits = x.numpy() @ true_w + 0.3 * rng.standard_normal((64, 3))
    y = bm.tensor(np.argmax(logits, axis=1))
    bm.manual_seed(0)
    model = bm.nn.Sequential(bm.nn.Linear(10, 32), bm.nn.ReLU(), bm.nn.LayerNorm(32), bm.nn.Linear(32, 3))
    opt = bm.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        with bm.autocast("cpu", dtype=bm.bfloat16, enabled=autocast_on):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.dtype == bm.float32 for p in model.parameters())
    return losses


def test_small_model_trains_under_bfloat16_autocast():
    ref = _train(False)
    amp = _train(True)
    assert ref[-1] < 0.5 * ref[0]
    assert amp[-1] < 0.5 * amp[0]
    # bfloat16 matmuls: the curve follows float32's closely.
    assert abs(amp[-1] - ref[-1]) < 0.05 + 0.1 * ref[-1], (amp[-1], ref[-1])
    assert amp != ref  # it really ran in lower precision


# ---------------------------------------------------------------------------------- GradScaler
def _model_and_opt(rng):
    w = bm.nn.Parameter(t32(rng, 4, 3))
    opt = bm.optim.SGD([w], lr=0.1)
    return w, opt


def test_grad_scaler_scales_and_unscales_exactly(rng):
    w, opt = _model_and_opt(rng)
    x = t32(rng, 5, 3)
    scaler = bm.amp.GradScaler("cpu", init_scale=8.0)
    loss = (x @ w.t()).sum()
    scaled = scaler.scale(loss)
    assert scaled.item() == pytest.approx(8.0 * loss.item(), rel=1e-6)
    scaled.backward()
    scaled_grad = w.grad.numpy().copy()
    scaler.unscale_(opt)
    np.testing.assert_array_equal(w.grad.numpy(), scaled_grad / 8.0)  # a power of two: exact
    before = w.detach().numpy().copy()
    scaler.step(opt)
    np.testing.assert_allclose(w.detach().numpy(), before - 0.1 * scaled_grad / 8.0, rtol=1e-6)
    scaler.update()
    with pytest.raises(RuntimeError, match="update"):
        scaler.update()  # nothing recorded since the last update


def test_grad_scaler_skips_step_on_inf_and_backs_off_then_grows(rng):
    w, opt = _model_and_opt(rng)
    x = t32(rng, 5, 3)
    scaler = bm.amp.GradScaler("cpu", init_scale=1024.0, growth_factor=2.0, backoff_factor=0.25, growth_interval=3)
    scales = []
    for step in range(8):
        opt.zero_grad()
        scaler.scale((x @ w.t()).sum()).backward()
        if step in (1, 5):
            w.grad[0, 0] = math.inf if step == 1 else math.nan  # injected overflow
        before = w.detach().numpy().copy()
        scaler.step(opt)
        changed = not np.array_equal(before, w.detach().numpy())
        assert changed == (step not in (1, 5)), step
        scaler.update()
        scales.append(scaler.get_scale())
    # 1024 -> (clean) 1024 -> (inf) 256 -> clean x3 -> 512 (growth) -> (nan) 128 -> clean x2
    assert scales == [1024.0, 256.0, 256.0, 256.0, 512.0, 128.0, 128.0, 128.0]


def test_grad_scaler_state_dict_and_errors(rng):
    w, opt = _model_and_opt(rng)
    s = bm.amp.GradScaler("cpu", init_scale=64.0, growth_interval=5)
    s.scale((w * 1.0).sum()).backward()
    s.step(opt)
    s.update()
    sd = s.state_dict()
    assert sd == {"scale": 64.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 5,
                  "_growth_tracker": 1}
    t = bm.amp.GradScaler("cpu")
    t.load_state_dict(sd)
    assert t.state_dict() == sd
    s.scale((w * 1.0).sum()).backward()
    s.unscale_(opt)
    with pytest.raises(RuntimeError, match="unscale_"):
        s.unscale_(opt)
    s.step(opt)
    with pytest.raises(RuntimeError, match="step"):
        s.step(opt)
    with pytest.raises(ValueError, match="backoff_factor"):
        bm.amp.GradScaler("cpu", backoff_factor=2.0)
    off = bm.amp.GradScaler("cpu", enabled=False)
    loss = (w * 1.0).sum()
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}
