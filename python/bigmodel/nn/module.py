"""nn.Module: the base class of every layer. Registers parameters, buffers and submodules
assigned as attributes; walks them (named_parameters, modules, ...); state_dict save/load;
train/eval; dtype/device conversion.
"""
from collections import OrderedDict, namedtuple

from .. import _C
from .._autograd import no_grad
from .parameter import Parameter, is_parameter


class StateDictError(RuntimeError, ValueError):
    """load_state_dict found missing/unexpected keys or mismatched shapes.

    A RuntimeError as in PyTorch, and a ValueError as bigmodel reports bad arguments.
    """


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns; prints as PyTorch's when nothing was missing or unexpected."""
    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def zero_grads(params, set_to_none=True):
    """Clears .grad of every tensor in params that has one: to None, or to zeros in place
    (Module.zero_grad; the optimizers' zero_grad does the same over its groups)."""
    for p in params:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            p.grad.zero_()


def _shape(t):
    return tuple(t.shape)


class Module:
    """Base class for layers: subclasses set attributes in __init__ and define forward()."""

    training = True

    def __init__(self):
        # object.__setattr__ bypasses our registration logic for the bookkeeping dicts.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())

    # ---------------------------------------------------------------- registration
    def _check_init(self):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"[Module] {type(self).__name__}.__init__ must call super().__init__() before assigning attributes")

    def register_parameter(self, name, param):
        """Adds a parameter (a tensor made by nn.Parameter, or None) under `name`."""
        self._check_init()
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"[register_parameter] invalid parameter name {name!r}")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"[register_parameter] attribute '{name}' already exists")
        if param is not None and not isinstance(param, _C.Tensor):
            raise TypeError(f"[register_parameter] cannot assign {type(param).__name__} as parameter "
                            f"'{name}' (nn.Parameter or None expected)")
        if param is not None and not is_parameter(param):
            raise TypeError(f"[register_parameter] cannot assign a plain Tensor as parameter '{name}' "
                            "(nn.Parameter or None expected); wrap it: nn.Parameter(t)")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Adds a tensor that is state but not a parameter (e.g. running statistics)."""
        self._check_init()
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"[register_buffer] invalid buffer name {name!r}")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"[register_buffer] attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, _C.Tensor):
            raise TypeError(f"[register_buffer] cannot assign {type(tensor).__name__} as buffer '{name}' "
                            "(Tensor or None expected)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        """Adds a child module under `name` (what attribute assignment does)."""
        self._check_init()
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"[add_module] {type(module).__name__} is not a Module subclass")
        if not isinstance(name, str) or "." in name or name == "":
            raise KeyError(f"[add_module] invalid module name {name!r}")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")
        if is_parameter(value):
            self._check_init()
            self._remove_from(name, d, self._buffers, self._modules)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"[Module] cannot assign {type(value).__name__} as parameter '{name}' "
                                "(nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            self._check_init()
            self._remove_from(name, d, self._parameters, self._buffers)
            self._modules[name] = value
        elif d.get("_modules") is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"[Module] cannot assign {type(value).__name__} as child module '{name}' "
                                "(Module or None expected)")
            self._modules[name] = None
        elif d.get("_buffers") is not None and name in self._buffers:
            if value is not None and not isinstance(value, _C.Tensor):
                raise TypeError(f"[Module] cannot assign {type(value).__name__} as buffer '{name}' "
                                "(Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    @staticmethod
    def _remove_from(name, d, *dicts):
        d.pop(name, None)
        for dd in dicts:
            dd.pop(name, None)

    def __getattr__(self, name):
        # Only called when normal lookup fails: look in the registries.
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            reg = d.get(key)
            if reg is not None and name in reg:
                return reg[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for key in ("_parameters", "_buffers", "_modules"):
            reg = self.__dict__.get(key)
            if reg is not None and name in reg:
                del reg[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # ---------------------------------------------------------------- forward
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"[Module] {type(self).__name__} has no forward() method")

    def __call__(self, *args, **kwargs):
        d = self.__dict__
        if d.get("_forward_pre_hooks") or d.get("_forward_hooks") or d.get("_backward_hooks"):
            return _call_with_hooks(self, args, kwargs)
        return self.forward(*args, **kwargs)

    # ---------------------------------------------------------------- hooks
    def _hook_dict(self, name):
        d = self.__dict__.get(name)
        if d is None:
            d = OrderedDict()
            object.__setattr__(self, name, d)
        return d

    def register_forward_pre_hook(self, hook):
        """hook(module, args) runs before forward; a non-None result replaces args (a tuple, or
        one value). Returns a handle whose remove() unregisters it."""
        return RemovableHandle(self._hook_dict("_forward_pre_hooks"), hook)

    def register_forward_hook(self, hook):
        """hook(module, args, output) runs after forward; a non-None result replaces the output."""
        return RemovableHandle(self._hook_dict("_forward_hooks"), hook)

    def register_full_backward_hook(self, hook):
        """hook(module, grad_input, grad_output) runs when the gradients of the module's tensor
        inputs are computed: grad_output holds the gradients of its outputs, grad_input those of
        its inputs (None for inputs that need no gradient). A non-None result replaces grad_input."""
        return RemovableHandle(self._hook_dict("_backward_hooks"), hook)

    register_backward_hook = register_full_backward_hook

    # ---------------------------------------------------------------- traversal
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """Yields (dotted name, module) for this module and every descendant, once each."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, get, prefix, recurse, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, m in mods:
            for name, v in get(m):
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield mod_prefix + ("." if mod_prefix else "") + name, v

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """Yields (dotted name, parameter); a shared parameter appears once."""
        yield from self._named_members(lambda m: m._parameters.items(), prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members(lambda m: m._buffers.items(), prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target):
        m = self
        for part in target.split(".") if target else []:
            if part not in m._modules or m._modules[part] is None:
                raise AttributeError(f"[get_submodule] {type(m).__name__} has no submodule '{part}'")
            m = m._modules[part]
        return m

    def get_parameter(self, target):
        mod, _, name = target.rpartition(".")
        m = self.get_submodule(mod)
        if name not in m._parameters:
            raise AttributeError(f"[get_parameter] {type(m).__name__} has no parameter '{name}'")
        return m._parameters[name]

    def apply(self, fn):
        """Calls fn(module) on every child (recursively) and then on self; returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---------------------------------------------------------------- modes
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError("[train] training mode is expected to be a bool")
        object.__setattr__(self, "training", mode)
        for m in self.children():
            m.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clears .grad of every parameter: to None (default) or to zeros in place."""
        zero_grads(self.parameters(), set_to_none)

    # ---------------------------------------------------------------- conversion
    def _apply(self, fn):
        """Converts every parameter in place (p.data = fn(p)) and replaces every buffer with fn(b)."""
        for m in self.modules():
            for name, p in list(m._parameters.items()):
                if p is None:
                    continue
                grad = p.grad
                with no_grad():
                    p.data = fn(p.detach())  # same Parameter object: optimizers keep working
                    if grad is not None:
                        p.grad = fn(grad)
            for name, b in list(m._buffers.items()):
                if b is not None:
                    with no_grad():
                        m._buffers[name] = fn(b)
        return self

    def to(self, *args, **kwargs):
        """to(dtype) / to(device) / to(device, dtype): converts floating parameters and buffers.

        Like PyTorch, integer buffers keep their dtype; parameters become new tensors, so
        build the optimizer after calling to().
        """
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)  # bigmodel keeps tensors in the default (contiguous) layout
        if kwargs:
            raise TypeError(f"[Module.to] unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, _C.dtype):
                dtype = a
            elif isinstance(a, _C.Tensor):
                dtype, device = a.dtype, a.device
            elif a is not None:
                device = a
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"[Module.to] only floating point dtypes are accepted, got {dtype}")

        def convert(t):
            target = dtype if (dtype is not None and t.is_floating_point()) else t.dtype
            kw = {"dtype": target}
            if device is not None:
                kw["device"] = device
            out = t.to(**kw)
            return out
        return self._apply(convert)

    def float(self):
        return self.to(_C.dtype.float32)

    def double(self):
        return self.to(_C.dtype.float64)

    def half(self):
        return self.to(_C.dtype.float16)

    def bfloat16(self):
        return self.to(_C.dtype.bfloat16)

    def cpu(self):
        return self.to(device="cpu")

    def cuda(self, device=None):
        return self.to(device=device if device is not None else "cuda")

    # ---------------------------------------------------------------- state dict
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """OrderedDict of dotted name -> tensor (parameters and persistent buffers), detached."""
        out = OrderedDict() if destination is None else destination
        for mod_prefix, m in self.named_modules(prefix=prefix.rstrip("."), remove_duplicate=False):
            base = mod_prefix + "." if mod_prefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    out[base + name] = p if keep_vars else p.detach()
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent_buffers:
                    out[base + name] = b if keep_vars else b.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copies tensors from `state_dict` into this module's parameters and buffers in place.

        Everything is checked before anything is copied, so a failed load changes nothing.
        strict=True: missing or unexpected keys are errors. Returns (missing_keys, unexpected_keys).
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"[load_state_dict] expected a dict-like state_dict, got {type(state_dict).__name__}")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict:
            if missing:
                errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
        pairs = []
        for k, dst in own.items():
            if k not in state_dict:
                continue
            src = state_dict[k]
            if not isinstance(src, _C.Tensor):
                errors.append(f'While copying "{k}": expected a Tensor, got {type(src).__name__}.')
            elif _shape(src) != _shape(dst):
                errors.append(f'size mismatch for {k}: copying a param with shape {list(src.shape)} from '
                              f'checkpoint, the shape in current model is {list(dst.shape)}.')
            else:
                pairs.append((dst, src))
        if errors:
            raise StateDictError(f"[load_state_dict] Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                                 + "\n\t".join(errors))
        with no_grad():
            for dst, src in pairs:
                dst.detach().copy_(src.detach())
        return IncompatibleKeys(missing, unexpected)

    # ---------------------------------------------------------------- repr
    def extra_repr(self):
        """One-line description of this module's own settings (subclasses override)."""
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        head = type(self).__name__ + "("
        if not lines:
            return head + ")"
        if len(lines) == 1 and not self._modules:
            return head + lines[0] + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class RemovableHandle:
    """Returned by the register_*_hook methods; remove() unregisters the hook (also as a
    context manager: `with module.register_forward_hook(f): ...`)."""
    _next_id = 0

    def __init__(self, hooks, hook):
        if not callable(hook):
            raise TypeError(f"[register_hook] hook must be callable, got {type(hook).__name__}")
        RemovableHandle._next_id += 1
        self.id = RemovableHandle._next_id
        self._hooks = hooks
        hooks[self.id] = hook

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _flatten_tensors(obj):
    """The tensors of a tensor / tuple / list output, in order."""
    if isinstance(obj, _C.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _flatten_tensors(o)]
    return []


def _replace_tensors(obj, it):
    if isinstance(obj, _C.Tensor):
        return next(it)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_replace_tensors(o, it) for o in obj)
    return obj


