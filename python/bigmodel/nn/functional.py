"""bm.nn.functional: PyTorch-style functions over the ops bound in bigmodel._C.

Most are thin wrappers: tensors go positionally and options go by keyword only when they
differ from the default, so the call matches the C++ binding whatever its argument names.
A few (dropout, one_hot, silu, ...) fall back to a composition of simpler ops when the
C++ core does not provide them.
"""
from .. import _C

_ArgError = _C.InvalidArgumentError  # ValueError and RuntimeError (as PyTorch raises)


def _op(name):
    fn = getattr(_C, name, None)
    if fn is None:
        raise NotImplementedError(f"[{name}] is not available in this build of bigmodel._C")
    return fn


def _call(name, *tensors, **options):
    """_C.<name>(*tensors, **options), passing only options that were given (not None)."""
    return _op(name)(*tensors, **{k: v for k, v in options.items() if v is not None})


def _reduction(size_average, reduce, reduction):
    # The legacy size_average/reduce flags map onto `reduction`, as in PyTorch.
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return ("mean" if size_average else "sum") if reduce else "none"


def _check_reduction(op, reduction):
    if reduction not in ("mean", "sum", "none"):
        raise _ArgError(f"[{op}] reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# ------------------------------------------------------------------ activations
def relu(input, inplace=False):
    if inplace and hasattr(_C, "relu_"):
        return _C.relu_(input)
    return _op("relu")(input)


def relu_(input):
    return relu(input, inplace=True)


def gelu(input, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise _ArgError(f"[gelu] approximate must be 'none' or 'tanh', got {approximate!r}")
    if approximate == "none":
        return _op("gelu")(input)
    return _op("gelu")(input, approximate=approximate)


def silu(input, inplace=False):
    if hasattr(_C, "silu"):
        return _C.silu(input)
    return input * _op("sigmoid")(input)


def sigmoid(input):
    return _op("sigmoid")(input)


def tanh(input):
    return _op("tanh")(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x for x > 0, negative_slope * x otherwise (composed: _C has no leaky_relu kernel)."""
    leaky = getattr(_C, "leaky_relu", None)
    if leaky is not None:
        return leaky(input, negative_slope)
    return _C.where(input > 0, input, input * negative_slope)


def _softmax_dim(op, input, dim):
    if dim is None:
        raise TypeError(f"[{op}] dim must be given (implicit dim is deprecated in PyTorch too)")
    return dim


def softmax(input, dim=None, dtype=None):
    dim = _softmax_dim("softmax", input, dim)
    if dtype is not None:
        input = input.to(dtype)
    return _op("softmax")(input, dim)


def log_softmax(input, dim=None, dtype=None):
    dim = _softmax_dim("log_softmax", input, dim)
    if dtype is not None:
        input = input.to(dtype)
    return _op("log_softmax")(input, dim)


# ------------------------------------------------------------------ linear / embedding
def linear(input, weight, bias=None):
    """input @ weight.T + bias, with weight of shape [out_features, in_features]."""
    if hasattr(_C, "linear"):
        return _C.linear(input, weight, bias) if bias is not None else _C.linear(input, weight)
    out = _op("matmul")(input, weight.t())
    return out + bias if bias is not None else out


_LINEAR_ACTS = {"none": lambda t: t, "relu": relu, "gelu": gelu, "gelu_tanh": lambda t: gelu(t, approximate="tanh")}


def _linear_act(input, weight, bias=None, act="none"):
    """act(linear(input, weight, bias)), act in 'none', 'relu', 'gelu' (erf), 'gelu_tanh'.

    Internal (the GPT MLP and the Transformer feed-forward use it): one GEMM with the bias and
    the activation in its epilogue where the core has one, the composed ops otherwise; both
    compute the same function within float rounding.
    """
    if act not in _LINEAR_ACTS:
        raise _ArgError(f"[linear_act] act must be one of {sorted(_LINEAR_ACTS)}, got {act!r}")
    if hasattr(_C, "_linear_act"):
        return _C._linear_act(input, weight, bias, act)
    return _LINEAR_ACTS[act](linear(input, weight, bias))


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("[embedding] max_norm, scale_grad_by_freq and sparse are not supported")
    if padding_idx is None:
        return _op("embedding")(input, weight)
    return _op("embedding")(input, weight, padding_idx=padding_idx)


def one_hot(tensor, num_classes=-1):
    """int64 tensor of shape [*tensor.shape, num_classes] with a 1 at each class index."""
    if tensor.is_floating_point():
        raise _C.DTypeError(f"[one_hot] expected an integer tensor, got {tensor.dtype}")
    if hasattr(_C, "one_hot"):
        return _C.one_hot(tensor, num_classes)
    import numpy as np
    idx = tensor.detach().cpu().numpy().astype(np.int64)
    if idx.size and idx.min() < 0:
        raise IndexError("[one_hot] class values must be non-negative")
    n = int(idx.max()) + 1 if num_classes < 0 and idx.size else (num_classes if num_classes >= 0 else 0)
    if idx.size and idx.max() >= n:
        raise IndexError(f"[one_hot] class value {int(idx.max())} is out of range for num_classes={n}")
    out = (idx[..., None] == np.arange(n)).astype(np.int64)
    res = _C._from_numpy_copy(np.ascontiguousarray(out))
    return res.to(tensor.device) if not tensor.is_cpu else res


# ------------------------------------------------------------------ dropout
def dropout(input, p=0.5, training=True, inplace=False):
    """Zeroes each element with probability p and scales the rest by 1/(1-p) (training only)."""
    if p < 0.0 or p > 1.0:
        raise _ArgError(f"[dropout] probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    if hasattr(_C, "dropout"):
        return _C.dropout(input, p, training)
    keep = (_op("rand_like")(input) >= p).to(input.dtype)
    return input * keep * (1.0 / (1.0 - p))


# ------------------------------------------------------------------ losses
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Softmax cross entropy of logits [N, C] (or [N, C, d...]) against class indices or probabilities."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise _ArgError(f"[cross_entropy] label_smoothing must be in [0, 1], got {label_smoothing}")
    return _call("cross_entropy", input, target, weight=weight,
                 ignore_index=None if ignore_index == -100 else ignore_index,
                 reduction=None if reduction == "mean" else reduction,
                 label_smoothing=None if label_smoothing == 0.0 else label_smoothing)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction("nll_loss", reduction)
    return _call("nll_loss", input, target, weight=weight,
                 ignore_index=None if ignore_index == -100 else ignore_index,
                 reduction=None if reduction == "mean" else reduction)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction("mse_loss", reduction)
    return _call("mse_loss", input, target, reduction=None if reduction == "mean" else reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction("l1_loss", reduction)
    return _call("l1_loss", input, target, reduction=None if reduction == "mean" else reduction)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-w * (t * log(p) + (1 - t) * log(1 - p)) for probabilities p in [0, 1], as PyTorch's
    (the logs are clamped at -100, so p = 0 or 1 give a finite loss)."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction("binary_cross_entropy", reduction)
    return _call("binary_cross_entropy", input, target, weight=weight,
                 reduction=None if reduction == "mean" else reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    return _call("binary_cross_entropy_with_logits", input, target, weight=weight,
                 reduction=None if reduction == "mean" else reduction, pos_weight=pos_weight)


# ------------------------------------------------------------------ convolution / pooling
def _options(**options):
    """Keyword options without the ones left at None (the binding's defaults then apply)."""
    return {k: v for k, v in options.items() if v is not None}


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation of input [N, C_in, H, W] with weight [C_out, C_in/groups, kH, kW]."""
    return _op("conv2d")(input, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over kernel_size windows; stride defaults to kernel_size. With return_indices,
    (values, int64 flat indices into each H*W plane)."""
    return _op("max_pool2d")(input, kernel_size, **_options(
        stride=stride, padding=padding or None, dilation=None if dilation == 1 else dilation,
        ceil_mode=ceil_mode or None, return_indices=return_indices or None))


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _op("avg_pool2d")(input, kernel_size, **_options(
        stride=stride, padding=padding or None, ceil_mode=ceil_mode or None,
        count_include_pad=None if count_include_pad else False, divisor_override=divisor_override))


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output_size (int or (H, W); None keeps that input size)."""
    return _op("adaptive_avg_pool2d")(input, output_size)


def flatten(input, start_dim=0, end_dim=-1):
    return input.flatten(start_dim, end_dim)


# ------------------------------------------------------------------ normalisation
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """Per-channel normalisation of input [N, C, ...]. Training uses the batch statistics and
    updates running_mean/running_var in place (running_var with the unbiased variance)."""
    return _op("batch_norm")(input, running_mean, running_var, weight, bias, training=training,
                             momentum=momentum, eps=eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalises over the trailing dims normalized_shape (int or sequence)."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return _op("layer_norm")(input, list(normalized_shape), weight, bias, eps=eps)


__all__ = ["relu", "relu_", "gelu", "silu", "sigmoid", "tanh", "leaky_relu", "softmax", "log_softmax",
           "linear", "embedding", "one_hot", "dropout", "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
           "flatten", "batch_norm", "layer_norm"]


# ------------------------------------------------------------------ attention
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 generator=None):
    """softmax(q k^T * scale + mask) v over [..., L, E] x [..., S, E] x [..., S, Ev] -> [..., L, Ev].
    A bool attn_mask keeps positions where True; a float one is added; is_causal keeps j <= i.
    On CUDA, float32/float16/bfloat16 inputs with E == Ev <= 128 and at most 4 dims run a fused
    flash kernel (no L x S buffer, forward or backward); dropout_p > 0, other head dims, a mask
    that requires grad and more dims fall back to the composed path (matmul, softmax, matmul).
    A row with every key masked gives NaN, as softmax over all -inf does."""
    return _op("scaled_dot_product_attention")(query, key, value, attn_mask, dropout_p=dropout_p,
                                               is_causal=is_causal, scale=scale, generator=generator)


__all__ += ["scaled_dot_product_attention"]


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """input / max(||input||_p along dim, eps), as torch.nn.functional.normalize."""
    norm = _C.norm(input, p, dim, True)
    return input / _C.clamp(norm, min=eps).expand_as(input)


def pad(input, pad, mode="constant", value=0.0):
    """Padding; `pad` lists (left, right) pairs from the last dim backwards, as in PyTorch.
    mode 'constant' (negative amounts crop), 'reflect', 'replicate' or 'circular'."""
    if mode != "constant":  # reflect / replicate / circular: gathers along each padded dim
        from ._functional_more import pad_by_index
        return pad_by_index(input, pad, mode)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise _ArgError(f"[pad] padding length {len(pad)} must be even and cover at most {input.ndim} dims "
                        f"of input {tuple(input.shape)}")
    out = input
    for i in range(len(pad) // 2):  # crop first (negative amounts), then pad
        d, (lo, hi) = input.ndim - 1 - i, pad[2 * i:2 * i + 2]
        start, stop = max(-lo, 0), out.shape[d] - max(-hi, 0)
        if start > stop:
            raise _ArgError(f"[pad] padding {tuple(pad)} crops dim {d} of {tuple(input.shape)} below zero")
        out = out.narrow(d, start, stop - start)
    shape = list(out.shape)
    index = []
    for d in range(out.ndim):
        i = input.ndim - 1 - d
        lo, hi = (max(pad[2 * i], 0), max(pad[2 * i + 1], 0)) if i < len(pad) // 2 else (0, 0)
        shape[d] += lo + hi
        index.append(slice(lo, lo + out.shape[d]))
    result = _C.full(tuple(shape), value, dtype=out.dtype, device=out.device)
    result[tuple(index)] = out
    return result


__all__ += ["normalize", "pad"]


# ------------------------------------------------------------------ knowledge distillation
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Pointwise KL divergence target * (log(target) - input), with `input` holding log-probabilities
    and `target` probabilities (log-probabilities with log_target=True); 0 where target is 0.

    reduction: 'none', 'sum', 'mean' (over every element, as PyTorch) or 'batchmean' (sum / batch
    size: the mathematical KL divergence per sample). Composed of differentiable ops, so both
    input and target get gradients.
    """
    reduction = _reduction(size_average, reduce, reduction)
    if reduction not in ("none", "sum", "mean", "batchmean"):
        raise _ArgError(f"[kl_div] reduction must be 'none', 'sum', 'mean' or 'batchmean', got {reduction!r}")
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, _C.Tensor):
            raise TypeError(f"[kl_div] {name} must be a Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise _C.DTypeError(f"[kl_div] {name} must be floating, got {t.dtype}")
    if tuple(input.shape) != tuple(target.shape):
        raise _ArgError(f"[kl_div] input {list(input.shape)} and target {list(target.shape)} must have the same "
                        "shape")
    if log_target:
        pointwise = _C.exp(target) * (target - input)
    else:
        positive = target > 0
        # log of 1 where target is 0, so neither value nor gradient becomes nan there.
        safe = _C.where(positive, target, _C.ones_like(target))
        pointwise = _C.where(positive, target * (_C.log(safe) - input), _C.zeros_like(input))
    if reduction == "none":
        return pointwise
    if reduction == "sum":
        return pointwise.sum()
    if reduction == "mean":
        return pointwise.mean()
    if input.dim() == 0:
        return pointwise.sum()
    return pointwise.sum() / input.shape[0]


def distillation_loss(student_logits, teacher_logits, target=None, temperature=4.0, alpha=0.9,
                      reduction="mean"):
    """Hinton et al.'s knowledge-distillation loss for logits [N, C]:

        alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))  (per sample, batch mean)
        + (1 - alpha) * cross_entropy(student, target)

    T^2 keeps the soft term's gradients on the scale of the hard term's as T changes. The
    teacher's logits are treated as constants (detached). Without target (or alpha == 1) the
    result is the soft term alone. reduction applies to the hard term ('mean' or 'sum'; with
    'sum' the soft term is summed over the batch too).
    """
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or temperature <= 0:
        raise _ArgError(f"[distillation_loss] temperature must be a positive number, got {temperature!r}")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0.0 <= alpha <= 1.0:
        raise _ArgError(f"[distillation_loss] alpha must be in [0, 1], got {alpha!r}")
    if reduction not in ("mean", "sum"):
        raise _ArgError(f"[distillation_loss] reduction must be 'mean' or 'sum', got {reduction!r}")
    for name, t in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not isinstance(t, _C.Tensor):
            raise TypeError(f"[distillation_loss] {name} must be a Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise _C.DTypeError(f"[distillation_loss] {name} must be floating, got {t.dtype}")
        if t.dim() != 2:
            raise _ArgError(f"[distillation_loss] {name} must be [batch, classes], got shape {list(t.shape)}")
    if tuple(student_logits.shape) != tuple(teacher_logits.shape):
        raise _ArgError(f"[distillation_loss] student_logits {list(student_logits.shape)} and teacher_logits "
                        f"{list(teacher_logits.shape)} must have the same shape")
    t = float(temperature)
    log_p_student = log_softmax(student_logits / t, dim=-1)
    log_p_teacher = log_softmax(teacher_logits.detach().to(student_logits.dtype) / t, dim=-1)
    soft = kl_div(log_p_student, log_p_teacher, reduction="batchmean" if reduction == "mean" else "sum",
                  log_target=True) * (t * t)
    if target is None or alpha == 1.0:
        return soft
    hard = cross_entropy(student_logits, target, reduction=reduction)
    return soft * alpha + hard * (1.0 - alpha)


__all__ += ["kl_div", "distillation_loss"]


# ------------------------------------------------------------------ composed from ops
from ._functional_more import *  # noqa: E402,F401,F403
from ._functional_more import __all__ as _more_all  # noqa: E402
__all__ += _more_all
