"""DistributedSampler across real ranks: disjoint shares covering the dataset, equal lengths,
the same shuffle on every rank, a new one per epoch."""
import numpy as np
import pytest

import bigmodel as bm
import bigmodel.distributed as dist
from bigmodel.data.distributed import DistributedSampler


def gather_indices(sampler):
    mine = bm.tensor(np.asarray(list(sampler), dtype=np.int64))
    out = [bm.zeros(len(sampler), dtype=bm.int64) for _ in range(dist.get_world_size())]
    dist.all_gather(out, mine)
    return [o.numpy() for o in out]


@pytest.mark.parametrize("shuffle", [False, True])
def test_partitions_dataset(shuffle):
    data = list(range(10))
    sampler = DistributedSampler(data, shuffle=shuffle, seed=3)  # rank/size from the group
    parts = gather_indices(sampler)
    assert sorted(np.concatenate(parts).tolist()) == data  # disjoint and complete
    sampler.set_epoch(1)
    parts1 = gather_indices(sampler)
    assert sorted(np.concatenate(parts1).tolist()) == data
    if shuffle:
        assert any((a != b).any() for a, b in zip(parts, parts1))


def test_uneven_sizes_padded_or_dropped():
    n = dist.get_world_size()
    data = list(range(2 * n + 1))
    padded = gather_indices(DistributedSampler(data, shuffle=False))
    assert all(len(p) == 3 for p in padded)
    assert set(np.concatenate(padded).tolist()) == set(data)
    dropped = gather_indices(DistributedSampler(data, shuffle=False, drop_last=True))
    assert all(len(p) == 2 for p in dropped)
    assert len(set(np.concatenate(dropped).tolist())) == 2 * n
