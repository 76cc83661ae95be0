"""optim.Adam and optim.AdamW, with PyTorch's update rules (and state layout):
    g = grad (negated when maximize);  Adam: g += weight_decay * p;  AdamW: p *= 1 - lr * weight_decay
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  amsgrad: vmax = max(vmax, v), v := vmax
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
"""
import math

from ._common import advance_step, check_betas, check_non_negative, effective_grad, new_step, zeros_state
from .optimizer import Optimizer


class Adam(Optimizer):
    _decoupled = False  # AdamW sets this: weight decay shrinks p directly instead of joining the gradient

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 maximize=False, skip_nonfinite=False):
        name = type(self).__name__
        check_non_negative(name, **{"learning rate": lr, "epsilon": eps, "weight_decay": weight_decay})
        check_betas(name, betas)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _update_group(self, group):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
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


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay each step."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, skip_nonfinite=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         skip_nonfinite=skip_nonfinite)


__all__ = ["Adam", "AdamW"]
