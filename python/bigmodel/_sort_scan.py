"""Sorting, scans and counting, as PyTorch has them: sort/argsort/topk/median/unique,
cumsum/cumprod, bincount/count_nonzero and multinomial sampling.

Orders and scans are computed on the host with NumPy (a CUDA tensor is copied there and the
result copied back: correct everywhere, not fast on a GPU). Gradients need no kernels of
their own: sorted values are `input.gather(dim, indices)`, so they flow through gather, and
cumsum/cumprod are autograd Functions whose backward is written with ops."""
import collections

import numpy as np

from . import _C
from .utils.function import Function

_rt = _C.return_types


def _return_type(name, fields):
    cls = collections.namedtuple(name, fields)
    cls.__module__ = "bigmodel.return_types"
    setattr(_rt, name, cls)
    return cls


_sort_t = _return_type("sort", ["values", "indices"])
_topk_t = _return_type("topk", ["values", "indices"])
_median_t = _return_type("median", ["values", "indices"])

_HALF = (_C.dtype.float16, _C.dtype.bfloat16)


def _host(x):
    """A NumPy copy of x's values (float32 for bfloat16, which NumPy lacks)."""
    t = x.detach().cpu()
    if t.dtype == _C.dtype.bfloat16:
        t = t.float()
    return t.numpy()


def _to_device(arr, like, dtype=None):
    t = _C._from_numpy_copy(np.array(arr, order="C"))
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    return t if like.device.type == "cpu" else t.to(like.device)


def _wrap(op, dim, ndim):
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise _C.TensorIndexError(f"[{op}] dim {dim} is out of range for a tensor with {ndim} dims")
    return dim % n


def _check_tensor(op, x):
    if not isinstance(x, _C.Tensor):
        raise TypeError(f"[{op}] expected a Tensor, got {type(x).__name__}")


# ---- sort, argsort, topk, median ----
def argsort(input, dim=-1, descending=False, stable=False):
    """Indices that sort `input` along dim (int64). NaN counts as the largest value; ties keep
    their order (a stable sort, which PyTorch's stable=True also gives)."""
    _check_tensor("argsort", input)
    d = _wrap("argsort", dim, input.ndim)
    a = _host(input)
    if a.ndim == 0:
        return _to_device(np.zeros((), np.int64), input)
    if a.dtype == np.bool_:
        a = a.astype(np.int8)
    if not descending:
        order = np.argsort(a, axis=d, kind="stable")
    else:
        order = np.argsort(-a if a.dtype.kind == "f" else -a.astype(np.int64), axis=d, kind="stable")
        if a.dtype.kind == "f":  # NaN is the largest: it comes first when descending
            nan_last = np.take_along_axis(~np.isnan(a), order, axis=d)
            order = np.take_along_axis(order, np.argsort(nan_last, axis=d, kind="stable"), axis=d)
    return _to_device(order.astype(np.int64), input)


