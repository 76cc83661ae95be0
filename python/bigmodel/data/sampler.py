"""Samplers, as torch.utils.data's: the order in which a DataLoader visits dataset indices
(SequentialSampler, RandomSampler, SubsetRandomSampler, WeightedRandomSampler) and how it
groups them into batches (BatchSampler). Random ones draw from a NumPy generator seeded from
bigmodel's generator (the one given, or the global one), so bm.manual_seed fixes them."""
import numpy as np

from .. import _C


def numpy_rng(generator=None):
    """A NumPy generator seeded from a bm.Generator (or the global one): one draw per call, so
    every epoch gets a new, reproducible order."""
    if isinstance(generator, np.random.Generator):
        return generator
    seed = _C.randint(0, 2 ** 62, (1,), generator=generator).item()
    return np.random.default_rng(int(seed))


class Sampler:
    """Base class: iterating gives dataset indices."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError(f"[Sampler] {type(self).__name__} must implement __iter__")


class SequentialSampler(Sampler):
    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source, self.replacement, self.generator = data_source, replacement, generator
        self._num_samples = num_samples

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        rng, n = numpy_rng(self.generator), len(self.data_source)
        if self.replacement:
            return iter(rng.integers(0, n, self.num_samples).tolist())
        reps = -(-self.num_samples // n) if n else 0
        order = np.concatenate([rng.permutation(n) for _ in range(reps)]) if reps else np.zeros(0, np.int64)
        return iter(order[:self.num_samples].tolist())

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    def __init__(self, indices, generator=None):
        self.indices, self.generator = list(indices), generator

    def __iter__(self):
        order = numpy_rng(self.generator).permutation(len(self.indices))
        return iter([self.indices[i] for i in order])

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    def __init__(self, weights, num_samples, replacement=True, generator=None):
        w = np.asarray(weights.tolist() if isinstance(weights, _C.Tensor) else weights, dtype=np.float64)
        if w.ndim != 1 or (w < 0).any() or w.sum() <= 0:
            raise ValueError("[WeightedRandomSampler] weights must be a 1-D sequence of non-negative numbers "
                             "with a positive sum")
        self.weights, self.num_samples, self.replacement, self.generator = w, int(num_samples), replacement, generator

    def __iter__(self):
        p = self.weights / self.weights.sum()
        return iter(numpy_rng(self.generator).choice(len(p), self.num_samples, replace=self.replacement, p=p).tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of batch_size (the last one shorter unless drop_last)."""

    def __init__(self, sampler, batch_size, drop_last):
        if isinstance(batch_size, bool) or int(batch_size) <= 0:
            raise ValueError(f"[BatchSampler] batch_size should be a positive integer, got {batch_size}")
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), bool(drop_last)

    def __iter__(self):
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler"]
