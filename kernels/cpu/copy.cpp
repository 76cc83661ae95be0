// CPU copy (with dtype conversion, from any strides) and fill kernels.
#include "core/dispatch.h"
#include "core/ops/copy_kernels.h"
#include "kernels/cpu/loops.h"

namespace bigmodel::cpu {
namespace {

template <typename To, typename From>
To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return static_cast<compute_t<From>>(v) != compute_t<From>(0);
  } else if constexpr (std::is_same_v<From, Half> || std::is_same_v<From, BFloat16>) {
    return static_cast<To>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) {
    return To(static_cast<float>(v));
  } else {
    return static_cast<To>(v);
  }
}

void copy_cpu(const Tensor& dst, const Tensor& src) {
  BM_DISPATCH_ALL(dst.dtype(), "copy", [&] {
    using dst_t = scalar_t;
    BM_DISPATCH_ALL(src.dtype(), "copy", [&] {
      map_elements<dst_t, scalar_t>(dst, {&src}, [](scalar_t v) { return convert<dst_t>(v); });
    });
  });
}

void fill_cpu(const Tensor& dst, const Scalar& value) {
  BM_DISPATCH_ALL(dst.dtype(), "fill", [&] {
    const scalar_t v = value.to<scalar_t>();
    if (dst.is_contiguous()) {
      scalar_t* p = static_cast<scalar_t*>(dst.data_ptr());
      const int64_t n = dst.numel();
      for (int64_t i = 0; i < n; ++i) p[i] = v;
    } else {
      map_elements<scalar_t>(dst, {}, [v]() { return v; });
    }
  });
}

}  // namespace

BM_REGISTER_KERNEL(copy_kernel, CPU, &copy_cpu);
BM_REGISTER_KERNEL(fill_kernel, CPU, &fill_cpu);

}  // namespace bigmodel::cpu
