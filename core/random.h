// The seeded random generator: a Philox4x32-10 stream named by (seed, offset). Random ops
// reserve a block of counters from a Generator and hand (seed, first block) to their
// kernel, which computes element i from (seed, block + i / V, lane) alone -- see
// core/philox.h for the exact layout. One default generator serves every device, so
// manual_seed(s) followed by the same ops gives the same numbers on CPU and CUDA.
#pragma once
#include <cstdint>
#include <mutex>

#include "core/philox.h"
#include "core/tensor.h"

namespace bigmodel {

// What a kernel needs: the key and the first Philox block it may use.
struct PhiloxState {
  uint64_t seed = 0;
  uint64_t offset = 0;  // in Philox blocks (128-bit counters)
};

class Generator {
 public:
  static constexpr uint64_t kDefaultSeed = 67280421310721ull;

  explicit Generator(uint64_t seed = kDefaultSeed) : seed_(seed) {}
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  // Restarts the stream: new seed, offset 0.
  void manual_seed(uint64_t seed);
  // Seeds from a nondeterministic source and returns the seed chosen.
  uint64_t seed();
  uint64_t initial_seed() const;
  uint64_t offset() const;

  // Reserves `blocks` counters; returns the state the kernel starts from. Thread-safe.
  PhiloxState reserve(uint64_t blocks);
  // Reserves what an op drawing `numel` values, `per_block` per Philox block, needs.
  PhiloxState reserve_values(int64_t numel, int per_block) {
    return reserve(static_cast<uint64_t>((numel + per_block - 1) / per_block));
  }

  // The full state, for checkpoints: an int64 tensor [seed, offset] (bit-cast).
  Tensor get_state() const;
  void set_state(const Tensor& state);

 private:
  mutable std::mutex mutex_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

Generator& default_generator();
// Picks `gen` or, when null, the default generator.
inline Generator& generator_or_default(Generator* gen) { return gen ? *gen : default_generator(); }

void manual_seed(uint64_t seed);
uint64_t seed();          // reseeds the default generator nondeterministically
uint64_t initial_seed();  // the default generator's seed
Tensor get_rng_state();
void set_rng_state(const Tensor& state);

}  // namespace bigmodel
