"""Collectives over MPI: all_reduce (sum/avg/max/min), broadcast, all_gather, reduce_scatter,
barrier and async Work, over dtypes including int64, float16 and bfloat16, and
non-contiguous tensors."""
import numpy as np
import pytest

import bigmodel as bm
import bigmodel.distributed as dist

DTYPES = [bm.float32, bm.float64, bm.int32, bm.int64, bm.float16, bm.bfloat16]


def rank_data(rank, shape=(3, 5), seed=0):
    """Per-rank values: small integers so every dtype (incl. float16/bfloat16) holds them exactly."""
    return np.random.default_rng(seed + 17 * rank).integers(-20, 20, size=shape).astype(np.float64)


def all_ranks(shape=(3, 5), seed=0):
    return np.stack([rank_data(r, shape, seed) for r in range(dist.get_world_size())])


def to_np(t):
    return t.float().numpy().astype(np.float64) if t.dtype in (bm.float16, bm.bfloat16) else t.numpy()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", ["SUM", "MAX", "MIN"])
def test_all_reduce(dtype, op):
    t = bm.tensor(rank_data(dist.get_rank())).to(dtype)
    assert dist.all_reduce(t, getattr(dist.ReduceOp, op)) is None
    ref = {"SUM": np.sum, "MAX": np.max, "MIN": np.min}[op](all_ranks(), axis=0)
    assert t.dtype == dtype
    np.testing.assert_array_equal(to_np(t), ref)


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64, bm.float16], ids=str)
def test_all_reduce_avg(dtype):
    t = bm.tensor(rank_data(dist.get_rank())).to(dtype)
    dist.all_reduce(t, dist.ReduceOp.AVG)
    np.testing.assert_allclose(to_np(t), all_ranks().mean(axis=0), rtol=1e-3)


def test_all_reduce_avg_rejects_integers():
    t = bm.tensor([1, 2], dtype=bm.int64)
    with pytest.raises(TypeError, match=r"\[all_reduce\].*AVG.*int64"):
        dist.all_reduce(t, dist.ReduceOp.AVG)


def test_all_reduce_noncontiguous_in_place():
    base = bm.tensor(rank_data(dist.get_rank(), (5, 3)))
    t = base.t()  # a transposed view: reduced through a staging copy, written back by wait()
    dist.all_reduce(t)
    np.testing.assert_array_equal(base.numpy(), all_ranks((5, 3)).sum(axis=0))


def test_all_reduce_bool_is_any():
    t = bm.tensor([dist.get_rank() == 0, False, True])
    dist.all_reduce(t)
    assert t.tolist() == [True, False, True]


def test_async_all_reduce_wait():
    ts = [bm.tensor(rank_data(dist.get_rank(), seed=s)) for s in range(3)]
    works = [dist.all_reduce(t, async_op=True) for t in ts]
    for w in works:
        w.wait()
        assert w.is_completed()
    for s, t in enumerate(ts):
        np.testing.assert_array_equal(t.numpy(), all_ranks(seed=s).sum(axis=0))


@pytest.mark.parametrize("dtype", DTYPES + [bm.bool], ids=str)
@pytest.mark.parametrize("src", [0, 1])
def test_broadcast(dtype, src):
    t = bm.tensor(rank_data(dist.get_rank())).to(dtype)
    w = dist.broadcast(t, src=src, async_op=True)
    w.wait()
    expected = bm.tensor(rank_data(src)).to(dtype)
    np.testing.assert_array_equal(to_np(t), to_np(expected))


def test_broadcast_bad_root():
    with pytest.raises(ValueError, match=r"\[broadcast\] root 5"):
        dist.broadcast(bm.ones(2), src=5)


@pytest.mark.parametrize("dtype", [bm.float32, bm.int64, bm.float16], ids=str)
def test_all_gather(dtype):
    n = dist.get_world_size()
    outs = [bm.full((2, 4), -1.0).to(dtype) for _ in range(n)]
    dist.all_gather(outs, bm.tensor(rank_data(dist.get_rank(), (2, 4))).to(dtype))
    for r in range(n):
        np.testing.assert_array_equal(to_np(outs[r]), rank_data(r, (2, 4)))


def test_all_gather_wrong_list():
    with pytest.raises(ValueError, match=r"\[all_gather\] expected a list of"):
        dist.all_gather([bm.ones(2)], bm.ones(2))
    with pytest.raises(ValueError, match=r"\[all_gather\].*shape"):
        dist.all_gather([bm.ones(3) for _ in range(dist.get_world_size())], bm.ones(2))


@pytest.mark.parametrize("dtype", [bm.float32, bm.int64, bm.bfloat16], ids=str)
@pytest.mark.parametrize("op", ["SUM", "MAX"])
def test_reduce_scatter(dtype, op):
    n, r = dist.get_world_size(), dist.get_rank()
    inputs = [bm.tensor(rank_data(r, (3,), seed=10 + k)).to(dtype) for k in range(n)]
    out = bm.full((3,), -7.0).to(dtype)
    dist.reduce_scatter(out, inputs, getattr(dist.ReduceOp, op))
    per_rank = np.stack([rank_data(q, (3,), seed=10 + r) for q in range(n)])
    ref = per_rank.sum(axis=0) if op == "SUM" else per_rank.max(axis=0)
    np.testing.assert_array_equal(to_np(out), ref)


def test_barrier_async():
    w = dist.barrier(async_op=True)
    w.wait()
    assert w.is_completed()


def test_rank_and_size():
    assert 0 <= dist.get_rank() < dist.get_world_size()
    ranks = [bm.zeros(1, dtype=bm.int64) for _ in range(dist.get_world_size())]
    dist.all_gather(ranks, bm.tensor([dist.get_rank()]))
    assert [int(t.item()) for t in ranks] == list(range(dist.get_world_size()))
    assert dist.get_backend() == "mpi"
    assert 0 <= dist.get_local_rank() < dist.get_world_size()
