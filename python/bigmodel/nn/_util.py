"""Helpers shared by the nn modules: allocating parameter storage with optional dtype/device,
and the weight-and-bias pair of Linear and the convolutions with PyTorch's default init."""
import math

from .. import _C


def empty_param_data(*shape, dtype=None, device=None):
    """An uninitialised tensor of `shape` (the caller initialises it in place)."""
    kw = {}
    if dtype is not None:
        kw["dtype"] = dtype
    if device is not None:
        kw["device"] = device
    return _C.empty(*shape, **kw)


def add_weight_and_bias(module, weight_shape, bias_size, dtype=None, device=None):
    """Registers module.weight of weight_shape and module.bias of bias_size (None: no bias)."""
    from .parameter import Parameter
    module.weight = Parameter(empty_param_data(*weight_shape, dtype=dtype, device=device))
    if bias_size is not None:
        module.bias = Parameter(empty_param_data(bias_size, dtype=dtype, device=device))
    else:
        module.register_parameter("bias", None)


def reset_weight_and_bias(weight, bias, fan_in):
    """PyTorch's default for Linear and the convolutions: kaiming_uniform_(a=sqrt(5)) on the
    weight, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on the bias (zero when fan_in is 0)."""
    from . import init
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)
