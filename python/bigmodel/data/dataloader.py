"""DataLoader: iterates a dataset in batches, optionally shuffled with a seeded generator,
applies an optional batch transform, and prepares the next batches on a background thread.

Datasets with get_batch(indices) are fetched a batch at a time (fast); others sample by
sample, collated with bm.stack.
"""
import numbers
import queue
import threading

import numpy as np

from .. import _C


def _stack(tensors):
    if hasattr(_C, "stack"):
        return _C.stack(tensors, 0)
    arrays = [t.detach().numpy() for t in tensors]
    return _C.from_numpy(np.ascontiguousarray(np.stack(arrays)))


def default_collate(samples):
    """Stacks a list of samples: tensors along a new dim 0; numbers into a 1-D tensor;
    tuples/lists (into a list, as PyTorch; namedtuples keep their type) and dicts field by field."""
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
        # namedtuples keep their type; plain tuples and lists become lists, as in PyTorch.
        if hasattr(first, "_fields"):
            return type(first)(*(default_collate(list(f)) for f in zip(*samples)))
        return [default_collate(list(f)) for f in zip(*samples)]
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


def _reraise_with_index(exc, where):
    """Raises `exc` re-made with `where` (the dataset indices being loaded) in its message and
    chained to the original; or the original with a note when its type can't be re-made."""
    try:
        new = type(exc)(f"{exc} [DataLoader: while loading {where}]")
    except Exception:  # noqa: BLE001  (constructors with other signatures)
        new = None
    if new is None:
        exc.add_note(f"[DataLoader] while loading {where}")
        raise exc
    raise new from exc


def _prefetch_worker(batches, q, stop):
    """Runs on the prefetch thread: puts ("batch", b) items, then ("end", None) or ("error", e).

    It holds no reference to the iterator, so dropping the iterator (an early `break`) lets
    its finaliser set `stop`, and this thread then exits within one put timeout.
    """
    def put(item):
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    try:
        for b in batches:
            if not put(("batch", b)):
                return
        put(("end", None))
    except BaseException as e:  # noqa: BLE001  (handed to the main thread)
        put(("error", e))
    finally:
        batches.close()


class _PrefetchIterator:
    """Yields the batches a background thread prepares, `depth` ahead of the consumer."""

    def __init__(self, batches, depth):
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=_prefetch_worker, args=(batches, self._queue, self._stop),
                                        name="bigmodel-prefetch", daemon=True)
        self._done = False
        self._thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == "batch":
            return value
        self._done = True
        self._thread.join()
        if kind == "error":
            raise value
        raise StopIteration

    def close(self):
        """Stops the thread (iteration ended early) and waits for it."""
        self._done = True
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def __del__(self):
        self.close()


