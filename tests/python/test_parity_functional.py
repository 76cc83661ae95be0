"""PyTorch parity sweep, nn.functional and losses: cross_entropy options, nll, regression and
binary losses, softmax family, one_hot, pad, normalize, dropout, interpolate, embedding, and
their gradients (see _parity.py)."""
import numpy as np

from _parity import cases, check

R = np.random.default_rng(9)
LOGITS = R.standard_normal((5, 4))
TARGET = np.array([0, 3, 1, 1, 2], dtype=np.int64)
PRED = R.standard_normal((3, 4))
TRUTH = R.standard_normal((3, 4))
PROB = 1 / (1 + np.exp(-R.standard_normal((3, 4))))
BIN = (R.uniform(size=(3, 4)) > 0.5).astype(np.float64)
IMG = R.standard_normal((2, 3, 5, 5))
SPATIAL = R.standard_normal((2, 4, 3, 3))
SPATIAL_T = R.integers(0, 4, (2, 3, 3))
SEQ = R.standard_normal((2, 4, 6))
SEQ_T = R.integers(0, 4, (2, 6))
CONV_W = R.standard_normal((4, 3, 3, 3))
DW_W = R.standard_normal((3, 1, 3, 3))
BAD_W = R.standard_normal((4, 2, 3, 3))
Q = R.standard_normal((2, 3, 4))
CT_W = R.standard_normal((3, 2, 3, 2))
CT_B = R.standard_normal(4)
EMB = R.standard_normal((3, 5))
R_PS = R.standard_normal((2, 8, 3, 2))


def F(lib):
    return lib.nn.functional


def _grad_of(lib, fn, *arrays):
    xs = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*xs)
    out.sum().backward() if out.numel() > 1 else out.backward()
    return (out,) + tuple(x.grad for x in xs)


# ---- cross entropy family ----
def _ce_basic(lib): return _grad_of(lib, lambda x: F(lib).cross_entropy(x, lib.tensor(TARGET)), LOGITS)
def _ce_reductions(lib):
    x, t = lib.tensor(LOGITS), lib.tensor(TARGET)
    return [F(lib).cross_entropy(x, t, reduction=r) for r in ("mean", "sum", "none")]
def _ce_ignore_index(lib):
    t = lib.tensor(np.array([0, -100, 1, 3, -100]))
    return _grad_of(lib, lambda x: F(lib).cross_entropy(x, t), LOGITS)
def _ce_ignore_index_custom(lib):
    t = lib.tensor(np.array([0, 2, 1, 2, 2]))
    return F(lib).cross_entropy(lib.tensor(LOGITS), t, ignore_index=2, reduction="none"), \
        F(lib).cross_entropy(lib.tensor(LOGITS), t, ignore_index=2)
def _ce_label_smoothing(lib):
    return _grad_of(lib, lambda x: F(lib).cross_entropy(x, lib.tensor(TARGET), label_smoothing=0.1), LOGITS)
def _ce_weight(lib):
    w = lib.tensor(np.array([1.0, 2.0, 0.5, 1.5]))
    return _grad_of(lib, lambda x: F(lib).cross_entropy(x, lib.tensor(TARGET), weight=w), LOGITS)
def _ce_prob_targets(lib):
    p = np.exp(TRUTH[:3, :4])
    p = p / p.sum(1, keepdims=True)
    return _grad_of(lib, lambda x: F(lib).cross_entropy(x, lib.tensor(p)), LOGITS[:3])
def _ce_spatial(lib):
    x = lib.tensor(SPATIAL)
    t = lib.tensor(SPATIAL_T)
    return F(lib).cross_entropy(x, t), F(lib).cross_entropy(x, t, reduction="none").shape
def _ce_sequence_3d(lib):
    return F(lib).cross_entropy(lib.tensor(SEQ), lib.tensor(SEQ_T))
