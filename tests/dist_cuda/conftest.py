"""The NCCL tier: run on a GPU machine as `mpirun -np N python -m pytest tests/dist_cuda` with
N <= the number of GPUs (NCCL allows one rank per GPU), or without mpirun as one process,
which still runs every collective through NCCL (a build without MPI supports only that).
bench/device_check.sh runs it. Without a GPU or NCCL the tests skip."""
import pytest

import bigmodel as bm
import bigmodel.distributed as dist

_REASON = None
if not bm.cuda.is_available():
    _REASON = "no CUDA GPU visible: the NCCL tier needs one GPU per rank"
elif not dist.is_nccl_available():
    _REASON = "bigmodel was built without NCCL"
else:
    try:
        if not dist.is_initialized():
            dist.init_process_group("nccl")
    except RuntimeError as e:  # built without NCCL, or more ranks than GPUs
        _REASON = f"init_process_group('nccl') failed: {e}"


@pytest.fixture(autouse=True)
def _needs_nccl():
    if _REASON:
        pytest.skip(_REASON)
    yield
    dist.barrier()
