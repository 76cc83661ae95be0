"""cuda tier: the pooling kernels on the GPU (kernels/cuda/pool.cu) against the CPU's:
max_pool2d (values and indices equal, NaN propagation, overlapping windows), avg_pool2d
(ceil_mode, count_include_pad, divisor_override), adaptive average / max pooling
(down- and up-sampling), each forward and backward, on odd sizes, batch 1 and 7, unbatched
and non-contiguous inputs, in every floating dtype. Skips without a GPU."""
import numpy as np
import pytest

import bigmodel as bm
from _cuda import host, requires_cuda

pytestmark = requires_cuda

DTYPES = [bm.float32, bm.float64, bm.float16, bm.bfloat16]
TOL = {bm.float64: 1e-12, bm.float32: 1e-6, bm.float16: 1e-3, bm.bfloat16: 8e-3}
SHAPES = [(7, 3, 13, 11), (1, 33, 8, 9), (3, 17, 16), (2, 5, 64, 63)]


def check(gpu, cpu, what, exact=False):
    assert gpu.is_cuda, what
    assert gpu.dtype == cpu.dtype and gpu.shape == cpu.shape, f"{what}: {gpu.dtype}{gpu.shape} vs {cpu.dtype}{cpu.shape}"
    a, e = host(gpu), host(cpu)
    if exact:
        np.testing.assert_array_equal(a, e, err_msg=what)
    else:
        atol = TOL.get(cpu.dtype, 0)
        np.testing.assert_allclose(a, e, atol=atol, rtol=atol, err_msg=what)


def both(rng, shape, dtype, fn):
    """fn(x) on the CPU and on the GPU, then backward with one output gradient; returns
    ((cpu outputs..., cpu grad), (gpu outputs..., gpu grad))."""
    x = bm.tensor(rng.standard_normal(shape) * 3).to(dtype)
    res = []
    gy = None
    for dev in ("cpu", "cuda"):
        xd = x.to(dev).detach().requires_grad_(True)
        outs = fn(xd)
        outs = outs if isinstance(outs, tuple) else (outs,)
        if gy is None:
            gy = bm.tensor(rng.standard_normal(outs[0].shape)).to(dtype)
        outs[0].backward(gy.to(dev))
        res.append(tuple(outs) + (xd.grad,))
    return res


MAX_CASES = [  # kernel, stride, padding, dilation, ceil_mode
    (2, None, 0, 1, False),
    (3, 2, 1, 1, True),
    ((3, 2), (2, 1), (1, 0), (2, 1), False),
    (3, 1, 1, 1, False),  # overlapping windows: the backward adds several gradients per element
    (5, 3, 2, 2, True),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("case", MAX_CASES, ids=str)
def test_max_pool2d_cuda_matches_cpu(rng, case, shape, dtype):
    k, s, p, d, ceil_mode = case
    (cy, ci, cg), (gy, gi, gg) = both(rng, shape, dtype,
                                      lambda x: bm.max_pool2d(x, k, s, p, d, ceil_mode, return_indices=True))
    check(gy, cy, f"max_pool2d {case}", exact=True)
    check(gi, ci, f"max_pool2d indices {case}", exact=True)
    check(gg, cg, f"max_pool2d grad {case}")


def test_max_pool2d_cuda_nan_and_noncontiguous(rng):
    x = rng.standard_normal((2, 3, 9, 10))
    x[0, 1, 2, 3] = np.nan
    x[1, 2, 7, 7] = np.nan
    xt = bm.tensor(np.ascontiguousarray(x.transpose(3, 2, 1, 0))).float()
    for dev in ("cpu", "cuda"):
        v = xt.to(dev).permute(3, 2, 1, 0)
        assert not v.is_contiguous()
        out, idx = bm.max_pool2d(v, 3, 2, 1, return_indices=True)
        if dev == "cpu":
            ref = (out, idx)
    check(out, ref[0], "max_pool2d NaN values", exact=True)
    check(idx, ref[1], "max_pool2d NaN indices", exact=True)
    assert np.isnan(host(out)).sum() == np.isnan(host(ref[0])).sum() > 0


AVG_CASES = [  # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    (2, None, 0, False, True, None),
    (3, 2, 1, True, False, None),
    ((3, 2), (2, 1), (1, 1), False, True, 5),
    (3, 1, 1, False, False, None),
    (4, 3, 2, True, True, None),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("case", AVG_CASES, ids=str)
def test_avg_pool2d_cuda_matches_cpu(rng, case, shape, dtype):
    k, s, p, ceil_mode, cip, div = case
    (cy, cg), (gy, gg) = both(rng, shape, dtype, lambda x: bm.avg_pool2d(x, k, s, p, ceil_mode, cip, div))
    check(gy, cy, f"avg_pool2d {case}")
    check(gg, cg, f"avg_pool2d grad {case}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("osize", [(1, 1), (3, 3), (5, 7), (7, 2), (20, 30)], ids=str)
def test_adaptive_pools_cuda_match_cpu(rng, osize, dtype):
    for shape in ((7, 3, 13, 11), (5, 7, 9)):
        (cy, cg), (gy, gg) = both(rng, shape, dtype, lambda x: bm.adaptive_avg_pool2d(x, osize))
        check(gy, cy, f"adaptive_avg_pool2d {osize} {shape}")
        check(gg, cg, f"adaptive_avg_pool2d grad {osize} {shape}")
        (cy, ci, cg), (gy, gi, gg) = both(rng, shape, dtype,
                                          lambda x: bm.adaptive_max_pool2d(x, osize, return_indices=True))
        check(gy, cy, f"adaptive_max_pool2d {osize} {shape}", exact=True)
        check(gi, ci, f"adaptive_max_pool2d indices {osize} {shape}", exact=True)
        check(gg, cg, f"adaptive_max_pool2d grad {osize} {shape}")


def test_pool_cuda_large_plane_count(rng):
    # Many planes and an odd total: the grid-stride loops and the int64 plane offsets.
    x = bm.tensor(rng.standard_normal((33, 31, 17, 15))).float()
    for fn in (lambda t: bm.max_pool2d(t, 3, 2), lambda t: bm.avg_pool2d(t, 2, 1, 1),
               lambda t: bm.adaptive_avg_pool2d(t, (4, 6))):
        check(fn(x.cuda()), fn(x), "large plane count")


def test_pool_cuda_bad_inputs_raise_cpu_errors():
    x = bm.randn(2, 3, 8, 8)
    cases = [
        (lambda t: bm.max_pool2d(t, 0), ValueError, r"\[max_pool2d\] kernel_size must be positive"),
        (lambda t: bm.max_pool2d(t, 2, padding=2), ValueError, r"\[max_pool2d\] padding should be at most half"),
        (lambda t: bm.avg_pool2d(t, 9), ValueError, r"\[avg_pool2d\] output size"),
        (lambda t: bm.max_pool2d(t.reshape(6, 8, 8)[0], 2), ValueError, r"\[max_pool2d\] expected a 3-D"),
        (lambda t: bm.adaptive_avg_pool2d(t.int(), 2), TypeError, r"\[adaptive_avg_pool2d\]"),
    ]
    for fn, exc, match in cases:
        with pytest.raises(exc, match=match):
            fn(x)
        with pytest.raises(exc, match=match):
            fn(x.cuda())
