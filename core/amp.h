// Autocast (mixed precision) state: per thread and per device type, whether autocast is on
// and which lower-precision dtype it uses, plus the two casts the op front ends apply.
#pragma once

#include "core/device.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace bigmodel::amp {

// Policy (documented in docs/ARCHITECTURE.md too):
//  - lower-precision ops cast float32/float16/bfloat16 inputs to the autocast dtype:
//    matmul, mm, bmm, mv, dot, linear, addmm, conv1d, conv2d, scaled_dot_product_attention;
//  - float32 ops upcast float16/bfloat16 inputs to float32 (softmax, log_softmax, the norms,
//    the losses, sum/mean and friends); see autocast_upcast and python/bigmodel/amp/;
//  - float64 and integer tensors are never touched; everything else runs in its input dtype.
bool is_autocast_enabled(DeviceType type);
void set_autocast_enabled(DeviceType type, bool enabled);
DType get_autocast_dtype(DeviceType type);  // default: bfloat16 on CPU, float16 on CUDA
void set_autocast_dtype(DeviceType type, DType dtype);  // float16 or bfloat16

// Casts `t` to the autocast dtype when autocast is on for its device and it is a float16,
// bfloat16 or float32 tensor; otherwise returns it as is. Differentiable (a `to` op).
Tensor autocast_lower(const Tensor& t);
// Casts a float16/bfloat16 `t` to float32 when autocast is on for its device.
Tensor autocast_upcast(const Tensor& t);

// Turns autocast off for all device types in a scope (ops called from inside another
// autocast op, e.g. attention's own matmuls, then see the already-cast inputs only).
class AutocastOffGuard {
 public:
  AutocastOffGuard();
  ~AutocastOffGuard();
  AutocastOffGuard(const AutocastOffGuard&) = delete;
  AutocastOffGuard& operator=(const AutocastOffGuard&) = delete;

 private:
  bool saved_[kNumDeviceTypes];
};

}  // namespace bigmodel::amp
