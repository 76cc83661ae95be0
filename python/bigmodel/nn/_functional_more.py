"""More of torch.nn.functional, composed from bigmodel's ops (so autograd and every device come
free): the smaller activations, smooth L1 / Huber / margin losses, cosine similarity, group
norm, 1-D pooling, interpolate (nearest, linear, bilinear, trilinear), non-constant pad modes,
and unfold (im2col)."""
import math

import numpy as np

from .. import _C


def _index(values, like):
    t = _C._from_numpy_copy(np.ascontiguousarray(np.asarray(values, dtype=np.int64)))
    return t if like.device.type == "cpu" else t.to(like.device)


def _reduce(op, loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise _C.InvalidArgumentError(f"[{op}] reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# ---- activations ----
def elu(input, alpha=1.0, inplace=False):
    # expm1 of min(x, 0): the unused branch must not overflow (0 * inf would poison the gradient).
    return _C.where(input > 0, input, _C.expm1(_C.clamp_max(input, 0.0)) * alpha)


def selu(input, inplace=False):
    return elu(input, 1.6732632423543772) * 1.0507009873554805


def celu(input, alpha=1.0, inplace=False):
    return _C.where(input > 0, input, _C.expm1(_C.clamp_max(input, 0.0) / alpha) * alpha)


def softplus(input, beta=1.0, threshold=20.0):
    return _C.softplus(input, beta, threshold)


def mish(input, inplace=False):
    return input * _C.tanh(_C.softplus(input))


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return _C.clamp(input, min_val, max_val)


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0)


def logsigmoid(input):
    return -_C.softplus(-input)


def hardsigmoid(input, inplace=False):
    return _C.clamp(input / 6.0 + 0.5, 0.0, 1.0)


def hardswish(input, inplace=False):
    return input * _C.clamp(input + 3.0, 0.0, 6.0) / 6.0


def softsign(input):
    return input / (_C.abs(input) + 1.0)


def softmin(input, dim=None, dtype=None):
    from .functional import softmax
    return softmax(-input, dim=dim, dtype=dtype)


def glu(input, dim=-1):
    if input.shape[dim] % 2:
        raise _C.InvalidArgumentError(f"[glu] dim {dim} of shape {list(input.shape)} must have an even size")
    a, b = _C.chunk(input, 2, dim)
    return a * _C.sigmoid(b)


def prelu(input, weight):
    w = weight
    if input.ndim >= 2 and weight.numel() > 1:
        w = weight.reshape([1, -1] + [1] * (input.ndim - 2))
    return _C.where(input >= 0, input, input * w)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _C.conv1d(input, weight, bias, stride, padding, dilation, groups)


# ---- losses and similarity ----
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    d = _C.abs(input - target)
    if beta == 0:
        return _reduce("smooth_l1_loss", d, reduction)
    return _reduce("smooth_l1_loss", _C.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    d = _C.abs(input - target)
    return _reduce("huber_loss", _C.where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta), reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    return _reduce("margin_ranking_loss", _C.clamp_min(-target * (input1 - input2) + margin, 0.0), reduction)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    n1 = _C.clamp_min((x1 * x1).sum(dim), 0.0)
    n2 = _C.clamp_min((x2 * x2).sum(dim), 0.0)
    return (x1 * x2).sum(dim) / _C.sqrt(_C.clamp_min(n1 * n2, eps * eps))


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    d = x1 - x2 + eps
    return _C.abs(d).pow(p).sum(-1, keepdim=keepdim).pow(1.0 / p)


# ---- normalisation and pooling ----
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    n, c = input.shape[0], input.shape[1]
    if c % num_groups:
        raise _C.InvalidArgumentError(f"[group_norm] {c} channels are not divisible by {num_groups} groups")
    x = input.reshape(n, num_groups, -1)
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    y = ((x - mean) * _C.rsqrt(var + eps)).reshape(input.shape)
    shape = [1, c] + [1] * (input.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def _one(v):
    return v[0] if isinstance(v, (tuple, list)) else v


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    from .functional import avg_pool2d
    k = _one(kernel_size)
    s = k if stride is None else _one(stride)
    return avg_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, _one(padding)), ceil_mode,
                      count_include_pad).squeeze(-2)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    from .functional import max_pool2d
    k = _one(kernel_size)
    s = k if stride is None else _one(stride)
    out = max_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, _one(padding)), (1, _one(dilation)), ceil_mode,
                     return_indices)
    if return_indices:
        return out[0].squeeze(-2), out[1].squeeze(-2)
    return out.squeeze(-2)


