"""The dist tier: run as `mpirun -np 2 python -m pytest tests/dist`; every rank runs the same
tests in the same order (collectives must match across ranks). Without mpirun (world size
1) or without MPI in the build, the tests skip."""
import pytest

import bigmodel.distributed as dist

if dist.is_mpi_available() and not dist.is_initialized():
    dist.init_process_group("mpi")


@pytest.fixture(autouse=True)
def _needs_two_ranks():
    if not dist.is_mpi_available():
        pytest.skip("bigmodel was built without MPI")
    if dist.get_world_size() < 2:
        pytest.skip("the dist tier needs mpirun -np 2 (or more)")
    yield
    dist.barrier()  # keeps the ranks in step between tests
