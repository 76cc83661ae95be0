"""The fused linear family on the CPU: F.linear with its bias in the GEMM's output pass and
F._linear_act (bias + relu / gelu / gelu_tanh in one op) against NumPy float64, gradients by
gradcheck, the fallbacks (broadcast bias, non-foldable inputs, integers), bad inputs, and the
GPT MLP / Transformer feed-forward blocks that use it, which must equal the composed ops."""
import math

import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn
from bigmodel.nn import functional as F
from conftest import assert_close

ACTS = ["none", "relu", "gelu", "gelu_tanh"]
_erf = np.vectorize(math.erf)


def act_ref(v, act):
    if act == "relu":
        return np.maximum(v, 0)
    if act == "gelu":
        return 0.5 * v * (1 + _erf(v / math.sqrt(2)))
    if act == "gelu_tanh":
        return 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))
    return v


def as_dtype(arr, dtype):
    return bm.tensor(np.ascontiguousarray(arr)).to(dtype)


def rounded(arr, dtype):
    """The float64 values a tensor of `dtype` holds for `arr` (the reference's inputs)."""
    t = as_dtype(arr, dtype)
    return (t.float() if dtype in (bm.float16, bm.bfloat16) else t).numpy().astype(np.float64)


def half_tol(dtype, k):
    # Half outputs: one rounding of a value of size ~sqrt(k), plus float32 accumulation.
    return {bm.float16: dict(atol=2e-3 * math.sqrt(k), rtol=2e-3),
            bm.bfloat16: dict(atol=1.6e-2 * math.sqrt(k), rtol=1.6e-2)}.get(dtype, {})


@pytest.mark.parametrize("dtype", [bm.float64, bm.float32, bm.float16, bm.bfloat16])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", [(7, 13), (2, 3, 13), (13,)])
def test_linear_act_matches_numpy(rng, dtype, act, shape):
    x, w, b = rng.standard_normal(shape), rng.standard_normal((9, 13)), rng.standard_normal(9)
    xr, wr, br = rounded(x, dtype), rounded(w, dtype), rounded(b, dtype)
    got = F._linear_act(as_dtype(x, dtype), as_dtype(w, dtype), as_dtype(b, dtype), act)
    assert got.dtype == dtype and got.shape == shape[:-1] + (9,)
    assert_close(got, act_ref(xr @ wr.T + br, act), **half_tol(dtype, 13))


@pytest.mark.parametrize("dtype", [bm.float64, bm.float32, bm.float16, bm.bfloat16])
def test_linear_with_bias_matches_numpy(rng, dtype):
    x, w, b = rng.standard_normal((4, 5, 11)), rng.standard_normal((6, 11)), rng.standard_normal(6)
    got = F.linear(as_dtype(x, dtype), as_dtype(w, dtype), as_dtype(b, dtype))
    assert_close(got, rounded(x, dtype) @ rounded(w, dtype).T + rounded(b, dtype), **half_tol(dtype, 11))
    # The module too.
    lin = nn.Linear(11, 6, dtype=dtype)
    want = rounded(x, dtype) @ lin.weight.detach().float().numpy().astype(np.float64).T + \
        lin.bias.detach().float().numpy()
    assert_close(lin(as_dtype(x, dtype)), want, **half_tol(dtype, 11))


@pytest.mark.parametrize("act", ACTS)
def test_noncontiguous_operands(rng, act):
    # A transposed input, a strided 3-D input (leading dims that do not fold: the composed
    # fallback), a transposed weight and a sliced bias.
    x = rng.standard_normal((8, 5))
    w = rng.standard_normal((5, 12))  # stored [in, out]: weight is its transpose
    xt = bm.tensor(np.ascontiguousarray(x.T)).transpose(0, 1)
    wt = bm.tensor(w).transpose(0, 1)
    bs = bm.tensor(rng.standard_normal(24))
    bs_view = bs[::2]
    b = bs.numpy()[::2]
    assert not xt.is_contiguous() and not wt.is_contiguous()
    assert_close(F._linear_act(xt, wt, bs_view, act), act_ref(x @ w + b, act))
    x3 = rng.standard_normal((4, 3, 5))
    x3v = bm.tensor(np.ascontiguousarray(x3.transpose(1, 0, 2))).transpose(0, 1)  # [4, 3, 5], dims 0/1 swapped
    assert not x3v.is_contiguous()
    assert_close(F._linear_act(x3v, wt, bs_view, act), act_ref(x3 @ w + b, act))
    assert_close(F.linear(x3v, wt, bs_view), x3 @ w + b)


