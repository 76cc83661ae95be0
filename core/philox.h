// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11) and
// the conversions from its 32-bit words to uniform and normal numbers. Pure functions of
// (key, counter): the CPU kernels and the CUDA kernels call these same definitions, so a
// random op gives the same numbers on every device. No std:: state, no allocation.
//
// STREAM LAYOUT (every random op, every device):
//   key     = (lo32(seed), hi32(seed))
//   counter = (lo32(block), hi32(block), 0, 0)   words 2..3 are reserved (always 0)
//   An op producing N values, V values per Philox block, starts at the generator's
//   offset O and advances it by ceil(N / V). Element i (row-major logical index of the
//   output) reads block O + i / V, lane j = i % V of that block's four words w[0..3]:
//     uniform float32/float16/bfloat16   V=4  u = top 24/11/8 bits of w[j] / 2^bits
//     uniform float64                    V=2  u = top 53 bits of (w[2j] << 32 | w[2j+1]) / 2^53
//     normal  float32/float16/bfloat16   V=4  Box-Muller on (w[0],w[1]) -> lanes 0,1 and
//                                             (w[2],w[3]) -> lanes 2,3 (24-bit uniforms)
//     normal  float64                    V=2  Box-Muller on u1=(w0,w1), u2=(w2,w3) (53-bit)
//     randint / random_ (any dtype)      V=2  low + (w[2j] << 32 | w[2j+1]) mod (high - low)
//     bernoulli                          V=4  (w[j] / 2^32 < p)
//     randperm(n)                        V=2  64-bit keys as for randint; the permutation
//                                             sorts indices by (key, index)
//   Box-Muller: r = sqrt(-2 ln(1 - u1)), t = 2 pi u2; lanes (r cos t, r sin t).
//   Uniform draws are bit-identical on every device; normals agree to the last few ulps
//   (log/sin/cos implementations differ between libm and CUDA).
#pragma once
#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define BM_RNG_FN __host__ __device__ __forceinline__
#else
#define BM_RNG_FN inline
#endif

namespace bigmodel::philox {

struct Words4 {
  uint32_t w[4];
};

constexpr uint32_t kMul0 = 0xD2511F53u;    // round multipliers
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;   // key schedule increments (golden ratio, sqrt(3)-1)
constexpr uint32_t kWeyl1 = 0xBB67AE85u;

BM_RNG_FN void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// One Philox S-box round on the 4-word counter with the 2-word round key.
BM_RNG_FN Words4 single_round(const Words4& c, uint32_t k0, uint32_t k1) {
  uint32_t hi0, lo0, hi1, lo1;
  mulhilo(kMul0, c.w[0], hi0, lo0);
  mulhilo(kMul1, c.w[2], hi1, lo1);
  return Words4{{hi1 ^ c.w[1] ^ k0, lo1, hi0 ^ c.w[3] ^ k1, lo0}};
}

// Philox4x32 with 10 rounds: the key is bumped between rounds.
BM_RNG_FN Words4 philox4x32_10(Words4 counter, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
    counter = single_round(counter, k0, k1);
  }
  return counter;
}

// The four words of block `block` for generator seed `seed` (layout above).
BM_RNG_FN Words4 block_words(uint64_t seed, uint64_t block) {
  Words4 c{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u}};
  return philox4x32_10(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Uniform in [0, 1) from the top `bits` bits of one word (bits <= 24, exact in float):
// 24 for float32, 11 for float16, 8 for bfloat16, so the value never rounds up to 1.
BM_RNG_FN float uniform_float(uint32_t x, int bits) {
  return static_cast<float>(x >> (32 - bits)) * (1.0f / static_cast<float>(1u << bits));
}

// Uniform in [0, 1) with 53 bits from two words.
BM_RNG_FN double uniform_double(uint32_t hi, uint32_t lo) {
  const uint64_t v = (static_cast<uint64_t>(hi) << 32) | lo;
  return static_cast<double>(v >> 11) * (1.0 / 9007199254740992.0);  // 2^-53
}

// 64-bit draw from two words (randint, randperm keys).
BM_RNG_FN uint64_t bits64(uint32_t hi, uint32_t lo) { return (static_cast<uint64_t>(hi) << 32) | lo; }

// Uniform in [0, 1) with full 32-bit resolution, in double (bernoulli).
BM_RNG_FN double uniform_u32(uint32_t x) { return static_cast<double>(x) * (1.0 / 4294967296.0); }

// Box-Muller: two uniforms in [0, 1) -> two independent standard normals. 1 - u1 lies in
// (0, 1], so the log is finite.
BM_RNG_FN void box_muller(double u1, double u2, double& z0, double& z1) {
  const double r = ::sqrt(-2.0 * ::log(1.0 - u1));
  const double t = 6.2831853071795864769 * u2;
  z0 = r * ::cos(t);
  z1 = r * ::sin(t);
}
// Float normals are computed in double and rounded once: glibc's and CUDA's float
// logf/sinf/cosf round differently (glibc's logf misses the correctly rounded result on
// 0.7% of the stream's inputs), while their double results, rounded to float, agree -- so
// one seed gives bitwise-identical float32/float16/bfloat16 normals on both devices.
BM_RNG_FN void box_muller(float u1, float u2, float& z0, float& z1) {
  double d0, d1;
  box_muller(static_cast<double>(u1), static_cast<double>(u2), d0, d1);
  z0 = static_cast<float>(d0);
  z1 = static_cast<float>(d1);
}

}  // namespace bigmodel::philox
