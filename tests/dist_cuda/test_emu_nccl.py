"""The emulated NCCL (tests/cuda_emu/emu_nccl.cpp) against NCCL's documented rules, and the
NCCL process group's error paths on it. Runs only in the CUDA emulation build (elsewhere the
real NCCL would hang on these misuses). The library is driven directly (ctypes, one process
per rank, no MPI) for what our wrapper never does (in-place all-gather and reduce-scatter,
roots other than the wrapper's, every datatype and op, chunked buffers, init misuse) and for
its asynchrony (a collective returns at once and keeps its stream busy; errors surface through
ncclCommGetAsyncError; ncclCommAbort frees the stream), so a misreading in the emulator shows
here rather than as a false pass of the NCCL tier. A nested `mpirun -np 2` job checks that a
rank that stops calling collectives gives a clear error on the other rank instead of a hang
(more of ProcessGroupNCCL's fault paths: test_emu_nccl_faults.py). Also runnable as
`python test_emu_nccl.py worker MODE RANK NRANKS DEVICE IDHEX` (what the tests start)."""
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

HERE = os.path.abspath(__file__)
NCCL = {"int8": 0, "uint8": 1, "int32": 2, "int64": 4, "float16": 6, "float32": 7, "float64": 8, "bfloat16": 9}
SUM, PROD, MAX, MIN, AVG = range(5)
_RTOL = {"float16": 1e-3, "bfloat16": 1e-2, "float32": 1e-6, "float64": 1e-15}  # avg over 3 ranks rounds
OK, INVALID_ARGUMENT, INVALID_USAGE, REMOTE_ERROR = 0, 4, 5, 6
CUDA_NOT_READY = 600  # cudaErrorNotReady


class UniqueId(ctypes.Structure):
    _fields_ = [("internal", ctypes.c_char * 128)]


def _libbigmodel():
    """The libbigmodel.so that bigmodel._C loaded (its emulated NCCL and CUDA runtime)."""
    import bigmodel  # noqa: F401  (loads _C and libbigmodel)
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if line.rstrip().endswith("libbigmodel.so")}
    if not paths:
        return None
    lib = ctypes.CDLL(sorted(paths)[0])
    if not _is_emulated(lib):
        return lib
    ptr, i, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    comm_p = ctypes.POINTER(ptr)
    lib.ncclCommInitRank.argtypes = [comm_p, i, UniqueId, i]
    lib.ncclGetUniqueId.argtypes = [ctypes.POINTER(UniqueId)]
    lib.ncclAllReduce.argtypes = [ptr, ptr, sz, i, i, ptr, ptr]
    lib.ncclBroadcast.argtypes = [ptr, ptr, sz, i, i, ptr, ptr]
    lib.ncclAllGather.argtypes = [ptr, ptr, sz, i, ptr, ptr]
    lib.ncclReduceScatter.argtypes = [ptr, ptr, sz, i, i, ptr, ptr]
    lib.ncclCommGetAsyncError.argtypes = [ptr, ctypes.POINTER(i)]
    lib.ncclCommDestroy.argtypes = [ptr]
    lib.ncclCommAbort.argtypes = [ptr]
    lib.ncclGetLastError.argtypes = [ptr]
    lib.ncclGetLastError.restype = ctypes.c_char_p
    lib.cudaStreamCreateWithFlags.argtypes = [comm_p, ctypes.c_uint]
    lib.cudaStreamSynchronize.argtypes = [ptr]
    lib.cudaStreamQuery.argtypes = [ptr]
    lib.cudaStreamWaitEvent.argtypes = [ptr, ptr, ctypes.c_uint]
    lib.cudaStreamDestroy.argtypes = [ptr]
    lib.cudaEventCreate.argtypes = [comm_p]
    lib.cudaEventRecord.argtypes = [ptr, ptr]
    lib.cudaEventQuery.argtypes = [ptr]
    lib.cudaEventSynchronize.argtypes = [ptr]
    lib.cudaEventDestroy.argtypes = [ptr]
    lib.cudaMemcpy.argtypes = [ptr, ptr, sz, i]
    lib.cudaMemcpyAsync.argtypes = [ptr, ptr, sz, i, ptr]
    lib.ncclCommCuDevice.argtypes = [ptr, ctypes.POINTER(i)]
    lib.ncclCommUserRank.argtypes = [ptr, ctypes.POINTER(i)]
    lib.ncclCommCount.argtypes = [ptr, ctypes.POINTER(i)]
    return lib


