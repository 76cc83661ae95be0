// Device parsing and printing.
#include "core/device.h"

#include <cstdlib>

#include "core/cuda_info.h"
#include "core/error.h"

namespace bigmodel {

Device::Device(const std::string& spec) {
  if (spec == "cpu") {
    type = DeviceType::CPU;
    index = 0;
    return;
  }
  if (spec.rfind("cuda", 0) == 0) {
    type = DeviceType::CUDA;
    index = 0;
    if (spec.size() == 4) {
      // Plain "cuda" is the current device, as in PyTorch (each data-parallel rank makes its
      // own GPU current, so model.to("cuda") lands there); resolved now, not at each use.
      if (cuda::is_available()) index = cuda::current_device();
      return;
    }
    if (spec[4] == ':' && spec.size() > 5) {
      char* end = nullptr;
      long v = std::strtol(spec.c_str() + 5, &end, 10);
      if (*end == '\0' && v >= 0) {
        index = static_cast<int>(v);
        return;
      }
    }
  }
  throw ValueError(str_cat("[device] expected 'cpu', 'cuda' or 'cuda:N', got '", spec, "'"));
}

std::string Device::str() const {
  return is_cpu() ? "cpu" : "cuda:" + std::to_string(index);
}

}  // namespace bigmodel
