"""PyTorch parity sweep, tensors: creation, dtype promotion, math with Python scalars,
reductions returning (values, indices), sorting, conversion and printing. Each case runs on
torch and on bigmodel with the same NumPy inputs (see _parity.py)."""
import numpy as np

from _parity import bm, cases, check, torch

R = np.random.default_rng(7)
A = R.standard_normal((3, 4)).astype(np.float32)
B = R.standard_normal((4, 5)).astype(np.float32)
V = R.standard_normal(6).astype(np.float32)
I = np.array([[5, -7, 3], [-2, 9, -4]], dtype=np.int64)
D = R.standard_normal((2, 3, 4))  # float64


# ---- creation ----
def _arange_int(lib): return lib.arange(5)
def _arange_float_step(lib): return lib.arange(0, 1, 0.25)
def _arange_start_end_dtype(lib): return lib.arange(2, 9, 3, dtype=lib.float64)
def _arange_float_endpoint(lib): return lib.arange(1.0, 2.0, 0.1)
def _arange_zero_step(lib): return lib.arange(0, 5, 0)
def _linspace(lib): return lib.linspace(-1, 1, 5)
def _linspace_one(lib): return lib.linspace(3, 7, 1)
def _linspace_dtype(lib): return lib.linspace(0, 10, 4, dtype=lib.float64)
def _eye(lib): return lib.eye(3)
def _eye_rect(lib): return lib.eye(2, 4, dtype=lib.int64)
def _full_int(lib): return lib.full((2, 3), 7)
def _full_float(lib): return lib.full((2,), 1.5)
def _full_bool(lib): return lib.full((2,), True)
def _zeros_tuple_and_varargs(lib): return lib.zeros((2, 3)), lib.zeros(2, 3), lib.zeros([4])
def _ones_dtype(lib): return lib.ones(2, dtype=lib.int32)
def _zeros_like_dtype(lib): return lib.zeros_like(lib.tensor(A), dtype=lib.float64)
def _ones_like_int(lib): return lib.ones_like(lib.tensor(I))
def _full_like(lib): return lib.full_like(lib.tensor(I), 2.7)
def _empty_shape(lib): return lib.empty(2, 0, 3).shape
def _rand_shape_dtype(lib): return lib.rand(2, 3, dtype=lib.float64)
def _randn_shape(lib): return lib.randn((4,))
def _randint_range(lib):
    t = lib.randint(3, 7, (50,))
    return t.dtype, t.shape, bool((t >= 3).all()), bool((t < 7).all())
def _randint_high_only(lib): return lib.randint(5, (2, 2)).shape, lib.randint(5, (2, 2)).dtype
def _rand_like(lib): return lib.rand_like(lib.tensor(D)).dtype
def _randn_like_int_raises(lib): return lib.randn_like(lib.tensor(I))
def _randperm(lib): return sorted(lib.randperm(6).tolist()), lib.randperm(6).dtype
def _tensor_from_list_dtypes(lib):
    return lib.tensor([1, 2]).dtype, lib.tensor([1.0, 2]).dtype, lib.tensor([True]).dtype, lib.tensor(3.5).dtype
def _tensor_from_numpy_f64(lib): return lib.tensor(D).dtype
def _tensor_scalar_shape(lib): return lib.tensor(3).shape, lib.tensor([3]).shape
def _tensor_device_kw(lib): return lib.zeros(2, device="cpu").device, lib.tensor([1.0], device="cpu").device
def _tensor_ragged_raises(lib): return lib.tensor([[1, 2], [3]])
def _from_numpy_shares(lib):
    a = np.arange(4.0)
    t = lib.from_numpy(a)
    a[0] = 9
    return t
def _as_tensor_keeps(lib): return lib.as_tensor(np.arange(3, dtype=np.int32))
def _zeros_negative_raises(lib): return lib.zeros(-1)


# ---- promotion ----
def _int_plus_float_tensor(lib): return lib.tensor(I) + lib.tensor(I).float()
def _int_plus_python_float(lib): return lib.tensor(I) + 1.5
def _int_times_python_int(lib): return lib.tensor(I) * 2
def _float32_plus_f64_scalar_tensor(lib): return lib.tensor(A) + lib.tensor(2.0, dtype=lib.float64)
def _f32_plus_f64_tensor(lib): return lib.tensor(A) + lib.tensor(A.astype(np.float64))
def _bool_plus_int(lib): return lib.tensor([True, False]) + lib.tensor([3, 4])
def _bool_plus_bool(lib): return lib.tensor([True, False]) + lib.tensor([True, True])
def _int_truediv(lib): return lib.tensor(I) / 2
def _int_truediv_tensor(lib): return lib.tensor(I) / lib.tensor([[2, 3, 4]])
def _floordiv_sign(lib): return lib.tensor(I) // 2, lib.tensor(I) // -2
def _floor_divide_float(lib): return lib.floor_divide(lib.tensor([-7.5, 7.5]), 2)
def _remainder_sign(lib): return lib.tensor(I) % 3, lib.tensor(I) % -3
def _remainder_float(lib): return lib.remainder(lib.tensor([-7.5, 7.5]), 2.0)
def _fmod_sign(lib): return lib.fmod(lib.tensor(I), 3)
def _int_pow(lib): return lib.tensor([2, 3]) ** 2
def _int_pow_float(lib): return lib.tensor([2, 3]) ** 0.5
def _rpow(lib): return 2 ** lib.tensor([1.0, 3.0])
def _rsub_rdiv(lib): return 1 - lib.tensor(A), 2 / lib.tensor(V), 3 * lib.tensor(V)
def _rsub_int(lib): return 10 - lib.tensor(I)
def _neg_abs(lib): return -lib.tensor(I), abs(lib.tensor(A))
def _comparison_dtype(lib): return lib.tensor(A) > 0, lib.tensor(I) == 3, lib.tensor(A) <= lib.tensor(A)
def _compare_int_with_float(lib): return lib.tensor(I) < 2.5
def _bool_and_or(lib):
    m = lib.tensor([True, False, True])
    n = lib.tensor([False, False, True])
    return m & n, m | n, m ^ n, ~m
