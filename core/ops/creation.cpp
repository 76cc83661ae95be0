// Factories that allocate and fill: empty, zeros, ones, full, *_like, scalar_tensor,
// from_host, fill_. Ranges and random factories live in ops/range.cpp and ops/random.cpp.
#include "core/ops/creation.h"

#include <cstring>

#include "core/autograd.h"
#include "core/ops/copy_kernels.h"
#include "core/ops/view.h"

namespace bigmodel {

void check_sizes(const char* op, const Shape& sizes) {
  int64_t numel = 1;
  for (int64_t s : sizes) {
    BM_CHECK_VALUE(s >= 0, op, "negative dimension ", s, " in shape ", shape_str(sizes));
    BM_CHECK_VALUE(s == 0 || numel <= (int64_t{1} << 62) / s, op, "shape ", shape_str(sizes), " has too many elements");
    numel *= s;
  }
}

namespace {
Tensor filled(const char* op, const Shape& sizes, const Scalar& value, DType dtype, Device device) {
  check_sizes(op, sizes);
  Tensor t = Tensor::empty(sizes, dtype, device);
  fill_kernel.get(device)(t, value);
  return t;
}
}  // namespace

Tensor empty(const Shape& sizes, DType dtype, Device device) {
  check_sizes("empty", sizes);
  return Tensor::empty(sizes, dtype, device);
}

Tensor full(const Shape& sizes, const Scalar& value, DType dtype, Device device) {
  return filled("full", sizes, value, dtype, device);
}
Tensor zeros(const Shape& sizes, DType dtype, Device device) {
  return filled("zeros", sizes, Scalar(int64_t{0}), dtype, device);
}
Tensor ones(const Shape& sizes, DType dtype, Device device) {
  return filled("ones", sizes, Scalar(int64_t{1}), dtype, device);
}
Tensor empty_like(const Tensor& t) { return empty(t.sizes(), t.dtype(), t.device()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.sizes(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.sizes(), t.dtype(), t.device()); }
Tensor full_like(const Tensor& t, const Scalar& value) { return full(t.sizes(), value, t.dtype(), t.device()); }

Tensor scalar_tensor(const Scalar& value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor from_host(const void* data, const Shape& sizes, DType dtype, Device device) {
  Tensor cpu = Tensor::empty(sizes, dtype, Device());
  if (cpu.nbytes() > 0) std::memcpy(cpu.data_ptr(), data, cpu.nbytes());
  return device.is_cpu() ? cpu : to(cpu, device);
}

Tensor& fill_(Tensor& self, const Scalar& value) {
  check_inplace(self, "fill_");
  fill_kernel.get(self.device())(self, value);
  return self;
}

Tensor& zero_(Tensor& self) { return fill_(self, Scalar(int64_t{0})); }

}  // namespace bigmodel
