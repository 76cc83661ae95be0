// Range factories: arange, linspace, eye. Lengths follow PyTorch; values come from the
// range kernels (kernels/cpu/range.cpp); eye fills a strided diagonal view.
#include <algorithm>
#include <cmath>

#include "core/ops/copy_kernels.h"
#include "core/ops/creation.h"
#include "core/ops/range_kernels.h"

namespace bigmodel {

BM_DEFINE_KERNEL(arange_kernel);
BM_DEFINE_KERNEL(linspace_kernel);

namespace {

// Number of elements of [start, end) walked by `step`, with PyTorch's checks.
int64_t arange_length(const Scalar& start, const Scalar& end, const Scalar& step, bool all_int) {
  if (all_int) {
    const int64_t s = start.to<int64_t>(), e = end.to<int64_t>(), st = step.to<int64_t>();
    BM_CHECK_VALUE(st != 0, "arange", "step must be nonzero");
    const int64_t d = e - s;
    BM_CHECK_VALUE(d == 0 || (d > 0) == (st > 0), "arange", "upper bound and lower bound inconsistent with step sign (start=",
                   s, ", end=", e, ", step=", st, ")");
    return d / st + (d % st != 0 ? 1 : 0);
  }
  const double s = start.to<double>(), e = end.to<double>(), st = step.to<double>();
  BM_CHECK_VALUE(std::isfinite(s) && std::isfinite(e), "arange", "start and end must be finite, got start=", s,
                 ", end=", e);
  BM_CHECK_VALUE(st != 0.0 && std::isfinite(st), "arange", "step must be nonzero and finite, got ", st);
  const double d = e - s;
  BM_CHECK_VALUE(d == 0.0 || (d > 0) == (st > 0), "arange", "upper bound and lower bound inconsistent with step sign (start=",
                 s, ", end=", e, ", step=", st, ")");
  const double n = std::ceil(d / st);
  BM_CHECK_VALUE(n < 9.0e18, "arange", "range too large: ", n, " elements");
  return static_cast<int64_t>(n);
}

}  // namespace

Tensor arange(const Scalar& end, std::optional<DType> dtype, Device device) {
  return arange(Scalar(int64_t{0}), end, Scalar(int64_t{1}), dtype, device);
}

Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step, std::optional<DType> dtype, Device device) {
  const bool all_int = !start.is_floating() && !end.is_floating() && !step.is_floating();
  const int64_t n = arange_length(start, end, step, all_int);
  const DType dt = dtype.value_or(all_int ? kDefaultInt : kDefaultFloat);
  BM_CHECK_DTYPE(dt != DType::Bool, "arange", "not implemented for bool");
  Tensor out = Tensor::empty({n}, dt, device);
  if (n > 0) arange_kernel.get(device)(out, start, step);
  return out;
}

Tensor linspace(double start, double end, int64_t steps, DType dtype, Device device) {
  BM_CHECK_VALUE(steps >= 0, "linspace", "number of steps must be non-negative, got ", steps);
  BM_CHECK_VALUE(std::isfinite(start) && std::isfinite(end), "linspace", "start and end must be finite, got start=",
                 start, ", end=", end);
  BM_CHECK_DTYPE(dtype != DType::Bool, "linspace", "not implemented for bool");
  Tensor out = Tensor::empty({steps}, dtype, device);
  if (steps > 0) linspace_kernel.get(device)(out, start, end);
  return out;
}

Tensor eye(int64_t n, int64_t m, DType dtype, Device device) {
  if (m == -1) m = n;  // the default: square
  BM_CHECK_VALUE(n >= 0 && m >= 0, "eye", "sizes must be non-negative, got n=", n, ", m=", m);
  Tensor out = zeros({n, m}, dtype, device);
  const int64_t k = std::min(n, m);
  if (k > 0) {
    // The diagonal is a 1-D view with stride m + 1: one fill, on any device.
    Tensor diag = Tensor::make_view(out, {k}, {m + 1}, out.offset());
    fill_kernel.get(device)(diag, Scalar(int64_t{1}));
  }
  return out;
}

}  // namespace bigmodel
