"""cuda tier: bm.cuda runtime, transfers, CUDA copy/fill kernels and the caching allocator,
each checked against the CPU. GPU tests skip with a printed reason where no GPU is visible;
the no-GPU behaviour (library loads, clear errors) and the CPU memory counters run everywhere."""
import gc

import numpy as np
import pytest

import bigmodel as bm
from conftest import assert_close

HAS_GPU = bm.cuda.is_available()
gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU visible (bm.cuda.is_available() is False)")
no_gpu = pytest.mark.skipif(HAS_GPU, reason="a GPU is visible: the no-GPU error paths cannot be observed")

ALL_DTYPES = [bm.float32, bm.float64, bm.float16, bm.bfloat16, bm.int32, bm.int64, bm.bool]
SIZES = [1, 7, 33, 1000, 1023]


def random_array(rng, shape, dtype):
    """Non-zero random values representable in `dtype`, as a NumPy array bm.tensor accepts."""
    if dtype == bm.bool:
        return rng.random(shape) > 0.5
    if dtype in (bm.int32, bm.int64):
        return rng.integers(-1000, 1000, size=shape).astype(np.int64 if dtype == bm.int64 else np.int32)
    return (rng.standard_normal(shape) * 3 + 0.5).astype(np.float64)


def cpu_tensor(arr, dtype):
    return bm.tensor(arr).to(dtype)


def to_numpy(t):
    """Host NumPy copy of any tensor (bfloat16 read through float32)."""
    t = t.cpu()
    return t.float().numpy() if t.dtype == bm.bfloat16 else t.numpy()


# ---- everywhere ----------------------------------------------------------------------------

def test_module_loads_and_reports():
    assert isinstance(bm.cuda.is_available(), bool)
    assert bm.cuda.device_count() >= 0
    assert bm.cuda.is_available() == (bm.cuda.device_count() > 0)
    bm.cuda.empty_cache()  # harmless without a GPU


@no_gpu
def test_cuda_tensor_without_gpu_raises_clear_error():
    for make in (lambda: bm.zeros(3, device="cuda"), lambda: bm.ones(2, 2).cuda(),
                 lambda: bm.ones(2).to("cuda:0"), lambda: bm.empty(4, device="cuda:1")):
        with pytest.raises(RuntimeError) as info:
            make()
        msg = str(info.value)
        assert "no CUDA device is visible" in msg or "built without CUDA" in msg, msg


@no_gpu
def test_runtime_calls_without_gpu_raise():
    for call in (bm.cuda.current_device, bm.cuda.synchronize, bm.cuda.Stream, bm.cuda.Event,
                 bm.cuda.memory_stats, bm.cuda.current_stream, lambda: bm.cuda.set_device(0)):
        with pytest.raises(RuntimeError) as info:
            call()
        msg = str(info.value)
        assert "no CUDA device is visible" in msg or "built without CUDA" in msg, msg


def test_cpu_memory_stats_count_live_and_peak_bytes():
    gc.collect()
    bm.reset_peak_memory_stats("cpu")
    before = bm.memory_stats("cpu")
    assert before["peak_allocated_bytes"] == before["allocated_bytes"]
    t = bm.empty(1 << 18, dtype=bm.float32)  # 1 MiB
    during = bm.memory_stats("cpu")
    assert during["allocated_bytes"] - before["allocated_bytes"] == 1 << 20
    assert during["num_allocs"] > before["num_allocs"]
    del t
    gc.collect()
    after = bm.memory_stats("cpu")
    assert after["allocated_bytes"] == before["allocated_bytes"]
    assert after["peak_allocated_bytes"] >= before["allocated_bytes"] + (1 << 20)
    bm.reset_peak_memory_stats("cpu")
    assert bm.memory_stats("cpu")["peak_allocated_bytes"] == bm.memory_stats("cpu")["allocated_bytes"]


# ---- GPU: transfers and copies against the CPU ------------------------------------------------

@gpu
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("n", SIZES)
def test_roundtrip_exact(rng, dtype, n):
    x = cpu_tensor(random_array(rng, (n,), dtype), dtype)
    g = x.cuda()
    assert g.is_cuda and g.device == bm.device("cuda:0") and g.dtype == dtype
    back = g.cpu()
    assert not back.is_cuda
    np.testing.assert_array_equal(to_numpy(back), to_numpy(x))


