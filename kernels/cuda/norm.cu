// CUDA layer_norm and batch_norm, forward and backward (the contracts of
// kernels/cpu/norm.cpp). Layer norm: a warp per row for cols <= 1024, a block per row
// above, Welford statistics in one read pass; the weight/bias gradients are column sums
// over rows: per-block partials (double) then one small kernel, no atomics. Batch norm:
// per-channel Welford (or gradient-sum) partials over a (channel, split) grid, a
// per-channel finalize, then an elementwise pass. Half types compute in float.
#include <algorithm>
#include <initializer_list>
#include <type_traits>

#include "core/ops/norm.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/row_stats.cuh"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

template <typename T>
using St = typename ElemTraits<T>::storage;
template <typename T>
using Cm = typename ElemTraits<T>::wide;  // also the stat dtype: float, or double for float64

template <typename S>
const S* cptr(const Tensor& t) {
  return t.defined() ? static_cast<const S*>(t.data_ptr()) : nullptr;
}
template <typename S>
S* mptr(const Tensor& t) {
  return t.defined() ? static_cast<S*>(t.data_ptr()) : nullptr;
}

// ---------------------------------------------------------------- layer norm
template <typename T, int V, bool BLOCK>
__global__ void __launch_bounds__(BLOCK ? 1024 : 32 * kRowsPerBlock, 1)
    layer_norm_forward_kernel_cuda(St<T>* __restrict__ y, const St<T>* __restrict__ x,
                                   const Cm<T>* __restrict__ w, const Cm<T>* __restrict__ b,
                                   Cm<T>* __restrict__ mean, Cm<T>* __restrict__ invstd,
                                   int64_t rows, int64_t cols, double eps) {
  using C = Cm<T>;
  using P = RowPack<St<T>, V>;
  __shared__ Welford<C> slots[32];
  const RowWalk<BLOCK> walk;
  const int64_t packs = cols / V;
  for (int64_t row = walk.first(); row < rows; row += walk.stride()) {
    const P* xr = reinterpret_cast<const P*>(x + row * cols);
    Welford<C> acc = Welford<C>::identity();
    for (int64_t p = walk.tid(); p < packs; p += walk.step()) {
      const P v = xr[p];
#pragma unroll
      for (int j = 0; j < V; ++j) acc.add(ElemTraits<T>::load(v.v[j]));
    }
    acc = walk.combine(acc, slots);
    const C mu = acc.mean;
    const C istd = inv_sqrt(fast_div(acc.m2, static_cast<C>(cols)) + static_cast<C>(eps));
    if (walk.tid() == 0) {
      mean[row] = mu;
      invstd[row] = istd;
    }
    P* yr = reinterpret_cast<P*>(y + row * cols);
    for (int64_t p = walk.tid(); p < packs; p += walk.step()) {
      const P v = xr[p];
      P o;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const int64_t col = p * V + j;
        C t = (ElemTraits<T>::load(v.v[j]) - mu) * istd;
        if (w) t *= w[col];
        if (b) t += b[col];
        o.v[j] = ElemTraits<T>::store(t);
      }
      yr[p] = o;
    }
  }
}

