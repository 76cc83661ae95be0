"""Datasets: the Dataset protocol, TensorDataset and Subset.

Besides __getitem__, a dataset may define get_batch(indices) returning an already batched
sample; DataLoader then fetches a whole batch with one NumPy gather instead of a Python
loop over samples.
"""
import numpy as np

from .. import _C


class Dataset:
    """Map-style dataset: subclasses define __getitem__(i) and __len__()."""

    def __getitem__(self, index):
        raise NotImplementedError(f"[Dataset] {type(self).__name__} must implement __getitem__")

    def __len__(self):
        raise NotImplementedError(f"[Dataset] {type(self).__name__} must implement __len__")


def _numpy_view(t):
    """A NumPy array sharing t's memory, or None when there is none (bfloat16, GPU)."""
    if not isinstance(t, _C.Tensor) or not t.is_cpu or t.dtype == _C.dtype.bfloat16:
        return None
    return t.detach().numpy()


def _gather(t, arr, indices):
    if arr is not None:
        return _C.from_numpy(np.ascontiguousarray(arr[indices]))
    index = _C.from_numpy(np.ascontiguousarray(indices, dtype=np.int64)).to(t.device)
    return t.index_select(0, index)


class TensorDataset(Dataset):
    """Wraps tensors of equal first dimension; sample i is (t[i] for t in tensors)."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("[TensorDataset] needs at least one tensor")
        n = tensors[0].shape[0] if tensors[0].ndim > 0 else None
        for t in tensors:
            if not isinstance(t, _C.Tensor):
                raise TypeError(f"[TensorDataset] expected tensors, got {type(t).__name__}")
            if t.ndim == 0 or t.shape[0] != n:
                raise ValueError("[TensorDataset] size mismatch between tensors: shapes "
                                 + ", ".join(str(list(x.shape)) for x in tensors))
        self.tensors = tensors
        self._arrays = [_numpy_view(t) for t in tensors]

    def __getitem__(self, index):
        return tuple(t[index] if hasattr(t, "__getitem__") else t.select(0, index) for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def get_batch(self, indices):
        """The samples at `indices` (an int64 NumPy array), stacked: one tensor per field."""
        return tuple(_gather(t, a, indices) for t, a in zip(self.tensors, self._arrays))


class Subset(Dataset):
    """The samples of `dataset` at `indices`."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def __len__(self):
        return len(self.indices)

    def get_batch(self, indices):
        inner = getattr(self.dataset, "get_batch", None)
        if inner is None:
            return None
        return inner(self.indices[np.asarray(indices, dtype=np.int64)])


__all__ = ["Dataset", "TensorDataset", "Subset"]
