"""conv2d / conv1d against a direct NumPy float64 reference (a sum over kernel offsets of
strided slices of the padded input): stride, padding (ints, pairs, 'same', 'valid'),
dilation, groups (depthwise too), bias, unbatched and non-contiguous inputs, dtypes;
gradients against the reference's adjoint and gradcheck; bad inputs."""
import numpy as np
import pytest

import bigmodel as bm
from conftest import assert_close

gradcheck = bm.autograd.gradcheck


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def same_pads(k, d):
    total = d * (k - 1)
    return total // 2, total - total // 2


def ref_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """out[n, o] = sum over (c, i, j) of w[o, c, i, j] * padded_x[n, c, i*d + s*oh, j*d + s*ow]."""
    s, d = pair(stride), pair(dilation)
    kh, kw = w.shape[2:]
    if padding == "valid":
        pads = ((0, 0), (0, 0))
    elif padding == "same":
        pads = (same_pads(kh, d[0]), same_pads(kw, d[1]))
    else:
        p = pair(padding)
        pads = ((p[0], p[0]), (p[1], p[1]))
    xp = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]))
    n, c, hp, wp = xp.shape
    o, cg = w.shape[:2]
    oh = (hp - d[0] * (kh - 1) - 1) // s[0] + 1
    ow = (wp - d[1] * (kw - 1) - 1) // s[1] + 1
    og = o // groups
    out = np.zeros((n, o, oh, ow))
    for g in range(groups):
        xg, wg = xp[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = xg[:, :, i * d[0]:i * d[0] + s[0] * (oh - 1) + 1:s[0],
                           j * d[1]:j * d[1] + s[1] * (ow - 1) + 1:s[1]]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, wg[:, :, i, j])
    if b is not None:
        out += b[None, :, None, None]
    return out, pads


def ref_conv2d_grads(x, w, gy, stride=1, padding=0, dilation=1, groups=1):
    """The adjoint of ref_conv2d: (d input, d weight, d bias) for output gradient gy."""
    s, d = pair(stride), pair(dilation)
    _, pads = ref_conv2d(x, w, None, stride, padding, dilation, groups)
    xp = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]))
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    kh, kw = w.shape[2:]
    o, cg = w.shape[:2]
    og = o // groups
    oh, ow = gy.shape[2:]
    for g in range(groups):
        cs, os_ = slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)
        for i in range(kh):
            for j in range(kw):
                sl = (slice(None), cs, slice(i * d[0], i * d[0] + s[0] * (oh - 1) + 1, s[0]),
                      slice(j * d[1], j * d[1] + s[1] * (ow - 1) + 1, s[1]))
                gxp[sl] += np.einsum("nohw,oc->nchw", gy[:, os_], w[os_, :, i, j])
                gw[os_, :, i, j] = np.einsum("nohw,nchw->oc", gy[:, os_], xp[sl])
    h, wd = x.shape[2:]
    gx = gxp[:, :, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + wd]
    return gx, gw, gy.sum(axis=(0, 2, 3))


# (N, C, H, W, O, kernel, stride, padding, dilation, groups, bias)
CASES = [
    (2, 3, 7, 6, 4, (3, 3), 1, 0, 1, 1, True),
    (2, 3, 8, 9, 5, (3, 2), 2, 1, 1, 1, False),
    (1, 4, 9, 7, 6, (3, 3), (2, 1), (1, 2), (2, 1), 2, True),
    (3, 4, 6, 6, 4, (3, 3), 1, 1, 1, 4, True),    # depthwise
    (2, 6, 5, 7, 3, (1, 1), 1, 0, 1, 3, True),    # 1x1, groups: the direct (no im2col) path
    (2, 2, 5, 5, 3, (5, 5), 1, 0, 1, 1, True),    # kernel = image
    (4, 4, 16, 16, 8, (3, 3), 1, 1, 1, 1, True),  # big enough to split the batch over threads
    (4, 8, 12, 12, 8, (1, 1), 1, 0, 1, 1, False),  # threaded 1x1
    (2, 3, 9, 11, 4, (2, 3), 1, "same", (2, 1), 1, True),
    (2, 3, 9, 11, 4, (4, 3), 1, "valid", 1, 1, False),
]


