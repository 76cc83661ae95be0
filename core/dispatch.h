// Kernel dispatch: a KernelStub per kernel family holds one function per device type,
// filled by registrations in kernels/cpu and kernels/cuda; and the dtype switch macros
// that turn a runtime DType into a C++ type inside a kernel.
#pragma once
#include <atomic>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"

namespace bigmodel {

// A hook around kernel bodies: the Python module installs one that releases the GIL, so
// threads run kernels in parallel while front ends (validation, allocation, autograd
// recording) stay serialised by the GIL. Null in pure C++ programs. enter() returns what
// exit() restores (null: nothing was released, e.g. the thread did not hold the GIL).
struct KernelCallHook {
  void* (*enter)();
  void (*exit)(void*);
};
extern std::atomic<const KernelCallHook*> g_kernel_call_hook;  // core/dispatch.cpp
extern thread_local int g_kernel_hook_paused;                  // > 0: KernelHookPause is alive

// While alive, kernels on this thread run without the hook (they keep the GIL): for a
// read-modify-write other Python threads must not interleave with, such as accumulating
// into a leaf's .grad that several threads' backward passes share.
class KernelHookPause {
 public:
  KernelHookPause() { ++g_kernel_hook_paused; }
  ~KernelHookPause() { --g_kernel_hook_paused; }
  KernelHookPause(const KernelHookPause&) = delete;
  KernelHookPause& operator=(const KernelHookPause&) = delete;
};
// Kernels whose tensor arguments hold fewer elements run without the hook: releasing and
// retaking the GIL costs ~0.1-0.2 us (and a wait when another thread holds it), a lot
// next to a ~1 us tiny op and nothing next to a kernel over this many elements.
constexpr int64_t kKernelHookMinElements = 32768;

namespace detail {
template <typename T, typename = void>
struct has_numel : std::false_type {};
template <typename T>
struct has_numel<T, std::void_t<decltype(std::declval<const T&>().numel())>> : std::true_type {};
template <typename T, typename = void>
struct is_numel_range : std::false_type {};
template <typename T>
struct is_numel_range<T, std::void_t<decltype(std::declval<const T&>().begin()->numel())>> : std::true_type {};
template <typename T, typename = void>
struct has_defined : std::false_type {};
template <typename T>
struct has_defined<T, std::void_t<decltype(std::declval<const T&>().defined())>> : std::true_type {};
// numel() of a tensor; 0 for an undefined one (an optional bias passed as Tensor()).
template <typename T>
int64_t numel_or_zero(const T& t) {
  if constexpr (has_defined<T>::value) {
    if (!t.defined()) return 0;
  }
  return static_cast<int64_t>(t.numel());
}
// Elements a kernel argument carries: tensors (and lists of tensors) count, the rest not.
template <typename T>
int64_t kernel_work(const T& arg) {
  if constexpr (has_numel<T>::value) {
    return numel_or_zero(arg);
  } else if constexpr (std::is_pointer_v<T> && has_numel<std::remove_cv_t<std::remove_pointer_t<T>>>::value) {
    return arg ? numel_or_zero(*arg) : 0;
  } else if constexpr (is_numel_range<T>::value) {
    int64_t n = 0;
    for (const auto& t : arg) n += numel_or_zero(t);
    return n;
  } else {
    return 0;
  }
}
}  // namespace detail

// What KernelStub::get returns: calling it runs the kernel, inside the hook when one is
// installed and the kernel is big enough.
template <typename Fn>
struct KernelCall {
  Fn fn;
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) const {
    const KernelCallHook* hook = g_kernel_call_hook.load(std::memory_order_acquire);
    if (hook && (detail::kernel_work(args) + ... + int64_t{0}) >= kKernelHookMinElements &&
        g_kernel_hook_paused == 0) {
      struct Scope {
        const KernelCallHook* hook;
        void* state;
        ~Scope() { hook->exit(state); }
      } scope{hook, hook->enter()};
      return fn(std::forward<Args>(args)...);
    }
    return fn(std::forward<Args>(args)...);
  }
};

template <typename Fn>
struct KernelStub {  // an aggregate, so it is constant-initialised before registrations run
  const char* name;
  Fn table[kNumDeviceTypes];

  KernelCall<Fn> get(Device device) const {
    Fn fn = table[static_cast<int>(device.type)];
    if (!fn) {
      throw DeviceError(str_cat("[", name, "] no kernel for device ", device.str(),
                                device.is_cuda() ? " (bigmodel was built without CUDA)" : ""));
    }
    return KernelCall<Fn>{fn};
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

// The case lists the switches share: the floating dtypes, then the integer ones.
#define BM_FLOATING_CASES(...)                               \
  BM_DTYPE_CASE(Float32, float, __VA_ARGS__)                 \
  BM_DTYPE_CASE(Float64, double, __VA_ARGS__)                \
  BM_DTYPE_CASE(Float16, ::bigmodel::Half, __VA_ARGS__)      \
  BM_DTYPE_CASE(BFloat16, ::bigmodel::BFloat16, __VA_ARGS__)
#define BM_NUMERIC_CASES(...)                                \
  BM_FLOATING_CASES(__VA_ARGS__)                             \
  BM_DTYPE_CASE(Int32, int32_t, __VA_ARGS__)                 \
  BM_DTYPE_CASE(Int64, int64_t, __VA_ARGS__)

#define BM_DISPATCH_FLOATING(dt, op, ...)                    \
  switch (dt) {                                              \
    BM_FLOATING_CASES(__VA_ARGS__)                           \
    BM_DTYPE_DEFAULT(op, dt)                                 \
  }

#define BM_DISPATCH_NUMERIC(dt, op, ...)                     \
  switch (dt) {                                              \
    BM_NUMERIC_CASES(__VA_ARGS__)                            \
    BM_DTYPE_DEFAULT(op, dt)                                 \
  }

#define BM_DISPATCH_ALL(dt, op, ...)                         \
  switch (dt) {                                              \
    BM_NUMERIC_CASES(__VA_ARGS__)                            \
    BM_DTYPE_CASE(Bool, bool, __VA_ARGS__)                   \
  }
