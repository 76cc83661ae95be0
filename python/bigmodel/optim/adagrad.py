"""optim.Adagrad with PyTorch's update rule:
    g = grad (negated when maximize) + weight_decay * p
    clr = lr / (1 + (t - 1) lr_decay);  s += g^2;  p -= clr g / (sqrt(s) + eps)
The accumulator s starts at initial_accumulator_value and exists from construction (as in PyTorch).
"""
from .. import _C
from ._common import advance_step, check_non_negative, effective_grad, new_step
from .optimizer import Optimizer


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                 *, maximize=False, skip_nonfinite=False):
        check_non_negative("Adagrad", **{"learning rate": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                         "initial_accumulator_value": initial_accumulator_value, "epsilon": eps})
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p, group):
        state = self.state[p]
        if not state:
            state["step"] = new_step()
            state["sum"] = _C.full_like(p.detach(), group["initial_accumulator_value"])

    def _update_group(self, group):
        for p in group["params"]:
            if p.grad is None:
                continue
            self._init_state(p, group)  # groups added after construction
            state = self.state[p]
            grad = effective_grad(p, group["maximize"], group["weight_decay"])
            t = advance_step(state)
            clr = group["lr"] / (1 + (t - 1) * group["lr_decay"])
            state["sum"].add_(grad * grad)
            std = state["sum"].sqrt().add_(group["eps"])
            p.detach().add_(grad / std, alpha=-clr)


__all__ = ["Adagrad"]
