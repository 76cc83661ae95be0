"""Shared by the cuda tier (tests/python/test_cuda_*.py): the module-level skip without a GPU,
and GPU or CPU results brought to the host as NumPy arrays for comparison."""
import numpy as np
import pytest

import bigmodel as bm

requires_cuda = pytest.mark.skipif(not bm.cuda.is_available(),
                                   reason="no CUDA GPU visible (bm.cuda.is_available() is False)")


def host(t):
    """t's values on the host; float16/bfloat16 widened to float32 (NumPy has no bfloat16)."""
    t = t.detach().cpu()
    return (t.float() if t.dtype in (bm.float16, bm.bfloat16) else t).numpy()


def host64(t):
    """host(t) in float64, for comparisons whose tolerance is below float32's resolution."""
    return host(t).astype(np.float64)


def normal(rng, shape, dtype, scale=3.0, shift=0.5):
    """N(shift, scale^2) values of the given dtype: never all zero, both signs."""
    return bm.tensor(rng.standard_normal(shape) * scale + shift).to(dtype)


def check_close(gpu_result, cpu_result, tol):
    """A GPU result against the CPU's: same dtype and shape, values within (atol, rtol)."""
    assert gpu_result.is_cuda
    assert gpu_result.dtype == cpu_result.dtype and gpu_result.shape == cpu_result.shape
    np.testing.assert_allclose(host(gpu_result), host(cpu_result), atol=tol[0], rtol=tol[1])
