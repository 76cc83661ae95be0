"""Recurrent layers: the fused cell steps (bm.lstm_cell_pointwise / gru_cell_pointwise) and
nn.RNN/LSTM/GRU and their cells, against step-by-step NumPy float64 references, gradcheck,
variable lengths, PyTorch parameter names (and outputs, when torch is installed), bad inputs.
"""
import numpy as np
import pytest
from conftest import assert_close

import bigmodel as bm
from bigmodel import nn


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


# ------------------------------------------------------------------ NumPy references
def ref_lstm_pointwise(gates, c_prev):
    i, f, g, o = np.split(gates, 4, axis=-1)
    c = sig(f) * c_prev + sig(i) * np.tanh(g)
    return sig(o) * np.tanh(c), c


def ref_gru_pointwise(gi, gh, h_prev):
    ir, iz, inn = np.split(gi, 3, axis=-1)
    hr, hz, hn = np.split(gh, 3, axis=-1)
    r, z = sig(ir + hr), sig(iz + hz)
    n = np.tanh(inn + r * hn)
    return (1 - z) * n + z * h_prev


def ref_cell(mode, x, h, c, w_ih, w_hh, b_ih, b_hh):
    gi = x @ w_ih.T + b_ih
    gh = h @ w_hh.T + b_hh
    if mode == "LSTM":
        return ref_lstm_pointwise(gi + gh, c)
    if mode == "GRU":
        return ref_gru_pointwise(gi, gh, h), None
    pre = gi + gh
    return (np.tanh(pre) if mode == "RNN_TANH" else np.maximum(pre, 0)), None


