// Fallback for builds without CUDA; kernels/cuda/device.cu defines these otherwise.
#ifndef BIGMODEL_WITH_CUDA
#include "core/cuda_info.h"

namespace bigmodel::cuda {
bool built_with_cuda() { return false; }
int device_count() { return 0; }
}  // namespace bigmodel::cuda
#endif
