"""C++ <-> Python nn interchange: Python builds each module (Linear, Conv2d, BatchNorm2d,
LayerNorm, Embedding, LSTM, GRU, MultiheadAttention) with random weights, writes its state dict,
inputs and constructor arguments to safetensors; the C++ program bigmodel_nn_interop
(tests/cpp/interop/nn_interop.cpp) loads them strictly into the C++ module, runs forward in eval
mode and writes its outputs and its own freshly initialised state_dict back. We check the
outputs equal Python's and that the C++ state_dict loads strictly into the Python module."""
import os
import subprocess

import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn
from conftest import assert_close

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = "bigmodel_nn_interop"


def _binary():
    roots = []
    env = os.environ.get("BIGMODEL_BUILD_DIR")
    if env:
        roots += [env, os.path.join(REPO, env)]
    roots.append(os.path.join(REPO, "build"))
    for root in roots:
        path = os.path.join(root, "tests", TARGET)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    pytest.skip(f"the C++ program {TARGET} is not built (CMake target '{TARGET}', BIGMODEL_TESTS=ON; "
                f"looked under $BIGMODEL_BUILD_DIR and ./build /tests)")


def _arr(rng, *shape, dtype=np.float64):
    return bm.tensor(rng.standard_normal(shape).astype(dtype))


def _randomize(module, rng):
    """Random values for every parameter and buffer, so nothing passes on default init alone."""
    state = {}
    for name, t in module.state_dict().items():
        if not t.is_floating_point():
            state[name] = bm.tensor(np.full(tuple(t.shape), 7, dtype=np.int64))
            continue
        v = rng.standard_normal(tuple(t.shape))
        if name.endswith("running_var"):
            v = np.abs(v) + 0.5
        state[name] = bm.tensor(v).to(t.dtype)
    module.load_state_dict(state, strict=True)


# kind -> (constructor metadata, Python module builder, inputs builder, Python forward -> outputs)
def _cases(rng):
    f32 = np.float32
    return {
        "Linear": (
            {"in_features": 5, "out_features": 3, "dtype": "F32"},
            lambda: nn.Linear(5, 3, dtype=bm.float32),
            lambda: {"x": _arr(rng, 4, 5, dtype=f32)},
            lambda m, i: {"output": m(i["x"])}),
        "Conv2d": (
            {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 1, "groups": 2,
             "dtype": "F64"},
            lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, dtype=bm.float64),
            lambda: {"x": _arr(rng, 2, 4, 7, 6)},
            lambda m, i: {"output": m(i["x"])}),
        "BatchNorm2d": (
            {"num_features": 3, "eps": 1e-3, "dtype": "F64"},
            lambda: nn.BatchNorm2d(3, eps=1e-3, dtype=bm.float64),
            lambda: {"x": _arr(rng, 2, 3, 4, 5)},
            lambda m, i: {"output": m(i["x"])}),
        "LayerNorm": (
            {"normalized_shape": "3,4", "eps": 1e-4, "dtype": "F64"},
            lambda: nn.LayerNorm((3, 4), eps=1e-4, dtype=bm.float64),
            lambda: {"x": _arr(rng, 2, 5, 3, 4)},
            lambda m, i: {"output": m(i["x"])}),
        "Embedding": (
            {"num_embeddings": 10, "embedding_dim": 4, "padding_idx": 1, "dtype": "F32"},
            lambda: nn.Embedding(10, 4, padding_idx=1, dtype=bm.float32),
            lambda: {"x": bm.tensor(rng.integers(0, 10, size=(3, 5)).astype(np.int64))},
            lambda m, i: {"output": m(i["x"])}),
        "LSTM": (
            {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bidirectional": 1, "batch_first": 1,
             "dtype": "F64"},
            lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True, dtype=bm.float64),
            lambda: {"x": _arr(rng, 2, 5, 3), "h0": _arr(rng, 4, 2, 4), "c0": _arr(rng, 4, 2, 4)},
            lambda m, i: dict(zip(("output", "h_n", "c_n"), _flat_lstm(m(i["x"], (i["h0"], i["c0"])))))),
        "GRU": (
            {"input_size": 3, "hidden_size": 5, "num_layers": 2, "dtype": "F32"},
            lambda: nn.GRU(3, 5, num_layers=2, dtype=bm.float32),
            lambda: {"x": _arr(rng, 6, 2, 3, dtype=f32), "h0": _arr(rng, 2, 2, 5, dtype=f32)},
            lambda m, i: dict(zip(("output", "h_n"), m(i["x"], i["h0"])))),
        "MultiheadAttention": (
            {"embed_dim": 8, "num_heads": 2, "batch_first": 1, "dtype": "F64"},
            lambda: nn.MultiheadAttention(8, 2, batch_first=True, dtype=bm.float64),
            lambda: {"query": _arr(rng, 2, 3, 8), "key": _arr(rng, 2, 4, 8), "value": _arr(rng, 2, 4, 8),
                     "key_padding_mask": bm.tensor(np.array([[False, False, True, False],
                                                             [False, False, False, False]])),
                     "attn_mask": _arr(rng, 3, 4) * 0.5},
            lambda m, i: dict(zip(("output", "weights"),
                                  m(i["query"], i["key"], i["value"], key_padding_mask=i["key_padding_mask"],
                                    attn_mask=i["attn_mask"])))),
    }


