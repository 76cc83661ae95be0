"""Tests for bigmodel.models.GPT: shapes, weight tying, causality, a short training run on real
fortunes text (Debian's `fortunes` package), generate length/top_k/temperature, bad inputs."""
import glob
import os

import numpy as np
import pytest

import bigmodel as bm
from bigmodel.models import GPT, GPTConfig, gpt2_124m


def tiny(**kw):
    cfg = dict(vocab_size=23, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
    cfg.update(kw)
    return GPTConfig(**cfg)


def test_forward_shapes_and_tied_weights():
    bm.manual_seed(0)
    m = GPT(tiny())
    idx = bm.randint(0, 23, (3, 10))
    logits, loss = m(idx)
    assert tuple(logits.shape) == (3, 10, 23) and loss is None
    assert m.lm_head.weight is m.wte.weight
    names = [n for n, _ in m.named_parameters()]
    assert "wte.weight" in names and "lm_head.weight" not in names  # one shared Parameter
    _, loss = m(idx, idx)
    assert abs(loss.item() - np.log(23)) < 0.5  # near-uniform predictions at init
    loss.backward()
    assert float(m.wte.weight.grad.abs().sum()) > 0
    cfg = gpt2_124m()
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.vocab_size) == (12, 12, 768, 1024, 50257)


def test_causal():
    bm.manual_seed(1)
    m = GPT(tiny())
    a = np.array([[1, 2, 3, 4, 5, 6]])
    b = a.copy()
    b[0, 4:] = [9, 9]
    la = m(bm.tensor(a))[0].detach().numpy()
    lb = m(bm.tensor(b))[0].detach().numpy()
    np.testing.assert_allclose(la[0, :4], lb[0, :4], atol=1e-5)
    assert not np.allclose(la[0, 4:], lb[0, 4:])


def _fortunes_text(limit=60000):
    files = [f for f in sorted(glob.glob("/usr/share/games/fortunes/*"))
             if os.path.isfile(f) and not f.endswith((".dat", ".u8"))]
    if not files:
        pytest.skip("Debian's `fortunes` package is not installed")
    text = ""
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            text += fh.read()
        if len(text) >= limit:
            break
    return text[:limit]


def test_loss_falls_on_fortunes():
    text = _fortunes_text()
    chars = sorted(set(text))
    data = np.array([chars.index(c) for c in text], dtype=np.int64)
    bm.manual_seed(0)
    rng = np.random.default_rng(0)
    m = GPT(GPTConfig(vocab_size=len(chars), block_size=32, n_layer=1, n_head=2, n_embd=32))
    opt = bm.optim.AdamW(m.parameters(), lr=1e-2)

    def batch():
        s = rng.integers(0, len(data) - 33, size=8)
        return (bm.tensor(np.stack([data[i:i + 32] for i in s])),
                bm.tensor(np.stack([data[i + 1:i + 33] for i in s])))
    losses = []
    for _ in range(40):
        _, loss = m(*batch())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < losses[0] - 0.8, losses  # from ~ln(vocab) towards the unigram entropy


def test_generate_length_top_k_temperature():
    bm.manual_seed(2)
    m = GPT(tiny(block_size=8))
    idx = bm.tensor(np.array([[1, 2, 3], [4, 5, 6]]))
    out = m.generate(idx, 12)  # longer than block_size: the context is cropped
    assert tuple(out.shape) == (2, 15)
    np.testing.assert_array_equal(out.numpy()[:, :3], idx.numpy())
    assert m.training  # generate restores the mode
    # top_k=1 and temperature=0 are both greedy decoding.
    g1 = m.generate(idx, 6, top_k=1).numpy()
    g0 = m.generate(idx, 6, temperature=0).numpy()
    np.testing.assert_array_equal(g1, g0)
    # top_k=3: every sampled token is among the 3 most likely at its step.
    bm.manual_seed(5)
    out = m.generate(idx, 6, top_k=3).numpy()
    for step in range(3, 9):
        logits = m(bm.tensor(out[:, max(0, step - 8):step]))[0].detach().numpy()[:, -1]
        top3 = np.argsort(logits, -1)[:, -3:]
        for row in range(2):
            assert out[row, step] in top3[row]
    bm.manual_seed(7)
    a = m.generate(idx, 5).numpy()
    bm.manual_seed(7)
    np.testing.assert_array_equal(a, m.generate(idx, 5).numpy())  # reproducible with bm.manual_seed


def test_bad_inputs():
    m = GPT(tiny(block_size=8))
    with pytest.raises(ValueError, match=r"\[GPT\].*block_size"):
        m(bm.zeros(1, 9, dtype=bm.int64))
    with pytest.raises(ValueError, match=r"\[GPT\]"):
        m(bm.zeros(9, dtype=bm.int64))
    with pytest.raises(ValueError, match=r"\[GPT\].*targets"):
        m(bm.zeros(1, 4, dtype=bm.int64), bm.zeros(1, 5, dtype=bm.int64))
    with pytest.raises(ValueError, match=r"\[GPT\]"):
        GPT(tiny(n_embd=15, n_head=2))
    with pytest.raises(ValueError, match=r"top_k"):
        m.generate(bm.zeros(1, 2, dtype=bm.int64), 2, top_k=0)