// grad_in = istd * (g*w - mean(g*w) - xhat * mean(g*w*xhat)) per row.
template <typename T, int V, bool BLOCK>
__global__ void __launch_bounds__(BLOCK ? 1024 : 32 * kRowsPerBlock, 1)
    layer_norm_backward_input_kernel(St<T>* __restrict__ gx, const St<T>* __restrict__ g,
                                     const St<T>* __restrict__ x, const Cm<T>* __restrict__ w,
                                     const Cm<T>* __restrict__ mean,
                                     const Cm<T>* __restrict__ invstd, int64_t rows, int64_t cols) {
  using C = Cm<T>;
  using P = RowPack<St<T>, V>;
  __shared__ Sum2<C> slots[32];
  const RowWalk<BLOCK> walk;
  const int64_t packs = cols / V;
  for (int64_t row = walk.first(); row < rows; row += walk.stride()) {
    const P* xr = reinterpret_cast<const P*>(x + row * cols);
    const P* gr = reinterpret_cast<const P*>(g + row * cols);
    const C mu = mean[row], istd = invstd[row];
    Sum2<C> acc = Sum2<C>::identity();  // a: sum(g*w), b: sum(g*w*xhat)
    for (int64_t p = walk.tid(); p < packs; p += walk.step()) {
      const P xv = xr[p], gv = gr[p];
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const C gw = ElemTraits<T>::load(gv.v[j]) * (w ? w[p * V + j] : C(1));
        acc.a += gw;
        acc.b += gw * ((ElemTraits<T>::load(xv.v[j]) - mu) * istd);
      }
    }
    acc = walk.combine(acc, slots);
    const C mean_a = fast_div(acc.a, static_cast<C>(cols)),
            mean_b = fast_div(acc.b, static_cast<C>(cols));
    P* out = reinterpret_cast<P*>(gx + row * cols);
    for (int64_t p = walk.tid(); p < packs; p += walk.step()) {
      const P xv = xr[p], gv = gr[p];
      P o;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const C gw = ElemTraits<T>::load(gv.v[j]) * (w ? w[p * V + j] : C(1));
        const C xhat = (ElemTraits<T>::load(xv.v[j]) - mu) * istd;
        o.v[j] = ElemTraits<T>::store(istd * (gw - mean_a - xhat * mean_b));
      }
      out[p] = o;
    }
  }
}

// Column sums of g*xhat and g over one chunk of rows: block (32 columns, 8 row lanes),
// blockIdx.x the column tile, blockIdx.y the chunk; partials [chunks, cols] in double.
constexpr int kColTile = 32, kColLanes = 8;

template <typename T>
__global__ void __launch_bounds__(kColTile* kColLanes, 1)
    layer_norm_col_partials_kernel(double* __restrict__ part_w, double* __restrict__ part_b,
                                   const St<T>* __restrict__ g, const St<T>* __restrict__ x,
                                   const Cm<T>* __restrict__ mean, const Cm<T>* __restrict__ invstd,
                                   int64_t rows, int64_t cols, int64_t rows_per_chunk) {
  using C = Cm<T>;
  __shared__ C sw[kColLanes][kColTile + 1], sb[kColLanes][kColTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t col = int64_t{blockIdx.x} * kColTile + tx;
  const int64_t r0 = int64_t{blockIdx.y} * rows_per_chunk;
  const int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  C acc_w = C(0), acc_b = C(0);
  if (col < cols) {
    for (int64_t r = r0 + ty; r < r1; r += kColLanes) {
      const C gv = ElemTraits<T>::load(g[r * cols + col]);
      acc_b += gv;
      acc_w += gv * ((ElemTraits<T>::load(x[r * cols + col]) - mean[r]) * invstd[r]);
    }
  }
  sw[ty][tx] = acc_w;
  sb[ty][tx] = acc_b;
  __syncthreads();
  if (ty == 0 && col < cols) {
    double tw = 0, tb = 0;
#pragma unroll
    for (int s = 0; s < kColLanes; ++s) {
      tw += sw[s][tx];
      tb += sb[s][tx];
    }
    part_w[int64_t{blockIdx.y} * cols + col] = tw;
    part_b[int64_t{blockIdx.y} * cols + col] = tb;
  }
}

// Sums the chunk partials of each column (a thread per column, chunks in order).
template <typename S>
__global__ void col_finish_kernel(S* __restrict__ gw, S* __restrict__ gb,
                                  const double* __restrict__ part_w,
                                  const double* __restrict__ part_b, int64_t chunks, int64_t cols) {
  for (int64_t col = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; col < cols;
       col += int64_t{gridDim.x} * blockDim.x) {
    double tw = 0, tb = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      tw += part_w[c * cols + col];
      tb += part_b[c * cols + col];
    }
    if (gw) gw[col] = static_cast<S>(tw);
    if (gb) gb[col] = static_cast<S>(tb);
  }
}