def _invert_int(lib): return ~lib.tensor(I)
def _inplace_int_plus_float_raises(lib):
    t = lib.tensor(I)
    t += 1.5
    return t
def _inplace_float_plus_int(lib):
    t = lib.tensor(A)
    t += lib.tensor(np.ones((3, 4), dtype=np.int64))
    return t
def _matmul_op(lib): return lib.tensor(A) @ lib.tensor(B)
def _matmul_vec(lib): return lib.tensor(A) @ lib.tensor(A[0])
def _matmul_batched_broadcast(lib): return lib.tensor(D) @ lib.tensor(D[0].T)
def _matmul_shape_error(lib): return lib.tensor(A) @ lib.tensor(A)
def _matmul_dtype_mismatch(lib): return lib.tensor(A) @ lib.tensor(B.astype(np.float64))
def _add_alpha(lib): return lib.add(lib.tensor(A), lib.tensor(A), alpha=2)
def _sub_alpha_method(lib): return lib.tensor(A).sub(lib.tensor(A) * 3, alpha=0.5)
def _broadcast_error(lib): return lib.tensor(A) + lib.tensor(B)
def _result_type(lib): return lib.result_type(lib.tensor([1]), 1.0), lib.promote_types(lib.int32, lib.float32)


# ---- in place and views ----
def _iadd_on_view(lib):
    t = lib.tensor(A)
    v = t[1]
    v += 10
    return t
def _inplace_returns_self(lib):
    t = lib.tensor(A)
    return t.add_(1) is t, t.mul_(2) is t, t.clamp_(-1, 1) is t, t.zero_() is t
def _augmented_assign_keeps_identity(lib):
    t = lib.tensor(A)
    u = t
    u += 1
    u *= 2
    p = lib.nn.Parameter(lib.tensor(A))
    q = p
    with lib.no_grad():
        q -= 1
    return u is t, type(q).__name__, q is p, t
def _augmented_assign_bad_operand_raises(lib):
    t = lib.tensor(A)
    t += "x"
    return t
def _view_shares(lib):
    t = lib.tensor(A)
    v = t.view(12)
    v[0] = 100
    return t
def _view_noncontig_raises(lib): return lib.tensor(A).t().view(12)
def _reshape_noncontig(lib): return lib.tensor(A).t().reshape(12)
def _view_infer(lib): return lib.tensor(A).view(-1, 2).shape, lib.tensor(A).reshape(2, -1).shape
def _view_two_infer_raises(lib): return lib.tensor(A).view(-1, -1)
def _view_bad_size_raises(lib): return lib.tensor(A).view(5, 3)
def _contiguous(lib): return lib.tensor(A).t().is_contiguous(), lib.tensor(A).t().contiguous().is_contiguous()
def _transpose_strides(lib): return lib.tensor(A).t().stride(), lib.tensor(A).stride(), lib.tensor(D).stride(1)
def _permute_expand(lib): return lib.tensor(D).permute(2, 0, 1).shape, lib.tensor(V[:1]).expand(3, 2).shape
def _expand_minus_one(lib): return lib.tensor(A[:1]).expand(5, -1).shape
def _size_methods(lib):
    t = lib.tensor(D)
    return t.size(), t.size(-1), t.dim(), t.numel(), t.ndim, t.shape[1], len(t), t.nelement()
def _squeeze_unsqueeze(lib):
    t = lib.tensor(A).unsqueeze(0).unsqueeze(-1)
    return t.shape, t.squeeze().shape, t.squeeze(0).shape, t.squeeze(1).shape
def _flatten_unflatten(lib):
    t = lib.tensor(D)
    return t.flatten().shape, t.flatten(1).shape, t.flatten(0, 1).shape, t.unflatten(2, (2, 2)).shape
def _repeat_tile(lib): return lib.tensor(V[:2]).repeat(2, 3)
def _type_as(lib): return lib.tensor(I).type_as(lib.tensor(A))
def _to_dtype_variants(lib):
    t = lib.tensor(A)
    return t.to(lib.float64).dtype, t.double().dtype, t.long().dtype, t.int().dtype, t.bool().dtype, \
        t.half().dtype, t.to("cpu", lib.float64).dtype, t.to(t.new_zeros(1, dtype=lib.int32)).dtype
