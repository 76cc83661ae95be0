"""optim.SGD: stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

The update is PyTorch's, step for step:
    g = grad (negated when maximize) + weight_decay * p
    buf = g on the first step, else momentum * buf + (1 - dampening) * g
    g = g + momentum * buf (Nesterov) or buf
    p -= lr * g

foreach / fused (PyTorch's arguments; here one implementation): None (default) updates each
group with one multi-tensor kernel call (_C._fused_sgd_) when its parameters and gradients share
one device and one dtype (float32, float64, float16 or bfloat16), its buffers are of the state
dtype and all are contiguous, else tensor by tensor; False keeps the per-tensor loop; True
insists on the fused path. Both compute the same bits.

Mixed precision (float16/bfloat16 parameters): the momentum buffer is float32 and the step is the
float32 step on float(p), rounded back into p. master_weights=True (off by default, as in
PyTorch) keeps a float32 master copy, state['master_param'], that the step updates (p becomes its
rounding), so small updates accumulate; it is saved in state_dict() and made from p when a
loaded state lacks it. Only for float16/bfloat16 parameters (ValueError otherwise).
"""
from .. import _C
from ._common import (check_master_weights, device_dtype_parts, master_param, state_dtype, use_fused, working_grad,
                      working_param, write_back)
from .optimizer import Optimizer, required


class SGD(Optimizer):
    """SGD with momentum (PyTorch's rule); master_weights=True keeps float32 master copies of
    float16/bfloat16 parameters (see the module docstring)."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, fused=None, master_weights=False, skip_nonfinite=False):
        if lr is not required and lr < 0.0:
            raise ValueError(f"[SGD] invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"[SGD] invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"[SGD] invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("[SGD] Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, fused=fused,
                        master_weights=bool(master_weights))
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        check_master_weights("SGD", self.param_groups[-1], len(self.param_groups) - 1)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for gi, group in enumerate(self.param_groups):
            check_master_weights("SGD", group, gi)

    def _state_dtype(self, param):
        return state_dtype(param)

    def _update_group(self, group):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        master_weights = bool(group.get("master_weights"))
        check_master_weights("SGD", group)  # parameters may have changed dtype since
        params = [p for p in group["params"] if p.grad is not None]
        for p in params:
            if master_weights:
                master_param(p, self.state[p])
            elif p in self.state:
                self.state[p].pop("master_param", None)  # switched off: p is the truth again
        grads = [p.grad for p in params]
        bufs = [self.state[p].get("momentum_buffer") for p in params] if momentum != 0 else []
        masters = [self.state[p]["master_param"] for p in params] if master_weights else []
        parts = device_dtype_parts(params)
        pick = lambda xs, idx: [xs[i] for i in idx] if xs else []  # noqa: E731
        if all(use_fused("SGD", group, pick(params, idx) + pick(grads, idx),
                         [b for b in pick(bufs, idx) if b is not None] + pick(masters, idx)) for idx in parts):
            for idx in parts:
                new_bufs = _C._fused_sgd_(pick(params, idx), pick(grads, idx), pick(bufs, idx), lr=lr,
                                          momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                          nesterov=nesterov, maximize=maximize, master_params=pick(masters, idx))
                for i, b in zip(idx, new_bufs):
                    self.state[params[i]]["momentum_buffer"] = b
            return
        for p in params:
            state = self.state[p]
            # Half p: the float32 step on the master copy, or on float(p), rounded back at the end.
            param = working_param(p, state, master_weights)
            d_p = working_grad(p, param, maximize, weight_decay)
            if momentum != 0:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = d_p.clone()
                    state["momentum_buffer"] = buf
                else:
                    buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
                d_p = d_p.add(buf, alpha=momentum) if nesterov else buf
            param.add_(d_p, alpha=-lr)
            write_back(p, param)


__all__ = ["SGD"]
