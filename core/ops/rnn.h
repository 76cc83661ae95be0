// Fused pointwise steps of the recurrent cells (LSTM, GRU) in PyTorch's gate order, their
// kernel families and backward. The matmuls stay outside (linear/addmm); these fuse the
// gate nonlinearities and the state update that follow them.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

// All tensors contiguous, one floating dtype. gates [B, 4H] (i, f, g, o pre-activations),
// c_prev/h/c [B, H]: c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g); h = sigmoid(o) * tanh(c).
BM_DECLARE_KERNEL(lstm_pointwise_kernel, void (*)(const Tensor& h, const Tensor& c, const Tensor& gates,
                                                  const Tensor& c_prev));
// grad_gates [B, 4H], grad_c_prev [B, H] from grad_h, grad_c, gates, c_prev and the forward c.
BM_DECLARE_KERNEL(lstm_pointwise_backward_kernel,
                  void (*)(const Tensor& grad_gates, const Tensor& grad_c_prev, const Tensor& grad_h,
                           const Tensor& grad_c, const Tensor& gates, const Tensor& c_prev, const Tensor& c));
// gi, gh [B, 3H] (r, z, n parts of x W_ih^T + b_ih and h W_hh^T + b_hh), h_prev/h [B, H]:
// r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r * gh_n),
// h = (1 - z) * n + z * h_prev.
BM_DECLARE_KERNEL(gru_pointwise_kernel, void (*)(const Tensor& h, const Tensor& gi, const Tensor& gh,
                                                 const Tensor& h_prev));
BM_DECLARE_KERNEL(gru_pointwise_backward_kernel,
                  void (*)(const Tensor& grad_gi, const Tensor& grad_gh, const Tensor& grad_h_prev,
                           const Tensor& grad_h, const Tensor& gi, const Tensor& gh, const Tensor& h_prev));

// The T time steps of x [T, ...] as T views (like unbind(x, 0)), recorded as ONE node whose
// backward stacks the T step gradients: linear in T, where per-step select backward would
// scatter each step's gradient into a full [T, ...] buffer (quadratic in T).
std::vector<Tensor> rnn_time_steps(const Tensor& x);

// One LSTM layer and direction over a whole sequence: xp [T, B, 4H] (the input projections
// with both biases), h0, c0 [B, H], w_hh [4H, H]; steps run T-1 .. 0 when reverse. Returns
// {out [T, B, H], h_n [B, H], c_n [B, H]}. One autograd node: its backward runs the fused cell
// backward per step and the hidden-to-hidden weight gradient as ONE GEMM over all steps
// (instead of T rank-B updates and T accumulations).
std::vector<Tensor> lstm_layer(const Tensor& xp, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                               bool reverse = false);

// ---- the cuDNN baseline (bm.backends.rnn = "cudnn"; kernels/cuda/rnn_cudnn.cu) ----------------
// A whole stack of `num_layers` layers (and both directions when bidirectional) as one call, on
// CUDA tensors only. x [T, B, I] time-major; h0 (and c0 for LSTM; undefined otherwise)
// [num_layers * D, B, H]; weights in PyTorch's flat order: per layer and direction w_ih [G*H, in],
// w_hh [G*H, H], and when `bias` b_ih, b_hh [G*H] (G = 1, 4, 3 for RNN, LSTM, GRU; gate orders
// i,f,g,o and r,z,n as PyTorch's); lengths: empty (all T) or one per batch entry in [1, T], any
// order. Returns {out [T, B, D*H] (zero past each length), h_n, c_n (LSTM only)}: the same
// values as the layer loop of bm.nn.RNN/LSTM/GRU. One autograd node: cuDNN's backward-data and
// backward-weights give the gradients of x, h0, c0 and every weight.
enum class RnnCell : int { Tanh, Relu, Lstm, Gru };
RnnCell rnn_cell_from_name(const std::string& mode);  // "RNN_TANH", "RNN_RELU", "LSTM", "GRU"
std::vector<Tensor> cudnn_rnn(const Tensor& x, const Tensor& h0, const Tensor& c0,
                              const std::vector<Tensor>& weights, RnnCell cell, int64_t num_layers,
                              bool bidirectional, bool bias,
                              const std::vector<int64_t>& lengths = {});

// What the vendor kernels need beyond the tensors (checked by cudnn_rnn's front end).
struct RnnVendorDesc {
  RnnCell cell = RnnCell::Lstm;
  int64_t num_layers = 1, seq_len = 0, batch = 0, input_size = 0, hidden_size = 0;
  bool bidirectional = false, bias = true;
  std::vector<int32_t> lengths;  // batch entries, each in [1, seq_len]
};
// Kept from the forward for the backward: the packed weights, cuDNN's reserve space and the
// lengths on the device (int32 [B]). cuDNN's backward writes into the reserve space, so one
// forward takes one backward (`consumed` then refuses a second, e.g. under retain_graph).
struct RnnVendorState {
  Tensor weight_space, reserve, dev_lengths;
  bool consumed = false;
};
// Forward: fills y, hy (and cy for LSTM) from contiguous x, hx, cx and weights; `training`
// keeps the reserve space in state for the backward.
BM_DECLARE_KERNEL(rnn_vendor_forward_kernel,
                  void (*)(const RnnVendorDesc& d, const Tensor& y, const Tensor& hy,
                           const Tensor& cy, const Tensor& x, const Tensor& hx, const Tensor& cx,
                           const std::vector<Tensor>& weights, bool training,
                           RnnVendorState& state));
// Backward: dx, dhx (dcx) from dy, dhy (dcy); with grad_weights non-null also the weight
// gradients (contiguous, the weights' shapes, PyTorch's order).
BM_DECLARE_KERNEL(rnn_vendor_backward_kernel,
                  void (*)(const RnnVendorDesc& d, const Tensor& dx, const Tensor& dhx,
                           const Tensor& dcx, const std::vector<Tensor>* grad_weights,
                           const Tensor& x, const Tensor& hx, const Tensor& cx, const Tensor& y,
                           const Tensor& dy, const Tensor& dhy, const Tensor& dcy,
                           RnnVendorState& state));

// Returns (h, c). gates is [B, 4H] or [4H] (unbatched, then c_prev is [H]).
std::pair<Tensor, Tensor> lstm_cell_pointwise(const Tensor& gates, const Tensor& c_prev);
// Returns h. gi, gh are [B, 3H] (or [3H]); h_prev is [B, H] (or [H]).
Tensor gru_cell_pointwise(const Tensor& gi, const Tensor& gh, const Tensor& h_prev);

}  // namespace bigmodel
