"""DataLoader: iterates a dataset in batches, optionally shuffled with a seeded generator.

Datasets with get_batch(indices) are fetched a batch at a time (fast); others sample by
sample, collated with bm.stack.
"""
import numbers

import numpy as np

from .. import _C


def _stack(tensors):
    if hasattr(_C, "stack"):
        return _C.stack(tensors, 0)
    arrays = [t.detach().numpy() for t in tensors]
    return _C.from_numpy(np.ascontiguousarray(np.stack(arrays)))


def default_collate(samples):
    """Stacks a list of samples: tensors along a new dim 0; numbers into a 1-D tensor;
    tuples/lists and dicts field by field."""
    first = samples[0]
    if isinstance(first, _C.Tensor):
        return _stack(samples)
    if isinstance(first, np.ndarray):
        return _C.from_numpy(np.ascontiguousarray(np.stack(samples)))
    if isinstance(first, bool):
        return _C._from_numpy_copy(np.array(samples, dtype=np.bool_))
    if isinstance(first, numbers.Integral):
        return _C._from_numpy_copy(np.array(samples, dtype=np.int64))
    if isinstance(first, numbers.Real):
        return _C._from_numpy_copy(np.array(samples, dtype=np.float64))
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise ValueError("[default_collate] samples in a batch have different numbers of fields")
        return type(first)(default_collate(list(f)) for f in zip(*samples)) if isinstance(first, tuple) \
            else [default_collate(list(f)) for f in zip(*samples)]
    raise TypeError(f"[default_collate] can't batch samples of type {type(first).__name__}")


def _fresh_seed():
    """A seed drawn from bigmodel's global generator (so bm.manual_seed fixes shuffling)."""
    randint = getattr(_C, "randint", None)
    if randint is not None:
        try:
            return int(randint(0, 2 ** 31 - 1, (1,)).item())
        except (TypeError, ValueError, RuntimeError):
            pass
    return None


class DataLoader:
    """DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, generator=None,
    collate_fn=None).

    Shuffling draws a new permutation every epoch from a NumPy generator: `generator`, or one
    seeded with `seed`, or (neither) one seeded from bigmodel's global RNG.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, generator=None,
                 collate_fn=None, num_workers=0, pin_memory=False):
        if batch_size is None or int(batch_size) <= 0 or isinstance(batch_size, bool):
            raise ValueError(f"[DataLoader] batch_size should be a positive integer, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"[DataLoader] generator must be a numpy.random.Generator, got {type(generator).__name__}")
        self._rng = generator
        self._seed = seed

    def _generator(self):
        if self._rng is None:
            self._rng = np.random.default_rng(self._seed if self._seed is not None else _fresh_seed())
        return self._rng

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self):
        n = len(self.dataset)
        return self._generator().permutation(n) if self.shuffle else np.arange(n, dtype=np.int64)

    def __iter__(self):
        order = self._order()
        n = len(order)
        get_batch = getattr(self.dataset, "get_batch", None) if self.collate_fn is None else None
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            if len(idx) < self.batch_size and self.drop_last:
                break
            batch = get_batch(idx) if get_batch is not None else None
            if batch is None:
                samples = [self.dataset[int(i)] for i in idx]
                batch = (self.collate_fn or default_collate)(samples)
            yield batch


__all__ = ["DataLoader", "default_collate"]
