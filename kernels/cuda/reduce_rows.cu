// CUDA kernels of the row statistics and their backward: row_stat_kernel (var/std by
// Welford, logsumexp by an online max-shifted sum, p-norms) and row_grad_kernel (ties of
// amax/amin and the inf-norm, prod, norm), with the CPU's contract (kernels/cpu/reduce.cpp).
// Statistics accumulate in float for float32/float16/bfloat16 and in double for float64;
// gradients are computed in double like the CPU's, from per-row figures (tie counts,
// products) that the shared row-reduction engine (reduce_launch.cuh) gathers first.
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/dispatch.h"
#include "core/ops/reduce_kernels.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/reduce_launch.cuh"

namespace bigmodel::cuda {
namespace {

template <typename T>
using storage_of = typename ElemTraits<T>::storage;
template <typename T>
using wide_of = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
__device__ __forceinline__ double to_double(storage_of<T> v) {
  return static_cast<double>(ElemTraits<T>::load(v));
}

// ---- statistics ----

template <typename W>
struct WelfordAcc {
  W mean, m2;
  int64_t n;
};

// Var/Std: Welford's update per element, Chan's formula to combine partial results.
template <typename T>
struct VarReducer {
  using In = storage_of<T>;
  using W = wide_of<T>;
  using Acc = WelfordAcc<W>;
  storage_of<T>* out;
  int64_t out_stride;
  double correction;
  bool take_sqrt;
  __device__ Acc identity() const { return {W(0), W(0), 0}; }
  __device__ Acc step(Acc a, In v, int64_t, int64_t) const {
    const W x = static_cast<W>(ElemTraits<T>::load(v));
    a.n += 1;
    const W delta = x - a.mean;
    a.mean += delta / static_cast<W>(a.n);
    a.m2 += delta * (x - a.mean);
    return a;
  }
  __device__ Acc combine(Acc a, Acc b) const {
    if (a.n == 0) return b;
    if (b.n == 0) return a;
    const int64_t n = a.n + b.n;
    const W delta = b.mean - a.mean;
    const W fb = static_cast<W>(b.n) / static_cast<W>(n);
    return {a.mean + delta * fb, a.m2 + b.m2 + delta * delta * static_cast<W>(a.n) * fb, n};
  }
  __device__ void write(int64_t row, Acc a) const {
    // As the CPU: divisor max(0, N - correction); an empty row gives 0/0 = NaN.
    const double divisor = fmax(0.0, static_cast<double>(a.n) - correction);
    const double var = static_cast<double>(a.m2) / divisor;
    out[row * out_stride] = ElemTraits<T>::store(take_sqrt ? sqrt(var) : var);
  }
};

template <typename W>
struct LseAcc {
  W max, sum;  // sum of exp(x - max); max is NaN once a NaN is seen
};

template <typename T>
struct LogSumExpReducer {
  using In = storage_of<T>;
  using W = wide_of<T>;
  using Acc = LseAcc<W>;
  storage_of<T>* out;
  int64_t out_stride;
  __device__ Acc identity() const { return {-std::numeric_limits<W>::infinity(), W(0)}; }
  __device__ Acc combine(Acc a, Acc b) const {
    if (a.max != a.max) return a;
    if (b.max != b.max) return b;
    const W m = a.max > b.max ? a.max : b.max;
    if (isinf(m)) return {m, W(0)};  // all -inf so far, or a +inf: the result is m
    return {m, static_cast<W>(a.sum * exp(a.max - m) + b.sum * exp(b.max - m))};
  }
  __device__ Acc step(Acc a, In v, int64_t, int64_t) const {
    const W x = static_cast<W>(ElemTraits<T>::load(v));
    if (x != x) return {x, W(0)};
    if (a.max != a.max) return a;
    if (x <= a.max) {  // one exp per element in the common case
      if (!isinf(a.max)) a.sum += exp(x - a.max);
      return a;
    }
    if (isinf(x)) return {x, W(0)};
    a.sum = (isinf(a.max) ? W(0) : a.sum * exp(a.max - x)) + W(1);
    a.max = x;
    return a;
  }
  __device__ void write(int64_t row, Acc a) const {
    const W m = a.max;
    const W r = (m != m || isinf(m)) ? m : m + log(a.sum);
    out[row * out_stride] = ElemTraits<T>::store(r);
  }
};

// p-norms; the mode is fixed per launch.
enum class NormMode : int { Count, Abs, Square, Power, Max, Min };

template <typename T>
struct NormReducer {
  using In = storage_of<T>;
  using W = wide_of<T>;
  using Acc = W;
  storage_of<T>* out;
  int64_t out_stride;
  NormMode mode;
  W p;
  __device__ Acc identity() const { return mode == NormMode::Min ? std::numeric_limits<W>::infinity() : W(0); }
  __device__ Acc combine(Acc a, Acc b) const {
    if (mode == NormMode::Max || mode == NormMode::Min) {  // a NaN anywhere gives NaN
      if (b != b) return b;
      if (a != a) return a;
      return mode == NormMode::Max ? (b > a ? b : a) : (b < a ? b : a);
    }
    return a + b;
  }
  __device__ Acc step(Acc a, In v, int64_t, int64_t) const {
    const W x = static_cast<W>(ElemTraits<T>::load(v));
    switch (mode) {
      case NormMode::Count: return a + (x != W(0) ? W(1) : W(0));
      case NormMode::Abs: return a + fabs(x);
      case NormMode::Square: return a + x * x;
      case NormMode::Power: return a + pow(fabs(x), p);
      default: return combine(a, fabs(x));
    }
  }
  __device__ void write(int64_t row, Acc a) const {
    W r = a;
    if (mode == NormMode::Square) r = sqrt(a);
    else if (mode == NormMode::Power) r = pow(a, W(1) / p);
    out[row * out_stride] = ElemTraits<T>::store(r);
  }
};

struct Matrix {
  int64_t rows, cols, rs, cs;
};

Matrix matrix_of(const Tensor& in, const char* op) {
  BM_CHECK(in.dim() == 2, Error, op, "expects a [rows, cols] matrix, got shape ", shape_str(in.sizes()));
  return {in.size(0), in.size(1), in.stride(0), in.stride(1)};
}

template <typename T>
void row_stat_typed(RowStat stat, const Tensor& out, const Tensor& in, double param) {
  const Matrix m = matrix_of(in, "reduce");
  const auto* src = static_cast<const storage_of<T>*>(in.data_ptr());
  auto* dst = static_cast<storage_of<T>*>(out.data_ptr());
  const int64_t os = out.dim() == 0 ? 0 : out.stride(0);
  switch (stat) {
    case RowStat::Var:
    case RowStat::Std:
      launch_row_reduce(VarReducer<T>{dst, os, param, stat == RowStat::Std}, src, m.rows, m.cols, m.rs, m.cs,
                        in.device());
      break;
    case RowStat::LogSumExp:
      launch_row_reduce(LogSumExpReducer<T>{dst, os}, src, m.rows, m.cols, m.rs, m.cs, in.device());
      break;
    case RowStat::Norm: {
      NormMode mode = NormMode::Power;
      if (std::isinf(param)) mode = param > 0 ? NormMode::Max : NormMode::Min;
      else if (param == 0) mode = NormMode::Count;
      else if (param == 1) mode = NormMode::Abs;
      else if (param == 2) mode = NormMode::Square;
      launch_row_reduce(NormReducer<T>{dst, os, mode, static_cast<wide_of<T>>(param)}, src, m.rows, m.cols, m.rs,
                        m.cs, in.device());
      break;
    }
  }
}

void row_stat_cuda(RowStat stat, const Tensor& out, const Tensor& in, double param) {
  BM_DISPATCH_FLOATING(in.dtype(), "reduce", [&] { row_stat_typed<scalar_t>(stat, out, in, param); });
}

// ---- gradients ----

// Per-row count of elements equal to the row's result (|x| for the inf-norm).
template <typename T>
struct TieCountReducer {
  using In = storage_of<T>;
  using Acc = int64_t;
  const storage_of<T>* target;
  int64_t target_stride;
  int64_t* counts;
  bool absolute;
  __device__ Acc identity() const { return 0; }
  __device__ Acc combine(Acc a, Acc b) const { return a + b; }
  __device__ Acc step(Acc a, In v, int64_t row, int64_t) const {
    const double x = to_double<T>(v);
    return a + ((absolute ? fabs(x) : x) == to_double<T>(target[row * target_stride]) ? 1 : 0);
  }
  __device__ void write(int64_t row, Acc a) const { counts[row] = a; }
};

struct ProdAcc {
  double product;  // of the non-zero entries
  int64_t zeros;
};

template <typename T>
struct ProdStatsReducer {
  using In = storage_of<T>;
  using Acc = ProdAcc;
  ProdAcc* stats;
  __device__ Acc identity() const { return {1.0, 0}; }
  __device__ Acc combine(Acc a, Acc b) const { return {a.product * b.product, a.zeros + b.zeros}; }
  __device__ Acc step(Acc a, In v, int64_t, int64_t) const {
    const double x = to_double<T>(v);
    if (x == 0) ++a.zeros;
    else a.product *= x;
    return a;
  }
  __device__ void write(int64_t row, Acc a) const { stats[row] = a; }
};

struct GradArgs {
  int64_t rows, cols, rs, cs;  // the input matrix
  int64_t res_stride, g_stride;
  double p;
};

__device__ __forceinline__ double sign_of(double x) { return static_cast<double>((x > 0) - (x < 0)); }

// grad_in (contiguous [rows, cols]) from the input, the per-row result, grad_out and the
// per-row figures: ties (Extremum, inf-norm) or prod stats. One thread per element.
template <typename T>
__global__ void row_grad_elementwise_kernel(RowGrad kind, storage_of<T>* __restrict__ grad_in,
                                            const storage_of<T>* __restrict__ in,
                                            const storage_of<T>* __restrict__ result,
                                            const storage_of<T>* __restrict__ grad_out,
                                            const int64_t* __restrict__ ties, const ProdAcc* __restrict__ prod,
                                            GradArgs a) {
  const int64_t n = a.rows * a.cols;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const int64_t r = i / a.cols, c = i - r * a.cols;
    const double x = to_double<T>(in[r * a.rs + c * a.cs]);
    const double g = to_double<T>(grad_out[r * a.g_stride]);
    double d = 0;
    if (kind == RowGrad::Extremum) {
      const double target = to_double<T>(result[r * a.res_stride]);
      const int64_t t = ties[r];
      d = (x == target && t > 0) ? g / static_cast<double>(t) : 0.0;
    } else if (kind == RowGrad::Prod) {
      // The product of the other entries, exact with zeros: with no zero it is P / x; with
      // one zero only that entry gets the product of the rest; with more, all get 0.
      const ProdAcc s = prod[r];
      if (s.zeros == 0) d = g * (s.product / x);
      else if (s.zeros == 1 && x == 0) d = g * s.product;
      else d = 0.0;
    } else {  // Norm
      const double nrm = to_double<T>(result[r * a.res_stride]);
      const double p = a.p;
      if (isinf(p)) {
        d = fabs(x) == nrm ? g * sign_of(x) / static_cast<double>(ties[r]) : 0.0;
      } else if (p == 0 || nrm == 0) {
        d = 0.0;
      } else if (p == 1) {
        d = g * sign_of(x);
      } else if (p == 2) {
        d = g * (x / nrm);
      } else {
        d = g * (sign_of(x) * pow(fabs(x), p - 1) / pow(nrm, p - 1));
      }
    }
    grad_in[i] = ElemTraits<T>::store(d);
  }
}

template <typename T>
void row_grad_typed(RowGrad kind, const Tensor& grad_in, const Tensor& in, const Tensor& result,
                    const Tensor& grad_out, double p) {
  const Matrix m = matrix_of(in, "reduce_backward");
  BM_CHECK(grad_in.is_contiguous(), Error, "reduce_backward", "expects a contiguous gradient matrix");
  if (grad_in.numel() == 0) return;
  using S = storage_of<T>;
  const Device dev = in.device();
  const auto* src = static_cast<const S*>(in.data_ptr());
  const S* res = result.defined() ? static_cast<const S*>(result.data_ptr()) : nullptr;
  const int64_t res_stride = result.defined() && result.dim() > 0 ? result.stride(0) : 0;
  Tensor ties, stats;
  const bool need_ties = kind == RowGrad::Extremum || (kind == RowGrad::Norm && std::isinf(p));
  if (need_ties) {
    ties = Tensor::empty({m.rows}, DType::Int64, dev);
    TieCountReducer<T> r{res, res_stride, static_cast<int64_t*>(ties.data_ptr()), kind == RowGrad::Norm};
    launch_row_reduce(r, src, m.rows, m.cols, m.rs, m.cs, dev);
  }
  if (kind == RowGrad::Prod) {
    stats = Tensor::empty({m.rows * static_cast<int64_t>(sizeof(ProdAcc))}, DType::Bool, dev);
    launch_row_reduce(ProdStatsReducer<T>{static_cast<ProdAcc*>(stats.data_ptr())}, src, m.rows, m.cols, m.rs, m.cs,
                      dev);
  }
  DeviceGuard guard(dev.index);
  cudaStream_t stream = current_cuda_stream(dev.index);
  const GradArgs args{m.rows, m.cols, m.rs, m.cs, res_stride, grad_out.dim() > 0 ? grad_out.stride(0) : 0, p};
  row_grad_elementwise_kernel<T><<<grid_blocks(m.rows * m.cols, 256), 256, 0, stream>>>(
      kind, static_cast<S*>(grad_in.data_ptr()), src, res, static_cast<const S*>(grad_out.data_ptr()),
      ties.defined() ? static_cast<const int64_t*>(ties.data_ptr()) : nullptr,
      stats.defined() ? static_cast<const ProdAcc*>(stats.data_ptr()) : nullptr, args);
  BM_CUDA_CHECK_LAUNCH();
}

void row_grad_cuda(RowGrad kind, const Tensor& grad_in, const Tensor& in, const Tensor& result,
                   const Tensor& grad_out, double p) {
  BM_DISPATCH_FLOATING(in.dtype(), "reduce_backward",
                       [&] { row_grad_typed<scalar_t>(kind, grad_in, in, result, grad_out, p); });
}

}  // namespace

BM_REGISTER_KERNEL(row_stat_kernel, CUDA, &row_stat_cuda);
BM_REGISTER_KERNEL(row_grad_kernel, CUDA, &row_grad_cuda);

}  // namespace bigmodel::cuda
