"""bm.amp: mixed precision. autocast (the region; state in C++, core/amp.h) and GradScaler.

Op lists under autocast (device type on, dtype = float16 or bfloat16):
  lower precision (inputs cast to the autocast dtype, in the C++ front ends):
      matmul, mm, bmm, mv, dot, linear, addmm, conv1d, conv2d, scaled_dot_product_attention
      (and so nn.Linear, nn.Conv1d/2d, MultiheadAttention, the RNN input projections).
  float32 (float16/bfloat16 inputs upcast to float32; wrappers installed below):
      softmax, log_softmax, layer_norm, batch_norm, cross_entropy, nll_loss, mse_loss, l1_loss,
      binary_cross_entropy, binary_cross_entropy_with_logits, sum, mean, prod, norm, var, std,
      logsumexp (module functions, bm.nn.functional and the Tensor methods of the same names).
  everything else runs in the dtype of its inputs (elementwise ops promote mixed inputs).
float64 and integer tensors are never cast.
"""
import functools

from .. import _C
from .autocast_mode import autocast, is_autocast_enabled, get_autocast_dtype
from .grad_scaler import GradScaler

FP32_OPS = ("softmax", "log_softmax", "layer_norm", "batch_norm", "group_norm", "rms_norm", "cross_entropy",
            "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "binary_cross_entropy",
            "binary_cross_entropy_with_logits", "kl_div", "sum", "mean", "prod", "norm", "var", "std", "logsumexp")
LOWER_PRECISION_OPS = ("matmul", "mm", "bmm", "mv", "dot", "linear", "addmm", "conv1d", "conv2d",
                       "scaled_dot_product_attention")


def _upcast(a):
    return _C._autocast_upcast(a) if isinstance(a, _C.Tensor) else a


def _fp32_wrapper(fn):
    # One C++ call when autocast is off; only then are the arguments looked at.
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _C._autocast_any_enabled():
            args = tuple(_upcast(a) for a in args)
            kwargs = {k: _upcast(v) for k, v in kwargs.items()}
        return fn(*args, **kwargs)
    wrapper._bm_autocast_fp32 = True
    return wrapper


def _install_fp32_policy():
    """Wraps the float32-list ops wherever Python code reaches them: bigmodel._C (which
    bm.nn.functional looks up at call time), the bm.* re-exports and the Tensor methods.
    The float32 policy lives here rather than in each C++ front end so the op families'
    files stay untouched; C++ callers can use amp::autocast_upcast (core/amp.h)."""
    import sys
    targets = [_C, sys.modules["bigmodel"], sys.modules["bigmodel._ops"]]
    for name in FP32_OPS:
        for mod in targets:
            fn = getattr(mod, name, None)
            if fn is not None and not getattr(fn, "_bm_autocast_fp32", False):
                setattr(mod, name, _fp32_wrapper(fn))
        meth = getattr(_C.Tensor, name, None)
        if meth is not None and not getattr(meth, "_bm_autocast_fp32", False):
            setattr(_C.Tensor, name, _fp32_wrapper(meth))


_install_fp32_policy()

__all__ = ["autocast", "GradScaler", "is_autocast_enabled", "get_autocast_dtype", "FP32_OPS",
           "LOWER_PRECISION_OPS"]