def make(rng, n, c, h, w, o, k, groups, bias):
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((o, c // groups) + k)
    b = rng.standard_normal(o) if bias else None
    return x, wt, b


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [bm.float64, bm.float32])
def test_conv2d_forward_backward_match_reference(rng, case, dtype):
    n, c, h, w, o, k, stride, padding, dilation, groups, bias = case
    x, wt, b = make(rng, n, c, h, w, o, k, groups, bias)
    ref, _ = ref_conv2d(x, wt, b, stride, padding, dilation, groups)
    bx = bm.tensor(x, dtype=dtype, requires_grad=True)
    bw = bm.tensor(wt, dtype=dtype, requires_grad=True)
    bb = bm.tensor(b, dtype=dtype, requires_grad=True) if bias else None
    out = bm.conv2d(bx, bw, bb, stride=stride, padding=padding, dilation=dilation, groups=groups)
    tol = 1e-10 if dtype == bm.float64 else 2e-5
    assert out.dtype == dtype
    assert_close(out, ref, atol=tol, rtol=tol)
    gy = rng.standard_normal(ref.shape)
    out.backward(bm.tensor(gy, dtype=dtype))
    gx, gw, gb = ref_conv2d_grads(x, wt, gy, stride, padding, dilation, groups)
    assert_close(bx.grad, gx, atol=tol, rtol=tol)
    assert_close(bw.grad, gw, atol=tol * 10, rtol=tol)
    if bias:
        assert_close(bb.grad, gb, atol=tol * 10, rtol=tol)


def test_conv2d_positional_args_and_unbatched(rng):
    x, wt, b = make(rng, 1, 4, 6, 5, 6, (3, 3), 2, True)
    ref, _ = ref_conv2d(x, wt, b, 2, 1, 1, 2)
    out = bm.conv2d(bm.tensor(x[0]), bm.tensor(wt), bm.tensor(b), 2, 1, 1, 2)
    assert out.shape == ref.shape[1:]
    assert_close(out, ref[0])
    out = bm.conv2d(bm.tensor(x), bm.tensor(wt), bm.tensor(b), stride=[2], padding=(1,), groups=2)
    assert_close(out, ref)


def test_conv2d_same_padding_even_kernel_is_asymmetric(rng):
    # kernel 4: total padding 3, one row/col before and two after (the odd one at the end).
    x = rng.standard_normal((1, 2, 6, 7))
    wt = rng.standard_normal((3, 2, 4, 4))
    out = bm.conv2d(bm.tensor(x), bm.tensor(wt), padding="same")
    assert out.shape == (1, 3, 6, 7)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 2), (1, 2)))
    assert_close(out, ref_conv2d(xp, wt)[0])
    # 1-wide kernel in one dim: no padding there.
    wt2 = rng.standard_normal((3, 2, 3, 1))
    assert_close(bm.conv2d(bm.tensor(x), bm.tensor(wt2), padding="same"), ref_conv2d(x, wt2, padding="same")[0])


def test_conv2d_noncontiguous_inputs(rng):
    x = rng.standard_normal((2, 3, 7, 8))
    wt = rng.standard_normal((4, 3, 3, 3))
    ref, _ = ref_conv2d(x, wt, None, 1, 1)
    # Same values, different layouts: a permuted copy viewed back, and a strided slice.
    xt = bm.tensor(np.ascontiguousarray(x.transpose(3, 2, 1, 0))).permute(3, 2, 1, 0)
    wtt = bm.tensor(np.ascontiguousarray(wt.transpose(1, 0, 3, 2))).permute(1, 0, 3, 2)
    assert not xt.is_contiguous() and not wtt.is_contiguous()
    assert_close(bm.conv2d(xt, wtt, padding=1), ref)
    big = np.zeros((2, 3, 14, 8))
    big[:, :, ::2] = x
    xs = bm.tensor(big)[:, :, ::2]
    assert not xs.is_contiguous()
    assert_close(bm.conv2d(xs, bm.tensor(wt), padding=1), ref)


