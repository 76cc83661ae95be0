// CPU reduction kernels over the rows of a contiguous [rows, cols] matrix: the plain
// reductions, arg-extremes, row statistics (var/std/logsumexp/norm) and backward helpers.
// Float sums also take a column-major [rows, cols] view (sums over leading dims, no copy).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/ops/reduce_kernels.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/vec_math.h"

namespace bigmodel::cpu {
namespace {

// Accumulator type: double for floating types, int64 for integers and bool.
template <typename T>
using acc_t = std::conditional_t<std::is_floating_point_v<compute_t<T>>, double, int64_t>;

template <typename T, typename Out, typename Init, typename Step>
void reduce_rows(const Tensor& out, const Tensor& in, Init init, Step step) {
  const int64_t rows = in.size(0), cols = in.size(1);
  const T* src = static_cast<const T*>(in.data_ptr());
  Out* dst = static_cast<Out*>(out.data_ptr());
  parallel_for(rows, rows * cols > kParallelGrain, [&](int64_t r) {
    auto acc = init();
    const T* row = src + r * cols;
    for (int64_t c = 0; c < cols; ++c) acc = step(acc, row[c]);
    dst[r] = static_cast<Out>(acc);
  });
}

// Float sums of contiguous rows (the trailing-dim pass of conv bias gradients): still double
// accumulation, but 4 lanes x 4 independent chains instead of one dependent scalar add per
// element (that chain ran ~300 M elements/s). Summation order differs from the scalar loop
// only at double rounding.
#ifdef BM_VEC_X86
BM_TARGET_AVX2 double sum_row_avx2(const float* row, int64_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  int64_t c = 0;
  for (; c + 16 <= n; c += 16) {
    a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(row + c)));
    a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(row + c + 4)));
    a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm_loadu_ps(row + c + 8)));
    a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm_loadu_ps(row + c + 12)));
  }
  for (; c + 4 <= n; c += 4) a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(row + c)));
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
  double acc = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; c < n; ++c) acc += static_cast<double>(row[c]);
  return acc;
}
BM_TARGET_AVX2 double sum_row_avx2(const double* row, int64_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  int64_t c = 0;
  for (; c + 16 <= n; c += 16) {
    a0 = _mm256_add_pd(a0, _mm256_loadu_pd(row + c));
    a1 = _mm256_add_pd(a1, _mm256_loadu_pd(row + c + 4));
    a2 = _mm256_add_pd(a2, _mm256_loadu_pd(row + c + 8));
    a3 = _mm256_add_pd(a3, _mm256_loadu_pd(row + c + 12));
  }
  for (; c + 4 <= n; c += 4) a0 = _mm256_add_pd(a0, _mm256_loadu_pd(row + c));
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
  double acc = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; c < n; ++c) acc += row[c];
  return acc;
}

// Returns false (nothing done) where the vector path does not apply.
template <typename T>
bool sum_rows_vec(const Tensor& out, const Tensor& in) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    if (!vec::has_avx2_fma() || (out.dtype() != DType::Float32 && out.dtype() != DType::Float64)) return false;
    const int64_t rows = in.size(0), cols = in.size(1);
    const T* src = static_cast<const T*>(in.data_ptr());
    BM_DISPATCH_FLOATING(out.dtype(), "sum", [&] {
      if constexpr (std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double>) {
        scalar_t* dst = static_cast<scalar_t*>(out.data_ptr());
        parallel_for(rows, rows * cols > kParallelGrain,
                     [&](int64_t r) { dst[r] = static_cast<scalar_t>(sum_row_avx2(src + r * cols, cols)); });
      }
    });
    return true;
  } else {
    (void)out, (void)in;
    return false;
  }
}
#else
template <typename T>
bool sum_rows_vec(const Tensor&, const Tensor&) { return false; }
#endif

// acc + v or acc * v; signed integers wrap around (two's complement, as PyTorch's and the
// GPU's do) instead of overflowing, which would be undefined behaviour.
template <typename A>
A sum_or_prod(bool is_sum, A acc, A v) {
  if constexpr (std::is_integral_v<A> && std::is_signed_v<A>) {
    using U = std::make_unsigned_t<A>;
    return static_cast<A>(is_sum ? static_cast<U>(static_cast<U>(acc) + static_cast<U>(v))
                                 : static_cast<U>(static_cast<U>(acc) * static_cast<U>(v)));
  } else {
    return is_sum ? acc + v : acc * v;
  }
}