// V-element packs when every row starts 16-byte aligned in each of `ptrs`.
template <typename T>
bool rows_vectorizable(int64_t cols, std::initializer_list<const void*> ptrs) {
  constexpr int V = 16 / sizeof(St<T>);
  if (cols % V != 0) return false;
  for (const void* p : ptrs)
    if (!aligned_to(p, 16)) return false;
  return true;
}

// Picks the row kernels' variant (a warp per row up to 1024 columns, a block per row above;
// 16-byte packs where `ptrs` allow) and calls launch(pack, block, grid, threads) with pack
// and block as std::integral_constant template arguments for the kernel.
template <typename T, typename Launch>
void launch_rows(int64_t rows, int64_t cols, std::initializer_list<const void*> ptrs,
                 Launch&& launch) {
  auto with = [&](auto pack, auto block) {
    constexpr int V = decltype(pack)::value;
    constexpr bool BLOCK = decltype(block)::value;
    const unsigned grid = capped_blocks(BLOCK ? rows : (rows + kRowsPerBlock - 1) / kRowsPerBlock);
    const int threads = BLOCK ? row_block_threads(cols / V) : 32 * kRowsPerBlock;
    launch(pack, block, grid, threads);
  };
  using Pack = std::integral_constant<int, 16 / sizeof(St<T>)>;
  using One = std::integral_constant<int, 1>;
  const bool vec = rows_vectorizable<T>(cols, ptrs);
  if (cols <= 1024) {
    if (vec)
      with(Pack{}, std::false_type{});
    else
      with(One{}, std::false_type{});
  } else {
    if (vec)
      with(Pack{}, std::true_type{});
    else
      with(One{}, std::true_type{});
  }
}

template <typename T>
void layer_norm_forward_typed(const Tensor& out, const Tensor& in, const Tensor& weight,
                              const Tensor& bias, const Tensor& mean, const Tensor& invstd,
                              double eps) {
  using C = Cm<T>;
  const int64_t rows = mean.numel(), cols = in.numel() / rows;
  DeviceGuard guard(in.device().index);
  cudaStream_t stream = current_cuda_stream(in.device().index);
  launch_rows<T>(rows, cols, {in.data_ptr(), out.data_ptr()},
                 [&](auto pack, auto block, unsigned grid, int threads) {
                   layer_norm_forward_kernel_cuda<T, decltype(pack)::value, decltype(block)::value>
                       <<<grid, threads, 0, stream>>>(static_cast<St<T>*>(out.data_ptr()),
                                                      static_cast<const St<T>*>(in.data_ptr()),
                                                      cptr<C>(weight), cptr<C>(bias), mptr<C>(mean),
                                                      mptr<C>(invstd), rows, cols, eps);
                   BM_CUDA_CHECK_LAUNCH();
                 });
}

