"""BERT (the encoder of Devlin et al.) with Hugging Face's parameter names, so a
model.safetensors from the Hub loads as is (BertModel.from_pretrained); BertConfig from
config.json; the article's BertClassifier; mean_pool for sentence embeddings (MiniLM).

Self-attention is written with matmul + softmax (as HF's eager BERT is), so this file
needs only ops of bigmodel._C.
"""
import json
import math
import os
import warnings

import bigmodel as bm
from bigmodel import nn
from bigmodel.nn import functional as F
from bigmodel.nn import init
from bigmodel.nn.module import StateDictError
from bigmodel.nn.parameter import Parameter
from bigmodel.nn._util import empty_param_data
from bigmodel.nn.linear import _linear_act_module


class BertConfig:
    """The fields of a Hugging Face BERT config.json that the model uses (others are kept
    as attributes too, so nothing in the file is lost)."""

    def __init__(self, vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                 attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                 initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0, **extra):
        # Every named argument becomes an attribute of that name, in signature order (taken
        # before any other local exists).
        fields = {k: v for k, v in locals().items() if k not in ("self", "extra")}
        if hidden_size % num_attention_heads != 0:
            raise ValueError(f"[BertConfig] hidden_size {hidden_size} is not a multiple of num_attention_heads "
                             f"{num_attention_heads}")
        if hidden_act not in _ACTIVATIONS:
            raise ValueError(f"[BertConfig] hidden_act {hidden_act!r} is not one of {sorted(_ACTIVATIONS)}")
        for k, v in fields.items():
            setattr(self, k, v)
        pe = extra.get("position_embedding_type", "absolute")
        if pe != "absolute":
            raise ValueError(f"[BertConfig] only absolute position embeddings are supported, got {pe!r}")
        for k, v in extra.items():
            setattr(self, k, v)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)

    @classmethod
    def from_json_file(cls, path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"[BertConfig] config file not found: {path}")
        with open(path, encoding="utf-8") as f:
            try:
                d = json.load(f)
            except ValueError as e:
                raise ValueError(f"[BertConfig] {path} is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise ValueError(f"[BertConfig] {path} must hold a JSON object")
        return cls.from_dict(d)

    def to_dict(self):
        return dict(self.__dict__)

    def __repr__(self):
        return f"BertConfig({json.dumps(self.to_dict(), sort_keys=True)})"


# hidden_act -> the fused linear+activation's name ("gelu" is the exact (erf) GELU BERT was
# trained with; the other two are the tanh form).
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}


class _Embedding(nn.Module):
    # A lookup table holding `weight` [num, dim]; private so this file does not depend on
    # nn.Embedding (state-dict names are the same either way).
    def __init__(self, num, dim):
        super().__init__()
        self.weight = Parameter(empty_param_data(num, dim))

    def forward(self, ids):
        return F.embedding(ids, self.weight)


class _LayerNorm(nn.Module):
    # Layer norm over the last dim with `weight` and `bias`, as HF's BERT names them.
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = Parameter(empty_param_data(dim))
        self.bias = Parameter(empty_param_data(dim))

    def forward(self, x):
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, eps=self.eps)


class BertEmbeddings(nn.Module):
    """word + position + token type embeddings, then LayerNorm and dropout."""

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = _Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = _Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = _Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = _LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.max_positions = config.max_position_embeddings

    def forward(self, input_ids, token_type_ids):
        length = input_ids.shape[1]
        if length > self.max_positions:
            raise ValueError(f"[BertModel] sequence length {length} exceeds max_position_embeddings "
                             f"{self.max_positions}")
        positions = bm.arange(length, dtype=bm.int64, device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) \
            + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def _heads(self, x):
        b, t, _ = x.shape
        return x.reshape(b, t, self.num_heads, self.head_dim).permute(0, 2, 1, 3)  # [B, H, T, D]

    def forward(self, x, mask_bias, need_weights=False):
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = bm.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim))
        if mask_bias is not None:
            scores = scores + mask_bias
        weights = F.softmax(scores, dim=-1)
        probs = self.dropout(weights)
        ctx = bm.matmul(probs, v).permute(0, 2, 1, 3)
        b, t = ctx.shape[0], ctx.shape[1]
        ctx = ctx.reshape(b, t, self.num_heads * self.head_dim)
        return (ctx, weights) if need_weights else ctx