def _is_emulated(lib):
    """The CUDA emulation build with the emulated NCCL compiled in."""
    return lib is not None and hasattr(lib, "_ZN6bm_emu15take_last_errorEv") and hasattr(lib, "ncclCommInitRank")


# ---------------------------------------------------------------- the worker (one rank)
def _rank_values(rank, n, dtype, seed=0, lo=-3, hi=4):
    v = np.random.default_rng(seed * 100 + rank).integers(0 if dtype == "uint8" else lo, hi, size=n)
    return v.astype(np.float32 if dtype == "bfloat16" else dtype)


def _buf(values, dtype):
    """Values as the bytes NCCL sees (bfloat16: the top half of float32, exact for small ints)."""
    if dtype == "bfloat16":
        return (values.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    return np.ascontiguousarray(values)


def _unbuf(buf, dtype):
    if dtype == "bfloat16":
        return (buf.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return buf.astype(np.float64)


def _reference(parts, op):
    stack = np.stack([p.astype(np.float64) for p in parts])
    return {SUM: np.sum, PROD: np.prod, MAX: np.max, MIN: np.min, AVG: np.mean}[op](stack, axis=0)


def _expect(rc, want, what):
    if rc != want:
        raise SystemExit(f"{what}: returned {rc}, expected {want}")


def _sync(lib):
    _expect(lib.cudaStreamSynchronize(None), 0, "cudaStreamSynchronize")


def _worker_collectives(lib, comm, rank, world):
    p = lambda a: a.ctypes.data  # noqa: E731  (device memory is host memory in the emulator)
    for dtype in NCCL:
        ops = [SUM, PROD, MAX, MIN] + ([AVG] if dtype in ("float16", "bfloat16", "float32", "float64") else [])
        for op in ops:
            n = 37
            parts = [_rank_values(r, n, dtype, seed=op) for r in range(world)]
            send = _buf(parts[rank], dtype)
            for in_place in (False, True):
                recv = send.copy() if in_place else np.zeros_like(send)
                src = recv if in_place else send
                _expect(lib.ncclAllReduce(p(src), p(recv), n, NCCL[dtype], op, comm, None), OK, f"allreduce {dtype}")
                _sync(lib)  # collectives are asynchronous: the stream holds the result
                np.testing.assert_allclose(_unbuf(recv, dtype), _reference(parts, op), rtol=_RTOL.get(dtype, 0),
                                           err_msg=f"allreduce {dtype} op {op} in_place {in_place}")
        # Broadcast from the last rank; sendbuff is ignored (NULL) elsewhere.
        root = world - 1
        n = 11
        data = _buf(_rank_values(root, n, dtype, seed=9), dtype)
        recv = np.zeros_like(data)
        send = data if rank == root else None
        _expect(lib.ncclBroadcast(p(send) if send is not None else None, p(recv), n, NCCL[dtype], root, comm, None),
                OK, "broadcast")
        _sync(lib)  # collectives are asynchronous: the stream holds the result
        np.testing.assert_array_equal(recv, data, err_msg=f"broadcast {dtype}")
        # AllGather: block q of recvbuff is rank q's sendbuff; in place when sendbuff == recvbuff + rank*count.
        n = 5
        mine = _buf(_rank_values(rank, n, dtype, seed=4), dtype)
        want = np.concatenate([_buf(_rank_values(q, n, dtype, seed=4), dtype) for q in range(world)])
        recv = np.zeros(world * n, dtype=mine.dtype)
        _expect(lib.ncclAllGather(p(mine), p(recv), n, NCCL[dtype], comm, None), OK, "allgather")
        _sync(lib)  # collectives are asynchronous: the stream holds the result
        np.testing.assert_array_equal(recv, want, err_msg=f"allgather {dtype}")
        recv = np.zeros(world * n, dtype=mine.dtype)
        recv[rank * n:(rank + 1) * n] = mine
        _expect(lib.ncclAllGather(recv.ctypes.data + rank * n * recv.itemsize, p(recv), n, NCCL[dtype], comm, None),
                OK, "allgather in place")
        _sync(lib)  # collectives are asynchronous: the stream holds the result
        np.testing.assert_array_equal(recv, want, err_msg=f"allgather in place {dtype}")
        # ReduceScatter: rank r gets block r of the reduction; in place when recvbuff == sendbuff + rank*recvcount.
        n = 6
        sends = [_rank_values(q, world * n, dtype, seed=5) for q in range(world)]
        want = _reference(sends, SUM)[rank * n:(rank + 1) * n]
        send = _buf(sends[rank], dtype)
        recv = np.zeros(n, dtype=send.dtype)
        _expect(lib.ncclReduceScatter(p(send), p(recv), n, NCCL[dtype], SUM, comm, None), OK, "reducescatter")
        _sync(lib)  # collectives are asynchronous: the stream holds the result
        np.testing.assert_allclose(_unbuf(recv, dtype), want, err_msg=f"reducescatter {dtype}")
        send = _buf(sends[rank], dtype).copy()
        _expect(lib.ncclReduceScatter(p(send), send.ctypes.data + rank * n * send.itemsize, n, NCCL[dtype], SUM, comm,
                                      None), OK, "reducescatter in place")
        _sync(lib)  # collectives are asynchronous: the stream holds the result
        np.testing.assert_allclose(_unbuf(send[rank * n:(rank + 1) * n], dtype), want,
                                   err_msg=f"reducescatter in place {dtype}")
    # Larger than the 4 MiB staging area: several chunks, odd sizes.
    n = 1_300_003
    x = (np.arange(n) % 977).astype(np.float32) * (rank + 1)
    # Both enqueued before one sync: the worker runs them in call order.
    _expect(lib.ncclAllReduce(p(x), p(x), n, NCCL["float32"], SUM, comm, None), OK, "big allreduce")
    rc = 700_001
    send = np.stack([np.full(rc, 10 * q + rank, np.float64) for q in range(world)]).ravel()
    recv = np.zeros(rc)
    _expect(lib.ncclReduceScatter(p(send), p(recv), rc, NCCL["float64"], MAX, comm, None), OK, "big reducescatter")
    _sync(lib)  # collectives are asynchronous: the stream holds the result
    np.testing.assert_array_equal(x, (np.arange(n) % 977).astype(np.float32) * sum(range(1, world + 1)))
    np.testing.assert_array_equal(recv, np.full(rc, 10 * rank + world - 1, np.float64))


def worker(mode, rank, world, device, id_hex):
    lib = _libbigmodel()
    _expect(lib.cudaSetDevice(device), 0, "cudaSetDevice")
    uid = UniqueId()
    ctypes.memmove(ctypes.byref(uid), bytes.fromhex(id_hex), 128)
    comm = ctypes.c_void_p()
    t0 = time.monotonic()
    rc = lib.ncclCommInitRank(ctypes.byref(comm), world, uid, rank)
    print(f"rank {rank} init rc {rc} after {time.monotonic() - t0:.1f} s", flush=True)
    if mode in ("duplicate", "absent", "nocarry"):
        return rc  # the test checks each rank's init result
    _expect(rc, OK, "ncclCommInitRank")
    out = ctypes.c_int()
    _expect(lib.ncclCommCuDevice(comm, ctypes.byref(out)), OK, "cudevice")
    assert out.value == device
    _expect(lib.ncclCommUserRank(comm, ctypes.byref(out)), OK, "userrank")
    assert out.value == rank
    _expect(lib.ncclCommCount(comm, ctypes.byref(out)), OK, "count")
    assert out.value == world
    a = np.ones(10, np.float32)
    special = {"mismatch": _worker_mismatch, "mismatch-op": _worker_mismatch, "stall": _worker_stall,
               "abort": _worker_abort, "die": _worker_die}
    if mode in special:
        return special[mode](lib, comm, rank, world, a, mode)
    if mode == "collectives":
        _worker_collectives(lib, comm, rank, world)
    elif mode == "async":
        _worker_async(lib, comm, rank, world)
    _expect(lib.ncclCommGetAsyncError(comm, ctypes.byref(out)), OK, "asyncerror")
    _expect(out.value, OK, "async error")
    _expect(lib.ncclCommDestroy(comm), OK, "destroy")
    print(f"rank {rank} done", flush=True)
    return 0


def _event(lib, stream=None):
    e = ctypes.c_void_p()
    _expect(lib.cudaEventCreate(ctypes.byref(e)), 0, "cudaEventCreate")
    _expect(lib.cudaEventRecord(e, stream), 0, "cudaEventRecord")
    return e


def _async_error(lib, comm):
    out = ctypes.c_int()
    _expect(lib.ncclCommGetAsyncError(comm, ctypes.byref(out)), OK, "ncclCommGetAsyncError")
    return out.value


def _poll_async_error(lib, comm, limit):
    """Polls ncclCommGetAsyncError (as a wrapper's watchdog does) until it reports an error."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        err = _async_error(lib, comm)
        if err != OK:
            return err
        time.sleep(0.01)
    raise SystemExit(f"no async error after {limit} s")


def _not_ready(lib, ev, what):
    # Three polls: the asynchronous streams mode (BIGMODEL_EMU_ASYNC=1) answers the first poll
    # of any pending work with not-ready; a collective keeps saying so.
    for _ in range(3):
        _expect(lib.cudaEventQuery(ev), CUDA_NOT_READY, what)


def _abort_frees(lib, comm, ev):
    """The collective hangs (its event is not ready) until ncclCommAbort gives it up."""
    _not_ready(lib, ev, "event after a failed collective, before the abort")
    t0 = time.monotonic()
    _expect(lib.ncclCommAbort(comm), OK, "ncclCommAbort")
    assert time.monotonic() - t0 < 1.0, "the abort waited"
    _expect(lib.cudaEventQuery(ev), 0, "event after the abort")
    _sync(lib)


def _enqueue(lib, comm, buf, n=None, op=SUM, stream=None, want=OK, what="ncclAllReduce"):
    """Enqueues an all-reduce; it must return at once (a collective is asynchronous)."""
    t0 = time.monotonic()
    rc = lib.ncclAllReduce(buf.ctypes.data, buf.ctypes.data, buf.size if n is None else n, NCCL["float32"], op,
                           comm, stream)
    _expect(rc, want, what)
    assert time.monotonic() - t0 < 0.5, f"{what} blocked for {time.monotonic() - t0:.2f} s"


def _worker_mismatch(lib, comm, rank, world, a, mode):
    # The last rank passes another count, or rank 0 another op: every rank's async error.
    n, op = (10 + (rank == world - 1), SUM) if mode == "mismatch" else (10, MAX if rank == 0 else SUM)
    _enqueue(lib, comm, a, n=n, op=op, what="mismatched collective")
    ev = _event(lib)
    _expect(_poll_async_error(lib, comm, 10), INVALID_USAGE, "async error of a mismatch")
    assert "collectives differ between ranks" in lib.ncclGetLastError(comm).decode()
    _enqueue(lib, comm, a, want=INVALID_USAGE, what="a later collective")  # returns the error at once
    _abort_frees(lib, comm, ev)
    print(f"rank {rank} done", flush=True)
    return 0


def _worker_stall(lib, comm, rank, world, a, mode):
    if rank == world - 1:  # never calls the collective
        time.sleep(2)
        _expect(lib.ncclCommDestroy(comm), OK, "destroy")
        return 0
    t0 = time.monotonic()
    _enqueue(lib, comm, a, what="collective with a stalled rank")
    ev = _event(lib)
    time.sleep(0.3)
    _expect(_async_error(lib, comm), OK, "async error while the peer is late")
    _not_ready(lib, ev, "event of a collective whose peer is late")
    _expect(_poll_async_error(lib, comm, 10), REMOTE_ERROR, "async error after the timeout")
    waited = time.monotonic() - t0
    assert 0.9 < waited < 3.5, waited
    assert "BIGMODEL_EMU_NCCL_TIMEOUT" in lib.ncclGetLastError(comm).decode()
    _enqueue(lib, comm, a, want=REMOTE_ERROR, what="a later collective")
    _abort_frees(lib, comm, ev)
    print(f"rank {rank} done", flush=True)
    return 0


def _worker_abort(lib, comm, rank, world, a, mode):
    if rank == world - 1:  # late: rank 0 gives up first
        time.sleep(1.5)
        _expect(lib.ncclCommDestroy(comm), OK, "destroy")
        return 0
    _enqueue(lib, comm, a)
    ev = _event(lib)
    time.sleep(0.3)
    _expect(_async_error(lib, comm), OK, "async error while the peer is late")
    _abort_frees(lib, comm, ev)
    np.testing.assert_array_equal(a, np.ones(10, np.float32))  # it never ran
    print(f"rank {rank} done", flush=True)
    return 0


def _worker_die(lib, comm, rank, world, a, mode):
    _enqueue(lib, comm, a)
    _sync(lib)
    np.testing.assert_array_equal(a, np.full(10, world, np.float32))
    if rank == world - 1:
        print(f"rank {rank} kills itself", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    t0 = time.monotonic()
    _enqueue(lib, comm, a)
    ev = _event(lib)
    _expect(_poll_async_error(lib, comm, 10), REMOTE_ERROR, "async error after a peer died")
    msg = lib.ncclGetLastError(comm).decode()
    print(f"rank {rank} async error after {time.monotonic() - t0:.2f} s: {msg}", flush=True)
    assert f"rank {world - 1} (pid" in msg and "died" in msg, msg
    _abort_frees(lib, comm, ev)
    print(f"rank {rank} done", flush=True)
    return 0


def _worker_async(lib, comm, rank, world):
    """Stream semantics of a pending collective: the last rank arrives late each time."""
    total = world * (world + 1) / 2
    x = np.full(1000, rank + 1.0, np.float32)
    s1, s2 = ctypes.c_void_p(), ctypes.c_void_p()
    _expect(lib.cudaStreamCreateWithFlags(ctypes.byref(s1), 1), 0, "non-blocking stream")
    _expect(lib.cudaStreamCreateWithFlags(ctypes.byref(s2), 0), 0, "blocking stream")
    late = rank == world - 1
    # 1. An event after it is not ready; the stream is busy; cudaStreamWaitEvent passes it on
    # to s2; the legacy stream's synchronous cudaMemcpy waits for s2 (a blocking stream).
    if late:
        time.sleep(1.0)
    t0 = time.monotonic()
    _enqueue(lib, comm, x, stream=s1)
    ev = _event(lib, s1)
    if not late:
        _not_ready(lib, ev, "event after a pending collective")
        _expect(lib.cudaStreamQuery(s1), CUDA_NOT_READY, "its stream")
        np.testing.assert_array_equal(x, np.full(1000, rank + 1.0, np.float32))  # not run yet
    _expect(lib.cudaStreamWaitEvent(s2, ev, 0), 0, "cudaStreamWaitEvent")
    if not late:
        _expect(lib.cudaStreamQuery(s2), CUDA_NOT_READY, "the stream that waits for it")
        _expect(lib.cudaStreamQuery(s2), CUDA_NOT_READY, "the stream that waits for it")
    dst = np.zeros(1000, np.float32)
    _expect(lib.cudaMemcpy(dst.ctypes.data, x.ctypes.data, dst.nbytes, 2), 0, "cudaMemcpy")
    if not late:
        assert time.monotonic() - t0 > 0.5, "cudaMemcpy did not wait for the collective"
    np.testing.assert_array_equal(dst, np.full(1000, total, np.float32))
    _expect(lib.cudaStreamQuery(s2), 0, "s2 after the collective")
    # 2. cudaEventSynchronize and 3. cudaDeviceSynchronize wait for it too.
    for step, sync in ((2, lambda e: lib.cudaEventSynchronize(e)), (3, lambda e: lib.cudaDeviceSynchronize())):
        y = np.full(100, float(rank + step), np.float32)
        if late:
            time.sleep(0.6)
        t0 = time.monotonic()
        _enqueue(lib, comm, y, stream=s1)
        ev = _event(lib, s1)
        _expect(sync(ev), 0, f"sync {step}")
        if not late:
            assert time.monotonic() - t0 > 0.3, f"sync {step} did not wait for the collective"
        np.testing.assert_array_equal(y, np.full(100, total + world * (step - 1), np.float32))
        _expect(lib.cudaEventQuery(ev), 0, "event after its sync")
    for s in (s1, s2):
        _expect(lib.cudaStreamDestroy(s), 0, "cudaStreamDestroy")


# ---------------------------------------------------------------- the tests
_LIB = _libbigmodel() if __name__ != "__main__" else None


@pytest.fixture(autouse=True)
def _emulator_only():
    """Overrides the tier's fixture: these tests start their own processes (rank 0 only)."""
    import bigmodel.distributed as dist
    if not _is_emulated(_LIB):
        pytest.skip("needs the CUDA emulation build with the emulated NCCL (tests/cuda_emu/emu_nccl.cpp)")
    outer = dist.is_initialized() and dist.get_world_size() > 1
    if outer and dist.get_rank() != 0:
        dist.barrier()
        pytest.skip("rank 0 runs these")
    yield
    if outer:
        dist.barrier()


def _shm_entries():
    return {f for f in os.listdir("/dev/shm") if f.startswith("bm_emu_nccl_")}


def _clean_env(extra):
    prefixes = ("OMPI_", "PMIX_", "OPAL_", "ORTE_", "PRTE_", "HYDRA_", "PMI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    repo = os.path.abspath(os.path.join(os.path.dirname(HERE), "..", ".."))
    env["PYTHONPATH"] = os.path.join(repo, "python") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _run_ranks(mode, devices, ids=None, timeout_s="1", world=None):
    """Starts one worker per entry of `devices`; returns [(rc, output)] by rank."""
    world = world or len(devices)
    uid = UniqueId()
    assert _LIB.ncclGetUniqueId(ctypes.byref(uid)) == 0
    ids = ids or [bytes(uid).hex()] * len(devices)
    env = _clean_env({"BIGMODEL_EMU_DEVICES": "4", "BIGMODEL_EMU_NCCL_TIMEOUT": timeout_s, "OMP_NUM_THREADS": "1"})
    before = _shm_entries()
    procs = [subprocess.Popen([sys.executable, HERE, "worker", mode, str(r), str(world), str(d), ids[r]], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for r, d in enumerate(devices)]
    results = []
    for pr in procs:
        try:
            out, _ = pr.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"mode {mode}: a rank hung")
        results.append((pr.returncode, out.decode(errors="replace")))
    assert _shm_entries() - before == set(), f"/dev/shm litter after {mode}"
    return results


def test_collectives_follow_the_documented_semantics():
    """Every datatype and op, in and out of place, roots, chunked buffers; 3 ranks."""
    for rc, out in _run_ranks("collectives", devices=[0, 1, 2]):
        assert rc == 0, out[-3000:]


def test_mismatched_collectives_fail_on_every_rank_through_the_async_error():
    """A mismatch becomes every rank's async error (ncclInvalidUsage); the collective hangs until
    ncclCommAbort, as on a GPU (the emulator used to return the error from the call itself and
    keep the communicator usable, which no real NCCL does)."""
    for rank, (rc, out) in enumerate(_run_ranks("mismatch", devices=[0, 1, 2])):
        assert rc == 0, out[-3000:]
    # Rank 0 names both calls.
    out0 = _run_ranks("mismatch", devices=[0, 1])[0][1]
    assert "collectives differ between ranks" in out0 and "count=10" in out0 and "count=11" in out0, out0
    out0 = _run_ranks("mismatch-op", devices=[0, 1])[0][1]
    assert "ncclAllReduce(count=10, float32, max)" in out0 and "ncclAllReduce(count=10, float32, sum)" in out0, out0


def test_two_ranks_on_one_device_are_refused():
    results = _run_ranks("duplicate", devices=[1, 1])
    for rc, out in results:
        assert f"init rc {INVALID_USAGE}" in out and "Duplicate GPU detected" in out, out


def test_an_id_that_was_not_carried_fails_init_on_every_rank():
    uid = UniqueId()
    assert _LIB.ncclGetUniqueId(ctypes.byref(uid)) == 0
    other = UniqueId()
    assert _LIB.ncclGetUniqueId(ctypes.byref(other)) == 0
    assert bytes(uid) != bytes(other)
    # Rank 1 got no id at all (zeros): refused at once; rank 0 gives up after the timeout.
    r0, r1 = _run_ranks("nocarry", devices=[0, 1], ids=[bytes(uid).hex(), "00" * 128])
    assert f"init rc {INVALID_ARGUMENT}" in r1[1] and "did not make" in r1[1], r1[1]
    assert f"init rc {REMOTE_ERROR}" in r0[1] and "only 1 of 2 ranks joined" in r0[1], r0[1]
    # Rank 1 made its own id: both wait for a peer that never comes.
    for rc, out in _run_ranks("absent", devices=[0, 1], ids=[bytes(uid).hex(), bytes(other).hex()]):
        assert f"init rc {REMOTE_ERROR}" in out and "only 1 of 2 ranks joined" in out, out


def test_segment_of_a_killed_process_is_removed_by_the_next_unique_id():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=subprocess.PIPE)
    stale = f"/dev/shm/bm_emu_nccl_{int(dead.stdout)}_0123456789abcdef"
    open(stale, "wb").close()
    try:
        assert _LIB.ncclGetUniqueId(ctypes.byref(UniqueId())) == 0
        assert not os.path.exists(stale)
    finally:
        if os.path.exists(stale):
            os.unlink(stale)


def test_a_stalled_rank_times_out_and_breaks_the_communicator():
    """The call returns at once; after BIGMODEL_EMU_NCCL_TIMEOUT the async error is set, the
    collective still hangs, later calls fail at once, and ncclCommAbort frees the stream."""
    for rc, out in _run_ranks("stall", devices=[0, 1]):
        assert rc == 0, out[-3000:]


def test_collectives_are_asynchronous_and_their_streams_busy_until_done():
    """Events after a pending collective are not ready, cudaStreamWaitEvent passes it on, and
    cudaMemcpy / cudaEventSynchronize / cudaDeviceSynchronize wait for it."""
    for rc, out in _run_ranks("async", devices=[0, 1], timeout_s="20"):
        assert rc == 0, out[-3000:]


def test_abort_gives_up_a_pending_collective():
    for rc, out in _run_ranks("abort", devices=[0, 1], timeout_s="20"):
        assert rc == 0, out[-3000:]


def test_a_peer_process_that_dies_sets_the_async_error():
    """A killed peer is noticed (its pid, recorded at init, is gone or a zombie) long before the
    emulator's own timeout, as a real NCCL's proxy notices a closed socket."""
    (rc0, out0), (rc1, out1) = _run_ranks("die", devices=[0, 1], timeout_s="30")
    assert rc1 == -signal.SIGKILL, out1[-3000:]
    assert rc0 == 0, out0[-3000:]
    after = [line for line in out0.splitlines() if line.startswith("rank 0 async error after")]
    assert after and float(after[0].split()[5]) < 3.0, out0[-3000:]


_STALL_SCRIPT = r"""
import os, sys, time
import bigmodel as bm, bigmodel.distributed as dist
dist.init_process_group("nccl")
rank = dist.get_rank()
t = bm.ones(8, device=f"cuda:{rank}")
dist.all_reduce(t)
print(f"rank {rank}: first all_reduce gave {t.cpu().numpy()[0]}", flush=True)
if rank == 1:
    print("rank 1 stops calling collectives", flush=True)
    time.sleep(60)
    sys.exit(0)
start = time.monotonic()
try:
    dist.all_reduce(t)
except RuntimeError as e:
    print(f"rank 0 raised after {time.monotonic() - start:.1f} s: {e}", flush=True)
start = time.monotonic()
try:
    dist.all_reduce(t)
except RuntimeError as e:
    print(f"rank 0 raised again after {time.monotonic() - start:.2f} s: {e}", flush=True)
os._exit(3)  # no MPI_Finalize (it would wait for rank 1): mpirun ends the job
"""


def test_process_group_reports_a_rank_that_stops_calling_collectives():
    """Through ProcessGroupNCCL (a nested mpirun job): rank 0's collective raises, naming the
    rank and the likely cause, the communicator is aborted so later ones raise at once, and
    the job ends non-zero. Here the emulated NCCL's own timeout (2 s, below the wrapper's)
    fires: wait() sees it through ncclCommGetAsyncError."""
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun not found")
    import bigmodel.distributed as dist
    if not dist.is_mpi_available():
        pytest.skip("bigmodel was built without MPI")
    env = _clean_env({"BIGMODEL_EMU_DEVICES": "2", "BIGMODEL_EMU_NCCL_TIMEOUT": "2", "OMP_NUM_THREADS": "1"})
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "-x", "PYTHONPATH", "-x",
           "BIGMODEL_EMU_DEVICES", "-x", "BIGMODEL_EMU_NCCL_TIMEOUT", "-x", "OMP_NUM_THREADS"]
    if "BIGMODEL_BUILD_DIR" in env:
        cmd += ["-x", "BIGMODEL_BUILD_DIR"]
    before = _shm_entries()
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd + [sys.executable, "-c", _STALL_SCRIPT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=120, start_new_session=True)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the job hung\n{(e.output or b'').decode()[-3000:]}")
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode != 0, out[-3000:]
    assert "rank 0: first all_reduce gave 2.0" in out and "rank 1: first all_reduce gave 2.0" in out, out[-3000:]
    assert "rank 0 raised after" in out and "NCCL error on rank 0" in out, out[-3000:]
    assert "another rank has probably died" in out, out[-3000:]
    # NCCL's own account (ncclGetLastError) is part of the message.
    assert "NCCL says: rank 0: ncclAllReduce: no progress after 2 s (BIGMODEL_EMU_NCCL_TIMEOUT)" in out, out[-3000:]
    again = [line for line in out.splitlines() if line.startswith("rank 0 raised again after")]
    assert again and float(again[0].split()[5]) < 1.0, out[-3000:]
    # The failed communicator was aborted (NCCL's error model), not left to be destroyed.
    assert "communicator was aborted after an earlier failure" in again[0], out[-3000:]
    assert time.monotonic() - start < 60, out[-3000:]
    assert _shm_entries() - before == set()


# backend=None with more ranks on a node than GPUs (a CPU job under `mpirun -np 2` on a 1-GPU
# machine) stays on MPI: NCCL would refuse the duplicate GPU (distributed/process_group.cpp).
def test_default_backend_with_more_ranks_than_gpus_still_starts():
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun not found")
    script = ("import bigmodel as bm, bigmodel.distributed as dist\n"
              "dist.init_process_group()\n"
              "t = bm.ones(3) * (dist.get_rank() + 1)\n"
              "dist.all_reduce(t)\n"
              "print(f'rank {dist.get_rank()} {dist.get_backend()} sum {t.numpy()[0]}', flush=True)\n")
    env = _clean_env({"BIGMODEL_EMU_DEVICES": "1", "BIGMODEL_EMU_NCCL_TIMEOUT": "5", "OMP_NUM_THREADS": "1"})
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "-x", "PYTHONPATH", "-x",
           "BIGMODEL_EMU_DEVICES", "-x", "BIGMODEL_EMU_NCCL_TIMEOUT"]
    if "BIGMODEL_BUILD_DIR" in env:
        cmd += ["-x", "BIGMODEL_BUILD_DIR"]
    proc = subprocess.run(cmd + [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=120, start_new_session=True)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0 and "rank 1 mpi sum 3.0" in out, out[-3000:]


if __name__ == "__main__" and len(sys.argv) == 7 and sys.argv[1] == "worker":
    sys.exit(worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]))
