"""PyTorch parity sweep, indexing: basic, advanced and boolean __getitem__ / __setitem__,
views through indexing, and the errors for bad indices (see _parity.py)."""
import numpy as np

from _parity import cases, check, xfail

R = np.random.default_rng(11)
X = R.standard_normal((4, 5, 3)).astype(np.float32)
M = R.standard_normal((4, 5)).astype(np.float32)


def _int_index(lib): return lib.tensor(X)[1], lib.tensor(X)[-1, 2], lib.tensor(X)[0, 0, 0]
def _slices(lib): return lib.tensor(X)[1:3], lib.tensor(X)[:, ::2], lib.tensor(X)[..., 1:], lib.tensor(X)[-2:, :-1]
def _slice_out_of_range_clamps(lib): return lib.tensor(M)[2:100], lib.tensor(M)[10:]
def _none_and_ellipsis(lib):
    t = lib.tensor(X)
    return t[None].shape, t[:, None].shape, t[..., None].shape, t[None, ..., 0].shape, t[...].shape
def _tensor_index(lib): return lib.tensor(X)[lib.tensor([0, 2, 2])]
def _list_index(lib): return lib.tensor(M)[[0, 3]], lib.tensor(M)[:, [1, -1]]
def _two_tensor_indices(lib): return lib.tensor(X)[lib.tensor([0, 1]), lib.tensor([2, 3])]
def _broadcast_indices(lib): return lib.tensor(M)[lib.tensor([[0], [2]]), lib.tensor([1, 3, 4])]
def _index_then_slice(lib): return lib.tensor(X)[lib.tensor([3, 0]), 1:3]
def _separated_adv_indices(lib): return lib.tensor(X)[lib.tensor([0, 1]), :, lib.tensor([2, 0])].shape
def _bool_mask(lib): return lib.tensor(M)[lib.tensor(M) > 0]
def _bool_mask_rows(lib): return lib.tensor(M)[lib.tensor([True, False, True, False])]
def _bool_mask_numpy(lib): return lib.tensor(M)[np.array([True, False, True, True])]
def _int_tensor_scalar_index(lib): return lib.tensor(M)[lib.tensor(2)]
def _negative_tensor_index(lib): return lib.tensor(M)[lib.tensor([-1, -4])]
def _index_out_of_range_raises(lib): return lib.tensor(M)[4]
def _tensor_index_out_of_range_raises(lib): return lib.tensor(M)[lib.tensor([0, 7])]
def _too_many_indices_raises(lib): return lib.tensor(M)[0, 0, 0]
def _negative_step_raises(lib): return lib.tensor(M)[::-1]
def _float_index_raises(lib): return lib.tensor(M)[lib.tensor([0.0, 1.0])]
def _mask_shape_mismatch_raises(lib): return lib.tensor(M)[lib.tensor([True, False])]
def _basic_index_is_view(lib):
    t = lib.tensor(M)
    v = t[1:3, ::2]
    v.mul_(0)
    return t
def _adv_index_is_copy(lib):
    t = lib.tensor(M)
    c = t[lib.tensor([0, 1])]
    c.mul_(0)
    return t


def _set_int(lib):
    t = lib.tensor(M)
    t[0] = 5.0
    t[1, 2] = -1
    return t
def _set_slice_tensor(lib):
    t = lib.tensor(X)
    t[:, 1:3] = lib.ones(4, 2, 3)
    return t
def _set_broadcast(lib):
    t = lib.tensor(M)
    t[1:3] = lib.tensor(M[0])
    return t
def _set_mask_scalar(lib):
    t = lib.tensor(M)
    t[t < 0] = 0
    return t
def _set_mask_tensor(lib):
    t = lib.tensor(M)
    m = t > 0
    t[m] = t[m] * 10
    return t
def _set_index_list(lib):
    t = lib.tensor(M)
    t[[0, 2]] = lib.tensor([9.0])
    return t
def _set_tensor_pairs(lib):
    t = lib.tensor(M)
    t[lib.tensor([0, 1]), lib.tensor([4, 0])] = lib.tensor([7.0, 8.0])
    return t
def _set_ellipsis(lib):
    t = lib.tensor(X)
    t[..., 0] = 3.0
    return t
def _set_int_into_float(lib):
    t = lib.zeros(3)
    t[1] = lib.tensor(4)
    return t
def _set_float_into_int(lib):
    t = lib.zeros(3, dtype=lib.int64)
    t[1] = 2.7
    return t
def _set_shape_mismatch_raises(lib):
    t = lib.tensor(M)
    t[0] = lib.ones(3)
    return t
def _set_out_of_range_raises(lib):
    t = lib.tensor(M)
    t[9] = 1.0
    return t
@xfail("extension: bm assigns a NumPy array as a value (torch 1.13 raises TypeError)")
def _set_numpy_value(lib):
    t = lib.tensor(M)
    t[0] = np.arange(5, dtype=np.float32)
    return t
@xfail("extension: bm assigns a Python list as a value (torch 1.13 raises TypeError)")
def _set_list_value(lib):
    t = lib.tensor(M)
    t[:, 0] = [1.0, 2.0, 3.0, 4.0]
    return t
def _index_put_accumulate(lib):
    t = lib.zeros(4)
    return t.index_put_((lib.tensor([0, 0, 2]),), lib.tensor([1.0, 2.0, 3.0]), accumulate=True)
def _index_add(lib): return lib.zeros(4, 2).index_add(0, lib.tensor([1, 1, 3]), lib.ones(3, 2))
def _masked_select(lib): return lib.masked_select(lib.tensor(M), lib.tensor(M) > 0.5)
def _take(lib): return lib.take(lib.tensor(M), lib.tensor([0, 7, 19]))
def _grad_through_index(lib):
    x = lib.tensor(M.astype(np.float64), requires_grad=True)
    (x[lib.tensor([0, 0, 3]), 1:3] * 2).sum().backward()
    return x.grad
def _grad_through_mask(lib):
    x = lib.tensor(M.astype(np.float64), requires_grad=True)
    x[x > 0].sum().backward()
    return x.grad
def _grad_through_setitem(lib):
    x = lib.tensor(M.astype(np.float64), requires_grad=True)
    y = x * 1
    y[0] = 0
    y.sum().backward()
    return x.grad
def _setitem_leaf_requires_grad_raises(lib):
    x = lib.tensor(M, requires_grad=True)
    x[0] = 1.0
    return x


@cases(_int_index, _slices, _slice_out_of_range_clamps, _none_and_ellipsis, _tensor_index, _list_index,
       _two_tensor_indices, _broadcast_indices, _index_then_slice, _separated_adv_indices, _bool_mask,
       _bool_mask_rows, _bool_mask_numpy, _int_tensor_scalar_index, _negative_tensor_index,
       _index_out_of_range_raises, _tensor_index_out_of_range_raises, _too_many_indices_raises,
       _negative_step_raises, _float_index_raises, _mask_shape_mismatch_raises, _basic_index_is_view,
       _adv_index_is_copy)
def test_getitem(case):
    check(case)


@cases(_set_int, _set_slice_tensor, _set_broadcast, _set_mask_scalar, _set_mask_tensor, _set_index_list,
       _set_tensor_pairs, _set_ellipsis, _set_int_into_float, _set_float_into_int, _set_shape_mismatch_raises,
       _set_out_of_range_raises, _set_numpy_value, _set_list_value, _index_put_accumulate, _index_add,
       _masked_select, _take, _grad_through_index, _grad_through_mask, _grad_through_setitem,
       _setitem_leaf_requires_grad_raises)
def test_setitem_and_index_ops(case):
    check(case)
