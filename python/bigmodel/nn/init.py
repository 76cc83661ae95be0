"""bm.nn.init: in-place weight initialisers (uniform, normal, kaiming, xavier, ...), as in PyTorch.

Each runs under no_grad (initialising a parameter is not part of the graph) and draws from
bigmodel's global generator, so bm.manual_seed makes it reproducible.
"""
import math

from .._autograd import no_grad


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (PyTorch's table)."""
    linear_fns = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid")
    if nonlinearity in linear_fns:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"[calculate_gain] negative_slope {slope} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"[calculate_gain] unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError(f"[init] fan in and fan out can't be computed for a tensor with fewer than 2 "
                         f"dimensions (shape {list(tensor.shape)})")
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"[init] mode {mode!r} not supported, use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a=0.0, b=1.0):
    with no_grad():
        return tensor.uniform_(a, b)


def normal_(tensor, mean=0.0, std=1.0):
    with no_grad():
        return tensor.normal_(mean, std)


def constant_(tensor, val):
    with no_grad():
        return tensor.fill_(val)


def zeros_(tensor):
    with no_grad():
        return tensor.zero_()


def ones_(tensor):
    return constant_(tensor, 1.0)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-bound, bound) with bound = gain * sqrt(3 / fan) (He et al. 2015)."""
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor  # nothing to initialise in an empty tensor
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std^2) with std = gain / sqrt(fan)."""
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan))


def xavier_uniform_(tensor, gain=1.0):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / max(fan_in + fan_out, 1))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / max(fan_in + fan_out, 1)))


def eye_(tensor):
    """The identity matrix in a 2-D tensor (ones on the diagonal, zeros elsewhere)."""
    if tensor.ndim != 2:
        raise ValueError(f"[eye_] expected a 2-D tensor, got shape {list(tensor.shape)}")
    from .. import _C
    with no_grad():
        tensor.zero_()
        n = min(tensor.shape)
        if n:
            idx = _C.arange(n, device=tensor.device)
            tensor.index_put_((idx, idx), _C.ones(n, dtype=tensor.dtype, device=tensor.device))
    return tensor


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """N(mean, std^2) truncated to [a, b] (absolute bounds, as PyTorch): rejected draws are
    redrawn, a few rounds, then clamped."""
    from .. import _C
    with no_grad():
        tensor.normal_(mean, std)
        for _ in range(16):
            bad = (tensor < a) | (tensor > b)
            if not bool(bad.any()):
                break
            fresh = _C.randn(*tensor.shape, dtype=tensor.dtype, device=tensor.device) * std + mean
            tensor.copy_(_C.where(bad, fresh, tensor))
        return tensor.clamp_(a, b)


def orthogonal_(tensor, gain=1.0):
    """A (semi-)orthogonal matrix, from the QR decomposition of a Gaussian draw (rows flattened)."""
    import numpy as np
    from .. import _C
    if tensor.ndim < 2:
        raise ValueError(f"[orthogonal_] expected at least 2 dims, got shape {list(tensor.shape)}")
    rows, cols = tensor.shape[0], tensor.numel() // tensor.shape[0]
    g = _C.randn(max(rows, cols), min(rows, cols), dtype=_C.dtype.float64).numpy()
    q, r = np.linalg.qr(g)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    with no_grad():
        src = _C._from_numpy_copy(np.ascontiguousarray(q[:rows, :cols] * gain)).to(tensor.dtype)
        tensor.copy_(src.reshape(tuple(tensor.shape)).to(tensor.device))
    return tensor


__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "kaiming_uniform_",
           "kaiming_normal_", "xavier_uniform_", "xavier_normal_", "eye_", "trunc_normal_", "orthogonal_"]