def _ce_float32_targets_dtype(lib): return F(lib).cross_entropy(lib.tensor(LOGITS, dtype=lib.float32), lib.tensor(TARGET)).dtype
def _ce_target_out_of_range_raises(lib): return F(lib).cross_entropy(lib.tensor(LOGITS), lib.tensor(TARGET + 4))
def _ce_shape_mismatch_raises(lib): return F(lib).cross_entropy(lib.tensor(LOGITS), lib.tensor(TARGET[:3]))
def _ce_int_logits_raises(lib): return F(lib).cross_entropy(lib.tensor(TARGET.reshape(5, 1)), lib.tensor(TARGET))
def _ce_module(lib):
    nn = lib.nn
    return nn.CrossEntropyLoss(label_smoothing=0.2, ignore_index=1)(lib.tensor(LOGITS), lib.tensor(TARGET)), \
        nn.CrossEntropyLoss(reduction="sum")(lib.tensor(LOGITS), lib.tensor(TARGET))
def _nll(lib):
    ls = F(lib).log_softmax(lib.tensor(LOGITS), dim=1)
    return F(lib).nll_loss(ls, lib.tensor(TARGET)), F(lib).nll_loss(ls, lib.tensor(TARGET), reduction="none")
def _nll_weight_ignore(lib):
    ls = F(lib).log_softmax(lib.tensor(LOGITS), dim=1)
    w = lib.tensor(np.array([1.0, 2.0, 0.5, 1.5]))
    return F(lib).nll_loss(ls, lib.tensor(TARGET), weight=w, ignore_index=1)
def _nll_module(lib): return lib.nn.NLLLoss()(lib.tensor(LOGITS), lib.tensor(TARGET))


# ---- regression and binary ----
def _mse(lib):
    return _grad_of(lib, lambda a: F(lib).mse_loss(a, lib.tensor(TRUTH)), PRED) + \
        tuple(F(lib).mse_loss(lib.tensor(PRED), lib.tensor(TRUTH), reduction=r) for r in ("sum", "none"))
def _l1(lib): return _grad_of(lib, lambda a: F(lib).l1_loss(a, lib.tensor(TRUTH)), PRED)
def _smooth_l1(lib):
    return _grad_of(lib, lambda a: F(lib).smooth_l1_loss(a, lib.tensor(TRUTH), beta=0.5), PRED)
def _huber(lib): return _grad_of(lib, lambda a: F(lib).huber_loss(a, lib.tensor(TRUTH), delta=0.7), PRED)
def _loss_modules(lib):
    nn = lib.nn
    a, b = lib.tensor(PRED), lib.tensor(TRUTH)
    return nn.MSELoss()(a, b), nn.L1Loss(reduction="sum")(a, b), nn.SmoothL1Loss()(a, b), nn.HuberLoss()(a, b)
def _mse_broadcast_warns_but_works(lib): return F(lib).mse_loss(lib.tensor(PRED), lib.tensor(TRUTH[0]))
def _bce(lib): return _grad_of(lib, lambda p: F(lib).binary_cross_entropy(p, lib.tensor(BIN)), PROB)
def _bce_weight(lib):
    return F(lib).binary_cross_entropy(lib.tensor(PROB), lib.tensor(BIN), weight=lib.tensor(PROB[0]))
def _bce_logits(lib):
    return _grad_of(lib, lambda x: F(lib).binary_cross_entropy_with_logits(x, lib.tensor(BIN)), PRED)
def _bce_logits_pos_weight(lib):
    pw = lib.tensor(np.array([1.0, 2.0, 3.0, 0.5]))
    return _grad_of(lib, lambda x: F(lib).binary_cross_entropy_with_logits(x, lib.tensor(BIN), pos_weight=pw), PRED)
def _bce_logits_module(lib):
    nn = lib.nn
    return nn.BCEWithLogitsLoss(pos_weight=lib.tensor(np.full(4, 2.0)))(lib.tensor(PRED), lib.tensor(BIN)), \
        nn.BCELoss(reduction="none")(lib.tensor(PROB), lib.tensor(BIN))
def _bce_out_of_range_raises(lib): return F(lib).binary_cross_entropy(lib.tensor(PRED), lib.tensor(BIN))
def _kl_div(lib):
    ls = F(lib).log_softmax(lib.tensor(PRED), 1)
    p = F(lib).softmax(lib.tensor(TRUTH), 1)
    return F(lib).kl_div(ls, p, reduction="batchmean"), F(lib).kl_div(ls, p, reduction="sum")
