"""bm.autograd: grad-mode switches, anomaly detection and gradcheck (float64 finite differences)."""
from ._autograd import no_grad, enable_grad, set_grad_enabled  # noqa: F401
from ._autograd import (detect_anomaly, set_detect_anomaly, is_anomaly_enabled,  # noqa: F401
                        is_anomaly_check_forward_enabled)
from ._gradcheck import gradcheck  # noqa: F401
from .utils.function import Function, FunctionCtx  # noqa: F401,E402
