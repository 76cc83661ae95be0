// Python bindings for the rnn family: the fused LSTM / GRU cell steps used by bm.nn's
// LSTM/GRU layers (exported as bm.lstm_cell_pointwise and bm.gru_cell_pointwise), and the
// cuDNN stack behind bm.backends.rnn = "cudnn" (_C._cudnn_rnn, used by bm.nn's layers).
#include <optional>

#include "core/ops/rnn.h"
#include "python/src/common.h"

namespace bigmodel::python {

void bind_rnn(py::module_& m, py::class_<Tensor>& /*cls*/) {
  m.def("lstm_cell_pointwise", [](const Tensor& gates, const Tensor& c_prev) {
        auto [h, c] = lstm_cell_pointwise(gates, c_prev);
        return py::make_tuple(h, c);
      },
      py::arg("gates"), py::arg("c_prev"),
      "(h, c) of one LSTM step from gates [B, 4H] (i, f, g, o pre-activations) and c_prev [B, H].");
  m.def("lstm_layer", [](const Tensor& xp, const Tensor& h0, const Tensor& c0, const Tensor& w_hh, bool reverse) {
        std::vector<Tensor> r = lstm_layer(xp, h0, c0, w_hh, reverse);
        return py::make_tuple(r[0], r[1], r[2]);
      },
      py::arg("xp"), py::arg("h0"), py::arg("c0"), py::arg("w_hh"), py::arg("reverse") = false,
      "(out [T, B, H], h_n, c_n) of one LSTM layer over a sequence from the input projections xp [T, B, 4H] "
      "(both biases included), h0, c0 [B, H] and w_hh [4H, H]; one autograd node (dW_hh as one GEMM).");
  m.def("rnn_time_steps", &rnn_time_steps, py::arg("input"),
        "The steps of input [T, ...] as T views; the backward stacks their gradients in one op.");
  m.def("_cudnn_rnn",
        [](const Tensor& x, const Tensor& h0, std::optional<Tensor> c0, const std::vector<Tensor>& weights,
           const std::string& mode, int64_t num_layers, bool bidirectional, bool bias,
           const std::vector<int64_t>& lengths) {
          std::vector<Tensor> r = cudnn_rnn(x, h0, c0 ? *c0 : Tensor(), weights, rnn_cell_from_name(mode), num_layers,
                                            bidirectional, bias, lengths);
          return py::make_tuple(r[0], r[1], r.size() > 2 ? py::cast(r[2]) : py::none());
        },
        py::arg("input"), py::arg("h0"), py::arg("c0"), py::arg("weights"), py::arg("mode"), py::arg("num_layers"),
        py::arg("bidirectional"), py::arg("bias"), py::arg("lengths") = std::vector<int64_t>{},
        "(out [T, B, D*H], h_n, c_n or None) of a whole RNN/LSTM/GRU stack through cuDNN (bm.backends.rnn = "
        "'cudnn', CUDA tensors): input [T, B, I], h0/c0 [L*D, B, H], weights in PyTorch's flat order.");
  m.def("gru_cell_pointwise", &gru_cell_pointwise, py::arg("gi"), py::arg("gh"), py::arg("h_prev"),
        "h of one GRU step from gi, gh [B, 3H] (r, z, n parts) and h_prev [B, H].");
}

}  // namespace bigmodel::python