def ref_layer(m, x, h0=None, c0=None, lengths=None):
    """Step-by-step reference of a module m on time-major x [T, B, I] (float64 NumPy)."""
    params = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    T, B, _ = x.shape
    D = 2 if m.bidirectional else 1
    H = m.hidden_size
    h0 = np.zeros((m.num_layers * D, B, H)) if h0 is None else h0
    c0 = np.zeros_like(h0) if c0 is None else c0
    lengths = [T] * B if lengths is None else lengths
    h_n, c_n = np.zeros_like(h0), np.zeros_like(c0)
    for layer in range(m.num_layers):
        outs = []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w = [params.get(n + sfx, 0.0) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            out = np.zeros((T, B, H))
            for b in range(B):  # each sequence alone, over its own length
                h, c = h0[layer * D + d, b], c0[layer * D + d, b]
                L = lengths[b]
                for t in (range(L - 1, -1, -1) if d else range(L)):
                    h, c2 = ref_cell(m.mode, x[t, b], h, c, *w)
                    c = c2 if c2 is not None else c
                    out[t, b] = h
                h_n[layer * D + d, b], c_n[layer * D + d, b] = h, c
            outs.append(out)
        x = np.concatenate(outs, axis=2)
    return x, h_n, c_n


# ------------------------------------------------------------------ fused cell steps
@pytest.mark.parametrize("dtype", [bm.float32, bm.float64])
def test_lstm_cell_pointwise_forward(rng, dtype):
    gates, c = rng.standard_normal((3, 20)) * 2, rng.standard_normal((3, 5))
    h_ref, c_ref = ref_lstm_pointwise(gates, c)
    g_t = bm.tensor(np.ascontiguousarray(gates.T), dtype=dtype).t()  # non-contiguous input
    h, c_out = bm.lstm_cell_pointwise(g_t, bm.tensor(c, dtype=dtype))
    assert_close(h, h_ref)
    assert_close(c_out, c_ref)
    h1, c1 = bm.lstm_cell_pointwise(bm.tensor(gates[1], dtype=dtype), bm.tensor(c[1], dtype=dtype))  # unbatched
    assert_close(h1, h_ref[1])
    assert_close(c1, c_ref[1])


@pytest.mark.parametrize("dtype", [bm.float32, bm.float64])
def test_gru_cell_pointwise_forward(rng, dtype):
    gi, gh, h = rng.standard_normal((4, 9)) * 2, rng.standard_normal((4, 9)) * 2, rng.standard_normal((4, 3))
    ref = ref_gru_pointwise(gi, gh, h)
    out = bm.gru_cell_pointwise(bm.tensor(gi, dtype=dtype), bm.tensor(gh, dtype=dtype), bm.tensor(h, dtype=dtype))
    assert_close(out, ref)
    assert_close(bm.gru_cell_pointwise(bm.tensor(gi[2]), bm.tensor(gh[2]), bm.tensor(h[2])), ref[2], dtype=bm.float32)


def test_half_types_compute_in_float(rng):
    gates, c = rng.standard_normal((2, 8)), rng.standard_normal((2, 2))
    h_ref, _ = ref_lstm_pointwise(gates, c)
    h, _ = bm.lstm_cell_pointwise(bm.tensor(gates).to(bm.bfloat16), bm.tensor(c).to(bm.bfloat16))
    assert h.dtype == bm.bfloat16
    np.testing.assert_allclose(h.float().numpy(), h_ref, atol=3e-2)


def test_cell_pointwise_gradcheck(rng):
    g = bm.tensor(rng.standard_normal((2, 12)), requires_grad=True)
    c = bm.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    assert bm.autograd.gradcheck(lambda a, b: bm.lstm_cell_pointwise(a, b), [g, c])
    gi = bm.tensor(rng.standard_normal((2, 9)), requires_grad=True)
    gh = bm.tensor(rng.standard_normal((2, 9)), requires_grad=True)
    h = bm.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    assert bm.autograd.gradcheck(lambda a, b, p: bm.gru_cell_pointwise(a, b, p), [gi, gh, h])


def test_cell_pointwise_bad_inputs():
    with pytest.raises(ValueError, match=r"lstm_cell_pointwise.*\[2, 10\].*\[2, 3\]"):
        bm.lstm_cell_pointwise(bm.randn(2, 10), bm.randn(2, 3))
    with pytest.raises(ValueError, match=r"gru_cell_pointwise.*\[2, 9\].*\[2, 6\]"):
        bm.gru_cell_pointwise(bm.randn(2, 9), bm.randn(2, 6), bm.randn(2, 3))
    with pytest.raises(TypeError, match="lstm_cell_pointwise"):
        bm.lstm_cell_pointwise(bm.randn(2, 8), bm.randn(2, 2, dtype=bm.float64))


# ------------------------------------------------------------------ layers
LAYERS = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {})]


def make(cls, kw, *args, **more):
    bm.manual_seed(0)
    return getattr(nn, cls)(*args, dtype=bm.float64, **kw, **more)


@pytest.mark.parametrize("cls,kw", LAYERS)
@pytest.mark.parametrize("layers,bidir", [(1, False), (2, True)])
def test_layer_matches_reference(rng, cls, kw, layers, bidir):
    m = make(cls, kw, 3, 4, num_layers=layers, bidirectional=bidir)
    x = rng.standard_normal((5, 2, 3))
    D = 2 if bidir else 1
    h0 = rng.standard_normal((layers * D, 2, 4))
    c0 = rng.standard_normal((layers * D, 2, 4))
    hx = (bm.tensor(h0), bm.tensor(c0)) if cls == "LSTM" else bm.tensor(h0)
    out, state = m(bm.tensor(x), hx)
    ref_out, ref_h, ref_c = ref_layer(m, x, h0, c0)
    assert_close(out, ref_out)
    if cls == "LSTM":
        assert_close(state[0], ref_h)
        assert_close(state[1], ref_c)
    else:
        assert_close(state, ref_h)


