"""ProcessGroupNCCL's fault and overlap paths on the asynchronous emulated NCCL
(tests/cuda_emu/emu_nccl.cpp), each as a nested `mpirun -np 2` job on two emulated GPUs: its
own timeout (BIGMODEL_DIST_TIMEOUT / init_process_group(timeout=...)) fires and aborts the
communicator, a rank SIGKILLed mid-training ends the job with a clear error, a group with a
failed collective nobody waited for is destroyed without hanging, and async_op=True overlaps
the host. On a real NCCL these need a multi-GPU machine and a peer that dies; runs only in the
CUDA emulation build (rank 0 of an outer job runs them)."""
import shutil
import subprocess
import sys
import time

import pytest

from test_emu_nccl import _clean_env, _emulator_only, _shm_entries  # noqa: F401  (autouse fixture)


def _mpirun(script, extra_env, timeout=60, rank1_in_shell=False):
    """Runs `script` as a nested `mpirun -np 2` job on two emulated GPUs: (rc, output, seconds).
    rank1_in_shell: rank 1 runs as `sh -c 'python -c SCRIPT; sleep 5'`, so its Python process
    dying does not end the job at once (mpirun would kill rank 0 before it reports)."""
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun not found")
    import bigmodel.distributed as dist
    if not dist.is_mpi_available():
        pytest.skip("bigmodel was built without MPI")
    env = _clean_env({"BIGMODEL_EMU_DEVICES": "2", "OMP_NUM_THREADS": "1", **extra_env})
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe"]
    for var in ["PYTHONPATH", "BIGMODEL_EMU_DEVICES", "OMP_NUM_THREADS", "BIGMODEL_BUILD_DIR", "BIGMODEL_EMU_ASYNC",
                *extra_env]:
        if var in env:
            cmd += ["-x", var]
    if rank1_in_shell:
        cmd += ["-np", "1", sys.executable, "-c", script, ":", "-np", "1", "sh", "-c", '"$0" -c "$1"; sleep 5',
                sys.executable, script]
    else:
        cmd += ["-np", "2", sys.executable, "-c", script]
    before = _shm_entries()
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                              start_new_session=True)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the job hung\n{(e.output or b'').decode()[-3000:]}")
    out = proc.stdout.decode(errors="replace")
    assert _shm_entries() - before == set(), out[-3000:]
    return proc.returncode, out, time.monotonic() - start


def _line(out, prefix):
    lines = [line for line in out.splitlines() if line.startswith(prefix)]
    assert lines, f"no line starting with {prefix!r}:\n{out[-3000:]}"
    return lines[0]


_WRAPPER_TIMEOUT_SCRIPT = r"""
import os, sys, time
import bigmodel as bm, bigmodel.distributed as dist
dist.init_process_group("nccl", timeout=2)
rank = dist.get_rank()
t = bm.ones(8, device=f"cuda:{rank}")
dist.all_reduce(t)
print(f"rank {rank}: first all_reduce gave {t.cpu().numpy()[0]}", flush=True)
if rank == 1:
    print("rank 1 stops calling collectives", flush=True)
    time.sleep(30)
    sys.exit(0)
start = time.monotonic()
work = dist.all_reduce(t, async_op=True)
print(f"rank 0 enqueued in {time.monotonic() - start:.2f} s, completed: {work.is_completed()}", flush=True)
t2 = bm.ones(8, device="cuda:0")
work2 = dist.all_reduce(t2, async_op=True)  # pending behind the first
try:
    work.wait()
except RuntimeError as e:
    print(f"rank 0 raised after {time.monotonic() - start:.2f} s: {e}", flush=True)
try:
    work2.wait()  # the abort gave it up: it has no result
    print(f"rank 0: the second pending collective returned {t2.cpu().numpy()[0]}", flush=True)
except RuntimeError as e:
    print(f"rank 0: the second pending collective raised: {e}", flush=True)
start = time.monotonic()
try:
    dist.all_reduce(t)
except RuntimeError as e:
    print(f"rank 0 raised again after {time.monotonic() - start:.2f} s: {e}", flush=True)
os._exit(3)  # no MPI_Finalize (it would wait for rank 1): mpirun ends the job
"""


