"""nn.LayerNorm: normalises over the trailing normalized_shape dims (the C++ layer_norm op)."""
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter
from ._util import empty_param_data


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(empty_param_data(*self.normalized_shape, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(empty_param_data(*self.normalized_shape, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Normalises each group of num_groups channel groups over (channels in group, spatial dims)."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"[GroupNorm] num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        if affine:
            self.weight = Parameter(empty_param_data(num_channels, dtype=dtype, device=device))
            self.bias = Parameter(empty_param_data(num_channels, dtype=dtype, device=device))
            init.ones_(self.weight)
            init.zeros_(self.bias)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _InstanceNorm(Module):
    """InstanceNorm{1,2}d: each (sample, channel) normalised over its spatial dims; affine and
    running statistics off by default, as in PyTorch."""

    _ndim = 4

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False,
                 device=None, dtype=None):
        from .. import _C
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(empty_param_data(num_features, dtype=dtype, device=device))
            self.bias = Parameter(empty_param_data(num_features, dtype=dtype, device=device))
            init.ones_(self.weight)
            init.zeros_(self.bias)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", _C.zeros(num_features, dtype=dtype or _C.dtype.float32))
            self.register_buffer("running_var", _C.ones(num_features, dtype=dtype or _C.dtype.float32))
            self.register_buffer("num_batches_tracked", _C.zeros((), dtype=_C.dtype.int64))
        else:
            self.running_mean = self.running_var = None

    def forward(self, input):
        unbatched = input.ndim == self._ndim - 1
        x = input.unsqueeze(0) if unbatched else input
        use_input_stats = self.training or not self.track_running_stats
        y = F.instance_norm(x, self.running_mean if self.training else None,
                            self.running_var if self.training else None, self.weight, self.bias,
                            use_input_stats, self.momentum, self.eps) if use_input_stats else \
            F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, self.momentum,
                            self.eps)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    _ndim = 3


class InstanceNorm2d(_InstanceNorm):
    _ndim = 4
