"""Tests for bm.data: TensorDataset, DataLoader batching/shuffling/drop_last, and the
Fashion-MNIST reader (real files when installed, malformed files written to tmp_path)."""
import gzip
import os
import struct

import numpy as np
import pytest

import bigmodel as bm
import bigmodel.data as bmdata
from bigmodel.data import DataLoader, Dataset, TensorDataset
from bigmodel.data.datasets import DEFAULT_ROOT, FashionMNIST


def _dataset(n=10):
    x = bm.tensor(np.arange(n * 3, dtype=np.float32).reshape(n, 3))
    y = bm.tensor(np.arange(n, dtype=np.int64) * 7)
    return TensorDataset(x, y)


def test_tensor_dataset_len_and_batch():
    ds = _dataset(6)
    assert len(ds) == 6
    xb, yb = ds.get_batch(np.array([4, 1]))
    np.testing.assert_array_equal(xb.numpy(), [[12, 13, 14], [3, 4, 5]])
    np.testing.assert_array_equal(yb.numpy(), [28, 7])
    assert xb.dtype == bm.float32 and yb.dtype == bm.int64
    x2, y2 = ds[2]
    np.testing.assert_array_equal(x2.numpy(), [6, 7, 8])
    assert int(y2) == 14
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(bm.tensor(np.ones((3, 2))), bm.tensor(np.ones(4)))


def test_dataloader_sequential_batches_and_last_partial():
    loader = DataLoader(_dataset(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    assert [tuple(b[0].shape) for b in batches] == [(4, 3), (4, 3), (2, 3)]
    labels = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal(labels, np.arange(10) * 7)
    # Features and labels of a batch stay paired.
    for xb, yb in batches:
        np.testing.assert_array_equal(xb.numpy()[:, 0] / 3 * 7, yb.numpy())


def test_dataloader_drop_last():
    loader = DataLoader(_dataset(10), batch_size=4, drop_last=True)
    batches = list(loader)
    assert len(loader) == 2 and len(batches) == 2
    assert all(b[0].shape[0] == 4 for b in batches)
    assert len(DataLoader(_dataset(8), batch_size=4, drop_last=True)) == 2


def _epoch_labels(loader):
    return np.concatenate([yb.numpy() for _, yb in loader]) // 7


def test_dataloader_shuffle_is_seeded_and_a_permutation():
    ds = _dataset(20)
    a = DataLoader(ds, batch_size=6, shuffle=True, seed=3)
    b = DataLoader(ds, batch_size=6, shuffle=True, seed=3)
    a1, a2 = _epoch_labels(a), _epoch_labels(a)
    b1, b2 = _epoch_labels(b), _epoch_labels(b)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2), "each epoch should draw a new order"
    assert not np.array_equal(a1, np.arange(20))
    np.testing.assert_array_equal(np.sort(a1), np.arange(20))
    c1 = _epoch_labels(DataLoader(ds, batch_size=6, shuffle=True, seed=4))
    assert not np.array_equal(a1, c1)
    g = np.random.default_rng(3)
    np.testing.assert_array_equal(_epoch_labels(DataLoader(ds, batch_size=6, shuffle=True, generator=g)), a1)


def test_dataloader_shuffle_without_seed_follows_manual_seed():
    ds = _dataset(30)
    bm.manual_seed(11)
    a = _epoch_labels(DataLoader(ds, batch_size=7, shuffle=True))
    bm.manual_seed(11)
    b = _epoch_labels(DataLoader(ds, batch_size=7, shuffle=True))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.sort(a), np.arange(30))
    assert not np.array_equal(a, np.arange(30))


def test_dataloader_collates_per_sample_datasets():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return bm.tensor([float(i), float(i * i)]), i

    batches = list(DataLoader(Squares(), batch_size=2))
    assert len(batches) == 3
    xb, yb = batches[1]
    np.testing.assert_array_equal(xb.numpy(), [[2.0, 4.0], [3.0, 9.0]])
    assert yb.dtype == bm.int64
    np.testing.assert_array_equal(yb.numpy(), [2, 3])


def test_dataloader_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_dataset(), batch_size=0)


def test_subset_batches_through_parent():
    sub = bmdata.Subset(_dataset(10), [9, 2, 5])
    (xb, yb), = list(DataLoader(sub, batch_size=3))
    np.testing.assert_array_equal(yb.numpy(), [63, 14, 35])


# ------------------------------------------------------------------ Fashion-MNIST
needs_fmnist = pytest.mark.skipif(not os.path.isdir(DEFAULT_ROOT),
                                  reason="Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")


