"""bm.cpu: the CPU allocator's statistics and its large-block cache (core/allocator_cache.h).
The cache is off in the ASan tier (and with BIGMODEL_CPU_CACHE=0): tests that need it skip
there with the reason, and subprocess tests check both environment settings in every tier."""
import gc

import pytest

import bigmodel as bm
from _child import run_child_json

# Float32 elements of a tensor well above the cache's 128 KiB threshold, not on a size-class
# boundary (so the cached block is rounded up: cached bytes lie in [nbytes, nbytes * 1.125]).
_N = 300_001
_NBYTES = _N * 4
_KEYS = {"allocated_bytes", "peak_allocated_bytes", "reserved_bytes", "cached_bytes", "num_allocs",
         "num_frees", "cache_hits", "cache_enabled"}

needs_cache = pytest.mark.skipif(
    not bm.cpu.is_cache_enabled(),
    reason="the CPU block cache is off here (AddressSanitizer build or BIGMODEL_CPU_CACHE=0)")


def _stats():
    gc.collect()
    return bm.cpu.memory_stats()


def _block_rounding_ok(cached_delta):
    return _NBYTES <= cached_delta <= _NBYTES * 9 // 8 + 64


def test_keys_match_cuda_names_and_add_up():
    s = _stats()
    assert set(s) == _KEYS
    for k in _KEYS - {"cache_enabled"}:
        assert isinstance(s[k], int) and s[k] >= 0, (k, s[k])
    assert isinstance(s["cache_enabled"], bool)
    assert s["cache_enabled"] == bm.cpu.is_cache_enabled()
    assert s["reserved_bytes"] == s["allocated_bytes"] + s["cached_bytes"]
    assert s["peak_allocated_bytes"] >= s["allocated_bytes"]
    # bm.memory_stats("cpu") reports the same figures.
    assert set(bm.memory_stats("cpu")) == _KEYS


def test_device_helpers_like_torch_cpu():
    assert bm.cpu.is_available() is True and bm.cpu.device_count() == 1
    t = bm.full((3,), 2.0) * 3
    bm.cpu.synchronize()
    assert t.tolist() == [6.0, 6.0, 6.0]


def test_allocated_and_peak_move_with_a_large_tensor():
    bm.cpu.reset_peak_memory_stats()
    before = _stats()
    assert before["peak_allocated_bytes"] == before["allocated_bytes"]
    t = bm.full((_N,), 1.5)
    during = _stats()
    assert during["allocated_bytes"] - before["allocated_bytes"] == _NBYTES
    assert bm.cpu.memory_allocated() == during["allocated_bytes"]
    assert during["num_allocs"] > before["num_allocs"]
    assert float(t[7]) == 1.5
    del t
    after = _stats()
    assert after["allocated_bytes"] == before["allocated_bytes"]
    assert after["num_frees"] > before["num_frees"]
    assert bm.cpu.max_memory_allocated() >= before["allocated_bytes"] + _NBYTES
    bm.cpu.reset_peak_memory_stats()
    assert bm.cpu.max_memory_allocated() == bm.cpu.memory_allocated()


@needs_cache
def test_freed_block_is_cached_then_reused():
    bm.cpu.empty_cache()
    t = bm.full((_N,), 2.0)
    before = _stats()
    del t
    freed = _stats()
    cached_delta = freed["cached_bytes"] - before["cached_bytes"]
    assert _block_rounding_ok(cached_delta), (before, freed)
    assert freed["reserved_bytes"] == before["reserved_bytes"] - _NBYTES + cached_delta
    u = bm.full((_N,), 3.0)  # same size class: served from the cache
    reused = _stats()
    assert reused["cache_hits"] == freed["cache_hits"] + 1
    assert reused["cached_bytes"] == before["cached_bytes"]
    assert float(u.sum()) == 3.0 * _N  # the reused block holds the new values
    del u


@needs_cache
def test_empty_cache_drops_cached_bytes_to_zero():
    bm.cpu.empty_cache()
    tensors = [bm.full((_N * (i + 1),), float(i + 1)) for i in range(3)]
    del tensors
    s = _stats()
    assert s["cached_bytes"] >= 6 * _NBYTES
    bm.cpu.empty_cache()
    s = _stats()
    assert s["cached_bytes"] == 0
    assert s["reserved_bytes"] == s["allocated_bytes"]
    hits = s["cache_hits"]
    t = bm.full((_N,), 1.0)  # nothing left to reuse
    assert _stats()["cache_hits"] == hits
    del t


def test_disabling_the_cache_releases_and_stops_caching():
    was = bm.cpu.set_cache_enabled(False)
    try:
        s = _stats()
        assert s["cache_enabled"] is False and s["cached_bytes"] == 0
        t = bm.full((_N,), 1.0)
        del t
        s2 = _stats()
        assert s2["cached_bytes"] == 0 and s2["cache_hits"] == s["cache_hits"]
    finally:
        assert bm.cpu.set_cache_enabled(was) is False
    assert bm.cpu.is_cache_enabled() == was


# The child allocates and frees a large tensor twice and prints the stats at each step.
_CHILD = f"""
import gc, json
import bigmodel as bm
n = {_N}
out = [bm.cpu.memory_stats()]
t = bm.full((n,), 1.0); del t; gc.collect()
out.append(bm.cpu.memory_stats())
t = bm.full((n,), 2.0); out.append(bm.cpu.memory_stats()); del t; gc.collect()
bm.cpu.empty_cache()
out.append(bm.cpu.memory_stats())
print(json.dumps(out))
"""


def _run_child(cache_env):
    return run_child_json(_CHILD, 120, {"BIGMODEL_CPU_CACHE": cache_env}, env_drop=["BIGMODEL_CPU_CACHE_MB"])


def test_env_zero_reports_a_disabled_cache():
    start, freed, again, emptied = _run_child("0")
    for s in (start, freed, again, emptied):
        assert s["cache_enabled"] is False
        assert s["cached_bytes"] == 0
        assert s["cache_hits"] == start["cache_hits"]
    assert again["allocated_bytes"] - freed["allocated_bytes"] == _NBYTES


def test_env_one_enables_the_cache_even_under_asan():
    start, freed, again, emptied = _run_child("1")
    assert start["cache_enabled"] is True
    assert _block_rounding_ok(freed["cached_bytes"] - start["cached_bytes"]), (start, freed)
    assert again["cache_hits"] == freed["cache_hits"] + 1
    assert again["cached_bytes"] == start["cached_bytes"]
    assert emptied["cached_bytes"] == 0
