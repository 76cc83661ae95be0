// The CUDA convolution's shared description: every conv kernel (forward, input gradient,
// weight gradient) is one implicit GEMM per group, C[M, Nc] = A[M, K] * B[K, Nc], whose A and
// B elements are gathered from the tensors by the index maps below. conv.cu fills them in;
// conv_simt.cu (float32 / float64) and conv_tc.cu (float16 / bfloat16) run them.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/ops/conv.h"

namespace bigmodel::cuda::conv_detail {

// Index maps, with "reduction index" kappa in [0, K) and column j in [0, Nc):
//   kappa = (r1 * k_d2 + r2) * k_q + q (q innermost: with k_q % 8 == 0 every aligned run of 8
//   kappa shares r1, r2, which the kernels' chunked gathers use when `q_chunks` is set),
//   r1 < k_d1, r2 < k_d2, q < k_q:               boff = q * k_bq,  aoff = q * k_aq + r1 * k_d2 + r2,
//                                                h = r1 * k_hs + k_h0,  w = r2 * k_ws + k_w0
//   j     = (q', s1, s2), s1 < j_d1, s2 < j_d2:  colbase = q' * j_bq + group * b_group,
//                                                colh = s1 * j_hs + j_h0, colw = s2 * j_ws + j_w0
//   B[kappa, j] = b[colbase + boff + y * BW + x] with y = colh + h, x = colw + w, taken when
//                 0 <= y < BH and 0 <= x < BW, else 0. With div_h / div_w > 1 (input gradient
//                 of a strided conv) y and x are first divided by them and must divide exactly.
//   A[m, kappa]   = a[group * a_group + m * a_row + aoff]
//   out[(n * out_nstride) + group * out_group + m * out_P + p + split * out_split], j = n * out_P + p,
//   plus bias[group * M + m] when bias is set.
struct ConvGemmArgs {
  int M = 0, Nc = 0, K = 0;
  int groups = 1;
  int splits = 1, k_per_split = 0;  // split z covers kappa in [z * k_per_split, +k_per_split)
  int k_d1 = 1, k_d2 = 1, k_q = 1;
  bool q_chunks = false;  // k_q % 8 == 0
  int64_t k_bq = 0, k_aq = 0;
  int k_hs = 0, k_h0 = 0, k_ws = 0, k_w0 = 0;
  int j_d1 = 1, j_d2 = 1;
  int64_t j_bq = 0, b_group = 0;
  int j_hs = 0, j_h0 = 0, j_ws = 0, j_w0 = 0;
  int BH = 1, BW = 1, div_h = 1, div_w = 1;
  int64_t a_group = 0, a_row = 0;
  int out_P = 1;
  int64_t out_nstride = 0, out_group = 0, out_split = 0;
  const void* a = nullptr;
  const void* b = nullptr;
  void* out = nullptr;
  const void* bias = nullptr;  // input dtype, or null
  bool out_f32 = false;        // tensor-core path: out is a float32 workspace (weight gradient)
};

// Block tile of both paths in M x Nc (the kernels' 256 threads cover it).
constexpr int kTileM = 64, kTileN = 128;
// Reduction step of each path (split sizes are multiples of it).
constexpr int kSimtTileK = 16, kSimtTileK64 = 8, kTcTileK = 32;

// float32 / float64 (register-blocked FFMA tiles); dtype picks the instantiation.
void launch_conv_simt(DType dtype, const ConvGemmArgs& a, void* stream);
// float16 / bfloat16 on mma.sync m16n8k16 with float32 accumulation.
void launch_conv_tc(DType dtype, const ConvGemmArgs& a, void* stream);

// conv_cudnn.cu: the cuDNN baseline. Returns false when cuDNN cannot express the geometry
// (asymmetric padding from padding='same' with an even kernel): the caller then runs ours.
// Throws Error when bigmodel was built without cuDNN.
bool cudnn_conv_forward(const Tensor& out, const Tensor& input, const Tensor& weight, const Tensor& bias,
                        const Conv2dParams& p);
bool cudnn_conv_backward_input(const Tensor& grad_input, const Tensor& grad_output, const Tensor& weight,
                               const Conv2dParams& p);
bool cudnn_conv_backward_weight(const Tensor& grad_weight, const Tensor& grad_output, const Tensor& input,
                                const Conv2dParams& p);

}  // namespace bigmodel::cuda::conv_detail