def sort(input, dim=-1, descending=False, stable=False):
    """(values, indices) of `input` sorted along dim; values carry gradients (through gather)."""
    idx = argsort(input, dim, descending, stable)
    values = input.clone() if input.ndim == 0 else input.gather(dim, idx)
    return _sort_t(values, idx)


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The k largest (or smallest) values along dim and their indices, largest first."""
    _check_tensor("topk", input)
    d = _wrap("topk", dim, input.ndim)
    size = input.shape[d] if input.ndim else 1
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= size:
        raise _C.InvalidArgumentError(f"[topk] k={k} is out of range for dim {d} of shape {list(input.shape)}")
    idx = argsort(input, d, descending=largest, stable=True)
    if input.ndim:
        idx = idx.narrow(d, 0, k).contiguous()
        return _topk_t(input.gather(d, idx), idx)
    return _topk_t(input.clone(), idx)


def median(input, dim=None, keepdim=False):
    """The lower median (no averaging, as PyTorch): of all elements, or (values, indices) along dim."""
    _check_tensor("median", input)
    if dim is None:
        flat = input.reshape(-1)
        if flat.numel() == 0:
            raise _C.InvalidArgumentError("[median] of an empty tensor")
        idx = argsort(flat, 0).narrow(0, (flat.numel() - 1) // 2, 1)
        return flat.gather(0, idx).reshape(())
    d = _wrap("median", dim, input.ndim)
    if input.ndim == 0:
        return _median_t(input.clone(), _to_device(np.zeros((), np.int64), input))
    n = input.shape[d]
    if n == 0:
        raise _C.InvalidArgumentError(f"[median] dim {d} of shape {list(input.shape)} is empty")
    idx = argsort(input, d).narrow(d, (n - 1) // 2, 1).contiguous()
    values = input.gather(d, idx)
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return _median_t(values, idx)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct values of `input` (sorted), optionally with the inverse map and the counts."""
    _check_tensor("unique", input)
    a = _host(input)
    if dim is None:
        vals, inv, counts = np.unique(a.reshape(-1), return_inverse=True, return_counts=True)
        inv = inv.reshape(a.shape)
    else:
        d = _wrap("unique", dim, input.ndim)
        vals, inv, counts = np.unique(a, return_inverse=True, return_counts=True, axis=d)
        inv = inv.reshape(-1)
    out = [_to_device(vals, input, input.dtype)]
    if return_inverse:
        out.append(_to_device(inv.astype(np.int64), input))
    if return_counts:
        out.append(_to_device(counts.astype(np.int64), input))
    return out[0] if len(out) == 1 else tuple(out)


# ---- scans ----
def _scan_dtype(x, dtype):
    if dtype is not None:
        return dtype
    return _C.dtype.int64 if not x.is_floating_point() else x.dtype


class _CumSum(Function):
    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        a = _host(x)
        out = np.cumsum(a, axis=dim, dtype=np.float64 if a.dtype.kind == "f" else np.int64)
        return _to_device(out, x, x.dtype)

    @staticmethod
    def backward(ctx, grad):
        d = ctx.dim  # reversed cumulative sum of the gradient
        return cumsum(grad.flip([d]), d).flip([d]), None


class _CumProd(Function):
    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        a = _host(x)
        out = _to_device(np.cumprod(a.astype(np.float64), axis=dim), x, x.dtype)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        d = ctx.dim
        if not bool((x == 0).any()):
            # d out_j / d x_i = out_j / x_i for j >= i: a reversed cumsum of grad * out, over x.
            return cumsum((grad * out).flip([d]), d).flip([d]) / x, None
        # With zeros the division is undefined: sum_{j>=i} g_j * prod_{k<=j, k!=i} x_k directly.
        a, g = np.moveaxis(_host(x).astype(np.float64), d, -1), np.moveaxis(_host(grad).astype(np.float64), d, -1)
        n = a.shape[-1]
        res = np.zeros_like(a)
        for i in range(n):
            others = a.copy()
            others[..., i] = 1.0
            res[..., i] = (np.cumprod(others, axis=-1)[..., i:] * g[..., i:]).sum(-1)
        return _to_device(np.moveaxis(res, -1, d), x, x.dtype), None


def cumsum(input, dim, dtype=None):
    """Cumulative sum along dim; integer and bool inputs give int64, as in PyTorch."""
    _check_tensor("cumsum", input)
    d = _wrap("cumsum", dim, input.ndim)
    x = input.to(_scan_dtype(input, dtype))
    if x.ndim == 0:
        return x.clone()
    return _CumSum.apply(x, d)


def cumprod(input, dim, dtype=None):
    """Cumulative product along dim; integer and bool inputs give int64."""
    _check_tensor("cumprod", input)
    d = _wrap("cumprod", dim, input.ndim)
    x = input.to(_scan_dtype(input, dtype))
    if x.ndim == 0:
        return x.clone()
    if not x.is_floating_point():
        return _to_device(np.cumprod(_host(x), axis=d), x, x.dtype)
    return _CumProd.apply(x, d)


