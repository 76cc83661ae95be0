"""Helpers shared by the optimizers: argument checks, the per-step gradient (negated when
maximizing, with L2 weight decay folded in), the step counter kept as a 0-d tensor, and the
mixed-precision pieces of SGD/Adam/AdamW (float32 state and master copies of half parameters)."""
from .. import _C

_HALF = (_C.dtype.float16, _C.dtype.bfloat16)
_FUSED_PARAM_DTYPES = (_C.dtype.float32, _C.dtype.float64) + _HALF


def is_half(p):
    return p.dtype in _HALF


def state_dtype(p):
    """The dtype SGD/Adam/AdamW keep state in: float32 for float16/bfloat16 parameters, else p's."""
    return _C.dtype.float32 if p.dtype in _HALF else p.dtype


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


def zeros_state(p, dtype=None):
    """A zero buffer shaped like parameter p (its dtype unless given, its device), detached."""
    return _C.zeros_like(p.detach(), dtype=dtype) if dtype is not None else _C.zeros_like(p.detach())


def check_master_weights(opt, group, gi=None):
    """master_weights=True keeps float32 copies of float16/bfloat16 parameters only: a group
    holding another dtype is an error (give such parameters their own group)."""
    if not group.get("master_weights"):
        return
    for i, p in enumerate(group["params"]):
        if p.dtype not in _HALF:
            where = f"parameter {i}" + (f" of group {gi}" if gi is not None else " of the group")
            raise ValueError(f"[{opt}] master_weights=True keeps float32 master copies of float16/bfloat16 "
                             f"parameters, but {where} is {p.dtype} with shape {list(p.shape)}; put it in a "
                             "param group with master_weights=False")


def master_param(p, state):
    """state['master_param'] (float32 copy of half p), created from p on first use -- also when
    resuming from a state dict saved without master weights."""
    m = state.get("master_param")
    if m is None:
        m = p.detach().to(dtype=_C.dtype.float32).contiguous().clone()
        state["master_param"] = m
    return m


def working_param(p, state, master_weights):
    """The tensor the update runs on: the float32 master copy (master_weights), a float32 copy
    of a half parameter (written back by write_back), or p itself."""
    if master_weights:
        return master_param(p, state)
    if p.dtype in _HALF:
        return p.detach().to(dtype=_C.dtype.float32)
    return p.detach()


def write_back(p, param):
    """Rounds the float32 working copy of a half parameter into it (a no-op for p itself)."""
    if p.dtype in _HALF:
        p.detach().copy_(param)


def working_grad(p, param, maximize, weight_decay=0.0):
    """effective_grad for the working copy: a half gradient is widened to float32 (exactly), and
    L2 weight decay uses the working parameter (the master copy when there is one)."""
    g = p.grad.detach()
    if p.dtype in _HALF:
        g = g.to(dtype=_C.dtype.float32)
    if maximize:
        g = g.neg()
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)
    return g



def fused_blocker(tensors, state_tensors=()):
    """None when one _C._fused_* call can take these parameters + gradients (`tensors`) and
    their state (`state_tensors`, masters included), else the reason."""
    if not tensors:
        return "no tensors"
    why = _C._fused_blocker(tensors, any_floating=True)
    if why is not None:
        return why
    dt, dev = tensors[0].dtype, tensors[0].device
    if dt not in _FUSED_PARAM_DTYPES:
        return f"dtype {dt} (the fused kernels take float32, float64, float16 and bfloat16)"
    state_tensors = list(state_tensors)
    if state_tensors:
        why = _C._fused_blocker(state_tensors)
        if why is not None:
            return "state: " + why
        want = _C.dtype.float32 if dt in _HALF else dt
        s = state_tensors[0]
        if s.dtype != want or s.device != dev:
            return f"state of dtype {s.dtype} on {s.device} for {dt} parameters on {dev} (wants {want})"
    return None


def device_dtype_parts(params):
    """Indices of `params` split by (device, dtype), in first-seen order: a group that mixes
    dtypes (bfloat16 weights beside float32 norms) or devices makes one fused call per part."""
    parts = {}
    for i, p in enumerate(params):
        parts.setdefault((str(p.device), p.dtype), []).append(i)
    return list(parts.values())


def use_fused(opt_name, group, tensors, state_tensors=()):
    """Whether a group's step takes the multi-tensor path (_C._fused_*): by default when every
    parameter and gradient (`tensors`) shares one device and one dtype of float32/float64/
    float16/bfloat16, the state (`state_tensors`) is of that dtype (float32 for half
    parameters), and all are contiguous (checked in C++, so the check costs little per tensor);
    foreach=False or fused=False keeps the per-tensor loop; foreach=True / fused=True insist
    (ValueError when the tensors do not fit)."""
    fused, foreach = group.get("fused"), group.get("foreach")
    if fused is False or foreach is False or not tensors:
        return False
    why = fused_blocker(tensors, state_tensors)
    if why is not None and (fused or foreach):
        raise ValueError(f"[{opt_name}] fused=True/foreach=True needs every parameter and gradient on one device, "
                         "of one dtype (float32, float64, float16 or bfloat16), state of that dtype (float32 for "
                         f"float16/bfloat16 parameters), all contiguous; got {why}")
    return why is None