@pytest.mark.parametrize("dtype", [bm.float16, bm.bfloat16])
def test_conv2d_half_types_compute_in_float(rng, dtype):
    x, wt, b = make(rng, 2, 4, 6, 6, 4, (3, 3), 2, True)
    bx, bw, bb = (bm.tensor(a, dtype=dtype, requires_grad=True) for a in (x, wt, b))
    # The reference sees the rounded inputs, so only the output rounding differs.
    xr, wr, br = (t.detach().float().numpy().astype(np.float64) for t in (bx, bw, bb))
    out = bm.conv2d(bx, bw, bb, padding=1, groups=2)
    ref, _ = ref_conv2d(xr, wr, br, 1, 1, 1, 2)
    tol = 1e-2 if dtype == bm.float16 else 6e-2
    assert out.dtype == dtype
    assert_close(out, ref, atol=tol, rtol=tol)
    gy = np.ones(ref.shape)
    out.backward(bm.tensor(gy, dtype=dtype))
    gx, gw, gb = ref_conv2d_grads(xr, wr, gy, 1, 1, 1, 2)
    assert bx.grad.dtype == dtype
    assert_close(bx.grad, gx, atol=tol * 4, rtol=tol)
    assert_close(bw.grad, gw, atol=tol * 16, rtol=tol)


# Shapes for the direct weight-gradient kernel (float32, stride 1, dilation 1, >= 4 output
# channels per group: tiles of 4 output channels x up to 3 kw taps, 8-column steps with a
# masked row tail); float64, dilation and stride keep im2col + GEMM. Both against NumPy.
# (N, C, H, W, O, kernel, padding, dilation, groups)
WGRAD_CASES = [
    (3, 3, 9, 13, 5, (3, 3), 1, 1, 1),       # O = 4 + 1, width 13 -> 8 + masked 5
    (2, 2, 7, 10, 7, (2, 4), (0, 2), 1, 1),  # kW 4 -> 3 + 1 taps
    (2, 3, 6, 5, 4, (5, 1), (2, 0), 1, 1),   # 1-tap tiles, rows narrower than 8
    (2, 8, 6, 19, 8, (3, 3), 1, 1, 2),       # groups
    (2, 3, 9, 12, 6, (3, 3), 1, 2, 1),       # dilation: stays im2col
    (6, 4, 16, 16, 8, (3, 3), 0, 1, 1),      # batch split over threads (when there are two)
]


@pytest.mark.parametrize("case", WGRAD_CASES)
@pytest.mark.parametrize("dtype", [bm.float32, bm.float64])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_conv2d_weight_grad_direct_shapes(rng, case, dtype, layout):
    n, c, h, w, o, k, padding, dilation, groups = case
    x, wt, b = make(rng, n, c, h, w, o, k, groups, True)
    if layout == "contiguous":
        bx = bm.tensor(x, dtype=dtype)
    else:  # same values, W-major strides
        bx = bm.tensor(np.ascontiguousarray(x.transpose(0, 1, 3, 2)), dtype=dtype).transpose(2, 3)
        assert not bx.is_contiguous()
    bw = bm.tensor(wt, dtype=dtype, requires_grad=True)
    bb = bm.tensor(b, dtype=dtype, requires_grad=True)
    out = bm.conv2d(bx, bw, bb, padding=padding, dilation=dilation, groups=groups)
    gy = rng.standard_normal(tuple(out.shape))
    out.backward(bm.tensor(gy, dtype=dtype))
    _, gw, gb = ref_conv2d_grads(x, wt, gy, 1, padding, dilation, groups)
    tol = 1e-10 if dtype == bm.float64 else 1e-4
    assert_close(bw.grad, gw, atol=tol * 10, rtol=tol)
    assert_close(bb.grad, gb, atol=tol * 10, rtol=tol)


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64])
def test_row_sums_of_bias_gradients(rng, dtype):
    # Bias gradients reduce contiguous rows (vectorised: 16-element steps, 4-element steps,
    # scalar tail): lengths around those steps, and the {0, 2, 3} sum a conv bias takes.
    for cols in (1, 3, 4, 5, 15, 16, 17, 31, 33, 576):
        a = rng.standard_normal((6, cols))
        t = bm.tensor(a, dtype=dtype)
        tol = 1e-12 if dtype == bm.float64 else 1e-5
        assert_close(t.sum(1), a.sum(1), atol=tol * cols, rtol=tol)
    a = rng.standard_normal((3, 5, 7, 9))
    assert_close(bm.tensor(a, dtype=dtype).sum((0, 2, 3)), a.sum((0, 2, 3)), atol=1e-4, rtol=1e-5)
    # A row of large values of both signs: double accumulation keeps the small remainder.
    big = np.array([[1e8, 1.0, -1e8, 2.0] * 5], dtype=np.float64)
    assert_close(bm.tensor(big, dtype=dtype).sum(1), big.astype(np.float32 if dtype == bm.float32 else np.float64)
                 .astype(np.float64).sum(1), atol=1e-9, rtol=0)


