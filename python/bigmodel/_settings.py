"""The global settings PyTorch scripts set at the top (torch.set_num_threads,
set_default_dtype, use_deterministic_algorithms, set_printoptions, compile): real where
bigmodel has the setting, accepted and recorded where it has nothing to change."""
from . import _C

_default_dtype = [_C.dtype.float32]


def set_default_dtype(d):
    """Accepted for float32 (bigmodel's default); other defaults are not supported."""
    if d != _C.dtype.float32:
        raise NotImplementedError(f"[set_default_dtype] bigmodel's default float dtype is float32, got {d}")
    _default_dtype[0] = d


def get_default_dtype():
    return _default_dtype[0]


def set_num_threads(n):
    """Sets the number of CPU threads (OpenMP) the kernels use."""
    if not isinstance(n, int) or n < 1:
        raise _C.InvalidArgumentError(f"[set_num_threads] expected a positive int, got {n!r}")
    setter = getattr(_C, "_set_num_threads", None)
    if setter is not None:
        setter(n)
    _threads[0] = n


_threads = [None]


def get_num_threads():
    getter = getattr(_C, "_get_num_threads", None)
    if getter is not None:
        return getter()
    import os
    return _threads[0] or int(os.environ.get("OMP_NUM_THREADS", 0) or os.cpu_count() or 1)


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None, options=None,  # noqa: A001
            disable=False):
    """torch.compile's place: bigmodel has no graph compiler, so the model or function comes back
    unchanged (and scripts written for PyTorch 2 run as they are). Usable as a decorator too."""
    if model is None:
        return lambda m: m
    return model


def use_deterministic_algorithms(mode, warn_only=False):
    """Recorded only: bigmodel's CPU kernels are deterministic already."""
    _deterministic[0] = bool(mode)


_deterministic = [False]


def are_deterministic_algorithms_enabled():
    return _deterministic[0]


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """Accepted for compatibility; tensors print with bigmodel's fixed format."""
    return None


__all__ = ["set_default_dtype", "get_default_dtype", "set_num_threads", "get_num_threads", "compile",
           "use_deterministic_algorithms", "are_deterministic_algorithms_enabled", "set_printoptions"]
