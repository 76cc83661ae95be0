// CUDA entry points of the conv family (core/ops/conv.h's three kernels): each op becomes an
// implicit GEMM per group (index maps in conv_internal.h) run by conv_simt.cu (float32 /
// float64) or conv_tc.cu (float16 / bfloat16); the weight gradient splits its reduction over
// N * oH * oW into a float32 (float64) workspace and sums the slices in a second kernel, so
// no float atomics. bm.backends.conv = "cudnn" sends the same calls to conv_cudnn.cu.
#include <algorithm>

#include "core/backends.h"
#include "core/ops/conv.h"
#include "kernels/cuda/conv_internal.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

using conv_detail::ConvGemmArgs;

struct Geometry {
  int64_t N, C, H, W, O, Cg, Og, kH, kW, oH, oW;
};

Geometry geometry(const Tensor& input_like, const Tensor& weight_like, const Tensor& output_like,
                  const Conv2dParams& p) {
  Geometry g;
  g.N = input_like.size(0), g.C = input_like.size(1), g.H = input_like.size(2), g.W = input_like.size(3);
  g.O = weight_like.size(0), g.Cg = weight_like.size(1), g.kH = weight_like.size(2), g.kW = weight_like.size(3);
  g.Og = g.O / p.groups;
  g.oH = output_like.size(2), g.oW = output_like.size(3);
  return g;
}

// The kernels index in int32 within an image and a GEMM; refuse what does not fit.
void check_sizes(const char* op, const Geometry& g, std::initializer_list<int64_t> dims) {
  constexpr int64_t kMax = (int64_t{1} << 31) - (int64_t{1} << 29);
  bool ok = g.C * g.H * g.W < kMax && g.O * g.oH * g.oW < kMax;
  for (int64_t d : dims) ok = ok && d < kMax;
  BM_CHECK_VALUE(ok, op, "problem too large for the CUDA kernels (N=", g.N, ", C=", g.C, ", H=", g.H, ", W=", g.W,
                 ", O=", g.O, ", output ", g.oH, "x", g.oW, ")");
}

int sm_count() {
  int dev = 0, n = 0;
  BM_CUDA_CHECK(cudaGetDevice(&dev));
  BM_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
  return std::max(n, 1);
}

bool tensor_core_dtype(DType t) { return t == DType::Float16 || t == DType::BFloat16; }

int tile_k(DType t) {
  if (tensor_core_dtype(t)) return conv_detail::kTcTileK;
  return t == DType::Float64 ? conv_detail::kSimtTileK64 : conv_detail::kSimtTileK;
}

void run_gemm(DType dtype, ConvGemmArgs& a, cudaStream_t stream) {
  if (a.k_per_split == 0) a.k_per_split = std::max(a.K, 1);
  a.q_chunks = a.k_q % 8 == 0;
  BM_CHECK_VALUE(static_cast<int64_t>(a.groups) * a.splits <= 65535, "conv2d", "groups=", a.groups,
                 " exceeds what the CUDA kernels' grid takes (65535)");
  if (tensor_core_dtype(dtype)) conv_detail::launch_conv_tc(dtype, a, stream);
  else conv_detail::launch_conv_simt(dtype, a, stream);
}

void forward_ours(const Tensor& out, const Tensor& input, const Tensor& weight, const Tensor& bias,
                  const Conv2dParams& p) {
  const Geometry g = geometry(input, weight, out, p);
  const int64_t L = g.oH * g.oW, KHW = g.kH * g.kW, K = g.Cg * KHW;
  check_sizes("conv2d", g, {g.N * L, K, g.O * K});
  ConvGemmArgs a;
  a.M = static_cast<int>(g.Og), a.Nc = static_cast<int>(g.N * L), a.K = static_cast<int>(K);
  a.groups = static_cast<int>(p.groups);
  // kappa = (ki, kj, c) with c innermost; j = (n, oh, ow)
  a.k_d1 = static_cast<int>(g.kH), a.k_d2 = static_cast<int>(g.kW), a.k_q = static_cast<int>(g.Cg);
  a.k_bq = g.H * g.W, a.k_aq = KHW;
  a.k_hs = static_cast<int>(p.dilation_h), a.k_h0 = 0, a.k_ws = static_cast<int>(p.dilation_w), a.k_w0 = 0;
  a.j_d1 = static_cast<int>(g.oH), a.j_d2 = static_cast<int>(g.oW);
  a.j_bq = g.C * g.H * g.W, a.b_group = g.Cg * g.H * g.W;
  a.j_hs = static_cast<int>(p.stride_h), a.j_h0 = static_cast<int>(-p.pad_h);
  a.j_ws = static_cast<int>(p.stride_w), a.j_w0 = static_cast<int>(-p.pad_w);
  a.BH = static_cast<int>(g.H), a.BW = static_cast<int>(g.W);
  a.a_group = g.Og * K, a.a_row = K;
  a.out_P = static_cast<int>(L), a.out_nstride = g.O * L, a.out_group = g.Og * L;
  a.a = weight.data_ptr(), a.b = input.data_ptr(), a.out = out.data_ptr();
  a.bias = bias.defined() ? bias.data_ptr() : nullptr;
  run_gemm(input.dtype(), a, current_cuda_stream(out.device().index));
}

