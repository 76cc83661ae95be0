"""Random generator and ops: the Philox stream against an independent Python Philox,
determinism and state restore, statistics with loose but meaningful bounds, dtypes,
in-place samplers on views, and bad inputs."""
import math

import numpy as np
import pytest

import bigmodel as bm

M32 = 0xFFFFFFFF


def philox4x32_10(ctr, key):
    """Reference Philox4x32-10 in plain Python (Salmon et al. 2011)."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & M32, (p0 >> 32) ^ c3 ^ k1, p0 & M32
    return c0, c1, c2, c3


def block(seed, b):
    return philox4x32_10((b & M32, b >> 32, 0, 0), (seed & M32, seed >> 32))


def test_reference_philox_known_answers():
    # Random123 kat_vectors: the reference used below is the published Philox4x32-10.
    assert philox4x32_10((0, 0, 0, 0), (0, 0)) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    assert philox4x32_10((M32,) * 4, (M32,) * 2) == (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)
    assert philox4x32_10((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0)) == \
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)


def test_stream_layout_matches_reference():
    seed = 0x0123456789ABCDEF
    g = bm.Generator().manual_seed(seed)
    f32 = bm.rand(9, generator=g).numpy()                 # blocks 0..2, 4 per block
    f64 = bm.rand(3, dtype=bm.float64, generator=g).numpy()  # blocks 3..4, 2 per block
    ri = bm.randint(-7, 100, (3,), generator=g).numpy()   # blocks 5..6
    assert g.offset == 7
    for i in range(9):
        w = block(seed, i // 4)[i % 4]
        assert f32[i] == np.float32((w >> 8) / 2.0**24)
    for i in range(3):
        w = block(seed, 3 + i // 2)
        hi, lo = w[2 * (i % 2)], w[2 * (i % 2) + 1]
        assert f64[i] == (((hi << 32) | lo) >> 11) / 2.0**53
    for i in range(3):
        w = block(seed, 5 + i // 2)
        assert ri[i] == -7 + (((w[2 * (i % 2)] << 32) | w[2 * (i % 2) + 1]) % 107)
    # Box-Muller on the first pair of block 0 (float32 math: a few ulps of slack).
    n = bm.randn(2, generator=bm.Generator().manual_seed(seed)).numpy()
    w = block(seed, 0)
    u1, u2 = (w[0] >> 8) / 2.0**24, (w[1] >> 8) / 2.0**24
    r = math.sqrt(-2 * math.log(1 - u1))
    np.testing.assert_allclose(n, [r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("draw", [
    lambda: bm.rand(1000), lambda: bm.randn(7, 3, dtype=bm.float64), lambda: bm.randint(0, 1000, (500,)),
    lambda: bm.randperm(300), lambda: bm.rand(50, dtype=bm.float16).float(),
    lambda: bm.empty(64).bernoulli_(0.3), lambda: bm.empty(33).uniform_(-2, 5), lambda: bm.empty(33).normal_(1, 3),
])
def test_same_seed_same_numbers_different_seed_different(draw):
    bm.manual_seed(1234)
    a = draw().numpy()
    bm.manual_seed(1234)
    b = draw().numpy()
    np.testing.assert_array_equal(a, b)
    bm.manual_seed(1235)
    assert not np.array_equal(a, draw().numpy())


def test_state_save_restore_reproduces_next_draws():
    bm.manual_seed(99)
    bm.randn(17)
    state = bm.get_rng_state()
    assert state.dtype == bm.int64 and state.shape == (2,)
    nxt = [bm.rand(5).numpy(), bm.randint(0, 10, (8,)).numpy(), bm.randn(3, dtype=bm.float64).numpy()]
    bm.rand(100)
    bm.set_rng_state(state)
    again = [bm.rand(5).numpy(), bm.randint(0, 10, (8,)).numpy(), bm.randn(3, dtype=bm.float64).numpy()]
    for x, y in zip(nxt, again):
        np.testing.assert_array_equal(x, y)
    # The state is a copy: drawing afterwards leaves it unchanged.
    assert not np.array_equal(bm.get_rng_state().numpy(), state.numpy())
    with pytest.raises(ValueError, match=r"\[set_rng_state\]"):
        bm.set_rng_state(bm.zeros(3, dtype=bm.int64))
    with pytest.raises(ValueError, match=r"\[set_rng_state\]"):
        bm.set_rng_state(bm.zeros(2))


def test_generators_are_independent_and_match_default():
    g = bm.Generator().manual_seed(7)
    bm.manual_seed(7)
    a = bm.rand(10, generator=g).numpy()
    bm.rand(3)  # the default stream moves; g does not
    b = bm.rand(10, generator=g).numpy()
    bm.manual_seed(7)
    np.testing.assert_array_equal(bm.rand(10).numpy(), a)
    np.testing.assert_array_equal(bm.rand(10).numpy(), b)
    assert g.initial_seed() == 7
    g2 = bm.Generator()
    g2.set_state(g.get_state())
    np.testing.assert_array_equal(bm.randn(6, generator=g2).numpy(), bm.randn(6, generator=g).numpy())


def test_offset_advances_by_blocks():
    g = bm.Generator().manual_seed(1)
    bm.rand(10, generator=g)
    assert g.offset == 3  # ceil(10 / 4)
    bm.rand(3, dtype=bm.float64, generator=g)
    assert g.offset == 5  # + ceil(3 / 2)
    bm.randint(0, 5, (5,), generator=g)
    assert g.offset == 8
    bm.randn(0, generator=g)
    assert g.offset == 8


def test_element_depends_only_on_index():
    # A large draw (split across OpenMP threads) begins with exactly the numbers a small one gives.
    bm.manual_seed(5)
    big = bm.rand(200003).numpy()
    bm.manual_seed(5)
    small = bm.rand(13).numpy()
    np.testing.assert_array_equal(big[:13], small)
    bm.manual_seed(5)
    np.testing.assert_array_equal(bm.rand(500, 400).numpy().ravel(), big[:200000])


def test_manual_seed_accepts_python_ints():
    bm.manual_seed(-1)
    a = bm.rand(4).numpy()
    bm.manual_seed(2**64 - 1)
    np.testing.assert_array_equal(bm.rand(4).numpy(), a)
    assert bm.initial_seed() == 2**64 - 1
    s = bm.seed()
    assert bm.initial_seed() == s
    with pytest.raises(TypeError, match=r"\[manual_seed\]"):
        bm.manual_seed("x")


def test_uniform_statistics():
    bm.manual_seed(2024)
    n = 100_000
    u = bm.rand(n, dtype=bm.float64).numpy()
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    counts, _ = np.histogram(u, bins=20, range=(0, 1))
    expect, sd = n / 20, math.sqrt(n * 0.05 * 0.95)
    assert np.all(np.abs(counts - expect) < 5 * sd), counts
    # Consecutive draws are uncorrelated.
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 5 / math.sqrt(n)


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64, bm.float16, bm.bfloat16])
def test_uniform_range_and_dtype(dtype):
    bm.manual_seed(3)
    t = bm.empty(20000, dtype=dtype).uniform_(-2.0, 3.0)
    assert t.dtype == dtype
    x = t.float().numpy().astype(np.float64)
    assert x.min() >= -2.0 and x.max() < 3.0
    assert abs(x.mean() - 0.5) < 5 * 5 / math.sqrt(12 * 20000) + 0.01
    r = bm.rand(20000, dtype=dtype).float().numpy()
    assert r.min() >= 0.0 and r.max() < 1.0 and len(np.unique(r)) > 100


def test_normal_statistics():
    bm.manual_seed(11)
    n = 100_000
    for dtype in (bm.float32, bm.float64):
        z = bm.randn(n, dtype=dtype).numpy().astype(np.float64)
        assert abs(z.mean()) < 5 / math.sqrt(n)
        assert abs(z.std() - 1.0) < 5 / math.sqrt(2 * n)
        within1 = np.mean(np.abs(z) < 1.0)
        assert abs(within1 - 0.682689) < 5 * math.sqrt(0.6827 * 0.3173 / n)
        assert abs(np.mean(z**3)) < 5 * math.sqrt(15 / n)  # skewness ~ 0
        assert abs(np.mean(z**4) - 3.0) < 5 * math.sqrt(96 / n)  # kurtosis ~ 3
    x = bm.empty(n).normal_(4.0, 0.5).numpy()
    assert abs(x.mean() - 4.0) < 5 * 0.5 / math.sqrt(n) and abs(x.std() - 0.5) < 0.01
    y = bm.normal(-1.0, 2.0, (n,)).numpy()
    assert abs(y.mean() + 1.0) < 5 * 2 / math.sqrt(n) and abs(y.std() - 2.0) < 0.04


@pytest.mark.parametrize("dtype", [bm.float16, bm.bfloat16])
def test_randn_half_types(dtype):
    bm.manual_seed(8)
    z = bm.randn(20000, dtype=dtype)
    assert z.dtype == dtype
    x = z.float().numpy()
    assert np.isfinite(x).all() and abs(x.mean()) < 0.05 and abs(x.std() - 1) < 0.05


@pytest.mark.parametrize("low, high", [(0, 2), (-3, 4), (10, 11), (-(2**62), 2**62)])
def test_randint_covers_range_never_hits_high(low, high):
    bm.manual_seed(21)
    t = bm.randint(low, high, (20000,))
    assert t.dtype == bm.int64
    x = t.numpy()
    assert x.min() >= low and x.max() < high
    if high - low <= 8:
        counts = np.bincount(x - low, minlength=high - low)
        assert len(counts) == high - low and np.all(counts > 0.8 * 20000 / (high - low)), counts
    else:
        assert len(np.unique(x)) == 20000 and x.min() < 0 < x.max()


def test_randint_signatures_and_dtypes():
    bm.manual_seed(4)
    a = bm.randint(5, (3, 4))
    assert a.shape == (3, 4) and a.numpy().min() >= 0 and a.numpy().max() < 5
    b = bm.randint(2, 6, size=(100,), dtype=bm.int32)
    assert b.dtype == bm.int32 and set(b.numpy().tolist()) == {2, 3, 4, 5}
    c = bm.randint(low=-2, high=2, size=[50], dtype=bm.float32)
    assert c.dtype == bm.float32 and set(c.numpy().tolist()) == {-2.0, -1.0, 0.0, 1.0}
    d = bm.randint_like(bm.zeros(2, 3, dtype=bm.float64), 3, 9)
    assert d.dtype == bm.float64 and d.shape == (2, 3) and d.numpy().min() >= 3 and d.numpy().max() < 9
    e = bm.randint_like(bm.zeros(40, dtype=bm.int64), 2)
    assert set(e.numpy().tolist()) == {0, 1}
    f = bm.randint(0, 2, (30,), dtype=bm.bool)
    assert f.dtype == bm.bool and f.numpy().any() and not f.numpy().all()


def test_randperm():
    bm.manual_seed(17)
    p = bm.randperm(1000)
    assert p.dtype == bm.int64
    x = p.numpy()
    np.testing.assert_array_equal(np.sort(x), np.arange(1000))
    assert not np.array_equal(x, np.arange(1000))
    assert bm.randperm(0).shape == (0,)
    np.testing.assert_array_equal(bm.randperm(1).numpy(), [0])
    q = bm.randperm(50, dtype=bm.int32)
    assert q.dtype == bm.int32 and sorted(q.numpy().tolist()) == list(range(50))
    # Each position takes each value about equally often.
    first = np.array([bm.randperm(4).numpy()[0] for _ in range(800)])
    assert np.all(np.bincount(first, minlength=4) > 120)


def test_random_and_bernoulli():
    bm.manual_seed(6)
    r = bm.empty(5000, dtype=bm.int64).random_(5).numpy()
    assert set(r.tolist()) == {0, 1, 2, 3, 4}
    r2 = bm.empty(5000, dtype=bm.int32).random_(-3, 2).numpy()
    assert set(r2.tolist()) == {-3, -2, -1, 0, 1}
    r3 = bm.empty(2000).random_().numpy()
    assert r3.min() >= 0 and r3.max() <= 2**24 and np.all(r3 == np.round(r3)) and r3.max() > 2**20
    b = bm.empty(40000).bernoulli_(0.3).numpy()
    assert set(np.unique(b).tolist()) == {0.0, 1.0}
    assert abs(b.mean() - 0.3) < 5 * math.sqrt(0.21 / 40000)
    probs = bm.tensor(np.tile([0.0, 1.0, 0.5, 0.9], 10000))
    s = bm.bernoulli(probs).numpy().reshape(-1, 4)
    assert s[:, 0].max() == 0 and s[:, 1].min() == 1
    assert abs(s[:, 2].mean() - 0.5) < 0.03 and abs(s[:, 3].mean() - 0.9) < 0.02
    assert probs.bernoulli().dtype == bm.float64
    m = bm._C._dropout_mask(bm.zeros(20000, dtype=bm.float64), 0.2).numpy()
    assert set(np.unique(m).tolist()) == {0.0, 1.25}
    assert abs(np.mean(m == 0) - 0.2) < 5 * math.sqrt(0.16 / 20000)
    with pytest.raises(ValueError, match=r"\[dropout_mask\]"):
        bm._C._dropout_mask(bm.zeros(3), 1.5)


def test_like_random_factories():
    base = bm.zeros(3, 5, dtype=bm.float64)
    bm.manual_seed(0)
    a = bm.rand_like(base)
    assert a.dtype == bm.float64 and a.shape == (3, 5)
    n = bm.randn_like(base, dtype=bm.float32)
    assert n.dtype == bm.float32 and n.shape == (3, 5)
    bm.manual_seed(0)
    np.testing.assert_array_equal(bm.rand(3, 5, dtype=bm.float64).numpy(), a.numpy())
    assert bm.rand(2, 2, requires_grad=True).requires_grad


def test_inplace_on_noncontiguous_view():
    base = bm.zeros(4, 6)
    view = base.transpose(0, 1)
    v0 = base._version
    bm.manual_seed(9)
    view.uniform_(1.0, 2.0)
    assert base._version > v0
    bm.manual_seed(9)
    ref = bm.rand(6, 4).numpy() + 1.0
    np.testing.assert_allclose(view.numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(base.numpy(), ref.T, rtol=1e-6)
    sl = bm.zeros(10)[::2]
    sl.normal_()
    assert np.all(sl.numpy() != 0)


def test_inplace_sampler_and_autograd():
    leaf = bm.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\[uniform_\]"):
        leaf.uniform_()
    with bm.no_grad():
        leaf.normal_()
    assert leaf.requires_grad and np.all(leaf.detach().numpy() != 0)
    x = bm.ones(3, dtype=bm.float64, requires_grad=True)
    y = x * 2
    y.uniform_()  # the new values do not depend on x
    (y.sum() + (x * 3).sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0, 3.0])


def test_bad_inputs():
    with pytest.raises(TypeError, match=r"\[uniform_\].*int64"):
        bm.zeros(3, dtype=bm.int64).uniform_()
    with pytest.raises(TypeError, match=r"\[rand\].*int32"):
        bm.rand(3, dtype=bm.int32)
    with pytest.raises(TypeError, match=r"\[randn\]"):
        bm.randn(3, dtype=bm.bool)
    with pytest.raises(ValueError, match=r"\[normal_\].*std"):
        bm.zeros(3).normal_(0.0, -1.0)
    with pytest.raises(ValueError, match=r"\[uniform_\]"):
        bm.zeros(3).uniform_(2.0, 1.0)
    with pytest.raises(ValueError, match=r"\[randint\].*low=5.*high=5"):
        bm.randint(5, 5, (2,))
    with pytest.raises(ValueError, match=r"\[randint\]"):
        bm.randint(3, 1, (2,))
    with pytest.raises(ValueError, match=r"\[randint\].*int32"):
        bm.randint(0, 2**40, (2,), dtype=bm.int32)
    with pytest.raises(TypeError, match=r"\[randint\]"):
        bm.randint(5)
    with pytest.raises(ValueError, match=r"\[randperm\]"):
        bm.randperm(-1)
    with pytest.raises(ValueError, match=r"\[bernoulli_\]"):
        bm.zeros(3).bernoulli_(1.5)
    with pytest.raises(ValueError, match=r"\[random_\]"):
        bm.zeros(3, dtype=bm.int64).random_(4, 2)
    with pytest.raises(TypeError, match=r"\[bernoulli\]"):
        bm.bernoulli(bm.zeros(3, dtype=bm.int64))
