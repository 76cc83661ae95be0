// CUDA kernels of the int8 family (core/ops/quant.h) with the CPU contract of
// kernels/cpu/int8_gemm.cpp: quantize (one thread per packed word of 4 int8), dequantize,
// quantize + im2col for convolutions (one thread per packed word of an im2col row), and the
// int8 GEMM, which runs kernels/cuda gemm_int8 (tensor cores when K is a multiple of 16)
// into int32 and, for Float32 outputs, one epilogue pass (acc * a_scale * b_scale + bias).
// Rounding is the CPU's: x / scale in double, round half to even, clamp to [-127, 127], NaN
// to 0; the float epilogue uses the CPU's operation order with round-to-nearest intrinsics.
#include "core/cuda_info.h"
#include "core/ops/quant.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ uint32_t quantize_byte(double x, double scale) {
  double q = rint(x / scale);  // round half to even, as nearbyint on the CPU
  if (q != q) return 0u;
  q = q < -127.0 ? -127.0 : (q > 127.0 ? 127.0 : q);
  return static_cast<uint32_t>(static_cast<uint8_t>(static_cast<int8_t>(q)));
}

// out [R, words] int32: byte t of word w is column 4w + t (little-endian), 0 past K.
template <typename T>
__global__ void __launch_bounds__(kThreads) quantize_kernel(uint32_t* __restrict__ out,
                                                            const typename ElemTraits<T>::storage* __restrict__ x,
                                                            const float* __restrict__ scale, bool per_row, int64_t R,
                                                            int64_t K, int64_t words, int64_t rs, int64_t cs) {
  const int64_t n = R * words;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / words, w = idx - r * words;
    const double s = scale[per_row ? r : 0];
    uint32_t word = 0;
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      const int64_t k = 4 * w + t;
      if (k < K) word |= quantize_byte(static_cast<double>(ElemTraits<T>::load(x[r * rs + k * cs])), s) << (8 * t);
    }
    out[idx] = word;
  }
}

__global__ void __launch_bounds__(kThreads) dequantize_kernel(float* __restrict__ out, const int8_t* __restrict__ q,
                                                              const float* __restrict__ scale, bool per_row, int64_t R,
                                                              int64_t K, int64_t words) {
  const int64_t n = R * K;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / K, k = idx - r * K;
    out[idx] = __fmul_rn(static_cast<float>(q[r * words * 4 + k]), scale[per_row ? r : 0]);
  }
}

struct Im2colGeometry {
  int64_t N, C, H, W, kh, kw, oh, ow, words, Kc;
  int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
};

// out [N*oh*ow, words]: row (n, y, x), column (c, i, j) = input[n, c, y*s - p + i*d, x*s - p + j*d]
// quantized, 0 outside the image and past Kc = C*kh*kw.
template <typename T>
__global__ void __launch_bounds__(kThreads) im2col_kernel(uint32_t* __restrict__ out,
                                                          const typename ElemTraits<T>::storage* __restrict__ in,
                                                          const float* __restrict__ scale_ptr, Im2colGeometry g) {
  const double scale = *scale_ptr;  // read on the device: no host sync
  const int64_t rows = g.N * g.oh * g.ow, n_words = rows * g.words;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n_words;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / g.words, w = idx - r * g.words;
    const int64_t n = r / (g.oh * g.ow), y = (r / g.ow) % g.oh, xo = r % g.ow;
    const int64_t y0 = y * g.stride_h - g.pad_h, x0 = xo * g.stride_w - g.pad_w;
    uint32_t word = 0;
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      const int64_t col = 4 * w + t;
      if (col >= g.Kc) break;
      const int64_t c = col / (g.kh * g.kw), rem = col - c * (g.kh * g.kw);
      const int64_t i = rem / g.kw, j = rem - i * g.kw;
      const int64_t iy = y0 + i * g.dil_h, ix = x0 + j * g.dil_w;
      if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W) continue;
      const double v = static_cast<double>(ElemTraits<T>::load(in[((n * g.C + c) * g.H + iy) * g.W + ix]));
      word |= quantize_byte(v, scale) << (8 * t);
    }
    out[idx] = word;
  }
}

// out[m, n] = float(acc) * (a_scale[m or 0] * b_scale[n or 0]) (+ bias[n]), the CPU's order.
__global__ void __launch_bounds__(kThreads) int8_epilogue_kernel(float* __restrict__ out,
                                                                 const int32_t* __restrict__ acc,
                                                                 const float* __restrict__ sa,
                                                                 const float* __restrict__ sb,
                                                                 const float* __restrict__ bias, bool sa_per_row,
                                                                 bool sb_per_col, int64_t M, int64_t N) {
  const int64_t total = M * N;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t m = idx / N, n = idx - m * N;
    const float s = __fmul_rn(sa[sa_per_row ? m : 0], sb[sb_per_col ? n : 0]);
    const float v = __fmul_rn(static_cast<float>(acc[idx]), s);
    out[idx] = bias ? __fadd_rn(v, bias[n]) : v;
  }
}

