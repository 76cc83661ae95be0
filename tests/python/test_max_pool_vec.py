"""max_pool2d's vectorised float32 path (kernels/cpu/pool.cpp: eight interior output columns
at a time) against a NumPy reference and against the scalar float64 path: rows wide enough
that the vector path runs, with odd widths (an overlapping last chunk), strides 1-3,
padding, dilation, ceil_mode, ties and NaNs; the indices must match PyTorch's rule exactly
(row-major window order, the first maximum wins, the last NaN wins)."""
import math

import numpy as np
import pytest

import bigmodel as bm


def out_len(size, k, s, p, d, ceil_mode):
    span = (size + 2 * p - d * (k - 1) - 1) / s
    n = (math.ceil(span) if ceil_mode else math.floor(span)) + 1
    if ceil_mode and (n - 1) * s >= size + p:
        n -= 1
    return n


def ref_max_pool(x, k, s, p, d, ceil_mode):
    """PyTorch's CPU rule per window: take v when v > best or v is NaN, row-major order."""
    n, c, h, w = x.shape
    oh, ow = out_len(h, k[0], s[0], p[0], d[0], ceil_mode), out_len(w, k[1], s[1], p[1], d[1], ceil_mode)
    out = np.full((n, c, oh, ow), -np.inf, dtype=x.dtype)
    idx = np.full((n, c, oh, ow), -1, dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            for a in range(k[0]):
                for b in range(k[1]):
                    hh, ww = i * s[0] - p[0] + a * d[0], j * s[1] - p[1] + b * d[1]
                    if 0 <= hh < h and 0 <= ww < w:
                        v = x[:, :, hh, ww]
                        take = (v > out[:, :, i, j]) | np.isnan(v)
                        if (idx[:, :, i, j] < 0).any():  # the first valid candidate seeds the index
                            take |= idx[:, :, i, j] < 0
                        out[:, :, i, j] = np.where(take, v, out[:, :, i, j])
                        idx[:, :, i, j] = np.where(take, hh * w + ww, idx[:, :, i, j])
    return out, idx


CASES = [  # (H, W), kernel, stride, padding, dilation, ceil_mode
    ((24, 24), (2, 2), (2, 2), (0, 0), (1, 1), False),  # the article CNN's pool
    ((7, 37), (2, 2), (2, 2), (0, 0), (1, 1), True),   # odd width, ceil mode
    ((9, 41), (3, 3), (1, 1), (1, 1), (1, 1), False),  # stride 1: contiguous loads
    ((8, 45), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((6, 50), (2, 3), (1, 3), (1, 1), (2, 2), False),  # stride 3, dilation 2
    ((5, 33), (3, 2), (2, 1), (1, 1), (1, 3), True),
    ((4, 17), (1, 1), (1, 1), (0, 0), (1, 1), False),  # 1x1 window
    ((3, 19), (2, 5), (1, 2), (0, 2), (1, 1), True),   # interior just wide enough for one chunk
]


@pytest.mark.parametrize("case", CASES)
def test_float32_matches_reference_and_float64(rng, case):
    (h, w), k, s, p, d, ceil_mode = case
    x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
    x[0, 1] = np.round(x[0, 1])  # whole numbers: many ties, the first maximum must win
    x[1, 0, 1, ::3] = np.nan     # NaNs: the last one in a window wins
    x[1, 0, 2, 4:7] = np.nan
    x[1, 2, 0, :] = -np.inf      # windows wholly -inf keep their first candidate
    out, idx = bm.max_pool2d(bm.tensor(x), k, s, p, d, ceil_mode, return_indices=True)
    ref, ridx = ref_max_pool(x, k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(out.numpy(), ref)  # exact, NaN in the same places
    np.testing.assert_array_equal(idx.numpy(), ridx)
    out64, idx64 = bm.max_pool2d(bm.tensor(x.astype(np.float64)), k, s, p, d, ceil_mode, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), idx64.numpy())
    np.testing.assert_array_equal(out.numpy().astype(np.float64), out64.numpy())


def test_float32_noncontiguous_input_and_backward(rng):
    x = rng.standard_normal((2, 27, 3, 20)).astype(np.float32)
    bx = bm.tensor(x).permute(0, 2, 3, 1)  # [2, 3, 20, 27], strided
    bx.requires_grad_(True)
    out, idx = bm.max_pool2d(bx, 3, 2, 1, return_indices=True)
    xc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    ref, ridx = ref_max_pool(xc, (3, 3), (2, 2), (1, 1), (1, 1), False)
    np.testing.assert_array_equal(out.detach().numpy(), ref)
    np.testing.assert_array_equal(idx.numpy(), ridx)
    gy = rng.standard_normal(ref.shape).astype(np.float32)
    out.backward(bm.tensor(gy))
    g = np.zeros(xc.shape, np.float32).reshape(2, 3, -1)
    for n in range(2):
        for c in range(3):
            np.add.at(g[n, c], ridx[n, c].ravel(), gy[n, c].ravel())
    np.testing.assert_allclose(bx.grad.numpy(), g.reshape(xc.shape), rtol=1e-6, atol=1e-6)