def _float_to_int_truncates(lib): return lib.tensor([-1.7, 2.7]).long()
def _clone_independent(lib):
    t = lib.tensor(A)
    c = t.clone()
    c[0, 0] = 50
    return t[0, 0]


# ---- reductions, sorting ----
def _sum_dims(lib):
    t = lib.tensor(D)
    return t.sum(), t.sum(0), t.sum((0, 2)), t.sum(-1, keepdim=True), t.sum(dim=1)
def _sum_int_dtype(lib): return lib.tensor(I).sum(), lib.tensor([True, True]).sum()
def _sum_dtype_kw(lib): return lib.tensor(I).sum(dtype=lib.float64)
def _mean_int_raises(lib): return lib.tensor(I).mean()
def _mean_std_var(lib):
    t = lib.tensor(D)
    return t.mean(1), t.std(), t.var(0), t.std(1, keepdim=True), t.var(unbiased=False)
def _max_no_dim(lib): return lib.tensor(A).max(), lib.tensor(I).min()
def _max_dim_namedtuple(lib): return lib.tensor(A).max(1), lib.tensor(A).min(0, keepdim=True)
def _max_dim_fields(lib):
    r = lib.max(lib.tensor(A), dim=1)
    return r.values, r.indices, r[0].shape
def _max_binary(lib): return lib.max(lib.tensor(A), lib.tensor(-A))
def _argmax(lib): return lib.tensor(A).argmax(), lib.tensor(A).argmax(1), lib.tensor(A).argmin(0, keepdim=True)
def _amax_multi(lib): return lib.amax(lib.tensor(D), dim=(0, 2))
def _prod(lib): return lib.tensor(A).prod(1), lib.tensor(I).prod()
def _all_any(lib): return (lib.tensor(A) > -5).all(), (lib.tensor(A) > 1).any(1), lib.tensor(I).bool().all()
def _cumsum(lib): return lib.cumsum(lib.tensor(A), dim=1), lib.tensor(I).cumsum(0)
def _cumsum_neg_dim(lib): return lib.tensor(D).cumsum(-1)
def _cumprod(lib): return lib.cumprod(lib.tensor(A[:, :3]), 1)
def _sort(lib): return lib.sort(lib.tensor(A), dim=1)
def _sort_descending(lib): return lib.tensor(A).sort(0, descending=True)
def _sort_int_fields(lib):
    r = lib.sort(lib.tensor(I[0]))
    return r.values, r.indices
def _argsort(lib): return lib.argsort(lib.tensor(A), dim=-1), lib.tensor(V).argsort(descending=True)
def _topk(lib): return lib.topk(lib.tensor(A), 2)
def _topk_smallest_dim0(lib): return lib.tensor(A).topk(2, dim=0, largest=False)
def _topk_too_big_raises(lib): return lib.topk(lib.tensor(V), 10)
def _unique(lib): return lib.unique(lib.tensor([3, 1, 3, 2, 1]))
def _unique_counts(lib):
    return lib.unique(lib.tensor([3, 1, 3, 2, 1]), return_inverse=True, return_counts=True)
def _unique_method(lib): return lib.tensor([2.0, 2.0, -1.0]).unique()
def _logsumexp(lib): return lib.logsumexp(lib.tensor(A), 1)
def _norm(lib): return lib.tensor(A).norm(), lib.tensor(A).norm(dim=1), lib.tensor(A).norm(p=1)
def _median_rare(lib): return lib.tensor(V).median()
def _sum_bad_dim_raises(lib): return lib.tensor(A).sum(2)
def _count_nonzero(lib): return lib.count_nonzero(lib.tensor(I) > 0)


# ---- elementwise and misc ops ----
def _clamp_variants(lib):
    t = lib.tensor(A)
    return t.clamp(-0.5, 0.5), t.clamp(min=0), t.clamp(max=0.1), lib.clamp(lib.tensor(I), -3, 3)
def _where(lib): return lib.where(lib.tensor(A) > 0, lib.tensor(A), lib.tensor(-A))
def _where_scalar(lib): return lib.where(lib.tensor(A) > 0, lib.tensor(A), 0.0)
def _where_single_arg(lib): return lib.where(lib.tensor(I) > 0)
def _masked_fill(lib): return lib.tensor(A).masked_fill(lib.tensor(A) < 0, float("-inf"))
def _masked_fill_broadcast(lib): return lib.tensor(A).masked_fill(lib.tensor([True, False, True, False]), 0.0)
def _masked_fill_float_mask_raises(lib): return lib.tensor(A).masked_fill(lib.tensor(A), 0.0)
def _gather(lib): return lib.gather(lib.tensor(A), 1, lib.tensor([[0, 0], [1, 3], [2, 1]]))
def _gather_oob_raises(lib): return lib.tensor(A).gather(1, lib.tensor([[0], [9], [1]]))
def _scatter(lib):
    return lib.zeros(3, 4).scatter(1, lib.tensor([[0], [2], [3]]), lib.tensor(A))
