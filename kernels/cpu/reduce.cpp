// CPU reduction kernel over the rows of a contiguous [rows, cols] matrix.
#include <limits>

#include "core/ops/reduce_kernels.h"
#include "kernels/cpu/loops.h"

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
#pragma omp parallel for if (rows * cols > kParallelGrain && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    auto acc = init();
    const T* row = src + r * cols;
    for (int64_t c = 0; c < cols; ++c) acc = step(acc, row[c]);
    dst[r] = static_cast<Out>(acc);
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
      auto init = [is_sum] { return A(is_sum ? 0 : 1); };
      auto step = [is_sum](A acc, T v) { return is_sum ? acc + A(static_cast<C>(v)) : acc * A(static_cast<C>(v)); };
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

void reduce_cpu(ReduceOp op, const Tensor& out, const Tensor& in) {
  BM_DISPATCH_ALL(in.dtype(), "reduce", [&] { reduce_typed<scalar_t>(op, out, in); });
}

}  // namespace

BM_REGISTER_KERNEL(reduce_kernel, CPU, &reduce_cpu);

}  // namespace bigmodel::cpu
