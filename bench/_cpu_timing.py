"""Shared timing for the CPU peer benches (bigmodel against PyTorch in the same run).

Steps alternate (one of each per round) so that load from other processes falls on both
alike; each step's wall time and process CPU time are recorded (CPU time is far less
sensitive to a shared box's load)."""
import statistics
import time


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
