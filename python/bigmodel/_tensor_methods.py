"""Tensor methods that are simplest in Python: tolist, iteration, formatting helpers."""
from . import _C

Tensor = _C.Tensor


def _tolist(self):
    t = self.detach().cpu()
    if t.dtype == _C.dtype.bfloat16:
        t = t.float()
    return t.numpy().tolist()


def _iter(self):
    if self.ndim == 0:
        raise TypeError("[iter] iteration over a 0-d tensor")
    return (self.select(0, i) for i in range(self.shape[0]))


def _bool(self):
    if self.numel() != 1:
        raise RuntimeError(f"[bool] the truth value of a tensor with {self.numel()} elements is ambiguous")
    return bool(self.item())


Tensor.tolist = _tolist
Tensor.__iter__ = _iter
Tensor.__bool__ = _bool
Tensor.__float__ = lambda self: float(self.item())
Tensor.__int__ = lambda self: int(self.item())
Tensor.__index__ = lambda self: int(self.item()) if not self.is_floating_point() else (_ for _ in ()).throw(
    TypeError("[index] only integer tensors of a single element can be converted to an index"))
Tensor.__hash__ = lambda self: id(self)
Tensor.__format__ = lambda self, spec: format(self.item(), spec) if self.ndim == 0 else repr(self)


# t.new_*(...): tensors with t's dtype and device unless told otherwise, as in PyTorch.
def _new_factory(make):
    def method(self, *size, dtype=None, device=None, requires_grad=False):
        if len(size) == 1 and isinstance(size[0], (tuple, list)):
            size = tuple(size[0])
        t = make(size, dtype=dtype or self.dtype, device=device or self.device)
        return t.requires_grad_(True) if requires_grad else t
    return method


def _new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
    t = _C.full(tuple(size), fill_value, dtype=dtype or self.dtype, device=device or self.device)
    return t.requires_grad_(True) if requires_grad else t


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    from ._tensor import tensor
    return tensor(data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)


Tensor.new_zeros = _new_factory(_C.zeros)
Tensor.new_ones = _new_factory(_C.ones)
Tensor.new_empty = _new_factory(_C.empty)
Tensor.new_full = _new_full
Tensor.new_tensor = _new_tensor
