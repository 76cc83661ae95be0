"""bm.data: datasets and the DataLoader (batching, seeded shuffling, drop_last)."""
from .dataset import Dataset, TensorDataset, Subset, IterableDataset, ConcatDataset, random_split
from .sampler import (Sampler, SequentialSampler, RandomSampler, SubsetRandomSampler, WeightedRandomSampler,
                      BatchSampler)
from .dataloader import DataLoader, default_collate, get_worker_info
from . import datasets, transforms

__all__ = ["Dataset", "TensorDataset", "Subset", "DataLoader", "default_collate", "datasets", "IterableDataset",
           "ConcatDataset", "random_split", "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler", "get_worker_info"]
