"""Shared timing for the CPU peer benches (bigmodel against PyTorch in the same run).

Steps alternate (one of each per round) so that load from other processes falls on both
alike; each step's wall time and process CPU time are recorded (CPU time is far less
sensitive to a shared box's load). Also the benches' thread setting and their PyTorch peer."""
import os
import statistics
import time


def default_threads():
    """OMP_NUM_THREADS, 1 unless set (on the shared 2-core box more threads only measure
    oversubscription), and OpenBLAS's count to match; the count. Call it before numpy,
    OpenBLAS or bigmodel load: they read the variables once."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ["OMP_NUM_THREADS"])
    return int(os.environ["OMP_NUM_THREADS"])


def torch_peer(threads):
    """PyTorch running `threads` threads, or None where it is not importable (the bench then
    times bigmodel alone)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def time_alternating(steps, warmup, repeat):
    """Warms every step up, then times them in turn; [(median ms, best ms, median CPU ms)]."""
    for step in steps:
        for _ in range(warmup):
            step()
    wall = [[] for _ in steps]
    cpu = [[] for _ in steps]
    for _ in range(repeat):
        for step, ws, cs in zip(steps, wall, cpu):
            c0, t0 = time.process_time(), time.perf_counter()
            step()
            ws.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)
    return [(statistics.median(ws) * 1e3, min(ws) * 1e3, statistics.median(cs) * 1e3) for ws, cs in zip(wall, cpu)]