template <typename T>
void layer_norm_backward_typed(const Tensor& grad_in, const Tensor& grad_weight,
                               const Tensor& grad_bias, const Tensor& grad_out, const Tensor& in,
                               const Tensor& weight, const Tensor& mean, const Tensor& invstd) {
  using C = Cm<T>;
  const int64_t rows = mean.numel(), cols = in.numel() / rows;
  const int dev = in.device().index;
  DeviceGuard guard(dev);
  cudaStream_t stream = current_cuda_stream(dev);
  if (grad_in.defined()) {
    launch_rows<T>(
        rows, cols, {in.data_ptr(), grad_out.data_ptr(), grad_in.data_ptr()},
        [&](auto pack, auto block, unsigned grid, int threads) {
          layer_norm_backward_input_kernel<T, decltype(pack)::value, decltype(block)::value>
              <<<grid, threads, 0, stream>>>(static_cast<St<T>*>(grad_in.data_ptr()),
                                             static_cast<const St<T>*>(grad_out.data_ptr()),
                                             static_cast<const St<T>*>(in.data_ptr()),
                                             cptr<C>(weight), cptr<C>(mean), cptr<C>(invstd), rows,
                                             cols);
          BM_CUDA_CHECK_LAUNCH();
        });
  }
  if (!grad_weight.defined() && !grad_bias.defined()) return;
  // About two blocks per multiprocessor over (column tiles x row chunks), each chunk at
  // least 32 rows so the partials stay small next to the input.
  const int64_t tiles = (cols + kColTile - 1) / kColTile;
  const int64_t want = (2 * int64_t{sm_count(dev)} + tiles - 1) / tiles;
  int64_t chunks = std::max<int64_t>(1, std::min<int64_t>({want, (rows + 31) / 32, 1024}));
  const int64_t rows_per_chunk = (rows + chunks - 1) / chunks;
  chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  Tensor part = Tensor::empty({2, chunks, cols}, DType::Float64, in.device());
  double* part_w = static_cast<double*>(part.data_ptr());
  double* part_b = part_w + chunks * cols;
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(chunks));
  layer_norm_col_partials_kernel<T><<<grid, dim3(kColTile, kColLanes), 0, stream>>>(
      part_w, part_b, static_cast<const St<T>*>(grad_out.data_ptr()),
      static_cast<const St<T>*>(in.data_ptr()), cptr<C>(mean), cptr<C>(invstd), rows, cols,
      rows_per_chunk);
  BM_CUDA_CHECK_LAUNCH();
  col_finish_kernel<C><<<capped_blocks((cols + 255) / 256), 256, 0, stream>>>(
      mptr<C>(grad_weight), mptr<C>(grad_bias), part_w, part_b, chunks, cols);
  BM_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------- batch norm
// Per channel c the values are x[(n*C + c)*S + s] for n < N, s < S: element e of the
// channel is n = e / S, s = e % S. A (channel, split) block walks e = split*threads + tid
// in steps of splits*threads; the divisions are cheap next to the memory traffic.
constexpr int kBnThreads = 256;

__device__ __forceinline__ int64_t bn_offset(int64_t e, int64_t c, int64_t C, int64_t S) {
  const int64_t n = e / S;
  return (n * C + c) * S + (e - n * S);
}

// Training statistics: Welford partials (count, mean, M2) per (channel, split).
template <typename T>
__global__ void __launch_bounds__(kBnThreads, 1)
    batch_norm_stats_kernel(double* __restrict__ part, const St<T>* __restrict__ x, int64_t C,
                            int64_t S, int64_t count) {
  using Cc = Cm<T>;
  __shared__ Welford<Cc> slots[32];
  const int64_t c = blockIdx.x, splits = gridDim.y;
  Welford<Cc> acc = Welford<Cc>::identity();
  for (int64_t e = int64_t{blockIdx.y} * kBnThreads + threadIdx.x; e < count;
       e += splits * kBnThreads)
    acc.add(ElemTraits<T>::load(x[bn_offset(e, c, C, S)]));
  acc = block_combine(acc, slots);
  if (threadIdx.x == 0) {
    double* p = part + (c * splits + blockIdx.y) * 3;
    p[0] = acc.n;
    p[1] = acc.mean;
    p[2] = acc.m2;
  }
}

// One thread per channel merges its splits in order: mean, invstd and the biased variance.
template <typename S>
__global__ void batch_norm_stats_finish_kernel(S* __restrict__ mean, S* __restrict__ invstd,
                                               S* __restrict__ var, const double* __restrict__ part,
                                               int64_t C, int64_t splits, double eps) {
  const int64_t c = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (c >= C) return;
  Welford<double> acc = Welford<double>::identity();
  for (int64_t s = 0; s < splits; ++s) {
    const double* p = part + (c * splits + s) * 3;
    acc.merge(Welford<double>{p[0], p[1], p[2]});
  }
  const double v = acc.m2 / acc.n;
  mean[c] = static_cast<S>(acc.mean);
  invstd[c] = static_cast<S>(1.0 / sqrt(v + eps));
  var[c] = static_cast<S>(v);
}

