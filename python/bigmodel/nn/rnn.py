"""Recurrent layers: RNN (tanh/relu), LSTM, GRU and their single-step cells, with PyTorch's
parameter names, gate order (LSTM i,f,g,o; GRU r,z,n), init and call signatures.

Per layer and direction the input projection of all time steps is one matmul; the time
loop then does one small matmul per step plus the fused cell step (bm.lstm_cell_pointwise /
bm.gru_cell_pointwise). An LSTM without lengths runs its whole recurrence as one op
(bm.lstm_layer), whose backward computes weight_hh's gradient as one GEMM over all steps. Variable-length batches: pass `lengths` (one int per batch entry, in
batch order, no sorting needed) to forward, or a PackedSequence (bm.nn.utils.rnn) as the
input, which gives a PackedSequence output. Outputs past a sequence's length are zero and the
final state is each sequence's state after its own last step, in the original batch order.
With bm.backends.rnn = "cudnn" and CUDA tensors the whole stack runs through cuDNN instead
(_C._cudnn_rnn: same values, same parameters; one call per layer when dropout is on).
"""
import math

import numpy as np

from .. import _C
from .._tensor import tensor as _tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter
from .utils import rnn as _rnn_utils
from ._util import empty_param_data

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _shape(t):
    return tuple(t.shape)


def _checked_lengths(lengths, T, B, op):
    """lengths as a list of B ints in [1, T]; ValueError naming op otherwise."""
    if hasattr(lengths, "tolist"):
        lengths = lengths.tolist()
    lengths = [int(v) for v in lengths]
    if len(lengths) != B:
        raise ValueError(f"[{op}] expected {B} lengths (one per batch entry), got {len(lengths)}")
    if any(v < 1 or v > T for v in lengths):
        raise ValueError(f"[{op}] lengths must lie in [1, {T}] (the padded sequence length), got {lengths}")
    return lengths


def _lengths_mask(lengths, T, B, like, op):
    """[T, B, 1] mask (1 where t < length) in like's dtype/device, after checking lengths."""
    lengths = _checked_lengths(lengths, T, B, op)
    m = (np.arange(T)[:, None] < np.array(lengths)[None, :]).astype(np.float64)[:, :, None]
    return _tensor(m, dtype=like.dtype, device=like.device)


def _use_cudnn(x):
    """True when the stack goes through cuDNN: bm.backends.rnn = "cudnn" and a CUDA input."""
    return x.is_cuda and _C._backend_get("rnn") == "cudnn"


def _step(mode, xp_t, h, c, w_hh_t, w_hh, b_hh):
    """One time step from the precomputed input projection xp_t; returns (h, c)."""
    if mode == "LSTM":
        return _C.lstm_cell_pointwise(_C.addmm(xp_t, h, w_hh_t), c)
    if mode == "GRU":
        return _C.gru_cell_pointwise(xp_t, F.linear(h, w_hh, b_hh), h), None
    pre = _C.addmm(xp_t, h, w_hh_t)
    return (_C.tanh(pre) if mode == "RNN_TANH" else _C.relu(pre)), None