class BertSelfOutput(nn.Module):
    """dense -> dropout -> LayerNorm(x + residual); used after attention and after the MLP."""

    def __init__(self, config, in_features):
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = _LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config, config.hidden_size)

    def forward(self, x, mask_bias, need_weights=False):
        if need_weights:
            ctx, weights = self.self(x, mask_bias, need_weights=True)
            return self.output(ctx, x), weights
        return self.output(self.self(x, mask_bias), x)


class BertIntermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = _ACTIVATIONS[config.hidden_act]

    def forward(self, x):
        return _linear_act_module(self.dense, x, self.act)  # one GEMM with the activation fused


class BertLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertSelfOutput(config, config.intermediate_size)

    def forward(self, x, mask_bias, need_weights=False):
        if need_weights:
            x, weights = self.attention(x, mask_bias, need_weights=True)
            return self.output(self.intermediate(x), x), weights
        x = self.attention(x, mask_bias)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, x, mask_bias, output_attentions=False):
        if not output_attentions:
            for layer in self.layer:
                x = layer(x, mask_bias)
            return x
        attentions = []
        for layer in self.layer:
            x, weights = layer(x, mask_bias, need_weights=True)
            attentions.append(weights)
        return x, attentions


class BertPooler(nn.Module):
    """tanh(dense(hidden state of [CLS]))."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden):
        return F.tanh(self.dense(hidden.select(1, 0)))


def _mask_bias(attention_mask, dtype):
    # [B, T] of 1 (attend) / 0 (padding) -> additive [B, 1, 1, T] bias: a large negative
    # number (not -inf, so a fully padded row gives a uniform softmax instead of NaN).
    big = 6.0e4 if dtype == bm.float16 else 1.0e9
    keep = attention_mask.to(dtype)
    return ((keep - 1.0) * big).unsqueeze(1).unsqueeze(1)


class BertModel(nn.Module):
    """forward(input_ids [B, T] int64, attention_mask=None [B, T], token_type_ids=None [B, T])
    -> (last_hidden_state [B, T, hidden], pooler_output [B, hidden] or None without pooler)."""

    def __init__(self, config, add_pooling_layer=True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.reset_parameters()

    def reset_parameters(self):
        # BERT's initialisation: N(0, initializer_range) for weights, zero biases, unit LayerNorm.
        std = self.config.initializer_range
        for name, p in self.named_parameters():
            if ".LayerNorm." in "." + name:
                (init.ones_ if name.endswith("weight") else init.zeros_)(p)
            elif name.endswith("bias"):
                init.zeros_(p)
            else:
                init.normal_(p, 0.0, std)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_attentions=False):
        """With output_attentions=True a third item: every layer's attention probabilities
        [B, heads, T, T] (before attention dropout), as a list."""
        if not isinstance(input_ids, bm.Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point():
            what = f"{input_ids.dtype} tensor of shape {list(input_ids.shape)}" if isinstance(input_ids, bm.Tensor) \
                else type(input_ids).__name__
            raise ValueError(f"[BertModel] input_ids must be an integer tensor [batch, seq], got {what}")
        shape = list(input_ids.shape)
        for name, t in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if t is not None and list(t.shape) != shape:
                raise ValueError(f"[BertModel] {name} has shape {list(t.shape)}, input_ids has {shape}")
        if token_type_ids is None:
            token_type_ids = bm.zeros(*shape, dtype=bm.int64, device=input_ids.device)
        hidden = self.embeddings(input_ids, token_type_ids)
        mask_bias = None if attention_mask is None else _mask_bias(attention_mask, hidden.dtype)
        if output_attentions:
            hidden, attentions = self.encoder(hidden, mask_bias, output_attentions=True)
        else:
            hidden = self.encoder(hidden, mask_bias)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return (hidden, pooled, attentions) if output_attentions else (hidden, pooled)

    @classmethod
    def from_pretrained(cls, directory, device=None):
        """Loads directory/config.json and directory/model.safetensors (Hugging Face layout).

        Key handling, beyond an exact match:
        - keys saved under a "bert." prefix (BertForSequenceClassification, BertForPreTraining,
          ...) are used without it; that checkpoint's task heads (keys outside "bert.") are
          ignored with a warning naming them;
        - "embeddings.position_ids" (a buffer older transformers saved) is dropped: positions
          are computed on the fly;
        - legacy LayerNorm "gamma"/"beta" are read as "weight"/"bias";
        - a file without "pooler.*" gives a model without pooler (pooler_output is None).
        Anything else missing or unexpected raises StateDictError listing the keys; shape
        mismatches raise too. Nothing of the model is half-loaded on error. The model is
        returned in eval mode (dropout off), on `device` if given.
        """
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"[BertModel.from_pretrained] not a directory: {directory}")
        config = BertConfig.from_json_file(os.path.join(directory, "config.json"))
        weights = os.path.join(directory, "model.safetensors")
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"[BertModel.from_pretrained] weights file not found: {weights}")
        try:
            tensors = bm.load_file(weights)
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"[BertModel.from_pretrained] cannot read {weights}: {e}") from None
        state = _normalise_keys(tensors, weights)
        model = cls(config, add_pooling_layer=any(k.startswith("pooler.") for k in state))
        own = model.state_dict()
        missing = sorted(k for k in own if k not in state)
        unexpected = sorted(k for k in state if k not in own)
        if missing or unexpected:
            raise StateDictError(f"[BertModel.from_pretrained] {weights} does not match BertModel({config.num_hidden_layers}"
                                 f" layers): missing keys {missing}; unexpected keys {unexpected}")
        model.load_state_dict(state, strict=True)
        model.eval()
        return model.to(device) if device is not None else model


def _normalise_keys(tensors, path):
    keys = list(tensors)
    if any(k.startswith("bert.") for k in keys):
        heads = sorted(k for k in keys if not k.startswith("bert."))
        if heads:
            warnings.warn(f"[BertModel.from_pretrained] {path}: ignoring task-head keys outside 'bert.': {heads}")
        tensors = {k[len("bert."):]: v for k, v in tensors.items() if k.startswith("bert.")}
    out = {}
    for k, v in tensors.items():
        if k == "embeddings.position_ids":
            continue
        if k.endswith("LayerNorm.gamma"):
            k = k[:-len("gamma")] + "weight"
        elif k.endswith("LayerNorm.beta"):
            k = k[:-len("beta")] + "bias"
        out[k] = v
    return out


def mean_pool(last_hidden_state, attention_mask):
    """Average of the token vectors where attention_mask is 1 ([B, T, H] -> [B, H]), the
    sentence embedding of sentence-transformers models such as all-MiniLM-L6-v2."""
    mask = attention_mask.to(last_hidden_state.dtype).unsqueeze(-1)
    total = (last_hidden_state * mask).sum(1)
    count = bm.clamp(mask.sum(1), min=1e-9)
    return total / count


def l2_normalize(x, eps=1e-12):
    """x / max(||x||, eps) over the last dim."""
    return x / bm.clamp(x.norm(dim=-1, keepdim=True), min=eps)


class BertClassifier(nn.Module):
    """The article's classifier: bert's pooler_output -> dropout -> linear(hidden, num_classes).
    forward(input_ids, attention_mask=None, token_type_ids=None) -> logits [B, num_classes]."""

    def __init__(self, bert, num_classes, dropout=0.1):
        super().__init__()
        if bert.pooler is None:
            raise ValueError("[BertClassifier] the BertModel has no pooler (built with add_pooling_layer=False)")
        self.bert = bert
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(bert.config.hidden_size, num_classes)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        _, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.dropout(pooled))


__all__ = ["BertConfig", "BertModel", "BertClassifier", "BertEmbeddings", "BertLayer", "mean_pool", "l2_normalize"]
