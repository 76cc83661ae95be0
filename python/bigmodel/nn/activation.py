"""Activation modules (ReLU, GELU, Sigmoid, Tanh, SiLU, Softmax, LogSoftmax) and Flatten."""
from . import functional as F
from .module import Module


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"[GELU] approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate='{self.approximate}'"


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    def forward(self, input):
        return F.tanh(input)


class SiLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.silu(input)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Softmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.log_softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Flatten(Module):
    """Flattens dims start_dim..end_dim into one (default: all but the batch dim)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


# ---- more activations (their functional forms are composed from ops: _functional_more.py) ----
def _simple(name, fn_name, doc, params=()):
    """A parameter-free activation module whose forward is F.<fn_name>(input, **params)."""
    def __init__(self, *args, inplace=False, **kwargs):
        Module.__init__(self)
        for (p, default), v in zip(params, args):
            kwargs.setdefault(p, v)
        for p, default in params:
            setattr(self, p, kwargs.pop(p, default))
        if kwargs:
            raise TypeError(f"[{name}] unexpected arguments {sorted(kwargs)}")
        self.inplace = inplace

    def forward(self, input):
        return getattr(F, fn_name)(input, **{p: getattr(self, p) for p, _ in params})

    def extra_repr(self):
        parts = [f"{p}={getattr(self, p)}" for p, _ in params]
        return ", ".join(parts + (["inplace=True"] if self.inplace else []))
    return type(name, (Module,), {"__init__": __init__, "forward": forward, "extra_repr": extra_repr,
                                  "__doc__": doc, "__module__": __name__})


ELU = _simple("ELU", "elu", "x for x > 0, alpha * (exp(x) - 1) otherwise.", (("alpha", 1.0),))
CELU = _simple("CELU", "celu", "x for x > 0, alpha * (exp(x / alpha) - 1) otherwise.", (("alpha", 1.0),))
SELU = _simple("SELU", "selu", "Scaled ELU with the self-normalising constants.")
Mish = _simple("Mish", "mish", "x * tanh(softplus(x)).")
Hardtanh = _simple("Hardtanh", "hardtanh", "clamp(x, min_val, max_val).", (("min_val", -1.0), ("max_val", 1.0)))
ReLU6 = _simple("ReLU6", "relu6", "clamp(x, 0, 6).")
LogSigmoid = _simple("LogSigmoid", "logsigmoid", "log(sigmoid(x)).")
Hardsigmoid = _simple("Hardsigmoid", "hardsigmoid", "clamp(x / 6 + 1/2, 0, 1).")
Hardswish = _simple("Hardswish", "hardswish", "x * hardsigmoid(x).")
Softsign = _simple("Softsign", "softsign", "x / (1 + |x|).")
Softplus = _simple("Softplus", "softplus", "log(1 + exp(beta x)) / beta (linear above threshold).",
                   (("beta", 1.0), ("threshold", 20.0)))
GLU = _simple("GLU", "glu", "a * sigmoid(b) for the two halves of dim.", (("dim", -1),))
Softmin = _simple("Softmin", "softmin", "softmax(-x) along dim.", (("dim", None),))


Hardshrink = _simple("Hardshrink", "hardshrink", "x where |x| > lambd, else 0.", (("lambd", 0.5),))
Softshrink = _simple("Softshrink", "softshrink", "x - lambd * sign(x) where |x| > lambd, else 0.", (("lambd", 0.5),))
Tanhshrink = _simple("Tanhshrink", "tanhshrink", "x - tanh(x).")
Threshold = _simple("Threshold", "threshold", "x where x > threshold, else value.", (("threshold", 0.0),
                                                                                     ("value", 0.0)))


class Softmax2d(Module):
    """Softmax over the channel dim of (N, C, H, W) (or (C, H, W)) inputs."""

    def forward(self, input):
        return F.softmax(input, -3)


class PReLU(Module):
    """max(0, x) + weight * min(0, x), with a learnt slope (one, or one per channel)."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        from .. import _C
        from .parameter import Parameter
        super().__init__()
        self.num_parameters = num_parameters
        self.weight = Parameter(_C.full((num_parameters,), float(init), dtype=dtype or _C.dtype.float32,
                                        device=device or "cpu"))

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


__all__ = ["ReLU", "GELU", "Sigmoid", "Tanh", "SiLU", "LeakyReLU", "Softmax", "LogSoftmax", "Flatten", "ELU", "CELU",
           "SELU", "Mish", "Hardtanh", "ReLU6", "LogSigmoid", "Hardsigmoid", "Hardswish", "Softsign", "Softplus",
           "GLU", "Softmin", "PReLU", "Hardshrink", "Softshrink", "Tanhshrink", "Threshold", "Softmax2d"]