def _scatter_value(lib): return lib.zeros(2, 3).scatter_(1, lib.tensor([[1], [2]]), 5.0)
def _scatter_add(lib):
    return lib.zeros(2, 4).scatter_add(1, lib.tensor([[0, 0, 3], [1, 1, 1]]), lib.ones(2, 3))
def _index_select(lib): return lib.tensor(A).index_select(1, lib.tensor([3, 0]))
def _chunk_split(lib):
    t = lib.tensor(np.arange(10.0))
    return t.chunk(3), t.split(4), t.split([2, 8]), lib.chunk(t, 4)
def _split_bad_sizes_raises(lib): return lib.tensor(V).split([2, 2])
def _stack_cat(lib):
    a, b = lib.tensor(A), lib.tensor(-A)
    return lib.stack([a, b]), lib.stack((a, b), dim=-1), lib.cat([a, b], 1), lib.cat((a, b))
def _cat_dtype_promotes(lib): return lib.cat([lib.tensor(I), lib.tensor(I).double()])
def _cat_shape_raises(lib): return lib.cat([lib.tensor(A), lib.tensor(B)])
def _stack_shape_raises(lib): return lib.stack([lib.tensor(A), lib.tensor(A[:2])])
def _unbind(lib): return lib.tensor(A).unbind(1)
def _tril_triu(lib): return lib.tensor(A).tril(), lib.tensor(A).triu(1)
def _flip_roll(lib): return lib.tensor(A).flip(0), lib.tensor(A).roll(1, 1), lib.flip(lib.tensor(D), [0, 2])
def _unary_math(lib):
    t = lib.tensor(np.abs(A) + 0.1)
    return t.exp(), t.log(), t.sqrt(), t.rsqrt(), t.sin(), t.cos(), t.tanh(), t.sigmoid(), t.log1p(), t.reciprocal()
def _more_unary(lib):
    t = lib.tensor(np.abs(A) + 0.1)
    return lib.log2(t), lib.log10(t), lib.tan(t), lib.atan(t), lib.exp2(t) if hasattr(lib, "exp2") else t
def _rounding(lib):
    t = lib.tensor([-1.5, -0.5, 0.5, 1.5, 2.5, 2.7])
    return t.round(), t.floor(), t.ceil(), t.trunc(), t.sign(), t.frac()
def _minimum_maximum(lib): return lib.minimum(lib.tensor(A), lib.tensor(-A)), lib.maximum(lib.tensor(I), lib.tensor(I[::-1].copy()))
def _isnan_isinf(lib):
    t = lib.tensor([1.0, float("nan"), float("inf")])
    return t.isnan(), t.isinf(), t.isfinite(), lib.nan_to_num(t, nan=0.0, posinf=9.0)
def _nonzero(lib): return lib.nonzero(lib.tensor(I) > 0), (lib.tensor(I) > 0).nonzero(as_tuple=True)
def _outer_dot(lib): return lib.outer(lib.tensor(V), lib.tensor(V[:3])), lib.dot(lib.tensor(V), lib.tensor(V))
def _einsum(lib): return lib.einsum("ij,jk->ik", lib.tensor(A), lib.tensor(B))
def _einsum_batched(lib): return lib.einsum("bij,bkj->bik", lib.tensor(D), lib.tensor(D))
def _multinomial(lib):
    lib.manual_seed(0)
    s = lib.multinomial(lib.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), 1)
    return s
def _bincount(lib): return lib.bincount(lib.tensor([0, 2, 2, 5]))
def _diag(lib): return lib.diag(lib.tensor(A[:, :3])), lib.diag(lib.tensor(V[:3]))
def _repeat_interleave(lib): return lib.tensor([1, 2, 3]).repeat_interleave(2)
def _meshgrid(lib): return lib.meshgrid(lib.arange(3), lib.arange(2), indexing="ij")
def _addmm_baddbmm(lib): return lib.addmm(lib.tensor(A[:, :1]), lib.tensor(A), lib.tensor(B), beta=0.5, alpha=2)
def _lerp(lib): return lib.lerp(lib.tensor(A), lib.tensor(-A), 0.25)
def _allclose_isclose(lib): return lib.allclose(lib.tensor(A), lib.tensor(A) + 1e-9), lib.isclose(lib.tensor(A), lib.tensor(A))
def _equal(lib): return lib.equal(lib.tensor(I), lib.tensor(I))
def _softmax_method(lib): return lib.tensor(A).softmax(-1), lib.tensor(A).log_softmax(dim=0)
def _square_addcmul(lib):
    t = lib.tensor(A)
    return t.square(), t.addcmul(t, t, value=0.5), t.addcdiv(t, t + 10, value=2)
def _hstack_vstack(lib): return lib.hstack([lib.tensor(V), lib.tensor(V)]), lib.vstack([lib.tensor(A), lib.tensor(A)])


