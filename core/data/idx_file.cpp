// IDX arrays as tensors and IDX files from disk (see idx_file.h).
#include "core/data/idx_file.h"

#include <limits>
#include <type_traits>
#include <vector>

#include "core/data/gzip.h"
#include "core/dispatch.h"
#include "core/error.h"
#include "core/half.h"
#include "core/ops/creation.h"

namespace bigmodel::data {

Tensor idx_to_tensor(const IdxArray& a, DType dtype) {
  const int64_t n = a.numel();
  BM_CHECK_VALUE(a.data.size() == static_cast<size_t>(n) * idx_type_size(a.type), "idx",
                 "array data holds ", a.data.size(), " bytes, not the ", n * static_cast<int64_t>(idx_type_size(a.type)),
                 " its dims need");
  Tensor out = empty(Shape(a.dims.begin(), a.dims.end()), dtype);
  BM_DISPATCH_ALL(dtype, "idx_to_tensor", [&] {
    scalar_t* dst = out.data<scalar_t>();
    if (a.type == IdxType::UInt8) {
      const uint8_t* src = a.data.data();
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<scalar_t>(static_cast<float>(src[i]));
    } else {
      for (int64_t i = 0; i < n; ++i) {
        const double v = a.value(i);
        if constexpr (std::is_integral_v<scalar_t> && !std::is_same_v<scalar_t, bool>) {
          // Out-of-range (or NaN) floats have no integer value: refuse instead of undefined behaviour.
          BM_CHECK_VALUE(v >= static_cast<double>(std::numeric_limits<scalar_t>::min()) &&
                             v < -static_cast<double>(std::numeric_limits<scalar_t>::min()),
                         "idx", "element ", i, " (", v, ") does not fit in ", dtype_name(dtype));
        }
        dst[i] = static_cast<scalar_t>(v);
      }
    }
  });
  return out;
}

IdxArray read_idx_file(const std::string& path) {
  std::vector<uint8_t> bytes = read_maybe_gzip(path, "idx");
  try {
    return parse_idx(bytes.data(), bytes.size());
  } catch (const ValueError& e) {
    // "[idx] <why>" -> "[idx] <path>: <why>"
    const std::string msg = e.what();
    const std::string prefix = "[idx] ";
    throw ValueError(prefix + path + ": " + (msg.compare(0, prefix.size(), prefix) == 0 ? msg.substr(prefix.size()) : msg));
  }
}

}  // namespace bigmodel::data
