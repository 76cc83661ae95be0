"""More of the torch namespace composed from bigmodel's ops (autograd and devices come free):
shape helpers (ravel, moveaxis, tile, tensordot, tensor_split, rot90, kron, ...), math and
statistics (cdist, logaddexp, quantile, kthvalue, cov, histc, cummax, logcumsumexp, ...),
scatter_reduce, searchsorted, normal with tensor arguments, and the matching Tensor methods.
The global settings scripts set (set_num_threads, ...) are in _settings.py."""
import math

import numpy as np

from . import _C
from ._composite import Size, acos, asin, atan, atan2, diag, diagonal, meshgrid

Tensor = _C.Tensor
_kth_t = None  # set by _late_init, once _sort_scan's return types exist


# ---- more shape and math helpers ----
def ravel(input):
    return input.reshape(-1)


def moveaxis(input, source, destination):
    if isinstance(source, int):
        return input.movedim(source, destination)
    src = [d % input.ndim for d in source]
    dst = [d % input.ndim for d in destination]
    order = [d for d in range(input.ndim) if d not in src]
    for s_, d_ in sorted(zip(dst, src)):
        order.insert(s_, d_)
    return input.permute(order)


def tile(input, dims):
    dims = tuple(dims)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    x = input.reshape((1,) * (len(dims) - input.ndim) + tuple(input.shape))
    return x.repeat(*dims)


def broadcast_tensors(*tensors):
    shape = ()
    for t in tensors:
        shape = tuple(np.broadcast_shapes(shape, tuple(t.shape)))
    return tuple(t.expand(*shape) for t in tensors)


def broadcast_shapes(*shapes):
    return Size(np.broadcast_shapes(*[tuple(s) for s in shapes]))


def tensordot(a, b, dims=2):
    if isinstance(dims, int):
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = [list(d) if isinstance(d, (list, tuple)) else [d] for d in dims]
    da, db = [d % a.ndim for d in da], [d % b.ndim for d in db]
    keep_a = [d for d in range(a.ndim) if d not in da]
    keep_b = [d for d in range(b.ndim) if d not in db]
    k = int(np.prod([a.shape[d] for d in da])) if da else 1
    ma = a.permute(keep_a + da).reshape(-1, k)
    mb = b.permute(db + keep_b).reshape(k, -1)
    return (ma @ mb).reshape(*[a.shape[d] for d in keep_a], *[b.shape[d] for d in keep_b])


def trace(input):
    return diagonal(input).sum()


def cross(input, other, dim=None):
    if dim is None:
        dims = [d for d in range(input.ndim) if input.shape[d] == 3]
        if not dims:
            raise _C.ShapeError(f"[cross] no dim of size 3 in shape {list(input.shape)}")
        dim = dims[0]
    if input.shape[dim] != 3 or other.shape[dim] != 3:
        raise _C.ShapeError(f"[cross] dim {dim} must have size 3, got {list(input.shape)} and {list(other.shape)}")
    a0, a1, a2 = input.unbind(dim)
    b0, b1, b2 = other.unbind(dim)
    return _C.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], dim)


def diff(input, n=1, dim=-1):
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise _C.InvalidArgumentError(f"[diff] n must be a non-negative int, got {n!r}")
    out = input
    for _ in range(min(n, input.shape[dim] if input.ndim else 0)):
        m = out.shape[dim]
        out = out.narrow(dim, 1, m - 1) - out.narrow(dim, 0, m - 1)
    return out


def cdist(x1, x2, p=2.0):
    """Pairwise p-norm distances between the rows of x1 [..., P, M] and x2 [..., R, M]."""
    d = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    if p == 2.0:
        return _C.sqrt(_C.clamp_min((d * d).sum(-1), 0.0))
    if p == 1.0:
        return _C.abs(d).sum(-1)
    if math.isinf(p):
        return _C.abs(d).amax(-1)
    return _C.abs(d).pow(p).sum(-1).pow(1.0 / p)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    from .nn.functional import cosine_similarity as cs
    return cs(x1, x2, dim, eps)


def logaddexp(input, other):
    m = _C.maximum(input, other)
    return m + _C.log1p(_C.exp(-_C.abs(input - other)))


def xlogy(input, other):
    return _C.where(input == 0, 0.0, input * _C.log(other))


def true_divide(input, other):
    return input / other


def float_power(input, exponent):
    return input.double() ** (exponent.double() if isinstance(exponent, Tensor) else exponent)


def fmax(input, other):
    return _C.where(_C.isnan(other), input, _C.where(_C.isnan(input), other, _C.maximum(input, other)))