def _cosine_similarity(lib): return F(lib).cosine_similarity(lib.tensor(PRED), lib.tensor(TRUTH), dim=1)
def _triplet_margin_rare(lib): return F(lib).margin_ranking_loss(lib.tensor(PRED[0]), lib.tensor(TRUTH[0]),
                                                                 lib.tensor(np.sign(PRED[1])))


# ---- activations and normalisation ----
def _softmax_dims(lib):
    x = lib.tensor(IMG)
    return F(lib).softmax(x, dim=1), F(lib).softmax(x, -1), F(lib).log_softmax(x, dim=0)
def _softmax_dtype_kw(lib): return F(lib).softmax(lib.tensor(PRED, dtype=lib.float32), dim=1, dtype=lib.float64)
def _softmax_grad(lib): return _grad_of(lib, lambda x: F(lib).softmax(x, 1)[:, 0], PRED)
def _activations(lib):
    x = lib.tensor(PRED)
    f = F(lib)
    return (f.relu(x), f.gelu(x), f.gelu(x, approximate="tanh"), f.silu(x), f.leaky_relu(x, 0.1), f.elu(x),
            f.softplus(x), f.mish(x), f.hardtanh(x), f.relu6(x), f.sigmoid(x), f.tanh(x), f.logsigmoid(x),
            f.hardswish(x), f.hardsigmoid(x), f.glu(x, dim=1), f.softsign(x))
def _one_hot(lib): return F(lib).one_hot(lib.tensor(TARGET)), F(lib).one_hot(lib.tensor(TARGET), num_classes=6)
def _one_hot_2d(lib): return F(lib).one_hot(lib.tensor(TARGET.reshape(1, 5)), 4)
def _one_hot_negative_raises(lib): return F(lib).one_hot(lib.tensor([-1, 0]), 3)
def _pad_constant(lib): return F(lib).pad(lib.tensor(IMG), (1, 2, 0, 1)), F(lib).pad(lib.tensor(PRED), (2, 0), value=-1.0)
def _pad_reflect(lib): return F(lib).pad(lib.tensor(IMG), (1, 1, 2, 0), mode="reflect")
def _pad_replicate(lib): return F(lib).pad(lib.tensor(IMG), (1, 1, 1, 1), mode="replicate")
def _normalize(lib):
    return F(lib).normalize(lib.tensor(PRED)), F(lib).normalize(lib.tensor(PRED), p=1, dim=0), \
        F(lib).normalize(lib.tensor(np.zeros((2, 3))), dim=1)
def _layer_norm(lib):
    w, b = lib.tensor(TRUTH[0]), lib.tensor(TRUTH[1])
    return F(lib).layer_norm(lib.tensor(PRED), (4,), w, b), F(lib).layer_norm(lib.tensor(PRED), (4,))
def _batch_norm_eval(lib):
    return F(lib).batch_norm(lib.tensor(PRED), lib.tensor(TRUTH[0]), lib.tensor(PROB[0]), training=False)
def _group_norm(lib): return F(lib).group_norm(lib.tensor(IMG), 3)
def _dropout_eval(lib): return F(lib).dropout(lib.tensor(PRED), p=0.5, training=False)
def _dropout_p0_p1(lib): return F(lib).dropout(lib.tensor(PRED), p=0.0), F(lib).dropout(lib.tensor(PRED), p=1.0)
def _dropout_bad_p_raises(lib): return F(lib).dropout(lib.tensor(PRED), p=1.5)
def _linear(lib):
    return F(lib).linear(lib.tensor(PRED), lib.tensor(TRUTH)), \
        F(lib).linear(lib.tensor(PRED), lib.tensor(TRUTH[:2]), lib.tensor(TRUTH[2, :2]))
def _embedding_padding_idx(lib):
    w = lib.tensor(TRUTH, requires_grad=True)
    out = F(lib).embedding(lib.tensor([[0, 1], [1, 2]]), w, padding_idx=1)
    out.sum().backward()
    return out, w.grad
def _embedding_oob_raises(lib): return F(lib).embedding(lib.tensor([5]), lib.tensor(TRUTH))


