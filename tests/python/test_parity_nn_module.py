"""PyTorch parity sweep, nn.Module machinery: containers, naming and order of parameters and
modules, state_dict round trips, buffers, train/eval, apply, hooks, dtype conversion, repr,
deepcopy, and the forward of common layers with identical weights (see _parity.py)."""
import copy
import zlib
from collections import OrderedDict

import numpy as np

from _parity import cases, check, xfail

R = np.random.default_rng(5)
X = R.standard_normal((2, 4)).astype(np.float32)
IMG = R.standard_normal((2, 3, 6, 6)).astype(np.float32)
BN_IN = (R.standard_normal((8, 4)) + 2).astype(np.float32)
SEQ = R.standard_normal((2, 5, 4)).astype(np.float32)
TOK = R.standard_normal((2, 3, 4)).astype(np.float32)


def fill_params(lib, model):
    """Gives every parameter and float buffer deterministic values from its name, so torch's
    and bigmodel's copies of one architecture compute the same function."""
    with lib.no_grad():
        for name, p in list(model.named_parameters()) + list(model.named_buffers()):
            if not p.is_floating_point():
                continue
            g = np.random.default_rng(zlib.crc32(name.encode()))
            arr = g.uniform(0.5, 1.0, tuple(p.shape)) if "running_var" in name else g.standard_normal(tuple(p.shape))
            p.copy_(lib.tensor((arr * 0.5).astype(np.float32)))
    return model


def mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


class _Net:
    """The same small model class for both libraries (built on lib.nn.Module)."""

    @staticmethod
    def make(lib):
        nn = lib.nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(4, 6), nn.Tanh())
                self.heads = nn.ModuleList([nn.Linear(6, 2), nn.Linear(6, 1)])
                self.scale = nn.Parameter(lib.ones(1))
                self.register_buffer("count", lib.zeros(1))
                self.register_buffer("cache", lib.zeros(2), persistent=False)

            def forward(self, x):
                h = self.body(x)
                return lib.cat([m(h) for m in self.heads], dim=1) * self.scale
        return Net()


# ---- containers ----
def _sequential_forward(lib): return fill_params(lib, mlp(lib))(lib.tensor(X))
def _sequential_index_len(lib):
    s = mlp(lib)
    return len(s), type(s[0]).__name__, type(s[-1]).__name__, len(s[1:]), type(s[1:]).__name__
def _sequential_append(lib):
    s = mlp(lib)
    s.append(lib.nn.Softmax(dim=1))
    return len(s), [n for n, _ in s.named_children()]
def _sequential_ordered_dict(lib):
    nn = lib.nn
    s = nn.Sequential(OrderedDict([("fc", nn.Linear(4, 2)), ("act", nn.Sigmoid())]))
    return list(s.state_dict().keys()), type(s.fc).__name__
def _sequential_iter(lib): return [type(m).__name__ for m in mlp(lib)]
def _sequential_index_error(lib): return mlp(lib)[5]
def _modulelist(lib):
    nn = lib.nn
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    ml.append(nn.ReLU())
    ml.extend([nn.Tanh()])
    ml.insert(0, nn.Identity())
    return len(ml), [type(m).__name__ for m in ml], len(list(ml.parameters())), type(ml[1:3]).__name__
def _moduledict(lib):
    nn = lib.nn
    md = nn.ModuleDict({"a": nn.Linear(2, 3), "b": nn.ReLU()})
    md["c"] = nn.Linear(3, 1)
    return list(md.keys()), len(md), "a" in md, [n for n, _ in md.named_parameters()], type(md["b"]).__name__
def _moduledict_items_values(lib):
    nn = lib.nn
    md = nn.ModuleDict({"x": nn.Tanh(), "y": nn.Sigmoid()})
    return [k for k, _ in md.items()], [type(v).__name__ for v in md.values()], md.pop("x").__class__.__name__, len(md)
def _parameterlist(lib):
    nn = lib.nn
    pl = nn.ParameterList([nn.Parameter(lib.ones(2)), nn.Parameter(lib.zeros(3))])
    pl.append(nn.Parameter(lib.ones(1)))
    return len(pl), [n for n, _ in pl.named_parameters()], pl[1].shape
