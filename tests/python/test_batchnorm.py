"""F.batch_norm / F.layer_norm against NumPy float64 references (dtypes, 2-D/3-D/4-D and
non-contiguous inputs), gradcheck in training and eval mode, running-statistics updates,
and bad inputs; nn.BatchNorm1d/2d behaviour (train/eval, momentum=None, buffers)."""
import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn
from bigmodel.nn import functional as F
from conftest import assert_close, noncontiguous

gradcheck = bm.autograd.gradcheck


def np_batch_norm(a, mean, var, w, b, eps):
    shape = (1, -1) + (1,) * (a.ndim - 2)
    out = (a - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if w is not None:
        out = out * w.reshape(shape)
    if b is not None:
        out = out + b.reshape(shape)
    return out


def batch_axes(a):
    return (0,) + tuple(range(2, a.ndim))


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 4, 5, 6)])
def test_batch_norm_training_matches_numpy_and_updates_running_stats(rng, shape):
    a = rng.standard_normal(shape) * 3 + 2
    C = shape[1]
    w, b = rng.standard_normal(C), rng.standard_normal(C)
    rm0, rv0 = rng.standard_normal(C), rng.random(C) + 0.5
    rm, rv = bm.tensor(rm0), bm.tensor(rv0)
    out = F.batch_norm(bm.tensor(a), rm, rv, bm.tensor(w), bm.tensor(b), training=True, momentum=0.3, eps=1e-3)
    ax = batch_axes(a)
    assert_close(out, np_batch_norm(a, a.mean(ax), a.var(ax), w, b, 1e-3))
    assert_close(rm, 0.7 * rm0 + 0.3 * a.mean(ax))
    assert_close(rv, 0.7 * rv0 + 0.3 * a.var(ax, ddof=1))  # unbiased variance for the running stat


def test_batch_norm_eval_uses_running_stats_and_leaves_them(rng):
    a = rng.standard_normal((4, 3, 2, 2))
    rm0, rv0 = rng.standard_normal(3), rng.random(3) + 0.5
    rm, rv = bm.tensor(rm0), bm.tensor(rv0)
    out = F.batch_norm(bm.tensor(a), rm, rv)
    assert_close(out, np_batch_norm(a, rm0, rv0, None, None, 1e-5))
    assert_close(rm, rm0)
    assert_close(rv, rv0)


def test_batch_norm_noncontiguous_input(rng):
    a = rng.standard_normal((5, 4, 3)) + 1
    x = noncontiguous(a)
    assert not x.is_contiguous()
    out = F.batch_norm(x, None, None, training=True)
    assert_close(out, np_batch_norm(a, a.mean((0, 2)), a.var((0, 2)), None, None, 1e-5))


@pytest.mark.parametrize("dtype,tol", [(bm.float32, 1e-5), (bm.float16, 4e-3), (bm.bfloat16, 3e-2)])
def test_batch_norm_dtypes(rng, dtype, tol):
    a = rng.standard_normal((8, 3, 4, 4)) * 2 + 5
    x = bm.tensor(a, dtype=dtype)
    ref_in = x.float().numpy().astype(np.float64)
    w = bm.tensor(rng.standard_normal(3), dtype=dtype)
    rm, rv = bm.zeros(3), bm.ones(3)  # float32 running stats with a half input, as with AMP
    out = F.batch_norm(x, rm, rv, w, None, training=True)
    assert out.dtype == dtype
    ax = batch_axes(a)
    ref = np_batch_norm(ref_in, ref_in.mean(ax), ref_in.var(ax), w.float().numpy().astype(np.float64), None, 1e-5)
    assert_close(out, ref, atol=tol * 4, rtol=tol)
    assert_close(rm, 0.1 * ref_in.mean(ax), atol=tol, rtol=tol)


def test_batch_norm_large_offset_keeps_precision(rng):
    a = rng.standard_normal((64, 2)) + 1e4  # sum-of-squares formulas lose these digits in float32
    out = F.batch_norm(bm.tensor(a, dtype=bm.float32), None, None, training=True)
    a32 = a.astype(np.float32).astype(np.float64)
    assert_close(out, np_batch_norm(a32, a32.mean(0), a32.var(0), None, None, 1e-5), atol=5e-3, rtol=1e-3)


def leaf(a):
    return bm.tensor(a, dtype=bm.float64, requires_grad=True)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(rng, training):
    x, w, b = leaf(rng.standard_normal((3, 2, 3, 2))), leaf(rng.standard_normal(2)), leaf(rng.standard_normal(2))
    rm, rv = bm.tensor(rng.standard_normal(2)), bm.tensor(rng.random(2) + 0.5)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=training, momentum=0.0), [x, w, b])
    assert gradcheck(lambda x: F.batch_norm(x, None if training else rm, None if training else rv,
                                            training=training), [leaf(rng.standard_normal((4, 2)))])


def test_batch_norm_grad_only_for_weight(rng):
    x = bm.tensor(rng.standard_normal((4, 2)))
    w = leaf(np.array([1.0, 2.0]))
    F.batch_norm(x, None, None, w, None, training=True).sum().backward()
    assert x.grad is None
    assert w.grad.shape == (2,) and w.grad.dtype == bm.float64


