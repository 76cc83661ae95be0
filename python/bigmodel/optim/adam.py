"""optim.Adam and optim.AdamW, with PyTorch's update rules (and state layout):
    g = grad (negated when maximize);  Adam: g += weight_decay * p;  AdamW: p *= 1 - lr * weight_decay
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  amsgrad: vmax = max(vmax, v), v := vmax
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

foreach / fused (PyTorch's arguments; here one implementation): None (default) updates each
group with one multi-tensor kernel call (_C._fused_adam_) when its parameters, gradients and
state share one device and dtype (float32/float64) and are contiguous, else tensor by tensor;
False keeps the per-tensor loop; True insists on the fused path. Both compute the same bits
(state stays in the parameter dtype; there is no float32 master copy for half parameters).
"""
import math

from .. import _C
from ._common import advance_step, check_betas, check_non_negative, effective_grad, new_step, use_fused, zeros_state
from .optimizer import Optimizer


class Adam(Optimizer):
    _decoupled = False  # AdamW sets this: weight decay shrinks p directly instead of joining the gradient

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 maximize=False, foreach=None, fused=None, skip_nonfinite=False):
        name = type(self).__name__
        check_non_negative(name, **{"learning rate": lr, "epsilon": eps, "weight_decay": weight_decay})
        check_betas(name, betas)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, fused=fused)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _update_group(self, group):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
        if self._update_group_fused(group):
            return
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["exp_avg"] = zeros_state(p)
                state["exp_avg_sq"] = zeros_state(p)
                if amsgrad:
                    state["max_exp_avg_sq"] = zeros_state(p)
            param = p.detach()
            if self._decoupled:
                grad = effective_grad(p, maximize)
                if weight_decay != 0:
                    param.mul_(1 - lr * weight_decay)
            else:
                grad = effective_grad(p, maximize, weight_decay)
            t = advance_step(state)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
            exp_avg_sq.mul_(beta2).add_(grad * grad, alpha=1 - beta2)
            bias_correction1 = 1 - beta1 ** t
            bias_correction2_sqrt = math.sqrt(1 - beta2 ** t)
            second = exp_avg_sq
            if amsgrad:
                if "max_exp_avg_sq" not in state:  # amsgrad switched on after some steps
                    state["max_exp_avg_sq"] = zeros_state(p)
                vmax = state["max_exp_avg_sq"]
                vmax.copy_(vmax.maximum(exp_avg_sq))
                second = vmax
            denom = (second.sqrt() / bias_correction2_sqrt).add_(eps)
            param.add_(exp_avg / denom, alpha=-lr / bias_correction1)

    def _update_group_fused(self, group):
        """The group's step as one _C._fused_adam_ call; False (nothing done) when it does not apply."""
        params = [p for p in group["params"] if p.grad is not None]
        if not params or group.get("fused") is False or group.get("foreach") is False:
            return False
        amsgrad = group["amsgrad"]
        states = [self.state[p] for p in params]
        fresh = [s for s in states if not s]
        if fresh and _C._fused_blocker(params) is not None:
            return use_fused(type(self).__name__, group, params)  # False, or the error fused=True earns
        for p, state in zip(params, states):
            if not state:
                state["step"] = new_step()
                state["exp_avg"] = zeros_state(p)
                state["exp_avg_sq"] = zeros_state(p)
            if amsgrad and "max_exp_avg_sq" not in state:  # also when amsgrad is switched on late
                state["max_exp_avg_sq"] = zeros_state(p)
        grads = [p.grad for p in params]
        exp_avgs = [s["exp_avg"] for s in states]
        exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        maxes = [s["max_exp_avg_sq"] for s in states] if amsgrad else []
        if not use_fused(type(self).__name__, group, params + grads + exp_avgs + exp_avg_sqs + maxes):
            return False
        beta1, beta2 = group["betas"]
        _C._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, maxes, [s["step"] for s in states], lr=group["lr"],
                        beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                        amsgrad=amsgrad, maximize=group["maximize"], decoupled=self._decoupled)
        return True


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay each step."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, fused=None, skip_nonfinite=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, foreach=foreach,
                         fused=fused, skip_nonfinite=skip_nonfinite)


__all__ = ["Adam", "AdamW"]
