"""bm.distributions: the probability distributions training code uses most (RL policies,
VAEs), as torch.distributions: Normal, Categorical, Bernoulli, Uniform, with sample /
rsample (reparameterised, differentiable), log_prob, entropy, mean/stddev/variance, and
kl_divergence between two of the same family. Samples come from bigmodel's generator."""
import math

from .. import _C
from .._autograd import no_grad


def _as_tensor(v, like=None):
    if isinstance(v, _C.Tensor):
        return v
    from .._tensor import tensor
    dt = like.dtype if isinstance(like, _C.Tensor) and like.is_floating_point() else _C.dtype.float32
    return tensor(float(v), dtype=dt)


def _shape(sample_shape, batch_shape):
    return tuple(sample_shape) + tuple(batch_shape)


class Distribution:
    has_rsample = False

    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def event_shape(self):
        return ()

    def sample(self, sample_shape=()):
        with no_grad():
            return self.rsample(sample_shape) if self.has_rsample else self._sample(sample_shape)

    def rsample(self, sample_shape=()):
        raise NotImplementedError(f"[{type(self).__name__}] has no reparameterised sampler (rsample)")

    @property
    def stddev(self):
        return _C.sqrt(self.variance)

    def __repr__(self):
        return f"{type(self).__name__}()"


class Normal(Distribution):
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc = _as_tensor(loc, scale)
        self.scale = _as_tensor(scale, self.loc)
        self.loc, self.scale = _broadcast(self.loc, self.scale)
        if validate_args and not bool((self.scale > 0).all()):
            raise ValueError("[Normal] scale must be positive")
        self._batch_shape = tuple(self.loc.shape)

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return self.scale * self.scale

    @property
    def stddev(self):
        return self.scale

    def rsample(self, sample_shape=()):
        shape = _shape(sample_shape, self._batch_shape)
        eps = _C.randn(*shape, dtype=self.loc.dtype, device=self.loc.device) if shape else \
            _C.randn(1, dtype=self.loc.dtype, device=self.loc.device).reshape(())
        return self.loc + eps * self.scale

    def log_prob(self, value):
        value = _as_tensor(value, self.loc)
        var = self.scale * self.scale
        return -((value - self.loc) ** 2) / (2 * var) - _C.log(self.scale) - 0.5 * math.log(2 * math.pi)

    def entropy(self):
        return 0.5 + 0.5 * math.log(2 * math.pi) + _C.log(self.scale)

    def cdf(self, value):
        return 0.5 * (1 + _C.erf((_as_tensor(value, self.loc) - self.loc) / (self.scale * math.sqrt(2))))

    def __repr__(self):
        return f"Normal(loc: {self.loc.shape}, scale: {self.scale.shape})"


def _broadcast(*ts):
    import numpy as np
    shape = tuple(np.broadcast_shapes(*[tuple(t.shape) for t in ts]))
    return tuple(t.expand(*shape) for t in ts)


class Uniform(Distribution):
    has_rsample = True

    def __init__(self, low, high, validate_args=None):
        self.low = _as_tensor(low, high)
        self.high = _as_tensor(high, self.low)
        self.low, self.high = _broadcast(self.low, self.high)
        self._batch_shape = tuple(self.low.shape)

    @property
    def mean(self):
        return (self.low + self.high) / 2

    @property
    def variance(self):
        return (self.high - self.low) ** 2 / 12

    def rsample(self, sample_shape=()):
        shape = _shape(sample_shape, self._batch_shape)
        u = _C.rand(*shape, dtype=self.low.dtype, device=self.low.device) if shape else \
            _C.rand(1, dtype=self.low.dtype, device=self.low.device).reshape(())
        return self.low + u * (self.high - self.low)

    def log_prob(self, value):
        value = _as_tensor(value, self.low)
        inside = (value >= self.low) & (value < self.high)
        return _C.where(inside, -_C.log(self.high - self.low), float("-inf"))

    def entropy(self):
        return _C.log(self.high - self.low)


def _logits_from_probs(probs):
    eps = 1e-7 if probs.dtype != _C.dtype.float64 else 1e-15
    return _C.log(_C.clamp(probs, eps, 1 - eps))