@pytest.mark.parametrize("cls,kw", LAYERS)
def test_batch_first_no_bias_and_unbatched(rng, cls, kw):
    m = make(cls, kw, 3, 4, bias=False, batch_first=True, bidirectional=True)
    assert [n for n, _ in m.named_parameters()] == ["weight_ih_l0", "weight_hh_l0", "weight_ih_l0_reverse",
                                                    "weight_hh_l0_reverse"]
    x = rng.standard_normal((2, 5, 3))
    out, state = m(bm.tensor(x))
    ref_out, ref_h, _ = ref_layer(m, x.transpose(1, 0, 2))
    assert_close(out, ref_out.transpose(1, 0, 2))
    assert_close(state[0] if cls == "LSTM" else state, ref_h)
    out1, state1 = m(bm.tensor(x[1]))  # unbatched [T, I]: batch_first doesn't apply
    assert_close(out1, ref_out[:, 1])
    assert_close(state1[0] if cls == "LSTM" else state1, ref_h[:, 1])


@pytest.mark.parametrize("cls,kw", LAYERS)
def test_variable_lengths(rng, cls, kw):
    m = make(cls, kw, 3, 4, num_layers=2, bidirectional=True)
    x = rng.standard_normal((6, 3, 3))
    lengths = [4, 6, 1]
    out, state = m(bm.tensor(x), lengths=lengths)
    ref_out, ref_h, ref_c = ref_layer(m, x, lengths=lengths)
    assert_close(out, ref_out)  # includes the zeros past each length
    assert np.all(out.detach().numpy()[4:, 0] == 0)
    assert_close(state[0] if cls == "LSTM" else state, ref_h)
    if cls == "LSTM":
        assert_close(state[1], ref_c)
    # Each sequence run alone over its own length gives the same output and final state.
    for b, L in enumerate(lengths):
        ob, sb = m(bm.tensor(np.ascontiguousarray(x[:L, b:b + 1])))
        assert_close(out[:L, b:b + 1], ob.detach().numpy())
        hb = sb[0] if cls == "LSTM" else sb
        hs = state[0] if cls == "LSTM" else state
        assert_close(hs[:, b:b + 1], hb.detach().numpy())


@pytest.mark.parametrize("cls,kw", LAYERS)
def test_layer_gradcheck(rng, cls, kw):
    m = make(cls, kw, 2, 2, num_layers=2, bidirectional=True)
    x = bm.tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    h0 = bm.tensor(rng.standard_normal((4, 2, 2)), requires_grad=True)
    params = list(m.parameters())

    def fn(x, h0, *ps):
        out, state = m(x, (h0, h0 * 0.5) if cls == "LSTM" else h0, lengths=[3, 2])
        return (out, *state) if cls == "LSTM" else (out, state)

    assert bm.autograd.gradcheck(fn, [x, h0, *params])


def test_dropout_between_layers():
    m = make("LSTM", {}, 3, 8, num_layers=2, dropout=0.5)
    x = bm.randn(4, 2, 3, dtype=bm.float64)
    m.eval()
    a, _ = m(x)
    b, _ = m(x)
    assert np.array_equal(a.detach().numpy(), b.detach().numpy())
    m.train()
    bm.manual_seed(1)
    c, _ = m(x)
    assert not np.allclose(c.detach().numpy(), a.detach().numpy())
    m1 = make("LSTM", {}, 3, 8, num_layers=1, dropout=0.5)  # a single layer has nothing to drop
    assert np.array_equal(m1(x)[0].detach().numpy(), m1.eval()(x)[0].detach().numpy())


def test_init_range_and_names():
    m = make("GRU", {}, 10, 16, num_layers=2, bidirectional=True)
    names = list(m.state_dict())
    assert names[:8] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse",
                         "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse"]
    assert tuple(m.weight_ih_l1.shape) == (48, 32) and tuple(m.weight_hh_l1_reverse.shape) == (48, 16)
    vals = np.concatenate([p.detach().numpy().ravel() for p in m.parameters()])
    assert np.abs(vals).max() <= 0.25 and np.abs(vals).max() > 0.24 and abs(vals.mean()) < 0.01