# ---- conversion, printing, Python protocol ----
def _item_types(lib): return lib.tensor([2.5]).item(), lib.tensor(3).item(), lib.tensor(True).item()
def _item_many_raises(lib): return lib.tensor(A).item()
def _tolist(lib): return lib.tensor(I).tolist(), lib.tensor(2.0).tolist(), lib.tensor([True]).tolist()
def _numpy(lib): return lib.tensor(I).numpy(), lib.tensor(A).t().numpy()
def _numpy_requires_grad_raises(lib): return lib.tensor(A, requires_grad=True).numpy()
def _float_int_index(lib): return float(lib.tensor(2.5)), int(lib.tensor(7)), [10, 20, 30][lib.tensor(1)]
def _bool_one(lib): return bool(lib.tensor([0.0])), bool(lib.tensor(3))
def _bool_many_raises(lib): return bool(lib.tensor(A))
def _len_iter(lib):
    t = lib.tensor(A)
    return len(t), [r.shape for r in t], [x.item() for x in lib.tensor([1, 2])]
def _len_scalar_raises(lib): return len(lib.tensor(2.0))
def _iter_scalar_raises(lib): return list(iter(lib.tensor(2.0)))
def _dtype_str(lib): return str(lib.float32).split(".")[-1], repr(lib.int64).split(".")[-1], str(lib.tensor(A).device)
def _dtype_props(lib):
    return lib.float32.is_floating_point, lib.int64.is_floating_point, lib.tensor(A).is_floating_point(), \
        lib.tensor(A).element_size(), lib.float16.itemsize if hasattr(lib.float16, "itemsize") else 2
def _finfo(lib): return lib.finfo(lib.float32).eps, lib.finfo(lib.float16).max, lib.iinfo(lib.int32).max
def _repr_float(lib): return repr(lib.tensor([1.5, -2.0])).replace("torch", "T").replace("bigmodel", "T")
def _repr_int(lib): return repr(lib.tensor([[1, 2], [3, 4]]))
def _norm_names(s): return s.replace("torch.", "LIB.").replace("bigmodel.", "LIB.")
def _repr_dtype_suffix(lib): return _norm_names(repr(lib.tensor([1.0, 2.0], dtype=lib.float64)))
def _repr_int32_suffix(lib): return _norm_names(repr(lib.tensor([1, 2], dtype=lib.int32)))
def _repr_nan_inf(lib): return repr(lib.tensor([float("nan"), float("inf"), 1.25]))
def _repr_wide_rows_wrap(lib): return repr(lib.arange(30.0).reshape(2, 15) / 7)
def _repr_summarised_2d_3d(lib):
    return repr(lib.arange(2000.0).reshape(40, 50)), repr(lib.arange(2000).reshape(10, 2, 100)), repr(lib.arange(2000))
def _repr_sci_mode(lib): return repr(lib.tensor([0.001, 2.0])), repr(lib.tensor([1.0, 5000.0])), repr(lib.tensor([1e9, 1.0]))
def _repr_negative_zero_and_empty(lib):
    return repr(lib.tensor([-0.0, 1.5])), _norm_names(repr(lib.zeros(2, 0, 3, dtype=lib.int32))), repr(lib.zeros(2, 0))
def _repr_grad(lib): return repr(lib.tensor([1.0], requires_grad=True))
def _repr_scalar(lib): return repr(lib.tensor(2.5)), str(lib.tensor(3))
def _format_scalar(lib): return f"{lib.tensor(2.5):.2f}", "{}".format(lib.tensor(1.0).item())
def _copy_across_dtype(lib):
    t = lib.zeros(3, 4, dtype=lib.float64)
    t.copy_(lib.tensor(A))
    return t
def _fill_zero(lib): return lib.tensor(A).fill_(2.5), lib.tensor(I).zero_()
def _is_tensor(lib): return lib.is_tensor(lib.tensor(A)), lib.is_tensor(A), lib.numel(lib.tensor(A))
def _shape_eq_tuple(lib): return lib.tensor(A).shape == (3, 4), lib.tensor(A).shape == lib.Size([3, 4])


# ---- the helpers scripts reach for less often ----
P3 = R.standard_normal((4, 3)).astype(np.float32)
Q3 = R.standard_normal((5, 3)).astype(np.float32)
def _ravel_moveaxis_tile(lib):
    t = lib.tensor(D)
    return lib.ravel(t[:, 1]), lib.moveaxis(t, 0, -1).shape, lib.moveaxis(t, [0, 1], [2, 0]).shape, \
        lib.tile(lib.tensor(V[:2]), (2, 2)), t.tile((2,)).shape
def _broadcast_tensors(lib):
    a, b = lib.broadcast_tensors(lib.tensor(V[:3]).reshape(3, 1), lib.tensor(V[:4]))
    return a, b
def _tensordot_trace_cross(lib):
    return lib.tensordot(lib.tensor(D), lib.tensor(B), dims=1), lib.tensordot(lib.tensor(A), lib.tensor(A), ([0, 1], [0, 1])), \
        lib.trace(lib.tensor(A[:, :3])), lib.cross(lib.tensor(P3), lib.tensor(P3[::-1].copy()), dim=1)
def _diff_cdist(lib):
    return lib.diff(lib.tensor(A)), lib.diff(lib.tensor(A), n=2, dim=0), lib.cdist(lib.tensor(P3), lib.tensor(Q3)), \
        lib.cdist(lib.tensor(P3), lib.tensor(Q3), p=1)
def _logaddexp_xlogy(lib):
    return lib.logaddexp(lib.tensor(A), lib.tensor(-A)), lib.xlogy(lib.tensor([0.0, 2.0]), lib.tensor([0.0, 3.0]))
