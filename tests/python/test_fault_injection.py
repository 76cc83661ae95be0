"""Fault injection: a process SIGKILLed in the middle of bm.save leaves the previous checkpoint
loadable and intact; a dataset that raises is reported with its index and the original
exception (with and without the prefetch thread); a corrupt checkpoint structure record
raises ValueError naming [load], never another exception type. (A dead rank in an MPI job:
tests/dist/test_fault_dead_rank.py.)"""
import io
import os
import signal
import subprocess
import sys
import threading
import time
import traceback

import numpy as np
import pytest

import bigmodel as bm
from bigmodel.data import DataLoader

# ---- kill -9 during bm.save ----

_SAVER = r"""
import sys
import bigmodel as bm
path, n = sys.argv[1], int(sys.argv[2])
for step in range(1, 1000000):
    bm.save({"step": step, "w": bm.full((n,), float(step)), "meta": {"tag": "s%d" % step}}, path)
    print(step, flush=True)
"""
_N = 1 << 22  # 16 MB of float32 per checkpoint: a save takes long enough to be hit mid-write


def _child_env():
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(bm.__file__)))
    env["PYTHONPATH"] = pkg_parent + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _temp_files(directory):
    return [f for f in os.listdir(directory) if f.endswith(".tmp")]


def _kill_mid_save(tmp_path, delay):
    """Starts a process saving checkpoints in a loop; once a save has finished and the next one's
    temporary file appears, waits `delay` s and SIGKILLs it. Returns (last step reported saved,
    whether a temporary file was present when the kill landed)."""
    path = tmp_path / "ckpt.bm"
    proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path), str(_N)], stdout=subprocess.PIPE,
                            env=_child_env(), text=True)
    try:
        first = proc.stdout.readline()  # step 1 is on disk
        assert first.strip() == "1", f"the saver failed to start: {first!r}"
        deadline = time.monotonic() + 60
        while not _temp_files(tmp_path):  # the next save has begun writing
            assert time.monotonic() < deadline and proc.poll() is None, "the saver never started a second save"
            time.sleep(0.0005)
        time.sleep(delay)
        mid_write = bool(_temp_files(tmp_path))
        proc.send_signal(signal.SIGKILL)
        rest = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    reported = [int(s) for s in ("1\n" + rest).split()]
    return path, reported[-1], mid_write


@pytest.mark.parametrize("delay", [0.0, 0.002, 0.015, 0.06])
def test_sigkill_during_save_keeps_a_loadable_checkpoint(tmp_path, delay):
    path, last, mid_write = _kill_mid_save(tmp_path, delay)
    if delay == 0.0:
        assert mid_write, "the kill was meant to land while the temporary file was being written"
    ck = bm.load(path)
    # The checkpoint is the last one reported saved, or the one whose rename landed just
    # before the kill (its print had not happened yet); never a torn mix.
    assert ck["step"] in (last, last + 1), (ck["step"], last)
    assert ck["meta"] == {"tag": f"s{ck['step']}"}
    w = ck["w"].numpy()
    assert w.shape == (_N,) and np.all(w == float(ck["step"]))
    # A leftover temporary file does not get in the way of the next save.
    bm.save({"step": 0, "w": bm.ones(3)}, path)
    assert bm.load(path)["step"] == 0


# ---- a dataset that raises ----

class _Broken(Exception):
    """An exception type that can't be re-made from a message (two required arguments)."""

    def __init__(self, code, detail):
        super().__init__(f"code {code}: {detail}")
        self.code = code


class FlakyDataset:
    def __init__(self, n=20, bad=7, exc=None):
        self.n, self.bad = n, bad
        self.exc = exc or (lambda i: ValueError(f"sample {i} is corrupt"))

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.bad:
            raise self.exc(i)  # the dataset's own failure
        return bm.full((2,), float(i))


class FlakyBatchDataset(FlakyDataset):
    def get_batch(self, idx):
        if self.bad in list(idx):
            raise self.exc(self.bad)
        return bm.tensor(np.repeat(np.asarray(idx, dtype=np.float32)[:, None], 2, axis=1))