# ------------------------------------------------------------------ cells
@pytest.mark.parametrize("cls,mode", [("RNNCell", "RNN_TANH"), ("LSTMCell", "LSTM"), ("GRUCell", "GRU")])
def test_cells(rng, cls, mode):
    bm.manual_seed(0)
    cell = getattr(nn, cls)(3, 4, dtype=bm.float64)
    assert list(cell.state_dict()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    w = [p.detach().numpy() for p in cell.parameters()]
    ref_h, ref_c = ref_cell(mode, x, h, c, *w)
    if mode == "LSTM":
        out_h, out_c = cell(bm.tensor(x), (bm.tensor(h), bm.tensor(c)))
        assert_close(out_c, ref_c)
    else:
        out_h = cell(bm.tensor(x), bm.tensor(h))
    assert_close(out_h, ref_h)
    zero_h = cell(bm.tensor(x[0]))  # unbatched, zero state
    zero_ref, _ = ref_cell(mode, x[0], np.zeros(4), np.zeros(4), *w)
    assert_close(zero_h[0] if mode == "LSTM" else zero_h, zero_ref)
    xs = bm.tensor(x, requires_grad=True)
    hs = bm.tensor(h, requires_grad=True)
    fn = (lambda a, b, *p: cell(a, (b, b * 0.3))) if mode == "LSTM" else (lambda a, b, *p: cell(a, b))
    assert bm.autograd.gradcheck(fn, [xs, hs, *cell.parameters()])


# ------------------------------------------------------------------ bad inputs
def test_bad_inputs():
    m = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"\[LSTM\].*input_size=3.*\[5, 2, 7\]"):
        m(bm.randn(5, 2, 7))
    with pytest.raises(ValueError, match=r"\[LSTM\].*h0.*\[2, 2, 4\].*\[1, 2, 4\]"):
        m(bm.randn(5, 2, 3), (bm.randn(1, 2, 4), bm.randn(2, 2, 4)))
    with pytest.raises(ValueError, match=r"\[LSTM\].*c0.*\[2, 2, 4\].*\[2, 2, 5\]"):
        m(bm.randn(5, 2, 3), (bm.randn(2, 2, 4), bm.randn(2, 2, 5)))
    with pytest.raises(ValueError, match=r"\[GRU\].*h0.*\[1, 3, 4\]"):
        nn.GRU(3, 4)(bm.randn(5, 3, 3), bm.randn(1, 2, 4))
    with pytest.raises(ValueError, match=r"\[RNN\].*lengths"):
        nn.RNN(3, 4)(bm.randn(5, 2, 3), lengths=[6, 2])
    with pytest.raises(ValueError, match=r"\[RNN\].*2 lengths"):
        nn.RNN(3, 4)(bm.randn(5, 2, 3), lengths=[3])
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"\[GRUCell\].*hx.*\[2, 4\].*\[2, 5\]"):
        nn.GRUCell(3, 4)(bm.randn(2, 3), bm.randn(2, 5))
    with pytest.raises(ValueError, match=r"\[LSTMCell\].*\[5, 2\]"):
        nn.LSTMCell(3, 4)(bm.randn(5, 2))


# ------------------------------------------------------------------ PyTorch parity
@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_matches_torch(rng, cls):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    t = getattr(torch.nn, cls)(3, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    m = getattr(nn, cls)(3, 4, num_layers=2, bidirectional=True, batch_first=True, dtype=bm.float64)
    tsd = t.state_dict()
    assert list(tsd) == list(m.state_dict())
    m.load_state_dict({k: bm.tensor(v.numpy()) for k, v in tsd.items()})
    x = rng.standard_normal((2, 5, 3))
    lengths = [5, 3]
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), lengths, batch_first=True,
                                                     enforce_sorted=False)
    yt, st = t(packed)
    yt, _ = torch.nn.utils.rnn.pad_packed_sequence(yt, batch_first=True, total_length=5)
    ym, sm = m(bm.tensor(x), lengths=lengths)
    assert_close(ym, yt.detach().numpy())
    if cls == "LSTM":
        assert_close(sm[0], st[0].detach().numpy())
        assert_close(sm[1], st[1].detach().numpy())
    else:
        assert_close(sm, st.detach().numpy())
