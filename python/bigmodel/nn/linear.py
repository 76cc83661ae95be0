"""nn.Linear and nn.Identity: the affine layer y = x W^T + b, initialised as in PyTorch, and
_linear_act_module, the fused Linear + activation the GPT MLP and Transformer feed-forward use."""

from . import functional as F
from .module import Module
from ._util import add_weight_and_bias, reset_weight_and_bias


class Identity(Module):
    """Returns its input unchanged (accepts and ignores constructor arguments)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x W^T + b with W of shape [out_features, in_features].

    W and b are drawn from U(-1/sqrt(in_features), 1/sqrt(in_features)), PyTorch's default
    (kaiming_uniform_ with a=sqrt(5) for W).
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(f"[Linear] in_features and out_features must be >= 0, got {in_features}, {out_features}")
        self.in_features = in_features
        self.out_features = out_features
        add_weight_and_bias(self, (out_features, in_features), out_features if bias else None, dtype, device)
        self.reset_parameters()

    def reset_parameters(self):
        reset_weight_and_bias(self.weight, self.bias, self.in_features)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def _linear_act_module(linear, input, act):
    """act(linear(input)) for act 'relu', 'gelu' or 'gelu_tanh': one fused GEMM when `linear` is a
    plain Linear with no hooks; otherwise the module is called (so its hooks, or a subclass's
    forward, still run) and the activation applied after it."""
    d = linear.__dict__
    if type(linear) is Linear and not (d.get("_forward_pre_hooks") or d.get("_forward_hooks")
                                       or d.get("_backward_hooks")):
        return F._linear_act(input, linear.weight, linear.bias, act)
    return F._LINEAR_ACTS[act](linear(input))
