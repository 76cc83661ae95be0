"""Second derivatives (create_graph=True): for each differentiable op, the autograd Hessian-
vector product of a scalar objective through the op against central differences of its
first-order gradient (float64). The objective squares the op's output, so the gradient that
reaches the op's backward depends on the inputs too (the path a gradient penalty takes).
Ops whose backward runs a fused kernel raise NotImplementedError when a second derivative
reaches them, rather than treating their gradient as a constant."""
import numpy as np
import pytest

import bigmodel as bm
import bigmodel.nn.functional as F


def _objective(fn, xs, v, square=True):
    out = fn(*xs)
    return (out * v + 0.5 * out * out).sum() if square else (out * v).sum()


def _first(fn, arrays, v, square=True):
    xs = [bm.tensor(a, requires_grad=True) for a in arrays]
    gs = bm.autograd.grad(_objective(fn, xs, v, square), xs, allow_unused=True)
    return [np.zeros(a.shape) if g is None else g.numpy() for a, g in zip(arrays, gs)]


def hvp_error(fn, shapes, seed=0, eps=1e-5, square=True):
    """Largest |autograd - numeric| over max(1, |numeric|) of d/dx <grad(x), u>. square=False:
    the objective is linear in the op's output, so the op's backward sees a constant gradient."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    us = [rng.standard_normal(s) for s in shapes]
    xs = [bm.tensor(a, requires_grad=True) for a in arrays]
    with bm.no_grad():
        out_shape = fn(*xs).shape
    v = bm.tensor(rng.standard_normal(out_shape))
    gs = bm.autograd.grad(_objective(fn, xs, v, square), xs, create_graph=True, allow_unused=True)
    h = None
    for g, u in zip(gs, us):
        if g is not None:
            term = (g * bm.tensor(u)).sum()
            h = term if h is None else h + term
    second = bm.autograd.grad(h, xs, allow_unused=True) if h is not None and h.requires_grad else [None] * len(xs)
    worst = 0.0
    for k, a in enumerate(arrays):
        flat = a.reshape(-1)
        numeric = np.zeros(a.size)
        for i in range(a.size):
            keep = flat[i]
            flat[i] = keep + eps
            hp = sum(float((g * u).sum()) for g, u in zip(_first(fn, arrays, v, square), us))
            flat[i] = keep - eps
            hm = sum(float((g * u).sum()) for g, u in zip(_first(fn, arrays, v, square), us))
            flat[i] = keep
            numeric[i] = (hp - hm) / (2 * eps)
        analytic = np.zeros(a.size) if second[k] is None else second[k].numpy().reshape(-1)
        worst = max(worst, float(np.max(np.abs(analytic - numeric) / np.maximum(1.0, np.abs(numeric)))))
    return worst


def _idx(*values):
    return bm.tensor(list(values))


SMOOTH = {
    "tanh_exp": (lambda x: bm.tanh(x) * bm.exp(0.3 * x), [(3, 4)]),
    "sigmoid_log": (lambda x: bm.sigmoid(x) + bm.log(x * x + 1.0), [(5,)]),
    "gelu": (lambda x: F.gelu(x), [(6,)]),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), [(6,)]),
    "softplus_silu": (lambda x: F.softplus(x) + F.silu(x), [(6,)]),
    "sqrt_rsqrt_pow": (lambda x: bm.sqrt(x * x + 1.0) + bm.rsqrt(x * x + 2.0) + (x * x + 1.0) ** 1.5, [(5,)]),
    "sin_cos": (lambda x: bm.sin(x) * bm.cos(2.0 * x), [(5,)]),
    "mul_div": (lambda a, b: a * b / (b * b + 1.0), [(3, 2), (3, 2)]),
    "broadcast_add": (lambda a, b: (a + b) * a, [(3, 1), (1, 4)]),
    "matmul": (lambda a, b: a @ b, [(3, 4), (4, 2)]),
    "bmm": (lambda a, b: bm.bmm(a, b), [(2, 2, 3), (2, 3, 2)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [(3, 4), (2, 4), (2,)]),
    "softmax": (lambda x: F.softmax(x, 1), [(2, 5)]),
    "log_softmax": (lambda x: F.log_softmax(x, 0), [(4, 3)]),
    "sum_mean": (lambda x: x.sum(1) * x.mean(0)[:1], [(3, 4)]),
    "logsumexp": (lambda x: bm.logsumexp(x, 1), [(3, 4)]),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, padding=1), [(1, 2, 4, 4), (3, 2, 3, 3), (3,)]),
    "conv2d_stride": (lambda x, w: F.conv2d(x, w, stride=2, dilation=1), [(1, 1, 5, 5), (2, 1, 2, 2)]),
    "cat_stack_views": (lambda a, b: bm.cat([a, b.t()], 0).reshape(-1)[::2] * bm.stack([a, a])[1].reshape(-1)[:6],
                        [(2, 3), (3, 2)]),
    "gather_index": (lambda x: x.gather(1, bm.tensor([[1, 0], [2, 2]])) * x[:, :2], [(2, 3)]),
    "index_select": (lambda x: x.index_select(0, _idx(2, 0)) ** 2, [(3, 2)]),
    "where_masked": (lambda a, b: bm.where(a > 0, a * b, b * b).masked_fill(b > 1.5, 0.0), [(3, 3), (3, 3)]),
    "embedding": (lambda w: F.embedding(bm.tensor([[0, 2], [1, 2]]), w) ** 2, [(3, 4)]),
    "mse_loss": (lambda a, b: F.mse_loss(a, b), [(3, 4), (3, 4)]),
    "slice_narrow_select": (lambda x: x[:, 1:3].reshape(-1)[::2] * x.narrow(0, 1, 1).reshape(-1)[:3] + x[2][1],
                            [(3, 4)]),
    "transpose_expand_squeeze": (lambda x: x.t().unsqueeze(0).expand(2, 3, 2).squeeze(0) * 2.0, [(2, 3)]),
    "var_logsumexp": (lambda x: x.var(1) + bm.logsumexp(x, 1), [(3, 4)]),
    "relu_abs_clamp_maximum": (lambda a, b: F.relu(a) * b.abs() + a.clamp(-0.5, 0.5) * bm.maximum(a, b), [(5,), (5,)]),
    "pools": (lambda x: F.max_pool2d(x, 2).sum() * F.avg_pool2d(x, 2) + F.adaptive_avg_pool2d(x, 1), [(1, 1, 4, 4)]),
    "cat_stack_flip_tril_unbind": (lambda a, b: bm.cat([a, b], 0).flip(0).tril() * bm.stack([a[:1], b]).unbind(0)[1],
                                   [(2, 3), (1, 3)]),
    "dot_pow": (lambda a, b: bm.dot(a, b) * (a * a + 1.0) ** b, [(3,), (3,)]),
    "linear_3d": (lambda x, w, b: F.linear(x, w, b), [(2, 3, 4), (2, 4), (2,)]),
}

# Ops whose backward is a fused kernel: a second derivative must raise, not come out wrong.
FIRST_ORDER_ONLY = {
    "std": (lambda x: x.std(0), [(3, 4)]),
    "max_dim": (lambda x: x.max(1).values, [(3, 4)]),
    "amax": (lambda x: x.amax(1), [(3, 4)]),
    "norm": (lambda x: x.norm(dim=1), [(3, 4)]),
    "prod": (lambda x: x.prod(1), [(3, 3)]),
    "layer_norm": (lambda x: F.layer_norm(x, (4,)), [(3, 4)]),
    "batch_norm": (lambda x: F.batch_norm(x, None, None, training=True), [(4, 3)]),
    "cross_entropy": (lambda x: F.cross_entropy(x, bm.tensor([1, 0, 3])), [(3, 4)]),
    "bce_with_logits": (lambda x: F.binary_cross_entropy_with_logits(x, bm.tensor([[1.0, 0.0], [0.0, 1.0]])), [(2, 2)]),
    "l1_loss": (lambda a, b: F.l1_loss(a, b), [(3,), (3,)]),
    "inplace_sin": (lambda x: (x * 1.0).sin_(), [(4,)]),
    "inplace_mul": (lambda x: (x * 1.0).mul_(x), [(4,)]),
}


@pytest.mark.parametrize("name", sorted(FIRST_ORDER_ONLY))
def test_fused_backward_refuses_a_second_derivative(name):
    fn, shapes = FIRST_ORDER_ONLY[name]
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for s in shapes]
    xs = [bm.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*xs)
    v = bm.tensor(rng.standard_normal(out.shape))
    # The first derivatives under create_graph are those of a plain backward...
    gs = bm.autograd.grad(_objective(fn, xs, v), xs, create_graph=True)
    plain = _first(fn, arrays, v)
    for g, p in zip(gs, plain):
        np.testing.assert_allclose(g.detach().numpy(), p, rtol=1e-12, atol=1e-12)
    # ...and differentiating them again raises, naming the op, instead of a wrong number.
    h = sum((g * g).sum() for g in gs)
    assert h.requires_grad
    with pytest.raises(NotImplementedError, match="second derivative"):
        bm.autograd.grad(h, xs)


# Losses and max reductions: differentiable again where the gradient reaching them has no
# history (they sit at the root, as a loss does: Hessians of a loss); otherwise they refuse.
CONSTANT_GRAD = ["cross_entropy", "max_dim", "amax"]


@pytest.mark.parametrize("name", CONSTANT_GRAD)
def test_second_derivative_from_the_root(name):
    fn, shapes = FIRST_ORDER_ONLY[name]
    err = hvp_error(fn, shapes, square=False)
    assert err < 1e-5, f"{name}: Hessian-vector product off by {err:.3g}"


def test_hessian_of_a_classifier_loss_in_its_weights():
    rng = np.random.default_rng(3)
    x = bm.tensor(rng.standard_normal((4, 3)))
    target = bm.tensor([0, 2, 1, 2])

    def loss(w):
        return F.cross_entropy(bm.tanh(x @ w), target)

    err = hvp_error(loss, [(3, 3)], square=False)
    assert err < 1e-5


def test_second_derivative_through_a_python_function():
    class Cube(bm.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3.0 * x * x * g

    a = np.array([0.5, -1.5, 2.0])
    x = bm.tensor(a, requires_grad=True)
    (g,) = bm.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    (h,) = bm.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6.0 * a)


def test_plain_backward_is_unchanged_by_the_guard():
    x = bm.tensor(np.array([[0.3, -1.2, 2.0], [1.0, 0.5, -0.7]]), requires_grad=True)
    F.layer_norm(x, (3,)).pow(2).sum().backward()
    assert x.grad is not None and not x.grad.requires_grad


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_second_derivative_matches_finite_differences(name):
    fn, shapes = SMOOTH[name]
    err = hvp_error(fn, shapes)
    assert err < 1e-5, f"{name}: Hessian-vector product off by {err:.3g}"
