"""PyTorch functions built from bigmodel's own ops (so autograd and every device come free):
elementwise composites (log2, tan, frac, addcmul, nan_to_num, atan via NumPy, ...), where(cond),
diag/diagonal, repeat_interleave, meshgrid, hstack/vstack, einsum, finfo/iinfo and bm.Size.
The rest of the torch namespace that is composed the same way is in _composite_more.py."""
import builtins
import math

import numpy as np

from . import _C

Tensor = _C.Tensor


# ---- small elementwise composites ----
def log2(input):
    return _C.log(input) * (1.0 / math.log(2.0))


def log10(input):
    return _C.log(input) * (1.0 / math.log(10.0))


def exp2(input):
    return _C.exp(input * math.log(2.0))


def tan(input):
    return _C.sin(input) / _C.cos(input)


def sinh(input):
    return (_C.exp(input) - _C.exp(-input)) * 0.5


def cosh(input):
    return (_C.exp(input) + _C.exp(-input)) * 0.5


def _host_unary(name, np_fn, deriv):
    """An op computed by NumPy on the host, with gradient grad * deriv(x) written with ops."""
    from .utils.function import Function

    class _Op(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            t = x.detach().cpu()
            a = (t.float() if t.dtype == _C.dtype.bfloat16 else t).numpy()
            with np.errstate(invalid="ignore", divide="ignore"):  # NaN out of the domain, as PyTorch
                out = _C._from_numpy_copy(np.array(np_fn(a.astype(np.float64)), order="C")).to(x.dtype)
            return out if x.device.type == "cpu" else out.to(x.device)

        @staticmethod
        def backward(ctx, grad):
            x, = ctx.saved_tensors
            return grad * deriv(x)
    _Op.__name__ = name.capitalize() + "Backward"

    def op(input):
        if not input.is_floating_point():
            input = input.float()
        return _Op.apply(input)
    op.__name__ = name
    op.__doc__ = f"Elementwise {name} (computed on the host with NumPy; differentiable)."
    return op


atan = _host_unary("atan", np.arctan, lambda x: 1.0 / (1.0 + x * x))
asin = _host_unary("asin", np.arcsin, lambda x: _C.rsqrt(1.0 - x * x))
acos = _host_unary("acos", np.arccos, lambda x: -_C.rsqrt(1.0 - x * x))


def atan2(input, other):
    """atan2(y, x) elementwise, with the quadrant; gradients through atan."""
    y, x = input, other
    base = atan(y / x)
    pi = math.pi
    adj = _C.where(x < 0, _C.where(y >= 0, pi, -pi), 0.0)
    zero_x = x == 0
    out = base + adj
    return _C.where(zero_x, _C.where(y > 0, pi / 2, _C.where(y < 0, -pi / 2, 0.0)), out)


def frac(input):
    return input - _C.trunc(input)


def addcmul(input, tensor1, tensor2, value=1):
    return input + value * tensor1 * tensor2


def addcdiv(input, tensor1, tensor2, value=1):
    return input + value * tensor1 / tensor2


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """NaN -> nan, +inf -> posinf, -inf -> neginf (default: the dtype's largest/smallest)."""
    if not input.is_floating_point():
        return input.clone()
    info = finfo(input.dtype)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    out = _C.where(_C.isnan(input), nan, input)
    out = _C.where(out == float("inf"), posinf, out)
    return _C.where(out == float("-inf"), neginf, out)


_where_c = _C.where


def where(condition, input=None, other=None):
    """where(cond, x, y) picks elementwise; where(cond) is nonzero(cond, as_tuple=True)."""
    if input is None and other is None:
        return _C.nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError("[where] expected both input and other, or neither")
    return _where_c(condition, input, other)


# ---- shape composites ----
def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal of dims (dim1, dim2) as the last dim (a copy, with gradients)."""
    if input.ndim < 2:
        raise _C.InvalidArgumentError(f"[diagonal] expected at least 2 dims, got shape {list(input.shape)}")
    d1, d2 = dim1 % input.ndim, dim2 % input.ndim
    if d1 == d2:
        raise _C.InvalidArgumentError(f"[diagonal] dim1 and dim2 must differ, both are {d1}")
    x = input.permute([d for d in range(input.ndim) if d not in (d1, d2)] + [d1, d2])
    r, c = x.shape[-2], x.shape[-1]
    n = max(0, min(r, c - offset) if offset >= 0 else min(r + offset, c))
    rows = np.arange(n) + (0 if offset >= 0 else -offset)
    cols = np.arange(n) + (offset if offset >= 0 else 0)
    flat = x.reshape(*x.shape[:-2], r * c)
    idx = _C._from_numpy_copy((rows * c + cols).astype(np.int64))
    if input.device.type != "cpu":
        idx = idx.to(input.device)
    return flat.index_select(flat.ndim - 1, idx)


def diag(input, diagonal=0):
    """1-D input: a square matrix with it on the given diagonal; 2-D input: that diagonal."""
    if input.ndim == 2:
        return globals()["diagonal"](input, diagonal)
    if input.ndim != 1:
        raise _C.InvalidArgumentError(f"[diag] expected a 1-D or 2-D tensor, got shape {list(input.shape)}")
    n = input.shape[0] + builtins.abs(diagonal)
    out = _C.zeros(n * n, dtype=input.dtype, device=input.device)
    start = diagonal if diagonal >= 0 else -diagonal * n
    idx = _C._from_numpy_copy((start + np.arange(input.shape[0]) * (n + 1)).astype(np.int64))
    if input.device.type != "cpu":
        idx = idx.to(input.device)
    return out.index_add(0, idx, input).reshape(n, n)


def repeat_interleave(input, repeats, dim=None):
    """Repeats each element `repeats` times (an int or a 1-D tensor of counts) along dim
    (the flattened input when dim is None)."""
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else dim % builtins.max(x.ndim, 1)
    if isinstance(repeats, Tensor) and repeats.numel() == 1:
        repeats = int(repeats.item())
    if isinstance(repeats, int):
        if repeats < 0:
            raise _C.InvalidArgumentError(f"[repeat_interleave] repeats must be non-negative, got {repeats}")
        shape = list(x.shape)
        e = x.unsqueeze(d + 1).expand(*shape[:d + 1], repeats, *shape[d + 1:])
        return e.reshape(*shape[:d], shape[d] * repeats, *shape[d + 1:])
    counts = repeats.detach().cpu().numpy().astype(np.int64)
    if counts.ndim != 1 or counts.shape[0] != x.shape[d] or (counts < 0).any():
        raise _C.InvalidArgumentError(f"[repeat_interleave] repeats of shape {list(counts.shape)} must be "
                                      f"non-negative, one per element of dim {d} (size {x.shape[d]})")
    idx = _C._from_numpy_copy(np.repeat(np.arange(x.shape[d]), counts).astype(np.int64))
    if x.device.type != "cpu":
        idx = idx.to(x.device)
    return x.index_select(d, idx)


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids from 1-D tensors (expanded views); indexing 'ij' (default) or 'xy'."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise _C.InvalidArgumentError(f"[meshgrid] indexing must be 'ij' or 'xy', got {indexing!r}")
    ts = list(tensors)
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = [t.numel() for t in ts]
    out = []
    for i, t in enumerate(ts):
        view = [1] * len(ts)
        view[i] = -1
        out.append(t.reshape(view).expand(*shape))
    if swap:
        out = [o.transpose(0, 1) for o in out]
        out[0], out[1] = out[1], out[0]
    return tuple(out)


def atleast_1d(t):
    return t.reshape(1) if t.ndim == 0 else t


def atleast_2d(t):
    return t.reshape(1, -1) if t.ndim < 2 else t


def hstack(tensors):
    ts = [atleast_1d(t) for t in tensors]
    return _C.cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors):
    return _C.cat([atleast_2d(t) for t in tensors], 0)


# ---- einsum ----
def _parse_einsum(equation, operands):
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise _C.InvalidArgumentError(f"[einsum] '{equation}' names {len(terms)} operands, got {len(operands)}")
    letters = set(c for c in eq if c.isalpha())
    spare = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in letters]
    ell = ""
    out_terms = []
    for term, op in zip(terms, operands):
        if "..." in term:
            n = op.ndim - (len(term) - 3)
            if n < 0:
                raise _C.InvalidArgumentError(f"[einsum] term '{term}' has more labels than dims {list(op.shape)}")
            ell = ell if len(ell) >= n else "".join(spare[:n])
            term = term.replace("...", ell[len(ell) - n:] if n else "")
        if len(term) != op.ndim or not term.isalpha():
            raise _C.InvalidArgumentError(f"[einsum] term '{term}' does not match operand of shape {list(op.shape)}")
        if len(set(term)) != len(term):
            raise NotImplementedError(f"[einsum] repeated label within one operand ('{term}') is not supported")
        out_terms.append(term)
    if arrow:
        rhs = rhs.replace("...", ell)
    else:  # implicit output: the ellipsis dims, then labels seen once, alphabetically
        joined = "".join(out_terms)
        rhs = ell + "".join(sorted(c for c in set(joined) if joined.count(c) == 1 and c not in ell))
    return out_terms, rhs


def _contract(a, ta, b, tb, keep):
    """a (labels ta) times b (labels tb), summing labels not in `keep`; returns (tensor, labels)."""
    batch = [c for c in ta if c in tb and c in keep]
    summed = [c for c in ta if c in tb and c not in keep]
    left = [c for c in ta if c not in tb]
    right = [c for c in tb if c not in ta]
    # Labels only on one side and not kept are summed away first.
    for lab in [c for c in left if c not in keep]:
        a, ta = a.sum(ta.index(lab)), ta.replace(lab, "")
    for lab in [c for c in right if c not in keep]:
        b, tb = b.sum(tb.index(lab)), tb.replace(lab, "")
    left = [c for c in left if c in keep]
    right = [c for c in right if c in keep]
    size = {}
    for t, lab in ((a, ta), (b, tb)):
        for c, s in zip(lab, t.shape):
            size[c] = builtins.max(size.get(c, 1), s)

    def prod(labels):
        return int(np.prod([size[c] for c in labels])) if labels else 1

    pa = a.permute([ta.index(c) for c in batch + left + summed])
    pa = pa.expand(*[size[c] for c in batch], *pa.shape[len(batch):])
    pb = b.permute([tb.index(c) for c in batch + summed + right])
    pb = pb.expand(*[size[c] for c in batch], *pb.shape[len(batch):])
    ma = pa.reshape(prod(batch), prod(left), prod(summed))
    mb = pb.reshape(prod(batch), prod(summed), prod(right))
    out = _C.bmm(ma, mb).reshape(*[size[c] for c in batch + left + right])
    return out, "".join(batch + left + right)


def einsum(equation, *operands):
    """Einstein summation, e.g. einsum('bij,bjk->bik', a, b); ellipses and implicit output
    are supported, labels repeated within one operand (diagonals) are not."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    terms, rhs = _parse_einsum(equation, operands)
    for c in rhs:
        if not any(c in t for t in terms):
            raise _C.InvalidArgumentError(f"[einsum] output label '{c}' does not appear in the inputs")
    cur, lab = operands[0], terms[0]
    for i in range(1, len(operands)):
        keep = set(rhs) | set("".join(terms[i + 1:]))
        cur, lab = _contract(cur, lab, operands[i], terms[i], keep)
    for c in [c for c in lab if c not in rhs]:
        cur, lab = cur.sum(lab.index(c)), lab.replace(c, "")
    return cur.permute([lab.index(c) for c in rhs]) if lab != rhs and rhs else cur


# ---- dtype information ----
class finfo:
    """Machine limits of a floating dtype: bits, eps, max, min, tiny, resolution."""

    def __init__(self, type=None):
        type = _C.dtype.float32 if type is None else type
        if type == _C.dtype.bfloat16:
            self.bits, self.eps, self.max, self.tiny, self.resolution = 16, 2.0 ** -7, 3.3895313892515355e38, \
                2.0 ** -126, 0.01
        elif type in (_C.dtype.float16, _C.dtype.float32, _C.dtype.float64):
            info = np.finfo({_C.dtype.float16: np.float16, _C.dtype.float32: np.float32,
                             _C.dtype.float64: np.float64}[type])
            self.bits, self.eps, self.max = info.bits, float(info.eps), float(info.max)
            self.tiny, self.resolution = float(info.tiny), float(info.resolution)
        else:
            raise TypeError(f"[finfo] expected a floating dtype, got {type}")
        self.min = -self.max
        self.smallest_normal = self.tiny
        self.dtype = str(type).split(".")[-1]

    def __repr__(self):
        return f"finfo(resolution={self.resolution}, min={self.min}, max={self.max}, eps={self.eps}, " \
               f"tiny={self.tiny}, dtype={self.dtype})"


class iinfo:
    """Limits of an integer dtype: bits, min, max."""

    def __init__(self, type):
        if type not in (_C.dtype.int32, _C.dtype.int64, _C.dtype.bool):
            raise TypeError(f"[iinfo] expected an integer dtype, got {type}")
        info = np.iinfo(np.int32 if type == _C.dtype.int32 else np.int64) if type != _C.dtype.bool else None
        self.bits, self.min, self.max = (8, 0, 1) if info is None else (info.bits, int(info.min), int(info.max))
        self.dtype = str(type).split(".")[-1]

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, bits={self.bits}, dtype={self.dtype})"


