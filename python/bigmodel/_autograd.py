"""Grad-mode context managers: bm.no_grad(), bm.enable_grad(), bm.set_grad_enabled(b); and
anomaly detection: bm.autograd.detect_anomaly(), set_detect_anomaly(b), is_anomaly_enabled()."""
import functools

from . import _C


class _GradModeContext:
    """Sets grad mode on entry and restores it on exit; also works as a decorator."""

    _enabled = True

    def __enter__(self):
        self._prev = _C.is_grad_enabled()
        _C.set_grad_enabled(self._enabled)
        return self

    def __exit__(self, *exc):
        _C.set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradModeContext):
    """Disables gradient recording inside the block: `with bm.no_grad(): ...`."""
    _enabled = False


class enable_grad(_GradModeContext):
    """Re-enables gradient recording inside a no_grad block."""
    _enabled = True


class set_grad_enabled(_GradModeContext):
    """set_grad_enabled(False) switches grad mode at once, and restores it when used with `with`."""

    def __init__(self, mode):
        self._prev = _C.is_grad_enabled()
        self._enabled = bool(mode)
        _C.set_grad_enabled(self._enabled)

    def __enter__(self):
        return self


class inference_mode(_GradModeContext):
    """inference_mode(True) as a context manager or decorator: like no_grad (bigmodel has no
    separate inference tensors, so outputs are ordinary tensors that simply record no graph)."""

    _depth = 0

    def __init__(self, mode=True):
        self.mode = bool(mode)
        self._enabled = not self.mode

    def __enter__(self):
        inference_mode._depth += 1 if self.mode else 0
        return super().__enter__()

    def __exit__(self, *exc):
        inference_mode._depth -= 1 if self.mode else 0
        return super().__exit__(*exc)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(self.mode):
                return fn(*args, **kwargs)
        return wrapper


def is_inference_mode_enabled():
    """Whether an inference_mode block is active."""
    return inference_mode._depth > 0


class detect_anomaly:
    """Anomaly detection for the block (or the decorated function), on this thread only.

    While on, every recorded op checks its outputs for NaN/Inf (check_forward=True) and
    keeps the Python traceback of where it was created, and backward checks the gradient
    every node returns. The first failure raises RuntimeError naming the node (e.g.
    "DivBackward0") and that traceback. It slows every op down: use it to debug only.
    """

    def __init__(self, check_forward=True):
        self.check_forward = bool(check_forward)

    def __enter__(self):
        self._prev = (_C._is_anomaly_enabled(), _C._is_anomaly_check_forward_enabled())
        _C._set_anomaly_enabled(True, self.check_forward)
        return self

    def __exit__(self, *exc):
        _C._set_anomaly_enabled(*self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(self.check_forward):
                return fn(*args, **kwargs)
        return wrapper


class set_detect_anomaly:
    """set_detect_anomaly(mode, check_forward=True) switches anomaly detection at once (this
    thread); used with `with`, the previous setting comes back on exit."""

    def __init__(self, mode, check_forward=True):
        self._prev = (_C._is_anomaly_enabled(), _C._is_anomaly_check_forward_enabled())
        _C._set_anomaly_enabled(bool(mode), bool(check_forward))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _C._set_anomaly_enabled(*self._prev)
        return False


def is_anomaly_enabled():
    """Whether anomaly detection is on in this thread."""
    return _C._is_anomaly_enabled()


def is_anomaly_check_forward_enabled():
    """Whether anomaly detection (when on) also checks forward outputs."""
    return _C._is_anomaly_check_forward_enabled()


__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_inference_mode_enabled", "detect_anomaly", "set_detect_anomaly",
           "is_anomaly_enabled", "is_anomaly_check_forward_enabled"]
