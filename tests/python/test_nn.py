"""Tests for bm.nn: Parameter, Module registration/traversal/state_dict, Linear, containers,
activations, Dropout, losses (module vs functional vs NumPy), init, and a tiny training run."""
import math
from collections import OrderedDict

import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn, optim
from bigmodel.nn import functional as F
from conftest import assert_close


def _t(arr):
    return bm.tensor(np.asarray(arr))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(_t(np.arange(6.0, dtype=np.float32).reshape(2, 3) + 1))
        self.register_buffer("count", _t(np.array([5], dtype=np.int64)))
        self.register_buffer("scratch", _t(np.ones(2)), persistent=False)
        self.plain = _t(np.ones(2))  # a plain tensor attribute is not registered

    def forward(self, x):
        return x


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Block()
        self.b = Block()
        self.bias = nn.Parameter(_t(np.array([0.5, -0.5])))


# ------------------------------------------------------------------ Parameter / registration
def test_parameter_is_a_leaf_tensor_sharing_memory():
    data = _t(np.array([1.0, 2.0]))
    p = nn.Parameter(data)
    assert isinstance(p, bm.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf
    assert not isinstance(data, nn.Parameter)
    assert p.data_ptr() == data.data_ptr()
    assert not nn.Parameter(data, requires_grad=False).requires_grad
    with pytest.raises(TypeError, match="Parameter"):
        nn.Parameter(np.ones(3))
    with pytest.raises(TypeError, match="floating point"):
        nn.Parameter(_t(np.array([1, 2])))


def test_named_parameters_buffers_children_modules():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["bias", "a.w", "b.w"]
    assert [n for n, _ in net.named_buffers()] == ["a.count", "a.scratch", "b.count", "b.scratch"]
    assert [n for n, _ in net.named_children()] == ["a", "b"]
    assert [n for n, _ in net.named_modules()] == ["", "a", "b"]
    assert len(list(net.parameters())) == 3 and len(list(net.modules())) == 3
    assert net.a.w is net.get_parameter("a.w")
    assert "plain" not in dict(net.a.named_parameters()) and "plain" not in dict(net.a.named_buffers())
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["bias"]


def test_shared_modules_and_parameters_are_listed_once():
    net = Net()
    net.b = net.a
    assert [n for n, _ in net.named_parameters()] == ["bias", "a.w"]
    assert len(list(net.modules())) == 2


def test_setattr_rules():
    blk = Block()
    with pytest.raises(TypeError, match="parameter 'w'"):
        blk.w = _t(np.ones((2, 3)))
    blk.w = None
    assert blk.w is None and [n for n, _ in blk.named_parameters()] == []
    blk.count = _t(np.array([9], dtype=np.int64))
    assert dict(blk.named_buffers())["count"].numpy()[0] == 9
    del blk.count
    assert "count" not in dict(blk.named_buffers())
    with pytest.raises(AttributeError, match="nothing"):
        blk.nothing

    class NoInit(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(_t(np.ones(2)))
    with pytest.raises(AttributeError, match="super"):
        NoInit()


def test_train_eval_apply_requires_grad():
    net = Net()
    assert net.training and net.a.training
    assert net.eval() is net
    assert not net.training and not net.a.training and not net.b.training
    net.train()
    assert net.b.training
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Block", "Block", "Net"]
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_zero_grad():
    net = Net()
    for p in net.parameters():
        p.grad = bm.tensor(np.full(tuple(p.shape), 3.0), dtype=p.dtype)
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


# ------------------------------------------------------------------ state_dict
def test_state_dict_contents():
    net = Net()
    sd = net.state_dict()
    assert isinstance(sd, OrderedDict)
    assert list(sd) == ["bias", "a.w", "a.count", "b.w", "b.count"]  # non-persistent buffer left out
    assert not sd["a.w"].requires_grad
    assert sd["a.w"].data_ptr() == net.a.w.data_ptr()


def test_state_dict_round_trip(rng):
    src, dst = Net(), Net()
    with bm.no_grad():
        src.a.w.copy_(_t(rng.standard_normal((2, 3))))
        src.bias.copy_(_t(rng.standard_normal(2)))
    src.b.count = _t(np.array([42], dtype=np.int64))
    ptr = dst.a.w.data_ptr()
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (k, v), (k2, v2) in zip(src.state_dict().items(), dst.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(v.numpy(), v2.numpy())
    assert dst.a.w.data_ptr() == ptr and dst.a.w.requires_grad  # copied in place


def test_load_state_dict_strict_errors_change_nothing(rng):
    net = Net()
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    sd = {k: bm.tensor(v.numpy() + 1) for k, v in net.state_dict().items()}
    del sd["a.w"]
    sd["extra"] = _t(np.ones(1))
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(sd)
    msg = str(err.value)
    assert "Missing key(s)" in msg and '"a.w"' in msg and "Unexpected key(s)" in msg and '"extra"' in msg
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])

    bad = {k: v for k, v in net.state_dict().items()}
    bad["b.w"] = _t(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"size mismatch for b\.w.*\[3, 2\].*\[2, 3\]"):
        net.load_state_dict(bad)

    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["a.w"] and res.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(net.bias.detach().numpy(), before["bias"] + 1)
    np.testing.assert_array_equal(net.a.w.detach().numpy(), before["a.w"])


def test_to_double_converts_floating_tensors_only():
    net = Net()
    net.a.w.grad = _t(np.ones((2, 3), dtype=np.float32))
    net.double()
    assert all(p.dtype == bm.float64 for p in net.parameters())
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert net.a.w.grad.dtype == bm.float64
    assert net.a.count.dtype == bm.int64
    assert net.a.scratch.dtype == bm.float64
    net.float()
    assert net.a.w.dtype == bm.float32
    np.testing.assert_array_equal(net.a.w.detach().numpy(), np.arange(6.0).reshape(2, 3) + 1)


# ------------------------------------------------------------------ Linear, containers, repr
def test_linear_forward_matches_numpy(rng):
    lin = nn.Linear(5, 3).double()
    x = rng.standard_normal((4, 5))
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    assert_close(lin(_t(x)), x @ w.T + b)
    x3 = rng.standard_normal((2, 4, 5))
    assert_close(lin(_t(x3)), x3 @ w.T + b)
    nob = nn.Linear(5, 2, bias=False).double()
    assert nob.bias is None and [n for n, _ in nob.named_parameters()] == ["weight"]
    assert_close(nob(_t(x)), x @ nob.weight.detach().numpy().T)


def test_linear_gradients_flow(rng):
    lin = nn.Linear(3, 2).double()
    x = rng.standard_normal((4, 3))
    lin(_t(x)).sum().backward()
    assert_close(lin.weight.grad, np.tile(x.sum(0), (2, 1)))
    assert_close(lin.bias.grad, np.full(2, 4.0))


def test_linear_init_bounds_and_seed():
    bm.manual_seed(7)
    lin = nn.Linear(400, 50)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    bound = 1 / math.sqrt(400)
    assert w.shape == (50, 400) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.98 * bound  # uniform over the whole interval ...
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound  # ... with the variance of U(-b, b)
    assert abs(w.mean()) < 0.02 * bound
    bm.manual_seed(7)
    np.testing.assert_array_equal(nn.Linear(400, 50).weight.detach().numpy(), w)


def test_sequential_and_repr():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    assert len(model) == 3 and isinstance(model[1], nn.ReLU) and model[-1] is model[2]
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(model[:2]) == 2
    with pytest.raises(IndexError):
        model[3]
    assert repr(model) == ("Sequential(\n"
                           "  (0): Linear(in_features=4, out_features=8, bias=True)\n"
                           "  (1): ReLU()\n"
                           "  (2): Linear(in_features=8, out_features=2, bias=True)\n"
                           ")")
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert [n for n, _ in named.named_children()] == ["fc", "act"]
    x = bm.tensor(np.ones((3, 4), dtype=np.float32))
    h = model[0](x)
    out = model[2](F.relu(h))
    np.testing.assert_allclose(model(x).detach().numpy(), out.detach().numpy(), rtol=1e-6)


def test_module_list():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.Linear(2, 1))
    assert len(layers) == 4 and layers[-1].out_features == 1
    holder = nn.Module()
    holder.layers = layers
    assert len(list(holder.parameters())) == 8
    assert "layers.3.weight" in holder.state_dict()
    del layers[0]
    assert [n for n, _ in layers.named_children()] == ["0", "1", "2"]


