"""cuda tier: conv2d / conv1d on the GPU (kernels/cuda/conv*.cu) against the CPU kernels:
forward, input and weight gradients over a grid of stride, padding ('same' with an even
kernel too), dilation, groups and bias, odd sizes, batch 1 and 7, channels 1 / 3 / 33, in
float32, float64, float16 and bfloat16; ours against cuDNN (bm.backends.conv); the article
CNN forward + backward; bad inputs raise the CPU's errors. Skips without a GPU."""
import numpy as np
import pytest

import bigmodel as bm
from _cuda import host64, requires_cuda

pytestmark = requires_cuda

# Max |gpu - cpu| over max(1, max |cpu|): both sides compute in float32 (float64) with
# different summation orders; half types may differ by an output rounding step.
TOL = {bm.float64: 1e-11, bm.float32: 2e-5, bm.float16: 4e-3, bm.bfloat16: 2e-2}


def check(gpu, cpu, dtype, what, scale=1.0):
    assert gpu.is_cuda and gpu.dtype == cpu.dtype == dtype, what
    assert gpu.shape == cpu.shape, f"{what}: shape {gpu.shape} != {cpu.shape}"
    a, e = host64(gpu), host64(cpu)
    assert np.isfinite(a).all(), f"{what}: non-finite values on the GPU (unwritten output?)"
    err = np.abs(a - e).max() / max(1.0, np.abs(e).max()) if e.size else 0.0
    assert err <= TOL[dtype] * scale, f"{what}: max error {err:.3g} (relative to the largest value)"


# (N, C, H, W, O, kernel, stride, padding, dilation, groups, bias)
CASES = [
    (1, 1, 5, 5, 1, (1, 1), 1, 0, 1, 1, False),
    (7, 3, 11, 9, 5, (3, 3), 1, 1, 1, 1, True),
    (1, 33, 13, 7, 17, (3, 3), 2, 1, 1, 1, True),
    (7, 33, 9, 10, 33, (3, 3), 1, "same", 1, 33, True),     # depthwise
    (2, 3, 17, 15, 6, (5, 3), (2, 3), (2, 1), (1, 2), 3, False),
    (1, 6, 12, 11, 4, (2, 4), 1, "same", 1, 2, True),       # even kernel: asymmetric padding
    (3, 8, 8, 8, 130, (1, 1), 1, 0, 1, 1, True),            # 1x1, three M tiles
    (2, 70, 6, 6, 66, (3, 3), 1, 1, 1, 1, False),           # K = 630: many k-steps, 2 M tiles
    (1, 3, 40, 37, 8, (7, 7), 3, 3, 1, 1, True),            # large kernel, stride 3
    (5, 4, 30, 30, 8, (3, 3), 2, 0, 1, 2, True),            # several N tiles per group
    (8, 16, 32, 32, 16, (3, 3), 1, 1, 1, 1, False),         # long reduction: split-K weight grad
    (2, 5, 3, 3, 3, (3, 3), 1, 0, 1, 1, True),              # kernel = image: 1x1 output
]
DTYPES = [bm.float32, bm.float64, bm.bfloat16, bm.float16]


