// nn::RNN / LSTM / GRU (see rnn.h): parameters, argument checks and the layer/time loops.
// Per layer and direction the input projection of all time steps is one matmul; the time
// loop then does one small matmul per step plus the fused cell step of core/ops/rnn.h; an
// LSTM without lengths runs the whole recurrence as core/ops/rnn.h's lstm_layer.
#include "nn/rnn.h"

#include <cmath>
#include <tuple>

#include "core/autograd.h"
#include "core/backends.h"
#include "core/error.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/rnn.h"
#include "core/ops/shape_ops.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"
#include "core/shape.h"

namespace bigmodel::nn {
namespace {

int64_t gate_count(RNNMode mode) {
  switch (mode) {
    case RNNMode::LSTM: return 4;
    case RNNMode::GRU: return 3;
    default: return 1;
  }
}

std::string suffix(int64_t layer, int64_t direction) {
  return "_l" + std::to_string(layer) + (direction == 1 ? "_reverse" : "");
}

}  // namespace

RNNBase::RNNBase(RNNMode mode_, std::string name, int64_t in, int64_t hidden, int64_t layers, bool with_bias,
                 bool batch_first_, double dropout_, bool bidir, DType dtype)
    : mode(mode_), input_size(in), hidden_size(hidden), num_layers(layers), bias(with_bias),
      batch_first(batch_first_), dropout(dropout_), bidirectional(bidir), name_(std::move(name)) {
  const char* op = name_.c_str();
  BM_CHECK_VALUE(hidden > 0, op, "hidden_size must be a positive int, got ", hidden);
  BM_CHECK_VALUE(layers > 0, op, "num_layers must be a positive int, got ", layers);
  BM_CHECK_VALUE(in > 0, op, "input_size must be a positive int, got ", in);
  BM_CHECK_VALUE(dropout >= 0.0 && dropout <= 1.0, op, "dropout must be in [0, 1], got ", dropout);
  BM_CHECK_DTYPE(is_floating(dtype), op, "dtype must be floating, got ", dtype_name(dtype));
  const int64_t directions = bidir ? 2 : 1, gates = gate_count(mode) * hidden;
  for (int64_t layer = 0; layer < layers; ++layer) {
    const int64_t layer_in = layer == 0 ? in : hidden * directions;
    for (int64_t d = 0; d < directions; ++d) {
      const std::string sfx = suffix(layer, d);
      flat_weights_.push_back(register_parameter("weight_ih" + sfx, empty({gates, layer_in}, dtype)));
      flat_weights_.push_back(register_parameter("weight_hh" + sfx, empty({gates, hidden}, dtype)));
      if (with_bias) {
        flat_weights_.push_back(register_parameter("bias_ih" + sfx, empty({gates}, dtype)));
        flat_weights_.push_back(register_parameter("bias_hh" + sfx, empty({gates}, dtype)));
      }
    }
  }
  reset_parameters();
}

void RNNBase::reset_parameters() {
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
  NoGradGuard no_grad;
  for (Tensor& p : flat_weights_) uniform_(p, -bound, bound);
}

std::vector<Tensor> RNNBase::layer_weights(int64_t layer, int64_t direction) const {
  const int64_t directions = bidirectional ? 2 : 1, per = bias ? 4 : 2;
  BM_CHECK_INDEX(layer >= 0 && layer < num_layers && direction >= 0 && direction < directions, name_,
                 "no layer ", layer, " direction ", direction, " (num_layers=", num_layers,
                 ", directions=", directions, ")");
  auto first = flat_weights_.begin() + (layer * directions + direction) * per;
  return std::vector<Tensor>(first, first + per);
}

RNNOutput RNNBase::forward_with_state(const Tensor& input, const Tensor& h0_in, const Tensor& c0_in,
                                      const std::vector<int64_t>& lengths) {
  const std::string& op = name_;
  const bool is_lstm = mode == RNNMode::LSTM;
  BM_CHECK_SHAPE(input.dim() == 2 || input.dim() == 3, op, "expected input of 2 (unbatched) or 3 dims, got shape ",
                 shape_str(input.sizes()));
  BM_CHECK_SHAPE(input.size(-1) == input_size, op, "expected input with last dim input_size=", input_size,
                 ", got shape ", shape_str(input.sizes()));
  BM_CHECK_DTYPE(input.dtype() == flat_weights_[0].dtype(), op, "expected input of dtype ",
                 dtype_name(flat_weights_[0].dtype()), " (the parameters'), got ", dtype_name(input.dtype()));
  BM_CHECK_VALUE(!c0_in.defined() || is_lstm, op, "c0 is only taken by LSTM");
  BM_CHECK_VALUE(!is_lstm || h0_in.defined() == c0_in.defined(), op,
                 "expected both h0 and c0 or neither, got only ", h0_in.defined() ? "h0" : "c0");
  const bool unbatched = input.dim() == 2;
  Tensor x = unbatched ? unsqueeze(input, 1) : (batch_first ? transpose(input, 0, 1) : input);
  const int64_t T = x.size(0), B = x.size(1), D = bidirectional ? 2 : 1, H = hidden_size;
  const Shape state_shape = unbatched ? Shape{num_layers * D, H} : Shape{num_layers * D, B, H};

  Tensor h0 = h0_in, c0 = c0_in;
  auto check_state = [&](const Tensor& s, const char* what) {
    BM_CHECK_SHAPE(s.sizes() == state_shape, op, "expected ", what, " of shape ", shape_str(state_shape),
                   " (num_layers*num_directions, batch, hidden_size), got ", shape_str(s.sizes()));
    BM_CHECK_DTYPE(s.dtype() == x.dtype(), op, "expected ", what, " of dtype ", dtype_name(x.dtype()), ", got ",
                   dtype_name(s.dtype()));
  };
  if (!h0.defined()) {
    h0 = zeros({num_layers * D, B, H}, x.dtype(), x.device());
    if (is_lstm) c0 = h0;
  } else {
    check_state(h0, "h0");
    if (is_lstm) check_state(c0, "c0");
    if (unbatched) {
      h0 = unsqueeze(h0, 1);
      if (is_lstm) c0 = unsqueeze(c0, 1);
    }
  }

  Tensor mask;  // [T, B, 1]: 1 while t < length
  if (!lengths.empty()) {
    BM_CHECK_VALUE(static_cast<int64_t>(lengths.size()) == B, op, "expected ", B,
                   " lengths (one per batch entry), got ", lengths.size());
    std::vector<double> m(static_cast<size_t>(T * B));
    for (int64_t b = 0; b < B; ++b) {
      BM_CHECK_VALUE(lengths[b] >= 1 && lengths[b] <= T, op, "lengths must lie in [1, ", T,
                     "] (the padded sequence length), got ", lengths[b]);
      for (int64_t t = 0; t < T; ++t) m[t * B + b] = t < lengths[b] ? 1.0 : 0.0;
    }
    mask = bigmodel::to(from_vector(m, {T, B, 1}), x.device(), x.dtype());
  }

  RNNOutput result;
  if (x.device().is_cuda() && uses_vendor_backend("rnn")) {
    result = forward_cudnn(x, h0, c0, lengths);
  } else {
    result = forward_ours(x, h0, c0, mask);
  }
  if (unbatched) {
    result.output = squeeze(result.output, 1);
    result.h_n = squeeze(result.h_n, 1);
    if (is_lstm) result.c_n = squeeze(result.c_n, 1);
  } else if (batch_first) {
    result.output = transpose(result.output, 0, 1);
  }
  return result;
}

Tensor RNNBase::drop_between_layers(const Tensor& x) const {
  return dropout >= 1.0 ? mul(x, Scalar(0.0)) : mul(x, dropout_mask(x.sizes(), dropout, x.dtype(), x.device()));
}

RNNOutput RNNBase::forward_cudnn(const Tensor& x_in, const Tensor& h0, const Tensor& c0,
                                 const std::vector<int64_t>& lengths) {
  const bool is_lstm = mode == RNNMode::LSTM;
  const RnnCell cell = is_lstm                      ? RnnCell::Lstm
                       : mode == RNNMode::GRU       ? RnnCell::Gru
                       : mode == RNNMode::RNN_TANH  ? RnnCell::Tanh
                                                    : RnnCell::Relu;
  const Tensor c0_or_none = is_lstm ? c0 : Tensor();
  if (!(dropout > 0 && is_training() && num_layers > 1)) {
    std::vector<Tensor> r = cudnn_rnn(x_in, h0, c0_or_none, flat_weights_, cell, num_layers, bidirectional, bias,
                                      lengths);
    return {r[0], r[1], is_lstm ? r[2] : Tensor()};
  }
  const int64_t D = bidirectional ? 2 : 1, per = bias ? 4 : 2;
  Tensor x = x_in;
  std::vector<Tensor> h_n, c_n;
  for (int64_t layer = 0; layer < num_layers; ++layer) {
    auto first = flat_weights_.begin() + layer * D * per;
    std::vector<Tensor> w(first, first + D * per);
    std::vector<Tensor> r = cudnn_rnn(x, narrow(h0, 0, layer * D, D),
                                      is_lstm ? narrow(c0, 0, layer * D, D) : Tensor(), w, cell, 1, bidirectional,
                                      bias, lengths);
    x = layer < num_layers - 1 ? drop_between_layers(r[0]) : r[0];
    h_n.push_back(r[1]);
    if (is_lstm) c_n.push_back(r[2]);
  }
  return {x, cat(h_n, 0), is_lstm ? cat(c_n, 0) : Tensor()};
}

RNNOutput RNNBase::forward_ours(const Tensor& x_in, const Tensor& h0, const Tensor& c0, const Tensor& mask) {
  const bool is_lstm = mode == RNNMode::LSTM;
  Tensor x = x_in;
  const int64_t T = x.size(0), B = x.size(1), D = bidirectional ? 2 : 1;
  std::vector<Tensor> h_n, c_n;
  for (int64_t layer = 0; layer < num_layers; ++layer) {
    std::vector<Tensor> outs;
    for (int64_t d = 0; d < D; ++d) {
      std::vector<Tensor> w = layer_weights(layer, d);
      const Tensor &w_ih = w[0], &w_hh = w[1];
      const Tensor b_ih = bias ? w[2] : Tensor(), b_hh = bias ? w[3] : Tensor();
      // All time steps' input projections in one matmul; RNN/LSTM fold both biases in here
      // (GRU keeps b_hh inside the step: n uses r * (W_hn h + b_hn)).
      Tensor xp = linear(reshape(x, {T * B, x.size(2)}), w_ih, b_ih);
      if (b_hh.defined() && mode != RNNMode::GRU) xp = add(xp, b_hh);
      if (is_lstm && !mask.defined()) {  // the whole recurrence as one op (dW_hh as one GEMM)
        std::vector<Tensor> r = lstm_layer(reshape(xp, {T, B, xp.size(1)}), select(h0, 0, layer * D + d),
                                           select(c0, 0, layer * D + d), w_hh, d == 1);
        outs.push_back(r[0]);
        h_n.push_back(r[1]);
        c_n.push_back(r[2]);
        continue;
      }
      std::vector<Tensor> steps = rnn_time_steps(reshape(xp, {T, B, xp.size(1)}));
      const Tensor w_hh_t = t(w_hh);
      Tensor h = select(h0, 0, layer * D + d);
      Tensor c = is_lstm ? select(c0, 0, layer * D + d) : Tensor();
      std::vector<Tensor> out(static_cast<size_t>(T));
      for (int64_t i = 0; i < T; ++i) {
        const int64_t step = d == 1 ? T - 1 - i : i;
        Tensor h_new, c_new;
        if (is_lstm) {
          std::tie(h_new, c_new) = lstm_cell_pointwise(addmm(steps[step], h, w_hh_t), c);
        } else if (mode == RNNMode::GRU) {
          h_new = gru_cell_pointwise(steps[step], linear(h, w_hh, b_hh), h);
        } else {
          Tensor pre = addmm(steps[step], h, w_hh_t);
          h_new = mode == RNNMode::RNN_TANH ? tanh(pre) : relu(pre);
        }
        if (mask.defined()) {
          // Past a sequence's end its state is carried unchanged and its output is 0.
          Tensor m = select(mask, 0, step), keep = rsub(m, Scalar(1.0));
          out[step] = mul(h_new, m);
          h = add(out[step], mul(h, keep));
          if (is_lstm) c = add(mul(c_new, m), mul(c, keep));
        } else {
          out[step] = h = h_new;
          c = c_new;
        }
      }
      outs.push_back(stack(out, 0));
      h_n.push_back(h);
      if (is_lstm) c_n.push_back(c);
    }
    x = D == 1 ? outs[0] : cat(outs, 2);
    if (dropout > 0 && is_training() && layer < num_layers - 1) x = drop_between_layers(x);
  }
  return {x, stack(h_n, 0), is_lstm ? stack(c_n, 0) : Tensor()};
}

// ---- RNN, LSTM, GRU ---------------------------------------------------------------------------
namespace {
RNNMode rnn_mode(const std::string& nonlinearity) {
  BM_CHECK_VALUE(nonlinearity == "tanh" || nonlinearity == "relu", "RNN", "unknown nonlinearity '", nonlinearity,
                 "' (expected 'tanh' or 'relu')");
  return nonlinearity == "tanh" ? RNNMode::RNN_TANH : RNNMode::RNN_RELU;
}
}  // namespace

RNN::RNN(int64_t in, int64_t hidden, int64_t layers, const std::string& nl, bool with_bias, bool bf, double p,
         bool bidir, DType dtype)
    : RNNBase(rnn_mode(nl), "RNN", in, hidden, layers, with_bias, bf, p, bidir, dtype), nonlinearity(nl) {}

LSTM::LSTM(int64_t in, int64_t hidden, int64_t layers, bool with_bias, bool bf, double p, bool bidir, DType dtype)
    : RNNBase(RNNMode::LSTM, "LSTM", in, hidden, layers, with_bias, bf, p, bidir, dtype) {}

GRU::GRU(int64_t in, int64_t hidden, int64_t layers, bool with_bias, bool bf, double p, bool bidir, DType dtype)
    : RNNBase(RNNMode::GRU, "GRU", in, hidden, layers, with_bias, bf, p, bidir, dtype) {}

}  // namespace bigmodel::nn