# ------------------------------------------------------------------ activations, dropout
def _gelu(x):
    from math import erf
    return 0.5 * x * (1 + np.vectorize(erf)(x / math.sqrt(2)))


def _softmax(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


@pytest.mark.parametrize("module, fn, ref", [
    (nn.ReLU(), F.relu, lambda x: np.maximum(x, 0)),
    (nn.Sigmoid(), F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), F.tanh, np.tanh),
    (nn.SiLU(), F.silu, lambda x: x / (1 + np.exp(-x))),
    (nn.GELU(), F.gelu, _gelu),
    (nn.GELU("tanh"), lambda x: F.gelu(x, approximate="tanh"),
     lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    (nn.Softmax(dim=1), lambda x: F.softmax(x, dim=1), lambda x: _softmax(x, 1)),
    (nn.LogSoftmax(dim=-1), lambda x: F.log_softmax(x, dim=-1), lambda x: np.log(_softmax(x, -1))),
], ids=["relu", "sigmoid", "tanh", "silu", "gelu", "gelu_tanh", "softmax", "log_softmax"])
def test_activations(rng, module, fn, ref):
    x = rng.standard_normal((3, 5)) * 2
    assert_close(module(_t(x)), ref(x))
    assert_close(fn(_t(x)), ref(x))


def test_flatten_and_identity(rng):
    x = _t(rng.standard_normal((2, 3, 4)))
    assert tuple(nn.Flatten()(x).shape) == (2, 12)
    assert tuple(nn.Flatten(0, 1)(x).shape) == (6, 4)
    assert nn.Identity(5, foo=1)(x) is x


def test_dropout_train_and_eval(rng):
    bm.manual_seed(0)
    x = rng.standard_normal((200, 50)) + 3.0
    drop = nn.Dropout(0.25)
    out = drop(_t(x)).numpy()
    kept = out != 0
    assert abs(kept.mean() - 0.75) < 0.02
    assert_close(out[kept], x[kept] / 0.75, dtype=bm.float64)
    drop.eval()
    assert_close(drop(_t(x)), x)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


# ------------------------------------------------------------------ losses
def _log_softmax(x):
    return x - x.max(1, keepdims=True) - np.log(np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True))


