// CPU kernels of the random ops. Each Philox block is computed independently from
// (seed, offset + block), so the OpenMP split over blocks cannot change any value.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include "core/ops/random_kernels.h"
#include "kernels/cpu/loops.h"

namespace bigmodel::cpu {
namespace {

using philox::Words4;

// Calls f(b, words) for every block b of an op drawing `numel` values, V per block.
template <typename F>
void for_each_block(int64_t numel, int per_block, PhiloxState st, F&& f) {
  const int64_t nblocks = (numel + per_block - 1) / per_block;
#pragma omp parallel for schedule(static) if (numel >= kParallelGrain)
  for (int64_t b = 0; b < nblocks; ++b) f(b, philox::block_words(st.seed, st.offset + static_cast<uint64_t>(b)));
}

template <typename T>
T from_double(double v) {
  if constexpr (std::is_same_v<T, bool>) return v != 0.0;
  else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) return T(static_cast<float>(v));
  else return static_cast<T>(v);
}

// Significant bits of a uniform draw for each float type, so u < 1 survives the cast.
template <typename T> constexpr int uniform_bits() {
  if constexpr (std::is_same_v<T, Half>) return 11;
  else if constexpr (std::is_same_v<T, BFloat16>) return 8;
  else return 24;
}

// The next representable value below v.
template <typename T>
T next_below(T v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    T r = v;
    if ((r.bits & 0x7fffu) == 0) r.bits = 0x8001u;          // +-0 -> smallest negative
    else if (r.bits & 0x8000u) r.bits = static_cast<uint16_t>(r.bits + 1);  // more negative
    else r.bits = static_cast<uint16_t>(r.bits - 1);
    return r;
  } else {
    return std::nextafter(v, -std::numeric_limits<T>::infinity());
  }
}

// from + range * u in the compute type, kept below `to` when rounding reaches it.
template <typename T, typename C>
T scale_uniform(C u, C from, C range, T lo, T hi) {
  T r = T(from + range * u);
  if (static_cast<C>(r) >= static_cast<C>(hi) && static_cast<C>(lo) < static_cast<C>(hi)) r = next_below(hi);
  return r;
}

void uniform_cpu(const Tensor& out, PhiloxState st, double from, double to) {
  const int64_t n = out.numel();
  BM_DISPATCH_FLOATING(out.dtype(), "uniform_", [&] {
    scalar_t* p = static_cast<scalar_t*>(out.data_ptr());
    const scalar_t lo = from_double<scalar_t>(from), hi = from_double<scalar_t>(to);
    if constexpr (std::is_same_v<scalar_t, double>) {
      for_each_block(n, 2, st, [&](int64_t b, const Words4& w) {
        for (int j = 0; j < 2 && 2 * b + j < n; ++j)
          p[2 * b + j] = scale_uniform<double, double>(philox::uniform_double(w.w[2 * j], w.w[2 * j + 1]), from,
                                                       to - from, lo, hi);
      });
    } else {
      constexpr int bits = uniform_bits<scalar_t>();
      const float f = static_cast<float>(from), range = static_cast<float>(to - from);
      for_each_block(n, 4, st, [&](int64_t b, const Words4& w) {
        for (int j = 0; j < 4 && 4 * b + j < n; ++j)
          p[4 * b + j] = scale_uniform<scalar_t, float>(philox::uniform_float(w.w[j], bits), f, range, lo, hi);
      });
    }
  });
}

void normal_cpu(const Tensor& out, PhiloxState st, double mean, double std) {
  const int64_t n = out.numel();
  BM_DISPATCH_FLOATING(out.dtype(), "normal_", [&] {
    scalar_t* p = static_cast<scalar_t*>(out.data_ptr());
    if constexpr (std::is_same_v<scalar_t, double>) {
      for_each_block(n, 2, st, [&](int64_t b, const Words4& w) {
        double z[2];
        philox::box_muller(philox::uniform_double(w.w[0], w.w[1]), philox::uniform_double(w.w[2], w.w[3]), z[0], z[1]);
        for (int j = 0; j < 2 && 2 * b + j < n; ++j) p[2 * b + j] = mean + std * z[j];
      });
    } else {
      const float m = static_cast<float>(mean), s = static_cast<float>(std);
      for_each_block(n, 4, st, [&](int64_t b, const Words4& w) {
        float z[4];
        philox::box_muller(philox::uniform_float(w.w[0], 24), philox::uniform_float(w.w[1], 24), z[0], z[1]);
        philox::box_muller(philox::uniform_float(w.w[2], 24), philox::uniform_float(w.w[3], 24), z[2], z[3]);
        for (int j = 0; j < 4 && 4 * b + j < n; ++j) p[4 * b + j] = scalar_t(m + s * z[j]);
      });
    }
  });
}