@needs_fmnist
def test_fashion_mnist_test_split():
    ds = FashionMNIST(train=False)
    assert len(ds) == 10000
    assert ds.data.shape == (10000, 28, 28)
    assert ds.targets.dtype == bm.int64
    labels = ds.targets.numpy()
    assert labels.min() == 0 and labels.max() == 9
    assert np.bincount(labels).tolist() == [1000] * 10
    img, label = ds[0]
    assert tuple(img.shape) == (1, 28, 28) and img.dtype == bm.float32 and isinstance(label, int)
    xb, yb = next(iter(DataLoader(ds, batch_size=32)))
    assert tuple(xb.shape) == (32, 1, 28, 28) and xb.dtype == bm.float32
    arr = xb.numpy()
    assert arr.min() >= 0.0 and arr.max() <= 1.0 and arr.max() > 0.9 and arr.std() > 0.1
    np.testing.assert_allclose(arr[0], img.numpy())
    np.testing.assert_array_equal(yb.numpy(), labels[:32])


@needs_fmnist
def test_fashion_mnist_train_split_is_real_data():
    ds = FashionMNIST(train=True)
    assert len(ds) == 60000
    # The published first labels of the training set: ankle boot, T-shirt, T-shirt, dress, ...
    np.testing.assert_array_equal(ds.targets.numpy()[:10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
    assert ds.classes[9] == "Ankle boot"


@needs_fmnist
def test_fashion_mnist_transform_goes_per_sample():
    ds = FashionMNIST(train=False, transform=lambda x: x.flatten(), target_transform=lambda y: y + 100)
    x, y = ds[1]
    assert tuple(x.shape) == (784,) and y == ds.targets.numpy()[1] + 100
    xb, yb = next(iter(DataLoader(ds, batch_size=3)))
    assert tuple(xb.shape) == (3, 784)
    np.testing.assert_array_equal(yb.numpy(), ds.targets.numpy()[:3] + 100)


def _write_idx(path, magic, dims, payload, compress=True):
    raw = struct.pack(">I", magic) + struct.pack(">" + "I" * len(dims), *dims) + payload
    with (gzip.open(path, "wb") if compress else open(path, "wb")) as f:
        f.write(raw)


def _write_split(root, n=4, image_magic=0x803, label_magic=0x801, image_bytes=None, labels=None):
    images = image_bytes if image_bytes is not None else bytes(range(256)) * (n * 784 // 256) + bytes(n * 784 % 256)
    labels = labels if labels is not None else bytes([1, 2, 3, 4][:n])
    _write_idx(os.path.join(root, "t10k-images-idx3-ubyte.gz"), image_magic, (n, 28, 28), images)
    _write_idx(os.path.join(root, "t10k-labels-idx1-ubyte.gz"), label_magic, (n,), labels)


def test_fashion_mnist_reads_small_valid_files(tmp_path):
    _write_split(str(tmp_path))
    ds = FashionMNIST(root=str(tmp_path), train=False)
    assert len(ds) == 4
    np.testing.assert_array_equal(ds.targets.numpy(), [1, 2, 3, 4])
    img, _ = ds[0]
    np.testing.assert_allclose(img.numpy().reshape(-1)[:3], np.array([0, 1, 2]) / 255.0, rtol=1e-6)


def test_fashion_mnist_bad_magic_names_the_file(tmp_path):
    _write_split(str(tmp_path), image_magic=0x801)
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz.*magic"):
        FashionMNIST(root=str(tmp_path), train=False)


def test_fashion_mnist_truncated_payload(tmp_path):
    _write_split(str(tmp_path), image_bytes=bytes(100))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz.*data bytes"):
        FashionMNIST(root=str(tmp_path), train=False)


def test_fashion_mnist_not_gzip(tmp_path):
    _write_split(str(tmp_path))
    with open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"this is not a gzip file at all")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz"):
        FashionMNIST(root=str(tmp_path), train=False)


def test_fashion_mnist_count_and_label_checks(tmp_path):
    _write_split(str(tmp_path), labels=bytes([1, 2, 3, 12]))
    with pytest.raises(ValueError, match="label 12"):
        FashionMNIST(root=str(tmp_path), train=False)
    _write_idx(os.path.join(str(tmp_path), "t10k-labels-idx1-ubyte.gz"), 0x801, (3,), bytes([1, 2, 3]))
    with pytest.raises(ValueError, match="4 images but"):
        FashionMNIST(root=str(tmp_path), train=False)


def test_fashion_mnist_missing_files_name_the_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        FashionMNIST(root=str(tmp_path / "nowhere"), train=True)