@pytest.mark.parametrize("act", ACTS)
def test_gradcheck(rng, act):
    x = bm.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    w = bm.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    b = bm.tensor(rng.standard_normal(5), requires_grad=True)
    assert bm.autograd.gradcheck(lambda x, w, b: F._linear_act(x, w, b, act), [x, w, b])
    assert bm.autograd.gradcheck(lambda x, w: F._linear_act(x, w, None, act), [x, w])
    # Non-foldable input (the composed path) and a 1-D input.
    xs = bm.tensor(rng.standard_normal((3, 2, 4)), requires_grad=True)
    assert bm.autograd.gradcheck(lambda x, w, b: F._linear_act(x.transpose(0, 1), w, b, act), [xs, w, b])
    xv = bm.tensor(rng.standard_normal(4), requires_grad=True)
    assert bm.autograd.gradcheck(lambda x, w, b: F._linear_act(x, w, b, act), [xv, w, b])


def test_linear_gradcheck_and_grads(rng):
    x = bm.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = bm.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    b = bm.tensor(rng.standard_normal(2), requires_grad=True)
    assert bm.autograd.gradcheck(F.linear, [x, w, b])
    # Only some inputs requiring grad: the others get none.
    x = bm.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = bm.tensor(rng.standard_normal(2), requires_grad=True)
    w2 = bm.tensor(rng.standard_normal((2, 4)))
    y = F._linear_act(x, w2, b, "gelu_tanh")
    g = rng.standard_normal((3, 2))
    y.backward(bm.tensor(g))
    pre = x.detach().numpy() @ w2.numpy().T + b.detach().numpy()
    t = np.tanh(math.sqrt(2 / math.pi) * (pre + 0.044715 * pre ** 3))
    dgelu = 0.5 * (1 + t) + 0.5 * pre * (1 - t * t) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * pre ** 2)
    assert_close(b.grad, (g * dgelu).sum(0))
    assert_close(x.grad, (g * dgelu) @ w2.numpy())
    assert w2.grad is None


def test_relu_backward_sees_in_place_change(rng):
    # ReLU's backward reads the saved output: changing it in place must be caught.
    x = bm.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = bm.tensor(rng.standard_normal((2, 4)))
    y = F._linear_act(x, w, None, "relu")
    y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation|modified in place|version"):
        y.sum().backward()


def test_fused_equals_composed(rng):
    x = bm.tensor(rng.standard_normal((6, 16)).astype(np.float32))
    w = bm.tensor(rng.standard_normal((32, 16)).astype(np.float32))
    b = bm.tensor(rng.standard_normal(32).astype(np.float32))
    composed = {"none": F.linear(x, w, b), "relu": F.relu(F.linear(x, w, b)), "gelu": F.gelu(F.linear(x, w, b)),
                "gelu_tanh": F.gelu(F.linear(x, w, b), approximate="tanh")}
    for act, want in composed.items():
        assert_close(F._linear_act(x, w, b, act), want.detach().numpy().astype(np.float64))


def test_fallbacks_keep_working(rng):
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    # Broadcast bias shapes that are not [out] go through matmul + add.
    b2 = rng.standard_normal((3, 2))
    assert_close(F.linear(bm.tensor(x), bm.tensor(w), bm.tensor(b2)), x @ w.T + b2)
    assert_close(F._linear_act(bm.tensor(x), bm.tensor(w), bm.tensor(b2), "relu"), np.maximum(x @ w.T + b2, 0))
    b1 = rng.standard_normal(1)
    assert_close(F.linear(bm.tensor(x), bm.tensor(w), bm.tensor(b1)), x @ w.T + b1)
    # A 1-D weight (a dot product per row) and integer tensors.
    w1 = rng.standard_normal(4)
    assert_close(F.linear(bm.tensor(x), bm.tensor(w1), bm.tensor(np.array(0.5))), x @ w1 + 0.5)
    xi = bm.tensor(np.arange(12, dtype=np.int32).reshape(3, 4))
    wi = bm.tensor(np.arange(8, dtype=np.int32).reshape(2, 4) - 3)
    bi = bm.tensor(np.array([1, -2], dtype=np.int32))
    got = F.linear(xi, wi, bi)
    assert got.dtype == bm.int32
    np.testing.assert_array_equal(got.numpy(), xi.numpy() @ wi.numpy().T + bi.numpy())
    # Empty batch and zero in_features.
    assert F._linear_act(bm.zeros(0, 4, dtype=bm.float64), bm.tensor(w), None, "gelu").shape == (0, 2)
    b = rng.standard_normal(2)
    f64 = dict(dtype=bm.float64)
    assert_close(F._linear_act(bm.zeros(3, 0, **f64), bm.zeros(2, 0, **f64), bm.tensor(b), "gelu"),
                 np.tile(act_ref(b, "gelu"), (3, 1)))