def adaptive_avg_pool1d(input, output_size):
    from .functional import adaptive_avg_pool2d
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, _one(output_size))).squeeze(-2)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    out = _C.adaptive_max_pool2d(input, output_size if isinstance(output_size, (tuple, list))
                                 else (output_size, output_size))
    if isinstance(out, tuple):
        return out if return_indices else out[0]
    if return_indices:
        raise NotImplementedError("[adaptive_max_pool2d] return_indices is not supported")
    return out


# ---- padding ----
def pad_indices(n, left, right, mode):
    """Source positions, along one dim of size n, of a pad by (left, right) in `mode`."""
    j = np.arange(-left, n + right)
    if mode == "reflect":
        if left >= n or right >= n:
            raise _C.InvalidArgumentError(f"[pad] reflect padding ({left}, {right}) must be smaller than the dim ({n})")
        j = np.abs(j)
        j = np.where(j >= n, 2 * (n - 1) - j, j)
    elif mode == "replicate":
        j = np.clip(j, 0, n - 1)
    elif mode == "circular":
        if left > n or right > n:
            raise _C.InvalidArgumentError(f"[pad] circular padding ({left}, {right}) is larger than the dim ({n})")
        j = np.mod(j, n)
    else:
        raise NotImplementedError(f"[pad] mode {mode!r} is not supported")
    return j


def pad_by_index(input, pad, mode):
    """reflect / replicate / circular padding: an index_select per padded dim (with gradients)."""
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise _C.InvalidArgumentError(f"[pad] padding {list(pad)} doesn't fit input of shape {list(input.shape)}")
    if any(p < 0 for p in pad):
        raise NotImplementedError(f"[pad] negative padding is supported only in 'constant' mode, got {list(pad)}")
    out = input
    for k in range(len(pad) // 2):
        d = input.ndim - 1 - k
        left, right = int(pad[2 * k]), int(pad[2 * k + 1])
        if left or right:
            out = out.index_select(d, _index(pad_indices(out.shape[d], left, right, mode), out))
    return out


# ---- interpolate ----
def _source_positions(n_in, n_out, mode, align_corners, scale):
    dst = np.arange(n_out, dtype=np.float64)
    if mode in ("nearest", "nearest-exact"):
        s = (1.0 / scale) if scale else n_in / n_out
        src = np.floor((dst + 0.5) * s) if mode == "nearest-exact" else np.floor(dst * s)
        return np.minimum(src, n_in - 1).astype(np.int64), None, None
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros_like(dst)
    else:
        s = (1.0 / scale) if scale else n_in / n_out
        src = np.maximum((dst + 0.5) * s - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resizes the spatial dims (all after N, C): 'nearest', 'nearest-exact', 'linear' (3-D),
    'bilinear' (4-D), 'trilinear' (5-D); separable, one index_select per dim and tap."""
    spatial = input.ndim - 2
    if spatial < 1:
        raise _C.InvalidArgumentError(f"[interpolate] expected a batched input (N, C, ...), got shape {list(input.shape)}")
    linear_modes = {"linear": 1, "bilinear": 2, "trilinear": 3}
    if mode in linear_modes and linear_modes[mode] != spatial:
        raise NotImplementedError(f"[interpolate] mode '{mode}' expects {linear_modes[mode] + 2}-D input, "
                                  f"got shape {list(input.shape)}")
    if mode not in linear_modes and mode not in ("nearest", "nearest-exact"):
        raise NotImplementedError(f"[interpolate] mode {mode!r} is not supported")
    if align_corners is not None and mode not in linear_modes:
        raise _C.InvalidArgumentError("[interpolate] align_corners only applies to the linear modes")
    if antialias:
        raise NotImplementedError("[interpolate] antialias is not supported")
    if (size is None) == (scale_factor is None):
        raise _C.InvalidArgumentError("[interpolate] give exactly one of size and scale_factor")
    in_sizes = list(input.shape[2:])
    if size is not None:
        sizes = [int(size)] * spatial if isinstance(size, int) else [int(s) for s in size]
        scales = [None] * spatial
    else:
        sf = [float(scale_factor)] * spatial if isinstance(scale_factor, (int, float)) else \
            [float(s) for s in scale_factor]
        sizes = [int(math.floor(n * s)) for n, s in zip(in_sizes, sf)]
        scales = [None] * spatial if recompute_scale_factor else sf
    if len(sizes) != spatial or any(s <= 0 for s in sizes):
        raise _C.InvalidArgumentError(f"[interpolate] output size {sizes} doesn't fit input {list(input.shape)}")
    out = input
    for k in range(spatial):
        d = 2 + k
        i0, i1, w = _source_positions(in_sizes[k], sizes[k], mode, bool(align_corners), scales[k])
        if w is None:
            out = out.index_select(d, _index(i0, out))
            continue
        shape = [1] * out.ndim
        shape[d] = -1
        wt = _C._from_numpy_copy(w.reshape(shape)).to(out.dtype)
        wt = wt if out.device.type == "cpu" else wt.to(out.device)
        a = out.index_select(d, _index(i0, out))
        b = out.index_select(d, _index(i1, out))
        out = a + (b - a) * wt
    return out


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)


# ---- transposed convolution, channel dropout, instance norm, pixel shuffle ----
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The gradient of conv2d with respect to its input, as an op: weight [C_in, C_out / groups,
    kH, kW]; out size (H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1."""
    op = "conv_transpose2d"
    if input.ndim not in (3, 4) or weight.ndim != 4:
        raise _C.ShapeError(f"[{op}] expected a 4-D input and weight, got {list(input.shape)} and {list(weight.shape)}")
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    s, p, op_, d = _pair(stride), _pair(padding), _pair(output_padding), _pair(dilation)
    n, cin, h, w = x.shape
    if weight.shape[0] != cin or cin % groups:
        raise _C.ShapeError(f"[{op}] weight {list(weight.shape)} expects {weight.shape[0]} input channels "
                            f"(groups={groups}), got input {list(input.shape)}")
    if any(o >= max(st, dl) for o, st, dl in zip(op_, s, d)) or min(s) <= 0 or min(d) <= 0 or min(p) < 0:
        raise _C.InvalidArgumentError(f"[{op}] output_padding {op_} must be smaller than stride {s} or dilation {d}")
    cout = weight.shape[1] * groups
    k = weight.shape[2:]
    out_hw = [(i - 1) * st - 2 * pd + dl * (kk - 1) + o + 1 for i, st, pd, dl, kk, o in zip((h, w), s, p, d, k, op_)]
    if min(out_hw) <= 0:
        raise _C.ShapeError(f"[{op}] output size {out_hw} is too small for input {list(input.shape)}")
    if x.dtype != weight.dtype:
        raise _C.DTypeError(f"[{op}] input ({x.dtype}) and weight ({weight.dtype}) must have the same dtype")
    out = _C._conv2d_backward_input(x.contiguous(), weight, [n, cout] + out_hw, s, p, d, groups)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    one = (lambda v: v[0] if isinstance(v, (tuple, list)) else v)
    out = conv_transpose2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, one(stride)), (0, one(padding)),
                           (0, one(output_padding)), groups, (1, one(dilation)))
    return out.squeeze(-2)


