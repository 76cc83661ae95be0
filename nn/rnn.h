// Recurrent layers nn::RNN (tanh/relu), nn::LSTM and nn::GRU (mirror python/bigmodel/nn/rnn.py):
// PyTorch's parameter names (weight_ih_l{k}[_reverse], weight_hh_..., bias_ih_..., bias_hh_...),
// gate order (LSTM i,f,g,o; GRU r,z,n), U(-1/sqrt(H), 1/sqrt(H)) init, multi-layer,
// bidirectional, batch_first and dropout between layers, built on core/ops/rnn.h.
#pragma once
#include <string>
#include <vector>

#include "core/dtype.h"
#include "nn/module.h"

namespace bigmodel::nn {

enum class RNNMode { RNN_TANH, RNN_RELU, LSTM, GRU };

// What a recurrent layer returns: output [T, B, D*H] ([B, T, D*H] with batch_first, [T, D*H]
// unbatched) and the final states h_n (and, for LSTM, c_n) [num_layers*D, B, H] ([.., H]
// unbatched). c_n is undefined for RNN and GRU. Works with structured bindings:
//   auto [out, h_n, c_n] = lstm.forward_with_state(x);
struct RNNOutput {
  Tensor output, h_n, c_n;
};

class RNNBase : public Module {
 public:
  RNNBase(RNNMode mode, std::string name, int64_t input_size, int64_t hidden_size, int64_t num_layers, bool bias,
          bool batch_first, double dropout, bool bidirectional, DType dtype);

  // h0 (and c0 for LSTM; both or neither) default to zeros. lengths (optional, one per batch
  // entry in [1, T]): outputs past a sequence's end are zero and its final state is the one
  // after its own last step.
  RNNOutput forward_with_state(const Tensor& input, const Tensor& h0 = Tensor(), const Tensor& c0 = Tensor(),
                               const std::vector<int64_t>& lengths = {});
  // The output only (Module's one-tensor interface, e.g. inside a Sequential).
  Tensor forward(const Tensor& input) override { return forward_with_state(input).output; }
  std::string type_name() const override { return name_; }
  void reset_parameters();
  // The four (or, without bias, two) parameters of one layer and direction (d = 1: reverse),
  // in PyTorch's order weight_ih, weight_hh, bias_ih, bias_hh.
  std::vector<Tensor> layer_weights(int64_t layer, int64_t direction) const;

  RNNMode mode;
  int64_t input_size, hidden_size, num_layers;
  bool bias, batch_first;
  double dropout;
  bool bidirectional;

 private:
  // The stack through cuDNN (bm::set_backend("rnn", "cudnn") and CUDA tensors): one call, or
  // one per layer when dropout between layers is on (our masks). x time-major [T, B, I].
  RNNOutput forward_cudnn(const Tensor& x, const Tensor& h0, const Tensor& c0, const std::vector<int64_t>& lengths);
  // Between layers in training: drop with probability `dropout`.
  Tensor drop_between_layers(const Tensor& x) const;
  // Our layer loop (lstm_layer for an LSTM without lengths); mask [T, B, 1] or undefined.
  RNNOutput forward_ours(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& mask);

  std::string name_;
  std::vector<Tensor> flat_weights_;  // registration order, as Python's _flat_weights_names
};

// Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act = tanh or relu.
class RNN : public RNNBase {
 public:
  RNN(int64_t input_size, int64_t hidden_size, int64_t num_layers = 1, const std::string& nonlinearity = "tanh",
      bool bias = true, bool batch_first = false, double dropout = 0.0, bool bidirectional = false,
      DType dtype = kDefaultFloat);
  std::string nonlinearity;
};

class LSTM : public RNNBase {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, int64_t num_layers = 1, bool bias = true, bool batch_first = false,
       double dropout = 0.0, bool bidirectional = false, DType dtype = kDefaultFloat);
};

// n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), as PyTorch.
class GRU : public RNNBase {
 public:
  GRU(int64_t input_size, int64_t hidden_size, int64_t num_layers = 1, bool bias = true, bool batch_first = false,
      double dropout = 0.0, bool bidirectional = false, DType dtype = kDefaultFloat);
};

}  // namespace bigmodel::nn
