"""BERT: config, HF parameter names, forward shapes and padding on a tiny random model, a
float64 reference of one layer, from_pretrained errors on bad folders, the classifier, and
(when all-MiniLM-L6-v2 has been fetched) sentence embeddings vs a plain-PyTorch fixture."""
import json
import math
import os

import numpy as np
import pytest

import bigmodel as bm
from bigmodel.models import BertClassifier, BertConfig, BertModel, BertTokenizer, l2_normalize, mean_pool
from bigmodel.nn import StateDictError

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "fixtures", "minilm_embeddings.json")
MINILM_DIR = os.environ.get("BIGMODEL_MINILM_DIR", os.path.expanduser("~/.cache/bigmodel/minilm"))
TINY = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=24,
            max_position_embeddings=12, type_vocab_size=2)


def tiny(**kw):
    bm.manual_seed(0)
    return BertModel(BertConfig(**{**TINY, **kw})).eval()


def test_config_and_parameter_names(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**TINY, "model_type": "bert", "layer_norm_eps": 1e-7}))
    cfg = BertConfig.from_json_file(str(path))
    assert cfg.hidden_size == 16 and cfg.layer_norm_eps == 1e-7 and cfg.model_type == "bert"
    names = list(BertModel(cfg).state_dict())
    expected_layer = ["attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
                      "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
                      "attention.output.dense.weight", "attention.output.dense.bias",
                      "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
                      "intermediate.dense.weight", "intermediate.dense.bias", "output.dense.weight",
                      "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias"]
    assert names == (["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                      "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                      "embeddings.LayerNorm.bias"]
                     + [f"encoder.layer.{i}.{n}" for i in range(2) for n in expected_layer]
                     + ["pooler.dense.weight", "pooler.dense.bias"])
    with pytest.raises(ValueError, match="BertConfig"):
        BertConfig(hidden_size=10, num_attention_heads=4)
    with pytest.raises(ValueError, match="hidden_act"):
        BertConfig(hidden_act="swish2")


def _reference_last_hidden(model, ids, mask):
    """float64 NumPy BERT forward over the model's own weights."""
    w = {k: v.double().numpy() for k, v in model.state_dict().items()}
    cfg = model.config
    heads, d = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + cfg.layer_norm_eps) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    b, t = ids.shape
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t] \
        + w["embeddings.token_type_embeddings.weight"][0]
    x = ln(x, "embeddings.LayerNorm")
    bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9)
    erf = np.vectorize(math.erf)
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        q, k, v = (lin(x, p + "attention.self." + n).reshape(b, t, heads, d).transpose(0, 2, 1, 3)
                   for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(0, 2, 1, 3).reshape(b, t, heads * d)
        x = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = ln(lin(h, p + "output.dense") + x, p + "output.LayerNorm")
    return x


def test_forward_shapes_and_reference():
    model = tiny()
    ids = np.array([[2, 5, 9, 13, 3, 0], [2, 7, 3, 0, 0, 0]])
    mask = (ids != 0).astype(np.int64)
    hidden, pooled = model(bm.tensor(ids), bm.tensor(mask))
    assert hidden.shape == (2, 6, 16) and pooled.shape == (2, 16)
    ref = _reference_last_hidden(model, ids, mask)
    np.testing.assert_allclose(hidden.detach().numpy(), ref, atol=2e-5, rtol=1e-4)
    # padding does not change the real tokens: the unpadded row gives the same states.
    alone, _ = model(bm.tensor(ids[1:, :3]))
    np.testing.assert_allclose(hidden.detach().numpy()[1, :3], alone.detach().numpy()[0], atol=2e-5)
    emb = l2_normalize(mean_pool(hidden, bm.tensor(mask)))
    np.testing.assert_allclose(np.linalg.norm(emb.detach().numpy(), axis=-1), [1, 1], atol=1e-5)
    pooled_ref = np.tanh(ref[:, 0] @ model.pooler.dense.weight.detach().double().numpy().T
                         + model.pooler.dense.bias.detach().double().numpy())
    np.testing.assert_allclose(pooled.detach().numpy(), pooled_ref, atol=2e-5)


def test_forward_bad_inputs_and_gradients():
    model = tiny()
    with pytest.raises(ValueError, match="BertModel"):
        model(bm.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="attention_mask"):
        model(bm.tensor([[1, 2, 3]]), bm.tensor([[1, 1]]))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(bm.zeros(1, 13, dtype=bm.int64) + 1)
    clf = BertClassifier(tiny(), num_classes=3, dropout=0.1)
    logits = clf(bm.tensor([[2, 5, 9, 3], [2, 6, 3, 0]]), bm.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]))
    assert logits.shape == (2, 3)
    bm.nn.functional.cross_entropy(logits, bm.tensor([0, 2])).backward()
    for name, p in clf.named_parameters():
        if "token_type" in name:
            continue  # type 1 is never used, so half its rows get no gradient; the rest must
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name
    with pytest.raises(ValueError, match="pooler"):
        BertClassifier(BertModel(BertConfig(**TINY), add_pooling_layer=False), 2)