def fmin(input, other):
    return _C.where(_C.isnan(other), input, _C.where(_C.isnan(input), other, _C.minimum(input, other)))


def deg2rad(input):
    return input * (math.pi / 180.0)


def rad2deg(input):
    return input * (180.0 / math.pi)


def nansum(input, dim=None, keepdim=False):
    x = _C.where(_C.isnan(input), 0.0, input)
    return x.sum() if dim is None else x.sum(dim, keepdim=keepdim)


def nanmean(input, dim=None, keepdim=False):
    valid = ~_C.isnan(input)
    n = valid.sum() if dim is None else valid.sum(dim, keepdim=keepdim)
    return nansum(input, dim, keepdim) / n


def var_mean(input, dim=None, unbiased=True, keepdim=False, correction=None):
    args = {} if dim is None else {"dim": dim, "keepdim": keepdim}
    unb = unbiased if correction is None else bool(correction)
    v = input.var(unbiased=unb, **args) if dim is not None else input.var(unbiased=unb)
    return v, (input.mean(**args) if dim is not None else input.mean())


def std_mean(input, dim=None, unbiased=True, keepdim=False, correction=None):
    v, m = var_mean(input, dim, unbiased, keepdim, correction)
    return _C.sqrt(v), m


def argwhere(input):
    return _C.nonzero(input)


def take_along_dim(input, indices, dim=None):
    if dim is None:
        return input.reshape(-1).gather(0, indices.reshape(-1))
    shape = list(np.broadcast_shapes(tuple(s if i != dim % input.ndim else 1 for i, s in enumerate(input.shape)),
                                     tuple(s if i != dim % input.ndim else 1 for i, s in enumerate(indices.shape))))
    xs, ix = list(shape), list(shape)
    xs[dim % input.ndim], ix[dim % input.ndim] = input.shape[dim], indices.shape[dim]
    return input.expand(*xs).gather(dim, indices.expand(*ix))


def baddbmm(input, batch1, batch2, beta=1, alpha=1):
    out = _C.bmm(batch1, batch2)
    out = out * alpha if alpha != 1 else out
    return out if beta == 0 else out + (input * beta if beta != 1 else input)


def tril_indices(row, col, offset=0, dtype=None, device=None):
    r, c = np.tril_indices(row, offset, col)
    t = _C._from_numpy_copy(np.stack([r, c]).astype(np.int64))
    return t.to(dtype or _C.dtype.int64).to(device or "cpu")


def triu_indices(row, col, offset=0, dtype=None, device=None):
    r, c = np.triu_indices(row, offset, col)
    t = _C._from_numpy_copy(np.stack([r, c]).astype(np.int64))
    return t.to(dtype or _C.dtype.int64).to(device or "cpu")


def searchsorted(sorted_sequence, values, out_int32=False, right=False, side=None):
    """Indices where `values` would be inserted to keep each row of sorted_sequence sorted."""
    side = side or ("right" if right else "left")
    seq = sorted_sequence.detach().cpu().numpy()
    vals = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    if seq.ndim == 1:
        out = np.searchsorted(seq, vals, side=side)
    else:
        out = np.stack([np.searchsorted(s, v, side=side) for s, v in zip(seq.reshape(-1, seq.shape[-1]),
                                                                         vals.reshape(-1, vals.shape[-1]))])
        out = out.reshape(vals.shape)
    t = _C._from_numpy_copy(np.array(out.astype(np.int32 if out_int32 else np.int64), order="C"))
    return t if sorted_sequence.device.type == "cpu" else t.to(sorted_sequence.device)


def bucketize(input, boundaries, out_int32=False, right=False):
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def isin(elements, test_elements, invert=False):
    e = elements.detach().cpu().numpy()
    t = test_elements.detach().cpu().numpy() if isinstance(test_elements, Tensor) else np.asarray(test_elements)
    out = _C._from_numpy_copy(np.array(np.isin(e, t, invert=invert), order="C"))
    return out if elements.device.type == "cpu" else out.to(elements.device)


def kthvalue(input, k, dim=-1, keepdim=False):
    """The k-th smallest value (1-based) along dim, with its index."""
    from ._sort_scan import argsort
    d = dim % max(input.ndim, 1)
    if not 1 <= k <= (input.shape[d] if input.ndim else 1):
        raise _C.InvalidArgumentError(f"[kthvalue] k={k} is out of range for dim {d} of shape {list(input.shape)}")
    idx = argsort(input, d).narrow(d, k - 1, 1).contiguous()
    vals = input.gather(d, idx)
    if not keepdim:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    return _kth_t(vals, idx)


