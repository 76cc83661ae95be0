"""cuda tier: softmax / log_softmax on the GPU against the CPU (kernels/cuda/softmax.cu):
row lengths around the warp/block switch, dims 0 / middle / last, non-contiguous views,
every floating dtype, gradients through autograd. Skips without a GPU."""
import numpy as np
import pytest

import bigmodel as bm
from _cuda import host, normal, requires_cuda

pytestmark = requires_cuda

FLOATS = [bm.float32, bm.float64, bm.float16, bm.bfloat16]
TOL = {bm.float32: (2e-6, 2e-5), bm.float64: (1e-12, 1e-10), bm.float16: (2e-3, 3e-3),
       bm.bfloat16: (2e-2, 2e-2)}


def check(gpu_result, cpu_result, tol=None):
    assert gpu_result.is_cuda
    assert gpu_result.dtype == cpu_result.dtype and gpu_result.shape == cpu_result.shape
    atol, rtol = tol or TOL[cpu_result.dtype]
    np.testing.assert_allclose(host(gpu_result), host(cpu_result), atol=atol, rtol=rtol)


@pytest.mark.parametrize("n", [1, 7, 33, 1000, 1023, 1025, 4096, 50257])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("fn", [bm.softmax, bm.log_softmax], ids=["softmax", "log_softmax"])
def test_rows_match_cpu(rng, fn, dtype, n):
    rows = 3 if n >= 4096 else 9
    x = normal(rng, (rows, n), dtype)
    check(fn(x.cuda(), -1), fn(x, -1))
    if n > 1:  # rows starting one element past alignment: the scalar path
        check(fn(x.cuda()[:, 1:], -1), fn(x[:, 1:], -1))


@pytest.mark.parametrize("dim", [0, 1, 2])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("fn", [bm.softmax, bm.log_softmax], ids=["softmax", "log_softmax"])
def test_any_dim_noncontiguous(rng, fn, dtype, dim):
    x = normal(rng, (33, 7, 40), dtype)
    view_gpu, view_cpu = x.cuda().transpose(0, 2)[::2], x.transpose(0, 2)[::2]  # [20, 7, 33], strided
    check(fn(view_gpu, dim), fn(view_cpu, dim))
    check(fn(x.cuda(), dim), fn(x, dim))


def test_large_inner_and_long_reduced_dim(rng):
    # Softmax over dim 0 of a tall matrix: few columns, a long reduced dim (the inner kernel).
    x = normal(rng, (5000, 3), bm.float32)
    check(bm.softmax(x.cuda(), 0), bm.softmax(x, 0))
    y = normal(rng, (2, 1023, 65), bm.float32)
    check(bm.log_softmax(y.cuda(), 1), bm.log_softmax(y, 1))


def test_masked_rows(rng):
    x = normal(rng, (4, 37), bm.float32, scale=30.0).numpy()
    x[:, ::3] = -np.inf
    t = bm.tensor(x)
    out = bm.softmax(t.cuda(), -1)
    check(out, bm.softmax(t, -1))
    assert np.all(host(out)[:, ::3] == 0)
    np.testing.assert_allclose(host(out).sum(-1), np.ones(4), rtol=1e-5)


def test_dtype_argument(rng):
    x = normal(rng, (7, 1000), bm.float16)
    out = bm.softmax(x.cuda(), -1, dtype=bm.float32)
    assert out.dtype == bm.float32
    check(out, bm.softmax(x, -1, dtype=bm.float32))


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("fn", [bm.softmax, bm.log_softmax], ids=["softmax", "log_softmax"])
def test_gradients_match_cpu(rng, fn, dim):
    x = normal(rng, (6, 5, 1025), bm.float32)
    g = normal(rng, (6, 5, 1025), bm.float32, scale=1.0)
    xc = x.detach().requires_grad_()
    xg = x.cuda().detach().requires_grad_()
    fn(xc, dim).backward(g)
    fn(xg, dim).backward(g.cuda())
    check(xg.grad, xc.grad, tol=(1e-6, 1e-4))


def test_gradcheck_on_gpu_float64(rng):
    x = bm.tensor(rng.standard_normal((3, 5)), dtype=bm.float64).cuda().detach().requires_grad_()
    assert bm.autograd.gradcheck(lambda t: bm.log_softmax(t, 1), [x])
