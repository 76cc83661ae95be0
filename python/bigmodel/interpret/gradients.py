"""Input-gradient explanations: input_gradient (d score / d input) and saliency maps
(|gradient| reduced over channels, Simonyan et al. 2014)."""
from contextlib import contextmanager

import numpy as np

from .. import _C


@contextmanager
def keep_parameter_grads(model):
    """Runs a backward pass for explanation without changing the parameters' .grad."""
    saved = [(p, p.grad) for p in model.parameters()]
    try:
        yield
    finally:
        for p, g in saved:
            p.grad = g


def _class_score(logits, target, op):
    """The sum over the batch of logits[i, target[i]] (target None: the predicted class);
    returns (score, targets as a list)."""
    if logits.dim() != 2:
        raise ValueError(f"[{op}] the model must return logits [batch, classes], got shape {list(logits.shape)}")
    n, c = logits.shape
    if target is None:
        targets = [int(i) for i in logits.detach().argmax(1).tolist()]
    elif isinstance(target, int):
        targets = [target] * n
    else:
        targets = [int(t) for t in (target.tolist() if isinstance(target, _C.Tensor) else list(target))]
    if len(targets) != n:
        raise ValueError(f"[{op}] got {len(targets)} targets for a batch of {n}")
    for t in targets:
        if not 0 <= t < c:
            raise IndexError(f"[{op}] target class {t} is out of range for {c} classes")
    onehot = np.zeros((n, c), dtype=np.float64)
    onehot[np.arange(n), targets] = 1.0
    mask = _C._from_numpy_copy(onehot).to(logits.dtype)
    return (logits * mask).sum(), targets


def input_gradient(model, inputs, target=None):
    """(d logits[i, target[i]] / d inputs, targets): the raw gradient with the input's shape.

    target: None (the predicted class), an int, or one class per sample. The model's
    parameter gradients are left as they were.
    """
    if not isinstance(inputs, _C.Tensor) or not inputs.is_floating_point():
        raise TypeError(f"[input_gradient] inputs must be a floating Tensor, got "
                        f"{getattr(inputs, 'dtype', type(inputs).__name__)}")
    x = inputs.detach().clone().requires_grad_(True)
    with _C_enable_grad(), keep_parameter_grads(model):
        score, targets = _class_score(model(x), target, "input_gradient")
        score.backward()
    return x.grad.detach(), targets


def saliency(model, inputs, target=None, absolute=True, reduce_channels="max"):
    """Saliency map of images [N, C, H, W]: the input gradient of the target score, made
    non-negative (absolute=True) and reduced over channels ('max', 'mean' or None to keep
    them) -> [N, H, W] (or [N, C, H, W])."""
    if reduce_channels not in ("max", "mean", None):
        raise ValueError(f"[saliency] reduce_channels must be 'max', 'mean' or None, got {reduce_channels!r}")
    grad, _ = input_gradient(model, inputs, target)
    if absolute:
        grad = grad.abs()
    if reduce_channels is None or grad.dim() < 2:
        return grad
    return grad.max(1)[0] if reduce_channels == "max" else grad.mean(1)


def _C_enable_grad():
    from .._autograd import enable_grad
    return enable_grad()


__all__ = ["input_gradient", "saliency", "keep_parameter_grads"]