class Bernoulli(Distribution):
    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("[Bernoulli] give exactly one of probs and logits")
        if probs is not None:
            self.probs = _as_tensor(probs)
            self.logits = _C.log(_C.clamp(self.probs, 1e-7, 1 - 1e-7)) - _C.log1p(-_C.clamp(self.probs, 1e-7, 1 - 1e-7))
        else:
            self.logits = _as_tensor(logits)
            self.probs = _C.sigmoid(self.logits)
        self._batch_shape = tuple(self.probs.shape)

    @property
    def mean(self):
        return self.probs

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def _sample(self, sample_shape=()):
        shape = _shape(sample_shape, self._batch_shape)
        u = _C.rand(*shape, dtype=self.probs.dtype, device=self.probs.device) if shape else \
            _C.rand(1, dtype=self.probs.dtype, device=self.probs.device).reshape(())
        return (u < self.probs).to(self.probs.dtype)

    def log_prob(self, value):
        value = _as_tensor(value, self.logits)
        # -BCE with logits: value * logits - softplus(logits)
        return value * self.logits - _C.softplus(self.logits)

    def entropy(self):
        return _C.softplus(self.logits) - self.probs * self.logits


class Categorical(Distribution):
    """Over the last dim of probs (normalised) or logits (log-softmaxed)."""

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("[Categorical] give exactly one of probs and logits")
        if probs is not None:
            p = _as_tensor(probs)
            self.probs = p / p.sum(-1, keepdim=True)
            self.logits = _logits_from_probs(self.probs)
        else:
            lg = _as_tensor(logits)
            self.logits = lg - _C.logsumexp(lg, -1, True)
            self.probs = _C.softmax(self.logits, -1)
        self._num_events = self.probs.shape[-1]
        self._batch_shape = tuple(self.probs.shape[:-1])

    @property
    def param_shape(self):
        return tuple(self.probs.shape)

    @property
    def mean(self):
        return _C.full(self._batch_shape, float("nan"), dtype=self.probs.dtype)

    def _sample(self, sample_shape=()):
        from .._sort_scan import multinomial
        n = int(math.prod(sample_shape)) if sample_shape else 1
        flat = self.probs.reshape(-1, self._num_events)
        draws = multinomial(flat, n, replacement=True)  # [batch, n]
        out = draws.t().reshape(*tuple(sample_shape), *self._batch_shape)
        return out

    def log_prob(self, value):
        value = _as_tensor(value).long()
        lp = self.logits
        value, lp = value.unsqueeze(-1), lp
        shape = tuple(__import__("numpy").broadcast_shapes(tuple(value.shape[:-1]), tuple(lp.shape[:-1])))
        return lp.expand(*shape, self._num_events).gather(-1, value.expand(*shape, 1)).squeeze(-1)

    def entropy(self):
        logits = _C.clamp_min(self.logits, -3.4e38 if self.logits.dtype != _C.dtype.float64 else -1.7e308)
        return -(logits * self.probs).sum(-1)


def kl_divergence(p, q):
    """KL(p || q) for two distributions of the same family (Normal, Categorical, Bernoulli, Uniform)."""
    if isinstance(p, Normal) and isinstance(q, Normal):
        var_ratio = (p.scale / q.scale) ** 2
        t1 = ((p.loc - q.loc) / q.scale) ** 2
        return 0.5 * (var_ratio + t1 - 1 - _C.log(var_ratio))
    if isinstance(p, Categorical) and isinstance(q, Categorical):
        return (p.probs * (p.logits - q.logits)).sum(-1)
    if isinstance(p, Bernoulli) and isinstance(q, Bernoulli):
        return p.probs * (_C.softplus(-q.logits) - _C.softplus(-p.logits)) + \
            (1 - p.probs) * (_C.softplus(q.logits) - _C.softplus(p.logits))
    if isinstance(p, Uniform) and isinstance(q, Uniform):
        inside = (q.low <= p.low) & (p.high <= q.high)
        return _C.where(inside, _C.log((q.high - q.low) / (p.high - p.low)), float("inf"))
    raise NotImplementedError(f"[kl_divergence] not implemented for {type(p).__name__} and {type(q).__name__}")


__all__ = ["Distribution", "Normal", "Uniform", "Bernoulli", "Categorical", "kl_divergence"]
