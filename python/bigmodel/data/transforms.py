"""bm.data.transforms: data augmentation on whole batches of images [N, C, H, W].

Compose, Normalize, RandomCrop and RandomHorizontalFlip each take a batch tensor (or one
image [C, H, W]) and return a new tensor; the random ones draw all of a batch's offsets
and coin flips in one vectorised NumPy step.

Use them batch-wise with DataLoader(..., transform=...), which applies the transform to
the inputs (the first field) of every batch, on the loader's prefetch thread when there
is one. Randomness: each random transform owns a NumPy generator seeded at construction,
from `seed` when given, else from bigmodel's global generator, so bm.manual_seed(s) before
building the transforms makes runs repeat (and the loader's thread never touches the global
generator that the model's dropout uses).
"""
import numbers

import numpy as np

from .. import _C


def _fresh_seed():
    return int(_C.randint(0, 2 ** 31 - 1, (1,)).item())


def _as_batch(x, op):
    """(NumPy float array [N, C, H, W], was_single_image) from a tensor [N, C, H, W] or [C, H, W]."""
    if not isinstance(x, _C.Tensor):
        raise TypeError(f"[{op}] expected a bigmodel Tensor, got {type(x).__name__}")
    if x.ndim not in (3, 4):
        raise ValueError(f"[{op}] expected images [N, C, H, W] or [C, H, W], got shape {list(x.shape)}")
    if not x.is_cpu:
        raise ValueError(f"[{op}] random transforms run on CPU tensors (before .to(device)), got {x.device}")
    arr = x.detach().numpy()
    single = x.ndim == 3
    return (arr[None] if single else arr), single


def _back(arr, single):
    return _C.from_numpy(np.ascontiguousarray(arr[0] if single else arr))


class Compose:
    """Applies transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self):
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({inner}\n)"


class Normalize:
    """(x - mean[c]) / std[c] per channel; mean and std are sequences (or one number each).

    Written with tensor ops, so it runs on any device and keeps the input's dtype.
    """

    def __init__(self, mean, std, inplace=False):
        mean = [float(mean)] if isinstance(mean, numbers.Real) else [float(m) for m in mean]
        std = [float(std)] if isinstance(std, numbers.Real) else [float(s) for s in std]
        if len(mean) != len(std):
            raise ValueError(f"[Normalize] mean and std must have the same length, got {len(mean)} and {len(std)}")
        if any(s == 0 for s in std):
            raise ValueError(f"[Normalize] std evaluated to zero, leading to division by zero (std={std})")
        self.mean, self.std = mean, std
        self._cache = {}

    def _stats(self, x):
        key = (x.dtype, str(x.device))
        if key not in self._cache:
            shape = (len(self.mean), 1, 1)
            mean = _C.from_numpy(np.array(self.mean, dtype=np.float64).reshape(shape))
            inv = _C.from_numpy((1.0 / np.array(self.std, dtype=np.float64)).reshape(shape))
            self._cache[key] = (mean.to(dtype=x.dtype, device=x.device), inv.to(dtype=x.dtype, device=x.device))
        return self._cache[key]

    def __call__(self, x):
        if x.ndim not in (3, 4):
            raise ValueError(f"[Normalize] expected images [N, C, H, W] or [C, H, W], got shape {list(x.shape)}")
        channels = x.shape[-3]
        if len(self.mean) not in (1, channels):
            raise ValueError(f"[Normalize] {len(self.mean)} means for images with {channels} channels "
                             f"(shape {list(x.shape)})")
        mean, inv = self._stats(x)
        return (x - mean) * inv

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


class _Random:
    def __init__(self, seed):
        self.rng = np.random.default_rng(_fresh_seed() if seed is None else seed)


class RandomCrop(_Random):
    """Pads each image by `padding` (zeros) and cuts a size[0] x size[1] window at a random
    offset, chosen independently for every image of the batch.

    padding: int (all sides), (left/right, top/bottom) or (left, top, right, bottom).
    """

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, seed=None):
        super().__init__(seed)
        self.size = (int(size), int(size)) if isinstance(size, numbers.Integral) else tuple(int(s) for s in size)
        if len(self.size) != 2 or min(self.size) <= 0:
            raise ValueError(f"[RandomCrop] size must be a positive int or (h, w), got {size!r}")
        if padding is None:
            pad = (0, 0, 0, 0)
        elif isinstance(padding, numbers.Integral):
            pad = (int(padding),) * 4
        elif len(padding) == 2:
            pad = (int(padding[0]), int(padding[1]), int(padding[0]), int(padding[1]))
        elif len(padding) == 4:
            pad = tuple(int(p) for p in padding)
        else:
            raise ValueError(f"[RandomCrop] padding must be an int or a sequence of 2 or 4 ints, got {padding!r}")
        if min(pad) < 0:
            raise ValueError(f"[RandomCrop] padding must be non-negative, got {padding!r}")
        self.padding = pad  # left, top, right, bottom
        self.pad_if_needed = pad_if_needed
        self.fill = fill

    def __call__(self, x):
        arr, single = _as_batch(x, "RandomCrop")
        left, top, right, bottom = self.padding
        h, w = self.size
        n, c, H, W = arr.shape
        if self.pad_if_needed:
            extra_h, extra_w = max(0, h - (H + top + bottom)), max(0, w - (W + left + right))
            top, bottom, left, right = top + extra_h, bottom + extra_h, left + extra_w, right + extra_w
        Hp, Wp = H + top + bottom, W + left + right
        if h > Hp or w > Wp:
            raise ValueError(f"[RandomCrop] crop size {self.size} is larger than the padded image ({Hp}, {Wp}) "
                             f"of input shape {list(x.shape)}")
        if top or bottom or left or right:
            arr = np.pad(arr, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=self.fill)
        i = self.rng.integers(0, Hp - h + 1, size=n)
        j = self.rng.integers(0, Wp - w + 1, size=n)
        rows = (i[:, None] + np.arange(h))[:, None, :, None]  # [n, 1, h, 1]
        cols = (j[:, None] + np.arange(w))[:, None, None, :]  # [n, 1, 1, w]
        out = arr[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols]
        return _back(out, single)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip(_Random):
    """Mirrors each image left-right with probability p (independently per image)."""

    def __init__(self, p=0.5, seed=None):
        super().__init__(seed)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"[RandomHorizontalFlip] p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, x):
        arr, single = _as_batch(x, "RandomHorizontalFlip")
        flip = self.rng.random(arr.shape[0]) < self.p
        out = arr.copy()
        out[flip] = arr[flip][..., ::-1]
        return _back(out, single)

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


__all__ = ["Compose", "Normalize", "RandomCrop", "RandomHorizontalFlip"]
