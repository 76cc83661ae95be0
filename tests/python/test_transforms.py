"""bm.data.transforms (Normalize, RandomCrop, RandomHorizontalFlip, Compose) against NumPy,
their seeding, and the DataLoader's batch transform and background prefetch (same batches
as without it, clean stop on early break, dataset errors re-raised with the index)."""
import threading
import time

import numpy as np
import pytest

import bigmodel as bm
from bigmodel.data import DataLoader, Dataset, TensorDataset
from bigmodel.data import transforms as T
from conftest import assert_close


def images(rng, n=6, c=2, h=5, w=4):
    return rng.standard_normal((n, c, h, w)).astype(np.float32) + 1


def test_normalize_per_channel(rng):
    a = images(rng)
    out = T.Normalize([0.5, -1.0], [2.0, 0.25])(bm.tensor(a))
    ref = (a - np.array([0.5, -1.0]).reshape(1, 2, 1, 1)) / np.array([2.0, 0.25]).reshape(1, 2, 1, 1)
    assert out.dtype == bm.float32
    assert_close(out, ref)
    assert_close(T.Normalize(0.5, 2.0)(bm.tensor(a[0])), (a[0] - 0.5) / 2.0)  # one image, one channel stat
    with pytest.raises(ValueError, match=r"\[Normalize\] 3 means for images with 2 channels"):
        T.Normalize([0, 0, 0], [1, 1, 1])(bm.tensor(a))
    with pytest.raises(ValueError, match=r"\[Normalize\] std evaluated to zero"):
        T.Normalize([0], [0])


def test_random_crop_matches_numpy_window(rng):
    a = images(rng, n=8)
    crop = T.RandomCrop((3, 2), padding=1, seed=5)
    out = crop(bm.tensor(a)).numpy()
    assert out.shape == (8, 2, 3, 2)
    # Replay the generator: the same offsets, cut from the zero-padded images with NumPy.
    replay = np.random.default_rng(5)
    i = replay.integers(0, 7 - 3 + 1, size=8)
    j = replay.integers(0, 6 - 2 + 1, size=8)
    padded = np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for k in range(8):
        np.testing.assert_array_equal(out[k], padded[k, :, i[k]:i[k] + 3, j[k]:j[k] + 2])
    assert len(set(zip(i, j))) > 1  # offsets differ between images


def test_random_crop_without_padding_and_errors(rng):
    a = images(rng)
    np.testing.assert_array_equal(T.RandomCrop((5, 4))(bm.tensor(a)).numpy(), a)  # full-size crop is the identity
    with pytest.raises(ValueError, match=r"\[RandomCrop\] crop size \(6, 6\) is larger"):
        T.RandomCrop(6)(bm.tensor(a))
    with pytest.raises(ValueError, match=r"\[RandomCrop\] expected images"):
        T.RandomCrop(2)(bm.randn(3, 3))


def test_random_horizontal_flip_matches_numpy(rng):
    a = images(rng, n=32)
    out = T.RandomHorizontalFlip(0.5, seed=9)(bm.tensor(a)).numpy()
    flip = np.random.default_rng(9).random(32) < 0.5
    assert 0 < flip.sum() < 32
    np.testing.assert_array_equal(out[flip], a[flip][..., ::-1])
    np.testing.assert_array_equal(out[~flip], a[~flip])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(bm.tensor(a)).numpy(), a[..., ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(0.0)(bm.tensor(a)).numpy(), a)


def test_random_transforms_follow_manual_seed(rng):
    a = bm.tensor(images(rng, n=16))

    def run():
        bm.manual_seed(123)
        tf = T.Compose([T.RandomCrop(4, padding=2), T.RandomHorizontalFlip()])
        return [tf(a).numpy() for _ in range(3)]

    first, second = run(), run()
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0], first[1])  # successive batches get new draws
    bm.manual_seed(124)
    other = T.RandomCrop(4, padding=2)(a).numpy()
    bm.manual_seed(123)
    assert not np.array_equal(other, T.RandomCrop(4, padding=2)(a).numpy())


