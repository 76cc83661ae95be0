"""cuda tier: the random ops on the GPU draw the CPU's Philox stream, so one seed gives the
same tensor on both devices (bitwise for uniform, bernoulli, dropout, randint/random_ and
randperm; normals to the last ulps, CUDA's log/sin/cos against glibc's) and consecutive
calls advance the generator alike. Skips without a GPU."""
import numpy as np
import pytest

import bigmodel as bm
from _cuda import requires_cuda

pytestmark = requires_cuda

FLOATS = [bm.float32, bm.float64, bm.float16, bm.bfloat16]
ALL = FLOATS + [bm.int32, bm.int64, bm.bool]
SIZES = [1, 7, 33, 1000, 1023, (1 << 20) + 5]


def bits(t):
    """The tensor's raw bytes on the host, for bitwise comparison."""
    t = t.cpu().contiguous()
    if t.dtype in (bm.float16, bm.bfloat16):  # exact in float32, where equal values have equal bits
        t = t.float()
    return t.numpy().tobytes()


def same_stream(make, seed):
    """make(device, generator) twice per device from one seed: both calls equal bit for bit."""
    gc, gg = bm.Generator().manual_seed(seed), bm.Generator().manual_seed(seed)
    c1, c2 = make("cpu", gc), make("cpu", gc)
    g1, g2 = make("cuda", gg), make("cuda", gg)
    assert g1.is_cuda and g2.is_cuda
    assert g1.dtype == c1.dtype and g1.shape == c1.shape
    assert bits(g1) == bits(c1), "first call differs"
    assert bits(g2) == bits(c2), "second call differs: offsets advanced differently"
    assert gg.offset == gc.offset


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_rand_and_uniform_bitwise(dtype, n):
    same_stream(lambda d, g: bm.rand(n, dtype=dtype, device=d, generator=g), 10 + n)
    same_stream(lambda d, g: bm.empty(n, dtype=dtype, device=d).uniform_(-2.5, 4.0, generator=g), 20 + n)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_uniform_on_views(dtype):
    def sliced(d, g):
        base = bm.zeros(1024, dtype=dtype, device=d)
        base[1:].uniform_(generator=g)  # contiguous, one element in: unaligned stores
        return base

    def transposed(d, g):
        base = bm.zeros(33, 31, dtype=dtype, device=d)
        base.t().uniform_(2.0, 2.0009765625, generator=g)  # a few ulps wide: the clamp below `to`
        return base
    same_stream(sliced, 1)
    same_stream(transposed, 2)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_randn_matches_to_last_ulps(dtype, n):
    gc, gg = bm.Generator().manual_seed(5 + n), bm.Generator().manual_seed(5 + n)
    for _ in range(2):  # the second call: offsets advanced alike
        c = bm.empty(n, dtype=dtype).normal_(0.5, 2.0, generator=gc)
        g = bm.empty(n, dtype=dtype, device="cuda").normal_(0.5, 2.0, generator=gg)
        assert gg.offset == gc.offset
        a, b = g.cpu().double().numpy(), c.double().numpy()
        rel = {bm.float64: 1e-14, bm.float32: 1e-6, bm.float16: 1e-3, bm.bfloat16: 8e-3}[dtype]
        np.testing.assert_allclose(a, b, rtol=rel, atol=2 * rel)
        exact = int((a == b).sum())
        if dtype in (bm.float16, bm.bfloat16):  # an ulp of float difference rarely survives rounding
            assert exact >= n * 9 // 10, f"only {exact} of {n} bitwise equal"


@pytest.mark.parametrize("dtype", ALL, ids=str)
def test_randint_and_random_bitwise(dtype):
    lo, hi = (0, 2) if dtype == bm.bool else (-5, 100)
    for n in (1, 7, 1023, (1 << 20) + 1):
        same_stream(lambda d, g: bm.randint(lo, hi, (n,), dtype=dtype, device=d, generator=g), 30 + n)
        same_stream(lambda d, g: bm.empty(n, dtype=dtype, device=d).random_(generator=g), 40 + n)


def test_randint_full_64_bit_range():
    same_stream(lambda d, g: bm.randint(-(1 << 62), 1 << 62, (1023,), dtype=bm.int64, device=d, generator=g), 3)


@pytest.mark.parametrize("dtype", ALL, ids=str)
def test_bernoulli_scalar_bitwise(dtype):
    for n in SIZES:
        same_stream(lambda d, g: bm.empty(n, dtype=dtype, device=d).bernoulli_(0.3, generator=g), 50 + n)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_bernoulli_tensor_and_dropout_bitwise(dtype):
    for n in SIZES:
        probs = bm.rand(n, dtype=dtype, generator=bm.Generator().manual_seed(n))
        same_stream(lambda d, g: bm.bernoulli(probs.to(d), generator=g), 60 + n)
        x = bm.ones(n, dtype=dtype)
        same_stream(lambda d, g: bm._C._dropout_mask(x.to(d), 0.25, generator=g), 80 + n)
    wide = bm.rand(33, 3, dtype=dtype, generator=bm.Generator().manual_seed(1))
    same_stream(lambda d, g: bm.bernoulli(wide.to(d).t(), generator=g), 70)  # non-contiguous probs


def test_dropout_on_cuda_follows_the_seed():
    x = bm.ones(4097)
    bm.manual_seed(7)
    c = bm.nn.functional.dropout(x, 0.4)
    bm.manual_seed(7)
    g = bm.nn.functional.dropout(x.cuda(), 0.4)
    assert bits(g) == bits(c)
    kept = float((c != 0).float().mean().item())
    assert 0.55 < kept < 0.65


@pytest.mark.parametrize("n", [1, 2, 7, 33, 1000, 70001])
def test_randperm_bitwise(n):
    # randperm on CUDA sorts on the host and copies (kernels/cuda/random.cu): sizes need not
    # exercise the grid-stride loops.
    same_stream(lambda d, g: bm.randperm(n, device=d, generator=g), 90 + n)
    same_stream(lambda d, g: bm.randperm(n, dtype=bm.int32, device=d, generator=g), 95 + n)
    p = bm.randperm(n, device="cuda").cpu().numpy()
    assert np.array_equal(np.sort(p), np.arange(n))


def test_default_generator_is_shared_across_devices():
    bm.manual_seed(2024)
    c1, g2 = bm.rand(1000), bm.rand(1000, device="cuda")
    bm.manual_seed(2024)
    d1, d2 = bm.rand(1000), bm.rand(1000)
    assert bits(c1) == bits(d1) and bits(g2) == bits(d2)
