"""bm.tensor / bm.as_tensor: build tensors from Python data and NumPy arrays."""
import builtins

import numpy as np

from . import _C

_NUMPY_OF = {
    _C.dtype.bool: np.bool_, _C.dtype.int32: np.int32, _C.dtype.int64: np.int64,
    _C.dtype.float16: np.float16, _C.dtype.float32: np.float32, _C.dtype.float64: np.float64,
}


def _to_array(data, dtype):
    """A NumPy array for `data` in the dtype bigmodel will use (the caller copies it)."""
    if isinstance(data, _C.Tensor):
        data = data.detach().cpu().numpy() if data.dtype != _C.dtype.bfloat16 else data.detach().float().numpy()
    if isinstance(data, (list, tuple)):
        data = [d.item() if isinstance(d, _C.Tensor) and d.numel() == 1 and d.ndim == 0 else
                (d.tolist() if isinstance(d, _C.Tensor) else d) for d in data]
    try:
        # asarray: a NumPy array is not copied here; _C._from_numpy_copy makes the one copy.
        arr = np.asarray(data)
    except ValueError as e:  # NumPy >= 1.24 refuses ragged lists itself
        raise ValueError(f"[tensor] expected a rectangular nested sequence of numbers: {e}") from None
    if arr.dtype == object:
        raise ValueError("[tensor] expected a rectangular nested sequence of numbers, got ragged or non-numeric data")
    if dtype is not None:
        target = np.float32 if dtype == _C.dtype.bfloat16 else _NUMPY_OF[dtype]
        return arr.astype(target, order="C", copy=False)
    if not isinstance(data, np.ndarray):
        # Python data: floats become float32 and ints int64, as in PyTorch.
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        elif arr.dtype.kind in "iu":
            arr = arr.astype(np.int64)
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 1:
        arr = arr.astype(np.int32)  # uint8 images: widened, since bigmodel has no uint8
    if arr.dtype.kind == "U" or arr.dtype.kind == "S":
        raise TypeError(f"[tensor] can't make a tensor from strings ({arr.dtype})")
    if arr.dtype.byteorder == ">":  # byte-swapped data: native order (from_numpy refuses it)
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr.copy(order="C") if not arr.flags.c_contiguous else arr


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of `data` (nested lists, scalars, NumPy arrays, tensors)."""
    arr = _to_array(data, dtype)
    t = _C._from_numpy_copy(arr)
    if dtype == _C.dtype.bfloat16:
        t = t.to(_C.dtype.bfloat16)
    if device is not None:
        t = t.to(device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data, dtype=None, device=None):
    """Like tensor(), but shares memory with a NumPy array or tensor when it can."""
    if isinstance(data, _C.Tensor):
        return data.to(dtype=dtype or data.dtype, device=device or data.device)
    if isinstance(data, np.ndarray) and dtype is None and device is None:
        try:
            return _C.from_numpy(data)
        except (TypeError, ValueError):
            pass
    return tensor(data, dtype=dtype, device=device)


__all__ = ["tensor", "as_tensor"]
del builtins