// y = x * scale + shift with scale = invstd * w, shift = b - mean * scale (as the CPU).
template <typename T>
__global__ void batch_norm_apply_kernel(St<T>* __restrict__ y, const St<T>* __restrict__ x,
                                        const Cm<T>* __restrict__ w, const Cm<T>* __restrict__ b,
                                        const Cm<T>* __restrict__ mean,
                                        const Cm<T>* __restrict__ invstd, int64_t C, int64_t S,
                                        int64_t numel) {
  using Cc = Cm<T>;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < numel;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t c = (i / S) % C;
    const Cc scale = invstd[c] * (w ? w[c] : Cc(1));
    const Cc shift = (b ? b[c] : Cc(0)) - mean[c] * scale;
    y[i] = ElemTraits<T>::store(ElemTraits<T>::load(x[i]) * scale + shift);
  }
}

// Backward sums per (channel, split): sum(g) and sum(g * (x - mean)).
template <typename T>
__global__ void __launch_bounds__(kBnThreads, 1)
    batch_norm_grad_sums_kernel(double* __restrict__ part, const St<T>* __restrict__ g,
                                const St<T>* __restrict__ x, const Cm<T>* __restrict__ mean,
                                int64_t C, int64_t S, int64_t count) {
  using Cc = Cm<T>;
  __shared__ Sum2<Cc> slots[32];
  const int64_t c = blockIdx.x, splits = gridDim.y;
  const Cc mu = mean[c];
  Sum2<Cc> acc = Sum2<Cc>::identity();
  for (int64_t e = int64_t{blockIdx.y} * kBnThreads + threadIdx.x; e < count;
       e += splits * kBnThreads) {
    const int64_t off = bn_offset(e, c, C, S);
    const Cc gv = ElemTraits<T>::load(g[off]);
    acc.a += gv;
    acc.b += gv * (ElemTraits<T>::load(x[off]) - mu);
  }
  acc = block_combine(acc, slots);
  if (threadIdx.x == 0) {
    double* p = part + (c * splits + blockIdx.y) * 2;
    p[0] = acc.a;
    p[1] = acc.b;
  }
}

// Per channel: grad_weight, grad_bias and the coefficients of grad_in,
// coef = {gmean, k, scale}: dx = (g - gmean - (x - mean) * k) * scale.
template <typename S>
__global__ void batch_norm_grad_finish_kernel(S* __restrict__ gw, S* __restrict__ gb,
                                              S* __restrict__ coef, const double* __restrict__ part,
                                              const S* __restrict__ w, const S* __restrict__ invstd,
                                              int64_t C, int64_t splits, double count,
                                              bool training) {
  const int64_t c = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double sum_g = 0, sum_gx = 0;
  for (int64_t s = 0; s < splits; ++s) {
    sum_g += part[(c * splits + s) * 2];
    sum_gx += part[(c * splits + s) * 2 + 1];
  }
  const double istd = invstd[c];
  if (gw) gw[c] = static_cast<S>(sum_gx * istd);
  if (gb) gb[c] = static_cast<S>(sum_g);
  if (coef) {
    coef[c] = training ? static_cast<S>(sum_g / count) : S(0);
    coef[C + c] = training ? static_cast<S>(sum_gx * istd * istd / count) : S(0);
    coef[2 * C + c] = static_cast<S>((w ? static_cast<double>(w[c]) : 1.0) * istd);
  }
}

template <typename T>
__global__ void batch_norm_grad_input_kernel(St<T>* __restrict__ gx, const St<T>* __restrict__ g,
                                             const St<T>* __restrict__ x,
                                             const Cm<T>* __restrict__ mean,
                                             const Cm<T>* __restrict__ coef, int64_t C, int64_t S,
                                             int64_t numel) {
  using Cc = Cm<T>;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < numel;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t c = (i / S) % C;
    const Cc gv = ElemTraits<T>::load(g[i]), xv = ElemTraits<T>::load(x[i]);
    gx[i] = ElemTraits<T>::store((gv - coef[c] - (xv - mean[c]) * coef[C + c]) * coef[2 * C + c]);
  }
}

