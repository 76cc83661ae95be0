"""bm.cuda: CUDA devices, streams, events and the caching allocator's statistics.

Without a GPU or driver everything imports, is_available() is False, and calls that need a
device raise RuntimeError saying so (a CPU-only build says "built without CUDA").
"""
import contextlib

from ._C import cuda as _cuda

Stream = _cuda.Stream
Event = _cuda.Event


def is_available():
    """True when bigmodel was built with CUDA and a GPU is visible."""
    return _cuda.is_available()


def device_count():
    """How many CUDA devices are visible (0 without a driver)."""
    return _cuda.device_count()


def built_with_cuda():
    return _cuda.built_with_cuda()


def current_device():
    return _cuda.current_device()


def set_device(device):
    _cuda.set_device(device)


def synchronize(device=None):
    """Waits until all work queued on the device has finished."""
    _cuda.synchronize(device)


def current_stream(device=None):
    return _cuda.current_stream(device)


def default_stream(device=None):
    return _cuda.default_stream(device)


def set_stream(stream):
    _cuda.set_stream(stream)


@contextlib.contextmanager
def stream(s):
    """Makes `s` the current stream of its device inside the block (None: no change)."""
    if s is None:
        yield
        return
    previous = _cuda.current_stream(s.device.index)
    _cuda.set_stream(s)
    try:
        yield
    finally:
        _cuda.set_stream(previous)


@contextlib.contextmanager
def device(d):
    """Makes device `d` current inside the block."""
    previous = _cuda.current_device()
    _cuda.set_device(d)
    try:
        yield
    finally:
        _cuda.set_device(previous)


def memory_stats(device=None):
    """Dict of the caching allocator's figures: allocated/reserved/peak bytes, fragmentation, counts."""
    return _cuda.memory_stats(device)


def memory_allocated(device=None):
    return _cuda.memory_allocated(device)


def max_memory_allocated(device=None):
    return _cuda.max_memory_allocated(device)


def memory_reserved(device=None):
    return _cuda.memory_reserved(device)


def max_memory_reserved(device=None):
    return _cuda.max_memory_reserved(device)


def reset_peak_memory_stats(device=None):
    _cuda.reset_peak_memory_stats(device)


def empty_cache():
    """Returns cached, unused device memory (and pinned staging buffers) to the driver."""
    _cuda.empty_cache()


# ---- what PyTorch scripts call on torch.cuda besides devices and memory ----
def manual_seed(seed):
    """Seeds the generator CUDA ops draw from (bigmodel has one Philox stream for all devices)."""
    from . import _C
    _C.manual_seed(seed)


manual_seed_all = manual_seed


def get_device_name(device=None):
    return _cuda.get_device_name(device) if hasattr(_cuda, "get_device_name") else "CUDA device"


def is_bf16_supported():
    return is_available()


def _make_amp_module():
    """bm.cuda.amp: autocast(enabled, dtype, cache_enabled) and GradScaler, as torch.cuda.amp."""
    import sys
    import types
    from .amp import GradScaler, autocast as _autocast
    from . import _C

    class autocast(_autocast):  # noqa: N801  (PyTorch's name)
        def __init__(self, enabled=True, dtype=_C.dtype.float16, cache_enabled=True):
            super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    mod = types.ModuleType(__name__ + ".amp", "torch.cuda.amp's names: autocast, GradScaler")
    mod.autocast, mod.GradScaler = autocast, GradScaler
    sys.modules[mod.__name__] = mod
    return mod


amp = _make_amp_module()
