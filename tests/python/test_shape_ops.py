"""Join/split/rearrange ops (cat, stack, split, chunk, unbind, tril, triu, flip, repeat,
roll): NumPy references on contiguous and transposed inputs, dtypes, gradients, errors."""
import numpy as np
import pytest

import bigmodel as bm
from conftest import assert_close

gradcheck = bm.autograd.gradcheck


def _transposed(arr, dtype=None):
    """Same values as arr, as a non-contiguous tensor (a transposed view)."""
    return bm.tensor(np.ascontiguousarray(np.swapaxes(arr, 0, -1)), dtype=dtype).transpose(0, -1)


def _grad_input(rng, shape):
    return bm.tensor(rng.standard_normal(shape)).requires_grad_()


# ---- cat / stack ------------------------------------------------------------------------

@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_cat_matches_numpy(rng, dim):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    arrs = []
    for i, s in enumerate(shapes):
        s = list(s)
        s[dim] = i + 1  # different sizes along the joined dim
        arrs.append(rng.standard_normal(s))
    expected = np.concatenate(arrs, axis=dim)
    assert_close(bm.cat([bm.tensor(a) for a in arrs], dim), expected)
    assert_close(bm.cat([_transposed(a) for a in arrs], dim=dim), expected)
    assert_close(bm.concat(tuple(bm.tensor(a) for a in arrs), dim), expected)
    assert_close(bm.concatenate([bm.tensor(a) for a in arrs], dim), expected)


@pytest.mark.parametrize("dtype", [bm.float16, bm.bfloat16, bm.int32, bm.int64, bm.bool])
def test_cat_dtypes(rng, dtype):
    a = rng.integers(0, 2 if dtype == bm.bool else 9, (2, 3))
    b = rng.integers(0, 2 if dtype == bm.bool else 9, (1, 3))
    out = bm.cat([bm.tensor(a, dtype=dtype), bm.tensor(b, dtype=dtype)])
    assert out.dtype == dtype
    got = out.float().numpy() if dtype == bm.bfloat16 else out.numpy()
    np.testing.assert_array_equal(got.astype(np.float64), np.concatenate([a, b]).astype(np.float64))


def test_cat_promotes_and_skips_empty(rng):
    a, b = rng.integers(-5, 5, (2, 3)), rng.standard_normal((2, 2))
    out = bm.cat([bm.tensor(a), bm.tensor(b, dtype=bm.float32)], 1)
    assert out.dtype == bm.float32
    assert_close(out, np.concatenate([a, b], 1), atol=1e-6)
    # 1-D empty tensors are skipped whatever the others' shapes, but still promote.
    out = bm.cat([bm.tensor(np.zeros(0)), bm.tensor(a)], 0)
    assert out.dtype == bm.float64 and out.shape == (2, 3)
    np.testing.assert_array_equal(out.numpy(), a)
    assert bm.cat([bm.tensor(np.zeros(0)), bm.tensor(np.zeros(0))]).shape == (0,)
    # Empty along the joined dim (not 1-D) takes part normally.
    assert bm.cat([bm.tensor(np.zeros((0, 3))), bm.tensor(a.astype(np.float64))]).shape == (2, 3)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack_matches_numpy(rng, dim):
    arrs = [rng.standard_normal((2, 3)) for _ in range(3)]
    assert_close(bm.stack([bm.tensor(a) for a in arrs], dim), np.stack(arrs, axis=dim))
    assert_close(bm.stack([_transposed(a) for a in arrs], dim=dim), np.stack(arrs, axis=dim))


def test_stack_scalars():
    out = bm.stack([bm.tensor(1.5), bm.tensor(2.5)])
    np.testing.assert_array_equal(out.numpy(), np.array([1.5, 2.5], dtype=np.float32))


def test_cat_stack_gradcheck(rng):
    a, b, c = _grad_input(rng, (2, 3)), _grad_input(rng, (1, 3)), _grad_input(rng, (4, 3))
    assert gradcheck(lambda x, y, z: bm.cat([x, y, z]), [a, b, c])
    d, e = _grad_input(rng, (2, 2)), _grad_input(rng, (2, 3))
    assert gradcheck(lambda x, y: bm.cat([x, y], -1), [d, e])
    f = _grad_input(rng, (2, 3))
    assert gradcheck(lambda x, y: bm.stack([x, y], 1), [a, f])
    # Mixed: only inputs that require grad receive one; dtypes of grads follow inputs.
    g = bm.tensor(rng.standard_normal((2, 3)), dtype=bm.float32).requires_grad_()
    h = bm.tensor(rng.standard_normal((2, 3)))
    w = rng.standard_normal((4, 3))
    (bm.cat([g, h]) * bm.tensor(w)).sum().backward()
    assert h.grad is None
    assert g.grad.dtype == bm.float32
    assert_close(g.grad, w[:2], dtype=bm.float32)


