"""Weight reparameterisations applied before every forward (torch.nn.utils' classic API):
weight_norm (weight = g * v / ||v||, Salimans & Kingma 2016) and spectral_norm (weight divided
by its largest singular value, estimated by power iteration, Miyato et al. 2018), with
remove_weight_norm / remove_spectral_norm. Parameter and buffer names match PyTorch's
(weight_g / weight_v; weight_orig, weight_u, weight_v), so state_dicts interchange."""
from ... import _C
from ..._autograd import no_grad
from ..parameter import Parameter


def _norm_except_dim(v, dim):
    if dim is None:
        return v.norm()
    d = dim % v.ndim
    dims = [i for i in range(v.ndim) if i != d]
    return (v * v).sum(dims, keepdim=True).sqrt() if dims else v.abs()


class _WeightNorm:
    def __init__(self, name, dim):
        self.name, self.dim = name, dim

    def compute(self, module):
        g, v = getattr(module, self.name + "_g"), getattr(module, self.name + "_v")
        return v * (g / _norm_except_dim(v, self.dim))

    def __call__(self, module, inputs):
        object.__setattr__(module, self.name, self.compute(module))


def weight_norm(module, name="weight", dim=0):
    """Replaces module.<name> by <name>_g (magnitude) and <name>_v (direction) parameters."""
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"[weight_norm] {type(module).__name__} has no parameter '{name}'")
    fn = _WeightNorm(name, dim)
    del module._parameters[name]
    module.register_parameter(name + "_g", Parameter(_norm_except_dim(weight.detach(), dim).clone()))
    module.register_parameter(name + "_v", Parameter(weight.detach().clone()))
    object.__setattr__(module, name, fn.compute(module))
    handle = module.register_forward_pre_hook(fn)
    module.__dict__.setdefault("_weight_norm_hooks", {})[name] = (handle, fn)
    return module


def remove_weight_norm(module, name="weight"):
    hooks = module.__dict__.get("_weight_norm_hooks", {})
    if name not in hooks:
        raise ValueError(f"[remove_weight_norm] weight_norm of '{name}' not found in {type(module).__name__}")
    handle, fn = hooks.pop(name)
    with no_grad():
        w = fn.compute(module)
    handle.remove()
    del module._parameters[name + "_g"], module._parameters[name + "_v"]
    module.__dict__.pop(name, None)
    module.register_parameter(name, Parameter(w.detach().clone()))
    return module


def _normalize(t, eps):
    return t / _C.clamp_min(t.norm(), eps)


class _SpectralNorm:
    def __init__(self, name, n_power_iterations, dim, eps):
        self.name, self.n, self.dim, self.eps = name, n_power_iterations, dim, eps

    def _matrix(self, w):
        if self.dim != 0:
            w = w.movedim(self.dim, 0)
        return w.reshape(w.shape[0], -1)

    def compute(self, module, do_power_iteration):
        w = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        mat = self._matrix(w)
        if do_power_iteration:
            with no_grad():
                m = mat.detach()
                for _ in range(self.n):
                    v.copy_(_normalize(m.t() @ u, self.eps))
                    u.copy_(_normalize(m @ v, self.eps))
            u, v = u.clone(), v.clone()
        sigma = (u * (mat @ v)).sum()
        return w / sigma

    def __call__(self, module, inputs):
        object.__setattr__(module, self.name, self.compute(module, module.training))


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Divides module.<name> by its spectral norm before every forward (power iteration
    updates the estimate in training mode)."""
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"[spectral_norm] {type(module).__name__} has no parameter '{name}'")
    if n_power_iterations <= 0:
        raise ValueError(f"[spectral_norm] expected n_power_iterations > 0, got {n_power_iterations}")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    fn = _SpectralNorm(name, n_power_iterations, dim, eps)
    mat = fn._matrix(weight.detach())
    h, w = mat.shape
    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    module.register_buffer(name + "_u", _normalize(_C.randn(h, dtype=weight.dtype, device=weight.device), eps))
    module.register_buffer(name + "_v", _normalize(_C.randn(w, dtype=weight.dtype, device=weight.device), eps))
    object.__setattr__(module, name, weight.detach().clone())
    handle = module.register_forward_pre_hook(fn)
    module.__dict__.setdefault("_spectral_norm_hooks", {})[name] = (handle, fn)
    return module


def remove_spectral_norm(module, name="weight"):
    hooks = module.__dict__.get("_spectral_norm_hooks", {})
    if name not in hooks:
        raise ValueError(f"[remove_spectral_norm] spectral_norm of '{name}' not found in {type(module).__name__}")
    handle, fn = hooks.pop(name)
    with no_grad():
        w = fn.compute(module, False)
    handle.remove()
    del module._parameters[name + "_orig"]
    del module._buffers[name + "_u"], module._buffers[name + "_v"]
    module.__dict__.pop(name, None)
    module.register_parameter(name, Parameter(w.detach().clone()))
    return module


__all__ = ["weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm"]