def quantile(input, q, dim=None, keepdim=False, interpolation="linear"):
    """Quantiles by linear interpolation between the sorted values (differentiable through sort)."""
    from ._sort_scan import sort
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else dim % x.ndim
    n = x.shape[d]
    v = sort(x, d).values
    qs = q.tolist() if isinstance(q, Tensor) else q
    scalar = not isinstance(qs, (list, tuple))
    outs = []
    for qq in ([qs] if scalar else qs):
        if not 0 <= qq <= 1:
            raise _C.InvalidArgumentError(f"[quantile] q must be in [0, 1], got {qq}")
        pos = qq * (n - 1)
        lo, hi = int(math.floor(pos)), int(math.ceil(pos))
        a, b = v.narrow(d, lo, 1), v.narrow(d, hi, 1)
        if interpolation == "lower":
            r = a
        elif interpolation == "higher":
            r = b
        elif interpolation == "nearest":
            r = v.narrow(d, int(round(pos)), 1)
        elif interpolation == "midpoint":
            r = (a + b) * 0.5
        else:
            r = a + (b - a) * (pos - lo)
        if dim is None:
            r = r.reshape(()) if not keepdim else r.reshape([1] * input.ndim)
        elif not keepdim:
            r = r.squeeze(d)
        outs.append(r)
    return outs[0] if scalar else _C.stack(outs, 0)


def column_stack(tensors):
    return _C.cat([t.reshape(-1, 1) if t.ndim <= 1 else t for t in tensors], 1)


def dstack(tensors):
    ts = [t.reshape(1, -1, 1) if t.ndim <= 1 else (t.unsqueeze(-1) if t.ndim == 2 else t) for t in tensors]
    return _C.cat(ts, 2)


def is_floating_point(input):
    return input.is_floating_point()


def is_nonzero(input):
    if input.numel() != 1:
        raise RuntimeError(f"[is_nonzero] a tensor with {input.numel()} elements cannot be converted to Scalar")
    return bool(input.item())


_normal_c = _C.normal


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """normal(mean, std, size) with numbers, or elementwise means/stds given as tensors
    (broadcast together; the draw is not differentiated, as in PyTorch)."""
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        return _normal_c(mean, std, size, generator=generator, dtype=dtype, device=device,
                         requires_grad=requires_grad)
    like = mean if isinstance(mean, Tensor) else std
    shape = np.broadcast_shapes(tuple(mean.shape) if isinstance(mean, Tensor) else (),
                                tuple(std.shape) if isinstance(std, Tensor) else ())
    from ._autograd import no_grad
    with no_grad():
        eps = _C.randn(*shape, generator=generator, dtype=like.dtype, device=like.device) if shape else \
            _C.randn(1, generator=generator, dtype=like.dtype, device=like.device).reshape(())
        return mean + eps * std


# ---- more of the torch namespace, composed ----
def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """The last dim of input placed on a diagonal of new trailing (dim1, dim2) matrices."""
    n = input.shape[-1] + abs(offset)
    flat = input.reshape(-1, input.shape[-1])
    rows = _C.stack([diag(r, offset) for r in flat.unbind(0)], 0) if flat.shape[0] else \
        _C.zeros(0, n, n, dtype=input.dtype, device=input.device)
    out = rows.reshape(*input.shape[:-1], n, n)
    nd = out.ndim
    d1, d2 = dim1 % nd, dim2 % nd
    if (d1, d2) != (nd - 2, nd - 1):
        out = moveaxis(out, [nd - 2, nd - 1], [d1, d2])
    return out


def dist(input, other, p=2.0):
    d = (input - other).reshape(-1)
    from .linalg import vector_norm
    return vector_norm(d, p)


def logspace(start, end, steps, base=10.0, dtype=None, device=None, requires_grad=False):
    t = _C.linspace(start, end, steps, dtype=dtype or _C.dtype.float32, device=device)
    out = _C.pow(float(base), t) if hasattr(_C, "pow") else float(base) ** t
    return out.requires_grad_(True) if requires_grad else out


def rot90(input, k=1, dims=(0, 1)):
    k %= 4
    d0, d1 = dims
    if k == 0:
        return input.clone()
    if k == 1:
        return input.flip([d1]).transpose(d0, d1)
    if k == 2:
        return input.flip([d0, d1])
    return input.transpose(d0, d1).flip([d1])