def test_conv2d_empty_batch_gives_zero_weight_grad(rng):
    x = bm.zeros(0, 2, 5, 5, dtype=bm.float64)
    w = bm.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    out = bm.conv2d(x, w)
    assert out.shape == (0, 3, 3, 3)
    out.sum().backward()
    assert_close(w.grad, np.zeros((3, 2, 3, 3)))


GRAD_CASES = [  # (N, C, H, W, O, kernel, stride, padding, dilation, groups)
    (2, 2, 5, 4, 3, (3, 2), 1, 0, 1, 1),
    (1, 4, 6, 5, 4, (3, 3), 2, 1, 1, 2),
    (1, 3, 7, 6, 3, (2, 2), (1, 2), (2, 1), 2, 3),
    (1, 2, 5, 6, 2, (2, 3), 1, "same", 1, 1),
    (2, 2, 3, 3, 2, (1, 1), 1, 0, 1, 1),
]


@pytest.mark.parametrize("case", GRAD_CASES)
def test_conv2d_gradcheck(rng, case):
    n, c, h, w, o, k, stride, padding, dilation, groups = case
    x, wt, b = make(rng, n, c, h, w, o, k, groups, True)
    inputs = [bm.tensor(a, requires_grad=True) for a in (x, wt, b)]
    assert gradcheck(lambda a, ww, bb: bm.conv2d(a, ww, bb, stride, padding, dilation, groups), inputs)


def test_conv1d_matches_reference_and_gradcheck(rng):
    x = rng.standard_normal((2, 4, 11))
    wt = rng.standard_normal((6, 2, 3))
    b = rng.standard_normal(6)
    for kw in (dict(), dict(stride=2, padding=2, dilation=2, groups=2), dict(padding="same", groups=2)):
        groups = kw.get("groups", 1)
        wk = wt if groups == 2 else rng.standard_normal((6, 4, 3))
        ref, _ = ref_conv2d(x[:, :, None], wk[:, :, None], b,
                            (1, kw.get("stride", 1)),
                            "same" if kw.get("padding") == "same" else (0, kw.get("padding", 0)),
                            (1, kw.get("dilation", 1)), groups)
        out = bm.conv1d(bm.tensor(x), bm.tensor(wk), bm.tensor(b), **kw)
        assert_close(out, ref[:, :, 0])
        assert_close(bm.conv1d(bm.tensor(x[0]), bm.tensor(wk), bm.tensor(b), **kw), ref[0, :, 0])
    inputs = [bm.tensor(a, requires_grad=True) for a in (x[:1, :, :6], wt, b)]
    assert gradcheck(lambda a, ww, bb: bm.conv1d(a, ww, bb, 2, 1, 1, 2), inputs)


def test_conv2d_grad_fn_and_no_grad(rng):
    x = bm.tensor(rng.standard_normal((1, 2, 4, 4)), requires_grad=True)
    w = bm.tensor(rng.standard_normal((2, 2, 3, 3)))
    assert bm.conv2d(x, w).requires_grad
    with bm.no_grad():
        assert not bm.conv2d(x, w).requires_grad


# ------------------------------------------------------------------ bad inputs

def check_raises(exc, match, fn):
    with pytest.raises(exc, match=match):
        fn()