def _parameterdict(lib):
    nn = lib.nn
    pd = nn.ParameterDict({"w": nn.Parameter(lib.ones(2))})
    return list(pd.keys()), [n for n, _ in pd.named_parameters()]


# ---- names and order ----
def _named_parameters(lib): return [(n, tuple(p.shape)) for n, p in _Net.make(lib).named_parameters()]
def _named_modules(lib): return [(n, type(m).__name__) for n, m in _Net.make(lib).named_modules()]
def _children(lib): return [type(m).__name__ for m in _Net.make(lib).children()]
def _named_buffers(lib): return [n for n, _ in _Net.make(lib).named_buffers()]
def _parameters_count(lib): return sum(p.numel() for p in _Net.make(lib).parameters()), len(list(mlp(lib).parameters()))
def _state_dict_keys(lib): return list(_Net.make(lib).state_dict().keys())
def _state_dict_detached(lib):
    sd = _Net.make(lib).state_dict()
    return all(not v.requires_grad for v in sd.values())
def _get_submodule(lib):
    n = _Net.make(lib)
    return type(n.get_submodule("heads.1")).__name__, tuple(n.get_parameter("body.0.bias").shape)
def _parameter_is_tensor(lib):
    p = lib.nn.Parameter(lib.ones(2))
    return isinstance(p, lib.Tensor), p.requires_grad, isinstance(p * 2, lib.nn.Parameter)
def _parameter_no_grad(lib): return lib.nn.Parameter(lib.ones(2), requires_grad=False).requires_grad
def _parameter_repr(lib): return repr(lib.nn.Parameter(lib.ones(2))).replace("torch", "L").replace("bigmodel", "L")
def _setattr_tensor_is_not_param(lib):
    m = lib.nn.Module()
    m.t = lib.ones(2)
    m.p = lib.nn.Parameter(lib.ones(2))
    return [n for n, _ in m.named_parameters()]
def _delattr_submodule(lib):
    n = _Net.make(lib)
    del n.heads
    return [k for k, _ in n.named_children()]


# ---- state dicts ----
def _load_state_dict_roundtrip(lib):
    a, b = fill_params(lib, mlp(lib)), mlp(lib)
    b.load_state_dict(a.state_dict())
    return b(lib.tensor(X))
def _load_state_dict_nonstrict(lib):
    m = mlp(lib)
    sd = m.state_dict()
    del sd["2.bias"]
    sd["extra.weight"] = lib.zeros(1)
    r = m.load_state_dict(sd, strict=False)
    return sorted(r.missing_keys), sorted(r.unexpected_keys)
def _load_state_dict_strict_raises(lib):
    m = mlp(lib)
    sd = m.state_dict()
    del sd["0.weight"]
    m.load_state_dict(sd)
def _load_state_dict_shape_raises(lib):
    m = mlp(lib)
    sd = m.state_dict()
    sd["0.bias"] = lib.zeros(5)
    m.load_state_dict(sd)
def _load_state_dict_return_ok(lib):
    m = mlp(lib)
    r = m.load_state_dict(m.state_dict())
    return list(r.missing_keys), list(r.unexpected_keys), str(r)
def _state_dict_shares_memory(lib):
    m = mlp(lib)
    sd = m.state_dict()
    sd["0.bias"].fill_(3.0)
    return m[0].bias
def _buffers_follow_module(lib):
    n = _Net.make(lib)
    n.count += 1
    return n.state_dict()["count"], "cache" in n.state_dict()


# ---- modes, apply, grads, hooks, dtype ----
def _train_eval(lib):
    n = _Net.make(lib)
    n.eval()
    a = [m.training for m in n.modules()]
    r = n.train()
    return a, [m.training for m in n.modules()], r is n, n.train(False).training
def _apply_init(lib):
    m = mlp(lib)

    def init(mod):
        if isinstance(mod, lib.nn.Linear):
            lib.nn.init.constant_(mod.weight, 0.5)
            lib.nn.init.zeros_(mod.bias)
    r = m.apply(init)
    return r is m, m(lib.tensor(X))
