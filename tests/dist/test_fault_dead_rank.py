"""Fault injection for data-parallel training: a rank that dies (SIGKILL) or stops calling
collectives mid-training must make the whole job end with a non-zero exit, never hang.

Each test launches its own 2-rank job (`mpirun -np 2 python this_file MODE`), so the
fault does not take down the dist tier; in the dist tier only rank 0 launches it. Run
alone with `python -m pytest tests/dist/test_fault_dead_rank.py` too.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import bigmodel.distributed as dist

JOB_TIMEOUT_S = 150  # far above what a healthy run of the scenario takes (~10 s)


@pytest.fixture(autouse=True)
def _needs_two_ranks():
    """Overrides the tier's fixture: these tests make their own 2-rank job."""
    if not dist.is_available():
        pytest.skip("bigmodel was built without MPI")
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun not found (apt-get install openmpi-bin)")
    outer = dist.is_initialized() and dist.get_world_size() > 1
    if outer and dist.get_rank() != 0:
        dist.barrier()
        pytest.skip("the nested job is launched by rank 0 only")
    yield
    if outer:
        dist.barrier()


def _clean_env(extra):
    """This process's environment without the outer MPI job's variables (a nested mpirun
    would otherwise join that job), plus `extra`."""
    prefixes = ("OMPI_", "PMIX_", "OPAL_", "ORTE_", "PRTE_", "HYDRA_", "PMI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    env["PYTHONPATH"] = os.path.join(repo, "python") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _launch(mode, timeout_env):
    env = _clean_env({"BIGMODEL_DIST_TIMEOUT": str(timeout_env)})
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "-x", "PYTHONPATH",
           "-x", "BIGMODEL_DIST_TIMEOUT"]
    if "BIGMODEL_BUILD_DIR" in env:
        cmd += ["-x", "BIGMODEL_BUILD_DIR"]
    cmd += [sys.executable, os.path.abspath(__file__), mode]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=JOB_TIMEOUT_S, start_new_session=True)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the job hung: still running after {JOB_TIMEOUT_S} s\n{(e.output or b'').decode()[-3000:]}")
    return proc.returncode, proc.stdout.decode(errors="replace"), time.monotonic() - start


def test_dead_rank_ends_the_job_with_an_error():
    rc, out, elapsed = _launch("kill", timeout_env=30)
    assert rc != 0, out[-3000:]
    assert "rank 1 killing itself at step 3" in out, out[-3000:]
    assert "training finished" not in out, out[-3000:]
    assert elapsed < JOB_TIMEOUT_S


def test_rank_that_stops_calling_collectives_times_out_with_a_clear_error():
    rc, out, elapsed = _launch("hang", timeout_env=4)
    assert rc != 0, out[-3000:]
    assert "rank 1 stops calling collectives at step 3" in out, out[-3000:]
    # Rank 0's collective gave up after BIGMODEL_DIST_TIMEOUT and said why.
    assert "timed out after 4 s" in out and "BIGMODEL_DIST_TIMEOUT" in out, out[-3000:]
    assert "training finished" not in out, out[-3000:]


def test_timeout_argument_of_init_process_group():
    # BIGMODEL_DIST_TIMEOUT says 100 s; init_process_group(timeout=4 s) wins.
    rc, out, elapsed = _launch("hang-arg", timeout_env=100)
    assert rc != 0, out[-3000:]
    assert "rank 1 stops calling collectives at step 3" in out, out[-3000:]
    assert "timed out after 4 s" in out and "init_process_group(timeout=...)" in out, out[-3000:]
    assert "training finished" not in out, out[-3000:]


def _train(mode):
    """The job each test launches: DDP training where rank 1 fails at step 3."""
    import numpy as np

    import bigmodel as bm
    from bigmodel import nn, optim
    from bigmodel.nn.parallel import DistributedDataParallel as DDP

    if mode == "hang-arg":  # the timeout from the argument, not the environment
        import datetime
        dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=4))
    else:
        dist.init_process_group("mpi")
    rank = dist.get_rank()
    bm.manual_seed(0)
    model = DDP(nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2)))
    opt = optim.SGD(model.parameters(), lr=0.05)
    g = np.random.default_rng(rank)
    for step in range(20):
        if rank == 1 and step == 3:
            if mode == "kill":
                print("rank 1 killing itself at step 3", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            print("rank 1 stops calling collectives at step 3", flush=True)
            time.sleep(JOB_TIMEOUT_S)
        x = bm.tensor(g.standard_normal((4, 8)), dtype=bm.float32)
        y = bm.tensor(g.standard_normal((4, 2)), dtype=bm.float32)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    print(f"rank {rank}: training finished", flush=True)


if __name__ == "__main__":
    _train(sys.argv[1])
