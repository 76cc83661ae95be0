"""Interpretability: module forward/backward hooks, saliency and Grad-CAM against gradients
computed by hand on tiny models, and the attention maps GPT, BERT and the transformer layers
return on request (rows sum to 1, equal to a manual softmax(q k^T / sqrt(d)))."""
import math

import numpy as np
import pytest

import bigmodel as bm
from bigmodel import interpret, nn
from bigmodel.nn import functional as F
from conftest import assert_close


# ------------------------------------------------------------------ hooks
def test_forward_hooks_see_and_replace_values():
    lin = nn.Linear(3, 2).double()
    seen = []
    h1 = lin.register_forward_pre_hook(lambda m, args: seen.append(("pre", args[0].shape)))
    h2 = lin.register_forward_hook(lambda m, args, out: out * 2.0)
    x = bm.randn(4, 3, dtype=bm.float64)
    y = lin(x)
    assert len(seen) == 1 and seen[0][0] == "pre" and tuple(seen[0][1]) == (4, 3)
    assert_close(y, 2.0 * (x.numpy() @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()))
    h1.remove()
    h2.remove()
    assert_close(lin(x), x.numpy() @ lin.weight.detach().numpy().T + lin.bias.detach().numpy())
    assert len(seen) == 1
    with lin.register_forward_pre_hook(lambda m, args: (args[0] * 0.0,)):
        assert_close(lin(x), np.broadcast_to(lin.bias.detach().numpy(), (4, 2)))
    assert not lin._forward_pre_hooks


def test_full_backward_hook_gets_module_input_and_output_gradients(rng):
    lin = nn.Linear(3, 2).double()
    calls = []
    lin.register_full_backward_hook(lambda m, gin, gout: calls.append((gin, gout)))
    x = bm.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    w = rng.standard_normal((4, 2))
    out = lin(x)
    (out * bm.tensor(w)).sum().backward()
    assert len(calls) == 1
    gin, gout = calls[0]
    assert_close(gout[0], w)
    assert_close(gin[0], w @ lin.weight.detach().numpy())
    assert_close(x.grad, w @ lin.weight.detach().numpy())  # gradient flow unchanged by the hook
    # the hook may replace grad_input
    calls.clear()
    lin2 = nn.Linear(3, 2).double()
    lin2.register_full_backward_hook(lambda m, gin, gout: (gin[0] * 0.0,))
    x2 = bm.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    lin2(x2).sum().backward()
    assert np.all(x2.grad.numpy() == 0)
    assert lin2.weight.grad is not None and np.any(lin2.weight.grad.numpy() != 0)


def test_backward_hook_when_input_needs_no_grad(rng):
    lin = nn.Linear(3, 2).double()
    calls = []
    lin.register_full_backward_hook(lambda m, gin, gout: calls.append((gin, gout)))
    lin(bm.tensor(rng.standard_normal((4, 3)))).sum().backward()
    assert len(calls) == 1 and calls[0][0] == (None,)
    assert_close(calls[0][1][0], np.ones((4, 2)))
    with bm.no_grad():
        lin(bm.randn(1, 3, dtype=bm.float64))
    assert len(calls) == 1


# ------------------------------------------------------------------ saliency
class TinyLinearNet(nn.Module):
    """logits = W2 relu(W1 x): the input gradient is W2[c] diag(relu'(W1 x)) W1, by hand."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2 * 3 * 3, 5, bias=True)
        self.fc2 = nn.Linear(5, 4, bias=False)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def test_input_gradient_and_saliency_match_hand_computation(rng):
    model = TinyLinearNet().double()
    x = rng.standard_normal((3, 2, 3, 3))
    w1, b1 = model.fc1.weight.detach().numpy(), model.fc1.bias.detach().numpy()
    w2 = model.fc2.weight.detach().numpy()
    h = x.reshape(3, -1) @ w1.T + b1
    logits = np.maximum(h, 0) @ w2.T
    targets = [1, 3, 0]
    want = np.stack([(w2[c] * (h[i] > 0)) @ w1 for i, c in enumerate(targets)]).reshape(x.shape)
    grad, got_targets = interpret.input_gradient(model, bm.tensor(x), targets)
    assert got_targets == targets
    assert_close(grad, want)
    sal = interpret.saliency(model, bm.tensor(x), bm.tensor(targets))
    assert_close(sal, np.abs(want).max(1))
    assert_close(interpret.saliency(model, bm.tensor(x), targets, reduce_channels="mean"), np.abs(want).mean(1))
    # default target: the predicted class; parameter grads untouched
    assert model.fc1.weight.grad is None
    _, pred = interpret.input_gradient(model, bm.tensor(x))
    assert pred == list(logits.argmax(1))


# ------------------------------------------------------------------ Grad-CAM
class TinyCNN(nn.Module):
    """conv -> relu -> global average pool -> linear: dY_c/dA_k(i, j) = W[c, k] / (h w)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.pool(self.act(self.conv(x))).flatten(1))


