"""nn.Parameter: a bm.Tensor flagged as a module parameter (requires_grad=True by default).

bigmodel's Tensor is a pybind11 class without a Python constructor, so a Python subclass
can't be instantiated. Parameter(data) therefore returns a plain bm.Tensor (a detached
alias of `data`) and records it in a weak registry; isinstance(t, nn.Parameter) consults
that registry, so code written for PyTorch keeps working.
"""
import weakref

from .. import _C

# id(tensor) -> weakref to it; an entry disappears when its tensor is collected.
_registry = {}


def _forget(key):
    def callback(_ref):
        _registry.pop(key, None)
    return callback


def _mark(t):
    key = id(t)
    _registry[key] = weakref.ref(t, _forget(key))
    return t


def is_parameter(obj):
    """True when `obj` is a tensor created by nn.Parameter (or registered as one)."""
    ref = _registry.get(id(obj))
    return ref is not None and ref() is obj


class _ParameterMeta(type):
    def __instancecheck__(cls, obj):
        return is_parameter(obj)


class Parameter(metaclass=_ParameterMeta):
    """Parameter(data, requires_grad=True) -> a leaf bm.Tensor sharing data's memory.

    A Module registers it when it is assigned as an attribute: `self.w = nn.Parameter(x)`.
    """

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            raise TypeError("[Parameter] expected a tensor, got None")
        if not isinstance(data, _C.Tensor):
            raise TypeError(f"[Parameter] expected a bigmodel Tensor, got {type(data).__name__}")
        t = data.detach()
        if requires_grad:
            if not t.is_floating_point():
                raise TypeError(f"[Parameter] only floating point tensors can require grad, got {t.dtype}")
            t.requires_grad_(True)
        return _mark(t)


__all__ = ["Parameter", "is_parameter"]
