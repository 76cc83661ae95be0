"""bigmodel: a deep-learning framework in C++17 and CUDA with a PyTorch-like Python API.

    import bigmodel as bm
    x = bm.randn(3, 4, requires_grad=True)
    (x * 2).sum().backward()
"""
import os as _os

# A development checkout keeps the compiled extension in the build tree, not beside the
# sources: look there too (BIGMODEL_BUILD_DIR, default <repo>/build).
_build = _os.environ.get("BIGMODEL_BUILD_DIR") or _os.path.join(
    _os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))), "build")
_ext_dir = _os.path.join(_build, "python", "bigmodel")
if _os.path.isdir(_ext_dir):
    __path__.append(_ext_dir)

from . import _C  # noqa: E402
from ._C import Tensor, dtype, device, OutOfMemoryError, from_numpy, promote_types
from ._C import is_grad_enabled, set_grad_enabled

_dtype_str = _C.dtype.__str__
_C.dtype.__repr__ = _C.dtype.__str__ = lambda self: "bigmodel." + _dtype_str(self).split(".")[-1]

bool = _C.dtype.bool  # noqa: A001  (shadows the builtin inside this module, as torch does)
int32 = _C.dtype.int32
int64 = _C.dtype.int64
float16 = _C.dtype.float16
bfloat16 = _C.dtype.bfloat16
float32 = _C.dtype.float32
float64 = _C.dtype.float64
half = float16
float = float32  # noqa: A001
double = float64
int = int32  # noqa: A001
long = int64

from ._ops import *  # noqa: E402,F401,F403  (module-level functions: bm.add, bm.zeros, ...)
from ._tensor import tensor, as_tensor  # noqa: E402
from ._compare import isclose, allclose, equal  # noqa: E402
from ._autograd import no_grad, enable_grad, set_grad_enabled  # noqa: E402,F811
from . import _tensor_methods  # noqa: E402,F401  (adds tolist, __iter__, ... to Tensor)
from ._sort_scan import *  # noqa: E402,F401,F403  (sort, topk, cumsum, unique, multinomial, ...)
from ._composite import *  # noqa: E402,F401,F403  (einsum, diag, meshgrid, finfo, Size, ...)
from ._composite_more import *  # noqa: E402,F401,F403  (tile, cdist, quantile, scatter_reduce, ...)
from ._settings import *  # noqa: E402,F401,F403  (set_num_threads, set_default_dtype, compile, ...)
from ._autograd import inference_mode, is_inference_mode_enabled  # noqa: E402,F401
from ._tensor_methods import (FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor, LongTensor,  # noqa: E402,F401
                              IntTensor, BoolTensor, channels_last, contiguous_format, preserve_format)
from . import autograd, cpu, cuda, data, nn, optim  # noqa: E402,F401
from .serialization import save, load, save_file, load_file  # noqa: E402,F401
from . import distributed, models, utils  # noqa: E402,F401
from .amp import autocast  # noqa: E402,F401  (bm.autocast; bm.amp.GradScaler)
from . import interpret, quantization  # noqa: E402,F401  (bm.interpret, bm.quantization)
from . import backends  # noqa: E402,F401  (bm.backends.gemm = "cublas", ...)
from . import distributions  # noqa: E402,F401  (bm.distributions.Normal, Categorical, ...)
from . import linalg  # noqa: E402,F401  (bm.linalg.norm, inv, solve, svd, ...)

__version__ = "0.1.0"
