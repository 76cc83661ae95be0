"""optim.Optimizer: parameter groups with per-group options, per-parameter state, zero_grad,
state_dict/load_state_dict in PyTorch's layout (parameters referred to by index; float32 master
copies of half parameters travel as state['master_param']), and an opt-in skip of steps whose
gradients hold NaN/Inf.
"""
import copy
import warnings
from collections import defaultdict

from .. import _C
from .._autograd import enable_grad, no_grad
from ..nn.module import zero_grads


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class: subclasses pass their defaults dict and implement _update_group().

    Non-finite gradients: set `opt.skip_nonfinite = True` (or pass skip_nonfinite=True to
    this base constructor) and step() first checks every gradient; if any holds NaN or Inf
    the whole step is skipped (no parameter or state changes), a RuntimeWarning names the
    first bad parameter, `opt.skipped_steps` counts the skipped steps and
    `opt.last_step_skipped` tells about the latest one. Off by default (the check costs one
    reduction per parameter).
    """

    def __init__(self, params, defaults, skip_nonfinite=False):
        self.skip_nonfinite = bool(skip_nonfinite)
        self.skipped_steps = 0
        self.last_step_skipped = False
        self.defaults = dict(defaults)
        self.state = defaultdict(dict)  # keyed by the parameter tensor itself (hashed by identity)
        self.param_groups = []
        if isinstance(params, _C.Tensor):
            raise TypeError("[optim] params argument given to the optimizer should be an iterable of Tensors "
                            "or dicts, but got a Tensor")
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("[optim] optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group):
        """Adds a group {"params": [...], option: value, ...}; unset options take the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"[optim] param group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        params = [params] if isinstance(params, _C.Tensor) else list(params)
        for p in params:
            if not isinstance(p, _C.Tensor):
                raise TypeError(f"[optim] optimizer can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("[optim] can't optimize a non-leaf Tensor")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("[optim] optimizer contains a parameter group with duplicate parameters")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"[optim] parameter group didn't specify a value of required option '{name}'")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("[optim] some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            zero_grads(group["params"], set_to_none)

    def step(self, closure=None):
        """Updates every parameter that has a gradient; with a closure, first re-evaluates the
        loss under grad mode and returns it."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            self.last_step_skipped = False
            if self.skip_nonfinite:
                bad = self._first_nonfinite_grad()
                if bad is not None:
                    self.last_step_skipped = True
                    self.skipped_steps += 1
                    warnings.warn(f"[optim] step skipped: non-finite gradient in parameter {bad[1]} of group {bad[0]} "
                                  f"({self.skipped_steps} steps skipped so far)", RuntimeWarning, stacklevel=2)
                    return loss
            for group in self.param_groups:
                self._update_group(group)
        return loss

    def _first_nonfinite_grad(self):
        """(group index, index in group) of the first gradient holding NaN/Inf, or None. The
        per-parameter flags are combined on the device so there is one host sync per step."""
        where, flags = [], []
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                g = p.grad
                if g is not None and g.is_floating_point() and g.numel() > 0:
                    where.append((gi, pi))
                    flags.append(_C.isfinite(g).all().reshape(1))
        if not flags:
            return None
        ok = _C.cat(flags, 0)
        if bool(ok.all().item()):
            return None
        return where[int(ok.cpu().numpy().argmin())]

    def _update_group(self, group):
        """One group's in-place update (grad mode is off). Each optimizer defines it."""
        raise NotImplementedError(f"[optim] {type(self).__name__} does not implement _update_group()")

    def _params(self):
        return [p for g in self.param_groups for p in g["params"]]

    def _with_grad(self, group):
        """(p, its state dict) for each parameter of the group that has a gradient."""
        for p in group["params"]:
            if p.grad is not None:
                yield p, self.state[p]

    def state_dict(self):
        """{'state': {index: {name: value}}, 'param_groups': [{options..., 'params': [index...]}]}."""
        index = {id(p): i for i, p in enumerate(self._params())}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = [index[id(p)] for p in g["params"]]
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restores options and per-parameter state (tensors are copied, cast to the parameter's dtype)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"[optim] loaded state dict has {len(groups)} parameter groups, "
                             f"the optimizer has {len(self.param_groups)}")
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"[optim] loaded state dict has a group ({i}) of {len(saved['params'])} parameters "
                                 f"where the optimizer's group has {len(own['params'])}")
        id_map = {}
        for saved, own in zip(groups, self.param_groups):
            for idx, p in zip(saved["params"], own["params"]):
                id_map[idx] = p
        new_state = defaultdict(dict)
        for idx, s in state_dict["state"].items():
            if idx not in id_map:
                raise ValueError(f"[optim] loaded state refers to parameter index {idx}, which does not exist")
            p = id_map[idx]
            new_state[p] = {k: self._cast_state(p, k, v) for k, v in s.items()}
        self.state = new_state
        for saved, own in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    own[k] = copy.deepcopy(v)

    def _state_dtype(self, param):
        """The dtype of param's floating state (SGD/Adam/AdamW: float32 for half parameters)."""
        return param.dtype

    def _cast_state(self, param, key, value):
        """A loaded state value for param: tensors are copied onto its device; floating state in
        the optimizer's state dtype, master copies ('master_param') kept float32."""
        if not isinstance(value, _C.Tensor):
            return copy.deepcopy(value)
        with no_grad():
            v = value.detach()
            if key == "master_param":
                v = v.to(dtype=_C.dtype.float32, device=param.device)
            elif key != "step" and v.is_floating_point():
                v = v.to(dtype=self._state_dtype(param), device=param.device)
            return v.contiguous().clone()

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in g if k != "params"):
                lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)


__all__ = ["Optimizer", "required"]
