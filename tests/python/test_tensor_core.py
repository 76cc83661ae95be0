"""Tensor basics from Python: construction, dtypes, views, NumPy interop, autograd."""
import numpy as np
import pytest

import bigmodel as bm
from conftest import assert_close


def test_tensor_from_lists_infers_dtype():
    assert bm.tensor([1.0, 2.0]).dtype == bm.float32
    assert bm.tensor([1, 2]).dtype == bm.int64
    assert bm.tensor([True]).dtype == bm.bool
    assert bm.tensor(np.zeros(3)).dtype == bm.float64
    assert bm.tensor(3.5).shape == ()
    assert repr(bm.float32) == "bigmodel.float32"


def test_from_numpy_shares_memory_and_numpy_back():
    a = np.arange(6.0).reshape(2, 3)
    t = bm.from_numpy(a)
    a[0, 0] = 42
    assert t.numpy()[0, 0] == 42
    back = t.numpy()
    back[1, 2] = -1
    assert a[1, 2] == -1


def test_views_match_numpy(rng):
    a = rng.standard_normal((2, 3, 4))
    t = bm.tensor(a)
    assert_close(t.permute(2, 0, 1), a.transpose(2, 0, 1))
    assert_close(t.transpose(0, 2).reshape(4, 6), a.transpose(2, 1, 0).reshape(4, 6))
    assert_close(t.narrow(1, 1, 2), a[:, 1:3])
    assert_close(t.unsqueeze(0).squeeze(0), a)
    assert_close(t.flatten(1), a.reshape(2, 12))
    assert_close(t.select(2, -1), a[:, :, -1])
    assert_close(t[:, :1].expand(2, 5, 4) if hasattr(bm.Tensor, "__getitem__") else t.narrow(1, 0, 1).expand(2, 5, 4),
                 np.broadcast_to(a[:, :1], (2, 5, 4)))


def test_bad_view_raises():
    t = bm.tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[view\]"):
        t.view(4, 2)
    with pytest.raises(RuntimeError, match=r"\[view\]"):
        t.t().view(6)
    with pytest.raises(IndexError, match=r"\[permute\]"):
        t.permute(0, 5)
    with pytest.raises(ValueError, match=r"\[expand\]"):
        t.expand(4, 3)


def test_backward_accumulates_and_second_backward_fails():
    x = bm.tensor([1.0, 2.0, 3.0], dtype=bm.float64, requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert_close(x.grad, 4 * np.array([1.0, 2.0, 3.0]))
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_hooks_and_post_accumulate_hook():
    x = bm.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: g * 2)
    x.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.tolist()))
    (x * 3).sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]
    assert seen == [[6.0, 6.0]]


def test_no_grad_and_detach():
    x = bm.tensor([1.0], requires_grad=True)
    with bm.no_grad():
        y = x * 2
    assert not y.requires_grad
    assert not x.detach().requires_grad
    assert (x * 2).grad_fn is not None
    assert repr((x * 2).grad_fn) == "<MulBackward0>"


def test_inplace_on_leaf_requiring_grad_raises():
    x = bm.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x.add_(1.0)
    with bm.no_grad():
        x.add_(1.0)
    assert x.tolist() == [2.0]


def test_version_counter_catches_modified_saved_tensor():
    x = bm.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    y = h * h
    h.mul_(3)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_numpy_of_bfloat16_and_grad_tensor_raise():
    with pytest.raises(TypeError, match="bfloat16"):
        bm.tensor([1.0]).bfloat16().numpy()
    with pytest.raises(RuntimeError, match="requires grad"):
        bm.tensor([1.0], requires_grad=True).numpy()


def test_inplace_through_view_that_needs_grad_is_refused_not_wrong():
    z = bm.tensor([1.0, 2.0], requires_grad=True)
    x = bm.zeros(3)
    with pytest.raises(RuntimeError, match="views"):
        x.narrow(0, 0, 2).copy_(z)  # x would silently miss z's history
    assert x.tolist() == [0.0, 0.0, 0.0]  # refused before anything was written
    y = z * 1
    with pytest.raises(RuntimeError, match="views"):
        y.narrow(0, 0, 1).exp_()
    assert y.tolist() == [1.0, 2.0]


def test_inplace_on_op_results_is_allowed():
    x = bm.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=bm.float64, requires_grad=True)
    s = x.sum(dim=1)  # a fresh result, even if built through a reshape
    s.mul_(3.0)
    s.sum().backward()
    assert x.grad.tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_module_level_view_functions(rng):
    a = rng.standard_normal((2, 3, 4))
    t = bm.tensor(a)
    assert_close(bm.reshape(t, (6, 4)), a.reshape(6, 4))
    assert_close(bm.permute(t, (2, 0, 1)), a.transpose(2, 0, 1))
    assert_close(bm.transpose(t, 0, 2), a.transpose(2, 1, 0))
    assert_close(bm.flatten(t, 1), a.reshape(2, 12))
    assert_close(bm.squeeze(bm.unsqueeze(t, 1), 1), a)
    assert_close(bm.movedim(t, 0, -1), np.moveaxis(a, 0, -1))
    assert_close(bm.broadcast_to(bm.narrow(t, 1, 0, 1), (2, 5, 4)), np.broadcast_to(a[:, :1], (2, 5, 4)))
    assert bm.is_tensor(t) and not bm.is_tensor(a) and bm.numel(t) == 24


def test_repr_like_pytorch():
    x = bm.tensor([1.0, 2.5], requires_grad=True)
    assert repr(x) == "tensor([1.0000, 2.5000], requires_grad=True)"
    assert repr(x.exp().sum()).endswith("grad_fn=<SumBackward0>)")
    assert repr(bm.tensor([[1, 2], [3, 4]])) == "tensor([[1, 2],\n        [3, 4]])"
    assert repr(bm.tensor([1.0, 2.0], dtype=bm.float64)) == "tensor([1., 2.], dtype=bigmodel.float64)"
    assert repr(bm.tensor([True, False])) == "tensor([ True, False])"
    assert repr(bm.tensor(3.0)) == "tensor(3.)"
    assert "..." in repr(bm.zeros(2000))
