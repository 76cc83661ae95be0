"""x[key] and x[key] = v on bm.Tensor against NumPy: every index kind and combinations,
contiguous and strided sources, views vs copies, gradients, autograd rules, bad keys."""
import numpy as np
import pytest

import bigmodel as bm
from conftest import assert_close


def strided(a):
    """A non-contiguous tensor with the values of `a` (a transposed copy, transposed back)."""
    if a.ndim < 2:
        big = np.zeros(a.shape[0] * 2 + 1, dtype=a.dtype)
        big[1::2] = a
        t = bm.tensor(big)[1::2]
    else:
        t = bm.tensor(np.ascontiguousarray(a.transpose())).permute(*reversed(range(a.ndim)))
    assert not t.is_contiguous() or a.size <= 1
    return t


def source(rng, shape, contiguous, dtype=np.float64):
    a = rng.standard_normal(shape).astype(dtype) if dtype != np.int64 else rng.integers(-50, 50, shape)
    return a, (bm.tensor(a) if contiguous else strided(a))


I0 = np.array([2, 0, 2, -1])
I1 = np.array([[1, 0], [3, 3]])
# Keys with the same meaning in NumPy and bigmodel, for a source of shape (3, 4, 5).
READ_KEYS = [
    1, -1, (0, 2), (-3, -4, -5), slice(None), slice(1, 3), slice(None, None, 2), slice(-2, None),
    slice(1, 100), slice(5, 1), (slice(None), 2), (Ellipsis, 1), (1, Ellipsis), (None,),
    (None, 1, None, slice(None, None, 3)), (Ellipsis, None), (), Ellipsis, (0, Ellipsis, 0),
    # advanced
    I0, (slice(None), I0), (Ellipsis, I0), (I0, slice(None), I0), (slice(None), I1),
    (I0[:2], slice(1, 3), I0[:2] % 5), (slice(None), I1, I1 % 5), (1, I0, slice(None)),
    (I0, 1), (slice(None), np.array([1]), np.array([[0], [4]])), (None, I0, None),
    [0, 2], [[0, 1], [2, 2]], (np.array(0), slice(None)), np.array([], dtype=np.int64),
    # bool masks
    np.array([True, False, True]), (slice(None), np.array([False, True, True, False])),
    (Ellipsis, np.array([True, False, False, True, True])), [True, True, False],
    (np.array([True, False, True]), slice(None), np.array([0, 4])),
    (np.array([True, False, True]), np.array([1, 2])),
    (slice(1, None), np.random.default_rng(5).random((4, 5)) > 0.4),
]


def key_id(k):
    return repr(k).replace("\n", "").replace(" ", "")[:60]


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("key", READ_KEYS, ids=key_id)
def test_getitem_matches_numpy(rng, key, contiguous):
    a, x = source(rng, (3, 4, 5), contiguous)
    assert_close(x[key], a[key])


@pytest.mark.parametrize("key", [
    (slice(None), bm.tensor([3, 0, 3])), bm.tensor([[2], [0]]), bm.tensor(1),
    (bm.tensor([0, 2], dtype=bm.int32), bm.tensor([1, 1])), bm.tensor([False, True, True]),
    (np.int64(2), np.int32(-1)), np.bool_(True), True, False, (0, True), (None, False),
], ids=key_id)
def test_getitem_tensor_and_numpy_scalar_keys(rng, key):
    a, x = source(rng, (3, 4), True)
    def as_np(k):
        return k.numpy() if isinstance(k, bm.Tensor) else k

    np_key = tuple(as_np(k) for k in key) if isinstance(key, tuple) else as_np(key)
    assert_close(x[key], a[np_key])


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.float16, np.bool_])
def test_getitem_dtypes(rng, dtype):
    a = rng.standard_normal((4, 3)).astype(dtype) if dtype != np.int64 else rng.integers(-9, 9, (4, 3))
    x = bm.tensor(a)
    for key in [(1, slice(None, None, 2)), (np.array([3, 0, 3]), 1), (a > 0 if dtype != np.bool_ else a)]:
        out = x[key]
        assert out.dtype == x.dtype
        np.testing.assert_array_equal(out.numpy(), a[key])


def test_bfloat16_index(rng):
    a = rng.standard_normal((4, 3)).astype(np.float32)
    x = bm.tensor(a).bfloat16()
    assert_close(x[[3, 1]].float(), x.float().numpy()[[3, 1]])


