// The kernel family for copies between devices (CPU <-> CUDA, CUDA <-> CUDA), registered
// by kernels/cuda/transfer.cpp under the CUDA slot; to() and copy_() call it.
#pragma once
#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

// A new contiguous tensor on `device` with `dtype` holding src's values (no autograd).
BM_DECLARE_KERNEL(transfer_kernel, Tensor (*)(const Tensor& src, Device device, DType dtype, bool non_blocking));

}  // namespace bigmodel