void backward_input_ours(const Tensor& grad_input, const Tensor& grad_output, const Tensor& weight,
                         const Conv2dParams& p) {
  const Geometry g = geometry(grad_input, weight, grad_output, p);
  const int64_t L = g.oH * g.oW, KHW = g.kH * g.kW, HW = g.H * g.W, K = g.Og * KHW;
  check_sizes("conv2d_backward_input", g, {g.N * HW, K, g.O * g.Cg * KHW});
  ConvGemmArgs a;
  a.M = static_cast<int>(g.Cg), a.Nc = static_cast<int>(g.N * HW), a.K = static_cast<int>(K);
  a.groups = static_cast<int>(p.groups);
  // kappa = (ki, kj, o); j = (n, h, w); B = grad_output at ((h + ph - ki dh) / sh, ...)
  a.k_d1 = static_cast<int>(g.kH), a.k_d2 = static_cast<int>(g.kW), a.k_q = static_cast<int>(g.Og);
  a.k_bq = L, a.k_aq = g.Cg * KHW;
  a.k_hs = static_cast<int>(-p.dilation_h), a.k_h0 = 0, a.k_ws = static_cast<int>(-p.dilation_w), a.k_w0 = 0;
  a.j_d1 = static_cast<int>(g.H), a.j_d2 = static_cast<int>(g.W);
  a.j_bq = g.O * L, a.b_group = g.Og * L;
  a.j_hs = 1, a.j_h0 = static_cast<int>(p.pad_h), a.j_ws = 1, a.j_w0 = static_cast<int>(p.pad_w);
  a.BH = static_cast<int>(g.oH), a.BW = static_cast<int>(g.oW);
  a.div_h = static_cast<int>(p.stride_h), a.div_w = static_cast<int>(p.stride_w);
  a.a_group = g.Og * g.Cg * KHW, a.a_row = KHW;
  a.out_P = static_cast<int>(HW), a.out_nstride = g.C * HW, a.out_group = g.Cg * HW;
  a.a = weight.data_ptr(), a.b = grad_output.data_ptr(), a.out = grad_input.data_ptr();
  run_gemm(grad_output.dtype(), a, current_cuda_stream(grad_input.device().index));
}

// out[i] = sum over splits of ws[s * n + i], converted to T.
template <typename T, typename Acc>
__global__ void sum_splits_kernel(typename ElemTraits<T>::storage* out, const Acc* ws, int splits, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Acc s = 0;
    for (int k = 0; k < splits; ++k) s += ws[k * n + i];
    out[i] = ElemTraits<T>::store(s);
  }
}

