"""bm.data: datasets and the DataLoader (batching, seeded shuffling, drop_last)."""
from .dataset import Dataset, TensorDataset, Subset
from .dataloader import DataLoader, default_collate
from . import datasets, transforms

__all__ = ["Dataset", "TensorDataset", "Subset", "DataLoader", "default_collate", "datasets"]
