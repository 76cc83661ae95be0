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


# In-place methods return the very object they were called on, as in PyTorch (so `p.add_(u)`
# on a Parameter gives the Parameter back, and `t.mul_(2) is t`).
def _returning_self(method):
    def inplace(self, *args, **kwargs):
        # NotImplemented (an operand type the operator does not take) goes back to Python,
        # which then tries the reflected operator or raises TypeError, as without the wrapper.
        r = method(self, *args, **kwargs)
        return r if r is NotImplemented else self
    inplace.__name__ = method.__name__
    inplace.__doc__ = method.__doc__
    return inplace


_INPLACE_DUNDERS = ("__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__", "__ipow__",
                    "__iand__", "__ior__", "__ixor__", "__imatmul__")
for _name in [n for n in dir(Tensor) if (n.endswith("_") and not n.startswith("_")) or n in _INPLACE_DUNDERS]:
    setattr(Tensor, _name, _returning_self(getattr(Tensor, _name)))


# copy.deepcopy and pickle: a tensor is rebuilt from a NumPy copy of its values (a
# `copy.deepcopy(model.state_dict())` snapshot, objects sent to another process).
def _deepcopy(self, memo):
    if id(self) in memo:
        return memo[id(self)]
    if not self.is_leaf:
        raise RuntimeError("[deepcopy] only tensors created explicitly by the user (graph leaves) support the "
                           "deepcopy protocol; use t.detach().clone()")
    t = self.detach().clone()
    if self.requires_grad:
        t.requires_grad_(True)
    if self.grad is not None:
        t.grad = self.grad.clone()
    memo[id(self)] = t
    return t


def _rebuild_tensor(array, dtype_name, device, requires_grad):
    from ._tensor import tensor
    t = tensor(array, dtype=getattr(_C.dtype, dtype_name))
    if device != "cpu":
        t = t.to(device)
    return t.requires_grad_(True) if requires_grad else t


def _reduce_ex(self, protocol):
    t = self.detach().cpu()
    arr = (t.float() if t.dtype == _C.dtype.bfloat16 else t).numpy().copy()
    return _rebuild_tensor, (arr, str(self.dtype).split(".")[-1], str(self.device), self.requires_grad)


Tensor.__deepcopy__ = _deepcopy
Tensor.__reduce_ex__ = _reduce_ex


# t.type(): the legacy type name ("bigmodel.FloatTensor"); t.type(dtype or name) converts.
_LEGACY_NAMES = {
    _C.dtype.float32: "FloatTensor", _C.dtype.float64: "DoubleTensor", _C.dtype.float16: "HalfTensor",
    _C.dtype.bfloat16: "BFloat16Tensor", _C.dtype.int64: "LongTensor", _C.dtype.int32: "IntTensor",
    _C.dtype.bool: "BoolTensor",
}
_DTYPE_OF_NAME = {name: dt for dt, name in _LEGACY_NAMES.items()}
_type_c = Tensor.type


def _type(self, dtype=None, non_blocking=False, **kwargs):
    if dtype is None:
        prefix = "bigmodel.cuda." if self.is_cuda else "bigmodel."
        return prefix + _LEGACY_NAMES[self.dtype]
    if isinstance(dtype, str):
        name = dtype.split(".")[-1]
        if name not in _DTYPE_OF_NAME:
            raise TypeError(f"[type] invalid type: {dtype!r}")
        out = self.to(_DTYPE_OF_NAME[name])
        return out.cuda() if ".cuda." in dtype else out
    if isinstance(dtype, type) and hasattr(dtype, "_legacy_dtype"):
        return self.to(dtype._legacy_dtype)
    return _type_c(self, dtype)


Tensor.type = _type


class _LegacyTensorType(type):
    """bm.FloatTensor(...), bm.LongTensor([1, 2]), isinstance(t, bm.FloatTensor): PyTorch's
    legacy typed constructors (data -> a copy in that dtype; sizes -> uninitialised)."""

    def __call__(cls, *args):
        from ._tensor import tensor
        if len(args) == 1 and not isinstance(args[0], int) and hasattr(args[0], "__len__") and \
                not isinstance(args[0], tuple):
            return tensor(args[0], dtype=cls._legacy_dtype)
        return _C.empty(*args, dtype=cls._legacy_dtype) if args else _C.empty(0, dtype=cls._legacy_dtype)

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype == cls._legacy_dtype and not obj.is_cuda


def _legacy(name, dt):
    return _LegacyTensorType(name, (), {"_legacy_dtype": dt, "__module__": "bigmodel"})


FloatTensor = _legacy("FloatTensor", _C.dtype.float32)
DoubleTensor = _legacy("DoubleTensor", _C.dtype.float64)
HalfTensor = _legacy("HalfTensor", _C.dtype.float16)
BFloat16Tensor = _legacy("BFloat16Tensor", _C.dtype.bfloat16)
LongTensor = _legacy("LongTensor", _C.dtype.int64)
IntTensor = _legacy("IntTensor", _C.dtype.int32)
BoolTensor = _legacy("BoolTensor", _C.dtype.bool)


# memory_format=: accepted (bigmodel has one layout, row-major contiguous), so scripts tuned
# with channels_last run unchanged.
class memory_format:
    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return "bigmodel." + self._name


contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
preserve_format = memory_format("preserve_format")
_contiguous_c = Tensor.contiguous
_to_c = Tensor.to


def _contiguous(self, memory_format=None):
    return _contiguous_c(self)


def _to(self, *args, **kwargs):
    if "memory_format" in kwargs or "non_blocking" in kwargs or "copy" in kwargs:
        kwargs.pop("memory_format", None)
        kwargs.pop("non_blocking", None)
        copy = kwargs.pop("copy", False)
        out = _to_c(self, *args, **kwargs)
        return out.clone() if copy and out._is_defined() and out.data_ptr() == self.data_ptr() else out
    return _to_c(self, *args, **kwargs)


Tensor.contiguous = _contiguous
Tensor.to = _to


_backward_c = Tensor.backward


def _backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulates the gradient of this tensor into the leaves' .grad. create_graph=True records
    the backward pass (for second derivatives)."""
    if inputs is not None:
        raise NotImplementedError("[backward] the inputs= argument is not supported; use bm.autograd.grad")
    if create_graph:
        import warnings
        warnings.warn("[backward] create_graph=True makes each leaf's .grad hold a graph that refers back to the "
                      "leaf: a reference cycle. Prefer bm.autograd.grad(..., create_graph=True), or set the leaves' "
                      ".grad to None after use.", UserWarning, stacklevel=2)
    return _backward_c(self, gradient, retain_graph, create_graph)


Tensor.backward = _backward