void quantize_cuda(const Tensor& out, const Tensor& x, const Tensor& scale) {
  const int64_t R = x.size(0), K = x.size(1), words = out.size(1);
  if (R * words == 0) return;
  const bool per_row = scale.numel() != 1 || R == 1;
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  BM_DISPATCH_FLOATING(x.dtype(), "quantize_int8", [&] {
    using St = typename ElemTraits<scalar_t>::storage;
    quantize_kernel<scalar_t><<<grid_blocks(R * words, kThreads), kThreads, 0, stream>>>(
        static_cast<uint32_t*>(out.data_ptr()), static_cast<const St*>(x.data_ptr()), scale.data<float>(), per_row,
        R, K, words, x.stride(0), x.stride(1));
  });
  BM_CUDA_CHECK_LAUNCH();
}

void dequantize_cuda(const Tensor& out, const Tensor& q, const Tensor& scale) {
  const int64_t R = out.size(0), K = out.size(1), words = q.size(1);
  if (R * K == 0) return;
  const bool per_row = scale.numel() != 1 || R == 1;
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  dequantize_kernel<<<grid_blocks(R * K, kThreads), kThreads, 0, stream>>>(
      out.data<float>(), static_cast<const int8_t*>(q.data_ptr()), scale.data<float>(), per_row, R, K, words);
  BM_CUDA_CHECK_LAUNCH();
}

void im2col_cuda(const Tensor& out, const Tensor& input, const Tensor& scale, int64_t kh, int64_t kw, int64_t oh,
                 int64_t ow, const Conv2dParams& p) {
  Im2colGeometry g{input.size(0), input.size(1), input.size(2), input.size(3), kh, kw, oh, ow, out.size(1),
                   input.size(1) * kh * kw, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h, p.dilation_w};
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  BM_DISPATCH_FLOATING(input.dtype(), "quantized_conv2d", [&] {
    using St = typename ElemTraits<scalar_t>::storage;
    im2col_kernel<scalar_t><<<grid_blocks(n, kThreads), kThreads, 0, stream>>>(
        static_cast<uint32_t*>(out.data_ptr()), static_cast<const St*>(input.data_ptr()), scale.data<float>(), g);
  });
  BM_CUDA_CHECK_LAUNCH();
}

void int8_gemm_cuda(const Tensor& out, const Tensor& a, const Tensor& b, int64_t k, const Tensor& a_scale,
                    const Tensor& b_scale, const Tensor& bias) {
  const int64_t M = a.size(0), N = b.size(0), words = a.size(1);
  if (M == 0 || N == 0) return;
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  const bool int_out = out.dtype() == DType::Int32;
  Tensor acc = int_out ? out : Tensor::empty({M, N}, DType::Int32, out.device());
  if (k == 0) {
    BM_CUDA_CHECK(cudaMemsetAsync(acc.data_ptr(), 0, static_cast<size_t>(M * N) * sizeof(int32_t), stream));
  } else {
    GemmInt8Params p;
    p.M = M, p.N = N, p.K = k;
    p.trans_a = false, p.trans_b = true;  // A stored M x K, B stored N x K: x @ W^T
    p.A = static_cast<const int8_t*>(a.data_ptr());
    p.lda = words * 4;  // bytes per packed row; bytes at k and beyond are never read
    p.B = static_cast<const int8_t*>(b.data_ptr());
    p.ldb = b.size(1) * 4;
    p.C = acc.data<int32_t>();
    p.ldc = N;
    gemm_int8(p, stream);
  }
  if (int_out) return;
  const float* bp = bias.defined() ? bias.data<float>() : nullptr;
  int8_epilogue_kernel<<<grid_blocks(M * N, kThreads), kThreads, 0, stream>>>(
      out.data<float>(), acc.data<int32_t>(), a_scale.data<float>(), b_scale.data<float>(), bp,
      a_scale.numel() != 1 || M == 1, b_scale.numel() != 1 || N == 1, M, N);
  BM_CUDA_CHECK_LAUNCH();
}

}  // namespace

BM_REGISTER_KERNEL(quantize_int8_kernel, CUDA, &quantize_cuda);
BM_REGISTER_KERNEL(dequantize_int8_kernel, CUDA, &dequantize_cuda);
BM_REGISTER_KERNEL(int8_im2col_kernel, CUDA, &im2col_cuda);
BM_REGISTER_KERNEL(int8_gemm_kernel, CUDA, &int8_gemm_cuda);

}  // namespace bigmodel::cuda
