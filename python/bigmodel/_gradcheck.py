"""gradcheck: compares autograd gradients with central finite differences in float64."""
import numpy as np

from . import _C


def _as_np(t):
    t = t.detach()
    return (t.cpu() if t.is_cuda else t).numpy().astype(np.float64)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Checks d(sum(fn(*inputs) * w))/d(input) for every float64 input with requires_grad.

    A random weight w makes every output element count with a different factor. Returns
    True, or raises AssertionError naming the input and the worst element.
    """
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    rng = np.random.default_rng(0)
    out = fn(*inputs)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    outs = [o for o in outs if isinstance(o, _C.Tensor) and o.is_floating_point()]
    weights = [_C._from_numpy_copy(rng.standard_normal(o.shape)).to(o.device) for o in outs]

    def objective():
        with _C_no_grad():
            res = fn(*inputs)
        res = list(res) if isinstance(res, (list, tuple)) else [res]
        res = [o for o in res if isinstance(o, _C.Tensor) and o.is_floating_point()]
        return sum(float((_as_np(o) * _as_np(w)).sum()) for o, w in zip(res, weights))

    for t in inputs:
        if isinstance(t, _C.Tensor) and t.requires_grad:
            if t.dtype != _C.dtype.float64:
                raise ValueError("[gradcheck] inputs that require grad must be float64")
            t.grad = None
    total = None
    for o, w in zip(outs, weights):
        term = (o * w).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("[gradcheck] fn returned no floating point tensor")
    total.backward()

    for k, t in enumerate(inputs):
        if not (isinstance(t, _C.Tensor) and t.requires_grad):
            continue
        analytic = np.zeros(t.shape) if t.grad is None else _as_np(t.grad)
        numeric = np.zeros(t.shape)
        if not t.is_contiguous():
            raise ValueError("[gradcheck] inputs must be contiguous")
        # A CPU input is perturbed in place through NumPy (shared memory); a CUDA input through
        # a host copy written back before each evaluation.
        data = t.detach().cpu().numpy().copy() if t.is_cuda else t.detach().numpy()
        flat = data.reshape(-1)

        def poke(i, value):
            flat[i] = value
            if t.is_cuda:
                t.detach().copy_(_C._from_numpy_copy(data).to(t.device))

        for i in range(flat.size):
            orig = flat[i]
            poke(i, orig + eps)
            plus = objective()
            poke(i, orig - eps)
            minus = objective()
            poke(i, orig)
            numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        err = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if (err > 0).any():
            i = int(np.argmax(err))
            msg = (f"[gradcheck] input {k} of shape {tuple(t.shape)}: element {i} analytic "
                   f"{analytic.reshape(-1)[i]:.8g} vs numeric {numeric.reshape(-1)[i]:.8g}")
            if raise_exception:
                raise AssertionError(msg)
            return False
    return True


class _C_no_grad:
    def __enter__(self):
        self.prev = _C.is_grad_enabled()
        _C.set_grad_enabled(False)

    def __exit__(self, *exc):
        _C.set_grad_enabled(self.prev)
