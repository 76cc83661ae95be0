"""nn.utils: gradient clipping (clip_grad_norm_, clip_grad_value_) with PyTorch's semantics:
the norm is taken over all gradients as one vector, and every gradient is scaled in place.

clip_grad_norm_ takes the total norm with one multi-tensor reduction (_C._fused_norm) and
scales with one multi-tensor multiply (_C._fused_mul_) when the gradients share a device and
dtype and are contiguous (foreach=None, the default, or True); foreach=False (or gradients
that do not fit) takes one norm per gradient and one multiply per gradient, as before. The
fused norm sums in double in a fixed order, so it can differ from the per-gradient one in
the last bits."""
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


def _fusable(grads, norm_type):
    """None when one fused norm + multiply can take these gradients, else the reason."""
    if not (norm_type > 0):
        return f"norm_type {norm_type} (the fused norm takes p > 0 and inf)"
    return _C._fused_blocker(grads, any_floating=True)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scales all gradients by min(1, max_norm / (total_norm + 1e-6)); returns total_norm (a 0-d tensor)."""
    norm_type = float(norm_type)
    max_norm = float(max_norm)
    grads = _grads(parameters)
    if not grads:
        return _C.zeros([], dtype=_C.dtype.float32)
    fused = False
    if foreach is not False:
        why = _fusable(grads, norm_type)
        if why is not None and foreach:
            raise ValueError(f"[clip_grad_norm_] foreach=True needs gradients of one floating dtype on one device, "
                             f"contiguous, and norm_type > 0; got {why}")
        fused = why is None
    with no_grad():
        if fused:
            grads = [g.detach() for g in grads]
            total = _C._fused_norm(grads, norm_type)
        else:
            norms = [_norm(g.detach(), norm_type) for g in grads]
            dtype = norms[0].dtype
            total = _norm(_C.stack([n.to(dtype=dtype) for n in norms]), norm_type)
        if error_if_nonfinite and not bool(_C.isfinite(total).all().item()):
            raise RuntimeError(f"[clip_grad_norm_] the total norm of order {norm_type} for gradients is "
                               "non-finite, so it cannot be clipped; pass error_if_nonfinite=False to skip this check")
        coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
        if fused:
            _C._fused_mul_(grads, coef)
        else:
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