# ---------------------------------------------------------------- DataLoader transform and prefetch

def dataset(rng, n=50):
    return TensorDataset(bm.tensor(images(rng, n=n)), bm.arange(n))


def collect(loader):
    return [(x.numpy().copy(), y.numpy().copy()) for x, y in loader]


@pytest.mark.parametrize("shuffle", [False, True])
def test_prefetch_gives_the_same_batches(rng, shuffle):
    ds = dataset(rng)
    tf = T.Normalize([1.0, 2.0], [0.5, 0.5])
    plain = collect(DataLoader(ds, batch_size=8, shuffle=shuffle, seed=4, transform=tf, prefetch=0))
    ahead = collect(DataLoader(ds, batch_size=8, shuffle=shuffle, seed=4, transform=tf, prefetch=2))
    assert len(plain) == len(ahead) == 7
    for (x0, y0), (x1, y1) in zip(plain, ahead):
        np.testing.assert_array_equal(x0, x1)
        np.testing.assert_array_equal(y0, y1)
    # The transform was applied to the inputs only.
    raw = ds.tensors[0].numpy()[plain[0][1]]
    np.testing.assert_allclose(plain[0][0], (raw - np.array([1.0, 2.0]).reshape(1, 2, 1, 1)) / 0.5, rtol=1e-6)


def test_prefetch_with_random_transform_repeats_under_manual_seed(rng):
    ds = dataset(rng)

    def run():
        bm.manual_seed(7)
        return collect(DataLoader(ds, batch_size=10, shuffle=True, transform=T.RandomHorizontalFlip()))

    for (x0, y0), (x1, y1) in zip(run(), run()):
        np.testing.assert_array_equal(x0, x1)
        np.testing.assert_array_equal(y0, y1)


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "bigmodel-prefetch"]


def test_prefetch_early_break_stops_the_thread(rng):
    loader = DataLoader(dataset(rng, n=200), batch_size=4, prefetch=2)
    for i, _ in enumerate(loader):
        if i == 2:
            break
    deadline = time.time() + 5
    while prefetch_threads() and time.time() < deadline:
        time.sleep(0.01)
    assert not prefetch_threads()
    assert len(collect(loader)) == 50  # the loader still works afterwards


class Faulty(Dataset):
    def __len__(self):
        return 20

    def __getitem__(self, i):
        if i == 13:
            raise KeyError(f"bad sample {i}")
        return bm.tensor([float(i)]), i


@pytest.mark.parametrize("prefetch", [0, 2])
def test_dataset_exception_is_reraised_with_the_index(prefetch):
    seen = []
    with pytest.raises(KeyError, match="bad sample 13.*DataLoader: while loading dataset index 13"):
        for x, y in DataLoader(Faulty(), batch_size=4, prefetch=prefetch):
            seen.append(y.numpy().tolist())
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]  # every batch before the bad one arrived
    time.sleep(0.1)
    assert not prefetch_threads()


def test_dataloader_rejects_bad_prefetch_and_transform():
    with pytest.raises(ValueError, match=r"\[DataLoader\] prefetch"):
        DataLoader(TensorDataset(bm.zeros(3)), prefetch=-1)
    with pytest.raises(TypeError, match=r"\[DataLoader\] transform must be callable"):
        DataLoader(TensorDataset(bm.zeros(3)), transform=3)


class FaultyBatches(Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, i):
        return bm.tensor([float(i)]), i

    def get_batch(self, indices):
        if 9 in indices:
            raise ValueError("corrupt record")
        return bm.tensor(indices.astype(np.float32)), bm.tensor(indices)


def test_batch_dataset_exception_names_the_batch_indices():
    with pytest.raises(ValueError, match=r"corrupt record.*dataset indices \[8, 9, 10, 11\]"):
        collect(DataLoader(FaultyBatches(), batch_size=4))