def test_basic_index_is_view_advanced_is_copy(rng):
    a, x = source(rng, (3, 4), True)
    v = x[1:, ::2]
    v[0, 0] = 100.0
    assert x[1, 0].item() == 100.0  # write through the view lands in the base
    col = x[:, 1]
    col.fill_(7.0)
    np.testing.assert_array_equal(x.numpy()[:, 1], 7.0)
    c = x[[0, 1]]
    c[0, 0] = -5.0
    assert x[0, 0].item() != -5.0
    m = x[x > 0]
    m.fill_(0.0)
    assert (x.numpy() > 0).sum() == m.numel() > 0
    e = x[...]
    assert e is not x and e.data_ptr() == x.data_ptr()
    e[0, 3] = 3.25
    assert x[0, 3].item() == 3.25
    n = x[None]
    assert n.shape == (1, 3, 4) and n.data_ptr() == x.data_ptr()


def test_zero_dim_and_int_results(rng):
    x = bm.tensor(np.arange(6.0).reshape(2, 3))
    s = x[1, 2]
    assert s.shape == () and s.item() == 5.0
    assert x[1][2].item() == 5.0
    z = bm.tensor(3.5)
    assert z[...].item() == 3.5 and z[None].shape == (1,) and z[()].shape == ()
    assert z[True].shape == (1,) and z[False].shape == (0,)


SET_KEYS = [
    1, (slice(None), 2), (Ellipsis, slice(1, 4, 2)), (slice(None), None, 0), I0, (slice(None), I0),
    (I0[:3], slice(None), I0[:3] % 5), (np.array([0, 0, 2]), np.array([1, 1, 3])),
    np.array([True, False, True]), (slice(None), np.array([False, True, True, False])), [1, 2],
    (1, [0, 3], slice(1, 3)),
]


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("key", SET_KEYS, ids=key_id)
def test_setitem_scalar_and_tensor(rng, key, contiguous):
    a, x = source(rng, (3, 4, 5), contiguous)
    ref = a.copy()
    ref[key] = -2.5
    x[key] = -2.5
    assert_close(x, ref)
    # A tensor value of the region's shape, and one that broadcasts along the first dim.
    region = a[key].shape
    for vshape in [region, region[1:]]:
        v = rng.standard_normal(vshape)
        ref[key] = v
        x[key] = bm.tensor(v)
        assert_close(x, ref)


def test_setitem_forms(rng):
    a, x = source(rng, (4, 3), False)
    ref = a.copy()
    x[x > 0.5] = 0.0
    ref[ref > 0.5] = 0.0
    assert_close(x, ref)
    x[1] = [1.0, 2.0, 3.0]  # a list value
    ref[1] = [1.0, 2.0, 3.0]
    x[:, 0] = np.array([9.0, 8.0, 7.0, 6.0])  # a NumPy value
    ref[:, 0] = [9.0, 8.0, 7.0, 6.0]
    x[2:] = bm.tensor([[[4.0, 5.0, 6.0]]])  # extra leading 1-dims are dropped, as in NumPy
    ref[2:] = np.array([[[4.0, 5.0, 6.0]]])
    x[np.int64(0), 1] = np.float32(0.25)
    ref[0, 1] = 0.25
    assert_close(x, ref)
    # Values are cast to the destination's dtype.
    i = bm.zeros(3, dtype=bm.int64)
    i[1] = 2.7
    i[[0, 2]] = bm.tensor([5.0, 6.0])
    assert i.tolist() == [5, 2, 6]
    b = bm.zeros(2, 2, dtype=bm.bool)
    b[0, 1] = True
    assert b.tolist() == [[False, True], [False, False]]


def test_setitem_repeated_indices_last_value_wins_or_any(rng):
    x = bm.zeros(3, dtype=bm.float64)
    x[[1, 1]] = bm.tensor([4.0, 4.0], dtype=bm.float64)
    assert x.tolist() == [0.0, 4.0, 0.0]


def test_setitem_bad_value_shape():
    x = bm.zeros(3, 4)
    with pytest.raises(ValueError, match=r"\[index_put_\].*\[2\].*\[3, 4\]"):
        x[...] = bm.ones(2)
    with pytest.raises(ValueError, match=r"\[index_put_\]"):
        x[[0, 1]] = bm.ones(3)


