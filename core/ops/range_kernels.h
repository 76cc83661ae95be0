// Kernel families of the range factories; outputs are contiguous.
#pragma once
#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

// out[i] = start + i * step: exact int64 arithmetic when both are integers, double otherwise.
BM_DECLARE_KERNEL(arange_kernel, void (*)(const Tensor& out, const Scalar& start, const Scalar& step));
// out[i] evenly spaced from start to end inclusive (numel >= 2), symmetric about the middle
// so both ends are exact: i < n/2 -> start + i*step, else end - (n-1-i)*step.
BM_DECLARE_KERNEL(linspace_kernel, void (*)(const Tensor& out, double start, double end));

}  // namespace bigmodel
