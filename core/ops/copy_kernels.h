// Kernel families for copying and filling memory; every device registers both.
#pragma once
#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

// dst = src, element by element; both already have dst's shape (src may be expanded);
// dtypes may differ. Devices are equal (cross-device copies go through to()).
BM_DECLARE_KERNEL(copy_kernel, void (*)(const Tensor& dst, const Tensor& src));
// Every element of dst set to value.
BM_DECLARE_KERNEL(fill_kernel, void (*)(const Tensor& dst, const Scalar& value));

}  // namespace bigmodel