def test_index_errors():
    x = bm.zeros(3, 4)
    with pytest.raises(IndexError, match=r"^\[index\] index 5 is out of bounds for dimension 0 with size 3$"):
        x[5]
    with pytest.raises(IndexError, match=r"index -5 is out of bounds for dimension 1 with size 4"):
        x[0, -5]
    with pytest.raises(IndexError, match=r"\[index\] index 3 is out of bounds for dimension 0 with size 3"):
        x[[0, 3]]
    with pytest.raises(IndexError, match=r"\[index\] too many indices for tensor of dimension 2"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match=r"\[index\] too many indices"):
        x[:, :, None, 1]
    with pytest.raises(IndexError, match=r"\[index\] the shape of the mask \[2\]"):
        x[bm.tensor([True, False])]
    with pytest.raises(IndexError, match=r"\[index\].*float32"):
        x[bm.tensor([0.0, 1.0])]
    with pytest.raises(IndexError, match=r"\[index\]"):
        x[1.5]
    with pytest.raises(IndexError, match=r"\[index\]"):
        x["a"]
    with pytest.raises(IndexError, match=r"\[index\]"):
        x[[0.5, 1.0]]
    with pytest.raises(IndexError, match=r"\[index\] shape mismatch.*\[2\], \[3\]"):
        x[[0, 1], [0, 1, 2]]
    with pytest.raises(ValueError, match=r"\[index\] step must be greater than zero"):
        x[::-1]
    with pytest.raises(ValueError):
        x[::0]
    with pytest.raises(IndexError, match=r"single ellipsis"):
        x[..., ...]
    with pytest.raises(IndexError, match=r"out of bounds"):
        x[5] = 1.0
    with pytest.raises(IndexError, match=r"out of bounds"):
        x[[0, 9]] = 1.0
    with pytest.raises(IndexError):
        bm.tensor(2.0)[0]


# ---- autograd ----

GRAD_KEYS = [
    (1,), (slice(None), 2), (slice(1, None), slice(None, None, 2)), (None, Ellipsis, -1),
    (np.array([0, 2, 0, 0]),), (slice(None), np.array([[1, 1], [3, 0]])),
    (np.array([2, 2]), np.array([0, 3])), (np.array([True, False, True]),),
    (np.array([1, 2]), slice(None, None, 2), np.array([[0], [3]])),
]


@pytest.mark.parametrize("key", GRAD_KEYS, ids=key_id)
def test_getitem_gradcheck(rng, key):
    shape = (3, 4, 4) if len(key) == 3 and key[1] == slice(None, None, 2) else (3, 4)
    x = bm.tensor(rng.standard_normal(shape), requires_grad=True)
    assert bm.autograd.gradcheck(lambda t: t[key], [x])


def test_getitem_grad_repeated_indices(rng):
    a = rng.standard_normal((3, 2))
    x = bm.tensor(a, requires_grad=True)
    y = x[[0, 2, 0, 0]]
    assert y.grad_fn is not None
    w = rng.standard_normal((4, 2))
    (y * bm.tensor(w)).sum().backward()
    expected = np.zeros_like(a)
    np.add.at(expected, [0, 2, 0, 0], w)
    assert_close(x.grad, expected)


def test_setitem_records_gradients(rng):
    x = bm.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    v = bm.tensor(rng.standard_normal((4,)), requires_grad=True)
    w = rng.standard_normal((3, 4))

    def f(x, v):
        y = x * 1.0
        y[1] = v
        y[[0, 2], 3] = 0.0
        return y

    y = f(x, v)
    (y * bm.tensor(w)).sum().backward()
    gx = w.copy()
    gx[1] = 0.0
    gx[[0, 2], 3] = 0.0
    gv = w[1].copy()
    assert_close(x.grad, gx)
    assert_close(v.grad, gv)
    assert bm.autograd.gradcheck(f, [x.detach().requires_grad_(True), v.detach().requires_grad_(True)])


def test_setitem_broadcast_value_gradient(rng):
    x = bm.tensor(rng.standard_normal((3, 4)))
    v = bm.tensor(rng.standard_normal((1, 4)), requires_grad=True)

    def f(v):
        y = x.clone()
        y[x > 0] = 0.0
        y[:2] = v  # v broadcasts over 2 rows: its gradient sums them
        y[[2]] = v[0] * 2.0
        return y

    assert bm.autograd.gradcheck(f, [v])


def test_setitem_autograd_rules(rng):
    leaf = bm.tensor(rng.standard_normal((3,)), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        leaf[0] = 1.0
    with bm.no_grad():
        leaf[0] = 1.0  # allowed without grad mode
    assert leaf[0].item() == 1.0
    plain = bm.zeros(3, dtype=bm.float64)
    v = bm.tensor([2.0], dtype=bm.float64, requires_grad=True)
    plain[1:2] = v  # a plain tensor picks up history from the value
    assert plain.requires_grad and plain.grad_fn is not None
    plain.sum().backward()
    assert v.grad.tolist() == [1.0]


def test_saved_index_modified_in_place_raises(rng):
    x = bm.tensor(rng.standard_normal((3,)), requires_grad=True)
    idx = bm.tensor([0, 2])
    y = x[idx]
    idx[0] = 1  # the index tensor backward needs has changed
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