void randint_cpu(const Tensor& out, PhiloxState st, int64_t low, uint64_t range) {
  const int64_t n = out.numel();
  BM_DISPATCH_ALL(out.dtype(), "randint", [&] {
    scalar_t* p = static_cast<scalar_t*>(out.data_ptr());
    for_each_block(n, 2, st, [&](int64_t b, const Words4& w) {
      for (int j = 0; j < 2 && 2 * b + j < n; ++j) {
        // Wrapping uint64 addition: exact for every [low, low + range) inside int64.
        const uint64_t r = philox::bits64(w.w[2 * j], w.w[2 * j + 1]) % range;
        const int64_t v = static_cast<int64_t>(static_cast<uint64_t>(low) + r);
        if constexpr (std::is_integral_v<scalar_t> && !std::is_same_v<scalar_t, bool>) p[2 * b + j] = static_cast<scalar_t>(v);
        else p[2 * b + j] = from_double<scalar_t>(static_cast<double>(v));
      }
    });
  });
}

void bernoulli_cpu(const Tensor& out, PhiloxState st, double prob, double value) {
  const int64_t n = out.numel();
  BM_DISPATCH_ALL(out.dtype(), "bernoulli_", [&] {
    scalar_t* p = static_cast<scalar_t*>(out.data_ptr());
    const scalar_t one = from_double<scalar_t>(value), zero = from_double<scalar_t>(0.0);
    for_each_block(n, 4, st, [&](int64_t b, const Words4& w) {
      for (int j = 0; j < 4 && 4 * b + j < n; ++j) p[4 * b + j] = philox::uniform_u32(w.w[j]) < prob ? one : zero;
    });
  });
}

void bernoulli_tensor_cpu(const Tensor& out, const Tensor& probs, PhiloxState st) {
  const int64_t n = out.numel();
  BM_DISPATCH_FLOATING(out.dtype(), "bernoulli", [&] {
    scalar_t* p = static_cast<scalar_t*>(out.data_ptr());
    const scalar_t* q = static_cast<const scalar_t*>(probs.data_ptr());
    const scalar_t one(1.0f), zero(0.0f);
    for_each_block(n, 4, st, [&](int64_t b, const Words4& w) {
      for (int j = 0; j < 4 && 4 * b + j < n; ++j) {
        const int64_t i = 4 * b + j;
        p[i] = philox::uniform_u32(w.w[j]) < static_cast<double>(q[i]) ? one : zero;
      }
    });
  });
}

void randperm_cpu(const Tensor& out, PhiloxState st) {
  const int64_t n = out.numel();
  std::vector<uint64_t> keys(static_cast<size_t>(n));
  for_each_block(n, 2, st, [&](int64_t b, const Words4& w) {
    for (int j = 0; j < 2 && 2 * b + j < n; ++j) keys[2 * b + j] = philox::bits64(w.w[2 * j], w.w[2 * j + 1]);
  });
  int64_t* p = static_cast<int64_t*>(out.data_ptr());
  std::iota(p, p + n, int64_t{0});
  // Sorting by (key, index) is a total order: the same permutation on every device.
  std::sort(p, p + n, [&](int64_t a, int64_t c) { return keys[a] != keys[c] ? keys[a] < keys[c] : a < c; });
}

}  // namespace

BM_REGISTER_KERNEL(uniform_kernel, CPU, &uniform_cpu);
BM_REGISTER_KERNEL(normal_kernel, CPU, &normal_cpu);
BM_REGISTER_KERNEL(randint_kernel, CPU, &randint_cpu);
BM_REGISTER_KERNEL(bernoulli_kernel, CPU, &bernoulli_cpu);
BM_REGISTER_KERNEL(bernoulli_tensor_kernel, CPU, &bernoulli_tensor_cpu);
BM_REGISTER_KERNEL(randperm_kernel, CPU, &randperm_cpu);

}  // namespace bigmodel::cpu
