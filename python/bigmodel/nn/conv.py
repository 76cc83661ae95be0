"""nn.Conv2d: 2-D convolution layer over bm.nn.functional.conv2d, initialised as in PyTorch."""

from . import functional as F
from .module import Module
from .parameter import Parameter
from ._util import add_weight_and_bias, reset_weight_and_bias


def _check_channels(op, in_channels, out_channels, groups, padding_mode):
    """The constructor arguments every convolution module checks the same way."""
    if groups <= 0:
        raise ValueError(f"[{op}] groups must be a positive integer, got {groups}")
    if in_channels <= 0 or out_channels <= 0:
        raise ValueError(f"[{op}] in_channels and out_channels must be positive, got {in_channels}, {out_channels}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"[{op}] in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                         f"divisible by groups ({groups})")
    if padding_mode != "zeros":
        raise ValueError(f"[{op}] padding_mode {padding_mode!r} is not supported (only 'zeros')")


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
        _check_channels(op, in_channels, out_channels, groups, padding_mode)
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
        add_weight_and_bias(self, (out_channels, in_channels // groups, *self.kernel_size),
                            out_channels if bias else None, dtype, device)
        self.reset_parameters()

    def reset_parameters(self):
        fan_in = (self.in_channels // self.groups) * self.kernel_size[0] * self.kernel_size[1]
        reset_weight_and_bias(self.weight, self.bias, fan_in)

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


class Conv1d(Module):
    """Conv1d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
    bias=True): weight [out, in / groups, k], initialised as Conv2d (PyTorch's defaults)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        op = "Conv1d"
        _check_channels(op, in_channels, out_channels, groups, padding_mode)

        def single(v):
            return (int(v),) if isinstance(v, int) else tuple(int(x) for x in v)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = single(kernel_size), single(stride), single(dilation)
        self.padding = padding if isinstance(padding, str) else single(padding)
        self.padding_mode = padding_mode
        add_weight_and_bias(self, (out_channels, in_channels // groups, self.kernel_size[0]),
                            out_channels if bias else None, dtype, device)
        self.reset_parameters()

    def reset_parameters(self):
        reset_weight_and_bias(self.weight, self.bias, (self.in_channels // self.groups) * self.kernel_size[0])

    def forward(self, input):
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        return F.conv1d(input, self.weight, self.bias, self.stride[0], padding, self.dilation[0], self.groups)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ((0,), "valid"):
            s += f", padding={self.padding if isinstance(self.padding, tuple) else repr(self.padding)}"
        if self.dilation != (1,):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + (", bias=False" if self.bias is None else "")


__all__ += ["Conv1d"]


class ConvTranspose2d(Module):
    """ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
    groups=1, bias=True, dilation=1): weight [in, out / groups, kH, kW], initialised as PyTorch
    (kaiming_uniform_(a=sqrt(5)) with fan_in = weight.size(1) * kH * kW)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        op = "ConvTranspose2d"
        _check_channels(op, in_channels, out_channels, groups, padding_mode)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size", op)
        self.stride, self.padding = _pair(stride, "stride", op), _pair(padding, "padding", op)
        self.output_padding, self.dilation = _pair(output_padding, "output_padding", op), _pair(dilation, "dilation", op)
        self.padding_mode = padding_mode
        add_weight_and_bias(self, (in_channels, out_channels // groups, *self.kernel_size),
                            out_channels if bias else None, dtype, device)
        self.reset_parameters()

    def reset_parameters(self):
        reset_weight_and_bias(self.weight, self.bias, self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1])

    def forward(self, input, output_size=None):
        output_padding = self.output_padding
        if output_size is not None:  # pick the output_padding that gives this size
            h, w = input.shape[-2:]
            base = [(i - 1) * s - 2 * p + d * (k - 1) + 1 for i, s, p, d, k in
                    zip((h, w), self.stride, self.padding, self.dilation, self.kernel_size)]
            output_padding = tuple(int(o) - b for o, b in zip(list(output_size)[-2:], base))
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                  self.groups, self.dilation)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + (", bias=False" if self.bias is None else "")


class ConvTranspose1d(ConvTranspose2d):
    """ConvTranspose1d: the 2-D layer over a height-1 plane (weight [in, out / groups, k])."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        def one(v):
            return v[0] if isinstance(v, (tuple, list)) else v
        super().__init__(in_channels, out_channels, (1, one(kernel_size)), (1, one(stride)), (0, one(padding)),
                         (0, one(output_padding)), groups, bias, (1, one(dilation)), padding_mode, device, dtype)
        with_h = self.weight
        self.weight = Parameter(with_h.detach().squeeze(2).clone())

    def forward(self, input, output_size=None):
        return F.conv_transpose1d(input, self.weight, self.bias, self.stride[1], self.padding[1],
                                  self.output_padding[1], self.groups, self.dilation[1])


__all__ += ["ConvTranspose2d", "ConvTranspose1d"]
