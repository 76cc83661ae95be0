"""optim.SGD: stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

The update is PyTorch's, step for step:
    g = grad (negated when maximize) + weight_decay * p
    buf = g on the first step, else momentum * buf + (1 - dampening) * g
    g = g + momentum * buf (Nesterov) or buf
    p -= lr * g

foreach / fused (PyTorch's arguments; here one implementation): None (default) updates each
group with one multi-tensor kernel call (_C._fused_sgd_) when its parameters, gradients and
buffers share one device and dtype (float32/float64) and are contiguous, else tensor by tensor;
False keeps the per-tensor loop; True insists on the fused path. Both compute the same bits.
"""
from .. import _C
from ._common import effective_grad, use_fused
from .optimizer import Optimizer, required


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False, foreach=None, fused=None, skip_nonfinite=False):
        if lr is not required and lr < 0.0:
            raise ValueError(f"[SGD] invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"[SGD] invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"[SGD] invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("[SGD] Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, fused=fused)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _update_group(self, group):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        params = [p for p in group["params"] if p.grad is not None]
        grads = [p.grad for p in params]
        bufs = [self.state[p].get("momentum_buffer") for p in params] if momentum != 0 else []
        if use_fused("SGD", group, params + grads + [b for b in bufs if b is not None]):
            bufs = _C._fused_sgd_(params, grads, bufs, lr=lr, momentum=momentum, dampening=dampening,
                                  weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
            for p, b in zip(params, bufs):
                self.state[p]["momentum_buffer"] = b
            return
        for p in group["params"]:
            if p.grad is None:
                continue
            d_p = effective_grad(p, maximize, weight_decay)
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = d_p.clone()
                    state["momentum_buffer"] = buf
                else:
                    buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
                d_p = d_p.add(buf, alpha=momentum) if nesterov else buf
            p.detach().add_(d_p, alpha=-lr)


__all__ = ["SGD"]