@gpu
@pytest.mark.parametrize("src", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("dst", ALL_DTYPES, ids=str)
def test_cast_on_gpu_matches_cpu(rng, src, dst):
    x = cpu_tensor(random_array(rng, (33, 31), src), src)
    expected = to_numpy(x.to(dst))
    g = x.cuda().to(dst)  # cast runs in the CUDA copy kernel
    np.testing.assert_array_equal(to_numpy(g), expected)
    # and casting during the transfer, both directions
    np.testing.assert_array_equal(to_numpy(x.to("cuda", dst)), expected)
    np.testing.assert_array_equal(to_numpy(x.cuda().to("cpu", dst)), expected)


@gpu
@pytest.mark.parametrize("dtype", [bm.float32, bm.float16, bm.int64, bm.bool], ids=str)
def test_noncontiguous_and_broadcast_copies(rng, dtype):
    a = random_array(rng, (7, 33, 5), dtype)
    x = cpu_tensor(a, dtype)
    g = x.cuda()
    views = [lambda t: t.transpose(0, 2), lambda t: t.permute(1, 2, 0), lambda t: t[:, ::3, 1:],
             lambda t: t.narrow(1, 4, 20).transpose(0, 1)]
    for view in views:
        expected = to_numpy(view(x).contiguous())
        np.testing.assert_array_equal(to_numpy(view(g).contiguous()), expected)  # strided kernel
        np.testing.assert_array_equal(to_numpy(view(g)), expected)  # D2H of a strided view
        np.testing.assert_array_equal(to_numpy(view(x).cuda()), expected)  # H2D of a strided view
    # copy_ from a broadcast source into a strided destination, on the GPU
    dst = bm.zeros(5, 33, 7, dtype=dtype, device="cuda").transpose(0, 2)
    row = cpu_tensor(random_array(rng, (33, 1), dtype), dtype)
    dst.copy_(row.cuda())
    expected = np.broadcast_to(to_numpy(row), (7, 33, 5))
    np.testing.assert_array_equal(to_numpy(dst), expected)
    # copy_ across devices (CPU source into a GPU view)
    dst2 = bm.zeros(7, 33, 5, dtype=dtype, device="cuda")
    dst2[:, 1:].copy_(x[:, 1:])
    np.testing.assert_array_equal(to_numpy(dst2)[:, 1:], to_numpy(x)[:, 1:])


@gpu
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_fill_and_factories(dtype):
    value = True if dtype == bm.bool else 3
    g = bm.full((1023,), value, dtype=dtype, device="cuda")
    np.testing.assert_array_equal(to_numpy(g), to_numpy(bm.full((1023,), value, dtype=dtype)))
    z = bm.ones(9, 13, dtype=dtype, device="cuda")
    z.transpose(0, 1)[::2].fill_(0)  # strided fill
    ref = bm.ones(9, 13, dtype=dtype)
    ref.transpose(0, 1)[::2].fill_(0)
    np.testing.assert_array_equal(to_numpy(z), to_numpy(ref))


@gpu
def test_half_conversions_round_like_cpu(rng):
    # values near half's rounding boundaries, subnormals and overflow
    vals = np.concatenate([rng.standard_normal(1000) * 1e-5, rng.standard_normal(1000) * 7e4,
                           np.array([65519.0, 65520.0, 1e-8, -6.1e-5, 0.1, 1 / 3])])
    x = bm.tensor(vals.astype(np.float32))
    for dt in (bm.float16, bm.bfloat16):
        np.testing.assert_array_equal(to_numpy(x.cuda().to(dt)), to_numpy(x.to(dt)))


@gpu
def test_non_blocking_transfers(rng):
    a = rng.standard_normal((1000, 33)).astype(np.float32)
    x = bm.tensor(a)
    g = x.cuda(non_blocking=True)
    x.fill_(7.0)  # the source may change right after a non-blocking H2D (staged in pinned memory)
    h = g.to("cpu", non_blocking=True)
    bm.cuda.synchronize()
    np.testing.assert_array_equal(h.numpy(), a)


@gpu
def test_autograd_through_transfer(rng):
    x = bm.tensor(rng.standard_normal((4, 5))).requires_grad_()
    y = x.cuda().to(bm.float32).cpu()
    y.sum().backward()
    assert x.grad.device == bm.device("cpu")
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((4, 5)))


@gpu
@pytest.mark.skipif(bm.cuda.device_count() < 2, reason="needs two GPUs")
def test_device_to_device(rng):
    a = rng.standard_normal((33, 7)).astype(np.float32)
    g1 = bm.tensor(a).to("cuda:1")
    g0 = g1.to("cuda:0", bm.float64)
    assert g0.device == bm.device("cuda:0")
    np.testing.assert_array_equal(g0.cpu().numpy(), a.astype(np.float64))


