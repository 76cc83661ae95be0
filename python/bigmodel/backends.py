"""Which implementation each kernel family uses: ours (the default) or the vendor baseline.

    bm.backends.gemm = "cublas"     # or BIGMODEL_GEMM=cublas in the environment
    bm.backends.conv = "cudnn"      # BIGMODEL_CONV
    bm.backends.attention = "cudnn" # BIGMODEL_ATTENTION
    bm.backends.rnn = "cudnn"       # BIGMODEL_RNN

Each family accepts "ours" and its vendor library; anything else raises ValueError. The
choice only matters for CUDA tensors: the CPU always runs our kernels.
"""
import sys
import types

from . import _C


class _BackendsModule(types.ModuleType):
    def __getattr__(self, name):
        if name in _C._backend_families():
            return _C._backend_get(name)
        raise AttributeError(f"module 'bigmodel.backends' has no attribute '{name}'")

    def __setattr__(self, name, value):
        if not name.startswith("_") and name in _C._backend_families():
            _C._backend_set(name, value)
        else:
            super().__setattr__(name, value)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(_C._backend_families()))


def families():
    """The kernel families with a selectable backend."""
    return list(_C._backend_families())


def choices(family):
    """The names `family` accepts, the default first."""
    return list(_C._backend_choices(family))


class _Flags(types.SimpleNamespace):
    """Settings PyTorch scripts put at the top (torch.backends.cudnn.benchmark = True, ...):
    accepted and kept, so such scripts run; bigmodel's own kernels choose their algorithms
    themselves, and its CPU kernels are deterministic."""


cudnn = _Flags(benchmark=False, deterministic=False, enabled=True, allow_tf32=True)
cuda = _Flags(matmul=_Flags(allow_tf32=False), allow_tf32=False)
mps = _Flags(is_available=lambda: False, is_built=lambda: False)

sys.modules[__name__].__class__ = _BackendsModule