def test_conv2d_bad_inputs(rng):
    x = bm.tensor(rng.standard_normal((2, 4, 8, 8)), dtype=bm.float32)
    w = bm.tensor(rng.standard_normal((8, 3, 3, 3)), dtype=bm.float32)
    check_raises(ValueError, r"\[conv2d\] expected input with 3 channels \(weight \[8, 3, 3, 3\], groups=1\), "
                 r"got input \[2, 4, 8, 8\]", lambda: bm.conv2d(x, w))
    w4 = bm.randn(8, 4, 3, 3)
    check_raises(ValueError, r"\[conv2d\] expected 3-D \(unbatched\) or 4-D \(batched\) input, got input \[4, 8\]",
                 lambda: bm.conv2d(bm.randn(4, 8), w4))
    check_raises(ValueError, r"\[conv2d\].*5-D", lambda: bm.conv2d(bm.randn(1, 2, 4, 8, 8), w4))
    check_raises(ValueError, r"\[conv2d\] expected a 4-D weight", lambda: bm.conv2d(x, bm.randn(8, 4, 3)))
    check_raises(ValueError, r"\[conv2d\] kernel size \(3, 3\).*larger than the padded input \(2, 2\)",
                 lambda: bm.conv2d(bm.randn(1, 4, 2, 2), w4))
    check_raises(ValueError, r"\[conv2d\] negative padding", lambda: bm.conv2d(x, w4, padding=-1))
    check_raises(ValueError, r"\[conv2d\] stride must be positive", lambda: bm.conv2d(x, w4, stride=(0, 1)))
    check_raises(ValueError, r"\[conv2d\] dilation must be positive", lambda: bm.conv2d(x, w4, dilation=0))
    check_raises(ValueError, r"\[conv2d\] groups=3 must divide out_channels \(8\)",
                 lambda: bm.conv2d(bm.randn(1, 6, 5, 5), bm.randn(8, 2, 3, 3), groups=3))
    check_raises(ValueError, r"\[conv2d\] expected input with 6 channels \(weight \[6, 2, 3, 3\], groups=3\)",
                 lambda: bm.conv2d(x, bm.randn(6, 2, 3, 3), groups=3))
    check_raises(ValueError, r"\[conv2d\] groups must be positive", lambda: bm.conv2d(x, w4, groups=0))
    check_raises(ValueError, r"\[conv2d\] expected bias of shape \[8\], got \[7\]",
                 lambda: bm.conv2d(x, w4, bm.randn(7)))
    check_raises(ValueError, r"\[conv2d\] padding='same' is not supported for strided",
                 lambda: bm.conv2d(x, w4, stride=2, padding="same"))
    check_raises(ValueError, r"\[conv2d\] padding must be 'valid', 'same'", lambda: bm.conv2d(x, w4, padding="full"))
    check_raises(ValueError, r"\[conv2d\] stride must have 2 elements", lambda: bm.conv2d(x, w4, stride=(1, 1, 1)))
    check_raises(TypeError, r"\[conv2d\] input dtype float32 and weight dtype float64",
                 lambda: bm.conv2d(x, bm.tensor(rng.standard_normal((8, 4, 3, 3)))))
    check_raises(TypeError, r"\[conv2d\] input dtype float32 and bias dtype float64",
                 lambda: bm.conv2d(x, w4, bm.zeros(8, dtype=bm.float64)))
    check_raises(TypeError, r"\[conv2d\] expected a floating point input",
                 lambda: bm.conv2d(bm.ones(1, 4, 5, 5, dtype=bm.int64), bm.ones(2, 4, 3, 3, dtype=bm.int64)))
    check_raises(ValueError, r"\[conv1d\] expected 2-D \(unbatched\) or 3-D \(batched\) input",
                 lambda: bm.conv1d(x, bm.randn(8, 4, 3)))
    check_raises(ValueError, r"\[conv1d\] kernel size \(5,\)",
                 lambda: bm.conv1d(bm.randn(1, 4, 3), bm.randn(8, 4, 5)))


@pytest.mark.parametrize("cls", ["Conv1d", "Conv2d", "ConvTranspose2d"])
@pytest.mark.parametrize("args, kwargs, message", [
    ((4, 6, 3), {"groups": 0}, "groups must be a positive integer"),
    ((0, 6, 3), {}, "must be positive"),
    ((4, 6, 3), {"groups": 4}, "divisible by groups"),
    ((4, 6, 3), {"padding_mode": "reflect"}, "padding_mode"),
])
def test_conv_modules_refuse_bad_arguments(cls, args, kwargs, message):
    with pytest.raises(ValueError, match=f"\\[{cls}\\].*{message}"):
        getattr(bm.nn, cls)(*args, **kwargs)
