"""Shared by the GIL tests (test_threads.py, test_numpy_copy.py): does another Python thread
run while `op` is inside bigmodel?

A counter thread sleeps without the GIL and takes it back to count. A huge switch interval
stops the interpreter from forcing a switch, so the counter can only move while `op`'s
thread has released the GIL itself. The same check with bigmodel's release switched off
(_C._set_kernel_gil_release(False)) must see no movement, so a test built on this can fail.
"""
import sys
import threading

import bigmodel as bm


def gil_moves(op, held_attempts, released_attempts):
    """(moved with the release off, moved with it on): whether the counter advanced during
    any of `held_attempts` / `released_attempts` calls of op()."""
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1
            stop.wait(0.0005)

    def advanced(attempts):
        for _ in range(attempts):
            before = counter[0]
            op()
            if counter[0] != before:
                return True
        return False

    old_interval = sys.getswitchinterval()
    t = threading.Thread(target=count, daemon=True)
    t.start()
    try:
        sys.setswitchinterval(1000.0)
        # Let the counter go round twice, so its waits for the GIL run on the new interval
        # (a wait begun on the old 5 ms one could still force a switch).
        start = counter[0]
        while counter[0] < start + 2:
            stop.wait(0.001)
        try:
            bm._C._set_kernel_gil_release(False)
            held = advanced(held_attempts)
        finally:
            bm._C._set_kernel_gil_release(True)
        released = advanced(released_attempts)
    finally:
        sys.setswitchinterval(old_interval)
        stop.set()
        t.join()
    return held, released