template <typename T>
void reduce_typed(ReduceOp op, const Tensor& out, const Tensor& in) {
  using A = acc_t<T>;
  using C = compute_t<T>;
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Prod: {
      const bool is_sum = op == ReduceOp::Sum;
      if (is_sum && sum_rows_vec<T>(out, in)) break;
      auto init = [is_sum] { return A(is_sum ? 0 : 1); };
      auto step = [is_sum](A acc, T v) { return sum_or_prod<A>(is_sum, acc, A(static_cast<C>(v))); };
      if (out.dtype() == DType::Int64) reduce_rows<T, int64_t>(out, in, init, step);
      else BM_DISPATCH_FLOATING(out.dtype(), "sum", [&] {
        reduce_rows<T, scalar_t>(out, in, [&] { return static_cast<double>(init()); },
                                 [&](double acc, T v) { return static_cast<double>(step(static_cast<A>(acc), v)); });
      });
      break;
    }
    case ReduceOp::Max:
    case ReduceOp::Min: {
      const bool is_max = op == ReduceOp::Max;
      auto init = [is_max] {
        if constexpr (std::is_floating_point_v<C>)
          return is_max ? -std::numeric_limits<C>::infinity() : std::numeric_limits<C>::infinity();
        else
          return is_max ? std::numeric_limits<C>::lowest() : std::numeric_limits<C>::max();
      };
      auto step = [is_max](C acc, T v) {
        C x = static_cast<C>(v);
        if (x != x) return x;  // NaN propagates
        if (acc != acc) return acc;
        return is_max ? (x > acc ? x : acc) : (x < acc ? x : acc);
      };
      reduce_rows<T, T>(out, in, init, step);
      break;
    }
    case ReduceOp::All:
      reduce_rows<T, bool>(out, in, [] { return true; }, [](bool acc, T v) { return acc && static_cast<C>(v) != C(0); });
      break;
    case ReduceOp::Any:
      reduce_rows<T, bool>(out, in, [] { return false; }, [](bool acc, T v) { return acc || static_cast<C>(v) != C(0); });
      break;
  }
}

// Sum of each row of a column-major [rows, cols] view (element (r, c) at c * stride(1) + r):
// what the front end hands over for float sums over leading dims, read in place. Rows go in
// chunks whose double accumulators stay in L1; each column adds a contiguous run to them.
template <typename T, typename Out>
void sum_columns(const Tensor& out, const Tensor& in) {
  using C = compute_t<T>;
  constexpr int64_t kChunk = 512;
  const int64_t rows = in.size(0), cols = in.size(1), ld = in.stride(1);
  const T* src = static_cast<const T*>(in.data_ptr());
  Out* dst = static_cast<Out*>(out.data_ptr());
  const int64_t chunks = (rows + kChunk - 1) / kChunk;
  parallel_for(chunks, rows * cols > kParallelGrain && chunks > 1, [&](int64_t ch) {
    const int64_t r0 = ch * kChunk, n = std::min(kChunk, rows - r0);
    double acc[kChunk];
    std::fill(acc, acc + n, 0.0);
    for (int64_t c = 0; c < cols; ++c) {
      const T* col = src + c * ld + r0;
      for (int64_t r = 0; r < n; ++r) acc[r] += static_cast<double>(static_cast<C>(col[r]));
    }
    for (int64_t r = 0; r < n; ++r) dst[r0 + r] = static_cast<Out>(acc[r]);
  });
}

void reduce_cpu(ReduceOp op, const Tensor& out, const Tensor& in) {
  if (op == ReduceOp::Sum && in.size(1) > 1 && in.stride(1) != 1) {  // column-major view (floating only)
    BM_DISPATCH_FLOATING(in.dtype(), "sum", [&] {
      using In = scalar_t;
      BM_DISPATCH_FLOATING(out.dtype(), "sum", [&] { sum_columns<In, scalar_t>(out, in); });
    });
    return;
  }
  BM_DISPATCH_ALL(in.dtype(), "reduce", [&] { reduce_typed<scalar_t>(op, out, in); });
}

template <typename C>
bool is_nan(C x) {
  if constexpr (std::is_floating_point_v<C>) return std::isnan(x);
  else return false;
}

