"""cuda tier: binary elementwise ops on the GPU against the same ops on the CPU, on random
inputs of odd sizes, non-contiguous views and broadcast operands. Skips without a GPU."""
import numpy as np
import pytest

import bigmodel as bm
from _cuda import host, requires_cuda

pytestmark = requires_cuda

FLOATS = [bm.float32, bm.float64, bm.float16, bm.bfloat16]
INTS = [bm.int32, bm.int64]
TOL = {bm.float32: (1e-6, 1e-5), bm.float64: (1e-12, 1e-12), bm.float16: (1e-3, 1e-3),
       bm.bfloat16: (1e-2, 1e-2)}


def make(rng, shape, dtype, positive=False):
    if dtype == bm.bool:
        return bm.tensor(rng.random(shape) > 0.5)
    if dtype in INTS:
        lo = 1 if positive else -50
        return bm.tensor(rng.integers(lo, 50, size=shape)).to(dtype)
    a = rng.standard_normal(shape) * 2
    if positive:
        a = np.abs(a) + 0.5
    return bm.tensor(a).to(dtype)


def check(gpu_result, cpu_result):
    assert gpu_result.is_cuda
    assert gpu_result.dtype == cpu_result.dtype and gpu_result.shape == cpu_result.shape
    atol, rtol = TOL.get(cpu_result.dtype, (0, 0))
    np.testing.assert_allclose(host(gpu_result), host(cpu_result), atol=atol, rtol=rtol)


OPS = {
    "add": bm.add, "sub": bm.sub, "mul": bm.mul, "div": bm.div,
    "maximum": bm.maximum, "minimum": bm.minimum,
    "eq": bm.eq, "lt": bm.lt, "ge": bm.ge, "ne": bm.ne,
}


@pytest.mark.parametrize("n", [1, 7, 33, 1000, 1023])
@pytest.mark.parametrize("dtype", FLOATS + INTS, ids=str)
@pytest.mark.parametrize("name", sorted(OPS))
def test_binary_matches_cpu(rng, name, dtype, n):
    op = OPS[name]
    a, b = make(rng, (n,), dtype), make(rng, (n,), dtype, positive=True)
    check(op(a.cuda(), b.cuda()), op(a, b))
    if n > 1:  # views starting one element in: misaligned for 16-byte packs, the strided path
        check(op(a.cuda()[1:], b.cuda()[:-1]), op(a[1:], b[:-1]))


@pytest.mark.parametrize("dtype", FLOATS + INTS, ids=str)
def test_binary_noncontiguous_and_broadcast(rng, dtype):
    a = make(rng, (33, 7, 5), dtype)
    b = make(rng, (7, 1), dtype, positive=True)
    for name, op in OPS.items():
        check(op(a.cuda().transpose(0, 2), b.cuda()), op(a.transpose(0, 2), b))  # strided + broadcast
        check(op(a.cuda(), b.cuda()), op(a, b))  # b broadcast over dims 0 and 2
        if name not in ("maximum", "minimum"):  # these take tensors only, as in PyTorch
            check(op(a.cuda()[::2, :, 1:], 3), op(a[::2, :, 1:], 3))  # scalar operand


@pytest.mark.parametrize("dtype", FLOATS + INTS, ids=str)
def test_pow_remainder_floor_divide(rng, dtype):
    a, b = make(rng, (1023,), dtype, positive=True), make(rng, (1023,), dtype, positive=True)
    e = bm.tensor(rng.integers(0, 4, size=1023)).to(dtype)
    check(bm.pow(a.cuda(), e.cuda()), bm.pow(a, e))
    neg = make(rng, (1023,), dtype)
    check(bm.remainder(neg.cuda(), b.cuda()), bm.remainder(neg, b))
    check(bm.fmod(neg.cuda(), b.cuda()), bm.fmod(neg, b))
    check(bm.floor_divide(neg.cuda(), b.cuda()), bm.floor_divide(neg, b))


def test_bitwise_and_logical(rng):
    for dtype in INTS + [bm.bool]:
        a, b = make(rng, (1000,), dtype), make(rng, (1000,), dtype)
        for op in (bm.bitwise_and, bm.bitwise_or, bm.bitwise_xor):
            check(op(a.cuda(), b.cuda()), op(a, b))
    a, b = make(rng, (1000,), bm.bool), make(rng, (1000,), bm.bool)
    for op in (bm.logical_and, bm.logical_or, bm.logical_xor):
        check(op(a.cuda(), b.cuda()), op(a, b))


def test_mixed_dtypes_promote_on_gpu(rng):
    a = make(rng, (33,), bm.int32)
    b = make(rng, (33,), bm.float16, positive=True)
    check(a.cuda() + b.cuda(), a + b)
    check(a.cuda() / 7, a / 7)


def test_inplace_on_gpu(rng):
    a, b = make(rng, (7, 33), bm.float32), make(rng, (33,), bm.float32)
    expected = (a + b) * 2.0
    g = a.cuda()
    g.add_(b.cuda())
    g.mul_(2.0)
    check(g, expected)
