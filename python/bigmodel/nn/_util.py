"""Helpers shared by the nn modules: allocating parameter storage with optional dtype/device."""
from .. import _C


def empty_param_data(*shape, dtype=None, device=None):
    """An uninitialised tensor of `shape` (the caller initialises it in place)."""
    kw = {}
    if dtype is not None:
        kw["dtype"] = dtype
    if device is not None:
        kw["device"] = device
    return _C.empty(*shape, **kw)
