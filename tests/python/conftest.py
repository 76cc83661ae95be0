"""Shared pytest fixtures and helpers: seeded NumPy inputs, tolerances per dtype."""
import numpy as np
import pytest

import bigmodel as bm

# |actual - expected| <= atol + rtol * |expected|, per dtype (BLUEPRINT.md).
TOL = {
    bm.float64: (1e-7, 1e-7),
    bm.float32: (1.3e-6, 1e-5),
    bm.float16: (1e-3, 1e-3),
    bm.bfloat16: (1.6e-2, 1e-2),
}


def assert_close(actual, expected, dtype=None, atol=None, rtol=None):
    """Compares a bigmodel tensor (or array) with a NumPy reference within dtype tolerances."""
    if isinstance(actual, bm.Tensor):
        dtype = dtype or actual.dtype
        actual = actual.detach().float().numpy() if actual.dtype == bm.bfloat16 else actual.detach().numpy()
    d_atol, d_rtol = TOL.get(dtype, (0, 0))
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual.astype(np.float64) if actual.dtype != bool else actual,
                               expected, atol=atol, rtol=rtol)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def noncontiguous(arr):
    """The same values as `arr`, as a non-contiguous bigmodel tensor (a transposed copy)."""
    t = bm.tensor(np.ascontiguousarray(np.swapaxes(arr, 0, -1))) if arr.ndim >= 2 else None
    if t is None:
        big = np.zeros(arr.shape[0] * 2, dtype=arr.dtype)
        big[::2] = arr
        return bm.tensor(big)[::2] if hasattr(bm.Tensor, "__getitem__") else bm.tensor(arr)
    return t.transpose(0, -1)
