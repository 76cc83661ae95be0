"""Grad-mode context managers: bm.no_grad(), bm.enable_grad(), bm.set_grad_enabled(b)."""
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


__all__ = ["no_grad", "enable_grad", "set_grad_enabled"]