@xfail("bm follows PyTorch 2.x: zero_grad() sets .grad to None (set_to_none=True); torch 1.13 zeroes it")
def _zero_grad(lib):
    m = fill_params(lib, mlp(lib))
    m(lib.tensor(X)).sum().backward()
    had = all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    return had, [p.grad for p in m.parameters()][0] is None
def _requires_grad_module(lib):
    m = mlp(lib)
    m.requires_grad_(False)
    return [p.requires_grad for p in m.parameters()]
def _forward_hook(lib):
    m = fill_params(lib, mlp(lib))
    seen = []
    h = m[0].register_forward_hook(lambda mod, inp, out: seen.append((type(inp).__name__, out.shape)))
    m(lib.tensor(X))
    h.remove()
    m(lib.tensor(X))
    return seen
def _forward_hook_replaces_output(lib):
    m = fill_params(lib, mlp(lib))
    m[2].register_forward_hook(lambda mod, inp, out: out * 0 + 1)
    return m(lib.tensor(X))
def _forward_pre_hook(lib):
    m = fill_params(lib, mlp(lib))
    m.register_forward_pre_hook(lambda mod, inp: (inp[0] * 2,))
    return m(lib.tensor(X))
def _to_dtype(lib):
    m = mlp(lib).to(lib.float64)
    return [p.dtype for p in m.parameters()], m.double().float()[0].weight.dtype
def _half_buffers(lib):
    n = _Net.make(lib).half()
    return [b.dtype for b in n.buffers()]
def _deepcopy(lib):
    a = fill_params(lib, mlp(lib))
    b = copy.deepcopy(a)
    with lib.no_grad():
        b[0].weight.mul_(0)
    return a(lib.tensor(X)), b[0].weight.sum().item(), b[0].weight is not a[0].weight
def _module_repr(lib): return repr(mlp(lib))
def _repr_custom(lib): return repr(_Net.make(lib))
def _layer_reprs(lib):
    nn = lib.nn
    return [repr(m) for m in (nn.Linear(3, 2, bias=False), nn.Conv2d(3, 8, 3, stride=2, padding=1),
                              nn.Dropout(0.2), nn.LayerNorm(5), nn.Embedding(10, 3), nn.BatchNorm2d(4),
                              nn.ReLU(inplace=True), nn.GELU(), nn.MaxPool2d(2), nn.LeakyReLU(0.1))]
def _module_call_kwargs(lib):
    class M(lib.nn.Module):
        def forward(self, x, scale=1.0):
            return x * scale
    return M()(lib.tensor(X), scale=3.0)
def _forward_not_implemented(lib): return lib.nn.Module()(lib.tensor(X))
def _missing_attr_raises(lib): return mlp(lib).nonexistent
def _extra_repr(lib):
    class M(lib.nn.Module):
        def extra_repr(self):
            return "k=3"
    return repr(M())


# ---- layers with identical weights ----
def _layers_forward(lib):
    nn = lib.nn
    m = fill_params(lib, nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                       nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 5), nn.LayerNorm(5)))
    m.eval()
    return m(lib.tensor(IMG))
def _batchnorm_train_updates_stats(lib):
    bn = lib.nn.BatchNorm1d(4)
    bn(lib.tensor(BN_IN))
    return bn.running_mean, bn.running_var, bn.num_batches_tracked
def _embedding_padding(lib):
    e = fill_params(lib, lib.nn.Embedding(5, 3, padding_idx=0))
    out = e(lib.tensor([[0, 2], [4, 0]]))
    out.sum().backward()
    return out, e.weight.grad
def _dropout_eval_identity(lib):
    d = lib.nn.Dropout(0.5)
    d.eval()
    return d(lib.tensor(X))
def _dropout_train_scales(lib):
    d = lib.nn.Dropout(0.5)
    y = d(lib.ones(1000))
    return sorted(set(y.tolist()))
def _conv1d_module(lib):
    return fill_params(lib, lib.nn.Conv1d(3, 2, 3, padding=1))(lib.tensor(IMG[:, :, 0]))