// Splits per channel: about four blocks per multiprocessor in all, at least 4 passes of
// the block over the channel's values per split.
int64_t bn_splits(int64_t C, int64_t count, int dev) {
  const int64_t want = (4 * int64_t{sm_count(dev)} + C - 1) / C;
  const int64_t most = (count + 4 * kBnThreads - 1) / (4 * kBnThreads);
  return std::max<int64_t>(1, std::min<int64_t>({want, most, 65535}));
}

// Batch norm's view of `in` [N, Ch, *] (S values per channel and image), with in's device
// made current for the scope, and that device's stream.
struct BnSetup {
  explicit BnSetup(const Tensor& in)
      : N(in.size(0)),
        Ch(in.size(1)),
        S(in.numel() / (N * Ch)),
        dev(in.device().index),
        guard(dev),
        stream(current_cuda_stream(dev)) {}
  int64_t N, Ch, S;
  int dev;
  DeviceGuard guard;
  cudaStream_t stream;
};

template <typename T>
void batch_norm_forward_typed(const Tensor& out, const Tensor& in, const Tensor& weight,
                              const Tensor& bias, const Tensor& mean, const Tensor& invstd,
                              const Tensor& var_out, bool training, double eps) {
  using C = Cm<T>;
  const BnSetup bn(in);
  const auto* x = static_cast<const St<T>*>(in.data_ptr());
  if (training) {
    const int64_t count = bn.N * bn.S, splits = bn_splits(bn.Ch, count, bn.dev);
    Tensor part = Tensor::empty({bn.Ch, splits, 3}, DType::Float64, in.device());
    batch_norm_stats_kernel<T>
        <<<dim3(static_cast<unsigned>(bn.Ch), static_cast<unsigned>(splits)), kBnThreads, 0,
           bn.stream>>>(static_cast<double*>(part.data_ptr()), x, bn.Ch, bn.S, count);
    BM_CUDA_CHECK_LAUNCH();
    batch_norm_stats_finish_kernel<C><<<capped_blocks((bn.Ch + 127) / 128), 128, 0, bn.stream>>>(
        mptr<C>(mean), mptr<C>(invstd), mptr<C>(var_out),
        static_cast<const double*>(part.data_ptr()), bn.Ch, splits, eps);
    BM_CUDA_CHECK_LAUNCH();
  }
  const int64_t numel = in.numel();
  batch_norm_apply_kernel<T><<<grid_blocks(numel, 256), 256, 0, bn.stream>>>(
      static_cast<St<T>*>(out.data_ptr()), x, cptr<C>(weight), cptr<C>(bias), cptr<C>(mean),
      cptr<C>(invstd), bn.Ch, bn.S, numel);
  BM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void batch_norm_backward_typed(const Tensor& grad_in, const Tensor& grad_weight,
                               const Tensor& grad_bias, const Tensor& grad_out, const Tensor& in,
                               const Tensor& weight, const Tensor& mean, const Tensor& invstd,
                               bool training) {
  using C = Cm<T>;
  const BnSetup bn(in);
  const auto* x = static_cast<const St<T>*>(in.data_ptr());
  const auto* g = static_cast<const St<T>*>(grad_out.data_ptr());
  const int64_t count = bn.N * bn.S, numel = in.numel();
  // The sums are needed for grad_weight/grad_bias, and for grad_in when training; eval's
  // grad_in = g * w * invstd needs only the finish kernel's scale.
  const bool need_sums =
      grad_weight.defined() || grad_bias.defined() || (grad_in.defined() && training);
  const int64_t splits = need_sums ? bn_splits(bn.Ch, count, bn.dev) : 1;
  Tensor part = Tensor::empty({bn.Ch, splits, 2}, DType::Float64, in.device());
  if (need_sums) {
    batch_norm_grad_sums_kernel<T>
        <<<dim3(static_cast<unsigned>(bn.Ch), static_cast<unsigned>(splits)), kBnThreads, 0,
           bn.stream>>>(static_cast<double*>(part.data_ptr()), g, x, cptr<C>(mean), bn.Ch, bn.S,
                        count);
    BM_CUDA_CHECK_LAUNCH();
  } else {
    BM_CUDA_CHECK(cudaMemsetAsync(part.data_ptr(), 0, part.nbytes(), bn.stream));
  }
  Tensor coef = grad_in.defined() ? Tensor::empty({3, bn.Ch}, mean.dtype(), in.device()) : Tensor();
  batch_norm_grad_finish_kernel<C><<<capped_blocks((bn.Ch + 127) / 128), 128, 0, bn.stream>>>(
      mptr<C>(grad_weight), mptr<C>(grad_bias), mptr<C>(coef),
      static_cast<const double*>(part.data_ptr()), cptr<C>(weight), cptr<C>(invstd), bn.Ch, splits,
      static_cast<double>(count), training);
  BM_CUDA_CHECK_LAUNCH();
  if (grad_in.defined()) {
    batch_norm_grad_input_kernel<T><<<grid_blocks(numel, 256), 256, 0, bn.stream>>>(
        static_cast<St<T>*>(grad_in.data_ptr()), g, x, cptr<C>(mean), cptr<C>(coef), bn.Ch, bn.S,
        numel);
    BM_CUDA_CHECK_LAUNCH();
  }
}

void layer_norm_forward_cuda(const Tensor& out, const Tensor& in, const Tensor& weight,
                             const Tensor& bias, const Tensor& mean, const Tensor& invstd,
                             double eps) {
  BM_DISPATCH_FLOATING(in.dtype(), "layer_norm", [&] {
    layer_norm_forward_typed<scalar_t>(out, in, weight, bias, mean, invstd, eps);
  });
}

void layer_norm_backward_cuda(const Tensor& grad_in, const Tensor& grad_weight,
                              const Tensor& grad_bias, const Tensor& grad_out, const Tensor& in,
                              const Tensor& weight, const Tensor& mean, const Tensor& invstd) {
  BM_DISPATCH_FLOATING(in.dtype(), "layer_norm_backward", [&] {
    layer_norm_backward_typed<scalar_t>(grad_in, grad_weight, grad_bias, grad_out, in, weight, mean,
                                        invstd);
  });
}

void batch_norm_forward_cuda(const Tensor& out, const Tensor& in, const Tensor& weight,
                             const Tensor& bias, const Tensor& mean, const Tensor& invstd,
                             const Tensor& var_out, bool training, double eps) {
  BM_DISPATCH_FLOATING(in.dtype(), "batch_norm", [&] {
    batch_norm_forward_typed<scalar_t>(out, in, weight, bias, mean, invstd, var_out, training, eps);
  });
}

void batch_norm_backward_cuda(const Tensor& grad_in, const Tensor& grad_weight,
                              const Tensor& grad_bias, const Tensor& grad_out, const Tensor& in,
                              const Tensor& weight, const Tensor& mean, const Tensor& invstd,
                              bool training) {
  BM_DISPATCH_FLOATING(in.dtype(), "batch_norm_backward", [&] {
    batch_norm_backward_typed<scalar_t>(grad_in, grad_weight, grad_bias, grad_out, in, weight, mean,
                                        invstd, training);
  });
}

}  // namespace

BM_REGISTER_KERNEL(batch_norm_forward_kernel, CUDA, &batch_norm_forward_cuda);
BM_REGISTER_KERNEL(batch_norm_backward_kernel, CUDA, &batch_norm_backward_cuda);
BM_REGISTER_KERNEL(layer_norm_forward_kernel, CUDA, &layer_norm_forward_cuda);
BM_REGISTER_KERNEL(layer_norm_backward_kernel, CUDA, &layer_norm_backward_cuda);

}  // namespace bigmodel::cuda
