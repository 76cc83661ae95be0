"""bm.nn: modules, parameters, losses, initialisers and the functional API (PyTorch-like)."""
from .parameter import Parameter, is_parameter
from .module import Module, StateDictError
from .linear import Linear, Identity
from .activation import ReLU, GELU, Sigmoid, Tanh, SiLU, LeakyReLU, Softmax, LogSoftmax, Flatten
from .dropout import Dropout
from .container import Sequential, ModuleList
from .loss import CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, BCEWithLogitsLoss
from . import functional, init

__all__ = ["Parameter", "is_parameter", "Module", "StateDictError", "Linear", "Identity", "ReLU", "GELU",
           "Sigmoid", "Tanh", "SiLU", "LeakyReLU", "Softmax", "LogSoftmax", "Flatten", "Dropout", "Sequential",
           "ModuleList", "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCEWithLogitsLoss", "functional",
           "init"]
