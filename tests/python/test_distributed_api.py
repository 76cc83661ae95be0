"""bigmodel.distributed in one process: errors before init, bad backends, the sampler's
arithmetic, and (in a subprocess, so MPI stays out of this one) world-size-1 behaviour."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import bigmodel as bm
import bigmodel.distributed as dist
from bigmodel import nn
from bigmodel.data.distributed import DistributedSampler
from bigmodel.nn.parallel import DistributedDataParallel


def test_not_initialised_errors():
    assert not dist.is_initialized()
    for fn in (dist.get_rank, dist.get_world_size, dist.barrier):
        with pytest.raises(RuntimeError, match=r"not initialised.*init_process_group"):
            fn()
    with pytest.raises(RuntimeError, match=r"\[all_reduce\] .*not initialised"):
        dist.all_reduce(bm.ones(2))
    with pytest.raises(RuntimeError, match=r"\[DistributedDataParallel\].*init_process_group"):
        DistributedDataParallel(nn.Linear(2, 2))


def test_backend_choice_errors():
    if not bm.cuda.is_available():
        with pytest.raises(RuntimeError, match=r"\[init_process_group\] (backend 'nccl' needs a CUDA GPU, but no "
                                               r"CUDA device is visible|bigmodel was built without the NCCL)"):
            dist.init_process_group("nccl")
    with pytest.raises(ValueError, match=r"\[init_process_group\] unknown backend 'gloo'"):
        dist.init_process_group("gloo")
    assert not dist.is_initialized()


def test_timeout_argument_errors():
    for bad, exc, msg in (("10", TypeError, "timeout must be a datetime.timedelta or a number"),
                          (True, TypeError, "timeout must be .* got bool"),
                          (-1, ValueError, r"timeout must be >= 0 seconds"),
                          (float("nan"), ValueError, r"timeout must be >= 0 seconds")):
        with pytest.raises(exc, match=r"\[init_process_group\] " + msg):
            dist.init_process_group("mpi", timeout=bad)
    assert not dist.is_initialized()


def test_collective_argument_types():
    with pytest.raises(TypeError, match=r"\[all_reduce\] expected a bigmodel Tensor"):
        dist.all_reduce(np.ones(2))
    with pytest.raises(TypeError, match=r"\[all_gather\] tensor_list must be a list"):
        dist.all_gather(bm.ones(2), bm.ones(2))


def test_sampler_partitions_without_a_group():
    data = list(range(11))
    parts = [list(DistributedSampler(data, num_replicas=3, rank=r, shuffle=False)) for r in range(3)]
    assert parts == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 0]]  # padded from the start
    dropped = [list(DistributedSampler(data, num_replicas=3, rank=r, shuffle=False, drop_last=True))
               for r in range(3)]
    assert all(len(p) == 3 for p in dropped) and len(set(sum(dropped, []))) == 9
    shuffled = [DistributedSampler(data, 2, r, shuffle=True, seed=7) for r in range(2)]
    first = [list(s) for s in shuffled]
    assert sorted(first[0] + first[1]) == sorted(data + [first[0][0]])
    for s in shuffled:
        s.set_epoch(1)
    assert [list(s) for s in shuffled] != first
    assert len(shuffled[0]) == 6


def test_sampler_bad_arguments():
    with pytest.raises(ValueError, match=r"\[DistributedSampler\] rank 2 is out of range"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(RuntimeError, match=r"\[DistributedSampler\].*init_process_group"):
        DistributedSampler(range(4))


@pytest.mark.skipif(not dist.is_available(), reason="bigmodel was built without MPI")
def test_world_size_one_in_subprocess():
    script = textwrap.dedent("""
        import numpy as np
        import bigmodel as bm
        import bigmodel.distributed as dist
        from bigmodel import nn, optim
        from bigmodel.nn.parallel import DistributedDataParallel as DDP
        dist.init_process_group()
        assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
        t = bm.tensor([1.5, -2.0])
        dist.all_reduce(t, dist.ReduceOp.AVG)
        assert t.tolist() == [1.5, -2.0]
        out = [bm.zeros(2)]
        dist.all_gather(out, t)
        assert out[0].tolist() == [1.5, -2.0]
        try:
            dist.init_process_group()
            raise SystemExit("second init did not raise")
        except RuntimeError as e:
            assert "already initialised" in str(e)
        bm.manual_seed(0); ddp = DDP(nn.Linear(3, 2))
        bm.manual_seed(0); ref = nn.Linear(3, 2)
        x = bm.randn(4, 3)
        ddp(x).sum().backward(); ref(x).sum().backward()
        np.testing.assert_allclose(ddp.module.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-6)
        dist.destroy_process_group()
        assert not dist.is_initialized()
        import datetime
        timeout = bm._C._distributed.collective_timeout_seconds
        assert timeout() == 600.0, timeout()  # the issue's default: 10 minutes
        dist.destroy_process_group()
        dist.init_process_group("mpi", timeout=datetime.timedelta(minutes=2))  # MPI stays up
        assert dist.get_world_size() == 1 and timeout() == 120.0, timeout()
        dist.destroy_process_group()
        dist.init_process_group("mpi", timeout=0)  # 0: wait forever, as BIGMODEL_DIST_TIMEOUT=0
        assert timeout() == 0.0
        dist.destroy_process_group()
        dist.init_process_group()  # no timeout given: back to the default
        assert timeout() == 600.0, timeout()
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if k != "BIGMODEL_DIST_TIMEOUT"}
    pkg = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "python")
    env["PYTHONPATH"] = pkg + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stdout + res.stderr