def tensor_split(input, indices_or_sections, dim=0):
    n = input.shape[dim]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        if k <= 0 or k > n + 2 ** 20:
            raise _C.InvalidArgumentError(f"[tensor_split] sections must be in [1, {n + 2 ** 20}], got {k}")
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        bounds = list(np.cumsum([0] + sizes))
    else:
        idx = [int(i) for i in (indices_or_sections.tolist() if isinstance(indices_or_sections, Tensor)
                                else indices_or_sections)]
        bounds = [0] + [min(max(i if i >= 0 else i + n, 0), n) for i in idx] + [n]
    return tuple(input.narrow(dim, int(a), max(int(b) - int(a), 0)) for a, b in zip(bounds[:-1], bounds[1:]))


def hsplit(input, sections):
    return tensor_split(input, sections, 1 if input.ndim > 1 else 0)


def vsplit(input, sections):
    return tensor_split(input, sections, 0)


def aminmax(input, dim=None, keepdim=False):
    from ._sort_scan import _return_type
    t = _return_type("aminmax", ["min", "max"])
    if dim is None:
        return t(input.amin(list(range(input.ndim)) or [0], keepdim) if input.ndim else input.clone(),
                 input.amax(list(range(input.ndim)) or [0], keepdim) if input.ndim else input.clone())
    return t(input.amin(dim, keepdim), input.amax(dim, keepdim))


def cartesian_prod(*tensors):
    grids = meshgrid(*tensors, indexing="ij")
    return _C.stack([g.reshape(-1) for g in grids], 1) if len(tensors) > 1 else tensors[0].clone()


def combinations(input, r=2, with_replacement=False):
    import itertools
    n = input.shape[0]
    if not isinstance(r, int) or r < 0 or (with_replacement and r > 64):
        raise _C.InvalidArgumentError(f"[combinations] r must be a non-negative int (at most 64 with replacement), "
                                      f"got {r!r}")
    combos = list((itertools.combinations_with_replacement if with_replacement else itertools.combinations)(range(n), r))
    if not combos:
        return _C.zeros(0, r, dtype=input.dtype, device=input.device)
    idx = _C._from_numpy_copy(np.array(combos, dtype=np.int64).reshape(-1)).to(input.device)
    return input.index_select(0, idx).reshape(len(combos), r)


def kron(input, other):
    a, b = input, other
    nd = max(a.ndim, b.ndim)
    a = a.reshape((1,) * (nd - a.ndim) + tuple(a.shape))
    b = b.reshape((1,) * (nd - b.ndim) + tuple(b.shape))
    ai = a.reshape(*[s for d in a.shape for s in (d, 1)])
    bi = b.reshape(*[s for d in b.shape for s in (1, d)])
    return (ai * bi).reshape(*[x * y for x, y in zip(a.shape, b.shape)])


def cov(input, correction=1, fweights=None, aweights=None):
    if fweights is not None or aweights is not None:
        raise NotImplementedError("[cov] fweights and aweights are not supported")
    x = input if input.ndim == 2 else input.reshape(1, -1)
    n = x.shape[1]
    xc = x - x.mean(1, keepdim=True)
    c = (xc @ xc.t()) / max(n - correction, 0)
    return c if input.ndim == 2 else c.reshape(())


def corrcoef(input):
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = _C.sqrt(diagonal(c))
    return _C.clamp(c / (d.unsqueeze(1) * d.unsqueeze(0)), -1.0, 1.0)


def histc(input, bins=100, min=0, max=0):
    a = input.detach().cpu().float().numpy().reshape(-1) if input.dtype == _C.dtype.bfloat16 else \
        input.detach().cpu().numpy().reshape(-1)
    lo, hi = (float(a.min()), float(a.max())) if min == max and a.size else (float(min), float(max))
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    counts, _ = np.histogram(a[(a >= lo) & (a <= hi)], bins=bins, range=(lo, hi))
    return _C._from_numpy_copy(counts.astype(np.float64)).to(input.dtype).to(input.device)


def _cum_extreme(name, input, dim, better):
    from ._sort_scan import _return_type
    d = dim % max(input.ndim, 1)
    a = np.moveaxis(input.detach().cpu().numpy(), d, -1) if input.ndim else input.detach().cpu().numpy()[None]
    idx = np.zeros(a.shape, dtype=np.int64)
    best = a[..., :1].copy()
    for i in range(a.shape[-1]):
        take = better(a[..., i:i + 1], best) | (a[..., i:i + 1] == best)
        best = np.where(take, a[..., i:i + 1], best)
        idx[..., i:i + 1] = np.where(take, i, idx[..., i - 1:i] if i else 0)
    idx = np.moveaxis(idx, -1, d) if input.ndim else idx[0]
    it = _C._from_numpy_copy(np.array(idx, order="C")).to(input.device)
    return _return_type(name, ["values", "indices"])(input.gather(d, it) if input.ndim else input.clone(), it)


