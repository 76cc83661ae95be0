// The Generator (seed + counter offset, thread-safe reservation) and the default generator.
#include "core/random.h"

#include <chrono>
#include <cstring>
#include <random>

#include "core/ops/creation.h"
#include "core/ops/view.h"

namespace bigmodel {

void Generator::manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(mutex_);
  seed_ = seed;
  offset_ = 0;
}

uint64_t Generator::seed() {
  std::random_device rd;
  // random_device may be deterministic on some platforms: mix in the clock.
  uint64_t s = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
               static_cast<uint64_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count());
  manual_seed(s);
  return s;
}

uint64_t Generator::initial_seed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return seed_;
}

uint64_t Generator::offset() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return offset_;
}

PhiloxState Generator::reserve(uint64_t blocks) {
  std::lock_guard<std::mutex> lock(mutex_);
  PhiloxState s{seed_, offset_};
  offset_ += blocks;
  return s;
}

Tensor Generator::get_state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t v[2];
  std::memcpy(&v[0], &seed_, 8);
  std::memcpy(&v[1], &offset_, 8);
  return from_host(v, {2}, DType::Int64);
}

void Generator::set_state(const Tensor& state) {
  BM_CHECK_VALUE(state.defined() && state.dim() == 1 && state.numel() == 2 && state.dtype() == DType::Int64,
                 "set_rng_state", "expected an int64 tensor of shape [2] (seed, offset) as returned by "
                 "get_rng_state, got ", state.defined() ? dtype_name(state.dtype()) : "undefined", " of shape ",
                 state.defined() ? shape_str(state.sizes()) : "[]");
  Tensor host = contiguous(to(state.detach(), Device()));
  const int64_t* v = host.data<int64_t>();
  std::lock_guard<std::mutex> lock(mutex_);
  std::memcpy(&seed_, &v[0], 8);
  std::memcpy(&offset_, &v[1], 8);
}

Generator& default_generator() {
  static Generator gen;
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }
uint64_t seed() { return default_generator().seed(); }
uint64_t initial_seed() { return default_generator().initial_seed(); }
Tensor get_rng_state() { return default_generator().get_state(); }
void set_rng_state(const Tensor& state) { default_generator().set_state(state); }

}  // namespace bigmodel
