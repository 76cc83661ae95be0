"""bm.autograd: grad-mode switches and gradcheck (float64 finite differences)."""
from ._autograd import no_grad, enable_grad, set_grad_enabled  # noqa: F401
from ._gradcheck import gradcheck  # noqa: F401
from .utils.function import Function, FunctionCtx  # noqa: F401,E402
