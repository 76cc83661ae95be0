"""bm.utils: training helpers. checkpoint (activation checkpointing), Function (Python-defined
autograd ops), ProgressBar/progress, MetricsWriter/read_metrics, plot_metrics."""
from .function import Function, FunctionCtx
from .checkpoint import checkpoint, checkpoint_sequential  # the function shadows the submodule's name
from .progress import ProgressBar, progress
from .metrics import MetricsWriter, read_metrics
from .plot import plot_metrics
from . import data  # noqa: F401,E402  (bm.utils.data: torch.utils.data's path to bm.data)

__all__ = ["Function", "FunctionCtx", "checkpoint", "checkpoint_sequential", "ProgressBar", "progress",
           "MetricsWriter", "read_metrics", "plot_metrics"]
