"""bm.utils.checkpoint (activation checkpointing) and bm.utils.Function: gradients equal to
the plain run, no graph stored in the forward, dropout recomputed with the same mask."""
import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn
from bigmodel.utils import Function, checkpoint, checkpoint_sequential


def block(x, w):
    return (x @ w).tanh() * x.sum(dim=1, keepdim=True)


def test_gradients_identical_to_plain_run(rng):
    x0, w0 = rng.standard_normal((3, 4)), rng.standard_normal((4, 4))
    grads = []
    for use_ckpt in (False, True):
        x = bm.tensor(x0, requires_grad=True)
        w = bm.tensor(w0, requires_grad=True)
        h = x * 2.0  # a non-leaf input: gradients must flow on through it
        y = checkpoint(block, h, w) if use_ckpt else block(h, w)
        (y * y).sum().backward()
        grads.append((x.grad.numpy().copy(), w.grad.numpy().copy(), y.detach().numpy().copy()))
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


def test_forward_stores_no_graph(rng):
    x = bm.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    seen = []

    def fn(a):
        h = a.exp()
        seen.append((bm.is_grad_enabled(), h.requires_grad, h.grad_fn))
        return h.sin()
    y = checkpoint(fn, x)
    assert seen == [(False, False, None)]  # the forward ran under no_grad
    assert y.requires_grad and y.grad_fn is not None
    # The only node is the checkpoint's, whose edge leads straight to the input.
    assert [type(f).__name__ for f, _ in y.grad_fn.next_functions] == ["Node"]
    assert y.grad_fn.next_functions[0][0].name() == "AccumulateGrad"
    y.sum().backward()
    assert len(seen) == 2 and seen[1][0] and seen[1][1]  # recomputed with grad
    np.testing.assert_allclose(x.grad.numpy(), np.cos(np.exp(x.detach().numpy())) * np.exp(x.detach().numpy()),
                               rtol=1e-12)


def test_module_with_dropout_and_parameters():
    bm.manual_seed(3)
    net = nn.Sequential(nn.Linear(5, 6), nn.Dropout(0.5), nn.Tanh(), nn.Linear(6, 2))
    x = bm.randn(4, 5)  # input needs no grad: parameter gradients still arrive via the module
    results = []
    for use_ckpt in (False, True):
        bm.manual_seed(11)
        net.zero_grad()
        y = checkpoint(net, x) if use_ckpt else net(x)
        after_forward = bm.randn(3)  # RNG position after the forward must match too
        y.pow(2).sum().backward()
        results.append([y.detach().numpy().copy(), after_forward.numpy().copy()] +
                       [p.grad.numpy().copy() for p in net.parameters()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_sequential_and_multiple_outputs(rng):
    bm.manual_seed(0)
    net = nn.Sequential(*[nn.Linear(4, 4) for _ in range(4)])
    x = bm.tensor(rng.standard_normal((2, 4)).astype(np.float32), requires_grad=True)
    net(x).sum().backward()
    want = [x.grad.numpy().copy()] + [p.grad.numpy().copy() for p in net.parameters()]
    x.grad = None
    net.zero_grad()
    checkpoint_sequential(net, 2, x).sum().backward()
    got = [x.grad.numpy()] + [p.grad.numpy() for p in net.parameters()]
    for a, b in zip(want, got):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

    a = bm.tensor(rng.standard_normal(3), requires_grad=True)
    s, d = checkpoint(lambda t: (t * 3.0, t * t), a)
    (s.sum() + d.sum()).backward()
    np.testing.assert_allclose(a.grad.numpy(), 3.0 + 2 * a.detach().numpy(), rtol=1e-12)


def test_no_grad_mode_returns_plain_result(rng):
    x = bm.tensor(rng.standard_normal(3), requires_grad=True)
    with bm.no_grad():
        y = checkpoint(lambda t: t * 2, x)
    assert not y.requires_grad
    z = checkpoint(lambda t: t * 2, bm.tensor([1.0, 2.0]))  # nothing requires grad
    assert not z.requires_grad


class Cube(Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x ** 3 * k

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x * ctx.k, None


def test_python_function(rng):
    x = bm.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    assert bm.autograd.gradcheck(lambda t: Cube.apply(t, 2.0), [x])
    x.grad = None
    y = Cube.apply(x, 2.0)
    assert y.grad_fn.name() == "Cube"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.detach().numpy() ** 2, rtol=1e-12)
    with pytest.raises(RuntimeError, match="second time"):
        y.sum().backward()

    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            return bm.ones(5, dtype=bm.float64)
    with pytest.raises(ValueError, match="shape"):
        Bad.apply(x).sum().backward()
