"""bm.autograd.functional, as torch.autograd.functional: vjp, jvp, jacobian, hessian, hvp and
vhp, built on bm.autograd.grad (reverse mode; jvp and forward-mode products use the double-vjp
trick, create_graph). And bm.autograd.Variable, the legacy wrapper (a tensor now)."""
from . import _C
from ._autograd import enable_grad
from ._autograd_api import grad as _grad


def _tuple(x):
    return (x,) if isinstance(x, _C.Tensor) else tuple(x)


def _prepare(inputs):
    return tuple(t.detach().requires_grad_(True) for t in _tuple(inputs))


def _grads(outputs, inputs, grad_outputs, create_graph):
    outs = _tuple(outputs)
    g = _grad(outs, inputs, grad_outputs=grad_outputs, create_graph=create_graph, allow_unused=True,
              retain_graph=True)
    return tuple(_C.zeros_like(i) if x is None else x for x, i in zip(g, inputs))


def _result(values, single):
    return values[0] if single else values


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): the vector-Jacobian product."""
    single = isinstance(inputs, _C.Tensor)
    xs = _prepare(inputs)
    with enable_grad():
        out = func(*xs)
        vs = None if v is None else _tuple(v)
        g = _grads(out, xs, vs, create_graph)
    detach = (lambda t: t) if create_graph else (lambda t: t.detach())
    return (out if create_graph else (out.detach() if isinstance(out, _C.Tensor) else tuple(o.detach() for o in out)),
            _result(tuple(detach(t) for t in g), single))


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v): the Jacobian-vector product (two reverse passes)."""
    xs = _prepare(inputs)
    vs = _tuple(v) if v is not None else tuple(_C.ones_like(x) for x in xs)
    with enable_grad():
        out = func(*xs)
        outs = _tuple(out)
        dummies = tuple(_C.zeros_like(o).requires_grad_(True) for o in outs)
        g = _grad(outs, xs, grad_outputs=dummies, create_graph=True, allow_unused=True, retain_graph=True)
        pairs = [(gi, vi) for gi, vi in zip(g, vs) if gi is not None]
        res = _grad([p[0] for p in pairs], dummies, grad_outputs=[p[1] for p in pairs], create_graph=create_graph,
                    allow_unused=True, retain_graph=True) if pairs else (None,) * len(dummies)
    res = tuple(_C.zeros_like(o) if r is None else (r if create_graph else r.detach()) for r, o in zip(res, outs))
    out_d = out.detach() if isinstance(out, _C.Tensor) else tuple(o.detach() for o in out)
    return out_d, (res[0] if isinstance(out, _C.Tensor) else res)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """d func / d inputs: shape output.shape + input.shape (tuples of them for several)."""
    single_in = isinstance(inputs, _C.Tensor)
    xs = _prepare(inputs)
    with enable_grad():
        out = func(*xs)
        single_out = isinstance(out, _C.Tensor)
        outs = _tuple(out)
        result = []
        for o in outs:
            flat = o.reshape(-1)
            rows = [[] for _ in xs]
            for k in range(flat.numel()):
                gs = _grad([flat[k]], xs, create_graph=create_graph, allow_unused=True, retain_graph=True)
                for j, (gj, x) in enumerate(zip(gs, xs)):
                    rows[j].append(_C.zeros_like(x) if gj is None else gj)
            per_input = tuple((_C.stack(r, 0) if r else _C.zeros(0, *x.shape)).reshape(*o.shape, *x.shape)
                              for r, x in zip(rows, xs))
            if not create_graph:
                per_input = tuple(t.detach() for t in per_input)
            result.append(per_input[0] if single_in else per_input)
    return result[0] if single_out else tuple(result)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar function: jacobian of its gradient."""
    single = isinstance(inputs, _C.Tensor)

    def grad_fn(*xs):
        with enable_grad():
            out = func(*xs)
            g = _grad([out], xs, create_graph=True, allow_unused=True, retain_graph=True)
        return tuple(_C.zeros_like(x) if gi is None else gi for gi, x in zip(g, xs))
    jac = jacobian(lambda *xs: grad_fn(*xs)[0] if single else grad_fn(*xs), inputs, create_graph=create_graph)
    return jac


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H)."""
    single = isinstance(inputs, _C.Tensor)
    xs = _prepare(inputs)
    vs = _tuple(v) if v is not None else tuple(_C.ones_like(x) for x in xs)
    with enable_grad():
        out = func(*xs)
        g = _grad([out], xs, create_graph=True, allow_unused=True, retain_graph=True)
        pairs = [(gi, vi) for gi, vi in zip(g, vs) if gi is not None]
        h = _grad([p[0] for p in pairs], xs, grad_outputs=[p[1] for p in pairs], create_graph=create_graph,
                  allow_unused=True, retain_graph=True)
    h = tuple(_C.zeros_like(x) if r is None else (r if create_graph else r.detach()) for r, x in zip(h, xs))
    return out.detach(), _result(h, single)


hvp = vhp  # the Hessian is symmetric for twice-differentiable functions


def Variable(data, requires_grad=False, volatile=False):  # noqa: N802  (PyTorch's legacy name)
    """The legacy autograd.Variable: a tensor (sharing data's memory) with requires_grad set."""
    t = data if isinstance(data, _C.Tensor) else _C.Tensor(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp", "Variable"]
