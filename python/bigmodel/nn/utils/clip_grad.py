"""nn.utils: gradient clipping (clip_grad_norm_, clip_grad_value_) with PyTorch's semantics:
the norm is taken over all gradients as one vector, and every gradient is scaled in place."""
import math

from ... import _C
from ..._autograd import no_grad


def _grads(parameters):
    if isinstance(parameters, _C.Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _norm(t, norm_type):
    if math.isinf(norm_type) and norm_type > 0:
        return t.abs().max()
    return t.norm(norm_type)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scales all gradients by min(1, max_norm / (total_norm + 1e-6)); returns total_norm (a 0-d tensor)."""
    norm_type = float(norm_type)
    max_norm = float(max_norm)
    grads = _grads(parameters)
    if not grads:
        return _C.zeros([], dtype=_C.dtype.float32)
    with no_grad():
        norms = [_norm(g.detach(), norm_type) for g in grads]
        dtype = norms[0].dtype
        total = _norm(_C.stack([n.to(dtype=dtype) for n in norms]), norm_type)
        if error_if_nonfinite and not bool(_C.isfinite(total).all().item()):
            raise RuntimeError(f"[clip_grad_norm_] the total norm of order {norm_type} for gradients is "
                               "non-finite, so it cannot be clipped; pass error_if_nonfinite=False to skip this check")
        coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.to(dtype=g.dtype))
    return total


def clip_grad_value_(parameters, clip_value):
    """Clamps every gradient element into [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.copy_(g.clamp(min=-clip_value, max=clip_value))


__all__ = ["clip_grad_norm_", "clip_grad_value_"]