def test_batch_norm_bad_inputs():
    x = bm.randn(4, 3, 2)
    with pytest.raises(ValueError, match=r"\[batch_norm\] running_mean should have shape \[3\].*\[4, 3, 2\].*\[5\]"):
        F.batch_norm(x, bm.zeros(5), bm.ones(5))
    with pytest.raises(ValueError, match=r"\[batch_norm\] weight should have shape \[3\]"):
        F.batch_norm(x, None, None, bm.ones(2), training=True)
    with pytest.raises(ValueError, match=r"\[batch_norm\].*training=False"):
        F.batch_norm(x, None, None)
    with pytest.raises(ValueError, match=r"\[batch_norm\] expected more than 1 value per channel"):
        F.batch_norm(bm.randn(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match=r"\[batch_norm\].*2 or more dims"):
        F.batch_norm(bm.randn(3), None, None, training=True)
    with pytest.raises(TypeError, match=r"\[batch_norm\]"):
        F.batch_norm(bm.zeros(4, 3, dtype=bm.int64), None, None, training=True)


# ---------------------------------------------------------------- layer norm

def np_layer_norm(a, k, w, b, eps):
    ax = tuple(range(a.ndim - k, a.ndim))
    out = (a - a.mean(ax, keepdims=True)) / np.sqrt(a.var(ax, keepdims=True) + eps)
    return out * w + b if w is not None else out


@pytest.mark.parametrize("contig", [True, False])
def test_layer_norm_matches_numpy(rng, contig):
    a = rng.standard_normal((3, 4, 5)) * 2 + 1
    w, b = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    x = bm.tensor(a) if contig else noncontiguous(a)
    assert_close(F.layer_norm(x, (4, 5), bm.tensor(w), bm.tensor(b)), np_layer_norm(a, 2, w, b, 1e-5))
    assert_close(F.layer_norm(x, 5), np_layer_norm(a, 1, None, None, 1e-5))


def test_layer_norm_float32_and_gradcheck(rng):
    a = rng.standard_normal((6, 7))
    assert_close(F.layer_norm(bm.tensor(a, dtype=bm.float32), [7]), np_layer_norm(a, 1, None, None, 1e-5),
                 atol=1e-5, rtol=1e-5)
    x, w, b = leaf(rng.standard_normal((3, 4))), leaf(rng.standard_normal(4)), leaf(rng.standard_normal(4))
    assert gradcheck(lambda x, w, b: F.layer_norm(x, [4], w, b), [x, w, b])


def test_layer_norm_bad_shape():
    with pytest.raises(ValueError, match=r"\[layer_norm\] normalized_shape \[3\].*\[2, 4\]"):
        F.layer_norm(bm.randn(2, 4), [3])


# ---------------------------------------------------------------- modules

def test_batchnorm2d_module_init_and_state_dict_names():
    bn = nn.BatchNorm2d(4)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert (bn.weight.detach().numpy() == 1).all() and (bn.bias.detach().numpy() == 0).all()
    assert (bn.running_mean.numpy() == 0).all() and (bn.running_var.numpy() == 1).all()
    assert bn.num_batches_tracked.dtype == bm.int64 and int(bn.num_batches_tracked.item()) == 0
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    plain = nn.BatchNorm2d(4, affine=False, track_running_stats=False)
    assert list(plain.state_dict()) == []


def test_batchnorm2d_train_then_eval(rng):
    a = rng.standard_normal((8, 3, 4, 4)) * 2 + 3
    bn = nn.BatchNorm2d(3).double()
    out = bn(bm.tensor(a))
    ax = batch_axes(a)
    assert_close(out, np_batch_norm(a, a.mean(ax), a.var(ax), None, None, 1e-5))
    assert int(bn.num_batches_tracked.item()) == 1
    assert_close(bn.running_mean, 0.1 * a.mean(ax))
    bn.eval()
    rm, rv = bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()
    assert_close(bn(bm.tensor(a)), np_batch_norm(a, rm, rv, None, None, 1e-5))
    assert int(bn.num_batches_tracked.item()) == 1  # eval doesn't count batches


def test_batchnorm_momentum_none_is_cumulative_average(rng):
    bn = nn.BatchNorm1d(2, momentum=None).double()
    batches = [rng.standard_normal((5, 2)) + i for i in range(3)]
    for a in batches:
        bn(bm.tensor(a))
    assert_close(bn.running_mean, np.mean([a.mean(0) for a in batches], axis=0))
    assert_close(bn.running_var, np.mean([a.var(0, ddof=1) for a in batches], axis=0))


def test_batchnorm_without_running_stats_uses_batch_stats_in_eval(rng):
    a = rng.standard_normal((6, 2)) + 4
    bn = nn.BatchNorm1d(2, track_running_stats=False).double().eval()
    assert_close(bn(bm.tensor(a)), np_batch_norm(a, a.mean(0), a.var(0), None, None, 1e-5))


def test_batchnorm_module_bad_input_dims():
    with pytest.raises(ValueError, match=r"\[BatchNorm2d\] expected 4D input \(got 3D"):
        nn.BatchNorm2d(3)(bm.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"\[BatchNorm1d\] expected 2D or 3D input"):
        nn.BatchNorm1d(3)(bm.randn(2, 3, 4, 4))


def test_batchnorm_learns_through_backward(rng):
    bn = nn.BatchNorm1d(3)
    x = bm.tensor(rng.standard_normal((8, 3)), dtype=bm.float32)
    (bn(x) * bm.tensor(rng.standard_normal((8, 3)), dtype=bm.float32)).sum().backward()
    assert bn.weight.grad is not None and bn.bias.grad.shape == (3,)
    assert np.abs(bn.bias.grad.numpy()).sum() > 0
    assert np.abs(bn.weight.grad.numpy()).sum() > 0
