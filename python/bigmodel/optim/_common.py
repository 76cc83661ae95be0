"""Helpers shared by the optimizers: argument checks, the per-step gradient (negated when
maximizing, with L2 weight decay folded in) and the step counter kept as a 0-d tensor."""
from .. import _C


def check_non_negative(opt, **values):
    for name, v in values.items():
        if not v >= 0.0:
            raise ValueError(f"[{opt}] invalid {name} value: {v}")


def check_betas(opt, betas):
    for i, b in enumerate(betas):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"[{opt}] invalid beta parameter at index {i}: {b}")


def effective_grad(p, maximize, weight_decay=0.0):
    """The gradient the update uses: -grad when maximizing, plus weight_decay * p (L2 form)."""
    g = p.grad.detach()
    if maximize:
        g = g.neg()
    if weight_decay != 0:
        g = g.add(p.detach(), alpha=weight_decay)
    return g


def new_step():
    # PyTorch keeps 'step' as a float32 0-d tensor; the same layout round-trips with its checkpoints.
    return _C.zeros([], dtype=_C.dtype.float32)


def advance_step(state):
    """Increments state['step'] in place and returns the new count as a Python int."""
    step = state["step"]
    step.add_(1)
    return int(step.item())


def zeros_state(p):
    """A zero buffer shaped like parameter p (same dtype and device), detached."""
    return _C.zeros_like(p.detach())



def use_fused(opt_name, group, tensors):
    """Whether a group's step takes the multi-tensor path (_C._fused_*): by default when every
    tensor fits it (one device, one dtype of float32/float64, contiguous; checked in C++, so the
    check costs little per tensor); foreach=False or fused=False keeps the per-tensor loop;
    foreach=True / fused=True insist (ValueError when the tensors do not fit)."""
    fused, foreach = group.get("fused"), group.get("foreach")
    if fused is False or foreach is False or not tensors:
        return False
    why = _C._fused_blocker(tensors)
    if why is not None and (fused or foreach):
        raise ValueError(f"[{opt_name}] fused=True/foreach=True needs every parameter, gradient and state tensor "
                         f"on one device, of one dtype (float32 or float64) and contiguous; got {why}")
    return why is None
