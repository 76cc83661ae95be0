"""PyTorch parity sweep, torch.linalg and random draws with tensor arguments: norms, inverse,
solve, determinants with their gradients, and the factorizations' values (see _parity.py)."""
import numpy as np
import pytest

from _parity import bm, cases, check

R = np.random.default_rng(29)
A = R.standard_normal((2, 3, 3)) + 3 * np.eye(3)
B = R.standard_normal((2, 3, 2))
V = R.standard_normal((4, 5))
SPD = A @ np.swapaxes(A, -1, -2) + np.eye(3)


def L(lib):
    return lib.linalg


def _norms(lib):
    v, a = lib.tensor(V), lib.tensor(A)
    n = L(lib)
    return n.vector_norm(v), n.vector_norm(v, 1, dim=1), n.vector_norm(v, float("inf"), dim=0, keepdim=True), \
        n.vector_norm(v, 3.5), n.matrix_norm(a), n.matrix_norm(a, 1), n.matrix_norm(a, float("inf")), \
        n.norm(v), n.norm(v, dim=1), n.norm(a[0], "fro"), n.matrix_norm(a, "nuc"), n.matrix_norm(a, 2)
def _norm_grads(lib):
    v = lib.tensor(V, requires_grad=True)
    (L(lib).vector_norm(v, dim=1).sum() + L(lib).matrix_norm(v) + L(lib).vector_norm(v, 1)).backward()
    return v.grad
def _inv_solve_det(lib):
    a, b = lib.tensor(A, requires_grad=True), lib.tensor(B, requires_grad=True)
    n = L(lib)
    out = (n.inv(a).pow(2).sum() + n.solve(a, b).sum() + n.det(a).sum() + n.slogdet(a)[1].sum()
           + n.solve(a, b[..., 0]).pow(2).sum())
    out.backward()
    return n.inv(a), n.solve(a, b), n.det(a), n.slogdet(a), a.grad, b.grad
def _factorizations(lib):
    n = L(lib)
    a, s = lib.tensor(A), lib.tensor(SPD)
    u, sv, vh = n.svd(a)
    w, q = n.eigh(s)
    qq, rr = n.qr(a)
    return sv, n.svdvals(a), w, n.eigvalsh(s), n.cholesky(s), (qq @ rr), n.pinv(a), n.matrix_rank(a), \
        (u @ (sv.unsqueeze(-1) * vh)), (q * w.unsqueeze(-2)) @ q.transpose(-2, -1)
def _singular_raises(lib): return L(lib).inv(lib.zeros(3, 3, dtype=lib.float64))
def _nonsquare_raises(lib): return L(lib).det(lib.tensor(B))
def _normal_tensor_args(lib):
    lib.manual_seed(0)
    s = lib.normal(lib.zeros(2, 3), lib.ones(2, 3))
    t = lib.normal(lib.tensor([1.0, 2.0]), 0.5)
    return s.shape, s.dtype, t.shape, lib.normal(0.0, 1.0, (4,)).shape


@cases(_norms, _norm_grads, _inv_solve_det, _factorizations, _singular_raises, _nonsquare_raises, _normal_tensor_args)
def test_linalg(case):
    check(case, atol=1e-8, rtol=1e-7)


def test_factorization_backward_says_so():
    a = bm.tensor(A, requires_grad=True)
    with pytest.raises(NotImplementedError, match=r"\[linalg.svd\]"):
        bm.linalg.svd(a)[1].sum().backward()


def test_gradcheck_inv_solve_det():
    a = bm.tensor(A[0], requires_grad=True)
    b = bm.tensor(B[0], requires_grad=True)
    assert bm.autograd.gradcheck(lambda x: bm.linalg.inv(x), [a])
    assert bm.autograd.gradcheck(lambda x, y: bm.linalg.solve(x, y), [a, b])
    assert bm.autograd.gradcheck(lambda x: bm.linalg.det(x), [a])
    assert bm.autograd.gradcheck(lambda x: bm.linalg.slogdet(x)[1], [a])