def test_cat_stack_errors():
    with pytest.raises(ValueError, match=r"\[cat\].*non-empty"):
        bm.cat([])
    with pytest.raises(ValueError, match=r"\[cat\].*\[2, 3\].*\[2, 4\]"):
        bm.cat([bm.tensor(np.ones((2, 3))), bm.tensor(np.ones((2, 4)))], 0)
    with pytest.raises(ValueError, match=r"\[cat\].*\[2, 3\].*\[3\]"):
        bm.cat([bm.tensor(np.ones((2, 3))), bm.tensor(np.ones(3))])
    with pytest.raises(ValueError, match=r"\[cat\].*zero-dimensional"):
        bm.cat([bm.tensor(1.0), bm.tensor(2.0)])
    with pytest.raises(IndexError, match=r"\[cat\]"):
        bm.cat([bm.tensor(np.ones((2, 3)))], 2)
    with pytest.raises(TypeError, match=r"\[cat\]"):
        bm.cat([bm.tensor(np.ones(2)), 3])
    with pytest.raises(ValueError, match=r"\[stack\].*\[2, 3\] at entry 0 and \[3, 2\] at entry 1"):
        bm.stack([bm.tensor(np.ones((2, 3))), bm.tensor(np.ones((3, 2)))])
    with pytest.raises(ValueError, match=r"\[stack\].*non-empty"):
        bm.stack([])


# ---- split / chunk / unbind ----------------------------------------------------------

def test_split_int_and_sections(rng):
    a = rng.standard_normal((5, 7))
    t = bm.tensor(a)
    parts = bm.split(t, 3, 1)
    assert isinstance(parts, tuple) and [p.shape for p in parts] == [(5, 3), (5, 3), (5, 1)]
    for p, e in zip(parts, np.split(a, [3, 6], axis=1)):
        assert_close(p, e)
    parts = t.split([1, 4, 0, 2], dim=-1)
    assert [p.shape[1] for p in parts] == [1, 4, 0, 2]
    for p, e in zip(parts, np.split(a, [1, 5, 5], axis=1)):
        assert_close(p, e)
    parts = t.split(2)
    assert [p.shape[0] for p in parts] == [2, 2, 1]
    # Pieces are views of the input.
    assert parts[1].data_ptr() == t.data_ptr() + 2 * 7 * 8
    parts = _transposed(a).split(2, 1)
    for p, e in zip(parts, np.split(a, [2, 4, 6], axis=1)):
        assert_close(p, e)


def test_chunk_and_unbind(rng):
    a = rng.standard_normal((3, 5, 2))
    parts = bm.chunk(bm.tensor(a), 2, 1)
    assert [p.shape[1] for p in parts] == [3, 2]
    for p, e in zip(parts, np.split(a, [3], axis=1)):
        assert_close(p, e)
    assert len(bm.tensor(a).chunk(3, -1)) == 2  # ceil(2 / 3) = 1 per chunk, so 2 chunks
    assert len(bm.chunk(bm.tensor(np.zeros((0, 2))), 3)) == 3
    parts = bm.unbind(bm.tensor(a), 1)
    assert isinstance(parts, tuple) and len(parts) == 5
    for i, p in enumerate(parts):
        assert_close(p, a[:, i])
    for i, p in enumerate(_transposed(a).unbind()):
        assert_close(p, a[i])


def test_split_family_gradcheck(rng):
    x = _grad_input(rng, (4, 5))
    assert gradcheck(lambda t: t.split(2, 1), [x])
    assert gradcheck(lambda t: bm.split(t, [1, 3], 0), [x])
    assert gradcheck(lambda t: t.chunk(3, 1), [x])
    assert gradcheck(lambda t: t.unbind(1), [x])
    # Only some pieces used: the rest contribute zeros.
    x.grad = None
    parts = x.split(2, 0)
    (parts[1] * 3).sum().backward()
    expected = np.zeros((4, 5))
    expected[2:] = 3
    assert_close(x.grad, expected)


def test_split_errors():
    t = bm.tensor(np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"\[split\].*\[2, 2\].*sum to 4.*size 5"):
        t.split([2, 2], 1)
    with pytest.raises(ValueError, match=r"\[split\]"):
        t.split(0, 1)
    with pytest.raises(ValueError, match=r"\[split\]"):
        t.split([6, -1], 1)
    with pytest.raises(ValueError, match=r"\[chunk\]"):
        t.chunk(0)
    with pytest.raises(IndexError, match=r"\[split\]"):
        t.split(1, 2)
    with pytest.raises(ValueError, match=r"\[unbind\]"):
        bm.tensor(1.0).unbind()


# ---- tril / triu ---------------------------------------------------------------------

@pytest.mark.parametrize("k", [-2, -1, 0, 1, 3, 9])
@pytest.mark.parametrize("shape", [(4, 5), (5, 3), (2, 3, 4)])
def test_tril_triu(rng, k, shape):
    a = rng.standard_normal(shape)
    assert_close(bm.tril(bm.tensor(a), k), np.tril(a, k))
    assert_close(bm.tensor(a).triu(k), np.triu(a, k))
    assert_close(_transposed(a).tril(diagonal=k), np.tril(a, k))
    assert_close(bm.triu(_transposed(a), diagonal=k), np.triu(a, k))


