"""cuda tier: losses on the GPU against the CPU (kernels/cuda/loss.cu): the fused
cross-entropy (2-D logits, class indices) against the CPU's composed log_softmax + nll,
with ignore_index, class weights, label smoothing and every reduction; the composed path
on the GPU for [N, C, d] inputs and probability targets; nll_loss, l1, BCE and BCE with
logits; bad targets raise the CPU's error class. Skips without a GPU."""
import numpy as np
import pytest

import bigmodel as bm
import bigmodel.nn.functional as F
from _cuda import check_close, host, normal, requires_cuda

pytestmark = requires_cuda

FLOATS = [bm.float32, bm.float64, bm.float16, bm.bfloat16]
TOL = {bm.float32: (2e-5, 2e-5), bm.float64: (1e-10, 1e-9), bm.float16: (5e-2, 2e-2),
       bm.bfloat16: (1e-1, 3e-2)}
GRAD_TOL = {bm.float32: (1e-6, 1e-4), bm.float64: (1e-10, 1e-9), bm.float16: (2e-3, 3e-3),
            bm.bfloat16: (2e-2, 2e-2)}


def targets(rng, n, classes, ignore_index=None, every=4):
    t = rng.integers(0, classes, size=n)
    if ignore_index is not None:
        t[1::every] = ignore_index
    return bm.tensor(t)


def run_both(fn, x, g=None):
    """fn(x) on the CPU and on the GPU, with the gradient of x when g is given."""
    res = {}
    for cuda in (False, True):
        xs = (x.cuda() if cuda else x).detach().requires_grad_()
        out = fn(xs, cuda)
        if g is not None:
            out.backward(g.cuda() if cuda else g)
        res[cuda] = (out, xs.grad)
    return res


@pytest.mark.parametrize("classes", [1, 7, 33, 1000, 1023, 4096, 50257])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_fused_cross_entropy_matches_composed_cpu(rng, dtype, classes):
    n = 3 if classes >= 4096 else 13
    x = normal(rng, (n, classes), dtype)
    ignore = 1 if classes > 1 else -100  # with one class, ignoring it would leave no target (0/0)
    t = targets(rng, n, classes, ignore_index=ignore)
    w = bm.tensor(rng.uniform(0.1, 2.0, classes)).to(dtype)
    cases = [("mean", None, 0.0), ("sum", w, 0.0), ("none", w, 0.1), ("mean", w, 0.1), ("none", None, 0.0)]
    for reduction, weight, eps in cases:
        if dtype == bm.float16 and eps > 0 and classes >= 1000:
            continue  # the composed float16 smoothing sum (about 10 * 13 * C) overflows float16
        g = normal(rng, (n,) if reduction == "none" else (), dtype, 1.0, 0.0)

        def fn(xs, cuda):
            return F.cross_entropy(xs, t.cuda() if cuda else t, weight=None if weight is None else
                                   (weight.cuda() if cuda else weight), ignore_index=ignore,
                                   reduction=reduction, label_smoothing=eps)
        res = run_both(fn, x, g)
        check_close(res[True][0], res[False][0], TOL[dtype])
        check_close(res[True][1], res[False][1], GRAD_TOL[dtype])


def test_fused_cross_entropy_noncontiguous_and_int32_targets(rng):
    x = normal(rng, (33, 17), bm.float32)
    t = bm.tensor(rng.integers(0, 33, size=17)).to(bm.int32)
    g = normal(rng, (), bm.float32, 1.0, 0.0)
    res = run_both(lambda xs, cuda: F.cross_entropy(xs.t(), t.cuda() if cuda else t), x, g)  # [17, 33] view
    check_close(res[True][0], res[False][0], TOL[bm.float32])
    check_close(res[True][1], res[False][1], GRAD_TOL[bm.float32])


def test_fused_cross_entropy_all_ignored_is_nan_like_cpu(rng):
    x = normal(rng, (4, 5), bm.float32)
    t = bm.tensor(np.full(4, -100))
    a, b = F.cross_entropy(x.cuda(), t.cuda()), F.cross_entropy(x, t)
    assert np.isnan(host(b)) and np.isnan(host(a))


