"""The NCCL tier: run on a GPU machine as `mpirun -np N python -m pytest tests/dist_cuda` with
N <= the number of GPUs (NCCL allows one rank per GPU), or without mpirun as one process,
which still runs every collective through NCCL (a build without MPI supports only that).
bench/device_check.sh runs it; on a machine without GPUs the CUDA emulation build runs it with
emulated GPUs and an emulated NCCL (tests/cuda_emu, BIGMODEL_EMU_DEVICES=N). Without a GPU or
NCCL, or with more ranks on this node than GPUs, the tests skip; when they fit, a failing
init_process_group('nccl') fails every test (it is what the tier tests: each rank on its own
GPU, the unique id carried to every rank)."""
import os

import pytest

import bigmodel as bm
import bigmodel.distributed as dist


def _ranks_on_this_node():
    for var in ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "LOCAL_WORLD_SIZE"):
        v = os.environ.get(var, "")
        if v.isdigit():
            return int(v)
    return 1


_REASON = None
_INIT_ERROR = None
if not bm.cuda.is_available():
    _REASON = "no CUDA GPU visible: the NCCL tier needs one GPU per rank"
elif not dist.is_nccl_available():
    _REASON = "bigmodel was built without NCCL"
elif int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1 and not dist.is_mpi_available():
    _REASON = "bigmodel was built without MPI: the NCCL tier runs as one process only"
elif _ranks_on_this_node() > bm.cuda.device_count():
    _REASON = (f"{_ranks_on_this_node()} ranks on this node but {bm.cuda.device_count()} GPU(s): "
               "NCCL takes one GPU per rank")
else:
    try:
        if not dist.is_initialized():
            dist.init_process_group("nccl")
    except RuntimeError as e:
        _INIT_ERROR = f"init_process_group('nccl') failed: {e}"


@pytest.fixture(autouse=True)
def _needs_nccl():
    if _REASON:
        pytest.skip(_REASON)
    if _INIT_ERROR:
        pytest.fail(_INIT_ERROR)
    yield
    dist.barrier()
