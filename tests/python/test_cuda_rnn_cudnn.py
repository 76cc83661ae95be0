"""cuda tier: the cuDNN RNN baseline (bm.backends.rnn = "cudnn", kernels/cuda/rnn_cudnn.cu)
against our CUDA layer loop and the CPU, for nn.RNN (tanh, relu), nn.LSTM and nn.GRU: outputs,
final states and the gradients of the input, h0, c0 and every weight and bias, with variable
lengths (and PackedSequence), bidirectional, 2-3 layers, no bias, batch_first, unbatched, odd
sizes, float32 / float64 / float16 / bfloat16, dropout between layers (ours in both), inference
under no_grad; a second backward through one forward and bad inputs raise naming cudnn_rnn. Skips
without a GPU."""
import numpy as np
import pytest

import bigmodel as bm
from bigmodel import nn
from _cuda import host64, requires_cuda

pytestmark = requires_cuda

# Max |a - e| over max(1, max |e|). float32: cuDNN's and our GEMMs sum in different orders and
# the recurrence carries the difference through T steps; a layout or gate-order mistake gives
# errors of order 1. Half types are compared with a float32 CPU run on the same rounded values.
TOL = {bm.float64: 1e-10, bm.float32: 1e-4, bm.float16: 1.5e-2, bm.bfloat16: 6e-2}
CLASSES = {"RNN_TANH": (nn.RNN, {"nonlinearity": "tanh"}), "RNN_RELU": (nn.RNN, {"nonlinearity": "relu"}),
           "LSTM": (nn.LSTM, {}), "GRU": (nn.GRU, {})}


_CUDNN = {}


def cudnn_missing():
    """The error of a build without cuDNN (None when cuDNN is there), probed once."""
    if "missing" not in _CUDNN:
        x, h0 = bm.randn(2, 1, 3, device="cuda"), bm.randn(1, 1, 2, device="cuda")
        w = [bm.randn(2, 3, device="cuda"), bm.randn(2, 2, device="cuda")]
        try:
            bm._C._cudnn_rnn(x, h0, None, w, "RNN_TANH", 1, False, False)
            _CUDNN["missing"] = None
        except RuntimeError as e:
            if "without cuDNN" not in str(e):
                raise
            _CUDNN["missing"] = str(e)
    return _CUDNN["missing"]


@pytest.fixture(autouse=True)
def restore_backend():
    missing = cudnn_missing()
    if missing:
        pytest.skip(missing)
    before = bm.backends.rnn
    yield
    bm.backends.rnn = before