def make(rng, case, dtype):
    n, c, h, w, o, k, stride, padding, dilation, groups, bias = case
    x = bm.tensor(rng.standard_normal((n, c, h, w))).to(dtype)
    wt = bm.tensor(rng.standard_normal((o, c // groups) + k) / np.sqrt(c // groups * k[0] * k[1])).to(dtype)
    b = bm.tensor(rng.standard_normal(o)).to(dtype) if bias else None
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return x, wt, b, kw


def run(x, wt, b, kw, gy, device):
    """Forward and the input / weight gradients on `device` (bias without grad: the bias
    gradient is a reduction, tested on its own below)."""
    xd = x.to(device).detach().requires_grad_(True)
    wd = wt.to(device).detach().requires_grad_(True)
    bd = b.to(device) if b is not None else None
    out = bm.conv2d(xd, wd, bd, **kw)
    out.backward(gy.to(device))
    return out, xd.grad, wd.grad


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:5])) + f"-k{c[5]}-s{c[6]}-p{c[7]}")
def test_conv2d_cuda_matches_cpu(rng, case, dtype):
    x, wt, b, kw = make(rng, case, dtype)
    cpu_out = bm.conv2d(x, wt, b, **kw)
    gy = bm.tensor(rng.standard_normal(cpu_out.shape)).to(dtype)
    ref = run(x, wt, b, kw, gy, "cpu")
    got = run(x, wt, b, kw, gy, "cuda")
    # Both sides round the same half inputs and accumulate in float32: beyond summation order
    # only the final rounding differs (one ulp); the weight gradient's long sums get 2x.
    for name, g, r, scale in zip(("output", "grad_input", "grad_weight"), got, ref, (1, 1, 2)):
        check(g, r, dtype, f"{name} {case} {dtype}", scale)


def test_conv2d_cuda_bias_grad_and_noncontiguous(rng):
    x = bm.tensor(rng.standard_normal((3, 7, 5, 4))).float()
    wt = bm.tensor(rng.standard_normal((5, 6, 3, 3))).float()  # [C, O, kW, kH] permuted below
    b = bm.tensor(rng.standard_normal(6)).float()
    results = {}
    for dev in ("cpu", "cuda"):
        xt = x.to(dev).permute(0, 3, 2, 1).detach().requires_grad_(True)  # [3, 4, 5, 7], strided
        wp = wt.to(dev).permute(1, 0, 3, 2).detach().requires_grad_(True)  # [6, 5, 3, 3], strided
        bd = b.to(dev).detach().requires_grad_(True)
        assert not xt.is_contiguous() and not wp.is_contiguous()
        # 4 channels in, weight expects 5: narrow the weight's input channels to 4
        w4 = wp[:, :4]
        out = bm.conv2d(xt, w4, bd, padding=1)
        out.backward(bm.ones(out.shape, dtype=out.dtype, device=dev))
        results[dev] = (out, xt.grad, wp.grad, bd.grad)
    for name, g, r in zip(("output", "grad_input", "grad_weight", "grad_bias"), results["cuda"], results["cpu"]):
        check(g, r, bm.float32, name)


def test_conv2d_cuda_unbatched_and_conv1d(rng):
    x = bm.tensor(rng.standard_normal((4, 9, 13))).float()
    w = bm.tensor(rng.standard_normal((6, 2, 3, 2))).float()
    check(bm.conv2d(x.cuda(), w.cuda(), stride=2, padding=1, groups=2),
          bm.conv2d(x, w, stride=2, padding=1, groups=2), bm.float32, "unbatched conv2d")
    x1 = bm.tensor(rng.standard_normal((7, 4, 1000))).float()
    w1 = bm.tensor(rng.standard_normal((8, 4, 5))).float()
    for kw in (dict(), dict(stride=3, padding=2, dilation=2), dict(padding="same")):
        check(bm.conv1d(x1.cuda(), w1.cuda(), **kw), bm.conv1d(x1, w1, **kw), bm.float32, f"conv1d {kw}")


def test_conv2d_cuda_empty_batch(rng):
    w = bm.tensor(rng.standard_normal((3, 2, 3, 3))).float().cuda().requires_grad_(True)
    out = bm.conv2d(bm.zeros(0, 2, 5, 5).cuda(), w)
    assert out.shape == (0, 3, 3, 3) and out.is_cuda
    out.backward(bm.zeros(0, 3, 3, 3).cuda())
    assert (host64(w.grad) == 0).all()


def cudnn_available():
    prev = bm.backends.conv
    try:
        bm.backends.conv = "cudnn"
        bm.conv2d(bm.ones(1, 1, 3, 3).cuda(), bm.ones(1, 1, 3, 3).cuda())
        return True, ""
    except RuntimeError as e:
        return False, str(e)
    finally:
        bm.backends.conv = prev


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[4], CASES[5], CASES[8], CASES[10]],
                         ids=lambda c: "x".join(map(str, c[:5])))
