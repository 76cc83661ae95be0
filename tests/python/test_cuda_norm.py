"""cuda tier: layer_norm and batch_norm on the GPU against the CPU (kernels/cuda/norm.cu):
forward, running statistics, and the gradients of input, weight and bias, on odd row
lengths, non-contiguous inputs and every floating dtype. Skips without a GPU."""
import pytest

import bigmodel as bm
import bigmodel.nn.functional as F
from _cuda import check_close, normal, requires_cuda

pytestmark = requires_cuda

FLOATS = [bm.float32, bm.float64, bm.float16, bm.bfloat16]
# GPU statistics accumulate in float (Welford), the CPU's in double: a few float ulps.
TOL = {bm.float32: (2e-5, 1e-4), bm.float64: (1e-10, 1e-9), bm.float16: (2e-3, 3e-3),
       bm.bfloat16: (2e-2, 2e-2)}
GRAD_TOL = {bm.float32: (1e-4, 1e-4), bm.float64: (1e-9, 1e-9), bm.float16: (5e-3, 5e-3),
            bm.bfloat16: (5e-2, 3e-2)}


def leaf(t, cuda):
    return (t.cuda() if cuda else t).detach().requires_grad_()


@pytest.mark.parametrize("cols", [1, 7, 33, 1000, 1023, 1025, 4096, 50257])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_layer_norm_matches_cpu(rng, dtype, cols):
    rows = 3 if cols >= 4096 else 11
    x = normal(rng, (rows, cols), dtype)
    w, b = normal(rng, (cols,), dtype, 1.0, 1.0), normal(rng, (cols,), dtype, 1.0, 0.0)
    g = normal(rng, (rows, cols), dtype, 1.0, 0.0)
    res = {}
    for cuda in (False, True):
        xs, ws, bs = leaf(x, cuda), leaf(w, cuda), leaf(b, cuda)
        y = F.layer_norm(xs, (cols,), ws, bs, 1e-5)
        y.backward(g.cuda() if cuda else g)
        res[cuda] = (y, xs.grad, ws.grad, bs.grad)
    check_close(res[True][0], res[False][0], TOL[dtype])
    for got, want in zip(res[True][1:], res[False][1:]):
        check_close(got, want, GRAD_TOL[dtype])


@pytest.mark.parametrize("dtype", [bm.float32, bm.float16], ids=str)
def test_layer_norm_noncontiguous_two_dims_no_affine(rng, dtype):
    x = normal(rng, (9, 33, 6), dtype)
    view_gpu, view_cpu = x.cuda().transpose(0, 1), x.transpose(0, 1)  # [33, 9, 6], strided
    check_close(F.layer_norm(view_gpu, (9, 6)), F.layer_norm(view_cpu, (9, 6)), TOL[dtype])
    w = normal(rng, (6,), dtype, 1.0, 1.0)
    check_close(F.layer_norm(view_gpu, (6,), w.cuda()), F.layer_norm(view_cpu, (6,), w), TOL[dtype])


def test_layer_norm_many_rows_weight_grad(rng):
    # 4000 rows: the weight/bias gradients go through several row chunks.
    x, g = normal(rng, (4000, 33), bm.float32), normal(rng, (4000, 33), bm.float32, 1.0, 0.0)
    w, b = normal(rng, (33,), bm.float32), normal(rng, (33,), bm.float32)
    grads = {}
    for cuda in (False, True):
        ws, bs = leaf(w, cuda), leaf(b, cuda)
        F.layer_norm(x.cuda() if cuda else x, (33,), ws, bs).backward(g.cuda() if cuda else g)
        grads[cuda] = (ws.grad, bs.grad)
    for got, want in zip(grads[True], grads[False]):
        check_close(got, want, (1e-3, 1e-4))


def test_layer_norm_gradcheck_on_gpu(rng):
    x = bm.tensor(rng.standard_normal((3, 7)), dtype=bm.float64).cuda().detach().requires_grad_()
    w = bm.tensor(rng.standard_normal(7), dtype=bm.float64).cuda().detach().requires_grad_()
    assert bm.autograd.gradcheck(lambda a, c: F.layer_norm(a, (7,), c), [x, w])


@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 33), (8, 2, 10, 100), (1, 3, 7), (64, 7), (3, 1, 4097)],
                         ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_batch_norm_training_matches_cpu(rng, dtype, shape):
    C = shape[1]
    sd = bm.float64 if dtype == bm.float64 else bm.float32
    x = normal(rng, shape, dtype)
    g = normal(rng, shape, dtype, 1.0, 0.0)
    w, b = normal(rng, (C,), sd, 1.0, 1.0), normal(rng, (C,), sd)
    rm0, rv0 = normal(rng, (C,), sd, 0.1, 0.0), bm.tensor(rng.uniform(0.5, 2.0, C)).to(sd)
    res = {}
    for cuda in (False, True):
        mv = (lambda t: t.cuda()) if cuda else (lambda t: t)
        xs, ws, bs = leaf(x, cuda), leaf(w, cuda), leaf(b, cuda)
        rm, rv = mv(rm0.clone()), mv(rv0.clone())
        y = F.batch_norm(xs, rm, rv, ws, bs, training=True, momentum=0.1, eps=1e-5)
        y.backward(mv(g))
        res[cuda] = (y, rm, rv, xs.grad, ws.grad, bs.grad)
    check_close(res[True][0], res[False][0], TOL[dtype])
    for got, want in zip(res[True][1:3], res[False][1:3]):  # running statistics
        check_close(got, want, (1e-5, 1e-5) if sd == bm.float32 else (1e-10, 1e-9))
    for got, want in zip(res[True][3:], res[False][3:]):
        check_close(got, want, GRAD_TOL[dtype] if got.dtype == dtype else (1e-3, 1e-4))


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_batch_norm_eval_matches_cpu(rng, dtype):
    sd = bm.float64 if dtype == bm.float64 else bm.float32
    x = normal(rng, (6, 5, 3, 11), dtype)
    view_gpu, view_cpu = x.cuda()[:, :, 1:], x[:, :, 1:]  # non-contiguous
    rm, rv = normal(rng, (5,), sd, 0.5, 0.0), bm.tensor(rng.uniform(0.5, 2.0, 5)).to(sd)
    w, b = normal(rng, (5,), sd), normal(rng, (5,), sd)
    g = normal(rng, (6, 5, 2, 11), dtype, 1.0, 0.0)
    res = {}
    for cuda in (False, True):
        mv = (lambda t: t.cuda()) if cuda else (lambda t: t)
        xs = (view_gpu if cuda else view_cpu).detach().requires_grad_()
        ws = mv(w).detach().requires_grad_()
        y = F.batch_norm(xs, mv(rm), mv(rv), ws, mv(b), training=False, eps=1e-5)
        y.backward(mv(g))
        res[cuda] = (y, xs.grad, ws.grad)
    check_close(res[True][0], res[False][0], TOL[dtype])
    check_close(res[True][1], res[False][1], GRAD_TOL[dtype])
    check_close(res[True][2], res[False][2], (1e-3, 1e-4) if sd == bm.float32 else (1e-9, 1e-9))


def test_batch_norm_gradcheck_on_gpu(rng):
    x = bm.tensor(rng.standard_normal((4, 3, 5)), dtype=bm.float64).cuda().detach().requires_grad_()
    w = bm.tensor(rng.standard_normal(3), dtype=bm.float64).cuda().detach().requires_grad_()
    assert bm.autograd.gradcheck(lambda a, c: F.batch_norm(a, None, None, c, None, training=True), [x, w])
