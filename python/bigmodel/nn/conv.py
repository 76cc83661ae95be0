"""nn.Conv2d: 2-D convolution layer over bm.nn.functional.conv2d, initialised as in PyTorch."""
import math

from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter
from ._util import empty_param_data


def _pair(v, name, op):
    """(v, v) for an int, or a tuple of two ints."""
    if isinstance(v, int) and not isinstance(v, bool):
        return (v, v)
    try:
        t = tuple(int(x) for x in v)
    except TypeError:
        raise TypeError(f"[{op}] {name} must be an int or a pair of ints, got {v!r}") from None
    if len(t) != 2:
        raise ValueError(f"[{op}] {name} must be an int or a pair of ints, got {v!r}")
    return t


class Conv2d(Module):
    """Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
    bias=True, padding_mode='zeros').

    weight [out_channels, in_channels / groups, kH, kW] from kaiming_uniform_(a=sqrt(5)) and
    bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels / groups * kH * kW,
    PyTorch's defaults. padding may also be 'valid' or 'same' (stride 1).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        op = "Conv2d"
        if groups <= 0:
            raise ValueError(f"[{op}] groups must be a positive integer, got {groups}")
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(f"[{op}] in_channels and out_channels must be positive, got {in_channels}, {out_channels}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"[{op}] in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                             f"divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"[{op}] padding_mode {padding_mode!r} is not supported (only 'zeros')")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", op)
        self.stride = _pair(stride, "stride", op)
        self.dilation = _pair(dilation, "dilation", op)
        self.groups = groups
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"[{op}] padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(f"[{op}] padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _pair(padding, "padding", op)
        self.weight = Parameter(empty_param_data(out_channels, in_channels // groups, *self.kernel_size,
                                                 dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(empty_param_data(out_channels, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = (self.in_channels // self.groups) * self.kernel_size[0] * self.kernel_size[1]
            bound = 1.0 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


__all__ = ["Conv2d"]
