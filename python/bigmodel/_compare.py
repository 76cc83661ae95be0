"""bm.isclose / bm.allclose / bm.equal, with PyTorch's semantics, built from tensor ops."""
from . import _C


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|input - other| <= atol + rtol * |other| elementwise (bool); infinities must match."""
    if input.dtype != other.dtype:
        raise TypeError(f"[isclose] expected both tensors to have the same dtype, got {input.dtype} and {other.dtype}")
    if not input.is_floating_point():
        return _C.eq(input, other)
    a, b = input.detach(), other.detach()
    close = _C.le(_C.abs(a - b), atol + rtol * _C.abs(b))
    close = _C.logical_or(close, _C.eq(a, b))  # equal infinities (inf - inf is nan)
    if equal_nan:
        close = _C.logical_or(close, _C.logical_and(_C.isnan(a), _C.isnan(b)))
    return close


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True when every element is close (broadcasting as isclose does)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).all().item())


def equal(input, other):
    """True when both have the same shape and the same elements."""
    return tuple(input.shape) == tuple(other.shape) and bool(_C.eq(input, other).all().item())


__all__ = ["isclose", "allclose", "equal"]