template <typename T>
void arg_reduce_typed(bool is_max, const Tensor& values, const Tensor& indices, const Tensor& in) {
  using C = compute_t<T>;
  const int64_t rows = in.size(0), cols = in.size(1);
  const T* src = static_cast<const T*>(in.data_ptr());
  T* vals = values.defined() ? static_cast<T*>(values.data_ptr()) : nullptr;
  int64_t* idx = static_cast<int64_t*>(indices.data_ptr());
#pragma omp parallel for if (rows * cols > kParallelGrain && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = src + r * cols;
    C best = static_cast<C>(row[0]);
    int64_t best_i = 0;
    if (!is_nan(best)) {
      for (int64_t c = 1; c < cols; ++c) {
        C x = static_cast<C>(row[c]);
        if (is_nan(x)) {  // the first NaN wins
          best_i = c;
          break;
        }
        if (is_max ? x > best : x < best) {
          best = x;
          best_i = c;
        }
      }
    }
    if (vals) vals[r] = row[best_i];
    idx[r] = best_i;
  }
}

void arg_reduce_cpu(bool is_max, const Tensor& values, const Tensor& indices, const Tensor& in) {
  BM_DISPATCH_ALL(in.dtype(), is_max ? "argmax" : "argmin",
                  [&] { arg_reduce_typed<scalar_t>(is_max, values, indices, in); });
}

// One row's statistic in double.
template <typename T>
double row_statistic(RowStat stat, const T* row, int64_t n, double param) {
  auto atd = [row](int64_t c) { return static_cast<double>(static_cast<compute_t<T>>(row[c])); };
  switch (stat) {
    case RowStat::Var:
    case RowStat::Std: {  // two passes: the mean, then squared deviations
      double s = 0;
      for (int64_t c = 0; c < n; ++c) s += atd(c);
      const double mean = s / static_cast<double>(n);
      double ss = 0;
      for (int64_t c = 0; c < n; ++c) ss += (atd(c) - mean) * (atd(c) - mean);
      const double v = ss / std::max(0.0, static_cast<double>(n) - param);
      return stat == RowStat::Std ? std::sqrt(v) : v;
    }
    case RowStat::LogSumExp: {
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t c = 0; c < n; ++c) {
        double x = atd(c);
        if (std::isnan(x)) return x;
        m = std::max(m, x);
      }
      if (std::isinf(m)) return m;  // all -inf, or some +inf
      double s = 0;
      for (int64_t c = 0; c < n; ++c) s += std::exp(atd(c) - m);
      return m + std::log(s);
    }
    case RowStat::Norm: {
      const double p = param;
      if (std::isinf(p)) {
        double best = p > 0 ? 0.0 : std::numeric_limits<double>::infinity();
        for (int64_t c = 0; c < n; ++c) {
          double a = std::fabs(atd(c));
          if (std::isnan(a)) return a;
          best = p > 0 ? std::max(best, a) : std::min(best, a);
        }
        return best;
      }
      double s = 0;
      if (p == 0) {
        for (int64_t c = 0; c < n; ++c) s += atd(c) != 0 ? 1.0 : 0.0;
        return s;
      }
      if (p == 1) {
        for (int64_t c = 0; c < n; ++c) s += std::fabs(atd(c));
        return s;
      }
      if (p == 2) {
        for (int64_t c = 0; c < n; ++c) s += atd(c) * atd(c);
        return std::sqrt(s);
      }
      for (int64_t c = 0; c < n; ++c) s += std::pow(std::fabs(atd(c)), p);
      return std::pow(s, 1.0 / p);
    }
  }
  return 0;
}

template <typename T>
void row_stat_typed(RowStat stat, const Tensor& out, const Tensor& in, double param) {
  const int64_t rows = in.size(0), cols = in.size(1);
  const T* src = static_cast<const T*>(in.data_ptr());
  T* dst = static_cast<T*>(out.data_ptr());
#pragma omp parallel for if (rows * cols > kParallelGrain && rows > 1)
  for (int64_t r = 0; r < rows; ++r) dst[r] = static_cast<T>(row_statistic(stat, src + r * cols, cols, param));
}

void row_stat_cpu(RowStat stat, const Tensor& out, const Tensor& in, double param) {
  BM_DISPATCH_FLOATING(in.dtype(), "reduce", [&] { row_stat_typed<scalar_t>(stat, out, in, param); });
}

