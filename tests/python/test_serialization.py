"""bm.save/bm.load checkpoints and bm.save_file/bm.load_file safetensors files: nested
round trips, bit-exact training resume (RNG included), corrupt files, atomic saves."""
import io
import json
import math
import os
import struct
from collections import OrderedDict

import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn, optim
from bigmodel.optim import lr_scheduler


def test_nested_round_trip(rng, tmp_path):
    arr = rng.standard_normal((2, 3))
    obj = {
        "weights": OrderedDict([("fc.weight", bm.tensor(arr)), ("fc.bias", bm.tensor(arr[0]).float())]),
        "param": nn.Parameter(bm.tensor(arr[1])),
        "ints": {0: bm.tensor([1, 2, 3]), 7: "seven", "__dunder": 1.5},
        "list": [1, 2.5, None, True, "s", (3, (4.0, "x"))],
        "special": [math.inf, -math.inf],
        "dtype": bm.bfloat16, "device": bm.device("cpu"),
        "np": np.arange(4, dtype=np.int32), "npscalar": np.float64(2.5),
        "half": bm.tensor(arr).half(), "mask": bm.tensor(arr) > 0, "nc": bm.tensor(arr).t(),
    }
    path = tmp_path / "ck.bm"
    bm.save(obj, path)
    out = bm.load(path)
    assert isinstance(out["weights"], OrderedDict) and list(out["weights"]) == ["fc.weight", "fc.bias"]
    np.testing.assert_array_equal(out["weights"]["fc.weight"].numpy(), arr)
    assert out["weights"]["fc.bias"].dtype == bm.float32
    assert isinstance(out["param"], nn.Parameter) and out["param"].requires_grad
    assert out["ints"][7] == "seven" and out["ints"]["__dunder"] == 1.5
    assert out["ints"][0].dtype == bm.int64 and out["ints"][0].tolist() == [1, 2, 3]
    assert out["list"] == [1, 2.5, None, True, "s", (3, (4.0, "x"))]
    assert out["special"] == [math.inf, -math.inf]
    assert out["dtype"] == bm.bfloat16 and out["device"] == bm.device("cpu")
    assert isinstance(out["np"], np.ndarray) and out["np"].dtype == np.int32 and out["np"].tolist() == [0, 1, 2, 3]
    assert out["npscalar"] == 2.5
    assert out["half"].dtype == bm.float16
    np.testing.assert_array_equal(out["half"].numpy(), arr.astype(np.float16))
    np.testing.assert_array_equal(out["mask"].numpy(), arr > 0)
    np.testing.assert_array_equal(out["nc"].numpy(), arr.T)
    nan = bm.load(_saved(tmp_path, {"x": math.nan}))["x"]
    assert math.isnan(nan)


def _saved(tmp_path, obj, name="x.bm"):
    p = tmp_path / name
    bm.save(obj, p)
    return p


