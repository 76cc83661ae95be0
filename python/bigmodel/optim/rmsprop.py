"""optim.RMSprop with PyTorch's update rule:
    g = grad (negated when maximize) + weight_decay * p
    v = alpha v + (1 - alpha) g^2;  centered: ga = alpha ga + (1 - alpha) g, avg = sqrt(v - ga^2) + eps
    otherwise avg = sqrt(v) + eps
    momentum > 0: buf = momentum buf + g / avg, p -= lr buf;  else p -= lr g / avg
"""
from ._common import advance_step, check_non_negative, effective_grad, new_step, zeros_state
from .optimizer import Optimizer


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, *,
                 maximize=False, skip_nonfinite=False):
        check_non_negative("RMSprop", **{"learning rate": lr, "epsilon": eps, "momentum": momentum,
                                         "weight_decay": weight_decay, "alpha": alpha})
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _update_group(self, group):
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        momentum, centered = group["momentum"], group["centered"]
        for p, state in self._with_grad(group):
            if not state:
                state["step"] = new_step()
                state["square_avg"] = zeros_state(p)
                if momentum > 0:
                    state["momentum_buffer"] = zeros_state(p)
                if centered:
                    state["grad_avg"] = zeros_state(p)
            grad = effective_grad(p, group["maximize"], group["weight_decay"])
            advance_step(state)
            square_avg = state["square_avg"]
            square_avg.mul_(alpha).add_(grad * grad, alpha=1 - alpha)
            if centered:
                grad_avg = state.setdefault("grad_avg", zeros_state(p))
                grad_avg.mul_(alpha).add_(grad, alpha=1 - alpha)
                avg = square_avg.sub(grad_avg * grad_avg).sqrt()
            else:
                avg = square_avg.sqrt()
            avg.add_(eps)
            if momentum > 0:
                buf = state.setdefault("momentum_buffer", zeros_state(p))
                buf.mul_(momentum).add_(grad / avg)
                p.detach().add_(buf, alpha=-lr)
            else:
                p.detach().add_(grad / avg, alpha=-lr)


__all__ = ["RMSprop"]