class Size(tuple):
    """A tensor shape: a tuple of ints with numel(), as torch.Size (t.shape is a plain tuple,
    which compares equal)."""

    def numel(self):
        return int(np.prod(self)) if self else 1

    def __repr__(self):
        return f"bigmodel.Size({list(self)})"


def _install():
    T = Tensor
    T.nelement = T.numel
    T.type_as = lambda self, other: self.to(other.dtype)
    T.log2, T.log10, T.tan, T.frac, T.exp2 = log2, log10, tan, frac, exp2
    T.sinh, T.cosh, T.atan, T.asin, T.acos, T.atan2 = sinh, cosh, atan, asin, acos, atan2
    T.addcmul = lambda self, t1, t2, value=1: addcmul(self, t1, t2, value)
    T.addcdiv = lambda self, t1, t2, value=1: addcdiv(self, t1, t2, value)

    def addcmul_(self, t1, t2, value=1):
        return self.add_(t1 * t2 * value)

    def addcdiv_(self, t1, t2, value=1):
        return self.add_(t1 / t2 * value)
    T.addcmul_, T.addcdiv_ = addcmul_, addcdiv_
    T.nan_to_num = nan_to_num
    T.diag, T.diagonal = diag, diagonal
    T.repeat_interleave = repeat_interleave


_install()

__all__ = ["log2", "log10", "exp2", "tan", "frac", "sinh", "cosh", "atan", "asin", "acos", "atan2", "addcmul",
           "addcdiv", "nan_to_num", "where", "diagonal", "diag", "repeat_interleave", "meshgrid", "atleast_1d",
           "atleast_2d", "hstack", "vstack", "einsum", "finfo", "iinfo", "Size"]