def _flat_lstm(result):
    out, (h, c) = result
    return out, h, c


def _write_case(directory, kind, meta, module, inputs):
    tensors = {"state." + k: v for k, v in module.state_dict().items()}
    tensors.update({"input." + k: v for k, v in inputs.items()})
    bm.save_file(tensors, os.path.join(directory, f"{kind}_in.safetensors"),
                 metadata={k: str(v) for k, v in meta.items()})


def _run(binary, directory, kinds):
    return subprocess.run([binary, str(directory)] + list(kinds), capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def interop(tmp_path_factory):
    """Writes every case, runs the C++ program once, returns {kind: (module, python_out, cpp_file)}."""
    binary = _binary()
    directory = tmp_path_factory.mktemp("cpp_interop")
    rng = np.random.default_rng(2026)
    results = {}
    for kind, (meta, build, make_inputs, run) in _cases(rng).items():
        bm.manual_seed(1)
        module = build()
        _randomize(module, rng)
        module.eval()
        inputs = make_inputs()
        _write_case(str(directory), kind, meta, module, inputs)
        with bm.no_grad():
            expected = run(module, inputs)
        results[kind] = (build, module, expected)
    proc = _run(binary, directory, [])
    assert proc.returncode == 0, f"{TARGET} failed:\n{proc.stdout}\n{proc.stderr}"
    return {kind: (b, m, e, bm.load_file(os.path.join(directory, f"{kind}_out.safetensors")))
            for kind, (b, m, e) in results.items()}


KINDS = ["Linear", "Conv2d", "BatchNorm2d", "LayerNorm", "Embedding", "LSTM", "GRU", "MultiheadAttention"]


@pytest.mark.parametrize("kind", KINDS)
def test_cpp_forward_equals_python(interop, kind):
    _, _, expected, got = interop[kind]
    assert sorted(k for k in got if k.startswith("output.")) == sorted("output." + k for k in expected)
    for name, want in expected.items():
        have = got["output." + name]
        assert have.dtype == want.dtype, name
        assert tuple(have.shape) == tuple(want.shape), name
        assert_close(have, want.numpy())


@pytest.mark.parametrize("kind", KINDS)
def test_cpp_state_dict_loads_strictly_into_python(interop, kind):
    build, module, _, got = interop[kind]
    cpp_state = {k[len("state."):]: v for k, v in got.items() if k.startswith("state.")}
    py_state = module.state_dict()
    assert list(cpp_state) == list(py_state)  # same names, same order
    for name, t in py_state.items():
        assert tuple(cpp_state[name].shape) == tuple(t.shape), name
        assert cpp_state[name].dtype == t.dtype, name
    fresh = build()
    fresh.load_state_dict(cpp_state, strict=True)
    # The C++ values really arrived (not left at Python's own init).
    for name, t in fresh.state_dict().items():
        assert np.array_equal(t.numpy(), cpp_state[name].numpy()), name


def test_cpp_state_dict_init_ranges(interop):
    """C++'s fresh init follows PyTorch's: LayerNorm ones/zeros, MHA zero biases, LSTM in U(+-1/sqrt(H))."""
    state = lambda kind: {k[6:]: v.numpy() for k, v in interop[kind][3].items() if k.startswith("state.")}
    ln = state("LayerNorm")
    assert np.all(ln["weight"] == 1) and np.all(ln["bias"] == 0)
    mha = state("MultiheadAttention")
    assert np.all(mha["in_proj_bias"] == 0) and np.all(mha["out_proj.bias"] == 0)
    assert np.abs(mha["in_proj_weight"]).max() <= np.sqrt(6.0 / 32)
    lstm = state("LSTM")
    assert all(np.abs(v).max() <= 0.5 and v.std() > 0.1 for v in lstm.values())
    emb = state("Embedding")
    assert np.all(emb["weight"][1] == 0) and abs(emb["weight"].std() - 1) < 0.5


def test_cpp_rejects_mismatched_state(tmp_path):
    """A state dict that does not fit (wrong shape, missing key) is refused by the C++ strict load."""
    binary = _binary()
    rng = np.random.default_rng(7)
    tensors = {"state.weight": _arr(rng, 3, 4, dtype=np.float32), "input.x": _arr(rng, 2, 5, dtype=np.float32)}
    bm.save_file(tensors, str(tmp_path / "Linear_in.safetensors"),
                 metadata={"in_features": "5", "out_features": "3", "dtype": "F32"})
    proc = _run(binary, tmp_path, ["Linear"])
    assert proc.returncode == 1
    assert "[load_state_dict]" in proc.stderr and "size mismatch for weight" in proc.stderr
    assert "Missing key(s)" in proc.stderr and "bias" in proc.stderr
    assert not (tmp_path / "Linear_out.safetensors").exists()
