"""bm.linalg, as torch.linalg: norms (composed from ops, differentiable), inv / solve / det /
slogdet (LAPACK through NumPy on the host, with gradients written with ops), and the
factorizations svd / svdvals / eigh / eigvalsh / qr / cholesky / pinv / matrix_rank
(host NumPy; forward only: their backward raises NotImplementedError). Inputs may be
batched (..., M, N); a CUDA tensor is copied to the host and back."""
import numpy as np

from . import _C
from .utils.function import Function


def _host(t):
    x = t.detach().cpu()
    return (x.float() if x.dtype == _C.dtype.bfloat16 else x).numpy()


def _back(arr, like, dtype=None):
    t = _C._from_numpy_copy(np.array(arr, order="C"))
    t = t.to(dtype or like.dtype)
    return t if like.device.type == "cpu" else t.to(like.device)


def _check_square(op, a):
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise _C.ShapeError(f"[linalg.{op}] expected a batch of square matrices, got shape {list(a.shape)}")
    if not a.is_floating_point():
        raise _C.DTypeError(f"[linalg.{op}] expected a floating point tensor, got {a.dtype}")


def _mT(t):
    return t.transpose(-2, -1)


class LinAlgError(RuntimeError):
    """A matrix that the operation can't take (singular, not positive definite, ...)."""


def _lapack(op, fn, *arrays):
    try:
        return fn(*arrays)
    except np.linalg.LinAlgError as e:
        raise LinAlgError(f"[linalg.{op}] {e}") from None


def _rt(name, fields):
    from ._sort_scan import _return_type
    return _return_type(name, fields)


# ---- norms ----
def vector_norm(x, ord=2, dim=None, keepdim=False, dtype=None):
    """The ord-norm of x over dim (all elements when None): 2, 1, inf, -inf, 0 or any p."""
    x = x.to(dtype) if dtype is not None else x
    if not x.is_floating_point():
        raise _C.DTypeError(f"[linalg.vector_norm] expected a floating point tensor, got {x.dtype}")
    if x.ndim == 0:
        x = x.reshape(1)
        dims = [0]
    else:
        dims = list(range(x.ndim)) if dim is None else ([dim] if isinstance(dim, int) else list(dim))
    a = x.abs()
    if ord == float("inf"):
        return a.amax(dims, keepdim)
    if ord == float("-inf"):
        return a.amin(dims, keepdim)
    if ord == 0:
        return (a != 0).to(x.dtype).sum(dims, keepdim=keepdim)
    if ord == 1:
        return a.sum(dims, keepdim=keepdim)
    if ord == 2:
        return _C.sqrt((x * x).sum(dims, keepdim=keepdim))
    return a.pow(ord).sum(dims, keepdim=keepdim).pow(1.0 / ord)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, dtype=None):
    A = A.to(dtype) if dtype is not None else A
    if ord == "fro":
        return _C.sqrt((A * A).sum(list(dim), keepdim=keepdim))
    if ord in (1, -1, float("inf"), float("-inf")):
        col = ord in (1, -1)
        s = A.abs().sum(dim[0] if col else dim[1], keepdim=True)
        r = s.amax(list(dim), keepdim) if ord > 0 else s.amin(list(dim), keepdim)
        return r
    if ord in ("nuc", 2, -2):
        sv = svdvals(A if dim in ((-2, -1), (A.ndim - 2, A.ndim - 1)) else A.movedim(dim, (-2, -1)))
        r = sv.sum(-1) if ord == "nuc" else (sv.amax(-1) if ord == 2 else sv.amin(-1))
        return r.reshape(*r.shape, 1, 1) if keepdim else r
    raise _C.InvalidArgumentError(f"[linalg.matrix_norm] unsupported ord {ord!r}")


def norm(A, ord=None, dim=None, keepdim=False, dtype=None):
    if ord is None:
        return vector_norm(A, 2, dim, keepdim, dtype) if dim is None or isinstance(dim, int) or len(dim) == 1 \
            else matrix_norm(A, "fro", dim, keepdim, dtype)
    if isinstance(ord, str) or (dim is not None and not isinstance(dim, int) and len(dim) == 2) or \
            (dim is None and A.ndim == 2):
        return matrix_norm(A, ord, dim if dim is not None else (-2, -1), keepdim, dtype)
    return vector_norm(A, ord, dim, keepdim, dtype)