@pytest.mark.parametrize("dtype", [bm.float16, bm.bfloat16, bm.float32, bm.int32, bm.int64, bm.bool])
def test_tril_dtypes(rng, dtype):
    a = rng.integers(1, 9, (3, 4))
    out = bm.tensor(a, dtype=dtype).tril(-1)
    assert out.dtype == dtype
    got = out.float().numpy() if dtype == bm.bfloat16 else out.numpy()
    expected = np.tril(a.astype(bool) if dtype == bm.bool else a, -1)
    np.testing.assert_array_equal(got.astype(np.float64), expected.astype(np.float64))


def test_tril_triu_gradcheck_and_errors(rng):
    x = _grad_input(rng, (2, 3, 4))
    assert gradcheck(lambda t: bm.tril(t, 1), [x])
    assert gradcheck(lambda t: t.triu(-1), [x])
    with pytest.raises(ValueError, match=r"\[tril\].*\[3\]"):
        bm.tril(bm.tensor(np.ones(3)))
    with pytest.raises(ValueError, match=r"\[triu\]"):
        bm.triu(bm.tensor(1.0))


# ---- flip / repeat / roll ------------------------------------------------------------

@pytest.mark.parametrize("dims", [(0,), (1,), (-1,), (0, 2), (0, 1, 2), ()])
def test_flip(rng, dims):
    a = rng.standard_normal((2, 3, 4))
    expected = np.flip(a, dims) if dims else a
    assert_close(bm.flip(bm.tensor(a), dims), expected)
    assert_close(_transposed(a).flip(*dims) if dims else _transposed(a).flip(dims), expected)
    assert_close(bm.tensor(a).flip(dims=list(dims)), expected)


@pytest.mark.parametrize("dtype", [bm.float16, bm.int32, bm.int64, bm.bool, bm.float64])
def test_flip_dtypes(rng, dtype):
    a = rng.integers(0, 2 if dtype == bm.bool else 50, (3, 4))
    out = bm.tensor(a, dtype=dtype).flip(1)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.numpy().astype(np.float64), np.flip(a, 1).astype(bool if dtype == bm.bool else np.float64).astype(np.float64))


def test_flip_gradcheck_and_errors(rng):
    x = _grad_input(rng, (3, 4))
    assert gradcheck(lambda t: t.flip(0, 1), [x])
    assert gradcheck(lambda t: bm.flip(t, [-1]), [x])
    with pytest.raises(ValueError, match=r"\[flip\].*more than once"):
        bm.flip(bm.tensor(np.ones((2, 2))), [0, -2])
    with pytest.raises(IndexError, match=r"\[flip\]"):
        bm.flip(bm.tensor(np.ones((2, 2))), [2])


@pytest.mark.parametrize("shape,reps", [((2, 3), (2, 1)), ((2, 3), (1, 3)), ((3,), (2, 2)),
                                        ((2, 3), (2, 1, 3)), ((2, 1, 3), (1, 4, 2)), ((2, 3), (0, 2))])
def test_repeat(rng, shape, reps):
    a = rng.standard_normal(shape)
    assert_close(bm.tensor(a).repeat(*reps), np.tile(a, reps))
    assert_close(_transposed(a).repeat(reps), np.tile(a, reps))


def test_repeat_gradcheck_and_errors(rng):
    x = _grad_input(rng, (2, 3))
    assert gradcheck(lambda t: t.repeat(2, 1, 3), [x])
    with pytest.raises(ValueError, match=r"\[repeat\]"):
        bm.tensor(np.ones((2, 3))).repeat(2)
    with pytest.raises(ValueError, match=r"\[repeat\]"):
        bm.tensor(np.ones((2, 3))).repeat(2, -1)


@pytest.mark.parametrize("shifts,dims", [(1, 0), (-2, 1), (7, 1), ((1, 2), (0, 1)), (3, None), (0, 0)])
def test_roll(rng, shifts, dims):
    a = rng.standard_normal((3, 4))
    assert_close(bm.roll(bm.tensor(a), shifts, dims), np.roll(a, shifts, dims))
    assert_close(_transposed(a).roll(shifts, dims), np.roll(a, shifts, dims))
    x = _grad_input(rng, (3, 4))
    assert gradcheck(lambda t: bm.roll(t, shifts, dims), [x])


def test_unbind_gradient_is_one_node_and_zero_for_unused_slices():
    x = bm.tensor(np.arange(1.0, 13.0).reshape(4, 3), requires_grad=True)
    a, _, c, _ = x.unbind(0)
    assert a.grad_fn is c.grad_fn  # one node serves every slice
    (a * 2 + c).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2, 2, 2], [0, 0, 0], [1, 1, 1], [0, 0, 0]])
    t = bm.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    assert bm.autograd.gradcheck(lambda u: bm.stack([s * (i + 1) for i, s in enumerate(u.unbind(1))], 0), [t])