def test_plain_safetensors_files(tmp_path):
    t = {"a": bm.arange(6).reshape(2, 3).float(), "b": bm.tensor([True, False]), "c": bm.zeros(0, 2),
         "d": bm.tensor([1.5, -2.0]).bfloat16()}
    bm.save_file(t, tmp_path / "m.safetensors", metadata={"format": "pt", "name": "tiny"})
    back = bm.load_file(tmp_path / "m.safetensors")
    assert list(back) == ["a", "b", "c", "d"]
    for k in t:
        assert back[k].dtype == t[k].dtype and back[k].shape == t[k].shape
        np.testing.assert_array_equal(back[k].float().numpy(), t[k].float().numpy())
    assert bm.serialization.load_metadata(tmp_path / "m.safetensors") == {"format": "pt", "name": "tiny"}
    # A plain safetensors file also loads with bm.load, as {name: tensor}.
    assert set(bm.load(tmp_path / "m.safetensors")) == {"a", "b", "c", "d"}
    # The on-disk layout is the standard one: u64 header length, JSON header, data.
    raw = (tmp_path / "m.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert header["a"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    assert header["b"]["dtype"] == "BOOL" and header["d"]["dtype"] == "BF16"
    with pytest.raises(TypeError, match="metadata"):
        bm.save_file(t, tmp_path / "x.safetensors", metadata={"k": 1})
    with pytest.raises(TypeError, match="str -> Tensor"):
        bm.save_file({"a": 1}, tmp_path / "x.safetensors")


def test_file_objects():
    buf = io.BytesIO()
    bm.save({"x": bm.tensor([1.0, 2.0]), "n": 3}, buf)
    buf.seek(0)
    out = bm.load(buf)
    assert out["n"] == 3 and out["x"].tolist() == [1.0, 2.0]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(8, 1)

    def forward(self, x):
        return self.fc2(self.drop(self.fc1(x).tanh()))


def _train(model, opt, sched, steps):
    losses = []
    for _ in range(steps):
        x = bm.randn(16, 4)  # data from the RNG too, so the RNG state matters
        y = x.sum(dim=1, keepdim=True)
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def _setup(seed):
    bm.manual_seed(seed)
    model = Net()
    opt = optim.AdamW(model.parameters(), lr=0.01)
    sched = lr_scheduler.warmup_cosine(opt, 3, 20)
    return model, opt, sched


def test_resume_is_bit_exact(tmp_path):
    k, n = 4, 10
    model, opt, sched = _setup(0)
    _train(model, opt, sched, k)
    ck = {"model": model.state_dict(), "optim": opt.state_dict(), "sched": sched.state_dict(),
          "rng": bm.get_rng_state(), "step": k}
    bm.save(ck, tmp_path / "ck.bm")
    straight = _train(model, opt, sched, n - k)

    model2, opt2, sched2 = _setup(123)  # different init and RNG: everything must come from the file
    ck2 = bm.load(tmp_path / "ck.bm")
    model2.load_state_dict(ck2["model"])
    opt2.load_state_dict(ck2["optim"])
    sched2.load_state_dict(ck2["sched"])
    bm.set_rng_state(ck2["rng"])
    assert ck2["step"] == k
    resumed = _train(model2, opt2, sched2, n - k)
    assert resumed == straight  # bit for bit
    for (name, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_corrupt_and_truncated_files(tmp_path):
    path = _saved(tmp_path, {"w": bm.randn(16, 16), "meta": {"a": 1}})
    raw = path.read_bytes()
    cases = {
        "truncated": raw[:len(raw) - 100],
        "short": raw[:5],
        "huge_header": struct.pack("<Q", 1 << 40) + raw[8:],
        "garbage_header": raw[:8] + b"#" * (len(raw) - 8),
    }
    for name, data in cases.items():
        bad = tmp_path / f"{name}.bm"
        bad.write_bytes(data)
        with pytest.raises(ValueError, match=r"\[safetensors\]"):
            bm.load(bad)
    # A well-formed file whose structure record is broken.
    bm.save_file({"w": bm.zeros(2)}, tmp_path / "s.bm",
                 metadata={"format": "bigmodel.checkpoint", "version": "1", "structure": "{not json"})
    with pytest.raises(ValueError, match=r"\[load\]"):
        bm.load(tmp_path / "s.bm")
    bm.save_file({"w": bm.zeros(2)}, tmp_path / "m.bm",
                 metadata={"format": "bigmodel.checkpoint", "version": "1", "structure": '{"__tensor__": "nope"}'})
    with pytest.raises(ValueError, match=r"\[load\].*nope"):
        bm.load(tmp_path / "m.bm")
    with pytest.raises(FileNotFoundError):
        bm.load(tmp_path / "missing.bm")


def test_failed_save_keeps_previous_file(tmp_path):
    path = _saved(tmp_path, {"w": bm.ones(3)}, "keep.bm")
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"\[save\].*object.*at 'bad.1'"):
        bm.save({"w": bm.zeros(3), "bad": [1, object()]}, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keep.bm"]  # no temporary file left behind
    # A successful save replaces it.
    bm.save({"w": bm.zeros(3)}, path)
    assert bm.load(path)["w"].tolist() == [0.0, 0.0, 0.0]
    assert sorted(os.listdir(tmp_path)) == ["keep.bm"]


def test_save_interrupted_while_writing_keeps_previous_file(tmp_path, monkeypatch):
    path = _saved(tmp_path, {"w": bm.ones(3)}, "keep.bm")
    before = path.read_bytes()

    def boom(fd):
        raise OSError("disk vanished")
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk vanished"):
        bm.save({"w": bm.zeros(3)}, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keep.bm"]


def test_random_corruption_never_crashes(tmp_path):
    """Byte flips and truncations anywhere in a file: either it still loads or ValueError, never a crash."""
    data = bytearray(_saved(tmp_path, {"a": bm.randn(3, 2), "b": [bm.arange(4), {"k": "v"}]}).read_bytes())
    r = np.random.default_rng(7)
    for i in range(300):
        bad = bytearray(data)
        if i % 3 == 0:
            bad = bad[:r.integers(0, len(bad))]
        else:
            for _ in range(r.integers(1, 4)):
                bad[r.integers(0, len(bad))] = int(r.integers(0, 256))
        try:
            bm.load(io.BytesIO(bytes(bad)))
        except ValueError as e:
            assert str(e).startswith(("[safetensors]", "[load]")), str(e)
