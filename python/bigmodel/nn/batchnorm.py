"""BatchNorm1d / BatchNorm2d: per-channel normalisation with learnable affine parameters and
running statistics (buffers running_mean, running_var, num_batches_tracked, as PyTorch names them)."""
from .. import _C
from .._autograd import no_grad
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter
from ._util import empty_param_data


class _BatchNorm(Module):
    _expected_dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if num_features <= 0:
            raise ValueError(f"[{name}] num_features must be positive, got {num_features}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(empty_param_data(num_features, dtype=dtype, device=device))
            self.bias = Parameter(empty_param_data(num_features, dtype=dtype, device=device))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", empty_param_data(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", empty_param_data(num_features, dtype=dtype, device=device))
            kw = {"dtype": _C.dtype.int64}
            if device is not None:
                kw["device"] = device
            self.register_buffer("num_batches_tracked", _C.zeros((), **kw))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1.0)
                self.num_batches_tracked.zero_()

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def _check_input_dim(self, input):
        if input.ndim not in self._expected_dims:
            dims = " or ".join(f"{d}D" for d in self._expected_dims)
            raise ValueError(f"[{type(self).__name__}] expected {dims} input (got {input.ndim}D input of shape "
                             f"{list(input.shape)})")

    def forward(self, input):
        self._check_input_dim(input)
        # momentum=None: a cumulative moving average (factor 1/num_batches_tracked).
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / int(self.num_batches_tracked.item())
        # Without running stats, batch statistics are used in eval mode too (as in PyTorch).
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if track else None, self.running_var if track else None,
                            self.weight, self.bias, use_batch_stats, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Over input [N, C] or [N, C, L]."""
    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Over input [N, C, H, W]."""
    _expected_dims = (4,)


__all__ = ["BatchNorm1d", "BatchNorm2d"]