def test_conv2d_ours_matches_cudnn(rng, case, dtype):
    ok, why = cudnn_available()
    if not ok:
        pytest.skip(f"cuDNN backend unavailable: {why}")
    x, wt, b, kw = make(rng, case, dtype)
    gy = bm.tensor(rng.standard_normal(bm.conv2d(x, wt, b, **kw).shape)).to(dtype)
    prev = bm.backends.conv
    try:
        bm.backends.conv = "ours"
        ours = run(x, wt, b, kw, gy, "cuda")
        bm.backends.conv = "cudnn"
        theirs = run(x, wt, b, kw, gy, "cuda")
    finally:
        bm.backends.conv = prev
    # cuDNN may pick Winograd or FFT algorithms, whose float32 / float64 rounding is looser.
    wide = 50 if dtype in (bm.float32, bm.float64) else 2
    for name, g, r in zip(("output", "grad_input", "grad_weight"), ours, theirs):
        check(g, r, dtype, f"{name} ours vs cudnn {case}", wide)


def test_cudnn_backend_name_is_validated():
    with pytest.raises(ValueError, match="conv"):
        bm.backends.conv = "cudnnn"


def test_article_cnn_forward_backward_cuda_matches_cpu(rng):
    from bigmodel.models import ArticleCNN
    bm.manual_seed(0)
    cpu_model = ArticleCNN()
    gpu_model = ArticleCNN()
    gpu_model.load_state_dict(cpu_model.state_dict())
    gpu_model.to("cuda")
    cpu_model.eval()  # dropout off: both sides compute the same function
    gpu_model.eval()
    x = bm.tensor(rng.standard_normal((7, 1, 28, 28))).float()
    target = bm.tensor(rng.integers(0, 10, size=7))
    losses = {}
    for dev, model in (("cpu", cpu_model), ("cuda", gpu_model)):
        out = model(x.to(dev))
        loss = bm.nn.functional.cross_entropy(out, target.to(dev))
        loss.backward()
        losses[dev] = (out, loss)
    check(losses["cuda"][0], losses["cpu"][0], bm.float32, "logits")
    check(losses["cuda"][1], losses["cpu"][1], bm.float32, "loss")
    cpu_params = dict(cpu_model.named_parameters())
    for name, p in gpu_model.named_parameters():
        check(p.grad, cpu_params[name].grad, bm.float32, f"grad of {name}", scale=5)


def test_conv2d_cuda_bad_inputs_raise_cpu_errors(rng):
    x = bm.randn(2, 4, 8, 8)
    cases = [
        (lambda d: bm.conv2d(x.to(d), bm.randn(8, 3, 3, 3).to(d)), ValueError, r"\[conv2d\] expected input with 3"),
        (lambda d: bm.conv2d(bm.randn(1, 4, 2, 2).to(d), bm.randn(8, 4, 3, 3).to(d)), ValueError,
         r"\[conv2d\] kernel size"),
        (lambda d: bm.conv2d(x.to(d), bm.randn(8, 4, 3, 3).to(d), stride=2, padding="same"), ValueError,
         r"\[conv2d\] padding='same'"),
        (lambda d: bm.conv2d(x.to(d), bm.randn(8, 4, 3, 3).double().to(d)), TypeError, r"\[conv2d\].*dtype"),
        (lambda d: bm.conv2d(x.to(d).int(), bm.randn(8, 4, 3, 3).int().to(d)), TypeError, r"\[conv2d\]"),
    ]
    for fn, exc, match in cases:
        with pytest.raises(exc, match=match):
            fn("cpu")
        with pytest.raises(exc, match=match):
            fn("cuda")
    with pytest.raises(Exception, match=r"\[conv2d\].*(device|cuda)"):
        bm.conv2d(x.cuda(), bm.randn(8, 4, 3, 3))