_hook_functions = None


def _backward_hook_functions():
    # Identity autograd functions around the module's inputs and outputs (built on first use:
    # bigmodel.utils imports nn). The output one records grad_output; the input one sees the
    # gradients of exactly the module's inputs and calls the hooks.
    global _hook_functions
    if _hook_functions is None:
        from ..utils.function import Function

        class _Identity(Function):
            # Both directions pass copies of the tensors through; the subclasses' backward
            # differs. state: the hook bookkeeping shared by the pair.
            @staticmethod
            def forward(ctx, state, *tensors):
                ctx.state = state
                return tuple(t.clone() for t in tensors)

        class _ModuleOutputs(_Identity):
            @staticmethod
            def backward(ctx, *grads):
                state = ctx.state
                state["grad_output"] = tuple(grads)
                if not state["inputs_need_grad"]:
                    _run_backward_hooks(state, tuple(None for _ in range(state["n_inputs"])))
                return (None,) + tuple(grads)

        class _ModuleInputs(_Identity):
            @staticmethod
            def backward(ctx, *grads):
                state = ctx.state
                full = [None] * state["n_inputs"]
                for j, g in zip(state["need"], grads):
                    full[j] = g
                res = _run_backward_hooks(state, tuple(full))
                return (None,) + tuple(res[j] for j in state["need"])

        _hook_functions = (_ModuleInputs, _ModuleOutputs)
    return _hook_functions


