// CPU kernels of the range factories (arange, linspace) on contiguous outputs.
#include <type_traits>

#include "core/ops/range_kernels.h"

namespace bigmodel::cpu {
namespace {

template <typename T>
T cast_double(double v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) return T(static_cast<float>(v));
  else return static_cast<T>(v);
}

// (Pragmas can't sit inside the dispatch macro's argument, so the loops live here.)
template <typename T, typename F>
void fill_indexed(T* p, int64_t n, F&& value_at) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) p[i] = value_at(i);
}

void arange_cpu(const Tensor& out, const Scalar& start, const Scalar& step) {
  const int64_t n = out.numel();
  const bool exact_int = !start.is_floating() && !step.is_floating();
  BM_DISPATCH_NUMERIC(out.dtype(), "arange", [&] {
    scalar_t* p = static_cast<scalar_t*>(out.data_ptr());
    if (exact_int) {
      const int64_t s = start.to<int64_t>(), d = step.to<int64_t>();
      fill_indexed(p, n, [=](int64_t i) {
        if constexpr (std::is_integral_v<scalar_t>) return static_cast<scalar_t>(s + i * d);
        else return cast_double<scalar_t>(static_cast<double>(s + i * d));
      });
    } else {
      const double s = start.to<double>(), d = step.to<double>();
      fill_indexed(p, n, [=](int64_t i) { return cast_double<scalar_t>(s + static_cast<double>(i) * d); });
    }
  });
}

void linspace_cpu(const Tensor& out, double start, double end) {
  const int64_t n = out.numel();
  BM_DISPATCH_NUMERIC(out.dtype(), "linspace", [&] {
    scalar_t* p = static_cast<scalar_t*>(out.data_ptr());
    if (n == 1) {
      p[0] = cast_double<scalar_t>(start);
      return;
    }
    const double step = (end - start) / static_cast<double>(n - 1);
    const int64_t half = n / 2;
    fill_indexed(p, n, [=](int64_t i) {
      return cast_double<scalar_t>(i < half ? start + step * static_cast<double>(i)
                                            : end - step * static_cast<double>(n - 1 - i));
    });
  });
}

}  // namespace

BM_REGISTER_KERNEL(arange_kernel, CPU, &arange_cpu);
BM_REGISTER_KERNEL(linspace_kernel, CPU, &linspace_cpu);

}  // namespace bigmodel::cpu