class RNNBase(Module):
    """Shared by RNN, LSTM and GRU: parameters, argument checks and the layer/time loops."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"[{name}] hidden_size must be a positive int, got {hidden_size}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"[{name}] num_layers must be a positive int, got {num_layers}")
        if not isinstance(input_size, int) or input_size <= 0:
            raise ValueError(f"[{name}] input_size must be a positive int, got {input_size}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"[{name}] dropout must be in [0, 1], got {dropout}")
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * directions
            for d in range(directions):
                sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
                shapes = [("weight_ih", (gate_size, layer_in)), ("weight_hh", (gate_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                for pname, shape in shapes:
                    setattr(self, pname + sfx, Parameter(empty_param_data(*shape, dtype=dtype, device=device)))
                    self._flat_weights_names.append(pname + sfx)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def flatten_parameters(self):
        """Kept for PyTorch compatibility (cuDNN weight packing); nothing to do here."""

    @property
    def all_weights(self):
        directions = 2 if self.bidirectional else 1
        per = 4 if self.bias else 2
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[i * per:(i + 1) * per]] for i in range(self.num_layers * directions)]

    def _weights(self, layer, d):
        sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
        w_ih, w_hh = getattr(self, "weight_ih" + sfx), getattr(self, "weight_hh" + sfx)
        b_ih = getattr(self, "bias_ih" + sfx) if self.bias else None
        b_hh = getattr(self, "bias_hh" + sfx) if self.bias else None
        return w_ih, w_hh, b_ih, b_hh

    def _check_state(self, t, name, expected):
        op = type(self).__name__
        if t.dim() != len(expected) or _shape(t) != expected:
            raise ValueError(f"[{op}] expected {name} of shape {list(expected)} (num_layers*num_directions, "
                             f"batch, hidden_size), got {list(_shape(t))}")

    def forward(self, input, hx=None, lengths=None):
        if isinstance(input, _rnn_utils.PackedSequence):
            if lengths is not None:
                raise ValueError(f"[{type(self).__name__}] pass lengths or a PackedSequence input, not both")
            # Unpack into a time-major padded batch in the original order, run the masked
            # loop, and pack the output with the input's layout (hx stays in batch order).
            padded, lens = _rnn_utils.pad_packed_sequence(input)
            out, state = self._forward_padded(padded, hx, lens, batch_first=False)
            return _rnn_utils._pack_like(out, input), state
        return self._forward_padded(input, hx, lengths, self.batch_first)

    def _forward_padded(self, input, hx, lengths, batch_first):
        op = type(self).__name__
        if input.dim() not in (2, 3):
            raise ValueError(f"[{op}] expected input of 2 (unbatched) or 3 dims, got shape {list(_shape(input))}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"[{op}] expected input with last dim input_size={self.input_size}, got shape "
                             f"{list(_shape(input))}")
        unbatched = input.dim() == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if batch_first else input)
        B = x.shape[1]
        D = 2 if self.bidirectional else 1
        H = self.hidden_size
        state_shape = (self.num_layers * D, H) if unbatched else (self.num_layers * D, B, H)
        is_lstm = self.mode == "LSTM"
        if hx is None:
            h0 = _C.zeros(self.num_layers * D, B, H, dtype=x.dtype, device=x.device)
            c0 = h0 if is_lstm else None
        else:
            if is_lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise ValueError(f"[{op}] expected hx to be a tuple (h0, c0)")
                h0, c0 = hx
                self._check_state(h0, "h0", state_shape)
                self._check_state(c0, "c0", state_shape)
            else:
                h0, c0 = hx, None
                self._check_state(h0, "h0", state_shape)
            if unbatched:
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
        if _use_cudnn(x):
            x, h_n, c_n = self._forward_cudnn(x, h0, c0, lengths, op)
        else:
            x, h_n, c_n = self._forward_ours(x, h0, c0, lengths, op)
        if unbatched:
            x, h_n = x.squeeze(1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if is_lstm else None
        elif batch_first:
            x = x.transpose(0, 1)
        return x, ((h_n, c_n) if is_lstm else h_n)

    def _forward_cudnn(self, x, h0, c0, lengths, op):
        """The stack through cuDNN (bm.backends.rnn = "cudnn"): one call for all layers, or
        one per layer when dropout between layers is on (ours, so its masks follow bm's seed)."""
        T, B = x.shape[0], x.shape[1]
        D = 2 if self.bidirectional else 1
        lens = _checked_lengths(lengths, T, B, op) if lengths is not None else []
        weights = [getattr(self, n) for n in self._flat_weights_names]
        per = 4 if self.bias else 2
        mode = self.mode
        if not (self.dropout > 0 and self.training and self.num_layers > 1):
            return _C._cudnn_rnn(x, h0, c0, weights, mode, self.num_layers, self.bidirectional, self.bias, lens)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            c0_l = c0.narrow(0, layer * D, D) if c0 is not None else None
            w_l = weights[layer * D * per:(layer + 1) * D * per]
            x, h, c = _C._cudnn_rnn(x, h0.narrow(0, layer * D, D), c0_l, w_l, mode, 1, self.bidirectional, self.bias,
                                    lens)
            h_n.append(h)
            c_n.append(c)
            if layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, _C.cat(h_n, 0), (_C.cat(c_n, 0) if c0 is not None else None)

    def _forward_ours(self, x, h0, c0, lengths, op):
        """Our layer loop: per layer and direction one input-projection matmul, then the time
        loop (bm.lstm_layer for an LSTM without lengths). Returns (out, h_n, c_n)."""
        T, B = x.shape[0], x.shape[1]
        D = 2 if self.bidirectional else 1
        is_lstm = self.mode == "LSTM"
        mask = _lengths_mask(lengths, T, B, x, op) if lengths is not None else None

        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh = self._weights(layer, d)
                # All time steps' input projections in one matmul; for RNN/LSTM both biases
                # go in here once (GRU keeps b_hh inside the step: n uses r * (W_hn h + b_hn)).
                xp = F.linear(x.reshape(T * B, x.shape[2]), w_ih, b_ih)
                if b_hh is not None and self.mode != "GRU":
                    xp = xp + b_hh
                xp = xp.reshape(T, B, xp.shape[1])
                if is_lstm and mask is None:
                    # The whole recurrence as one op: one autograd node, dW_hh as one GEMM.
                    out_seq, h, c = _C.lstm_layer(xp, h0[layer * D + d], c0[layer * D + d], w_hh, d == 1)
                    outs.append(out_seq)
                    h_n.append(h)
                    c_n.append(c)
                    continue
                xp = _C.rnn_time_steps(xp)  # not xp[t]: its backward is quadratic in T
                w_hh_t = w_hh.t()
                h = h0[layer * D + d]
                c = c0[layer * D + d] if is_lstm else None
                steps = range(T - 1, -1, -1) if d == 1 else range(T)
                out = [None] * T
                for t in steps:
                    h_new, c_new = _step(self.mode, xp[t], h, c, w_hh_t, w_hh, b_hh)
                    if mask is not None:
                        # Past a sequence's end its state is carried unchanged and its output is 0.
                        m = mask[t]
                        out[t] = h_new * m
                        h = out[t] + h * (1.0 - m)
                        if is_lstm:
                            c = c_new * m + c * (1.0 - m)
                    else:
                        out[t] = h = h_new
                        c = c_new
                outs.append(_C.stack(out, 0))
                h_n.append(h)
                if is_lstm:
                    c_n.append(c)
            x = outs[0] if D == 1 else _C.cat(outs, 2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)

        return x, _C.stack(h_n, 0), (_C.stack(c_n, 0) if is_lstm else None)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act = tanh or relu.

    forward(input, h0=None, lengths=None) -> (output, h_n); input [T, B, input_size]
    ([B, T, ...] with batch_first, or [T, input_size] unbatched).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"[RNN] unknown nonlinearity '{nonlinearity}' (expected 'tanh' or 'relu')")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, device, dtype)


