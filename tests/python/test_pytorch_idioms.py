"""Small PyTorch idioms a new user reaches for: new_* factories, isclose/allclose/equal,
F.pad and F.normalize."""
import numpy as np
import pytest

import bigmodel as bm
import bigmodel.nn.functional as F
from conftest import assert_close


def test_new_factories_follow_the_source_tensor():
    t = bm.ones(2, dtype=bm.float64)
    assert t.new_zeros(2, 3).dtype == bm.float64 and t.new_zeros((2, 3)).shape == (2, 3)
    assert t.new_ones(4).tolist() == [1.0] * 4
    assert t.new_full((2,), 7).tolist() == [7.0, 7.0]
    assert t.new_tensor([1, 2]).dtype == bm.float64
    assert t.new_zeros(2, dtype=bm.int32).dtype == bm.int32
    assert t.new_empty(3, requires_grad=True).requires_grad


def test_isclose_allclose_equal():
    a = bm.tensor([1.0, float("inf"), float("nan"), 2.0])
    b = bm.tensor([1.0 + 1e-9, float("inf"), float("nan"), 2.1])
    assert bm.isclose(a, b).tolist() == [True, True, False, False]
    assert bm.isclose(a, b, equal_nan=True).tolist() == [True, True, True, False]
    assert not bm.allclose(a, b) and bm.allclose(a[:2], b[:2])
    assert bm.equal(bm.tensor([1, 2]), bm.tensor([1, 2])) and not bm.equal(bm.tensor([1, 2]), bm.tensor([1, 3]))
    assert not bm.equal(bm.tensor([1, 2]), bm.tensor([[1, 2]]))
    with pytest.raises(TypeError, match=r"\[isclose\]"):
        bm.isclose(bm.tensor([1.0]), bm.tensor([1.0], dtype=bm.float64))


def test_pad_matches_numpy_and_has_gradients(rng):
    a = rng.standard_normal((2, 3, 4))
    t = bm.tensor(a)
    assert_close(F.pad(t, (1, 2)), np.pad(a, ((0, 0), (0, 0), (1, 2))))
    assert_close(F.pad(t, (1, 2, 0, 1), value=5.0), np.pad(a, ((0, 0), (0, 1), (1, 2)), constant_values=5.0))
    assert_close(F.pad(t, (-1, 1)), np.pad(a[:, :, 1:], ((0, 0), (0, 0), (0, 1))))
    x = bm.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    assert bm.autograd.gradcheck(lambda u: F.pad(u, (1, 2, 1, 0), value=3.0), [x])
    with pytest.raises(ValueError, match=r"\[pad\]"):
        F.pad(t, (1,))
    with pytest.raises(NotImplementedError, match=r"\[pad\]"):
        F.pad(t, (1, 1), mode="symmetric")


def test_normalize_matches_numpy_and_has_gradients(rng):
    a = rng.standard_normal((3, 4))
    assert_close(F.normalize(bm.tensor(a), dim=1), a / np.linalg.norm(a, axis=1, keepdims=True))
    assert_close(F.normalize(bm.tensor(a), p=1, dim=0), a / np.abs(a).sum(axis=0, keepdims=True))
    x = bm.tensor(a, requires_grad=True)
    assert bm.autograd.gradcheck(lambda u: F.normalize(u, dim=0), [x])
