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


class IterableDataset(Dataset):
    """Stream-style dataset: subclasses define __iter__(); a DataLoader batches what it yields."""

    def __iter__(self):
        raise NotImplementedError(f"[IterableDataset] {type(self).__name__} must implement __iter__")

    def __getitem__(self, index):
        raise TypeError(f"[IterableDataset] {type(self).__name__} is iterable, not indexable")

    def __len__(self):  # TypeError (not NotImplementedError): list(loader) then just iterates
        raise TypeError(f"[IterableDataset] {type(self).__name__} has no len()")


class ConcatDataset(Dataset):
    """The samples of several datasets, one after another."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("[ConcatDataset] needs at least one dataset")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        if index < 0:
            if -index > len(self):
                raise IndexError(f"[ConcatDataset] index {index} is out of range for {len(self)} samples")
            index += len(self)
        k = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        if k >= len(self.datasets):
            raise IndexError(f"[ConcatDataset] index {index} is out of range for {len(self)} samples")
        start = self.cumulative_sizes[k - 1] if k else 0
        return self.datasets[k][index - start]


def random_split(dataset, lengths, generator=None):
    """Splits `dataset` into non-overlapping Subsets of the given lengths (or fractions summing
    to 1, the remainder spread round-robin), in a random order drawn from `generator`."""
    from .sampler import numpy_rng
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(0 <= f <= 1 for f in lengths) and abs(sum(lengths) - 1) < 1e-9 and sum(lengths) != n:
        sizes = [int(np.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if sum(lengths) != n:
        raise ValueError(f"[random_split] sum of input lengths ({sum(lengths)}) does not equal the length of the "
                         f"input dataset ({n})")
    order = numpy_rng(generator).permutation(n)
    out, start = [], 0
    for k in lengths:
        out.append(Subset(dataset, order[start:start + k]))
        start += k
    return out


__all__ += ["IterableDataset", "ConcatDataset", "random_split"]