def _channel_dropout(op, input, p, training, batched_ndim):
    if not 0.0 <= p <= 1.0:
        raise _C.InvalidArgumentError(f"[{op}] probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    keep = input.ndim == batched_ndim
    shape = list(input.shape[:2] if keep else input.shape[:1]) + [1] * (input.ndim - (2 if keep else 1))
    if p == 1.0:
        return input * 0.0
    mask = (_C.rand(*shape, device=input.device) >= p).to(input.dtype) * (1.0 / (1.0 - p))
    return input * mask


def dropout1d(input, p=0.5, training=True, inplace=False):
    return _channel_dropout("dropout1d", input, p, training, 3)


def dropout2d(input, p=0.5, training=True, inplace=False):
    return _channel_dropout("dropout2d", input, p, training, 4)


def dropout3d(input, p=0.5, training=True, inplace=False):
    return _channel_dropout("dropout3d", input, p, training, 5)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalises each (sample, channel) plane over its spatial dims."""
    if not use_input_stats:
        shape = [1, -1] + [1] * (input.ndim - 2)
        y = (input - running_mean.reshape(shape)) * _C.rsqrt(running_var.reshape(shape) + eps)
    else:
        y = group_norm(input, input.shape[1], None, None, eps)
        if running_mean is not None and running_var is not None:
            with _no_grad():
                dims = list(range(2, input.ndim))
                m = input.detach().mean(dims).mean(0)
                n = int(np.prod(input.shape[2:]))
                v = input.detach().var(dims, unbiased=False).mean(0) * (n / max(n - 1, 1))
                running_mean.mul_(1 - momentum).add_(m * momentum)
                running_var.mul_(1 - momentum).add_(v * momentum)
    shape = [1, -1] + [1] * (input.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def _no_grad():
    from .._autograd import no_grad
    return no_grad()


def pixel_shuffle(input, upscale_factor):
    r = upscale_factor
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise _C.InvalidArgumentError(f"[pixel_shuffle] {c} channels are not divisible by upscale_factor^2 = {r * r}")
    x = input.reshape(-1, c // (r * r), r, r, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):
    r = downscale_factor
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise _C.InvalidArgumentError(f"[pixel_unshuffle] spatial size {h}x{w} is not divisible by {r}")
    x = input.reshape(-1, c, h // r, r, w // r, r).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(*lead, c * r * r, h // r, w // r)


# ---- more activations and losses ----
def threshold(input, threshold, value, inplace=False):
    return _C.where(input > threshold, input, value)


def hardshrink(input, lambd=0.5):
    return _C.where(_C.abs(input) > lambd, input, 0.0)


def softshrink(input, lambd=0.5):
    return _C.where(input > lambd, input - lambd, _C.where(input < -lambd, input + lambd, 0.0))


def tanhshrink(input):
    return input - _C.tanh(input)


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    """Softmax of (logits + Gumbel noise) / tau; hard=True gives one-hot samples whose gradient
    is the soft one's (straight-through)."""
    from .functional import softmax
    u = _C.rand(*logits.shape, dtype=logits.dtype, device=logits.device)
    gumbels = -_C.log(-_C.log(u + eps) + eps)
    y = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y
    idx = y.argmax(dim, keepdim=True)
    y_hard = _C.zeros_like(y).scatter(dim, idx, 1.0)
    return y_hard - y.detach() + y


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = _C.minimum(d_an, pairwise_distance(positive, negative, p, eps))
    return _reduce("triplet_margin_loss", _C.clamp_min(d_ap - d_an + margin, 0.0), reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    cos = cosine_similarity(input1, input2, dim=-1, eps=1e-8)
    loss = _C.where(target > 0, 1.0 - cos, _C.clamp_min(cos - margin, 0.0))
    return _reduce("cosine_embedding_loss", loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    return _reduce("soft_margin_loss", _C.softplus(-target * input), reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    v = _C.clamp_min(var, eps)
    loss = (_C.log(v) + (input - target) ** 2 / v) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce("gaussian_nll_loss", loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    loss = _C.exp(input) - target * input if log_input else input - target * _C.log(input + eps)
    if full:
        t = target
        stirling = t * _C.log(_C.clamp_min(t, 1.0)) - t + 0.5 * _C.log(_C.clamp_min(t, 1.0) * (2 * math.pi))
        loss = loss + _C.where(t > 1, stirling, 0.0)
    return _reduce("poisson_nll_loss", loss, reduction)


# ---- unfold (im2col) ----
def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding (kH, kW) blocks of a (N, C, H, W) input as (N, C*kH*kW, L) columns."""
    if input.ndim != 4:
        raise _C.InvalidArgumentError(f"[unfold] expected a 4-D input, got shape {list(input.shape)}")
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = _pair(kernel_size), _pair(dilation), _pair(padding), _pair(stride)
    x = input
    if ph or pw:
        from .functional import pad
        x = pad(x, (pw, pw, ph, ph))
    n, c, h, w = x.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        raise _C.InvalidArgumentError(f"[unfold] kernel {kh}x{kw} doesn't fit input {list(input.shape)}")
    rows = (np.arange(oh) * sh)[None, :] + (np.arange(kh) * dh)[:, None]  # (kh, oh)
    cols = (np.arange(ow) * sw)[None, :] + (np.arange(kw) * dw)[:, None]  # (kw, ow)
    flat = (rows[:, None, :, None] * w + cols[None, :, None, :]).reshape(-1)  # kh, kw, oh, ow
    g = x.reshape(n, c, h * w).index_select(2, _index(flat, x))
    return g.reshape(n, c * kh * kw, oh * ow)


__all__ = ["elu", "selu", "celu", "softplus", "mish", "hardtanh", "relu6", "logsigmoid", "hardsigmoid", "hardswish",
           "softsign", "softmin", "glu", "prelu", "conv1d", "smooth_l1_loss", "huber_loss", "margin_ranking_loss",
           "cosine_similarity", "pairwise_distance", "group_norm", "avg_pool1d", "max_pool1d", "adaptive_avg_pool1d",
           "adaptive_max_pool2d", "interpolate", "upsample", "unfold", "conv_transpose2d", "conv_transpose1d",
           "dropout1d", "dropout2d", "dropout3d", "instance_norm", "pixel_shuffle", "pixel_unshuffle", "threshold",
           "hardshrink", "softshrink", "tanhshrink", "gumbel_softmax", "triplet_margin_loss", "cosine_embedding_loss",
           "soft_margin_loss", "gaussian_nll_loss", "poisson_nll_loss"]