# ---- inverse, solve, determinant (differentiable) ----
class _Inv(Function):
    @staticmethod
    def forward(ctx, a):
        out = _back(_lapack("inv", np.linalg.inv, _host(a)), a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        ai, = ctx.saved_tensors
        return -(_mT(ai) @ g @ _mT(ai))


class _Solve(Function):
    @staticmethod
    def forward(ctx, a, b):
        bb = _host(b)
        vec = b.ndim == a.ndim - 1
        x = _lapack("solve", np.linalg.solve, _host(a), bb[..., None] if vec else bb)
        out = _back(x[..., 0] if vec else x, b)
        ctx.vec = vec
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, x = ctx.saved_tensors
        gb = solve(_mT(a), g)
        if ctx.vec:
            return -(gb.unsqueeze(-1) @ x.unsqueeze(-2)), gb
        return -(gb @ _mT(x)), gb


class _Det(Function):
    @staticmethod
    def forward(ctx, a):
        out = _back(np.asarray(np.linalg.det(_host(a))), a)
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, d = ctx.saved_tensors
        return (g * d).reshape(*d.shape, 1, 1) * _mT(inv(a))


def inv(A):
    _check_square("inv", A)
    return _Inv.apply(A)


def solve(A, B, left=True):
    _check_square("solve", A)
    if not left:
        return _mT(solve(_mT(A), _mT(B)))
    if A.dtype != B.dtype:
        raise _C.DTypeError(f"[linalg.solve] A ({A.dtype}) and B ({B.dtype}) must have the same dtype")
    rows = B.shape[-1] if B.ndim == A.ndim - 1 else B.shape[-2]
    if rows != A.shape[-1]:
        raise _C.ShapeError(f"[linalg.solve] A {list(A.shape)} and B {list(B.shape)} do not fit")
    return _Solve.apply(A, B)


def det(A):
    _check_square("det", A)
    return _Det.apply(A)


class _LogAbsDet(Function):
    @staticmethod
    def forward(ctx, a):
        sign, logabs = np.linalg.slogdet(_host(a))
        ctx.sign = sign
        ctx.save_for_backward(a)
        return _back(np.asarray(logabs), a)

    @staticmethod
    def backward(ctx, g):
        a, = ctx.saved_tensors
        return g.reshape(*a.shape[:-2], 1, 1) * _mT(inv(a))


def slogdet(A):
    """(sign, log|det A|); the log carries the gradient."""
    _check_square("slogdet", A)
    sign = np.linalg.slogdet(_host(A))[0]
    return _rt("linalg_slogdet", ["sign", "logabsdet"])(_back(np.asarray(sign), A), _LogAbsDet.apply(A))


# ---- factorizations (forward only) ----
class _NoBackward(Function):
    @staticmethod
    def forward(ctx, name, a, *outs):
        ctx.name = name
        return tuple(o.clone() for o in outs) if len(outs) > 1 else outs[0].clone()

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError(f"[linalg.{ctx.name}] has no backward in bigmodel")


def _wrap(name, a, outs):
    if a.requires_grad:
        res = _NoBackward.apply(name, a, *outs)
        return res if isinstance(res, tuple) else (res,)
    return outs


def svd(A, full_matrices=True):
    if A.ndim < 2:
        raise _C.ShapeError(f"[linalg.svd] expected at least 2 dims, got shape {list(A.shape)}")
    u, s, vh = _lapack("svd", lambda a: np.linalg.svd(a, full_matrices=full_matrices), _host(A))
    return _rt("linalg_svd", ["U", "S", "Vh"])(*_wrap("svd", A, (_back(u, A), _back(s, A), _back(vh, A))))


def svdvals(A):
    s = _lapack("svdvals", lambda a: np.linalg.svd(a, compute_uv=False), _host(A))
    return _wrap("svdvals", A, (_back(s, A),))[0]


def eigh(A, UPLO="L"):
    _check_square("eigh", A)
    w, v = _lapack("eigh", lambda a: np.linalg.eigh(a, UPLO), _host(A))
    return _rt("linalg_eigh", ["eigenvalues", "eigenvectors"])(*_wrap("eigh", A, (_back(w, A), _back(v, A))))


def eigvalsh(A, UPLO="L"):
    _check_square("eigvalsh", A)
    return _wrap("eigvalsh", A, (_back(_lapack("eigvalsh", lambda a: np.linalg.eigvalsh(a, UPLO), _host(A)), A),))[0]


def qr(A, mode="reduced"):
    q, r = _lapack("qr", lambda a: np.linalg.qr(a, mode=mode), _host(A))
    return _rt("linalg_qr", ["Q", "R"])(*_wrap("qr", A, (_back(q, A), _back(r, A))))


def cholesky(A, upper=False):
    _check_square("cholesky", A)
    lo = _lapack("cholesky", np.linalg.cholesky, _host(A))
    out = np.swapaxes(lo, -1, -2).conj() if upper else lo
    return _wrap("cholesky", A, (_back(out, A),))[0]


def pinv(A, rcond=None, hermitian=False, atol=None, rtol=None):
    r = 1e-15 if rcond is None and rtol is None else (rtol if rtol is not None else rcond)
    return _wrap("pinv", A, (_back(_lapack("pinv", lambda a: np.linalg.pinv(a, rcond=r, hermitian=hermitian),
                                               _host(A)), A),))[0]


def matrix_rank(A, tol=None, hermitian=False):
    r = np.linalg.matrix_rank(_host(A), tol=tol, hermitian=hermitian)
    return _back(np.asarray(r, dtype=np.int64), A, _C.dtype.int64)


__all__ = ["LinAlgError", "vector_norm", "matrix_norm", "norm", "inv", "solve", "det", "slogdet", "svd", "svdvals", "eigh",
           "eigvalsh", "qr", "cholesky", "pinv", "matrix_rank"]