def _save_pretrained(model, folder, rename=lambda k: k, drop=()):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(TINY, f)
    state = {rename(k): v for k, v in model.state_dict().items() if not any(k.startswith(d) for d in drop)}
    bm.save_file(state, os.path.join(folder, "model.safetensors"))


def test_from_pretrained_roundtrip_and_key_variants(tmp_path):
    model = tiny()
    ids = bm.tensor([[2, 5, 9, 3]])
    want = model(ids)[0].detach().numpy()
    _save_pretrained(model, tmp_path / "plain")
    np.testing.assert_allclose(BertModel.from_pretrained(str(tmp_path / "plain"))(ids)[0].detach().numpy(), want)
    # "bert." prefix with a task head (ignored with a warning) and legacy gamma/beta names.
    _save_pretrained(model, tmp_path / "prefixed",
                     rename=lambda k: "bert." + k.replace("LayerNorm.weight", "LayerNorm.gamma"))
    extra = bm.load_file(str(tmp_path / "prefixed" / "model.safetensors"))
    extra["classifier.weight"] = bm.ones(2, 16)
    bm.save_file(extra, str(tmp_path / "prefixed" / "model.safetensors"))
    with pytest.warns(UserWarning, match="classifier.weight"):
        loaded = BertModel.from_pretrained(str(tmp_path / "prefixed"))
    np.testing.assert_allclose(loaded(ids)[0].detach().numpy(), want)
    _save_pretrained(model, tmp_path / "nopool", drop=("pooler.",))
    loaded = BertModel.from_pretrained(str(tmp_path / "nopool"))
    assert loaded.pooler is None and loaded(ids)[1] is None


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        BertModel.from_pretrained(str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="config.json"):
        BertModel.from_pretrained(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        BertModel.from_pretrained(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        BertModel.from_pretrained(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(ValueError, match="cannot read"):
        BertModel.from_pretrained(str(tmp_path))
    model = tiny()
    _save_pretrained(model, tmp_path / "missing", drop=("encoder.layer.1.output.",))
    with pytest.raises(StateDictError, match="encoder.layer.1.output.dense.weight"):
        BertModel.from_pretrained(str(tmp_path / "missing"))
    _save_pretrained(model, tmp_path / "unexpected")
    state = bm.load_file(str(tmp_path / "unexpected" / "model.safetensors"))
    state["encoder.layer.2.output.dense.bias"] = bm.ones(16)
    bm.save_file(state, str(tmp_path / "unexpected" / "model.safetensors"))
    with pytest.raises(StateDictError, match=r"unexpected keys \['encoder.layer.2.output.dense.bias'\]"):
        BertModel.from_pretrained(str(tmp_path / "unexpected"))
    state = dict(model.state_dict())
    state["pooler.dense.bias"] = bm.ones(15)
    bm.save_file(state, str(tmp_path / "unexpected" / "model.safetensors"))
    with pytest.raises(StateDictError, match="size mismatch for pooler.dense.bias"):
        BertModel.from_pretrained(str(tmp_path / "unexpected"))


@pytest.mark.skipif(not os.path.isfile(os.path.join(MINILM_DIR, "model.safetensors")),
                    reason=f"all-MiniLM-L6-v2 not fetched into {MINILM_DIR} (run scripts/fetch_minilm.sh)")
def test_minilm_matches_pytorch_fixture():
    with open(FIXTURE) as f:
        records = json.load(f)["records"]
    tok = BertTokenizer.from_pretrained(MINILM_DIR)
    model = BertModel.from_pretrained(MINILM_DIR)
    sentences = [r["sentence"] for r in records]
    for r in records:
        assert tok.encode(r["sentence"]) == r["input_ids"], r["sentence"]
    batch = tok(sentences)  # padded batch: also checks the attention mask
    with bm.no_grad():
        hidden, pooled = model(batch["input_ids"], batch["attention_mask"])
    emb = l2_normalize(mean_pool(hidden, batch["attention_mask"])).numpy()
    ref = np.array([r["embedding"] for r in records])
    cos = (emb * ref).sum(-1) / np.linalg.norm(ref, axis=-1)
    print("MiniLM cosine vs fixture:", np.round(cos, 6))
    assert cos.min() >= 0.999, cos
    assert pooled.shape == (len(records), 384)