def _lstm_batch_first(lib):
    m = fill_params(lib, lib.nn.LSTM(4, 3, batch_first=True))
    out, (h, c) = m(lib.tensor(SEQ))
    return out, h, c
def _multihead_attention(lib):
    m = fill_params(lib, lib.nn.MultiheadAttention(4, 2, batch_first=True))
    q = lib.tensor(TOK)
    out, w = m(q, q, q)
    return out, w
def _transformer_encoder_layer(lib):
    m = fill_params(lib, lib.nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0, batch_first=True))
    return m(lib.tensor(TOK))
def _transformer_encoder_stack(lib):
    nn = lib.nn
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0, batch_first=True)
    m = fill_params(lib, nn.TransformerEncoder(layer, num_layers=2))
    return m(lib.tensor(TOK))
def _activation_modules(lib):
    nn = lib.nn
    x = lib.tensor(X)
    return [m(x) for m in (nn.ReLU(), nn.GELU(), nn.SiLU(), nn.Tanh(), nn.Sigmoid(), nn.LeakyReLU(0.2),
                           nn.Softmax(dim=1), nn.LogSoftmax(dim=-1), nn.ELU(), nn.Softplus(), nn.Mish(),
                           nn.Hardtanh(), nn.ReLU6(), nn.PReLU())]
def _pooling_modules(lib):
    nn = lib.nn
    x = lib.tensor(IMG)
    return [m(x) for m in (nn.AvgPool2d(2), nn.AdaptiveAvgPool2d((1, 1)), nn.AdaptiveAvgPool2d(2),
                           nn.MaxPool2d(3, stride=2, padding=1), nn.AdaptiveMaxPool2d(1))]
def _groupnorm(lib): return fill_params(lib, lib.nn.GroupNorm(1, 3))(lib.tensor(IMG))
def _upsample(lib): return lib.nn.Upsample(scale_factor=2, mode="nearest")(lib.tensor(IMG))
def _clip_grad_norm(lib):
    m = fill_params(lib, mlp(lib))
    (m(lib.tensor(X)) ** 2).sum().backward()
    total = lib.nn.utils.clip_grad_norm_(m.parameters(), 0.5)
    return total, [p.grad for p in m.parameters()]
def _parameters_to_vector(lib):
    m = fill_params(lib, mlp(lib))
    return lib.nn.utils.parameters_to_vector(m.parameters())
def _init_functions(lib):
    nn = lib.nn
    w = lib.empty(3, 4)
    return [nn.init.ones_(w).sum().item(), nn.init.constant_(w, 2.0).sum().item(),
            nn.init.eye_(lib.empty(3, 3)).sum().item(), nn.init.calculate_gain("relu")]


def _more_layers(lib):
    nn = lib.nn
    m = fill_params(lib, nn.Sequential(nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
                                       nn.InstanceNorm2d(4, affine=True), nn.ReflectionPad2d(1),
                                       nn.PixelShuffle(2), nn.ZeroPad2d((1, 0, 2, 1)), nn.Dropout2d(0.3),
                                       nn.Flatten(), nn.Unflatten(1, (1, -1))))
    m.eval()
    return m(lib.tensor(IMG))
def _more_layer_reprs(lib):
    nn = lib.nn
    return [repr(m) for m in (nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
                              nn.InstanceNorm2d(4), nn.ReflectionPad2d(1), nn.PixelShuffle(2), nn.ZeroPad2d(2),
                              nn.Unflatten(1, (2, 3)), nn.ReplicationPad1d((1, 2)))]
def _conv_transpose_output_size(lib):
    m = fill_params(lib, lib.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1))
    return m(lib.tensor(IMG), output_size=(12, 12))
def _instance_norm_running_stats(lib):
    m = lib.nn.InstanceNorm1d(3, track_running_stats=True)
    m(lib.tensor(IMG[:, :, 0]))
    m.eval()
    return m.running_mean, m.running_var, m(lib.tensor(IMG[:, :, 1]))