def test_bad_inputs_raise():
    x, w, b = bm.ones(3, 4), bm.ones(2, 4), bm.ones(2)
    with pytest.raises(ValueError, match=r"\[linear_act\] act must be"):
        F._linear_act(x, w, b, "tanh")
    with pytest.raises(ValueError, match=r"\[linear_act\] act must be"):
        bm._C._linear_act(x, w, b, "swish")
    with pytest.raises(ValueError, match=r"\[linear_act\].*cannot be multiplied"):
        F._linear_act(bm.ones(3, 5), w, b, "relu")
    with pytest.raises(ValueError, match=r"\[linear_act\].*2-D weight"):
        F._linear_act(x, bm.ones(4), None, "relu")
    with pytest.raises(ValueError, match=r"\[linear_act\].*does not broadcast"):
        F._linear_act(x, w, bm.ones(3), "gelu")
    with pytest.raises(ValueError, match=r"\[linear\].*does not broadcast"):
        F.linear(x, w, bm.ones(5))
    with pytest.raises(TypeError, match=r"\[linear_act\]"):
        F._linear_act(x, w, b.double(), "gelu")
    with pytest.raises(TypeError, match=r"\[linear_act\]"):
        F._linear_act(x, w.double(), b, "gelu")
    with pytest.raises(ValueError, match=r"\[linear\]"):
        F.linear(bm.ones(3, 4), bm.ones(2, 2, 4))


# ------------------------------------------------------------------ the blocks that use it
def test_gpt_mlp_equals_composed(rng):
    from bigmodel.models.gpt import GPTConfig, MLP
    bm.manual_seed(0)
    mlp = MLP(GPTConfig(n_embd=16, n_head=2, n_layer=1, block_size=8, vocab_size=32, dropout=0.0))
    mlp.eval()
    x = bm.tensor(rng.standard_normal((2, 5, 16)).astype(np.float32), requires_grad=True)
    got = mlp(x)
    want = mlp.c_proj(F.gelu(mlp.c_fc(x), approximate="tanh"))
    assert_close(got, want.detach().numpy().astype(np.float64))
    g = bm.tensor(rng.standard_normal((2, 5, 16)).astype(np.float32))
    got.backward(g)
    fused = [x.grad.numpy().copy(), mlp.c_fc.weight.grad.numpy().copy(), mlp.c_fc.bias.grad.numpy().copy()]
    x.grad = None
    mlp.zero_grad()
    want.backward(g)
    for a, e in zip(fused, [x.grad, mlp.c_fc.weight.grad, mlp.c_fc.bias.grad]):
        assert_close(a, e.numpy().astype(np.float64), dtype=bm.float32, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_feed_forward_equals_composed(rng, activation):
    bm.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=24, dropout=0.0, activation=activation,
                                       batch_first=True)
    x = bm.tensor(rng.standard_normal((2, 3, 16)).astype(np.float32))
    act = F.relu if activation == "relu" else F.gelu
    want = layer.linear2(act(layer.linear1(x)))
    assert_close(layer._ff_block(x), want.detach().numpy().astype(np.float64))
    # A hook on linear1 must still run: the fused path steps aside for it.
    seen = []
    handle = layer.linear1.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    assert_close(layer._ff_block(x), want.detach().numpy().astype(np.float64))
    handle.remove()
    assert seen == [(2, 3, 24)]
    # A callable activation that is not relu/gelu is applied as given.
    layer2 = nn.TransformerEncoderLayer(16, 2, dim_feedforward=24, dropout=0.0, activation=F.silu,
                                        batch_first=True)
    want2 = layer2.linear2(F.silu(layer2.linear1(x)))
    assert_close(layer2._ff_block(x), want2.detach().numpy().astype(np.float64))