void backward_weight_ours(const Tensor& grad_weight, const Tensor& grad_output, const Tensor& input,
                          const Conv2dParams& p) {
  const Geometry g = geometry(input, grad_weight, grad_output, p);
  const int64_t L = g.oH * g.oW, KHW = g.kH * g.kW, R = g.N * L, Kw = g.Cg * KHW;
  cudaStream_t stream = current_cuda_stream(grad_weight.device().index);
  if (R == 0) {  // an empty batch: the gradient is zero
    BM_CUDA_CHECK(cudaMemsetAsync(grad_weight.data_ptr(), 0, grad_weight.nbytes(), stream));
    return;
  }
  check_sizes("conv2d_backward_weight", g, {R, Kw, g.O * Kw});
  const DType dtype = grad_output.dtype();
  ConvGemmArgs a;
  a.M = static_cast<int>(g.Og), a.Nc = static_cast<int>(Kw), a.K = static_cast<int>(R);
  a.groups = static_cast<int>(p.groups);
  // kappa = (oh, ow, n); j = (c, ki, kj); A = grad_output rows, B = the input gathered
  a.k_d1 = static_cast<int>(g.oH), a.k_d2 = static_cast<int>(g.oW), a.k_q = static_cast<int>(g.N);
  a.k_bq = g.C * g.H * g.W, a.k_aq = g.O * L;
  a.k_hs = static_cast<int>(p.stride_h), a.k_h0 = static_cast<int>(-p.pad_h);
  a.k_ws = static_cast<int>(p.stride_w), a.k_w0 = static_cast<int>(-p.pad_w);
  a.j_d1 = static_cast<int>(g.kH), a.j_d2 = static_cast<int>(g.kW);
  a.j_bq = g.H * g.W, a.b_group = g.Cg * g.H * g.W;
  a.j_hs = static_cast<int>(p.dilation_h), a.j_h0 = 0, a.j_ws = static_cast<int>(p.dilation_w), a.j_w0 = 0;
  a.BH = static_cast<int>(g.H), a.BW = static_cast<int>(g.W);
  a.a_group = g.Og * L, a.a_row = L;
  a.out_P = static_cast<int>(Kw), a.out_nstride = 0, a.out_group = g.Og * Kw, a.out_split = g.O * Kw;
  a.a = grad_output.data_ptr(), a.b = input.data_ptr();

  // Split the reduction until the grid holds about two blocks per multiprocessor, keeping
  // at least four k-steps per split; gridDim.z = groups * splits stays under 65536.
  const int bk = tile_k(dtype);
  const int64_t tiles = ((a.M + conv_detail::kTileM - 1) / conv_detail::kTileM) *
                        ((a.Nc + conv_detail::kTileN - 1) / conv_detail::kTileN) * p.groups;
  const int64_t ksteps = (R + bk - 1) / bk;
  int64_t splits = (2 * sm_count() + tiles - 1) / tiles;
  splits = std::min({splits, std::max<int64_t>(ksteps / 4, 1), int64_t{1024}, 65535 / p.groups});
  splits = std::max<int64_t>(splits, 1);
  const int64_t per_split = (ksteps + splits - 1) / splits * bk;
  splits = (R + per_split - 1) / per_split;
  a.splits = static_cast<int>(splits);
  a.k_per_split = static_cast<int>(per_split);

  const bool wide = dtype == DType::Float64;
  const DType acc_dtype = wide ? DType::Float64 : DType::Float32;
  const int64_t n = grad_weight.numel();
  Tensor ws = Tensor::empty({splits * n}, acc_dtype, grad_weight.device());
  a.out = ws.data_ptr();
  a.out_f32 = tensor_core_dtype(dtype);
  run_gemm(dtype, a, stream);
  const unsigned blocks = grid_blocks(n, 256);
  void* dst = grad_weight.data_ptr();
  switch (dtype) {
    case DType::Float64:
      sum_splits_kernel<double, double><<<blocks, 256, 0, stream>>>(static_cast<double*>(dst),
                                                                    static_cast<const double*>(ws.data_ptr()),
                                                                    a.splits, n);
      break;
    case DType::Float32:
      sum_splits_kernel<float, float><<<blocks, 256, 0, stream>>>(static_cast<float*>(dst),
                                                                  static_cast<const float*>(ws.data_ptr()),
                                                                  a.splits, n);
      break;
    case DType::Float16:
      sum_splits_kernel<Half, float><<<blocks, 256, 0, stream>>>(static_cast<uint16_t*>(dst),
                                                                 static_cast<const float*>(ws.data_ptr()),
                                                                 a.splits, n);
      break;
    default:
      sum_splits_kernel<BFloat16, float><<<blocks, 256, 0, stream>>>(static_cast<uint16_t*>(dst),
                                                                     static_cast<const float*>(ws.data_ptr()),
                                                                     a.splits, n);
      break;
  }
  BM_CUDA_CHECK_LAUNCH();
}

void conv2d_forward_cuda(const Tensor& out, const Tensor& input, const Tensor& weight, const Tensor& bias,
                         const Conv2dParams& p) {
  DeviceGuard guard(out.device().index);
  if (uses_vendor_backend("conv") && conv_detail::cudnn_conv_forward(out, input, weight, bias, p)) return;
  forward_ours(out, input, weight, bias, p);
}

void conv2d_backward_input_cuda(const Tensor& grad_input, const Tensor& grad_output, const Tensor& weight,
                                const Conv2dParams& p) {
  DeviceGuard guard(grad_input.device().index);
  if (uses_vendor_backend("conv") &&
      conv_detail::cudnn_conv_backward_input(grad_input, grad_output, weight, p))
    return;
  backward_input_ours(grad_input, grad_output, weight, p);
}

void conv2d_backward_weight_cuda(const Tensor& grad_weight, const Tensor& grad_output, const Tensor& input,
                                 const Conv2dParams& p) {
  DeviceGuard guard(grad_weight.device().index);
  if (uses_vendor_backend("conv") && input.size(0) > 0 &&
      conv_detail::cudnn_conv_backward_weight(grad_weight, grad_output, input, p))
    return;
  backward_weight_ours(grad_weight, grad_output, input, p);
}

}  // namespace

BM_REGISTER_KERNEL(conv2d_forward_kernel, CUDA, &conv2d_forward_cuda);
BM_REGISTER_KERNEL(conv2d_backward_input_kernel, CUDA, &conv2d_backward_input_cuda);
BM_REGISTER_KERNEL(conv2d_backward_weight_kernel, CUDA, &conv2d_backward_weight_cuda);

}  // namespace bigmodel::cuda
