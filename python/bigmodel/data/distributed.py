"""DistributedSampler: splits a dataset's indices among the ranks of a data-parallel job,
each rank seeing a disjoint share (padded so all ranks take the same number of steps).
"""
import math

import numpy as np


class DistributedSampler:
    """DistributedSampler(dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False).

    Iterating yields this rank's dataset indices for the current epoch. With shuffle, every
    rank draws the same permutation (seeded by seed + epoch), so call set_epoch(epoch) at
    the start of each epoch for a new order. Without drop_last the index list is padded by
    repeating its start so it divides evenly; with drop_last the tail is dropped instead.
    num_replicas and rank default to the default process group's.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed as dist
            if not dist.is_initialized():
                raise RuntimeError("[DistributedSampler] num_replicas and rank are needed when the default "
                                   "process group is not initialised (call init_process_group() first)")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if isinstance(num_replicas, bool) or int(num_replicas) < 1:
            raise ValueError(f"[DistributedSampler] num_replicas must be >= 1, got {num_replicas}")
        if isinstance(rank, bool) or not 0 <= int(rank) < int(num_replicas):
            raise ValueError(f"[DistributedSampler] rank {rank} is out of range [0, {num_replicas})")
        self.dataset = dataset
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def indices(self):
        """This rank's indices for the current epoch, as an int64 array."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n).astype(np.int64)
        else:
            order = np.arange(n, dtype=np.int64)
        if self.drop_last:
            order = order[:self.total_size]
        elif self.total_size > n:
            reps = math.ceil((self.total_size - n) / max(n, 1))
            order = np.concatenate([order] + [order] * reps)[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas]

    def __iter__(self):
        return iter(int(i) for i in self.indices())

    def __len__(self):
        return self.num_samples


__all__ = ["DistributedSampler"]