# ---- pooling, conv, resampling ----
def _conv2d(lib):
    w = lib.tensor(CONV_W)
    return F(lib).conv2d(lib.tensor(IMG), w, padding=1), F(lib).conv2d(lib.tensor(IMG), w, stride=2), \
        F(lib).conv2d(lib.tensor(IMG), w, padding="same")
def _conv2d_groups_dilation(lib):
    w = lib.tensor(DW_W)
    return F(lib).conv2d(lib.tensor(IMG), w, groups=3, dilation=2, padding=2)
def _conv2d_channel_mismatch_raises(lib):
    return F(lib).conv2d(lib.tensor(IMG), lib.tensor(BAD_W))
def _pools(lib):
    x = lib.tensor(IMG)
    f = F(lib)
    return f.max_pool2d(x, 2), f.avg_pool2d(x, 3, stride=1, padding=1), f.adaptive_avg_pool2d(x, 1), \
        f.max_pool2d(x, 3, stride=2, ceil_mode=True), f.adaptive_max_pool2d(x, 2)
def _max_pool_indices(lib): return F(lib).max_pool2d(lib.tensor(IMG), 2, return_indices=True)
def _avg_pool1d(lib): return F(lib).avg_pool1d(lib.tensor(IMG[:, :, 0]), 2), F(lib).max_pool1d(lib.tensor(IMG[:, :, 0]), 2)
def _interpolate_nearest(lib): return F(lib).interpolate(lib.tensor(IMG), scale_factor=2, mode="nearest")
def _interpolate_bilinear(lib):
    return F(lib).interpolate(lib.tensor(IMG), size=(7, 3), mode="bilinear", align_corners=False), \
        F(lib).interpolate(lib.tensor(IMG), scale_factor=2, mode="bilinear", align_corners=True)
def _interpolate_grad(lib):
    return _grad_of(lib, lambda x: F(lib).interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
                    * lib.tensor(np.arange(100.0).reshape(10, 10)), IMG)
def _unfold_rare(lib): return F(lib).unfold(lib.tensor(IMG), 2)
def _sdpa(lib):
    q = lib.tensor(Q)
    if not hasattr(F(lib), "scaled_dot_product_attention"):  # torch < 2.0: the formula itself
        s = q @ q.transpose(-2, -1) / 2.0
        causal = s.masked_fill(lib.ones(3, 3, dtype=lib.bool).triu(1), float("-inf"))
        return lib.softmax(s, -1) @ q, lib.softmax(causal, -1) @ q
    return F(lib).scaled_dot_product_attention(q, q, q), F(lib).scaled_dot_product_attention(q, q, q, is_causal=True)


def _conv_transpose2d(lib):
    f = F(lib)
    x = lib.tensor(IMG)
    w = lib.tensor(CT_W)
    return f.conv_transpose2d(x, w), f.conv_transpose2d(x, w, lib.tensor(CT_B[:2]), stride=2, padding=1,
                                                          output_padding=1), \
        f.conv_transpose2d(x, lib.tensor(CT_W[:, :1].copy()), stride=(1, 2), dilation=2, groups=3)
def _conv_transpose2d_grad(lib):
    return _grad_of(lib, lambda x, w: F(lib).conv_transpose2d(x, w, stride=2), IMG, CT_W)
def _conv_transpose2d_bad_channels_raises(lib):
    return F(lib).conv_transpose2d(lib.tensor(IMG), lib.tensor(CT_W[:2].copy()))
def _conv_transpose1d(lib):
    return F(lib).conv_transpose1d(lib.tensor(IMG[:, :, 0]), lib.tensor(CT_W[:, :, 0]), stride=2)
def _dropout2d_eval_and_structure(lib):
    f = F(lib)
    x = lib.ones(4, 8, 3, 3)
    y = f.dropout2d(x, 0.5)
    per_channel = y.reshape(4, 8, 9)
    same_in_channel = bool((per_channel.amax(2) == per_channel.amin(2)).all())
    return f.dropout2d(lib.tensor(IMG), 0.5, training=False), same_in_channel, sorted(set(y.reshape(-1).tolist())) in \
        ([0.0, 2.0], [2.0], [0.0])
