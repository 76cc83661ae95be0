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
from .activation import (ELU, CELU, SELU, Mish, Hardtanh, ReLU6, LogSigmoid, Hardsigmoid, Hardswish,  # noqa: E402
                         Softsign, Softplus, GLU, Softmin, PReLU)
from .container import ModuleDict, ParameterList, ParameterDict  # noqa: E402
from .conv import Conv1d  # noqa: E402
from .pooling import AdaptiveMaxPool2d, MaxPool1d, AvgPool1d, AdaptiveAvgPool1d, Upsample  # noqa: E402
from .normalization import GroupNorm  # noqa: E402
from .loss import SmoothL1Loss, HuberLoss, MarginRankingLoss, CosineSimilarity  # noqa: E402
from .transformer import TransformerEncoder, TransformerDecoder, Transformer  # noqa: E402
__all__ += ["ELU", "CELU", "SELU", "Mish", "Hardtanh", "ReLU6", "LogSigmoid", "Hardsigmoid", "Hardswish", "Softsign",
            "Softplus", "GLU", "Softmin", "PReLU", "ModuleDict", "ParameterList", "ParameterDict", "Conv1d",
            "AdaptiveMaxPool2d", "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d", "Upsample", "GroupNorm",
            "SmoothL1Loss", "HuberLoss", "MarginRankingLoss", "CosineSimilarity", "TransformerEncoder",
            "TransformerDecoder", "Transformer"]
from .activation import Hardshrink, Softshrink, Tanhshrink, Threshold, Softmax2d  # noqa: E402
from .conv import ConvTranspose2d, ConvTranspose1d  # noqa: E402
from .dropout import Dropout1d, Dropout2d  # noqa: E402
from .normalization import InstanceNorm1d, InstanceNorm2d  # noqa: E402
from .loss import (PairwiseDistance, TripletMarginLoss, CosineEmbeddingLoss, SoftMarginLoss,  # noqa: E402
                   GaussianNLLLoss, PoissonNLLLoss)
from .reshape_layers import *  # noqa: E402,F401,F403
from .reshape_layers import __all__ as _reshape_all  # noqa: E402
__all__ += ["Hardshrink", "Softshrink", "Tanhshrink", "Threshold", "Softmax2d", "ConvTranspose2d", "ConvTranspose1d",
            "Dropout1d", "Dropout2d", "InstanceNorm1d", "InstanceNorm2d", "PairwiseDistance", "TripletMarginLoss",
            "CosineEmbeddingLoss", "SoftMarginLoss", "GaussianNLLLoss", "PoissonNLLLoss"] + _reshape_all
