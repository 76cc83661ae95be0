"""cuda tier: BIGMODEL_CUDA_CACHING=0 turns the CUDA caching allocator off (every tensor its
own cudaMalloc of exactly its size, returned by cudaFree when the tensor dies), the mode memory
checkers need (compute-sanitizer, scripts/cuda_emu_test.sh --memcheck). Each setting runs in
a child process, since the allocator reads the variable once. Skips without a GPU."""

from _child import run_child_json
from _cuda import requires_cuda

pytestmark = requires_cuda

# Element counts (float32): below 512 bytes, an odd small size, and one past the small pool.
_SIZES = [7, 1001, (1 << 18) + 5]
_BYTES = sum(4 * n for n in _SIZES)

# The child warms the device up, then creates and drops three tensors, printing the stats.
_CHILD = f"""
import gc, json
import bigmodel as bm
warm = bm.ones(3, device="cuda") + 1
bm.cuda.synchronize()
out = [bm.cuda.memory_stats()]
ts = [bm.empty(n, dtype=bm.float32, device="cuda") for n in {_SIZES}]
out.append(bm.cuda.memory_stats())
del ts
gc.collect()
bm.cuda.synchronize()
out.append(bm.cuda.memory_stats())
print(json.dumps(out))
"""


def _run_child(caching_env):
    return run_child_json(_CHILD, 300, {"BIGMODEL_CUDA_CACHING": caching_env})


def test_caching_off_allocates_each_tensor_exactly_and_frees_it():
    base, live, freed = _run_child("0")
    # Exact sizes: nothing rounded, nothing reserved beyond the live tensors.
    assert live["allocated_bytes"] - base["allocated_bytes"] == _BYTES
    assert live["reserved_bytes"] - base["reserved_bytes"] == _BYTES
    assert live["num_segments"] - base["num_segments"] == len(_SIZES)
    assert live["reserved_bytes"] == live["allocated_bytes"]
    # Freed tensors go back to the device at once: no cached surplus.
    assert freed["reserved_bytes"] == base["reserved_bytes"]
    assert freed["allocated_bytes"] == base["allocated_bytes"]
    assert freed["num_segments"] == base["num_segments"]
    assert freed["inactive_split_bytes"] == 0
    assert freed["num_frees"] - base["num_frees"] == len(_SIZES)


def test_caching_on_keeps_freed_segments():
    # The contrast, so the test above cannot pass by accident: with caching on, blocks are
    # rounded and freed blocks stay reserved.
    base, live, freed = _run_child("1")
    assert live["allocated_bytes"] - base["allocated_bytes"] > _BYTES
    assert live["reserved_bytes"] - base["reserved_bytes"] >= 2 << 20
    assert freed["reserved_bytes"] > freed["allocated_bytes"]
    assert freed["allocated_bytes"] == base["allocated_bytes"]
