"""bm.utils.data: the same objects as bm.data, under PyTorch's path (torch.utils.data), so
`from bigmodel.utils.data import DataLoader, TensorDataset` works as it does with torch."""
from ..data import *  # noqa: F401,F403
from ..data import __all__  # noqa: F401
from ..data import DataLoader, Dataset, TensorDataset, Subset, default_collate  # noqa: F401
