"""optim.lr_scheduler: learning-rate schedules with PyTorch's names, arguments and
state_dict. Every schedule here is computed in closed form from the base LRs and
last_epoch, so step(epoch), resuming from a state_dict and SequentialLR all agree exactly.
"""
import math
from bisect import bisect_right

from .optimizer import Optimizer


class LRScheduler:
    """Base: remembers each group's initial_lr, steps last_epoch, writes get_lr() into the groups."""

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"[lr_scheduler] {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"[lr_scheduler] param 'initial_lr' is not specified in param_groups[{i}] "
                                   "when resuming an optimizer")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        self.step()

    def get_lr(self):
        """The LRs for self.last_epoch, one per param group."""
        raise NotImplementedError

    def get_last_lr(self):
        """The LRs this scheduler set last."""
        return list(self._last_lr)

    def step(self, epoch=None):
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        values = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _unsaved(self):
        return ("optimizer",)

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k not in self._unsaved()}

    def load_state_dict(self, state_dict):
        self.__dict__.update({k: v for k, v in state_dict.items() if k not in self._unsaved()})


class StepLR(LRScheduler):
    """lr = base * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr = base * gamma ** (number of milestones <= epoch); repeated milestones count repeatedly."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * self.gamma ** bisect_right(self.milestones, self.last_epoch) for base in self.base_lrs]


class ConstantLR(LRScheduler):
    """lr = base * factor until total_iters, then base."""

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        if not 0 <= factor <= 1:
            raise ValueError(f"[ConstantLR] factor must be in [0, 1], got {factor}")
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        f = self.factor if self.last_epoch < self.total_iters else 1.0
        return [base * f for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr = base * gamma ** epoch."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if T_max <= 0:
            raise ValueError(f"[CosineAnnealingLR] T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        c = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * c for base in self.base_lrs]


class LinearLR(LRScheduler):
    """lr = base * (start_factor + (end_factor - start_factor) * min(epoch, total_iters) / total_iters)."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not 0 < start_factor <= 1:
            raise ValueError(f"[LinearLR] start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"[LinearLR] end_factor must be in [0, 1], got {end_factor}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        frac = min(self.last_epoch, self.total_iters) / self.total_iters
        f = self.start_factor + (self.end_factor - self.start_factor) * frac
        return [base * f for base in self.base_lrs]


class LambdaLR(LRScheduler):
    """lr = base * lr_lambda(epoch); one function, or one per param group (not saved in state_dict)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"[LambdaLR] expected {n} lr_lambdas, got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        super().__init__(optimizer, last_epoch)

    def _unsaved(self):
        return ("optimizer", "lr_lambdas")

    def get_lr(self):
        return [base * fn(self.last_epoch) for base, fn in zip(self.base_lrs, self.lr_lambdas)]


def _anneal_cos(start, end, pct):
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _anneal_linear(start, end, pct):
    return (end - start) * pct + start


class OneCycleLR(LRScheduler):
    """The 1cycle policy: warm up from max_lr/div_factor to max_lr over pct_start of the steps,
    then anneal to initial_lr/final_div_factor (three_phase: back to initial_lr first). Momentum
    (or Adam's beta1) cycles inversely between max_momentum and base_momentum."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("[OneCycleLR] give total_steps, or epochs and steps_per_epoch")
            if epochs <= 0 or steps_per_epoch <= 0:
                raise ValueError(f"[OneCycleLR] epochs and steps_per_epoch must be positive, got {epochs}, "
                                 f"{steps_per_epoch}")
            total_steps = epochs * steps_per_epoch
        if total_steps <= 0:
            raise ValueError(f"[OneCycleLR] total_steps must be positive, got {total_steps}")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"[OneCycleLR] pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"[OneCycleLR] anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps = total_steps
        self.anneal_strategy = anneal_strategy
        if three_phase:
            self._phases = [
                {"end_step": float(pct_start * total_steps) - 1, "start_lr": "initial_lr", "end_lr": "max_lr",
                 "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": float(2 * pct_start * total_steps) - 2, "start_lr": "max_lr", "end_lr": "initial_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
                {"end_step": total_steps - 1, "start_lr": "initial_lr", "end_lr": "min_lr",
                 "start_momentum": "max_momentum", "end_momentum": "max_momentum"},
            ]
        else:
            self._phases = [
                {"end_step": float(pct_start * total_steps) - 1, "start_lr": "initial_lr", "end_lr": "max_lr",
                 "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": total_steps - 1, "start_lr": "max_lr", "end_lr": "min_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
            ]
        groups = optimizer.param_groups
        max_lrs = self._per_group(max_lr, len(groups), "max_lr")
        if last_epoch == -1:
            for lr, group in zip(max_lrs, groups):
                group["initial_lr"] = lr / div_factor
                group["max_lr"] = lr
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("[OneCycleLR] optimizer must support momentum or betas with cycle_momentum enabled")
            self._use_beta1 = "betas" in optimizer.defaults
            base_ms = self._per_group(base_momentum, len(groups), "base_momentum")
            max_ms = self._per_group(max_momentum, len(groups), "max_momentum")
            if last_epoch == -1:
                for m_max, m_base, group in zip(max_ms, base_ms, groups):
                    self._set_momentum(group, m_max)
                    group["max_momentum"] = m_max
                    group["base_momentum"] = m_base
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _per_group(value, n, name):
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(f"[OneCycleLR] expected {n} values for {name}, got {len(value)}")
            return list(value)
        return [value] * n

    def _set_momentum(self, group, m):
        if self._use_beta1:
            group["betas"] = (m, *group["betas"][1:])
        else:
            group["momentum"] = m

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"[OneCycleLR] tried to step {step} times; the total number of steps is "
                             f"{self.total_steps}")
        anneal = _anneal_cos if self.anneal_strategy == "cos" else _anneal_linear
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(self._phases):
                end = phase["end_step"]
                if step <= end or i == len(self._phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, anneal(group[phase["start_momentum"]],
                                                         group[phase["end_momentum"]], pct))
                    break
                start = end
        return lrs


class SequentialLR(LRScheduler):
    """Runs schedulers[i] between milestones[i-1] and milestones[i]; each restarts at epoch 0."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        if len(schedulers) < 1:
            raise ValueError("[SequentialLR] expects at least one scheduler")
        for i, s in enumerate(schedulers):
            if s.optimizer is not optimizer:
                raise ValueError(f"[SequentialLR] scheduler {i} belongs to a different optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"[SequentialLR] expects {len(schedulers) - 1} milestones, got {len(milestones)}")
        self._schedulers = list(schedulers)
        self._milestones = list(milestones)
        self.optimizer = optimizer
        self.last_epoch = last_epoch + 1
        # Constructing the children stepped the optimizer: undo that, then start the first one.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for s in self._schedulers:
            s.last_epoch -= 1
        self._schedulers[0]._initial_step()
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self._last_lr = self._schedulers[0].get_last_lr()

    def step(self, epoch=None):
        if epoch is not None:
            raise ValueError("[SequentialLR] step() takes no epoch")
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler.step(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        children = state.pop("_schedulers")
        self.__dict__.update(state)
        for s, sd in zip(self._schedulers, children):
            s.load_state_dict(sd)


class WarmupCosineLR(LRScheduler):
    """Linear warmup then cosine decay to min_lr (an absolute LR):
        t < warmup_steps:      lr = base * (t + 1) / warmup_steps
        warmup <= t <= total:  lr = min_lr + (base - min_lr) * (1 + cos(pi * (t - warmup) / (total - warmup))) / 2
        t > total_steps:       lr = min_lr
    """

    def __init__(self, optimizer, warmup_steps, total_steps, min_lr=0.0, last_epoch=-1):
        if warmup_steps < 0 or total_steps <= 0 or warmup_steps > total_steps:
            raise ValueError(f"[warmup_cosine] need 0 <= warmup_steps <= total_steps and total_steps > 0, got "
                             f"warmup_steps={warmup_steps}, total_steps={total_steps}")
        if min_lr < 0:
            raise ValueError(f"[warmup_cosine] min_lr must be non-negative, got {min_lr}")
        self.warmup_steps, self.total_steps, self.min_lr = warmup_steps, total_steps, min_lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, w, n = self.last_epoch, self.warmup_steps, self.total_steps
        if t < w:
            return [base * (t + 1) / w for base in self.base_lrs]
        if t >= n or n == w:
            return [self.min_lr for _ in self.base_lrs]
        c = (1 + math.cos(math.pi * (t - w) / (n - w))) / 2
        return [self.min_lr + (base - self.min_lr) * c for base in self.base_lrs]


def warmup_cosine(optimizer, warmup_steps, total_steps, min_lr=0.0):
    """The usual LLM schedule: linear warmup over warmup_steps, cosine decay to min_lr at total_steps."""
    return WarmupCosineLR(optimizer, warmup_steps, total_steps, min_lr)


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine from the base lr to eta_min over T_i epochs, restarting; T_i = T_0 * T_mult^k.
    step(epoch) takes fractional epochs (step(epoch + i / iters_per_epoch)), as PyTorch's."""

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        if not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"[CosineAnnealingWarmRestarts] expected a positive integer T_0, got {T_0}")
        if not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"[CosineAnnealingWarmRestarts] expected an integer T_mult >= 1, got {T_mult}")
        self.T_0, self.T_mult, self.eta_min = T_0, T_mult, eta_min
        super().__init__(optimizer, last_epoch)

    def _position(self, epoch):
        """(T_cur, T_i) at `epoch` (closed form)."""
        if epoch < 0:
            return 0.0, self.T_0
        if self.T_mult == 1:
            return epoch % self.T_0, self.T_0
        n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
        return epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1), self.T_0 * self.T_mult ** n

    def get_lr(self):
        t_cur, t_i = self._position(self.last_epoch)
        self.T_cur, self.T_i = t_cur, t_i
        c = (1 + math.cos(math.pi * t_cur / t_i)) / 2
        return [self.eta_min + (base - self.eta_min) * c for base in self.base_lrs]


