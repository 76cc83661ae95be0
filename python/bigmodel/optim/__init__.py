"""bm.optim: optimizers (PyTorch-compatible update rules and state_dict layout)."""
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD"]