def test_process_group_timeout_fires_and_aborts_the_communicator():
    """bigmodel's own watchdog: the collective is pending (the emulated NCCL's timeout is far
    away), so ProcessGroupNCCL.wait_for's timeout (init_process_group(timeout=2)) fires, aborts
    the communicator and raises; later collectives raise at once; the job ends non-zero."""
    rc, out, took = _mpirun(_WRAPPER_TIMEOUT_SCRIPT, {"BIGMODEL_EMU_NCCL_TIMEOUT": "60"})
    assert rc != 0 and took < 30, out[-3000:]
    assert "rank 1: first all_reduce gave 2.0" in out, out[-3000:]
    enq = _line(out, "rank 0 enqueued in")
    assert float(enq.split()[4]) < 0.5 and enq.endswith("completed: False"), enq
    raised = _line(out, "rank 0 raised after")
    assert 1.9 < float(raised.split()[4]) < 4.0, raised
    assert "rank 0 timed out after 2 s" in raised and "BIGMODEL_DIST_TIMEOUT" in raised, raised
    assert "communicator was aborted" in raised, raised
    # The abort gave up the collective queued behind it: its wait() raises (it used to poll the
    # freed communicator and return as if it had completed).
    second = _line(out, "rank 0: the second pending collective")
    assert "raised" in second and "aborted after an earlier failure or timeout, so this collective's result cannot" in second, second
    again = _line(out, "rank 0 raised again after")
    assert float(again.split()[5]) < 1.0 and "communicator was aborted after an earlier failure" in again, again
    assert "emu-nccl" not in out, out[-3000:]  # the emulator itself saw no failure: the wrapper gave up first


_KILLED_RANK_SCRIPT = r"""
import os, signal, time
import numpy as np
import bigmodel as bm, bigmodel.distributed as dist
from bigmodel import nn
dist.init_process_group("nccl", timeout=20)
rank = dist.get_rank()
dev = f"cuda:{rank}"
bm.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).to(dev)
ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.0001)
opt = bm.optim.SGD(ddp.parameters(), lr=0.1)
rng = np.random.default_rng(rank)
start = time.monotonic()
try:
    for step in range(50):
        if step == 3:
            start = time.monotonic()
            if rank == 1:
                print("rank 1 is killed before step 3", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
        x = bm.tensor(rng.standard_normal((4, 8)), dtype=bm.float32).to(dev)
        y = bm.tensor(rng.integers(0, 3, 4)).to(dev)
        opt.zero_grad()
        nn.functional.cross_entropy(ddp(x), y).backward()
        opt.step()
        print(f"rank {rank} finished step {step}", flush=True)
except RuntimeError as e:
    print(f"rank {rank} raised after {time.monotonic() - start:.2f} s: {e}", flush=True)
    os._exit(4)
print(f"rank {rank} trained without noticing", flush=True)
"""


def test_a_rank_killed_mid_training_ends_the_job_with_a_clear_error():
    """Issue 7 part 5: rank 1 is SIGKILLed after 3 DDP steps; rank 0's gradient all-reduce sees
    the emulated NCCL's async error (the dead peer) and raises, naming the collective and the
    dead rank, long before any timeout; the job ends with rank 0's exit status. (Rank 1 runs
    under `sh -c`, so mpirun learns of its death only later: otherwise mpirun tears the job
    down at once and may kill rank 0 before it prints its message.)"""
    rc, out, took = _mpirun(_KILLED_RANK_SCRIPT, {"BIGMODEL_EMU_NCCL_TIMEOUT": "60"}, rank1_in_shell=True)
    assert rc == 4 and took < 40, out[-3000:]
    assert "rank 0 finished step 2" in out and "rank 1 finished step 2" in out, out[-3000:]
    assert "rank 1 finished step 3" not in out and "trained without noticing" not in out, out[-3000:]
    raised = _line(out, "rank 0 raised after")
    assert float(raised.split()[4]) < 5.0, raised
    assert "[all_reduce]" in raised and "NCCL error on rank 0" in raised, raised
    assert "another rank has probably died" in raised and "rank 1 (pid" in raised and "died" in raised, raised


