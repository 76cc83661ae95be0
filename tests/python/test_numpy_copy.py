"""bm.tensor(numpy_array): one copy into a fresh tensor (never aliasing the array), every
dtype and layout, byte-swapped arrays converted, and the GIL released while a large array
is copied (python/src/bind_tensor.cpp from_numpy_copy)."""
import numpy as np
import pytest

import bigmodel as bm
from _gil import gil_moves


@pytest.mark.parametrize("dtype", [np.bool_, np.int32, np.int64, np.float16, np.float32, np.float64])
def test_copy_of_every_dtype_does_not_alias(rng, dtype):
    a = (rng.standard_normal((3, 5, 7)) * 10).astype(dtype)
    t = bm.tensor(a)
    np.testing.assert_array_equal(t.numpy(), a)
    assert t.numpy().dtype == a.dtype
    a[...] = 0 if dtype is np.bool_ else 3  # the tensor keeps its own copy
    assert not np.array_equal(t.numpy(), a)


def test_layouts_and_sizes(rng):
    base = rng.standard_normal((40, 30))
    for a in (base.T, base[::2, 1::3], base[::-1], base[:, :0], np.float64(2.5), base.reshape(-1)[:1]):
        t = bm.tensor(a)
        np.testing.assert_array_equal(t.numpy(), np.asarray(a))
        assert t.shape == np.shape(a)
        assert t.is_contiguous()
    big = rng.standard_normal((300, 257)).astype(np.float32)  # above the GIL-release size
    t = bm.tensor(big)
    np.testing.assert_array_equal(t.numpy(), big)
    big[0, 0] = 99.0
    assert t.numpy()[0, 0] != 99.0


def test_dtype_argument_and_byte_swapped_arrays(rng):
    a = rng.standard_normal((6, 4)).astype(np.float32)
    same = bm.tensor(a, dtype=bm.float32)  # no conversion needed: still a copy
    a[0, 0] = 42.0
    assert same.numpy()[0, 0] != 42.0
    np.testing.assert_array_equal(bm.tensor(a, dtype=bm.float64).numpy(), a.astype(np.float64))
    swapped = a.astype(">f4")
    np.testing.assert_array_equal(bm.tensor(swapped).numpy(), a)
    np.testing.assert_array_equal(bm.tensor(swapped, dtype=bm.float64).numpy(), a.astype(np.float64))
    with pytest.raises(TypeError, match=r"\[from_numpy\] can't share a byte-swapped"):
        bm.from_numpy(swapped)


def test_large_copy_releases_the_gil():
    """While one thread copies a 32 MB array into a tensor, another Python thread runs. A huge
    switch interval stops the interpreter from forcing a switch, so the counter can only move
    while the copying thread has released the GIL itself; with the release turned off
    (the kernel GIL switch) it never moves, which is checked too, so this test can fail."""
    arr = np.random.default_rng(0).standard_normal(1 << 22)  # float64, 32 MB
    held, released = gil_moves(lambda: bm.tensor(arr), 3, 100)
    assert not held, "the counter moved while the GIL was held: the test cannot tell"
    assert released, "no other thread ran during 100 large copies: the GIL is not released"
