"""Collectives over NCCL on CUDA tensors (every dtype NCCL carries, non-contiguous tensors,
async handles), and DistributedDataParallel on a CUDA model against the same model trained
alone. Expected values are computed from every rank's known inputs, so the tests hold for
any world size, 1 included."""
import numpy as np
import pytest

import bigmodel as bm
import bigmodel.distributed as dist
from bigmodel import nn

DTYPES = [bm.float32, bm.float64, bm.int32, bm.int64, bm.float16, bm.bfloat16]


def dev():
    return f"cuda:{dist.get_rank() % bm.cuda.device_count()}"


def rank_data(rank, shape=(3, 5), seed=0):
    return np.random.default_rng(seed + 17 * rank).integers(-20, 20, size=shape).astype(np.float64)


def all_ranks(shape=(3, 5), seed=0):
    return np.stack([rank_data(r, shape, seed) for r in range(dist.get_world_size())])


def to_np(t):
    t = t.cpu()
    return t.float().numpy().astype(np.float64) if t.dtype in (bm.float16, bm.bfloat16) else t.numpy()


def test_backend_and_device():
    assert dist.get_backend() == "nccl"
    assert bm.cuda.current_device() == dist.get_rank() % bm.cuda.device_count()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", ["SUM", "MAX", "MIN"])
def test_all_reduce(dtype, op):
    t = bm.tensor(rank_data(dist.get_rank())).to(dtype).to(dev())
    dist.all_reduce(t, getattr(dist.ReduceOp, op))
    ref = {"SUM": np.sum, "MAX": np.max, "MIN": np.min}[op](all_ranks(), axis=0)
    assert t.dtype == dtype and t.device.type == "cuda"
    np.testing.assert_array_equal(to_np(t), ref)


def test_all_reduce_avg_and_noncontiguous():
    base = bm.tensor(rank_data(dist.get_rank(), (5, 3))).to(dev())
    t = base.t()  # a transposed view: staged, reduced, written back in place
    dist.all_reduce(t, dist.ReduceOp.AVG)
    np.testing.assert_allclose(to_np(base), all_ranks((5, 3)).mean(axis=0), rtol=1e-6)


def test_async_work_orders_with_later_kernels():
    t = bm.tensor(rank_data(dist.get_rank(), (1000, 33))).to(dev())
    work = dist.all_reduce(t, async_op=True)
    work.wait()
    y = (t * 2).sum()  # runs on the compute stream after the collective
    np.testing.assert_allclose(y.item(), 2 * all_ranks((1000, 33)).sum(), rtol=1e-5)


def test_broadcast_all_gather_reduce_scatter():
    world, rank = dist.get_world_size(), dist.get_rank()
    t = bm.tensor(rank_data(rank)).to(dev())
    dist.broadcast(t, src=0)
    np.testing.assert_array_equal(to_np(t), rank_data(0))

    outs = [bm.zeros(3, 5, device=dev()) for _ in range(world)]
    dist.all_gather(outs, bm.tensor(rank_data(rank)).float().to(dev()))
    for r in range(world):
        np.testing.assert_array_equal(to_np(outs[r]), rank_data(r))

    ins = [bm.tensor(rank_data(rank, seed=r)).float().to(dev()) for r in range(world)]
    out = bm.zeros(3, 5, device=dev())
    dist.reduce_scatter(out, ins)
    ref = sum(rank_data(q, seed=rank) for q in range(world))
    np.testing.assert_array_equal(to_np(out), ref)


def test_cpu_tensor_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match=r"\[all_reduce\] the nccl backend takes CUDA tensors"):
        dist.all_reduce(bm.ones(3))


def test_ddp_on_cuda_matches_single_process_training():
    """Every rank trains on its own shard; the reference trains alone on all shards' mean gradient."""
    world, rank = dist.get_world_size(), dist.get_rank()
    bm.manual_seed(0)
    ref = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    model.load_state_dict(ref.state_dict())
    ref.to(dev())
    model.to(dev())
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.0001)  # several buckets
    opt = bm.optim.SGD(ddp.parameters(), lr=0.1)
    ref_opt = bm.optim.SGD(ref.parameters(), lr=0.1)
    rng = np.random.default_rng(5)
    for _ in range(3):
        xs = [bm.tensor(rng.standard_normal((4, 8)), dtype=bm.float32) for _ in range(world)]
        ys = [bm.tensor(rng.integers(0, 3, 4)) for _ in range(world)]
        opt.zero_grad()
        nn.functional.cross_entropy(ddp(xs[rank].to(dev())), ys[rank].to(dev())).backward()
        opt.step()
        ref_opt.zero_grad()
        loss = sum(nn.functional.cross_entropy(ref(x.to(dev())), y.to(dev())) for x, y in zip(xs, ys)) / world
        loss.backward()
        ref_opt.step()
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        np.testing.assert_allclose(to_np(p.detach()), to_np(q.detach()), rtol=1e-4, atol=1e-5, err_msg=name)
