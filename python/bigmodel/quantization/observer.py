"""Observers: collect the range of a layer's input activations during calibration and turn
it into a symmetric int8 scale. MinMaxObserver keeps max |x|; PercentileObserver a high
percentile of |x| (clips rare outliers, which spends the 127 steps on the common range)."""
import numpy as np

from .. import _C
from .qtensor import scale_from_absmax


class MinMaxObserver:
    def __init__(self):
        self.absmax = 0.0
        self.batches = 0

    def __call__(self, x):
        if not isinstance(x, _C.Tensor) or not x.is_floating_point():
            raise TypeError(f"[MinMaxObserver] expected a floating Tensor, got {type(x).__name__}")
        if x.numel():
            self.absmax = max(self.absmax, float(x.detach().abs().max()))
        self.batches += 1

    def scale(self):
        if self.batches == 0:
            raise RuntimeError(f"[{type(self).__name__}] saw no data: run calibration batches through the model")
        return float(scale_from_absmax(self.absmax))


class PercentileObserver(MinMaxObserver):
    """Scale from the `percentile` of |x| over everything observed (a bounded sample per batch)."""

    def __init__(self, percentile=99.99, sample=200_000):
        super().__init__()
        if not 0 < percentile <= 100:
            raise ValueError(f"[PercentileObserver] percentile must be in (0, 100], got {percentile}")
        self.percentile = percentile
        self.sample = sample
        self._values = []
        self._rng = np.random.default_rng(0)

    def __call__(self, x):
        super().__call__(x)
        a = np.abs(x.detach().to(_C.dtype.float32).numpy().reshape(-1))
        if a.size > self.sample:
            a = self._rng.choice(a, self.sample, replace=False)
        self._values.append(a)

    def scale(self):
        super().scale()
        v = np.concatenate(self._values) if self._values else np.zeros(1)
        return float(scale_from_absmax(np.percentile(v, self.percentile)))


OBSERVERS = {"minmax": MinMaxObserver, "percentile": PercentileObserver}

__all__ = ["MinMaxObserver", "PercentileObserver", "OBSERVERS"]