def test_gradcam_matches_hand_computation(rng):
    model = TinyCNN().double()
    x = bm.tensor(rng.standard_normal((2, 1, 5, 6)))
    targets = [2, 0]
    with interpret.GradCAM(model, "act") as cam:
        maps, got = cam(x, targets)
        assert got == targets
        acts = F.relu(model.conv(x)).detach().numpy()           # [2, 4, 5, 6]
        w = model.fc.weight.detach().numpy()
        alpha = np.stack([w[c] / (5 * 6) for c in targets])     # mean gradient per channel
        want = np.maximum((alpha[:, :, None, None] * acts).sum(1), 0)
        assert_close(maps, want)
        assert_close(cam.gradients, np.broadcast_to(alpha[:, :, None, None], acts.shape))
    assert not model.act.__dict__.get("_forward_hooks") and not model.act.__dict__.get("_backward_hooks")
    assert model.conv.weight.grad is None
    up = interpret.upsample(maps, (10, 12))
    assert up.shape == (2, 10, 12) and up.min() >= 0 and abs(up.max() - 1) < 1e-12


def test_gradcam_errors():
    model = TinyCNN()
    with pytest.raises(ValueError, match=r"\[GradCAM\].*feature maps"):
        interpret.GradCAM(model, "fc")(bm.randn(1, 1, 4, 4))
    with pytest.raises(TypeError, match=r"\[GradCAM\]"):
        interpret.GradCAM(model, 3)
    with pytest.raises(IndexError, match=r"\[GradCAM\].*out of range"):
        interpret.GradCAM(model, "conv")(bm.randn(1, 1, 4, 4), target=7)
    with pytest.raises(ValueError, match=r"\[saliency\]"):
        interpret.saliency(model, bm.randn(1, 1, 4, 4), reduce_channels="sum")


# ------------------------------------------------------------------ attention maps
def manual_attention(q, k, mask=None):
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s + mask
    s = s - s.max(-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(-1, keepdims=True)


def test_gpt_attention_maps(rng):
    from bigmodel.models import GPT, GPTConfig
    bm.manual_seed(0)
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)
    model = GPT(cfg).double().eval()
    idx = bm.tensor(rng.integers(0, 11, (2, 6)))
    logits, loss = model(idx)
    logits2, loss2, atts = model(idx, output_attentions=True)
    assert loss is None and loss2 is None
    np.testing.assert_array_equal(logits.detach().numpy(), logits2.detach().numpy())
    assert len(atts) == 2 and tuple(atts[0].shape) == (2, 2, 6, 6)
    a = atts[0].detach().numpy()
    np.testing.assert_allclose(a.sum(-1), 1.0, atol=1e-12)
    assert np.all(np.triu(a, 1) == 0)  # causal
    # manual: layer 0 sees ln_1(wte + wpe)
    blk = model.h[0]
    x = model.wte(idx) + model.wpe(bm.arange(6))
    qkv = blk.attn.c_attn(blk.ln_1(x)).detach().numpy()
    q, k = qkv[..., :8].reshape(2, 6, 2, 4).transpose(0, 2, 1, 3), qkv[..., 8:16].reshape(2, 6, 2, 4).transpose(0, 2, 1, 3)
    causal = np.triu(np.full((6, 6), -np.inf), 1)
    np.testing.assert_allclose(a, manual_attention(q, k, causal), atol=1e-12)


def test_bert_attention_maps(rng):
    from bigmodel.models import BertConfig, BertModel
    bm.manual_seed(0)
    cfg = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                     max_position_embeddings=16)
    model = BertModel(cfg).double().eval()
    ids = bm.tensor(rng.integers(0, 20, (2, 5)))
    mask = bm.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    hidden, pooled = model(ids, mask)
    hidden2, pooled2, atts = model(ids, mask, output_attentions=True)
    np.testing.assert_array_equal(hidden.detach().numpy(), hidden2.detach().numpy())
    assert len(atts) == 2 and tuple(atts[1].shape) == (2, 2, 5, 5)
    a = atts[0].detach().numpy()
    np.testing.assert_allclose(a.sum(-1), 1.0, atol=1e-12)
    assert np.all(a[1, :, :, 3:] < 1e-12)  # padding gets no attention
    emb = model.embeddings(ids, bm.zeros(2, 5, dtype=bm.int64))
    sa = model.encoder.layer[0].attention.self
    q = sa._heads(sa.query(emb)).detach().numpy()
    k = sa._heads(sa.key(emb)).detach().numpy()
    bias = (mask.numpy()[:, None, None, :] - 1.0) * 1e9
    np.testing.assert_allclose(a, manual_attention(q, k, bias), atol=1e-12)
    roll = interpret.attention_rollout(atts)
    assert roll.shape == (2, 5, 5)
    np.testing.assert_allclose(roll.sum(-1), 1.0, atol=1e-12)


def test_transformer_encoder_layer_weights(rng):
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True).double()
    x = bm.tensor(rng.standard_normal((2, 4, 8)))
    y = layer(x)
    y2, w = layer(x, need_weights=True)
    np.testing.assert_array_equal(y.detach().numpy(), y2.detach().numpy())
    assert tuple(w.shape) == (2, 2, 4, 4)
    assert_close(w.sum(-1), np.ones((2, 2, 4)))
    dec = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True).double()
    out, (ws, wc) = dec(x, bm.tensor(rng.standard_normal((2, 3, 8))), need_weights=True)
    assert tuple(ws.shape) == (2, 2, 4, 4) and tuple(wc.shape) == (2, 2, 4, 3)
    assert isinstance(dec(x, bm.tensor(rng.standard_normal((2, 3, 8)))), bm.Tensor)