def cummax(input, dim):
    return _cum_extreme("cummax", input, dim, np.greater)


def cummin(input, dim):
    return _cum_extreme("cummin", input, dim, np.less)


def logcumsumexp(input, dim):
    from ._sort_scan import cumsum
    m = input.detach().amax(dim, True)
    m = _C.where(_C.isfinite(m), m, 0.0)
    return _C.log(cumsum(_C.exp(input - m), dim)) + m


def msort(input):
    from ._sort_scan import sort
    return sort(input, 0).values


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    if dim is not None:
        raise NotImplementedError("[unique_consecutive] dim is not supported")
    a = input.detach().cpu().numpy().reshape(-1)
    keep = np.ones(a.shape[0], dtype=bool)
    keep[1:] = a[1:] != a[:-1]
    vals = _C._from_numpy_copy(np.array(a[keep], order="C")).to(input.dtype).to(input.device)
    out = [vals]
    if return_inverse:
        out.append(_C._from_numpy_copy((np.cumsum(keep) - 1).reshape(tuple(input.shape)).astype(np.int64)))
    if return_counts:
        starts = np.flatnonzero(keep)
        out.append(_C._from_numpy_copy(np.diff(np.append(starts, a.shape[0])).astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def trapezoid(y, x=None, *, dx=None, dim=-1):
    n = y.shape[dim]
    left, right = y.narrow(dim, 0, n - 1), y.narrow(dim, 1, n - 1)
    if x is None:
        return ((left + right) * (0.5 * (1.0 if dx is None else dx))).sum(dim)
    return ((left + right) * 0.5 * diff(x, dim=dim if x.ndim == y.ndim else -1)).sum(dim)


trapz = trapezoid


def addbmm(input, batch1, batch2, beta=1, alpha=1):
    out = _C.bmm(batch1, batch2).sum(0)
    return out * alpha + input * beta if beta != 0 else out * alpha


def scatter_reduce(input, dim, index, src, reduce, include_self=True):
    """Reduces src into input at index along dim: 'sum', 'mean', 'prod', 'amax', 'amin'.
    sum and mean are differentiable (scatter_add); the others are computed on the host."""
    if reduce in ("sum", "mean"):
        base = input if include_self else input.scatter(dim, index, 0.0)
        out = base.scatter_add(dim, index, src)
        if reduce == "mean":
            ones = _C.ones_like(src)
            count = _C.zeros_like(input).scatter_add(dim, index, ones) + (1.0 if include_self else 0.0)
            out = out / _C.clamp_min(count, 1.0)
            if not input.is_floating_point():
                out = out.floor().to(input.dtype)
        return out
    if reduce not in ("prod", "amax", "amin"):
        raise _C.InvalidArgumentError(f"[scatter_reduce] reduce must be sum, prod, mean, amax or amin, got {reduce!r}")
    a = input.detach().cpu().numpy().copy()
    idx, sv = index.detach().cpu().numpy(), src.detach().cpu().numpy()
    d = dim % a.ndim
    pos = list(np.indices(idx.shape))
    pos[d] = idx
    ufunc = {"prod": np.multiply, "amax": np.maximum, "amin": np.minimum}[reduce]
    if not include_self:
        init = {"prod": 1, "amax": -np.inf, "amin": np.inf}[reduce]
        touched = np.zeros(a.shape, dtype=bool)
        touched[tuple(pos)] = True
        a = np.where(touched, np.array(init, dtype=a.dtype) if a.dtype.kind == "f" else
                     np.iinfo(a.dtype).min if reduce == "amax" else np.iinfo(a.dtype).max if reduce == "amin" else 1, a)
    ufunc.at(a, tuple(pos), sv[tuple(slice(0, s) for s in idx.shape)])
    return _C._from_numpy_copy(np.array(a, order="C")).to(input.dtype).to(input.device)


def index_fill(input, dim, index, value):
    return input.index_fill(dim, index, value)


def index_copy(input, dim, index, source):
    out = input.clone()
    sl = [slice(None)] * input.ndim
    sl[dim % input.ndim] = index
    out[tuple(sl)] = source
    return out


def poisson(input, generator=None):
    from .data.sampler import numpy_rng
    lam = input.detach().cpu().numpy()
    draws = numpy_rng(generator).poisson(lam).astype(lam.dtype)
    return _C._from_numpy_copy(np.array(draws, order="C")).to(input.device)


def sgn(input):
    return _C.sign(input)


def conj(input):
    return input


# ---- aliases and small elementwise helpers ----
def hypot(input, other):
    return _C.sqrt(input * input + other * other)


def copysign(input, other):
    mag = _C.abs(input)
    neg = (other < 0) if not isinstance(other, Tensor) or not other.is_floating_point() else \
        ((other < 0) | ((other == 0) & (1.0 / other < 0)))
    return _C.where(neg, -mag, mag)


def signbit(input):
    if not input.is_floating_point():
        return input < 0
    return (input < 0) | ((input == 0) & (1.0 / input < 0))


def isposinf(input):
    return input == float("inf")


def isneginf(input):
    return input == float("-inf")


def logit(input, eps=None):
    x = _C.clamp(input, eps, 1 - eps) if eps is not None else input
    return _C.log(x / (1 - x))


def erfc(input):
    return 1.0 - _C.erf(input)


def sinc(input):
    px = input * math.pi
    safe = _C.where(input == 0, 1.0, px)
    return _C.where(input == 0, 1.0, _C.sin(safe) / safe)


def heaviside(input, values):
    return _C.where(input > 0, 1.0, _C.where(input < 0, 0.0, values)).to(input.dtype)


def inner(input, other):
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    return tensordot(input, other, dims=([-1], [-1]))


def vdot(input, other):
    return (input * other).sum()


def diagflat(input, offset=0):
    return diag(input.reshape(-1), offset)


def matrix_power(input, n):
    from .linalg import inv
    if n == 0:
        eye = _C.eye(input.shape[-1], dtype=input.dtype, device=input.device)
        return eye.expand(*input.shape) if input.ndim > 2 else eye
    base = inv(input) if n < 0 else input
    out = None
    for _ in range(abs(n)):
        out = base if out is None else out @ base
    return out


def logdet(input):
    from .linalg import slogdet
    sign, logabs = slogdet(input)
    return _C.where(sign > 0, logabs, _C.where(sign == 0, float("-inf"), float("nan")))


def inverse(input):
    from .linalg import inv
    return inv(input)


def det(input):
    from .linalg import det as _det
    return _det(input)


def nanmedian(input, dim=None, keepdim=False):
    from ._sort_scan import median
    if dim is None:
        x = input.reshape(-1)
        x = x[~_C.isnan(x)]
        return median(x) if x.numel() else _C.full((), float("nan"), dtype=input.dtype)
    return median(input, dim, keepdim)  # NaN sorts last, so rows without NaN match PyTorch


def mode(input, dim=-1, keepdim=False):
    """The most frequent value along dim (the smallest on ties) and an index where it occurs."""
    from ._sort_scan import _return_type
    d = dim % max(input.ndim, 1)
    a = np.moveaxis(input.detach().cpu().numpy(), d, -1)
    flat = a.reshape(-1, a.shape[-1])
    vals, idxs = [], []
    for row in flat:
        u, c = np.unique(row, return_counts=True)
        v = u[np.argmax(c)]
        vals.append(v)
        idxs.append(int(np.flatnonzero(row == v)[-1]))
    shape = a.shape[:-1]
    vt = _C._from_numpy_copy(np.array(np.array(vals, dtype=a.dtype).reshape(shape), order="C")).to(input.device)
    it = _C._from_numpy_copy(np.array(np.array(idxs, dtype=np.int64).reshape(shape), order="C")).to(input.device)
    if keepdim:
        vt, it = vt.unsqueeze(d), it.unsqueeze(d)
    return _return_type("mode", ["values", "indices"])(vt, it)


# ---- Tensor methods ----
def _lerp_(self, end, weight):
    # EMA updates (`ema.lerp_(p, 1 - decay)`): start + weight * (end - start), in place.
    return self.add_((end - self) * weight)


def _unfold_method(self, dimension, size, step):
    """Tensor.unfold: the windows of `size` (stride `step`) along `dimension`, as a new last dim."""
    d = dimension % max(self.ndim, 1)
    n = (self.shape[d] - size) // step + 1
    idx = (np.arange(n)[:, None] * step + np.arange(size)[None, :]).reshape(-1)
    out = self.index_select(d, _C._from_numpy_copy(idx.astype(np.int64)).to(self.device))
    shape = list(self.shape)
    shape[d:d + 1] = [n, size]
    return out.reshape(shape).movedim(d + 1, -1)


def _isclose(a, b, rtol, atol, equal_nan):
    from ._compare import isclose
    return isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


def _allclose(a, b, rtol, atol, equal_nan):
    from ._compare import allclose
    return allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


def _no_grad():
    from ._autograd import no_grad
    return no_grad()


def _sum_to_size(t, size):
    size = tuple(size)
    lead = t.ndim - len(size)
    dims = list(range(lead)) + [lead + i for i, s in enumerate(size) if s == 1 and t.shape[lead + i] != 1]
    return (t.sum(dims, keepdim=True) if dims else t).reshape(size)

def _install():
    T = Tensor
    T.ravel, T.moveaxis, T.tile, T.diff, T.cross, T.trace = ravel, moveaxis, tile, diff, cross, trace
    T.true_divide, T.float_power, T.fmax, T.fmin, T.xlogy, T.logaddexp = true_divide, float_power, fmax, fmin, \
        xlogy, logaddexp
    T.argwhere, T.kthvalue, T.quantile, T.nansum, T.nanmean, T.isin = argwhere, kthvalue, quantile, nansum, \
        nanmean, isin
    T.baddbmm = baddbmm
    T.diag_embed, T.dist, T.rot90, T.tensor_split, T.hsplit, T.vsplit = diag_embed, dist, rot90, tensor_split, \
        hsplit, vsplit
    T.aminmax, T.kron, T.histc, T.cummax, T.cummin, T.logcumsumexp, T.msort = aminmax, kron, histc, cummax, \
        cummin, logcumsumexp, msort
    T.unique_consecutive, T.addbmm, T.scatter_reduce, T.sgn, T.conj = unique_consecutive, addbmm, scatter_reduce, \
        sgn, conj
    T.index_copy = index_copy
    T.hypot, T.copysign, T.signbit, T.isposinf, T.isneginf, T.logit, T.erfc, T.sinc = hypot, copysign, signbit, \
        isposinf, isneginf, logit, erfc, sinc
    T.heaviside, T.inner, T.vdot, T.diagflat, T.matrix_power, T.logdet, T.inverse, T.det = heaviside, inner, \
        vdot, diagflat, matrix_power, logdet, inverse, det
    T.nanmedian, T.mode, T.take_along_dim = nanmedian, mode, take_along_dim
    T.multiply, T.subtract, T.divide, T.swapdims = T.mul, T.sub, T.div, T.swapaxes
    T.positive = lambda self: self
    T.is_complex = lambda self: False
    T.is_signed = lambda self: self.dtype != _C.dtype.bool
    T.is_same_size = lambda self, other: tuple(self.shape) == tuple(other.shape)
    T.isclose = lambda self, other, rtol=1e-05, atol=1e-08, equal_nan=False: _isclose(self, other, rtol, atol,
                                                                                       equal_nan)
    T.allclose = lambda self, other, rtol=1e-05, atol=1e-08, equal_nan=False: _allclose(self, other, rtol, atol,
                                                                                         equal_nan)
    T.split_with_sizes = lambda self, split_sizes, dim=0: self.split(list(split_sizes), dim)
    T.narrow_copy = lambda self, dim, start, length: self.narrow(dim, start, length).clone()

    # In-place forms of out-of-place ops (the result written back with copy_, so autograd sees
    # a copy into self; an op whose backward needs the overwritten input then fails the version
    # check, as PyTorch's in-place rules require).
    def inplace(fn):
        def method(self, *args, **kwargs):
            return self.copy_(fn(self, *args, **kwargs))
        return method
    for name, fn in (("acos_", acos), ("asin_", asin), ("atan_", atan), ("arccos_", acos), ("arcsin_", asin),
                     ("arctan_", atan), ("atan2_", atan2), ("arctan2_", atan2), ("cosh_", T.cosh),
                     ("sinh_", T.sinh), ("tan_", T.tan), ("log2_", T.log2), ("log10_", T.log10), ("exp2_", T.exp2),
                     ("frac_", T.frac), ("fix_", T.trunc), ("cumsum_", T.cumsum), ("cumprod_", T.cumprod),
                     ("floor_divide_", T.floor_divide), ("fmod_", T.fmod), ("nan_to_num_", T.nan_to_num),
                     ("deg2rad_", deg2rad), ("rad2deg_", rad2deg), ("tril_", T.tril), ("triu_", T.triu),
                     ("sgn_", sgn), ("xlogy_", xlogy), ("true_divide_", true_divide), ("hypot_", hypot),
                     ("copysign_", copysign), ("logit_", logit), ("erfc_", erfc), ("sinc_", sinc),
                     ("multiply_", T.mul), ("subtract_", T.sub), ("divide_", T.div), ("baddbmm_", baddbmm),
                     ("addbmm_", addbmm), ("addmm_", T.addmm), ("logical_and_", T.logical_and),
                     ("logical_or_", T.logical_or), ("logical_xor_", T.logical_xor), ("eq_", T.eq), ("ne_", T.ne),
                     ("lt_", T.lt), ("le_", T.le), ("gt_", T.gt), ("ge_", T.ge)):
        setattr(T, name, inplace(fn))
    T.arccos, T.arcsin, T.arctan, T.arctan2 = acos, asin, atan, atan2
    T.index_copy_ = lambda self, dim, index, source: self.copy_(index_copy(self, dim, index, source))
    T.scatter_reduce_ = lambda self, dim, index, src, reduce, include_self=True: self.copy_(
        scatter_reduce(self, dim, index, src, reduce, include_self))
    T.sum_to_size = lambda self, *size: _sum_to_size(self, size[0] if len(size) == 1 and
                                                     isinstance(size[0], (tuple, list)) else size)

    def exponential_(self, lambd=1.0, generator=None):
        with _no_grad():
            u = _C.rand(*self.shape, generator=generator, dtype=self.dtype, device=self.device)
            return self.copy_(-_C.log1p(-u) / lambd)
    T.exponential_ = exponential_

    def log_normal_(self, mean=1.0, std=2.0, generator=None):
        with _no_grad():
            return self.copy_(_C.exp(_C.randn(*self.shape, generator=generator, dtype=self.dtype,
                                              device=self.device) * std + mean))
    T.log_normal_ = log_normal_
    T.lerp_ = _lerp_
    T.unfold = _unfold_method
    T.equal = lambda self, other: bool(_C.equal(self, other)) if hasattr(_C, "equal") else \
        (self.shape == other.shape and bool((self == other).all()))
    T.get_device = lambda self: -1 if self.device.type == "cpu" else (self.device.index or 0)
    T.pin_memory = lambda self, device=None: self  # host memory is already fine to copy from
    T.is_pinned = lambda self, device=None: False
    T.share_memory_ = lambda self: self
    T.clamp_min_ = lambda self, min: self.clamp_(min=min)
    T.clamp_max_ = lambda self, max: self.clamp_(max=max)

    def index_fill_(self, dim, index, value):
        with_dim = [slice(None)] * self.ndim
        with_dim[dim % self.ndim] = index
        self[tuple(with_dim)] = value
        return self
    T.index_fill_ = index_fill_
    T.index_fill = lambda self, dim, index, value: index_fill_(self.clone(), dim, index, value)

    def masked_scatter_(self, mask, source):
        n = int(mask.sum().item())
        self[mask.expand_as(self) if mask.shape != self.shape else mask] = source.reshape(-1)[:n]
        return self
    T.masked_scatter_ = masked_scatter_
    T.masked_scatter = lambda self, mask, source: masked_scatter_(self.clone(), mask, source)

    def fill_diagonal_(self, fill_value, wrap=False):
        n = min(self.shape)
        idx = _C.arange(n, device=self.device)
        self[tuple([idx] * self.ndim)] = fill_value
        return self
    T.fill_diagonal_ = fill_diagonal_




_install()


def _late_init():
    global _kth_t
    from ._sort_scan import _return_type
    _kth_t = _return_type("kthvalue", ["values", "indices"])


_late_init()
arccos, arcsin, arctan, arctan2 = acos, asin, atan, atan2

__all__ = ["ravel", "moveaxis", "tile", "broadcast_tensors", "broadcast_shapes", "tensordot", "trace", "cross",
           "diff", "cdist", "cosine_similarity", "logaddexp", "xlogy", "true_divide", "float_power", "fmax", "fmin",
           "deg2rad", "rad2deg", "nansum", "nanmean", "var_mean", "std_mean", "argwhere", "take_along_dim",
           "baddbmm", "tril_indices", "triu_indices", "searchsorted", "bucketize", "isin", "kthvalue", "quantile",
           "column_stack", "dstack", "is_floating_point", "is_nonzero", "normal", "diag_embed", "dist", "logspace",
           "rot90", "tensor_split", "hsplit", "vsplit", "aminmax", "cartesian_prod", "combinations", "kron", "cov",
           "corrcoef", "histc", "cummax", "cummin", "logcumsumexp", "msort", "unique_consecutive", "trapezoid",
           "trapz", "addbmm", "scatter_reduce", "index_fill", "index_copy", "poisson", "sgn", "conj", "arccos",
           "arcsin", "arctan", "arctan2", "hypot", "copysign", "signbit", "isposinf", "isneginf", "logit",
           "erfc", "sinc", "heaviside", "inner", "vdot", "diagflat", "matrix_power", "logdet", "inverse", "det",
           "nanmedian", "mode", "multiply", "subtract", "divide", "swapdims"]
multiply, subtract, divide, swapdims = _C.mul, _C.sub, _C.div, _C.swapaxes