def _run_backward_hooks(state, grad_input):
    module = state["module"]
    grad_output = state.get("grad_output") or ()
    for hook in list(state["hooks"]):
        res = hook(module, grad_input, grad_output)
        if res is not None:
            res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
            if len(res) != len(grad_input):
                raise ValueError(f"[register_full_backward_hook] hook returned {len(res)} gradients, the module "
                                 f"has {len(grad_input)} tensor inputs")
            grad_input = res
    return grad_input


def _call_with_hooks(module, args, kwargs):
    for hook in list(module.__dict__.get("_forward_pre_hooks", {}).values()):
        res = hook(module, args)
        if res is not None:
            args = res if isinstance(res, tuple) else (res,)
    bw_hooks = module.__dict__.get("_backward_hooks")
    state = None
    if bw_hooks and _C.is_grad_enabled():
        inputs_fn, _ = _backward_hook_functions()
        positions = [i for i, a in enumerate(args) if isinstance(a, _C.Tensor)]
        need = [j for j, i in enumerate(positions) if args[i].requires_grad]  # indices into positions
        state = {"module": module, "hooks": list(bw_hooks.values()), "n_inputs": len(positions),
                 "need": need, "inputs_need_grad": bool(need)}
        if need:
            wrapped = inputs_fn.apply(state, *[args[positions[j]] for j in need])
            args = list(args)
            for j, t in zip(need, wrapped):
                args[positions[j]] = t
            args = tuple(args)
    out = module.forward(*args, **kwargs)
    for hook in list(module.__dict__.get("_forward_hooks", {}).values()):
        res = hook(module, args, out)
        if res is not None:
            out = res
    if state is not None:
        tensors = _flatten_tensors(out)
        grad_pos = [i for i, t in enumerate(tensors) if t.requires_grad]
        if grad_pos:
            _, outputs_fn = _backward_hook_functions()
            wrapped = list(outputs_fn.apply(state, *[tensors[i] for i in grad_pos]))
            for i, t in zip(grad_pos, wrapped):
                tensors[i] = t
            out = _replace_tensors(out, iter(tensors))
    return out


__all__ = ["Module", "StateDictError", "IncompatibleKeys", "RemovableHandle"]
