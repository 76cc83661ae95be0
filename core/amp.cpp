// Autocast state (thread-local, like PyTorch's: each thread opens its own autocast region)
// and the casts the lower-precision and float32 op front ends apply.
#include "core/amp.h"

#include "core/error.h"
#include "core/ops/view.h"

namespace bigmodel::amp {
namespace {

struct State {
  bool enabled[kNumDeviceTypes] = {false, false};
  DType dtype[kNumDeviceTypes] = {DType::BFloat16, DType::Float16};
};

State& state() {
  thread_local State s;
  return s;
}

int idx(DeviceType type) { return static_cast<int>(type); }

bool castable(DType t) { return t == DType::Float16 || t == DType::BFloat16 || t == DType::Float32; }

}  // namespace

bool is_autocast_enabled(DeviceType type) { return state().enabled[idx(type)]; }

void set_autocast_enabled(DeviceType type, bool enabled) { state().enabled[idx(type)] = enabled; }

DType get_autocast_dtype(DeviceType type) { return state().dtype[idx(type)]; }

void set_autocast_dtype(DeviceType type, DType dtype) {
  BM_CHECK_DTYPE(dtype == DType::Float16 || dtype == DType::BFloat16, "autocast",
                 "autocast dtype must be float16 or bfloat16, got ", dtype_name(dtype));
  state().dtype[idx(type)] = dtype;
}

Tensor autocast_lower(const Tensor& t) {
  if (!t.defined()) return t;
  const int d = idx(t.device().type);
  const State& s = state();
  if (!s.enabled[d] || !castable(t.dtype()) || t.dtype() == s.dtype[d]) return t;
  return to(t, s.dtype[d]);
}

Tensor autocast_upcast(const Tensor& t) {
  if (!t.defined() || !state().enabled[idx(t.device().type)]) return t;
  if (t.dtype() != DType::Float16 && t.dtype() != DType::BFloat16) return t;
  return to(t, DType::Float32);
}

AutocastOffGuard::AutocastOffGuard() {
  State& s = state();
  for (int i = 0; i < kNumDeviceTypes; ++i) {
    saved_[i] = s.enabled[i];
    s.enabled[i] = false;
  }
}

AutocastOffGuard::~AutocastOffGuard() {
  State& s = state();
  for (int i = 0; i < kNumDeviceTypes; ++i) s.enabled[i] = saved_[i];
}

}  // namespace bigmodel::amp
