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
