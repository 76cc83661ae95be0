"""bm.cpu: the CPU allocator's memory statistics and its cache of large blocks (and the
device helpers torch.cpu has: is_available, device_count, synchronize).

The CPU allocator keeps freed blocks of 128 KiB and more (binned by size class, at most
BIGMODEL_CPU_CACHE_MB megabytes, default 1024) and hands them to the next request of the same
class, so a training step that allocates the same large tensors every iteration does not pay
for fresh pages each time. The cache is on by default; it is off with BIGMODEL_CPU_CACHE=0 and
in AddressSanitizer builds (a reused block would hide a use-after-free; BIGMODEL_CPU_CACHE=1
turns it on there).

    stats = bm.cpu.memory_stats()
    stats["allocated_bytes"], stats["cached_bytes"]
    bm.cpu.empty_cache()          # cached blocks go back to the system

memory_stats() keys (the names bm.cuda.memory_stats() uses where the meaning is the same):

    allocated_bytes       bytes of live CPU tensors (requested sizes; memory borrowed from
                          NumPy is not counted)
    peak_allocated_bytes  the most allocated_bytes has been since start or
                          reset_peak_memory_stats()
    reserved_bytes        allocated_bytes + cached_bytes: what the allocator holds for tensors
    cached_bytes          idle blocks kept by the cache (rounded up to their size class)
    num_allocs, num_frees allocations and frees so far
    cache_hits            allocations served from the cache
    cache_enabled         whether freed large blocks are kept (False: cached_bytes stays 0)
"""
from ._C import _cpu


def is_available():
    """Always True (as torch.cpu.is_available())."""
    return True


def device_count():
    """One CPU device, as torch.cpu.device_count()."""
    return 1


def synchronize(device=None):
    """A no-op: CPU ops have finished when they return (kept so device-generic code runs)."""


def memory_stats():
    """Dict of the CPU allocator's figures (keys in the module docstring)."""
    return _cpu.memory_stats()


def memory_allocated():
    """Bytes held by live CPU tensors."""
    return _cpu.memory_stats()["allocated_bytes"]


def max_memory_allocated():
    """Peak of memory_allocated() since start or the last reset_peak_memory_stats()."""
    return _cpu.memory_stats()["peak_allocated_bytes"]


def memory_reserved():
    """Bytes the allocator holds: live tensors plus cached idle blocks."""
    return _cpu.memory_stats()["reserved_bytes"]


def reset_peak_memory_stats():
    """Sets peak_allocated_bytes to the current allocated_bytes."""
    _cpu.reset_peak_memory_stats()


def empty_cache():
    """Returns every cached idle block to the system (live tensors are untouched)."""
    _cpu.empty_cache()


def is_cache_enabled():
    """Whether freed large blocks are kept for reuse."""
    return _cpu.cache_enabled()


def set_cache_enabled(enabled):
    """Turns the block cache on or off (off also releases the cached blocks); returns the
    previous setting."""
    return _cpu.set_cache_enabled(bool(enabled))
