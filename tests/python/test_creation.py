"""Tensor factories: zeros/ones/empty/full and *_like, arange, linspace, eye, against NumPy;
PyTorch-style size arguments, dtype inference, requires_grad, and bad inputs."""
import numpy as np
import pytest

import bigmodel as bm
from conftest import assert_close

NP_OF = {bm.float32: np.float32, bm.float64: np.float64, bm.int32: np.int32, bm.int64: np.int64,
         bm.bool: np.bool_, bm.float16: np.float16}


@pytest.mark.parametrize("make, value", [(bm.zeros, 0), (bm.ones, 1)])
@pytest.mark.parametrize("args, kwargs", [((2, 3), {}), (((2, 3),), {}), (([2, 3],), {}), ((), {"size": (2, 3)})])
def test_zeros_ones_size_forms(make, value, args, kwargs):
    t = make(*args, **kwargs)
    assert t.shape == (2, 3) and t.dtype == bm.float32 and t.is_contiguous()
    np.testing.assert_array_equal(t.numpy(), np.full((2, 3), value, np.float32))


@pytest.mark.parametrize("dtype", [bm.float64, bm.float32, bm.float16, bm.int32, bm.int64, bm.bool])
def test_factories_dtypes(dtype):
    z, o, e = bm.zeros([3, 2], dtype=dtype), bm.ones(3, 2, dtype=dtype), bm.empty(3, 2, dtype=dtype)
    for t in (z, o, e):
        assert t.dtype == dtype and t.shape == (3, 2)
    np.testing.assert_array_equal(z.numpy(), np.zeros((3, 2), NP_OF[dtype]))
    np.testing.assert_array_equal(o.numpy(), np.ones((3, 2), NP_OF[dtype]))


def test_bfloat16_and_scalar_and_empty_shapes():
    b = bm.ones(4, dtype=bm.bfloat16)
    assert b.dtype == bm.bfloat16
    np.testing.assert_array_equal(b.float().numpy(), np.ones(4, np.float32))
    s = bm.zeros(())
    assert s.shape == () and s.item() == 0.0
    assert bm.ones(0, 5).shape == (0, 5)
    assert bm.empty(3, 0).numel() == 0


def test_requires_grad_and_device():
    t = bm.zeros([2, 3], dtype=bm.float64, device="cpu", requires_grad=True)
    assert t.requires_grad and t.is_leaf and t.dtype == bm.float64 and t.device == "cpu"
    (t * 2).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), np.full((2, 3), 2.0))
    with pytest.raises((TypeError, RuntimeError)):
        bm.zeros(2, dtype=bm.int64, requires_grad=True)  # only floating tensors can require grad


@pytest.mark.parametrize("fill, dtype", [(True, bm.bool), (3, bm.int64), (2.5, bm.float32), (np.float32(1.5), bm.float32)])
def test_full_infers_dtype(fill, dtype):
    t = bm.full((2, 2), fill)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.full((2, 2), fill, NP_OF[dtype]))


def test_full_explicit_dtype_and_forms():
    t = bm.full([3], 7, dtype=bm.float64)
    assert t.dtype == bm.float64
    np.testing.assert_array_equal(t.numpy(), [7.0, 7.0, 7.0])
    np.testing.assert_array_equal(bm.full(2, -1.25).numpy(), [-1.25, -1.25])
    np.testing.assert_array_equal(bm.full((2,), 3.9, dtype=bm.int32).numpy(), [3, 3])


def test_like_factories_follow_input_and_override(rng):
    base = bm.tensor(rng.standard_normal((3, 4))).transpose(0, 1)  # non-contiguous float64 input
    for fn, value in [(bm.zeros_like, 0.0), (bm.ones_like, 1.0)]:
        t = fn(base)
        assert t.shape == (4, 3) and t.dtype == bm.float64 and t.is_contiguous()
        np.testing.assert_array_equal(t.numpy(), np.full((4, 3), value))
    assert bm.empty_like(base).shape == (4, 3)
    np.testing.assert_array_equal(bm.full_like(base, 2.5).numpy(), np.full((4, 3), 2.5))
    i = bm.full_like(base, 7, dtype=bm.int32)
    assert i.dtype == bm.int32
    np.testing.assert_array_equal(i.numpy(), np.full((4, 3), 7, np.int32))
    o = bm.ones_like(base, dtype=bm.float32, requires_grad=True)
    assert o.dtype == bm.float32 and o.requires_grad


ARANGE_CASES = [(5,), (2, 9), (-5, 5, 2), (10, 0, -3), (0, 1, 0.1), (1.0, -1.0, -0.3), (0.5, 5), (-2.5, 2.5, 0.5),
                (3, 3), (0, 10, 4), (1e3, 1.1e3, 7.7)]


