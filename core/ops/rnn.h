// Fused pointwise steps of the recurrent cells (LSTM, GRU) in PyTorch's gate order, their
// kernel families and backward. The matmuls stay outside (linear/addmm); these fuse the
// gate nonlinearities and the state update that follow them.
#pragma once
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

// Returns (h, c). gates is [B, 4H] or [4H] (unbatched, then c_prev is [H]).
std::pair<Tensor, Tensor> lstm_cell_pointwise(const Tensor& gates, const Tensor& c_prev);
// Returns h. gi, gh are [B, 3H] (or [3H]); h_prev is [B, H] (or [H]).
Tensor gru_cell_pointwise(const Tensor& gi, const Tensor& gh, const Tensor& h_prev);

}  // namespace bigmodel