template <typename T>
void row_grad_typed(RowGrad kind, const Tensor& grad_in, const Tensor& in, const Tensor& result,
                    const Tensor& grad_out, double p) {
  const int64_t rows = in.size(0), cols = in.size(1);
  const T* src = static_cast<const T*>(in.data_ptr());
  const T* res = result.defined() ? static_cast<const T*>(result.data_ptr()) : nullptr;
  const T* gout = static_cast<const T*>(grad_out.data_ptr());
  T* dst = static_cast<T*>(grad_in.data_ptr());
  auto val = [](T v) { return static_cast<double>(static_cast<compute_t<T>>(v)); };
  auto sign = [](double x) { return static_cast<double>((x > 0) - (x < 0)); };
#pragma omp parallel for if (rows * cols > kParallelGrain && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = src + r * cols;
    T* g_row = dst + r * cols;
    const double g = val(gout[r]);
    const double target = res ? val(res[r]) : 0.0;
    switch (kind) {
      case RowGrad::Extremum: {
        int64_t ties = 0;
        for (int64_t c = 0; c < cols; ++c) ties += val(row[c]) == target;
        const double share = ties > 0 ? g / static_cast<double>(ties) : 0.0;
        for (int64_t c = 0; c < cols; ++c) g_row[c] = static_cast<T>(val(row[c]) == target ? share : 0.0);
        break;
      }
      case RowGrad::Prod: {  // prefix products times suffix products: exact with zeros
        std::vector<double> prefix(cols + 1, 1.0);
        for (int64_t c = 0; c < cols; ++c) prefix[c + 1] = prefix[c] * val(row[c]);
        double suffix = 1.0;
        for (int64_t c = cols - 1; c >= 0; --c) {
          g_row[c] = static_cast<T>(g * prefix[c] * suffix);
          suffix *= val(row[c]);
        }
        break;
      }
      case RowGrad::Norm: {
        const double nrm = target;
        for (int64_t c = 0; c < cols; ++c) {
          const double x = val(row[c]);
          double d;
          if (std::isinf(p)) d = 0;  // filled below
          else if (p == 0 || nrm == 0) d = 0;
          else if (p == 1) d = sign(x);
          else if (p == 2) d = x / nrm;
          else d = sign(x) * std::pow(std::fabs(x), p - 1) / std::pow(nrm, p - 1);
          g_row[c] = static_cast<T>(g * d);
        }
        if (std::isinf(p)) {  // like amax of |x|: ties share the gradient
          int64_t ties = 0;
          for (int64_t c = 0; c < cols; ++c) ties += std::fabs(val(row[c])) == nrm;
          for (int64_t c = 0; c < cols; ++c) {
            const double x = val(row[c]);
            g_row[c] = static_cast<T>(std::fabs(x) == nrm ? g * sign(x) / static_cast<double>(ties) : 0.0);
          }
        }
        break;
      }
    }
  }
}

void row_grad_cpu(RowGrad kind, const Tensor& grad_in, const Tensor& in, const Tensor& result,
                  const Tensor& grad_out, double p) {
  BM_DISPATCH_FLOATING(in.dtype(), "reduce_backward",
                       [&] { row_grad_typed<scalar_t>(kind, grad_in, in, result, grad_out, p); });
}

void index_grad_cpu(const Tensor& grad_in, const Tensor& indices, const Tensor& grad_out) {
  const int64_t rows = grad_in.size(0), cols = grad_in.size(1);
  const int64_t* idx = static_cast<const int64_t*>(indices.data_ptr());
  std::memset(grad_in.data_ptr(), 0, grad_in.nbytes());  // all-zero bits are 0.0 in every float type
  BM_DISPATCH_FLOATING(grad_in.dtype(), "max_backward", [&] {
    scalar_t* dst = static_cast<scalar_t*>(grad_in.data_ptr());
    const scalar_t* g = static_cast<const scalar_t*>(grad_out.data_ptr());
    for (int64_t r = 0; r < rows; ++r) dst[r * cols + idx[r]] = g[r];
  });
}

}  // namespace

BM_REGISTER_KERNEL(reduce_kernel, CPU, &reduce_cpu);
BM_REGISTER_KERNEL(arg_reduce_kernel, CPU, &arg_reduce_cpu);
BM_REGISTER_KERNEL(row_stat_kernel, CPU, &row_stat_cpu);
BM_REGISTER_KERNEL(row_grad_kernel, CPU, &row_grad_cpu);
BM_REGISTER_KERNEL(index_grad_kernel, CPU, &index_grad_cpu);

}  // namespace bigmodel::cpu
