"""DistributedDataParallel over MPI: after a few SGD steps on rank-dependent data the ranks
hold identical parameters equal to one process training on the concatenated batch;
no_sync accumulates; unused parameters raise unless find_unused_parameters=True."""
import numpy as np
import pytest

import bigmodel as bm
import bigmodel.distributed as dist
from bigmodel import nn, optim
from bigmodel.nn.parallel import DistributedDataParallel as DDP


def make_model(seed):
    bm.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))


def batch(rank, step):
    g = np.random.default_rng(100 * step + rank)
    return (bm.tensor(g.standard_normal((6, 4)), dtype=bm.float32),
            bm.tensor(g.standard_normal((6, 3)), dtype=bm.float32))


def params_np(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


def assert_same_on_all_ranks(arrays):
    for a in arrays:
        t = bm.tensor(a)
        gathered = [bm.zeros(*a.shape, dtype=t.dtype) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, t)
        for g in gathered:
            np.testing.assert_array_equal(g.numpy(), a)


@pytest.mark.parametrize("bucket_cap_mb", [25, 0.0002])  # one bucket; several small ones
def test_ddp_matches_single_process_on_concatenated_batch(bucket_cap_mb):
    n, r = dist.get_world_size(), dist.get_rank()
    model = DDP(make_model(seed=1 + r), bucket_cap_mb=bucket_cap_mb)  # rank 0's init wins
    if bucket_cap_mb < 1:
        assert len(model._buckets) > 1
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ref = make_model(seed=1)
    ref_opt = optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for step in range(3):
        x, y = batch(r, step)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        xs, ys = zip(*(batch(q, step) for q in range(n)))
        ref_opt.zero_grad()
        nn.functional.mse_loss(ref(bm.cat(list(xs))), bm.cat(list(ys))).backward()
        ref_opt.step()
    mine = params_np(model.module)
    assert_same_on_all_ranks(mine)
    for a, e in zip(mine, params_np(ref)):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def grads_of(model, x, y):
    model.zero_grad()
    nn.functional.mse_loss(model(x), y).backward()
    return [p.grad.numpy().copy() for p in model.parameters()]


def test_no_sync_accumulates_then_reduces():
    n, r = dist.get_world_size(), dist.get_rank()
    model = DDP(make_model(seed=3))
    xa, ya = batch(r, 10)
    xb, yb = batch(r, 11)
    model.zero_grad()
    with model.no_sync():
        nn.functional.mse_loss(model(xa), ya).backward()
    local_a = [p.grad.numpy().copy() for p in model.parameters()]
    nn.functional.mse_loss(model(xb), yb).backward()  # synchronised: reduces a + b
    ref = make_model(seed=3)
    expected = None
    for q in range(n):
        ga = grads_of(ref, *batch(q, 10))
        gb = grads_of(ref, *batch(q, 11))
        if q == r:  # inside no_sync the gradient stayed local
            for a, e in zip(local_a, ga):
                np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-7)
        s = [a + b for a, b in zip(ga, gb)]
        expected = s if expected is None else [e + x for e, x in zip(expected, s)]
    for p, e in zip(model.parameters(), expected):
        np.testing.assert_allclose(p.grad.numpy(), e / n, rtol=1e-5, atol=1e-7)


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 3)
        self.unused = nn.Linear(4, 3)

    def forward(self, x):
        return self.body(x)


def test_unused_parameter_raises():
    bm.manual_seed(5)
    model = DDP(TwoHeads())
    x, y = batch(dist.get_rank(), 20)
    nn.functional.mse_loss(model(x), y).backward()
    with pytest.raises(RuntimeError, match=r"\[DistributedDataParallel\].*unused\.weight.*find_unused_parameters"):
        model(x)


def test_find_unused_parameters_reduces_the_used_ones():
    n, r = dist.get_world_size(), dist.get_rank()
    bm.manual_seed(5)
    model = DDP(TwoHeads(), find_unused_parameters=True)
    for step in range(2):  # a second iteration works too (no error about the unused head)
        model.zero_grad()
        x, y = batch(r, 30 + step)
        nn.functional.mse_loss(model(x), y).backward()
    bm.manual_seed(5)
    ref = TwoHeads()
    expected = None
    for q in range(n):
        ref.zero_grad()
        x, y = batch(q, 31)
        nn.functional.mse_loss(ref(x), y).backward()
        g = ref.body.weight.grad.numpy().copy()
        expected = g if expected is None else expected + g
    np.testing.assert_allclose(model.module.body.weight.grad.numpy(), expected / n, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(model.module.unused.weight.grad.numpy(), 0.0)


def test_wrap_broadcasts_parameters_and_buffers():
    r = dist.get_rank()
    bm.manual_seed(40 + r)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    net[1].running_mean.copy_(bm.full((4,), float(r + 1)))
    DDP(net)
    assert_same_on_all_ranks(params_np(net))
    np.testing.assert_array_equal(net[1].running_mean.numpy(), 1.0)