@pytest.mark.parametrize("dtype", [bm.float32, bm.float16], ids=str)
def test_composed_cross_entropy_on_gpu(rng, dtype):
    # [N, C, d] logits and probability targets keep the composed path (softmax over dim 1).
    x = normal(rng, (5, 7, 9), dtype)
    t = bm.tensor(rng.integers(0, 7, size=(5, 9)))
    g = normal(rng, (), dtype, 1.0, 0.0)
    res = run_both(lambda xs, cuda: F.cross_entropy(xs, t.cuda() if cuda else t, label_smoothing=0.2), x, g)
    check_close(res[True][0], res[False][0], TOL[dtype])
    check_close(res[True][1], res[False][1], GRAD_TOL[dtype])
    p = bm.softmax(normal(rng, (6, 11), bm.float32), 1)
    y = normal(rng, (6, 11), bm.float32)
    res = run_both(lambda xs, cuda: F.cross_entropy(xs, p.cuda() if cuda else p), y, normal(rng, (), bm.float32))
    check_close(res[True][0], res[False][0], TOL[bm.float32])
    check_close(res[True][1], res[False][1], GRAD_TOL[bm.float32])


def test_fused_cross_entropy_gradcheck_on_gpu(rng):
    x = bm.tensor(rng.standard_normal((4, 6)), dtype=bm.float64).cuda().detach().requires_grad_()
    t = bm.tensor(np.array([0, 5, -100, 2])).cuda()
    w = bm.tensor(rng.uniform(0.5, 1.5, 6), dtype=bm.float64).cuda()
    assert bm.autograd.gradcheck(lambda a: F.cross_entropy(a, t, weight=w, label_smoothing=0.1), [x])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_nll_loss_matches_cpu(rng, dtype, reduction):
    x = bm.log_softmax(normal(rng, (9, 33, 4), bm.float64), 1).to(dtype)
    t = bm.tensor(rng.integers(0, 33, size=(9, 4)))
    w = bm.tensor(rng.uniform(0.1, 2.0, 33)).to(dtype)
    g = normal(rng, (9, 4) if reduction == "none" else (), dtype, 1.0, 0.0)
    res = run_both(lambda xs, cuda: F.nll_loss(xs, t.cuda() if cuda else t, weight=w.cuda() if cuda else w,
                                               ignore_index=3, reduction=reduction), x, g)
    check_close(res[True][0], res[False][0], TOL[dtype])
    check_close(res[True][1], res[False][1], GRAD_TOL[dtype])


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_out_of_range_target_raises_index_error(rng, fn):
    x = normal(rng, (4, 6), bm.float32)
    for bad in (6, -1):
        t = bm.tensor(np.array([0, 1, bad, 2]))
        op = getattr(F, fn)
        with pytest.raises(IndexError, match=rf"\[{fn}\] target {bad} is out of bounds for 6 classes"):
            op(x, t)
        with pytest.raises(IndexError, match=rf"\[{fn}\] target {bad} is out of bounds for 6 classes"):
            op(x.cuda(), t.cuda())
    # the device is still usable
    assert np.isfinite(host(F.cross_entropy(x.cuda(), bm.tensor(np.array([0, 1, 5, 2])).cuda())))


@pytest.mark.parametrize("n", [1, 7, 33, 1000, 1023])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_pointwise_losses_match_cpu(rng, dtype, n):
    probs = bm.tensor(rng.uniform(0.02, 0.98, (n, 3))).to(dtype)
    logits = normal(rng, (n, 3), dtype)
    y = bm.tensor(rng.uniform(0.0, 1.0, (3, n))).to(dtype)
    pw = bm.tensor(rng.uniform(0.5, 3.0, (3, 1))).to(dtype)
    g = normal(rng, (), dtype, 1.0, 0.0)
    cases = [
        (lambda a, b, cuda: F.l1_loss(a, b), logits),
        (lambda a, b, cuda: F.binary_cross_entropy(a, b, reduction="sum"), probs),
        (lambda a, b, cuda: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw.cuda() if cuda else pw), logits),
    ]
    for loss, src in cases:
        res = {}
        for cuda in (False, True):
            xs = (src.cuda() if cuda else src).detach().requires_grad_()
            ys = (y.cuda() if cuda else y).detach().requires_grad_()
            out = loss(xs.t(), ys, cuda)  # input a transposed view
            out.backward(g.cuda() if cuda else g)
            res[cuda] = (out, xs.grad, ys.grad)
        check_close(res[True][0], res[False][0], TOL[dtype])
        for got, want in zip(res[True][1:], res[False][1:]):
            check_close(got, want, GRAD_TOL[dtype] if dtype != bm.float32 else (1e-5, 1e-4))


def test_bce_rejects_input_outside_unit_interval(rng):
    x = bm.tensor(np.array([0.2, 1.5, 0.3]), dtype=bm.float32)
    y = bm.tensor(np.array([0.0, 1.0, 1.0]), dtype=bm.float32)
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        F.binary_cross_entropy(x, y)
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        F.binary_cross_entropy(x.cuda(), y.cuda())