# ---- GPU: runtime ------------------------------------------------------------------------------

@gpu
def test_devices_streams_events(rng):
    assert 0 <= bm.cuda.current_device() < bm.cuda.device_count()
    bm.cuda.set_device(0)
    s = bm.cuda.Stream()
    assert s != bm.cuda.default_stream()
    assert bm.cuda.current_stream() == bm.cuda.default_stream()
    start, end = bm.cuda.Event(enable_timing=True), bm.cuda.Event(enable_timing=True)
    a = rng.standard_normal(1 << 20).astype(np.float32)
    with bm.cuda.stream(s):
        assert bm.cuda.current_stream() == s
        start.record()
        g = bm.tensor(a).cuda()
        h = g.to(bm.float64).to(bm.float32)
        end.record()
    assert bm.cuda.current_stream() == bm.cuda.default_stream()
    end.synchronize()
    assert end.query() and s.query()
    assert start.elapsed_time(end) >= 0.0
    bm.cuda.default_stream().wait_stream(s)
    np.testing.assert_array_equal(h.cpu().numpy(), a)
    with pytest.raises(ValueError):
        bm.cuda.Event().elapsed_time(bm.cuda.Event())
    bm.cuda.synchronize()


@gpu
def test_bad_device_index_raises():
    with pytest.raises(RuntimeError, match="does not exist"):
        bm.zeros(2, device=f"cuda:{bm.cuda.device_count()}")
    with pytest.raises(RuntimeError, match="does not exist"):
        bm.cuda.set_device(bm.cuda.device_count() + 3)


# ---- GPU: caching allocator -------------------------------------------------------------------

@gpu
def test_allocator_stats_and_reuse():
    gc.collect()
    bm.cuda.synchronize()
    base = bm.cuda.memory_stats()
    t = bm.empty(1 << 20, device="cuda")  # 4 MiB: large pool
    s1 = bm.cuda.memory_stats()
    assert s1["allocated_bytes"] - base["allocated_bytes"] == 4 << 20
    assert s1["reserved_bytes"] >= s1["allocated_bytes"]
    assert s1["peak_allocated_bytes"] >= s1["allocated_bytes"]
    assert bm.cuda.memory_allocated() == s1["allocated_bytes"]
    del t
    s2 = bm.cuda.memory_stats()
    assert s2["allocated_bytes"] == base["allocated_bytes"]
    assert s2["reserved_bytes"] == s1["reserved_bytes"]  # cached, not returned
    t2 = bm.empty(1 << 20, device="cuda")  # served from the cache
    assert bm.cuda.memory_stats()["reserved_bytes"] == s1["reserved_bytes"]
    del t2
    bm.cuda.empty_cache()
    assert bm.cuda.memory_stats()["reserved_bytes"] < s1["reserved_bytes"]
    bm.cuda.reset_peak_memory_stats()
    assert bm.cuda.max_memory_allocated() == bm.cuda.memory_allocated()
    assert 0.0 <= bm.cuda.memory_stats()["fragmentation"] <= 1.0


@gpu
def test_oom_is_raised_and_recovered():
    before = bm.cuda.memory_stats()
    with pytest.raises(bm.OutOfMemoryError) as info:
        bm.empty(1 << 48, dtype=bm.bool, device="cuda")  # 256 TiB
    msg = str(info.value)
    assert "out of memory" in msg and "cuda:0" in msg and "reserved" in msg, msg
    after = bm.cuda.memory_stats()
    assert after["num_ooms"] == before["num_ooms"] + 1
    assert after["num_alloc_retries"] >= before["num_alloc_retries"] + 1
    x = bm.ones(1000, device="cuda")  # the process keeps working
    np.testing.assert_array_equal(x.cpu().numpy(), np.ones(1000, dtype=np.float32))


@gpu
def test_record_stream_keeps_block_from_reuse():
    s = bm.cuda.Stream()
    t = bm.ones(1 << 16, device="cuda")
    t.record_stream(s)
    ptr_stats = bm.cuda.memory_stats()
    del t
    # freed while another stream may use it: allocated drops at once, reuse waits for the event
    assert bm.cuda.memory_stats()["allocated_bytes"] == ptr_stats["allocated_bytes"] - (1 << 18)
    bm.cuda.synchronize()
    u = bm.ones(1 << 16, device="cuda")
    np.testing.assert_array_equal(u.cpu().numpy(), np.ones(1 << 16, dtype=np.float32))
