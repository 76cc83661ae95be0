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
    with pytest.raises(RuntimeError, match=r"\[all_reduce\] the nccl backend takes CUDA tensors"):
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


@pytest.mark.parametrize("dtype", [bm.float32, bm.int64, bm.float16], ids=str)
def test_broadcast_from_every_root(dtype):
    """Each rank in turn is the source (a wrong root only shows when it is not rank 0)."""
    world, rank = dist.get_world_size(), dist.get_rank()
    for src in range(world):
        base = bm.tensor(rank_data(rank, (4, 3), seed=src)).to(dtype).to(dev())
        t = base.t()  # non-contiguous: staged, broadcast, written back
        dist.broadcast(t, src=src)
        np.testing.assert_array_equal(to_np(base), rank_data(src, (4, 3), seed=src))


@pytest.mark.parametrize("dtype", [bm.float64, bm.float16, bm.bfloat16], ids=str)
def test_all_reduce_avg_every_floating_dtype(dtype):
    t = bm.tensor(rank_data(dist.get_rank(), (2, 7))).to(dtype).to(dev())
    dist.all_reduce(t, dist.ReduceOp.AVG)
    # Integer inputs: the mean is a multiple of 1/W, exact in every dtype for small W.
    np.testing.assert_allclose(to_np(t), all_ranks((2, 7)).mean(axis=0), rtol=1e-2 if dtype != bm.float64 else 0)


def test_all_reduce_larger_than_one_chunk():
    """1.5M float32 (6 MB): above the staging size of the emulated NCCL, and many NCCL chunks."""
    n = 1_500_001
    rank, world = dist.get_rank(), dist.get_world_size()
    x = (np.arange(n, dtype=np.float64) % 1000) * (rank + 1)
    t = bm.tensor(x).float().to(dev())
    dist.all_reduce(t)
    ref = (np.arange(n, dtype=np.float64) % 1000) * sum(r + 1 for r in range(world))
    np.testing.assert_array_equal(to_np(t), ref)  # every value is exact in float32


@pytest.mark.parametrize("op", ["SUM", "AVG", "MAX", "MIN"])
def test_reduce_scatter_ops_into_noncontiguous_output(op):
    world, rank = dist.get_world_size(), dist.get_rank()
    ins = [bm.tensor(rank_data(rank, (2, 3), seed=10 + r)).double().to(dev()) for r in range(world)]
    base = bm.zeros(3, 2, dtype=bm.float64, device=dev())
    out = base.t()
    dist.reduce_scatter(out, ins, getattr(dist.ReduceOp, op))
    blocks = np.stack([rank_data(q, (2, 3), seed=10 + rank) for q in range(world)])
    ref = {"SUM": np.sum, "AVG": np.mean, "MAX": np.max, "MIN": np.min}[op](blocks, axis=0)
    np.testing.assert_allclose(to_np(base).T, ref, rtol=1e-12)


@pytest.mark.parametrize("dtype", [bm.int64, bm.bfloat16, bm.float64], ids=str)
def test_all_gather_dtypes_and_noncontiguous(dtype):
    world, rank = dist.get_world_size(), dist.get_rank()
    bases = [bm.zeros(4, 2, device=dev()).to(dtype) for _ in range(world)]
    outs = [b.t() for b in bases]  # written back from the flat gathered buffer
    src = bm.tensor(rank_data(rank, (4, 2), seed=3)).to(dtype).to(dev()).t()
    dist.all_gather(outs, src)
    for r in range(world):
        np.testing.assert_array_equal(to_np(bases[r]), rank_data(r, (4, 2), seed=3))


def test_many_async_collectives_waited_out_of_order():
    world, rank = dist.get_world_size(), dist.get_rank()
    ts = [bm.tensor(rank_data(rank, (5,), seed=s)).to(dev()) for s in range(4)]
    works = [dist.all_reduce(t, async_op=True) for t in ts]
    for w in reversed(works):
        w.wait()
    for s, t in enumerate(ts):
        np.testing.assert_array_equal(to_np(t), sum(rank_data(q, (5,), seed=s) for q in range(world)))


def test_ddp_on_cuda_with_batchnorm_buffers_and_no_sync():
    """BatchNorm buffers (float32 and int64) broadcast from rank 0 at each forward, and one
    no_sync micro-batch accumulated locally before a synchronised one."""
    world, rank = dist.get_world_size(), dist.get_rank()
    bm.manual_seed(2)
    ref = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model.load_state_dict(ref.state_dict())
    ref.to(dev())
    model.to(dev())
    if rank > 0:  # rank 0's buffers win at wrap time and at every forward
        model[1].running_mean.fill_(5.0)
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.0001)
    np.testing.assert_array_equal(to_np(model[1].running_mean), to_np(ref[1].running_mean))
    opt = bm.optim.SGD(ddp.parameters(), lr=0.05)
    ref_opt = bm.optim.SGD(ref.parameters(), lr=0.05)
    rng = np.random.default_rng(11)
    for _ in range(2):
        micro = [[bm.tensor(rng.standard_normal((5, 6)), dtype=bm.float32) for _ in range(world)] for _ in range(2)]
        opt.zero_grad()
        with ddp.no_sync():
            (ddp(micro[0][rank].to(dev())) ** 2).mean().backward()
        (ddp(micro[1][rank].to(dev())) ** 2).mean().backward()
        opt.step()
        ref_opt.zero_grad()  # per-shard batch statistics, as each rank sees them
        (sum((ref(x.to(dev())) ** 2).mean() for m in micro for x in m) / world).backward()
        ref_opt.step()
    assert model[1].num_batches_tracked.device.type == "cuda"
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        np.testing.assert_allclose(to_np(p.detach()), to_np(q.detach()), rtol=1e-4, atol=1e-5, err_msg=name)


# ZeroRedundancyOptimizer keeps its flat buffers on the parameters' device (an earlier version
# made them on the CPU, which NCCL refuses).
def test_zero_optimizer_on_cuda_matches_single_process_training():
    """ZeRO-1 over NCCL: reduce_scatter(AVG) of the flat gradients, all_gather of the shards."""
    from bigmodel.distributed.optim import ZeroRedundancyOptimizer
    world, rank = dist.get_world_size(), dist.get_rank()
    bm.manual_seed(1)
    ref = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2))  # 56 parameters: padded shards
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2))
    model.load_state_dict(ref.state_dict())
    ref.to(dev())
    model.to(dev())
    opt = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=bm.optim.SGD, lr=0.1)
    ref_opt = bm.optim.SGD(ref.parameters(), lr=0.1)
    rng = np.random.default_rng(7)
    for _ in range(2):
        xs = [bm.tensor(rng.standard_normal((3, 5)), dtype=bm.float32) for _ in range(world)]
        opt.zero_grad()
        (model(xs[rank].to(dev())) ** 2).mean().backward()
        opt.step()
        ref_opt.zero_grad()
        (sum((ref(x.to(dev())) ** 2).mean() for x in xs) / world).backward()
        ref_opt.step()
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        assert p.device.type == "cuda", name
        np.testing.assert_allclose(to_np(p.detach()), to_np(q.detach()), rtol=1e-4, atol=1e-5, err_msg=name)


# "cuda" means the current device, as in PyTorch (core/device.cpp), so `model.to("cuda")` (as
# examples/train_cnn.py --ddp --device cuda does) lands on each rank's own GPU.
def test_plain_cuda_means_this_ranks_device():
    assert bm.zeros(2, device="cuda").device.index == bm.cuda.current_device()
    assert bm.zeros(2).to(device="cuda").device.index == bm.cuda.current_device()