def _consume(loader):
    seen = []
    for b in loader:
        seen.append(b)
    return seen


def _frames(exc):
    return [f.name for f in traceback.extract_tb(exc.__traceback__)]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_dataset_error_names_the_index_and_keeps_the_original(prefetch):
    loader = DataLoader(FlakyDataset(), batch_size=4, prefetch=prefetch)
    with pytest.raises(ValueError) as info:
        _consume(loader)
    e = info.value
    assert "sample 7 is corrupt" in str(e) and "dataset index 7" in str(e)
    orig = e.__cause__
    assert isinstance(orig, ValueError) and str(orig) == "sample 7 is corrupt"
    assert "__getitem__" in _frames(orig)  # the original traceback points into the dataset
    # The loader is usable again, and no prefetch thread is left behind.
    loader.dataset.bad = -1
    assert len(_consume(loader)) == 5
    deadline = time.monotonic() + 5
    while any(t.name == "bigmodel-prefetch" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "a prefetch thread was left running"
        time.sleep(0.01)


@pytest.mark.parametrize("prefetch", [0, 2])
def test_batch_fetch_error_names_the_batch_indices(prefetch):
    loader = DataLoader(FlakyBatchDataset(bad=9), batch_size=4, prefetch=prefetch)
    it = iter(loader)
    np.testing.assert_array_equal(next(it).numpy()[:, 0], [0, 1, 2, 3])  # batches before the bad one arrive
    np.testing.assert_array_equal(next(it).numpy()[:, 0], [4, 5, 6, 7])
    with pytest.raises(ValueError, match=r"sample 9 is corrupt.*dataset indices \[8, 9, 10, 11\]") as info:
        next(it)
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("prefetch", [0, 2])
def test_unusual_exception_type_is_raised_as_itself_with_a_note(prefetch):
    loader = DataLoader(FlakyDataset(bad=13, exc=lambda i: _Broken(42, f"bad {i}")), batch_size=5, prefetch=prefetch)
    with pytest.raises(_Broken) as info:
        _consume(loader)
    e = info.value
    assert e.code == 42 and "bad 13" in str(e)
    assert any("dataset index 13" in n for n in getattr(e, "__notes__", []))


@pytest.mark.parametrize("prefetch", [0, 2])
def test_shuffled_loader_reports_the_real_dataset_index(prefetch):
    loader = DataLoader(FlakyDataset(n=30, bad=21), batch_size=3, shuffle=True, seed=5, prefetch=prefetch)
    with pytest.raises(ValueError, match="dataset index 21"):
        _consume(loader)


# ---- corrupt checkpoint structure records (found by tests/fuzz/fuzz_checkpoint_meta.py) ----

def _with_structure(structure):
    blob = bm._C._safetensors_serialize([("a", bm.ones(2))], {"format": "bigmodel.checkpoint", "version": "1",
                                                              "structure": structure})
    return io.BytesIO(blob)


@pytest.mark.parametrize("structure", [
    "[" * 100000 + "]" * 100000,  # json's recursion limit
    '{"x": ' * 5000 + "1" + "}" * 5000,
    '{"__dtype__": "__class__"}',  # used to return a type object
    '{"__dtype__": 7}',
    '{"__dtype__": "float99"}',
    '{"__float__": [1]}',
    '{"__device__": 3}',
    '{"__items__": [[{"k": 1}, 2]]}',  # unhashable key
    '{"__tensor__": ["a"]}',
    '{"__tuple__": 5}',
])
def test_corrupt_structure_record_raises_value_error(structure):
    with pytest.raises(ValueError, match=r"^\[load\]"):
        bm.load(_with_structure(structure))


def test_valid_structure_records_still_load():
    assert bm.load(_with_structure('{"d": {"__dtype__": "float16"}, "f": {"__float__": "inf"}}')) == \
        {"d": bm.float16, "f": float("inf")}
