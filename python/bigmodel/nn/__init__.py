"""bm.nn: modules, parameters, losses, initialisers and the functional API (PyTorch-like)."""
from .parameter import Parameter, is_parameter
from .module import Module, StateDictError
from .linear import Linear, Identity
from .activation import ReLU, GELU, Sigmoid, Tanh, SiLU, LeakyReLU, Softmax, LogSoftmax, Flatten
from .dropout import Dropout
from .conv import Conv2d
from .pooling import MaxPool2d, AvgPool2d, AdaptiveAvgPool2d
from .batchnorm import BatchNorm1d, BatchNorm2d
from .rnn import RNN, LSTM, GRU, RNNCell, LSTMCell, GRUCell, RNNBase, RNNCellBase
from .container import Sequential, ModuleList
from .loss import CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, BCELoss, BCEWithLogitsLoss
from . import functional, init
from .sparse import Embedding
from .normalization import LayerNorm
from .transformer import MultiheadAttention, TransformerEncoderLayer, TransformerDecoderLayer
from . import utils  # noqa: F401  (nn.utils.clip_grad_norm_, clip_grad_value_)

__all__ = ["Parameter", "is_parameter", "Module", "StateDictError", "Linear", "Identity", "ReLU", "GELU",
           "Sigmoid", "Tanh", "SiLU", "LeakyReLU", "Softmax", "LogSoftmax", "Flatten", "Dropout", "Conv2d",
           "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d", "Sequential",
           "ModuleList", "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss", "functional",
           "init", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RNNBase",
           "RNNCellBase"]
__all__ += ["Embedding", "LayerNorm", "MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer"]
from . import parallel  # noqa: E402,F401
from .loss import KLDivLoss, DistillationLoss  # noqa: E402
__all__ += ["KLDivLoss", "DistillationLoss"]
