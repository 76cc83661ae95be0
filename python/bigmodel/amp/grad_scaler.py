"""bm.amp.GradScaler: dynamic loss scaling for float16 training (PyTorch's rules).

scale(loss) multiplies by the current scale; unscale_(opt) divides that optimizer's
gradients by it and notes whether any is inf/NaN; step(opt) unscales if needed and skips
optimizer.step() when one was; update() then backs the scale off (x backoff_factor) after a
skipped step, or grows it (x growth_factor) after growth_interval clean steps in a row.
The scale is a Python float. unscale_ is fused: the gradients are bucketed by (device, dtype)
and each bucket is multiplied by 1/scale and checked for inf/NaN in one multi-tensor pass
(_C._fused_unscale_, which accumulates into a float32 found_inf flag on the device), so a step
costs one flag read per device; a non-contiguous gradient is unscaled on its own. A skipped
step leaves parameters and optimizer state (master weights included) untouched.
"""
import math

from .. import _C
from .._autograd import no_grad

_READY, _UNSCALED, _STEPPED = 0, 1, 2


class GradScaler:
    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        if isinstance(device, str) and device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"[GradScaler] device must be 'cpu' or 'cuda', got {device!r}")
        if not init_scale > 0:
            raise ValueError(f"[GradScaler] init_scale must be > 0, got {init_scale}")
        if not growth_factor > 1.0:
            raise ValueError(f"[GradScaler] growth_factor must be > 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"[GradScaler] backoff_factor must be in (0, 1), got {backoff_factor}")
        if not (isinstance(growth_interval, int) and growth_interval > 0):
            raise ValueError(f"[GradScaler] growth_interval must be a positive int, got {growth_interval}")
        self._enabled = bool(enabled)
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = growth_interval
        self._growth_tracker = 0
        self._per_optimizer = {}  # id(optimizer) -> {"stage", "found_inf"}

    def is_enabled(self):
        return self._enabled

    def get_scale(self):
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self):
        return self._growth_factor

    def get_backoff_factor(self):
        return self._backoff_factor

    def get_growth_interval(self):
        return self._growth_interval

    def scale(self, outputs):
        """outputs * scale (a tensor, or nested lists/tuples of tensors)."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, _C.Tensor):
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError("[GradScaler.scale] expected a Tensor or a list/tuple of Tensors, got "
                        f"{type(outputs).__name__}")

    def _state(self, optimizer):
        return self._per_optimizer.setdefault(id(optimizer), {"stage": _READY, "found_inf": False})

    def unscale_(self, optimizer):
        """Divides optimizer's gradients by the scale in place; records whether any is inf/NaN."""
        if not self._enabled:
            return
        st = self._state(optimizer)
        if st["stage"] == _UNSCALED:
            raise RuntimeError("[GradScaler.unscale_] unscale_() has already been called on this optimizer "
                               "since the last update()")
        if st["stage"] == _STEPPED:
            raise RuntimeError("[GradScaler.unscale_] unscale_() is being called after step()")
        inv = 1.0 / self._scale
        buckets, loose = {}, []
        for group in optimizer.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if g.is_floating_point() and g.is_contiguous():
                    buckets.setdefault((str(g.device), g.dtype), []).append(g)
                else:
                    loose.append(g)
        found = False
        with no_grad():
            flags = {}  # device -> float32 found_inf flag, shared by that device's buckets
            for (dev, _), grads in buckets.items():
                if dev not in flags:
                    flags[dev] = (_C.zeros([1], dtype=_C.dtype.float32, device=grads[0].device),
                                  _C.full([1], inv, dtype=_C.dtype.float32, device=grads[0].device))
                found_inf, inv_scale = flags[dev]
                _C._fused_unscale_([g.detach() for g in grads], found_inf, inv_scale)
            for g in loose:
                if not found and not bool(_C.isfinite(g).all().item()):
                    found = True
                g.mul_(inv)
            for found_inf, _ in flags.values():  # one read per device
                found = found or float(found_inf.item()) != 0.0
        st["found_inf"] = found
        st["stage"] = _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscales (if not done yet) and runs optimizer.step() unless a gradient was inf/NaN.
        Returns optimizer.step()'s value, or None when the step was skipped."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        st = self._state(optimizer)
        if st["stage"] == _STEPPED:
            raise RuntimeError("[GradScaler.step] step() has already been called since the last update()")
        if st["stage"] == _READY:
            self.unscale_(optimizer)
        result = None if st["found_inf"] else optimizer.step(*args, **kwargs)
        st["stage"] = _STEPPED
        return result

    def update(self, new_scale=None):
        """Adjusts the scale from this iteration's inf checks (or sets new_scale) and resets them."""
        if not self._enabled:
            return
        if new_scale is not None:
            new_scale = float(new_scale.item() if isinstance(new_scale, _C.Tensor) else new_scale)
            if not (new_scale > 0 and math.isfinite(new_scale)):
                raise ValueError(f"[GradScaler.update] new_scale must be a positive finite number, got {new_scale}")
            self._scale = new_scale
        else:
            if not self._per_optimizer:
                raise RuntimeError("[GradScaler.update] no inf checks were recorded prior to update(); call "
                                   "scaler.step(optimizer) (or unscale_) first")
            if any(st["found_inf"] for st in self._per_optimizer.values()):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def state_dict(self):
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor, "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict):
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError("[GradScaler.load_state_dict] the state_dict is empty (saved from a disabled scaler?)")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