_UNWAITED_SCRIPT = r"""
import os, signal, time
import bigmodel as bm, bigmodel.distributed as dist
dist.init_process_group("nccl", timeout=30)
rank = dist.get_rank()
t = bm.ones(8, device=f"cuda:{rank}")
dist.all_reduce(t)
if rank == 1:
    os.kill(os.getpid(), signal.SIGKILL)
work = dist.all_reduce(t, async_op=True)  # never waited for
del work
time.sleep(0.3)
start = time.monotonic()
dist.destroy_process_group()
print(f"rank 0 destroyed the group in {time.monotonic() - start:.2f} s", flush=True)
os._exit(5)
"""


def test_destroying_a_group_with_a_failed_unwaited_collective_does_not_hang():
    """ProcessGroupNCCL's destructor used to cudaStreamSynchronize its NCCL stream: a collective
    whose peer died never completes (on a GPU the kernel spins until ncclCommAbort), so it hung
    for good. It now polls the stream with the async error and the timeout, and aborts."""
    rc, out, took = _mpirun(_UNWAITED_SCRIPT, {"BIGMODEL_EMU_NCCL_TIMEOUT": "60"}, rank1_in_shell=True)
    assert rc == 5 and took < 40, out[-3000:]
    line = _line(out, "rank 0 destroyed the group in")
    assert float(line.split()[6]) < 3.0, line


_OVERLAP_SCRIPT = r"""
import time
import numpy as np
import bigmodel as bm, bigmodel.distributed as dist
dist.init_process_group("nccl")
rank, world = dist.get_rank(), dist.get_world_size()
dev = f"cuda:{rank}"
t = bm.full((1000,), float(rank + 1), device=dev)
g = [bm.zeros(3, device=dev) for _ in range(world)]
if rank == 1:
    time.sleep(1.0)  # rank 0's collectives wait for this rank
start = time.monotonic()
work = dist.all_reduce(t, async_op=True)
gather = dist.all_gather(g, bm.full((3,), float(10 * rank), device=dev), async_op=True)
issued = time.monotonic() - start
if rank == 0:
    first = work.is_completed()
    time.sleep(0.3)
    later = work.is_completed()
    while not (work.is_completed() and gather.is_completed()):
        time.sleep(0.005)
    print(f"rank 0: enqueued in {issued:.3f} s; completed at once {first}, after 0.3 s {later}, "
          f"both after {time.monotonic() - start:.2f} s", flush=True)
work.wait()
gather.wait()
v = t.cpu().numpy()
print(f"rank {rank}: all_reduce {v[0]} uniform {bool((v == v[0]).all())} all_gather "
      f"{[float(x.cpu().numpy()[0]) for x in g]}", flush=True)
dist.barrier()
dist.destroy_process_group()
"""


def test_async_collectives_overlap_the_host():
    """async_op=True returns before a late peer arrives: is_completed() is False until it has,
    then True, and wait() gives the reduced values."""
    rc, out, took = _mpirun(_OVERLAP_SCRIPT, {"BIGMODEL_EMU_NCCL_TIMEOUT": "20"})
    assert rc == 0, out[-3000:]
    line = _line(out, "rank 0: enqueued in")
    words = line.replace(";", "").replace(",", "").split()
    assert float(words[4]) < 0.5 and words[9] == "False" and words[13] == "False", line
    assert 0.5 < float(words[16]) < 5.0, line
    for r in (0, 1):
        assert f"rank {r}: all_reduce 3.0 uniform True all_gather [0.0, 10.0]" in out, out[-3000:]
