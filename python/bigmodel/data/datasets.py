"""datasets.FashionMNIST: reads the IDX files (gzip or plain) of Fashion-MNIST.

The Debian package dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist.
Whole arrays are loaded with NumPy once; get_batch gathers a batch in one step.
"""
import gzip
import os
import struct
import zlib

import numpy as np

from .. import _C
from .dataset import Dataset

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"

# IDX magic: two zero bytes, a type code (0x08 = unsigned byte) and the number of dims.
_IDX_UBYTE = 0x08


def _open(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_idx(path, expected_ndim):
    """A uint8 NumPy array from an IDX file; ValueError naming the file if it is malformed."""
    try:
        with _open(path) as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # gzip raises BadGzipFile (an OSError) or EOFError
        raise ValueError(f"[FashionMNIST] can't read {path}: {e}") from None
    if len(raw) < 4:
        raise ValueError(f"[FashionMNIST] {path} is too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != _IDX_UBYTE or ndim != expected_ndim:
        raise ValueError(f"[FashionMNIST] {path} has a bad IDX magic number 0x{raw[:4].hex()} "
                         f"(expected 0x0000080{expected_ndim}: unsigned bytes, {expected_ndim} dims)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"[FashionMNIST] {path} is truncated inside its IDX header")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    count = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != count:
        raise ValueError(f"[FashionMNIST] {path} holds {len(raw) - header} data bytes, but its header "
                         f"promises {count} (dims {list(dims)})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(root, name):
    for candidate in (name + ".gz", name):
        path = os.path.join(root, candidate)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(
        f"[FashionMNIST] {name}.gz not found in {root}; install the Debian package dataset-fashion-mnist "
        f"(apt-get install dataset-fashion-mnist) or pass root= a folder holding the IDX files")


class FashionMNIST(Dataset):
    """Fashion-MNIST: 28x28 grey images of 10 clothing classes (60000 train, 10000 test).

    A sample is (image, label): image a float32 tensor [1, 28, 28] in [0, 1] (or
    transform(image)), label an int (or target_transform(label)). `data` is the raw uint8
    NumPy array [N, 28, 28] and `targets` an int64 tensor [N].
    """

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]

    def __init__(self, root=DEFAULT_ROOT, train=True, transform=None, target_transform=None, download=False):
        if download:
            raise ValueError("[FashionMNIST] bigmodel doesn't download data; install dataset-fashion-mnist")
        self.root = root
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        prefix = "train" if train else "t10k"
        img_path = _find(root, f"{prefix}-images-idx3-ubyte")
        lbl_path = _find(root, f"{prefix}-labels-idx1-ubyte")
        images = read_idx(img_path, 3)
        labels = read_idx(lbl_path, 1)
        if images.shape[1:] != (28, 28):
            raise ValueError(f"[FashionMNIST] {img_path} holds images of shape {list(images.shape[1:])}, expected [28, 28]")
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"[FashionMNIST] {img_path} has {images.shape[0]} images but {lbl_path} has "
                             f"{labels.shape[0]} labels")
        if labels.size and labels.max() > 9:
            raise ValueError(f"[FashionMNIST] {lbl_path} holds label {int(labels.max())}; labels must be 0..9")
        self.data = images
        self._labels = labels.astype(np.int64)
        self.targets = _C.from_numpy(self._labels)

    def __len__(self):
        return self.data.shape[0]

    def _images(self, indices):
        return self.data[indices].astype(np.float32)[:, None, :, :] * np.float32(1.0 / 255.0)

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"[FashionMNIST] index {index} is out of range for {len(self)} samples")
        image = _C.from_numpy(np.ascontiguousarray(self._images([int(index)])[0]))
        label = int(self._labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def get_batch(self, indices):
        """(images float32 [B, 1, 28, 28], labels int64 [B]) for an int64 index array.

        With a transform set, returns None so the DataLoader falls back to per-sample loading.
        """
        if self.transform is not None or self.target_transform is not None:
            return None
        indices = np.asarray(indices, dtype=np.int64)
        images = _C.from_numpy(np.ascontiguousarray(self._images(indices)))
        labels = _C.from_numpy(np.ascontiguousarray(self._labels[indices]))
        return images, labels

    def arrays(self):
        """All images float32 [N, 1, 28, 28] and labels int64 [N] as tensors."""
        return self.get_batch(np.arange(len(self)))

    def __repr__(self):
        return (f"Dataset FashionMNIST\n    Number of datapoints: {len(self)}\n    Root location: {self.root}\n"
                f"    Split: {'Train' if self.train else 'Test'}")


__all__ = ["FashionMNIST", "read_idx", "DEFAULT_ROOT"]
