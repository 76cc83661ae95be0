"""bm.autocast: a context manager (and decorator) that turns mixed precision on for one
device type in the current thread. The state lives in C++ (core/amp.h) so the op front ends
can consult it; this class only saves and restores it, which makes regions nestable."""
import functools

from .. import _C

_LOWER = None  # filled lazily: (float16, bfloat16)


def _device_type(device_type):
    if not isinstance(device_type, str):
        raise TypeError(f"[autocast] device_type must be a str ('cpu' or 'cuda'), got {type(device_type).__name__}")
    kind = device_type.split(":")[0]
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"[autocast] device_type must be 'cpu' or 'cuda', got {device_type!r}")
    return kind


def is_autocast_enabled(device_type="cuda"):
    return _C._is_autocast_enabled(_device_type(device_type))


def get_autocast_dtype(device_type="cuda"):
    return _C._get_autocast_dtype(_device_type(device_type))


class autocast:
    """with bm.autocast("cpu", dtype=bm.bfloat16): ...

    Inside, matmul/linear/conv/attention run in `dtype` (float16 or bfloat16; default
    bfloat16 on CPU, float16 on CUDA), softmax, norms, losses and reductions in float32
    (see bigmodel/amp/__init__.py for the lists). Parameters stay float32: the casts are
    ordinary differentiable ops, so gradients reach the float32 master weights. Call
    backward() outside the region, as with PyTorch. enabled=False turns autocast off inside
    an enclosing region; leaving a region restores what was there before.
    """

    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
        self.device_type = _device_type(device_type)
        if dtype is not None and dtype not in (_C.dtype.float16, _C.dtype.bfloat16):
            raise TypeError(f"[autocast] dtype must be bigmodel.float16 or bigmodel.bfloat16, got {dtype}")
        self.fast_dtype = dtype if dtype is not None else _C._get_autocast_dtype(self.device_type)
        self._enabled = bool(enabled)
        self._saved = []  # a stack, so one instance can be entered again while active

    def __enter__(self):
        self._saved.append((_C._is_autocast_enabled(self.device_type), _C._get_autocast_dtype(self.device_type)))
        _C._set_autocast_dtype(self.device_type, self.fast_dtype)
        _C._set_autocast_enabled(self.device_type, self._enabled)
        return self

    def __exit__(self, *exc):
        enabled, dtype = self._saved.pop()
        _C._set_autocast_enabled(self.device_type, enabled)
        _C._set_autocast_dtype(self.device_type, dtype)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self._enabled):
                return fn(*args, **kwargs)
        return wrapped

    def __repr__(self):
        return f"autocast(device_type={self.device_type!r}, dtype={self.fast_dtype}, enabled={self._enabled})"