class LSTM(RNNBase):
    """LSTM (gates i, f, g, o). forward(input, (h0, c0)=None, lengths=None) -> (output, (h_n, c_n))."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype)


class GRU(RNNBase):
    """GRU (gates r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))).
    forward(input, h0=None, lengths=None) -> (output, h_n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype)


class RNNCellBase(Module):
    """One step of a recurrent layer: weight_ih, weight_hh, bias_ih, bias_hh as in PyTorch."""

    def __init__(self, mode, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if not isinstance(input_size, int) or input_size <= 0 or not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"[{name}] input_size and hidden_size must be positive ints, got {input_size}, "
                             f"{hidden_size}")
        self.mode, self.input_size, self.hidden_size, self.bias = mode, input_size, hidden_size, bias
        g = _GATES[mode] * hidden_size
        self.weight_ih = Parameter(empty_param_data(g, input_size, dtype=dtype, device=device))
        self.weight_hh = Parameter(empty_param_data(g, hidden_size, dtype=dtype, device=device))
        if bias:
            self.bias_ih = Parameter(empty_param_data(g, dtype=dtype, device=device))
            self.bias_hh = Parameter(empty_param_data(g, dtype=dtype, device=device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _check(self, input, states):
        op = type(self).__name__
        if input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"[{op}] expected input of shape [batch, {self.input_size}] or [{self.input_size}], "
                             f"got {list(_shape(input))}")
        expected = (input.shape[0], self.hidden_size) if input.dim() == 2 else (self.hidden_size,)
        for name, s in states:
            if s is not None and _shape(s) != expected:
                raise ValueError(f"[{op}] expected {name} of shape {list(expected)} for input of shape "
                                 f"{list(_shape(input))}, got {list(_shape(s))}")
        return expected

    def _zeros(self, input, shape):
        return _C.zeros(*shape, dtype=input.dtype, device=input.device)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(RNNCellBase):
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh or relu."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"[RNNCell] unknown nonlinearity '{nonlinearity}' (expected 'tanh' or 'relu')")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, bias, device,
                         dtype)

    def forward(self, input, hx=None):
        shape = self._check(input, [("hx", hx)])
        h = hx if hx is not None else self._zeros(input, shape)
        pre = F.linear(input, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        return _C.tanh(pre) if self.nonlinearity == "tanh" else _C.relu(pre)


class LSTMCell(RNNCellBase):
    """One LSTM step: forward(input, (h, c)=None) -> (h', c')."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ValueError("[LSTMCell] expected hx to be a tuple (h, c)")
        h, c = hx if hx is not None else (None, None)
        shape = self._check(input, [("h", h), ("c", c)])
        if h is None:
            h = c = self._zeros(input, shape)
        gates = F.linear(input, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        return _C.lstm_cell_pointwise(gates, c)


class GRUCell(RNNCellBase):
    """One GRU step: forward(input, h=None) -> h'."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)

    def forward(self, input, hx=None):
        shape = self._check(input, [("hx", hx)])
        h = hx if hx is not None else self._zeros(input, shape)
        return _C.gru_cell_pointwise(F.linear(input, self.weight_ih, self.bias_ih),
                                     F.linear(h, self.weight_hh, self.bias_hh), h)
