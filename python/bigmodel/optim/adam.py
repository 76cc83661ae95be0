"""optim.Adam and optim.AdamW, with PyTorch's update rules (and state layout):
    g = grad (negated when maximize);  Adam: g += weight_decay * p;  AdamW: p *= 1 - lr * weight_decay
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  amsgrad: vmax = max(vmax, v), v := vmax
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

foreach / fused (PyTorch's arguments; here one implementation): None (default) updates each
group with one multi-tensor kernel call (_C._fused_adam_) when its parameters and gradients
share one device and one dtype (float32, float64, float16 or bfloat16), its state is of the
state dtype and all are contiguous, else tensor by tensor; False keeps the per-tensor loop;
True insists on the fused path. Both compute the same bits.

Mixed precision (float16/bfloat16 parameters):
  * state (exp_avg, exp_avg_sq, max_exp_avg_sq) is float32 (PyTorch keeps it in the parameter
    dtype; float32 state costs 8 bytes per parameter but keeps small second moments alive), and
    the step is the float32 step computed on float(p), rounded back into p;
  * master_weights=True (as apex's FusedAdam; off by default, as in PyTorch) also keeps a float32
    master copy of each parameter, state['master_param']: the step updates the master and p
    becomes its rounding, so updates smaller than p's precision accumulate instead of vanishing.
    One pass on the fused path: read the half gradient, update master and state, write round(p).
    Only for float16/bfloat16 parameters (a ValueError names any other in the group; give those
    a group with master_weights=False). The master copies are part of state_dict(), so a resume
    is exact; a state dict saved without them (or with half-precision state) still loads: the
    state is cast to float32 and the master copy is made from the parameter at the next step.
"""
import math

from .. import _C
from ._common import (advance_step, check_betas, check_master_weights, check_non_negative, device_dtype_parts,
                      master_param, new_step, state_dtype, use_fused, working_grad, working_param, write_back, zeros_state)
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's arguments; master_weights=True keeps float32 master
    copies of float16/bfloat16 parameters (see the module docstring)."""

    _decoupled = False  # AdamW sets this: weight decay shrinks p directly instead of joining the gradient

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 maximize=False, foreach=None, fused=None, master_weights=False, skip_nonfinite=False):
        name = type(self).__name__
        check_non_negative(name, **{"learning rate": lr, "epsilon": eps, "weight_decay": weight_decay})
        check_betas(name, betas)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, fused=fused, master_weights=bool(master_weights))
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        check_master_weights(type(self).__name__, self.param_groups[-1], len(self.param_groups) - 1)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for gi, group in enumerate(self.param_groups):
            check_master_weights(type(self).__name__, group, gi)

    def _state_dtype(self, param):
        return state_dtype(param)

    def _init_state(self, p, state, amsgrad, master_weights):
        if not state:
            state["step"] = new_step()
            state["exp_avg"] = zeros_state(p, state_dtype(p))
            state["exp_avg_sq"] = zeros_state(p, state_dtype(p))
        if amsgrad and "max_exp_avg_sq" not in state:  # also when amsgrad is switched on late
            state["max_exp_avg_sq"] = zeros_state(p, state_dtype(p))
        if master_weights:
            master_param(p, state)
        else:
            state.pop("master_param", None)  # master_weights switched off: p is the truth again

    def _update_group(self, group):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
        master_weights = bool(group.get("master_weights"))
        check_master_weights(type(self).__name__, group)  # parameters may have changed dtype since
        if self._update_group_fused(group):
            return
        for p, state in self._with_grad(group):
            self._init_state(p, state, amsgrad, master_weights)
            # Half p: the float32 step on the master copy, or on float(p), rounded back at the end.
            param = working_param(p, state, master_weights)
            if self._decoupled:
                grad = working_grad(p, param, maximize)
                if weight_decay != 0:
                    param.mul_(1 - lr * weight_decay)
            else:
                grad = working_grad(p, param, maximize, weight_decay)
            t = advance_step(state)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
            exp_avg_sq.mul_(beta2).add_(grad * grad, alpha=1 - beta2)
            bias_correction1 = 1 - beta1 ** t
            bias_correction2_sqrt = math.sqrt(1 - beta2 ** t)
            second = exp_avg_sq
            if amsgrad:
                vmax = state["max_exp_avg_sq"]
                vmax.copy_(vmax.maximum(exp_avg_sq))
                second = vmax
            denom = (second.sqrt() / bias_correction2_sqrt).add_(eps)
            param.add_(exp_avg / denom, alpha=-lr / bias_correction1)
            write_back(p, param)

    def _update_group_fused(self, group):
        """The group's step as one _C._fused_adam_ call; False (nothing done) when it does not apply."""
        params = [p for p in group["params"] if p.grad is not None]
        if not params or group.get("fused") is False or group.get("foreach") is False:
            return False
        amsgrad, master_weights = group["amsgrad"], bool(group.get("master_weights"))
        name = type(self).__name__
        parts = [[params[i] for i in idx] for idx in device_dtype_parts(params)]
        if not all(use_fused(name, group, ps + [p.grad for p in ps]) for ps in parts):
            return False
        for p in params:
            self._init_state(p, self.state[p], amsgrad, master_weights)
        calls = []
        for ps in parts:
            states = [self.state[p] for p in ps]
            grads = [p.grad for p in ps]
            exp_avgs = [s["exp_avg"] for s in states]
            exp_avg_sqs = [s["exp_avg_sq"] for s in states]
            maxes = [s["max_exp_avg_sq"] for s in states] if amsgrad else []
            masters = [s["master_param"] for s in states] if master_weights else []
            if not use_fused(name, group, ps + grads, exp_avgs + exp_avg_sqs + maxes + masters):
                return False
            calls.append((ps, grads, exp_avgs, exp_avg_sqs, maxes, [s["step"] for s in states], masters))
        beta1, beta2 = group["betas"]
        for ps, grads, exp_avgs, exp_avg_sqs, maxes, steps, masters in calls:
            _C._fused_adam_(ps, grads, exp_avgs, exp_avg_sqs, maxes, steps, lr=group["lr"], beta1=beta1,
                            beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"], amsgrad=amsgrad,
                            maximize=group["maximize"], decoupled=self._decoupled, master_params=masters)
        return True


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay each step."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, fused=None, master_weights=False, skip_nonfinite=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, foreach=foreach,
                         fused=fused, master_weights=master_weights, skip_nonfinite=skip_nonfinite)


__all__ = ["Adam", "AdamW"]