def _nan_reductions(lib):
    t = lib.tensor([1.0, float("nan"), 3.0])
    return lib.nansum(t), lib.nanmean(t)
def _var_std_mean(lib): return lib.var_mean(lib.tensor(A), 1), lib.std_mean(lib.tensor(A))
def _argwhere_take_along(lib):
    idx = lib.argsort(lib.tensor(A), 1)
    return lib.argwhere(lib.tensor(I) > 0), lib.take_along_dim(lib.tensor(A), idx, 1)
def _baddbmm(lib):
    return lib.baddbmm(lib.tensor(D[:, :, :3]), lib.tensor(D), lib.tensor(D).transpose(1, 2)[:, :, :3], beta=0.5, alpha=2)
def _tril_triu_indices(lib): return lib.tril_indices(3, 3), lib.triu_indices(3, 4, 1)
def _searchsorted_bucketize(lib):
    seq = lib.tensor([1.0, 3.0, 5.0, 7.0])
    v = lib.tensor([0.0, 3.0, 6.0, 9.0])
    return lib.searchsorted(seq, v), lib.searchsorted(seq, v, right=True), lib.bucketize(v, seq)
def _isin(lib): return lib.isin(lib.tensor([1, 2, 3, 4]), lib.tensor([2, 4]))
def _kthvalue_quantile(lib):
    t = lib.tensor(A)
    return lib.kthvalue(t, 2, 1), lib.quantile(t, 0.25), lib.quantile(t, lib.tensor([0.1, 0.9]), dim=1)
def _lerp_inplace_ema(lib):
    ema = lib.tensor(A)
    r = ema.lerp_(lib.tensor(-A), 0.1)
    return ema, r is ema
def _tensor_unfold(lib): return lib.arange(10.0).unfold(0, 4, 3), lib.tensor(A).unfold(1, 2, 1)
def _global_settings(lib):
    before = lib.get_num_threads()
    lib.set_num_threads(1)
    n = lib.get_num_threads()
    lib.set_num_threads(before)
    lib.set_default_dtype(lib.float32)
    return n, lib.get_default_dtype(), lib.is_floating_point(lib.tensor(A))
def _masked_scatter_index_fill(lib):
    t = lib.zeros(2, 3)
    m = lib.tensor([[True, False, True], [False, True, False]])
    return t.masked_scatter(m, lib.tensor([1.0, 2.0, 3.0, 4.0])), lib.tensor(A).index_fill(1, lib.tensor([0, 2]), -1.0)
def _fill_diagonal(lib): return lib.zeros(3, 3).fill_diagonal_(5.0)


def _zero_dim_inputs(lib):
    s = lib.tensor(0.5)
    return lib.atan(s), lib.argsort(s), lib.sort(s), lib.cumsum(s, 0), lib.topk(s, 1), lib.median(s), \
        lib.isin(lib.tensor(2), lib.tensor([2])), lib.searchsorted(lib.tensor([1.0, 2.0]), lib.tensor(1.5)), \
        lib.linalg.det(lib.eye(3)), lib.unique(lib.tensor(3)), lib.log2(s), lib.cumprod(s, 0)
SC_IDX = np.array([[0, 1, 0], [2, 2, 1]], dtype=np.int64)
def _namespace_breadth(lib):
    t, v = lib.tensor(A), lib.tensor(V)
    return (lib.diag_embed(t[:, :2]), lib.diag_embed(v[:3], offset=1), lib.dist(t, -t), lib.dist(t, -t, 1),
            lib.logspace(0, 2, 5), lib.rot90(t), lib.rot90(t, 2), lib.rot90(t, -1, (1, 0)),
            lib.tensor_split(lib.arange(10), 3), lib.tensor_split(lib.arange(10), [2, 5]), lib.hsplit(t, 2),
            lib.vsplit(lib.tensor(D[0]), [1]), lib.aminmax(t), lib.aminmax(t, dim=1),
            lib.cartesian_prod(lib.tensor([1, 2]), lib.tensor([3, 4, 5])), lib.combinations(lib.tensor([1, 2, 3])),
            lib.kron(lib.tensor(A[:2, :2]), lib.tensor(A[1:, 2:])), lib.cov(t), lib.corrcoef(t),
            lib.histc(v, bins=4), lib.histc(v, bins=3, min=-1, max=1), lib.cummax(t, 1), lib.cummin(t, 0),
            lib.logcumsumexp(t, 1), lib.msort(t), lib.unique_consecutive(lib.tensor([1, 1, 2, 2, 3, 1])),
            lib.unique_consecutive(lib.tensor([1, 1, 2, 2, 3, 1]), return_inverse=True, return_counts=True),
            lib.trapz(t), lib.trapz(t, dx=0.5, dim=0), lib.addbmm(lib.tensor(D[0, :, :3]), lib.tensor(D),
                                                                    lib.tensor(D).transpose(1, 2)[:, :, :3]),
            lib.sgn(t), lib.arccos(lib.tensor([0.5])), lib.arctan2(t, t.t()[:3].t() + 2))