# ---- counting and sampling ----
def bincount(input, weights=None, minlength=0):
    """Counts of each value of a 1-D non-negative integer tensor (or summed weights)."""
    _check_tensor("bincount", input)
    if input.ndim != 1 or input.is_floating_point() or input.dtype == _C.dtype.bool:
        raise _C.InvalidArgumentError(f"[bincount] expected a 1-D integer tensor, got {input.dtype} "
                                      f"of shape {list(input.shape)}")
    a = _host(input)
    if a.size and a.min() < 0:
        raise _C.InvalidArgumentError("[bincount] input must be non-negative")
    if weights is None:
        return _to_device(np.bincount(a, minlength=minlength).astype(np.int64), input)
    w = _host(weights)
    if w.shape != a.shape:
        raise _C.ShapeError(f"[bincount] weights of shape {list(w.shape)} do not match input {list(a.shape)}")
    out_dtype = weights.dtype if weights.is_floating_point() else _C.dtype.float64
    return _to_device(np.bincount(a, weights=w, minlength=minlength), input, out_dtype)


def count_nonzero(input, dim=None):
    """The number of non-zero elements (int64), over all elements or along dim(s)."""
    _check_tensor("count_nonzero", input)
    nz = input != 0
    return nz.sum() if dim is None else nz.sum(dim)


def multinomial(input, num_samples, replacement=False, generator=None):
    """Draws category indices from rows of non-negative weights (1-D or 2-D input), with
    bigmodel's generator (so manual_seed makes it reproducible). Without replacement it uses
    exponential-race keys (log u / p), whose top-k is a draw without replacement."""
    _check_tensor("multinomial", input)
    if input.ndim not in (1, 2) or not input.is_floating_point():
        raise _C.InvalidArgumentError(f"[multinomial] expected a 1-D or 2-D float tensor, got {input.dtype} "
                                      f"of shape {list(input.shape)}")
    p = _host(input).astype(np.float64).reshape(-1, input.shape[-1])
    n = p.shape[1]
    if num_samples <= 0:
        raise _C.InvalidArgumentError(f"[multinomial] num_samples must be positive, got {num_samples}")
    if not np.isfinite(p).all() or (p < 0).any() or (p.sum(1) <= 0).any():
        raise _C.InvalidArgumentError("[multinomial] weights must be finite, non-negative, with a positive sum")
    if not replacement and num_samples > (p > 0).sum(1).min():
        raise _C.InvalidArgumentError(f"[multinomial] can't draw {num_samples} samples without replacement from "
                                      f"{int((p > 0).sum(1).min())} non-zero categories")
    u = _host(_C.rand(p.shape[0], num_samples if replacement else n, generator=generator,
                      dtype=_C.dtype.float64))
    if replacement:
        cdf = np.cumsum(p, 1)
        cdf /= cdf[:, -1:]
        out = np.stack([np.searchsorted(cdf[r], u[r], side="right") for r in range(p.shape[0])])
        out = np.minimum(out, n - 1)
    else:
        with np.errstate(divide="ignore"):
            keys = np.where(p > 0, np.log(np.maximum(u, 1e-300)) / p, -np.inf)
        out = np.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    out = out.astype(np.int64)
    return _to_device(out if input.ndim == 2 else out[0], input)


__all__ = ["argsort", "sort", "topk", "median", "unique", "cumsum", "cumprod", "bincount", "count_nonzero",
           "multinomial"]

for _name in ("argsort", "sort", "topk", "median", "unique", "cumsum", "cumprod", "count_nonzero"):
    setattr(_C.Tensor, _name, globals()[_name])
_C.Tensor.bincount = lambda self, weights=None, minlength=0: bincount(self, weights, minlength)
_C.Tensor.multinomial = lambda self, num_samples, replacement=False, generator=None: multinomial(
    self, num_samples, replacement, generator)
