"""bm.autograd: grad-mode switches, anomaly detection and gradcheck (float64 finite differences)."""
from ._autograd import no_grad, enable_grad, set_grad_enabled  # noqa: F401
from ._autograd import (detect_anomaly, set_detect_anomaly, is_anomaly_enabled,  # noqa: F401
                        is_anomaly_check_forward_enabled)
from ._gradcheck import gradcheck  # noqa: F401
from .utils.function import Function, FunctionCtx  # noqa: F401,E402
from ._autograd import inference_mode  # noqa: F401,E402
from ._autograd_api import grad, backward  # noqa: F401,E402
from ._autograd_functional import Variable  # noqa: F401,E402
from . import _autograd_functional as functional  # noqa: F401,E402  (bm.autograd.functional.jacobian, ...)
import sys as _sys  # noqa: E402
_sys.modules[__name__ + ".functional"] = functional