def _scatter_reduce_modes(lib):
    src = lib.tensor(A[:2, :3])
    idx = lib.tensor(SC_IDX)
    base = lib.tensor(A[:2])
    return [base.scatter_reduce(1, idx, src, r) for r in ("sum", "mean", "prod", "amax", "amin")] + \
        [base.scatter_reduce(1, idx, src, r, include_self=False) for r in ("sum", "mean", "amax", "amin", "prod")]
def _index_copy_fill(lib):
    t = lib.tensor(A)
    return lib.index_copy(t, 1, lib.tensor([3, 0]), lib.ones(3, 2)), lib.index_fill(t, 0, lib.tensor([1]), 7.0)
def _exponential_inplace(lib):
    lib.manual_seed(0)
    e = lib.empty(2000).exponential_(2.0)
    return e.shape, bool((e >= 0).all()), abs(e.mean().item() - 0.5) < 0.05
def _half_precision_sort_scan(lib):
    h, b = lib.tensor(A).half(), lib.tensor(A).bfloat16()
    # torch 1.13's CPU lacks float16 topk / cumsum / unique: those for bfloat16 only
    return [lib.sort(h, 1), lib.argsort(h, 0), lib.sort(b, 1), lib.argsort(b, 0), lib.topk(b, 2),
            lib.cumsum(b, 1).float(), lib.unique(lib.tensor(np.round(A) + 0.0).bfloat16())]  # (no -0.0: torch's
    # bfloat16 unique tells -0.0 from 0.0)
MODE_IN = np.array([[1, 2, 2, 3, 1], [4, 4, 0, 0, 4]], dtype=np.int64)
def _aliases_and_small_helpers(lib):
    t, u = lib.tensor(A), lib.tensor(A[::-1].copy())
    sq = lib.tensor(A[:, :3])
    return (lib.hypot(t, u), lib.copysign(t, u), lib.signbit(lib.tensor([-0.0, 0.0, -1.0])),
            lib.isposinf(lib.tensor([float("inf"), 1.0])), lib.isneginf(lib.tensor([float("-inf"), 1.0])),
            lib.logit(lib.tensor([0.2, 0.7])), lib.erfc(t), lib.sinc(lib.tensor([0.0, 0.5, 1.5])),
            lib.heaviside(t, lib.tensor(0.5)), lib.inner(t, u), lib.vdot(lib.tensor(V), lib.tensor(V)),
            lib.diagflat(lib.tensor(V[:2])), lib.matrix_power(sq, 3), lib.matrix_power(sq, -1), lib.logdet(sq @ sq.t()),
            lib.inverse(sq), lib.det(sq), lib.nanmedian(lib.tensor([1.0, float("nan"), 3.0, 2.0])),
            lib.mode(lib.tensor(MODE_IN)), lib.multiply(t, 2), lib.subtract(t, u), lib.divide(t, 2),
            lib.swapdims(lib.tensor(D), 0, 2).shape, t.positive(), t.is_complex(), t.is_signed(),
            t.is_same_size(u), t.isclose(u).sum(), t.allclose(t), t.split_with_sizes([1, 2]), t.narrow_copy(1, 1, 2),
            t.take_along_dim(lib.argsort(t, 1), 1))
def _more_inplace_forms(lib):
    t = lib.tensor(np.abs(A) + 0.5)
    out = []
    for name in ("sinh_", "cosh_", "tan_", "log2_", "log10_", "exp2_", "frac_", "fix_", "tril_", "triu_", "sgn_",
                 "deg2rad_", "rad2deg_", "erfc_", "logit_"):
        u = t.clone() / 10 if name == "logit_" else t.clone()
        r = getattr(u, name)()
        out.append((r is u, u))
    v = t.clone()
    v.cumsum_(1)
    w = t.clone()
    w.multiply_(2).subtract_(1).divide_(3)
    return out, v, w
def _legacy_constructors(lib):
    a = lib.Tensor([1, 2, 3])
    b = lib.LongTensor([1, 2])
    c = lib.FloatTensor(np.arange(3))
    return a, b, c, lib.Tensor(2, 3).shape, lib.Tensor(2, 3).dtype, lib.DoubleTensor(2).dtype, lib.Tensor((2, 3)), \
        lib.Tensor().shape, lib.Tensor(lib.Size([2, 3])).shape, \
        isinstance(b, lib.LongTensor), isinstance(b, lib.FloatTensor)
def _legacy_type(lib):
    t = lib.tensor(A)
    return _norm_names(t.type()), _norm_names(t.long().type()), t.type(lib.int64).dtype, \
        t.type(lib.DoubleTensor).dtype


@cases(_ravel_moveaxis_tile, _broadcast_tensors, _tensordot_trace_cross, _diff_cdist, _logaddexp_xlogy,
       _nan_reductions, _var_std_mean, _argwhere_take_along, _baddbmm, _tril_triu_indices, _searchsorted_bucketize,
       _isin, _kthvalue_quantile, _lerp_inplace_ema, _tensor_unfold, _global_settings, _masked_scatter_index_fill,
       _fill_diagonal, _legacy_constructors, _legacy_type, _zero_dim_inputs, _namespace_breadth,
       _scatter_reduce_modes, _index_copy_fill, _exponential_inplace, _half_precision_sort_scan,
       _aliases_and_small_helpers, _more_inplace_forms)