def _weight_norm(lib):
    m = fill_params(lib, lib.nn.Linear(4, 3))
    m = lib.nn.utils.weight_norm(m)
    out = m(lib.tensor(X))
    out.sum().backward()
    names = [n for n, _ in m.named_parameters()]
    return out, names, m.weight_g.grad, m.weight_v.grad, m.weight_g.shape, sorted(m.state_dict().keys())
def _weight_norm_conv_dim_none_and_remove(lib):
    m = fill_params(lib, lib.nn.Conv2d(3, 2, 3))
    lib.nn.utils.weight_norm(m, dim=None)
    g_shape = m.weight_g.shape
    y = m(lib.tensor(IMG))
    lib.nn.utils.remove_weight_norm(m)
    return g_shape, y, m(lib.tensor(IMG)), [n for n, _ in m.named_parameters()]
def _spectral_norm_converges(lib):
    m = fill_params(lib, lib.nn.Linear(4, 3))
    lib.nn.utils.spectral_norm(m, n_power_iterations=3)
    for _ in range(40):
        m(lib.tensor(X))
    m.eval()
    return m(lib.tensor(X)), sorted(m.state_dict().keys()), [n for n, _ in m.named_parameters()]


SRC = R.standard_normal((2, 5, 8)).astype(np.float32)
TGT = R.standard_normal((2, 3, 8)).astype(np.float32)
def _full_transformer(lib):
    nn = lib.nn
    m = fill_params(lib, nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1,
                                        dim_feedforward=16, dropout=0.0, batch_first=True))
    m.eval()
    mask = nn.Transformer.generate_square_subsequent_mask(3)
    pad = lib.tensor([[False] * 5, [False] * 3 + [True] * 2])
    out = m(lib.tensor(SRC), lib.tensor(TGT), tgt_mask=mask, src_key_padding_mask=pad, memory_key_padding_mask=pad)
    return out, mask, sorted(k for k in m.state_dict().keys())[:6], len(m.state_dict())


@cases(_more_layers, _more_layer_reprs, _full_transformer, _conv_transpose_output_size, _instance_norm_running_stats, _weight_norm,
       _weight_norm_conv_dim_none_and_remove, _spectral_norm_converges)
def test_more_layers(case):
    check(case, atol=1e-5, rtol=1e-4)


@cases(_sequential_forward, _sequential_index_len, _sequential_append, _sequential_ordered_dict, _sequential_iter,
       _sequential_index_error, _modulelist, _moduledict, _moduledict_items_values, _parameterlist, _parameterdict)
def test_containers(case):
    check(case)


@cases(_named_parameters, _named_modules, _children, _named_buffers, _parameters_count, _state_dict_keys,
       _state_dict_detached, _get_submodule, _parameter_is_tensor, _parameter_no_grad, _parameter_repr,
       _setattr_tensor_is_not_param, _delattr_submodule)
def test_names_and_parameters(case):
    check(case)


@cases(_load_state_dict_roundtrip, _load_state_dict_nonstrict, _load_state_dict_strict_raises,
       _load_state_dict_shape_raises, _load_state_dict_return_ok, _state_dict_shares_memory,
       _buffers_follow_module)
def test_state_dict(case):
    check(case)


@cases(_train_eval, _apply_init, _zero_grad, _requires_grad_module, _forward_hook, _forward_hook_replaces_output,
       _forward_pre_hook, _to_dtype, _half_buffers, _deepcopy, _module_repr, _repr_custom, _layer_reprs,
       _module_call_kwargs, _forward_not_implemented, _missing_attr_raises, _extra_repr)
def test_module_behaviour(case):
    check(case)


@cases(_layers_forward, _batchnorm_train_updates_stats, _embedding_padding, _dropout_eval_identity,
       _dropout_train_scales, _conv1d_module, _lstm_batch_first, _multihead_attention, _transformer_encoder_layer,
       _transformer_encoder_stack, _activation_modules, _pooling_modules, _groupnorm, _upsample, _clip_grad_norm,
       _parameters_to_vector, _init_functions)
def test_layers(case):
    check(case, atol=1e-5, rtol=1e-4)