def _ce_ref(x, y, weight=None, ignore_index=-100, smoothing=0.0, reduction="mean"):
    n, c = x.shape
    logp = _log_softmax(x)
    w = np.ones(c) if weight is None else weight
    valid = y != ignore_index
    ys = np.where(valid, y, 0)
    nll = -logp[np.arange(n), ys] * w[ys] * valid
    smooth = -(logp * w).sum(1) * valid / c
    loss = (1 - smoothing) * nll + smoothing * smooth
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (w[ys] * valid).sum()


@pytest.mark.parametrize("kwargs", [
    dict(), dict(reduction="sum"), dict(reduction="none"), dict(ignore_index=2),
    dict(weight=np.array([0.5, 1.0, 2.0, 1.5])), dict(label_smoothing=0.1),
], ids=["mean", "sum", "none", "ignore", "weight", "smoothing"])
def test_cross_entropy_loss(rng, kwargs):
    x = rng.standard_normal((6, 4))
    y = np.array([0, 2, 1, 3, 2, 0])
    mod_kwargs = dict(kwargs)
    if "weight" in kwargs:
        mod_kwargs["weight"] = _t(kwargs["weight"])
    expected = _ce_ref(x, y, weight=kwargs.get("weight"), ignore_index=kwargs.get("ignore_index", -100),
                       smoothing=kwargs.get("label_smoothing", 0.0), reduction=kwargs.get("reduction", "mean"))
    assert_close(nn.CrossEntropyLoss(**mod_kwargs)(_t(x), _t(y)), expected)
    assert_close(F.cross_entropy(_t(x), _t(y), **mod_kwargs), expected)