class DataLoader:
    """DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, generator=None,
    collate_fn=None, transform=None, prefetch=2).

    Shuffling draws a new permutation every epoch from a NumPy generator: `generator`, or one
    seeded with `seed`, or (neither) one seeded from bigmodel's global RNG.

    transform (a bigmodel extension; see bm.data.transforms) is applied to every batch: to its
    first field (the inputs) when the batch is a tuple or list, else to the whole batch.

    prefetch: how many batches a background thread prepares ahead (loading, collating and
    transforming) while the caller trains; 0 loads in the caller's thread. Batches come in
    the same order with the same contents either way. Breaking out of the loop early stops
    the thread; an exception from the dataset is re-raised in the caller's thread, naming the
    dataset indices that were being loaded.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, generator=None,
                 collate_fn=None, num_workers=0, pin_memory=False, transform=None, prefetch=2, sampler=None,
                 batch_sampler=None, **_ignored):
        # sampler / batch_sampler: torch.utils.data's ways of choosing the order and the batches.
        if sampler is not None and shuffle:
            raise ValueError("[DataLoader] sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("[DataLoader] batch_sampler option is mutually exclusive with batch_size, shuffle, "
                             "sampler, and drop_last")
        self.sampler, self.batch_sampler = sampler, batch_sampler
        if batch_size is None and batch_sampler is None:
            raise NotImplementedError("[DataLoader] batch_size=None (no automatic batching) is not supported")
        if batch_sampler is not None:
            batch_size = 1
        if batch_size is None or isinstance(batch_size, bool) or int(batch_size) <= 0:
            raise ValueError(f"[DataLoader] batch_size should be a positive integer, got {batch_size}")
        if isinstance(prefetch, bool) or int(prefetch) < 0:
            raise ValueError(f"[DataLoader] prefetch should be a non-negative integer, got {prefetch}")
        if transform is not None and not callable(transform):
            raise TypeError(f"[DataLoader] transform must be callable, got {type(transform).__name__}")
        self.transform = transform
        self.prefetch = int(prefetch)
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        if generator is not None and not isinstance(generator, (np.random.Generator, _C.Generator)):
            raise TypeError(f"[DataLoader] generator must be a bm.Generator or a numpy.random.Generator, got "
                            f"{type(generator).__name__}")
        self._bm_generator = generator if isinstance(generator, _C.Generator) else None
        self._rng = generator if isinstance(generator, np.random.Generator) else None
        self._seed = seed

    def _generator(self):
        if self._bm_generator is not None:  # a fresh, reproducible draw from it every epoch
            from .sampler import numpy_rng
            return numpy_rng(self._bm_generator)
        if self._rng is None:
            self._rng = np.random.default_rng(self._seed if self._seed is not None else _fresh_seed())
        return self._rng

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self):
        if self.sampler is not None:
            return np.asarray(list(self.sampler), dtype=np.int64)
        n = len(self.dataset)
        return self._generator().permutation(n) if self.shuffle else np.arange(n, dtype=np.int64)

    def _load(self, idx, get_batch):
        if get_batch is not None:
            try:
                batch = get_batch(idx)
            except Exception as e:  # noqa: BLE001
                shown = ", ".join(str(int(i)) for i in idx[:8]) + (", ..." if len(idx) > 8 else "")
                _reraise_with_index(e, f"the batch of dataset indices [{shown}]")
            if batch is not None:  # a plain tuple of fields is a list, as default_collate gives
                return list(batch) if type(batch) is tuple else batch
        samples = []
        for i in idx:
            try:
                samples.append(self.dataset[int(i)])
            except Exception as e:  # noqa: BLE001
                _reraise_with_index(e, f"dataset index {int(i)}")
        return (self.collate_fn or default_collate)(samples)

    def _index_batches(self, order):
        if self.batch_sampler is not None:
            for idx in self.batch_sampler:
                yield np.asarray(idx, dtype=np.int64)
            return
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            if len(idx) < self.batch_size and self.drop_last:
                break
            yield idx

    def _stream_batches(self):
        """Batches of an IterableDataset: what its iterator yields, batch_size at a time."""
        samples = []
        for s in self.dataset:
            samples.append(s)
            if len(samples) == self.batch_size:
                yield (self.collate_fn or default_collate)(samples)
                samples = []
        if samples and not self.drop_last:
            yield (self.collate_fn or default_collate)(samples)

    def _batches(self, order):
        from .dataset import IterableDataset
        get_batch = getattr(self.dataset, "get_batch", None) if self.collate_fn is None else None
        stream = isinstance(self.dataset, IterableDataset)
        for idx_or_batch in (self._stream_batches() if stream else self._index_batches(order)):
            batch = idx_or_batch if stream else self._load(idx_or_batch, get_batch)
            if self.transform is not None:
                if isinstance(batch, (tuple, list)):
                    fields = [self.transform(batch[0]), *batch[1:]]
                    batch = batch._make(fields) if hasattr(batch, "_make") else type(batch)(fields)
                else:
                    batch = self.transform(batch)
            yield batch

    def __iter__(self):
        # The order is drawn here, on the caller's thread: the global RNG is never touched
        # by the prefetch thread, so seeded runs repeat.
        from .dataset import IterableDataset
        stream = isinstance(self.dataset, IterableDataset) or self.batch_sampler is not None
        batches = self._batches(None if stream else self._order())
        if self.prefetch == 0:
            return batches
        return _PrefetchIterator(batches, self.prefetch)


def get_worker_info():
    """None: bigmodel's DataLoader loads in the main process (and one prefetch thread), never
    in worker processes, so code that shards by worker sees the single-process case."""
    return None


__all__ = ["DataLoader", "default_collate", "get_worker_info"]