def check(actual, expected, tol, what):
    a, e = host64(actual), host64(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    assert np.isfinite(a).all(), f"{what}: non-finite values (unwritten output?)"
    err = np.abs(a - e).max() / max(1.0, np.abs(e).max()) if e.size else 0.0
    assert err <= tol, f"{what}: max error {err:.3g} > {tol:g} (relative to the largest value)"


def make_module(mode, seed, **kw):
    cls, extra = CLASSES[mode]
    bm.manual_seed(seed)  # the same initial weights on every device
    return cls(kw.pop("input_size"), kw.pop("hidden_size"), **extra, **kw)


def run(mode, cfg, data, backend, device, dtype, lengths=None, grad=True):
    """Forward + backward of one module on one device/dtype; returns (outputs, grads) dicts."""
    bm.backends.rnn = backend
    m = make_module(mode, cfg["seed"], **{k: v for k, v in cfg.items() if k != "seed"})
    m = m.to(device=device, dtype=dtype)
    x = bm.tensor(data["x"], dtype=dtype, device=device).requires_grad_(grad)
    h0 = bm.tensor(data["h0"], dtype=dtype, device=device).requires_grad_(grad)
    c0 = bm.tensor(data["c0"], dtype=dtype, device=device).requires_grad_(grad)
    hx = (h0, c0) if mode == "LSTM" else h0
    out, state = m(x, hx, lengths=lengths)
    h_n, c_n = state if mode == "LSTM" else (state, None)
    outs = {"out": out, "h_n": h_n}
    if c_n is not None:
        outs["c_n"] = c_n
    grads = {}
    if grad:
        loss = (out * bm.tensor(data["g_out"], dtype=dtype, device=device)).sum()
        loss = loss + (h_n * bm.tensor(data["g_h"], dtype=dtype, device=device)).sum()
        if c_n is not None:
            loss = loss + (c_n * bm.tensor(data["g_c"], dtype=dtype, device=device)).sum()
        loss.backward()
        grads = {"x": x.grad, "h0": h0.grad}
        if mode == "LSTM":
            grads["c0"] = c0.grad
        for name, p in m.named_parameters():
            grads[name] = p.grad
    return outs, grads


def make_data(rng, mode, cfg, T, B):
    D = 2 if cfg.get("bidirectional") else 1
    L, H, I = cfg.get("num_layers", 1), cfg["hidden_size"], cfg["input_size"]
    x_shape = (B, T, I) if cfg.get("batch_first") else (T, B, I)
    out_shape = (B, T, D * H) if cfg.get("batch_first") else (T, B, D * H)
    return {"x": rng.standard_normal(x_shape), "h0": 0.5 * rng.standard_normal((L * D, B, H)),
            "c0": 0.5 * rng.standard_normal((L * D, B, H)), "g_out": rng.standard_normal(out_shape),
            "g_h": rng.standard_normal((L * D, B, H)), "g_c": rng.standard_normal((L * D, B, H))}


def compare(got, want, tol, what):
    assert sorted(got) == sorted(want), f"{what}: {sorted(got)} != {sorted(want)}"
    for k in want:
        assert got[k] is not None, f"{what}: no gradient for {k}"
        check(got[k], want[k], tol, f"{what} {k}")


# (T, B, config, lengths): odd sizes, 1-3 layers, both directions, with and without bias.
CASES = [
    (9, 3, dict(input_size=5, hidden_size=7), None),
    (6, 4, dict(input_size=3, hidden_size=5, num_layers=2), [6, 2, 5, 1]),
    (7, 3, dict(input_size=4, hidden_size=6, bidirectional=True), [3, 7, 5]),
    (5, 5, dict(input_size=6, hidden_size=9, num_layers=2, bidirectional=True), [5, 1, 4, 2, 3]),
    (4, 2, dict(input_size=2, hidden_size=3, num_layers=3, bias=False), None),
    (8, 3, dict(input_size=33, hidden_size=17, num_layers=2, batch_first=True), [8, 8, 3]),
]


@pytest.mark.parametrize("mode", list(CLASSES))
@pytest.mark.parametrize("case", range(len(CASES)))
def test_cudnn_matches_ours_and_cpu_float32(mode, case):
    T, B, cfg, lengths = CASES[case]
    cfg = dict(cfg, seed=10 + case)
    data = make_data(np.random.default_rng(100 + case), mode, cfg, T, B)
    cpu = run(mode, cfg, data, "ours", "cpu", bm.float32, lengths)
    ours = run(mode, cfg, data, "ours", "cuda", bm.float32, lengths)
    cudnn = run(mode, cfg, data, "cudnn", "cuda", bm.float32, lengths)
    for i, what in enumerate(("forward", "gradient")):
        compare(ours[i], cpu[i], TOL[bm.float32], f"{mode} case {case} ours-cuda {what}")
        compare(cudnn[i], cpu[i], TOL[bm.float32], f"{mode} case {case} cudnn {what}")
        compare(cudnn[i], ours[i], TOL[bm.float32], f"{mode} case {case} cudnn vs ours-cuda {what}")


@pytest.mark.parametrize("mode", list(CLASSES))
def test_cudnn_float64_matches_cpu(mode):
    T, B, cfg, lengths = CASES[3]
    cfg = dict(cfg, seed=7)
    data = make_data(np.random.default_rng(7), mode, cfg, T, B)
    cpu = run(mode, cfg, data, "ours", "cpu", bm.float64, lengths)
    cudnn = run(mode, cfg, data, "cudnn", "cuda", bm.float64, lengths)
    compare(cudnn[0], cpu[0], TOL[bm.float64], f"{mode} float64 forward")
    compare(cudnn[1], cpu[1], TOL[bm.float64], f"{mode} float64 gradient")


@pytest.mark.parametrize("dtype", [bm.float16, bm.bfloat16])
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
def test_cudnn_half_types_match_cpu_float32(mode, dtype):
    # The CPU runs float32 on the same (rounded) weights and inputs: what is left is cuDNN's
    # half-precision storage of activations and gradients.
    T, B, cfg, lengths = CASES[1]
    cfg = dict(cfg, seed=3)
    data = make_data(np.random.default_rng(3), mode, cfg, T, B)
    rounded = {k: host64(bm.tensor(v, dtype=dtype)) for k, v in data.items()}
    cudnn = run(mode, cfg, rounded, "cudnn", "cuda", dtype, lengths)
    bm.backends.rnn = "ours"
    # The same initial weights, rounded to dtype and back: what the cuDNN module holds.
    m = make_module(mode, cfg["seed"], **{k: v for k, v in cfg.items() if k != "seed"}).to(dtype).to(bm.float32)
    cpu = run_with_module(m, mode, rounded, "cpu", bm.float32, lengths)
    for i, what in enumerate(("forward", "gradient")):
        got = {k: v.float() for k, v in cudnn[i].items()}
        compare(got, cpu[i], TOL[dtype], f"{mode} {dtype} {what}")
        for k, v in cudnn[i].items():
            assert v.dtype == dtype, f"{k} came back as {v.dtype}"


def run_with_module(m, mode, data, device, dtype, lengths):
    x = bm.tensor(data["x"], dtype=dtype, device=device).requires_grad_(True)
    h0 = bm.tensor(data["h0"], dtype=dtype, device=device).requires_grad_(True)
    c0 = bm.tensor(data["c0"], dtype=dtype, device=device).requires_grad_(True)
    out, state = m(x, (h0, c0) if mode == "LSTM" else h0, lengths=lengths)
    h_n, c_n = state if mode == "LSTM" else (state, None)
    loss = (out * bm.tensor(data["g_out"], dtype=dtype)).sum() + (h_n * bm.tensor(data["g_h"], dtype=dtype)).sum()
    outs = {"out": out, "h_n": h_n}
    if c_n is not None:
        loss = loss + (c_n * bm.tensor(data["g_c"], dtype=dtype)).sum()
        outs["c_n"] = c_n
    loss.backward()
    grads = {"x": x.grad, "h0": h0.grad}
    if mode == "LSTM":
        grads["c0"] = c0.grad
    grads.update({name: p.grad for name, p in m.named_parameters()})
    return outs, grads


def test_padding_is_zero_and_ignored():
    # Outputs past a length are exactly 0; the input gradient there is exactly 0 although the
    # output gradient there is not.
    T, B, cfg, lengths = CASES[3]
    cfg = dict(cfg, seed=5)
    data = make_data(np.random.default_rng(5), "LSTM", cfg, T, B)
    outs, grads = run("LSTM", cfg, data, "cudnn", "cuda", bm.float32, lengths)
    out, gx = host64(outs["out"]), host64(grads["x"])
    for b, n in enumerate(lengths):
        assert np.all(out[n:, b] == 0), f"batch {b}: outputs past length {n} are not 0"
        assert np.all(gx[n:, b] == 0), f"batch {b}: input gradient past length {n} is not 0"
        assert np.abs(out[:n, b]).max() > 0 and np.abs(gx[:n, b]).max() > 0


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_packed_sequence_and_unbatched(mode):
    rng = np.random.default_rng(11)
    cfg = dict(input_size=4, hidden_size=6, num_layers=2, bidirectional=True)
    lengths = [5, 2, 4]
    x = rng.standard_normal((5, 3, 4))
    res = {}
    for backend, device in (("ours", "cpu"), ("cudnn", "cuda")):
        bm.backends.rnn = backend
        m = make_module(mode, 21, **dict(cfg)).to(device=device)
        packed = nn.utils.rnn.pack_padded_sequence(bm.tensor(x, dtype=bm.float32, device=device), lengths,
                                                   enforce_sorted=False)
        out, state = m(packed)
        single, single_state = m(bm.tensor(x[:, 1], dtype=bm.float32, device=device))  # unbatched [T, I]
        res[backend] = (out.data, state[0] if mode == "LSTM" else state, single,
                        single_state[0] if mode == "LSTM" else single_state)
    for a, e, what in zip(res["cudnn"], res["ours"], ("packed data", "packed h_n", "unbatched out", "unbatched h_n")):
        check(a, e, TOL[bm.float32], f"{mode} {what}")


def test_inference_under_no_grad_matches_training_forward():
    T, B, cfg, lengths = CASES[1]
    cfg = dict(cfg, seed=9)
    data = make_data(np.random.default_rng(9), "LSTM", cfg, T, B)
    trained, _ = run("LSTM", cfg, data, "cudnn", "cuda", bm.float32, lengths, grad=False)
    with bm.no_grad():
        inferred, _ = run("LSTM", cfg, data, "cudnn", "cuda", bm.float32, lengths, grad=False)
    for k in trained:
        check(inferred[k], trained[k], 1e-6, f"no_grad {k}")
        assert not inferred[k].requires_grad


def test_second_backward_through_one_forward_raises():
    # cuDNN's backward writes into the forward's reserve space: a second backward (retain_graph)
    # would be silently wrong, so it raises; a fresh forward backs up again normally.
    bm.backends.rnn = "cudnn"
    m = make_module("LSTM", 4, input_size=3, hidden_size=5, num_layers=2).cuda()
    x = bm.tensor(np.random.default_rng(4).standard_normal((6, 2, 3)), dtype=bm.float32,
                  device="cuda").requires_grad_(True)
    out, _ = m(x)
    loss = (out * out).sum()
    loss.backward(retain_graph=True)
    first = host64(x.grad)
    with pytest.raises(RuntimeError, match=r"\[cudnn_rnn\] a second backward through one cuDNN RNN forward"):
        loss.backward()
    x.grad = None
    out, _ = m(x)
    (out * out).sum().backward()
    check(x.grad, bm.tensor(first), 1e-6, "backward of a fresh forward")


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_dropout_between_layers_matches_ours(mode):
    # Both backends draw the same masks (ours, from bm's generator) at the same points.
    cfg = dict(input_size=4, hidden_size=8, num_layers=3, dropout=0.5)
    x = np.random.default_rng(8).standard_normal((7, 3, 4))
    res = {}
    for backend in ("ours", "cudnn"):
        bm.backends.rnn = backend
        m = make_module(mode, 8, **dict(cfg)).cuda()
        xt = bm.tensor(x, dtype=bm.float32, device="cuda").requires_grad_(True)
        bm.manual_seed(123)
        out, state = m(xt)
        out.sum().backward()
        res[backend] = (out, state[0] if mode == "LSTM" else state, xt.grad, m.weight_ih_l0.grad)
    for a, e, what in zip(res["cudnn"], res["ours"], ("out", "h_n", "x grad", "weight_ih_l0 grad")):
        check(a, e, TOL[bm.float32], f"{mode} dropout {what}")
    m.eval()  # and no dropout in eval mode: one cuDNN call for the whole stack
    with bm.no_grad():
        a = m(bm.tensor(x, dtype=bm.float32, device="cuda"))[0]
        bm.backends.rnn = "ours"
        e = m(bm.tensor(x, dtype=bm.float32, device="cuda"))[0]
    check(a, e, TOL[bm.float32], f"{mode} eval")


def test_cpu_module_ignores_the_cudnn_backend():
    bm.backends.rnn = "cudnn"
    m = make_module("GRU", 2, input_size=3, hidden_size=4)
    out, _ = m(bm.tensor(np.random.default_rng(2).standard_normal((4, 2, 3)), dtype=bm.float32))
    assert out.device.type == "cpu" and out.shape == (4, 2, 4)


def _args(T=4, B=2, I=3, H=5, L=1, dtype=bm.float32, device="cuda", gates=4):
    x = bm.randn(T, B, I, dtype=dtype, device=device)
    h0 = bm.randn(L, B, H, dtype=dtype, device=device)
    w = [bm.randn(gates * H, I, dtype=dtype, device=device), bm.randn(gates * H, H, dtype=dtype, device=device),
         bm.randn(gates * H, dtype=dtype, device=device), bm.randn(gates * H, dtype=dtype, device=device)]
    return x, h0, w


def test_bad_inputs_raise():
    x, h0, w = _args()
    c0 = h0.clone()
    ok = bm._C._cudnn_rnn(x, h0, c0, w, "LSTM", 1, False, True)
    assert ok[0].shape == (4, 2, 5) and ok[2] is not None
    with pytest.raises(ValueError, match=r"\[cudnn_rnn\] unknown mode"):
        bm._C._cudnn_rnn(x, h0, c0, w, "LSTMX", 1, False, True)
    with pytest.raises(ValueError, match=r"\[cudnn_rnn\] expected h0 of shape \[1, 2, H\]"):
        bm._C._cudnn_rnn(x, h0.reshape(2, 1, 5), c0, w, "LSTM", 1, False, True)
    with pytest.raises(ValueError, match=r"\[cudnn_rnn\] expected c0"):
        bm._C._cudnn_rnn(x, h0, None, w, "LSTM", 1, False, True)
    with pytest.raises(ValueError, match=r"\[cudnn_rnn\] c0 is only taken by an LSTM"):
        bm._C._cudnn_rnn(x, h0, c0, w, "GRU", 1, False, True)
    with pytest.raises(ValueError, match=r"\[cudnn_rnn\] expected 4 weights"):
        bm._C._cudnn_rnn(x, h0, c0, w[:3], "LSTM", 1, False, True)
    with pytest.raises(ValueError, match=r"\[cudnn_rnn\] expected weight_ih_l0 of shape \[15, 3\]"):
        bm._C._cudnn_rnn(x, h0, None, w, "GRU", 1, False, True)  # LSTM-sized weights for a GRU
    with pytest.raises(ValueError, match=r"\[cudnn_rnn\] lengths must lie in \[1, 4\]"):
        bm._C._cudnn_rnn(x, h0, c0, w, "LSTM", 1, False, True, [4, 5])
    with pytest.raises(ValueError, match=r"\[cudnn_rnn\] expected 2 lengths"):
        bm._C._cudnn_rnn(x, h0, c0, w, "LSTM", 1, False, True, [4])
    with pytest.raises(TypeError, match=r"\[cudnn_rnn\] expected one dtype"):
        bm._C._cudnn_rnn(x, h0.double(), c0, w, "LSTM", 1, False, True)
    with pytest.raises(TypeError, match=r"\[cudnn_rnn\] expects floating point"):
        bm._C._cudnn_rnn(x.int(), h0, c0, w, "LSTM", 1, False, True)
    xc, hc, wc = _args(device="cpu")
    with pytest.raises(RuntimeError, match=r"\[cudnn_rnn\] the cuDNN backend runs on CUDA tensors"):
        bm._C._cudnn_rnn(xc, hc, hc, wc, "LSTM", 1, False, True)
    with pytest.raises(RuntimeError, match=r"\[cudnn_rnn\] expected one device"):
        bm._C._cudnn_rnn(x, h0, c0, [w[0].cpu()] + w[1:], "LSTM", 1, False, True)
    # Through the module: a wrong state shape is the layer's error, before any cuDNN call.
    bm.backends.rnn = "cudnn"
    m = nn.LSTM(3, 5).cuda()
    with pytest.raises(ValueError, match=r"\[LSTM\] expected h0 of shape"):
        m(x, (h0.reshape(2, 1, 5), c0))
    with pytest.raises(ValueError, match=r"\[LSTM\] lengths must lie in"):
        m(x, lengths=[0, 4])