def test_nll_mse_l1_bce_losses(rng):
    x = rng.standard_normal((5, 3))
    t = rng.standard_normal((5, 3))
    y = np.array([2, 0, 1, 1, 2])
    logp = _log_softmax(x)
    assert_close(nn.NLLLoss()(_t(logp), _t(y)), -logp[np.arange(5), y].mean())
    assert_close(F.nll_loss(_t(logp), _t(y), reduction="sum"), -logp[np.arange(5), y].sum())
    assert_close(nn.MSELoss()(_t(x), _t(t)), ((x - t) ** 2).mean())
    assert_close(F.mse_loss(_t(x), _t(t), reduction="none"), (x - t) ** 2)
    assert_close(nn.L1Loss(reduction="sum")(_t(x), _t(t)), np.abs(x - t).sum())
    assert_close(F.l1_loss(_t(x), _t(t)), np.abs(x - t).mean())
    z = rng.uniform(0, 1, (5, 3))
    bce = np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
    assert_close(nn.BCEWithLogitsLoss()(_t(x), _t(z)), bce.mean())
    assert_close(F.binary_cross_entropy_with_logits(_t(x), _t(z), reduction="none"), bce)
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


def test_loss_gradient_through_module(rng):
    x = _t(rng.standard_normal((4, 3)))
    x.requires_grad_(True)
    y = _t(np.array([0, 1, 2, 1]))
    nn.CrossEntropyLoss()(x, y).backward()
    xn = x.detach().numpy()
    p = _softmax(xn, 1)
    p[np.arange(4), [0, 1, 2, 1]] -= 1
    assert_close(x.grad, p / 4)


# ------------------------------------------------------------------ init
def test_init_functions():
    bm.manual_seed(1)
    w = bm.zeros(300, 200)
    nn.init.xavier_uniform_(w)
    a = math.sqrt(6 / 500)
    arr = w.numpy()
    assert np.abs(arr).max() <= a and np.abs(arr).max() > 0.98 * a
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.numpy().std() - math.sqrt(2 / 200)) < 0.03 * math.sqrt(2 / 200)
    nn.init.xavier_normal_(w, gain=2.0)
    assert abs(w.numpy().std() - 2 * math.sqrt(2 / 500)) < 0.03 * 2 * math.sqrt(2 / 500)
    nn.init.kaiming_uniform_(w, mode="fan_out")
    b = math.sqrt(2 / (1 + 0.0)) * math.sqrt(3 / 300)
    assert np.abs(w.numpy()).max() <= b and np.abs(w.numpy()).max() > 0.98 * b
    nn.init.normal_(w, 2.0, 0.5)
    assert abs(w.numpy().mean() - 2.0) < 0.01 and abs(w.numpy().std() - 0.5) < 0.01
    nn.init.constant_(w, 0.25)
    assert np.all(w.numpy() == 0.25)
    nn.init.ones_(w)
    assert np.all(w.numpy() == 1)
    nn.init.zeros_(w)
    assert np.all(w.numpy() == 0)
    p = nn.Parameter(bm.zeros(3, 4))
    nn.init.uniform_(p, -1, 1)  # a leaf requiring grad: initialised under no_grad
    assert p.grad_fn is None and np.abs(p.detach().numpy()).max() <= 1
    with pytest.raises(ValueError, match="fan"):
        nn.init.xavier_uniform_(bm.zeros(5))
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))


# ------------------------------------------------------------------ end to end
def test_mlp_fits_synthetic_problem():
    bm.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 2)).astype(np.float32)
    y = ((x[:, 0] * x[:, 1]) > 0).astype(np.int64)  # XOR-like: needs the hidden layer
    model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 2))
    opt = optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = _t(x), _t(y)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]
    with bm.no_grad():
        pred = model(xt).numpy().argmax(1)
    assert (pred == y).mean() > 0.9


def test_parameter_is_a_tensor_subclass_and_conversion_keeps_identity():
    lin = nn.Linear(3, 2)
    w = lin.weight
    assert isinstance(w, nn.Parameter) and isinstance(w, bm.Tensor)
    assert repr(w).startswith("Parameter containing:\ntensor(")
    opt = bm.optim.SGD(lin.parameters(), lr=0.1)
    lin.double()
    assert lin.weight is w and w.dtype == bm.float64 and w.requires_grad
    lin(bm.ones(1, 3, dtype=bm.float64)).sum().backward()
    before = w.detach().clone()
    opt.step()  # the optimizer built before .double() still updates the same object
    assert not np.allclose(before.numpy(), w.detach().numpy())
    with pytest.raises(TypeError, match="nn.Parameter"):
        lin.register_parameter("extra", bm.ones(2))
    assert not isinstance(bm.ones(2), nn.Parameter)
