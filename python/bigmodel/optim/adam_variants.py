"""Adam's relatives with PyTorch's update rules: Adamax (infinity-norm second moment),
NAdam (Nesterov momentum with a momentum-decay schedule), RAdam (variance-rectified warmup)
and Adadelta (no learning-rate scale of its own). Written with tensor ops, one parameter at
a time; state names match PyTorch's ("exp_avg", "exp_inf", "mu_product", "square_avg",
"acc_delta", "step") so checkpoints round-trip."""
import math

from .. import _C
from ._common import advance_step, check_betas, check_non_negative, effective_grad, new_step, zeros_state
from .optimizer import Optimizer


class Adamax(Optimizer):
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, *, maximize=False,
                 skip_nonfinite=False):
        check_non_negative("Adamax", **{"learning rate": lr, "epsilon": eps, "weight_decay": weight_decay})
        check_betas("Adamax", betas)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      maximize=maximize), skip_nonfinite=skip_nonfinite)

    def _update_group(self, group):
        b1, b2 = group["betas"]
        for p, state in self._with_grad(group):
            if not state:
                state["step"], state["exp_avg"], state["exp_inf"] = new_step(), zeros_state(p), zeros_state(p)
            g = effective_grad(p, group["maximize"], group["weight_decay"])
            t = advance_step(state)
            state["exp_avg"].mul_(b1).add_(g, alpha=1 - b1)
            state["exp_inf"].copy_(_C.maximum(state["exp_inf"] * b2, g.abs() + group["eps"]))
            clr = group["lr"] / (1 - b1 ** t)
            p.detach().add_(state["exp_avg"] / state["exp_inf"], alpha=-clr)


class NAdam(Optimizer):
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3, *,
                 decoupled_weight_decay=False, maximize=False, skip_nonfinite=False):
        check_non_negative("NAdam", **{"learning rate": lr, "epsilon": eps, "weight_decay": weight_decay,
                                       "momentum_decay": momentum_decay})
        check_betas("NAdam", betas)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize), skip_nonfinite=skip_nonfinite)

    def _update_group(self, group):
        b1, b2 = group["betas"]
        for p, state in self._with_grad(group):
            if not state:
                state["step"], state["mu_product"] = new_step(), _C.ones([], dtype=_C.dtype.float32)
                state["exp_avg"], state["exp_avg_sq"] = zeros_state(p), zeros_state(p)
            decoupled = group["decoupled_weight_decay"]
            g = effective_grad(p, group["maximize"], 0.0 if decoupled else group["weight_decay"])
            if decoupled and group["weight_decay"]:
                p.detach().mul_(1 - group["lr"] * group["weight_decay"])
            t = advance_step(state)
            mu = b1 * (1 - 0.5 * 0.96 ** (t * group["momentum_decay"]))
            mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * group["momentum_decay"]))
            state["mu_product"].mul_(mu)
            mu_prod = float(state["mu_product"].item())
            state["exp_avg"].mul_(b1).add_(g, alpha=1 - b1)
            state["exp_avg_sq"].mul_(b2).add_(g * g, alpha=1 - b2)
            denom = (state["exp_avg_sq"] / (1 - b2 ** t)).sqrt().add_(group["eps"])
            p.detach().add_(g / denom, alpha=-group["lr"] * (1 - mu) / (1 - mu_prod))
            p.detach().add_(state["exp_avg"] / denom, alpha=-group["lr"] * mu_next / (1 - mu_prod * mu_next))


class RAdam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, *,
                 decoupled_weight_decay=False, maximize=False, skip_nonfinite=False):
        check_non_negative("RAdam", **{"learning rate": lr, "epsilon": eps, "weight_decay": weight_decay})
        check_betas("RAdam", betas)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize),
                         skip_nonfinite=skip_nonfinite)

    def _update_group(self, group):
        b1, b2 = group["betas"]
        rho_inf = 2 / (1 - b2) - 1
        for p, state in self._with_grad(group):
            if not state:
                state["step"], state["exp_avg"], state["exp_avg_sq"] = new_step(), zeros_state(p), zeros_state(p)
            decoupled = group["decoupled_weight_decay"]
            g = effective_grad(p, group["maximize"], 0.0 if decoupled else group["weight_decay"])
            if decoupled and group["weight_decay"]:
                p.detach().mul_(1 - group["lr"] * group["weight_decay"])
            t = advance_step(state)
            state["exp_avg"].mul_(b1).add_(g, alpha=1 - b1)
            state["exp_avg_sq"].mul_(b2).add_(g * g, alpha=1 - b2)
            m_hat = state["exp_avg"] / (1 - b1 ** t)
            rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
            if rho_t > 5.0:  # the variance is tractable: rectified adaptive step
                rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                adaptive = math.sqrt(1 - b2 ** t) / state["exp_avg_sq"].sqrt().add_(group["eps"])
                p.detach().add_(m_hat * adaptive, alpha=-group["lr"] * rect)
            else:  # early steps: plain momentum SGD
                p.detach().add_(m_hat, alpha=-group["lr"])


class Adadelta(Optimizer):
    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *, maximize=False, skip_nonfinite=False):
        check_non_negative("Adadelta", **{"learning rate": lr, "epsilon": eps, "weight_decay": weight_decay})
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"[Adadelta] invalid rho value: {rho}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize),
                         skip_nonfinite=skip_nonfinite)

    def _update_group(self, group):
        rho, eps = group["rho"], group["eps"]
        for p, state in self._with_grad(group):
            if not state:
                state["step"], state["square_avg"], state["acc_delta"] = new_step(), zeros_state(p), zeros_state(p)
            g = effective_grad(p, group["maximize"], group["weight_decay"])
            advance_step(state)
            state["square_avg"].mul_(rho).add_(g * g, alpha=1 - rho)
            delta = (state["acc_delta"] + eps).sqrt() / (state["square_avg"] + eps).sqrt() * g
            state["acc_delta"].mul_(rho).add_(delta * delta, alpha=1 - rho)
            p.detach().add_(delta, alpha=-group["lr"])


__all__ = ["Adamax", "NAdam", "RAdam", "Adadelta"]