class MultiplicativeLR(LRScheduler):
    """lr = base * prod_{e=1..epoch} lr_lambda(e) (one function, or one per group)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        self.lr_lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(self.lr_lambdas) != n:
            raise ValueError(f"[MultiplicativeLR] expected {n} lr_lambdas, got {len(self.lr_lambdas)}")
        super().__init__(optimizer, last_epoch)

    def _unsaved(self):
        return ("optimizer", "lr_lambdas")

    def get_lr(self):
        out = []
        for base, fn in zip(self.base_lrs, self.lr_lambdas):
            lr = base
            for e in range(1, self.last_epoch + 1):
                lr *= fn(e)
            out.append(lr)
        return out


class PolynomialLR(LRScheduler):
    """lr = base * (1 - min(epoch, total_iters) / total_iters) ** power."""

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        f = (1.0 - min(self.last_epoch, self.total_iters) / self.total_iters) ** self.power
        return [base * f for base in self.base_lrs]


class CyclicLR(LRScheduler):
    """Cycles the lr between base_lr and max_lr (modes 'triangular', 'triangular2',
    'exp_range', or a scale_fn), and the momentum (or Adam's beta1) inversely, per batch."""

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None, mode="triangular",
                 gamma=1.0, scale_fn=None, scale_mode="cycle", cycle_momentum=True, base_momentum=0.8,
                 max_momentum=0.9, last_epoch=-1):
        n = len(optimizer.param_groups)

        def per_group(v, name):
            v = list(v) if isinstance(v, (list, tuple)) else [v] * n
            if len(v) != n:
                raise ValueError(f"[CyclicLR] expected {n} values of {name}, got {len(v)}")
            return v
        base_lrs = per_group(base_lr, "base_lr")
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
                group["initial_lr"] = lr
        self.max_lrs = per_group(max_lr, "max_lr")
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size, self.step_ratio = up + down, up / (up + down)
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError(f"[CyclicLR] mode is invalid and scale_fn is None: {mode!r}")
        self.mode, self.gamma, self._scale_fn_custom = mode, gamma, scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else ("iterations" if mode == "exp_range" else "cycle")
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            group0 = optimizer.param_groups[0]
            if "momentum" not in group0 and "betas" not in group0:
                raise ValueError("[CyclicLR] optimizer must support momentum or beta1 with `cycle_momentum` enabled")
            self._use_beta1 = "betas" in group0
            self.base_momentums = per_group(base_momentum, "base_momentum")
            self.max_momentums = per_group(max_momentum, "max_momentum")
            if last_epoch == -1:
                for m, group in zip(self.max_momentums, optimizer.param_groups):
                    self._set_momentum(group, m)
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _unsaved(self):
        return ("optimizer", "_scale_fn_custom")

    @staticmethod
    def _get_momentum(group, use_beta1):
        return group["betas"][0] if use_beta1 else group["momentum"]

    def _set_momentum(self, group, m):
        if self._use_beta1:
            group["betas"] = (m, *group["betas"][1:])
        else:
            group["momentum"] = m

    def _scale(self, x):
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def get_lr(self):
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        factor = x / self.step_ratio if x <= self.step_ratio else (x - 1) / (self.step_ratio - 1)
        scale = self._scale(cycle if self.scale_mode == "cycle" else self.last_epoch)
        base_lrs = getattr(self, "base_lrs", None) or [g["initial_lr"] for g in self.optimizer.param_groups]
        lrs = [b + (m - b) * factor * scale for b, m in zip(base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, bm_, mm in zip(self.optimizer.param_groups, self.base_momentums, self.max_momentums):
                self._set_momentum(group, mm - (mm - bm_) * factor * scale)
        return lrs


class ChainedScheduler:
    """Steps several schedulers together; their factors multiply, as PyTorch's chained
    schedulers do (ours are closed-form: each one's factor is its lr over its base lr)."""

    def __init__(self, schedulers, optimizer=None):
        self._schedulers = list(schedulers)
        self.optimizer = optimizer or self._schedulers[0].optimizer
        self._apply()

    def _apply(self):
        groups = self.optimizer.param_groups
        factors = [1.0] * len(groups)
        for s in self._schedulers:
            for g, (lr, base) in enumerate(zip(s.get_lr(), s.base_lrs)):
                factors[g] *= lr / base if base else 0.0
        bases = self._schedulers[0].base_lrs
        for group, base, f in zip(groups, bases, factors):
            group["lr"] = base * f
        self._last_lr = [g["lr"] for g in groups]
        for s in self._schedulers:
            s._last_lr = list(self._last_lr)

    def step(self):
        for s in self._schedulers:
            s.last_epoch += 1
        self._apply()

    def get_last_lr(self):
        return list(self._last_lr)

    def state_dict(self):
        return {"_schedulers": [s.state_dict() for s in self._schedulers]}

    def load_state_dict(self, state_dict):
        for s, sd in zip(self._schedulers, state_dict["_schedulers"]):
            s.load_state_dict(sd)


class ReduceLROnPlateau:
    """Multiplies the LRs by `factor` when the monitored metric (passed to step(metric)) has
    not improved for more than `patience` steps; then waits `cooldown` steps. mode 'min' or
    'max', threshold_mode 'rel' or 'abs', min_lr (one, or one per group), eps: changes
    smaller than eps are skipped. As PyTorch's."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0, eps=1e-8, verbose=False):
        if factor >= 1.0:
            raise ValueError(f"[ReduceLROnPlateau] factor should be < 1.0, got {factor}")
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"[ReduceLROnPlateau] unknown mode {mode!r} or threshold_mode {threshold_mode!r}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"[ReduceLROnPlateau] {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        n = len(optimizer.param_groups)
        self.min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * n
        if len(self.min_lrs) != n:
            raise ValueError(f"[ReduceLROnPlateau] expected {n} min_lrs, got {len(self.min_lrs)}")
        self.mode, self.factor, self.patience, self.threshold = mode, factor, patience, threshold
        self.threshold_mode, self.cooldown, self.eps = threshold_mode, cooldown, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs, self.cooldown_counter, self.last_epoch = 0, 0, 0
        self._last_lr = [g["lr"] for g in optimizer.param_groups]

    def _is_better(self, a, best):
        if self.mode == "min":
            return a < (best * (1 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return a > (best * (1 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metrics, epoch=None):
        current = float(metrics)
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        if self._is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                new = max(group["lr"] * self.factor, min_lr)
                if group["lr"] - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def get_last_lr(self):
        return list(self._last_lr)

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update({k: v for k, v in state_dict.items() if k != "optimizer"})


_LRScheduler = LRScheduler  # older PyTorch name

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ConstantLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
           "LambdaLR", "OneCycleLR", "SequentialLR", "WarmupCosineLR", "warmup_cosine", "ReduceLROnPlateau",
           "CosineAnnealingWarmRestarts", "MultiplicativeLR", "PolynomialLR", "CyclicLR", "ChainedScheduler"]
