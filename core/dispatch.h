// Kernel dispatch: a KernelStub per kernel family holds one function per device type,
// filled by registrations in kernels/cpu and kernels/cuda; and the dtype switch macros
// that turn a runtime DType into a C++ type inside a kernel.
#pragma once
#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"

namespace bigmodel {

template <typename Fn>
struct KernelStub {  // an aggregate, so it is constant-initialised before registrations run
  const char* name;
  Fn table[kNumDeviceTypes];

  Fn get(Device device) const {
    Fn fn = table[static_cast<int>(device.type)];
    if (!fn) {
      throw DeviceError(str_cat("[", name, "] no kernel for device ", device.str(),
                                device.is_cuda() ? " (bigmodel was built without CUDA)" : ""));
    }
    return fn;
  }
};

struct KernelRegistration {
  template <typename Fn>
  KernelRegistration(KernelStub<Fn>& stub, DeviceType type, Fn fn) {
    stub.table[static_cast<int>(type)] = fn;
  }
};

}  // namespace bigmodel

// In a header: BM_DECLARE_KERNEL(add_kernel, void (*)(const Tensor&, ...));
#define BM_DECLARE_KERNEL(stub, ...)          \
  using stub##_fn = __VA_ARGS__;              \
  extern ::bigmodel::KernelStub<stub##_fn> stub
// In the op's .cpp: BM_DEFINE_KERNEL(add_kernel);
#define BM_DEFINE_KERNEL(stub) ::bigmodel::KernelStub<stub##_fn> stub = {#stub, {}}
// In a kernel file: BM_REGISTER_KERNEL(add_kernel, CPU, &add_cpu);
#define BM_REGISTER_KERNEL(stub, devtype, fn)                                         \
  static const ::bigmodel::KernelRegistration stub##_##devtype##_registration(        \
      stub, ::bigmodel::DeviceType::devtype, static_cast<stub##_fn>(fn))

// Dtype switches. The body sees `scalar_t`. Unhandled dtypes raise DTypeError naming op.
#define BM_DTYPE_CASE(enum_name, type, ...) \
  case ::bigmodel::DType::enum_name: {      \
    using scalar_t = type;                  \
    __VA_ARGS__();                          \
    break;                                  \
  }
#define BM_DTYPE_DEFAULT(op, dt)                                                         \
  default:                                                                             \
    throw ::bigmodel::DTypeError(::bigmodel::str_cat("[", op, "] not implemented for ", \
                                                     ::bigmodel::dtype_name(dt)));

#define BM_DISPATCH_FLOATING(dt, op, ...)                    \
  switch (dt) {                                              \
    BM_DTYPE_CASE(Float32, float, __VA_ARGS__)               \
    BM_DTYPE_CASE(Float64, double, __VA_ARGS__)              \
    BM_DTYPE_CASE(Float16, ::bigmodel::Half, __VA_ARGS__)    \
    BM_DTYPE_CASE(BFloat16, ::bigmodel::BFloat16, __VA_ARGS__) \
    BM_DTYPE_DEFAULT(op, dt)                                 \
  }

#define BM_DISPATCH_NUMERIC(dt, op, ...)                     \
  switch (dt) {                                              \
    BM_DTYPE_CASE(Float32, float, __VA_ARGS__)               \
    BM_DTYPE_CASE(Float64, double, __VA_ARGS__)              \
    BM_DTYPE_CASE(Float16, ::bigmodel::Half, __VA_ARGS__)    \
    BM_DTYPE_CASE(BFloat16, ::bigmodel::BFloat16, __VA_ARGS__) \
    BM_DTYPE_CASE(Int32, int32_t, __VA_ARGS__)               \
    BM_DTYPE_CASE(Int64, int64_t, __VA_ARGS__)               \
    BM_DTYPE_DEFAULT(op, dt)                                 \
  }

#define BM_DISPATCH_ALL(dt, op, ...)                         \
  switch (dt) {                                              \
    BM_DTYPE_CASE(Float32, float, __VA_ARGS__)               \
    BM_DTYPE_CASE(Float64, double, __VA_ARGS__)              \
    BM_DTYPE_CASE(Float16, ::bigmodel::Half, __VA_ARGS__)    \
    BM_DTYPE_CASE(BFloat16, ::bigmodel::BFloat16, __VA_ARGS__) \
    BM_DTYPE_CASE(Int32, int32_t, __VA_ARGS__)               \
    BM_DTYPE_CASE(Int64, int64_t, __VA_ARGS__)               \
    BM_DTYPE_CASE(Bool, bool, __VA_ARGS__)                   \
  }
