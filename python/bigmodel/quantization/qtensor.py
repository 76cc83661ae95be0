"""QTensor: a symmetric int8 tensor (values in [-127, 127], zero point 0) with per-tensor or
per-channel float32 scales, and the functions that make and undo it.

bigmodel has no int8 dtype, so the values live packed four to an int32 word along the last
dim of a 2-D [rows, k] view (core/ops/quant.h): one byte per value in memory and in saved
files, and the layout the int8 GEMM reads directly.
"""
import math

import numpy as np

from .. import _C


def _check_float(x, op):
    if not isinstance(x, _C.Tensor):
        raise TypeError(f"[{op}] expected a Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"[{op}] expected a floating tensor, got {x.dtype}")


def _scale_tensor(scale, n, op):
    """A float32 tensor [n] of positive scales from a number, sequence, array or Tensor."""
    if isinstance(scale, _C.Tensor):
        s = scale.detach().to(_C.dtype.float64).reshape(-1).numpy()
    else:
        s = np.asarray(scale, dtype=np.float64).reshape(-1)
    if s.size == 1 and n != 1:
        s = np.full(n, s[0])
    if s.size != n:
        raise ValueError(f"[{op}] expected {n} scales, got {s.size}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"[{op}] scales must be finite and positive, got min {s.min() if s.size else None}")
    return _C._from_numpy_copy(np.ascontiguousarray(s.astype(np.float32)))


def _abs_max_rows(x2d):
    """max |x| of each row of a 2-D tensor, as float64 NumPy."""
    a = np.abs(x2d.detach().to(_C.dtype.float64).numpy())
    return a.max(axis=1) if a.shape[1] else np.zeros(a.shape[0])


def scale_from_absmax(absmax):
    """Symmetric int8 scale for a range [-absmax, absmax]: absmax / 127 (1.0 for all-zero
    data, so scales stay positive)."""
    absmax = np.asarray(absmax, dtype=np.float64)
    return np.where(absmax > 0, absmax / 127.0, 1.0)


class QTensor:
    """An int8 tensor of `shape` with float32 scales.

    data: Int32 [rows, ceil(k/4)] packed int8; scale: float32 [rows] (per channel) or [1]
    (per tensor); axis: the channel axis (per channel) or None. Per channel, rows are the
    channels and k the product of the other dims; per tensor, rows x k is the tensor viewed
    as [-1, shape[-1]].
    """

    def __init__(self, data, scale, shape, axis=None):
        self.data = data
        self.scale = scale
        self.shape = tuple(int(s) for s in shape)
        self.axis = axis
        self.rows, self.k = _view_2d(self.shape, axis)
        if tuple(data.shape) != (self.rows, _C._int8_words(self.k)) or data.dtype != _C.dtype.int32:
            raise ValueError(f"[QTensor] data {data.dtype} {list(data.shape)} does not hold int8 values of shape "
                             f"{list(self.shape)} (expected int32 [{self.rows}, {_C._int8_words(self.k)}])")

    @property
    def qscheme(self):
        return "per_tensor_symmetric" if self.axis is None else "per_channel_symmetric"

    def numel(self):
        return math.prod(self.shape)

    def nbytes(self):
        """Bytes of the int8 values (padding included) and the scales."""
        return self.data.numel() * 4 + self.scale.numel() * 4

    def int_repr(self):
        """The int8 values as a NumPy array of `shape`."""
        raw = np.ascontiguousarray(self.data.numpy()).view(np.int8).reshape(self.rows, -1)[:, :self.k]
        if self.axis is None:
            return raw.reshape(self.shape)
        moved = (self.shape[self.axis],) + tuple(s for i, s in enumerate(self.shape) if i != self.axis)
        return np.moveaxis(raw.reshape(moved), 0, self.axis)

    def dequantize(self):
        return dequantize(self)

    def __repr__(self):
        return f"QTensor(shape={list(self.shape)}, qscheme={self.qscheme}, axis={self.axis})"


def _view_2d(shape, axis):
    if axis is None:
        if len(shape) == 0:
            return 1, 1
        return math.prod(shape[:-1]), shape[-1]
    return shape[axis], math.prod(s for i, s in enumerate(shape) if i != axis)


def quantize_per_tensor(x, scale=None):
    """QTensor of x with one scale (default max|x| / 127)."""
    _check_float(x, "quantize_per_tensor")
    shape = tuple(x.shape)
    rows, k = _view_2d(shape, None)
    x2d = x.detach().reshape(rows, k)
    if scale is None:
        scale = float(scale_from_absmax(_abs_max_rows(x2d).max() if rows else 0.0))
    s = _scale_tensor(scale, 1, "quantize_per_tensor")
    return QTensor(_C._quantize_int8(x2d, s), s, shape, None)


def quantize_per_channel(x, scales=None, axis=0):
    """QTensor of x with one scale per index of `axis` (default max|x| / 127 of each channel)."""
    _check_float(x, "quantize_per_channel")
    if x.dim() == 0:
        raise ValueError("[quantize_per_channel] needs a tensor with at least one dim, got a 0-d tensor")
    if not isinstance(axis, int) or not -x.dim() <= axis < x.dim():
        raise ValueError(f"[quantize_per_channel] axis {axis!r} is out of range for shape {list(x.shape)}")
    axis = axis % x.dim()
    shape = tuple(x.shape)
    rows, k = _view_2d(shape, axis)
    x2d = x.detach().movedim(axis, 0).reshape(rows, k)
    if scales is None:
        scales = scale_from_absmax(_abs_max_rows(x2d))
    s = _scale_tensor(scales, rows, "quantize_per_channel")
    return QTensor(_C._quantize_int8(x2d, s), s, shape, axis)


def dequantize(q):
    """The float32 tensor a QTensor stands for (values * scales)."""
    if not isinstance(q, QTensor):
        raise TypeError(f"[dequantize] expected a QTensor, got {type(q).__name__}")
    flat = _C._dequantize_int8(q.data, q.k, q.scale)
    if q.axis is None:
        return flat.reshape(q.shape)
    moved = (q.shape[q.axis],) + tuple(s for i, s in enumerate(q.shape) if i != q.axis)
    return flat.reshape(moved).movedim(0, q.axis).contiguous()


def int8_matmul(a, b):
    """a [M, K] @ b[N, K]^T for QTensors (per-tensor or per-row a, per-tensor or per-channel-0 b),
    computed with int32 accumulation; returns float32 [M, N]."""
    for name, q in (("a", a), ("b", b)):
        if not isinstance(q, QTensor):
            raise TypeError(f"[int8_matmul] {name} must be a QTensor, got {type(q).__name__}")
        if len(q.shape) != 2 or q.axis not in (None, 0):
            raise ValueError(f"[int8_matmul] {name} must be 2-D, quantized per tensor or along axis 0, got "
                             f"{q!r}")
    if a.k != b.k:
        raise ValueError(f"[int8_matmul] shapes {list(a.shape)} and {list(b.shape)} (b transposed) cannot be "
                         f"multiplied ({a.k} != {b.k})")
    return _C._int8_gemm(a.data, b.data, a.k, a_scale=a.scale, b_scale=b.scale)


__all__ = ["QTensor", "quantize_per_tensor", "quantize_per_channel", "dequantize", "int8_matmul",
           "scale_from_absmax"]