@pytest.mark.parametrize("args", ARANGE_CASES)
def test_arange_matches_numpy(args):
    t = bm.arange(*args)
    expected = np.arange(*args)
    all_int = all(isinstance(a, int) for a in args)
    assert t.dtype == (bm.int64 if all_int else bm.float32)
    assert t.shape == expected.shape
    if all_int:
        np.testing.assert_array_equal(t.numpy(), expected)
    else:
        assert_close(t, np.arange(*args, dtype=np.float64))


@pytest.mark.parametrize("dtype", [bm.float64, bm.float32, bm.int32, bm.int64, bm.float16])
def test_arange_dtype(dtype):
    t = bm.arange(1, 11, 3, dtype=dtype)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.array([1, 4, 7, 10], NP_OF[dtype]))
    f = bm.arange(0.0, 2.0, 0.25, dtype=bm.float64)
    np.testing.assert_allclose(f.numpy(), np.arange(0.0, 2.0, 0.25), rtol=0, atol=0)
    assert bm.arange(np.int64(4)).dtype == bm.int64
    assert bm.arange(end=3, start=1).tolist() == [1, 2]


def test_arange_bad_inputs():
    with pytest.raises(ValueError, match=r"\[arange\].*step"):
        bm.arange(0, 5, 0)
    with pytest.raises(ValueError, match=r"\[arange\]"):
        bm.arange(5, 0)  # step sign inconsistent with the bounds, as in PyTorch
    with pytest.raises(ValueError, match=r"\[arange\]"):
        bm.arange(0.0, 1.0, -0.1)
    with pytest.raises(ValueError, match=r"\[arange\]"):
        bm.arange(0.0, float("inf"))


@pytest.mark.parametrize("start, end, steps", [(0, 1, 5), (-3, 7, 11), (2, -2, 4), (1, 1, 3), (0.1, 0.7, 1),
                                               (-1.5, 2.25, 0), (0, 1e4, 1001)])
@pytest.mark.parametrize("dtype", [bm.float64, bm.float32])
def test_linspace_matches_numpy(start, end, steps, dtype):
    t = bm.linspace(start, end, steps, dtype=dtype)
    expected = np.linspace(start, end, steps)
    assert t.dtype == dtype and t.shape == expected.shape
    assert_close(t, expected, atol=1e-12 if dtype == bm.float64 else 1e-6, rtol=1e-12 if dtype == bm.float64 else 1e-6)
    if steps >= 2:  # both ends are exact
        assert t[0].item() == np.array(start, NP_OF[dtype]) and t[-1].item() == np.array(end, NP_OF[dtype])


def test_linspace_default_dtype_and_ints():
    assert bm.linspace(0, 10, 5).dtype == bm.float32
    np.testing.assert_array_equal(bm.linspace(0, 10, 6, dtype=bm.int64).numpy(), [0, 2, 4, 6, 8, 10])
    with pytest.raises(ValueError, match=r"\[linspace\].*-1"):
        bm.linspace(0, 1, -1)


@pytest.mark.parametrize("n, m", [(3, None), (2, 4), (4, 2), (0, None), (1, 1), (3, 0)])
@pytest.mark.parametrize("dtype", [bm.float32, bm.float64, bm.int64, bm.bool])
def test_eye_matches_numpy(n, m, dtype):
    t = bm.eye(n, m, dtype=dtype) if m is not None else bm.eye(n, dtype=dtype)
    expected = np.eye(n, m, dtype=NP_OF[dtype])
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), expected)


def test_eye_requires_grad_and_bad():
    e = bm.eye(3, requires_grad=True)
    assert e.requires_grad and e.dtype == bm.float32
    with pytest.raises(ValueError, match=r"\[eye\]"):
        bm.eye(-1)
    with pytest.raises(ValueError, match=r"\[eye\]"):
        bm.eye(2, -3)


@pytest.mark.parametrize("name, call", [
    ("zeros", lambda: bm.zeros(2, -3)),
    ("ones", lambda: bm.ones((-1,))),
    ("empty", lambda: bm.empty([4, -2])),
    ("full", lambda: bm.full((2, -1), 1.0)),
    ("rand", lambda: bm.rand(-1)),
    ("randn", lambda: bm.randn(3, -3)),
    ("randint", lambda: bm.randint(0, 5, (-2,))),
])
def test_negative_sizes_name_op_and_shape(name, call):
    with pytest.raises(ValueError, match=rf"\[{name}\].*negative.*\["):
        call()


def test_bad_size_types():
    with pytest.raises(TypeError, match=r"\[zeros\]"):
        bm.zeros(2.5)
    with pytest.raises(TypeError, match=r"\[ones\]"):
        bm.ones((2, 1.0))
    with pytest.raises(TypeError, match=r"\[empty\]"):
        bm.empty("3")
    with pytest.raises(TypeError, match=r"\[zeros\]"):
        bm.zeros()
    with pytest.raises(ValueError, match=r"\[zeros\].*too many"):
        bm.zeros(1 << 40, 1 << 40)
