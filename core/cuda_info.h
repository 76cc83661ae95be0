// What the CUDA backend can report without a GPU: whether it was built and how many
// devices are visible. A build without CUDA answers false / 0 (core/cuda_info.cpp).
#pragma once

namespace bigmodel::cuda {

bool built_with_cuda();
int device_count();  // 0 without a driver or device
inline bool is_available() { return device_count() > 0; }

}  // namespace bigmodel::cuda