def _instance_norm(lib):
    return F(lib).instance_norm(lib.tensor(IMG)), \
        F(lib).instance_norm(lib.tensor(IMG), weight=lib.tensor(CT_B[:3]), bias=lib.tensor(CT_B[1:]))
def _pixel_shuffle(lib):
    x = lib.tensor(R_PS)
    return F(lib).pixel_shuffle(x, 2), F(lib).pixel_unshuffle(F(lib).pixel_shuffle(x, 2), 2)
def _shrinks(lib):
    x = lib.tensor(PRED)
    f = F(lib)
    return f.threshold(x, 0.1, 20.0), f.hardshrink(x, 0.3), f.softshrink(x, 0.3), f.tanhshrink(x)
def _gumbel_softmax_shapes(lib):
    lib.manual_seed(0)
    y = F(lib).gumbel_softmax(lib.tensor(PRED), tau=0.5, hard=True)
    return y.shape, y.sum(1), bool(((y == 0) | (y == 1)).all())
def _metric_losses(lib):
    f = F(lib)
    a, p, n = lib.tensor(PRED), lib.tensor(TRUTH), lib.tensor(PROB)
    y = lib.tensor(np.array([1.0, -1.0, 1.0]))
    return f.triplet_margin_loss(a, p, n, margin=0.5), f.triplet_margin_loss(a, p, n, swap=True, reduction="none"), \
        f.cosine_embedding_loss(a, p, y, margin=0.1), f.soft_margin_loss(a, lib.tensor(np.sign(TRUTH)))
def _nll_variants(lib):
    f = F(lib)
    return f.gaussian_nll_loss(lib.tensor(PRED), lib.tensor(TRUTH), lib.tensor(PROB)), \
        f.poisson_nll_loss(lib.tensor(PRED), lib.tensor(np.abs(TRUTH))), \
        f.poisson_nll_loss(lib.tensor(PROB), lib.tensor(np.abs(TRUTH) * 3), log_input=False, full=True)


@cases(_conv_transpose2d, _conv_transpose2d_grad, _conv_transpose2d_bad_channels_raises, _conv_transpose1d,
       _dropout2d_eval_and_structure, _instance_norm, _pixel_shuffle, _shrinks, _gumbel_softmax_shapes,
       _metric_losses, _nll_variants)
def test_more_functional(case):
    check(case, atol=1e-7, rtol=1e-6)


@cases(_ce_basic, _ce_reductions, _ce_ignore_index, _ce_ignore_index_custom, _ce_label_smoothing, _ce_weight,
       _ce_prob_targets, _ce_spatial, _ce_sequence_3d, _ce_float32_targets_dtype, _ce_target_out_of_range_raises,
       _ce_shape_mismatch_raises, _ce_int_logits_raises, _ce_module, _nll, _nll_weight_ignore, _nll_module)
def test_cross_entropy_family(case):
    check(case, atol=1e-9, rtol=1e-7)


@cases(_mse, _l1, _smooth_l1, _huber, _loss_modules, _mse_broadcast_warns_but_works, _bce, _bce_weight, _bce_logits,
       _bce_logits_pos_weight, _bce_logits_module, _bce_out_of_range_raises, _kl_div, _cosine_similarity,
       _triplet_margin_rare)
def test_regression_and_binary_losses(case):
    check(case, atol=1e-9, rtol=1e-7)


@cases(_softmax_dims, _softmax_dtype_kw, _softmax_grad, _activations, _one_hot, _one_hot_2d, _one_hot_negative_raises,
       _pad_constant, _pad_reflect, _pad_replicate, _normalize, _layer_norm, _batch_norm_eval, _group_norm,
       _dropout_eval, _dropout_p0_p1, _dropout_bad_p_raises, _linear, _embedding_padding_idx, _embedding_oob_raises)
def test_activations_and_normalisation(case):
    check(case, atol=1e-7, rtol=1e-6)


@cases(_conv2d, _conv2d_groups_dilation, _conv2d_channel_mismatch_raises, _pools, _max_pool_indices, _avg_pool1d,
       _interpolate_nearest, _interpolate_bilinear, _interpolate_grad, _unfold_rare, _sdpa)
def test_conv_pool_resample(case):
    check(case, atol=1e-7, rtol=1e-6)
