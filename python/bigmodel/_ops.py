"""Re-exports every op function bound in bigmodel._C (bm.add, bm.zeros, bm.matmul, ...)."""
from . import _C

_SKIP = {"Tensor", "dtype", "device", "Node", "OutOfMemoryError", "cuda"}
__all__ = []
for _name in dir(_C):
    if _name.startswith("_") or _name in _SKIP:
        continue
    globals()[_name] = getattr(_C, _name)
    __all__.append(_name)
