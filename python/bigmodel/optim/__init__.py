"""bm.optim: optimizers (PyTorch-compatible update rules and state_dict layout) and LR schedules."""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW
from .rmsprop import RMSprop
from .adagrad import Adagrad
from .adam_variants import Adamax, NAdam, RAdam, Adadelta
from . import lr_scheduler

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam", "Adadelta",
           "lr_scheduler"]