def test_less_common_helpers(case):
    check(case, atol=1e-5, rtol=1e-5)


@cases(_arange_int, _arange_float_step, _arange_start_end_dtype, _arange_float_endpoint, _arange_zero_step,
       _linspace, _linspace_one, _linspace_dtype, _eye, _eye_rect, _full_int, _full_float, _full_bool,
       _zeros_tuple_and_varargs, _ones_dtype, _zeros_like_dtype, _ones_like_int, _full_like, _empty_shape,
       _randint_range, _randint_high_only, _rand_like, _randn_like_int_raises, _randperm,
       _tensor_from_list_dtypes, _tensor_from_numpy_f64, _tensor_scalar_shape, _tensor_device_kw,
       _tensor_ragged_raises, _from_numpy_shares, _as_tensor_keeps, _zeros_negative_raises)
def test_creation(case):
    check(case)


@cases(_rand_shape_dtype, _randn_shape)
def test_random_creation_shapes(case):
    check(case, values=False)


@cases(_int_plus_float_tensor, _int_plus_python_float, _int_times_python_int, _float32_plus_f64_scalar_tensor,
       _f32_plus_f64_tensor, _bool_plus_int, _bool_plus_bool, _int_truediv, _int_truediv_tensor, _floordiv_sign,
       _floor_divide_float, _remainder_sign, _remainder_float, _fmod_sign, _int_pow, _int_pow_float, _rpow,
       _rsub_rdiv, _rsub_int, _neg_abs, _comparison_dtype, _compare_int_with_float, _bool_and_or, _invert_int,
       _inplace_int_plus_float_raises, _inplace_float_plus_int, _matmul_op, _matmul_vec,
       _matmul_batched_broadcast, _matmul_shape_error, _matmul_dtype_mismatch, _add_alpha, _sub_alpha_method,
       _broadcast_error, _result_type)
def test_promotion_and_arithmetic(case):
    check(case)


@cases(_iadd_on_view, _inplace_returns_self, _augmented_assign_keeps_identity, _augmented_assign_bad_operand_raises, _view_shares, _view_noncontig_raises, _reshape_noncontig,
       _view_infer, _view_two_infer_raises, _view_bad_size_raises, _contiguous, _transpose_strides,
       _permute_expand, _expand_minus_one, _size_methods, _squeeze_unsqueeze, _flatten_unflatten, _repeat_tile,
       _type_as, _to_dtype_variants, _float_to_int_truncates, _clone_independent)
def test_views_and_inplace(case):
    check(case)


@cases(_sum_dims, _sum_int_dtype, _sum_dtype_kw, _mean_int_raises, _mean_std_var, _max_no_dim,
       _max_dim_namedtuple, _max_dim_fields, _max_binary, _argmax, _amax_multi, _prod, _all_any, _cumsum,
       _cumsum_neg_dim, _cumprod, _sort, _sort_descending, _sort_int_fields, _argsort, _topk, _topk_smallest_dim0,
       _topk_too_big_raises, _unique, _unique_counts, _unique_method, _logsumexp, _norm, _median_rare,
       _sum_bad_dim_raises, _count_nonzero)
def test_reductions_and_sorting(case):
    check(case)


@cases(_clamp_variants, _where, _where_scalar, _where_single_arg, _masked_fill, _masked_fill_broadcast,
       _masked_fill_float_mask_raises, _gather, _gather_oob_raises, _scatter, _scatter_value, _scatter_add,
       _index_select, _chunk_split, _split_bad_sizes_raises, _stack_cat, _cat_dtype_promotes, _cat_shape_raises,
       _stack_shape_raises, _unbind, _tril_triu, _flip_roll, _unary_math, _more_unary, _rounding,
       _minimum_maximum, _isnan_isinf, _nonzero, _outer_dot, _einsum, _einsum_batched, _multinomial, _bincount,
       _diag, _repeat_interleave, _meshgrid, _addmm_baddbmm, _lerp, _allclose_isclose, _equal, _softmax_method,
       _square_addcmul, _hstack_vstack)
def test_ops(case):
    check(case)


@cases(_item_types, _item_many_raises, _tolist, _numpy, _numpy_requires_grad_raises, _float_int_index,
       _bool_one, _bool_many_raises, _len_iter, _len_scalar_raises, _iter_scalar_raises, _dtype_str,
       _dtype_props, _finfo, _repr_float, _repr_int, _repr_dtype_suffix, _repr_int32_suffix, _repr_nan_inf, _repr_wide_rows_wrap,
       _repr_summarised_2d_3d, _repr_sci_mode, _repr_negative_zero_and_empty, _repr_grad, _repr_scalar,
       _format_scalar, _copy_across_dtype, _fill_zero, _is_tensor, _shape_eq_tuple)
def test_conversion_and_printing(case):
    check(case)


def test_print_of_a_large_tensor_is_summarised():
    # Not compared to torch character by character: only that a big tensor prints briefly.
    s = str(bm.arange(10000).reshape(100, 100))
    assert "..." in s and len(s) < 2000
    assert str(torch.arange(10000).reshape(100, 100)).count("...") > 0
