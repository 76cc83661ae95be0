// CUDA kernels of the random ops, registered with the CPU's contract (kernels/cpu/random.cpp)
// and the Philox stream layout of core/philox.h, whose functions this file calls on the
// device: one thread per Philox block b computes the block's words from (seed, offset + b)
// and writes its V lanes, so a seed gives the CPU's tensors element for element.
// Bit-exactness: every float step the CPU rounds separately is written with __fmul_rn /
// __fadd_rn (or the double forms) so nvcc cannot fuse it into an FMA; uniform, bernoulli,
// randint and randperm are then bitwise equal to the CPU. Normals go through the shared
// philox::box_muller, whose log/sin/cos come from CUDA's libm here and glibc's on the CPU:
// they agree to the last ulp or two (see docs/PERF.md, "CUDA elementwise and RNG").
// randperm is computed by the CPU kernel and copied to the device (exact by construction).
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/ops/random_kernels.h"
#include "core/ops/copy_kernels.h"
#include "core/ops/view.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T, int V>
struct alignas(sizeof(T) * V) LanePack {
  T v[V];
};

// Writes the lanes of block b: one V-wide store when the block is whole and aligned (the
// common case), else one element at a time up to n.
template <int V, typename S>
__device__ __forceinline__ void store_lanes(S* p, int64_t b, int64_t n, const S (&vals)[V]) {
  const int64_t first = b * V;
  S* dst = p + first;
  if (first + V <= n && reinterpret_cast<uintptr_t>(dst) % sizeof(LanePack<S, V>) == 0) {
    LanePack<S, V> pack;
#pragma unroll
    for (int j = 0; j < V; ++j) pack.v[j] = vals[j];
    *reinterpret_cast<LanePack<S, V>*>(dst) = pack;
  } else {
#pragma unroll
    for (int j = 0; j < V; ++j)
      if (first + j < n) dst[j] = vals[j];
  }
}

// Grid-stride loop over the Philox blocks of an op drawing n values, V per block.
#define BM_FOR_EACH_PHILOX_BLOCK(b, nblocks)                                                                \
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < (nblocks); \
       b += static_cast<int64_t>(gridDim.x) * blockDim.x)

int64_t philox_blocks(int64_t n, int per_block) { return (n + per_block - 1) / per_block; }

// ---- uniform -------------------------------------------------------------------------
// r = from + range * u in C, stored in T; a value that rounds up to `to` becomes the next
// representable value below it (`below`), as the CPU's scale_uniform does.
template <typename T>
struct UniformParams {
  using S = typename ElemTraits<T>::storage;
  using C = typename ElemTraits<T>::wide;
  C from, range, hi;
  bool clamp;  // lo < hi: only then is r >= hi pulled below hi
  S below;
};

template <typename T>
__device__ __forceinline__ typename ElemTraits<T>::storage scale_uniform(typename ElemTraits<T>::wide u,
                                                                       const UniformParams<T>& q) {
  using C = typename ElemTraits<T>::wide;
  C v;
  if constexpr (std::is_same_v<C, double>) v = __dadd_rn(q.from, __dmul_rn(q.range, u));
  else v = __fadd_rn(q.from, __fmul_rn(q.range, u));
  const typename ElemTraits<T>::storage r = ElemTraits<T>::store(v);
  return (q.clamp && ElemTraits<T>::load(r) >= q.hi) ? q.below : r;
}

// Significant bits of a uniform draw per float type (the CPU's uniform_bits).
template <typename T>
constexpr int uniform_bits() {
  if constexpr (std::is_same_v<T, Half>) return 11;
  else if constexpr (std::is_same_v<T, BFloat16>) return 8;
  else return 24;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) uniform_kernel_impl(typename ElemTraits<T>::storage* p, int64_t n,
                                                                PhiloxState st, UniformParams<T> q) {
  using S = typename ElemTraits<T>::storage;
  if constexpr (std::is_same_v<T, double>) {
    BM_FOR_EACH_PHILOX_BLOCK(b, (n + 1) / 2) {
      const philox::Words4 w = philox::block_words(st.seed, st.offset + static_cast<uint64_t>(b));
      const S vals[2] = {scale_uniform<T>(philox::uniform_double(w.w[0], w.w[1]), q),
                         scale_uniform<T>(philox::uniform_double(w.w[2], w.w[3]), q)};
      store_lanes<2>(p, b, n, vals);
    }
  } else {
    constexpr int bits = uniform_bits<T>();
    BM_FOR_EACH_PHILOX_BLOCK(b, (n + 3) / 4) {
      const philox::Words4 w = philox::block_words(st.seed, st.offset + static_cast<uint64_t>(b));
      S vals[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) vals[j] = scale_uniform<T>(philox::uniform_float(w.w[j], bits), q);
      store_lanes<4>(p, b, n, vals);
    }
  }
}

// The CPU's from_double<T> (host side, for parameters).
template <typename T>
T host_from_double(double v) {
  if constexpr (std::is_same_v<T, bool>) return v != 0.0;
  else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) return T(static_cast<float>(v));
  else return static_cast<T>(v);
}

// The CPU's next_below, on the host.
template <typename T>
T host_next_below(T v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    T r = v;
    if ((r.bits & 0x7fffu) == 0) r.bits = 0x8001u;
    else if (r.bits & 0x8000u) r.bits = static_cast<uint16_t>(r.bits + 1);
    else r.bits = static_cast<uint16_t>(r.bits - 1);
    return r;
  } else {
    return std::nextafter(v, -std::numeric_limits<T>::infinity());
  }
}

template <typename T>
typename ElemTraits<T>::storage storage_bits(T v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) return v.bits;
  else return v;
}

void uniform_cuda(const Tensor& out, PhiloxState st, double from, double to) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  BM_DISPATCH_FLOATING(out.dtype(), "uniform_", [&] {
    using T = scalar_t;
    using C = typename ElemTraits<T>::wide;
    const T lo = host_from_double<T>(from), hi = host_from_double<T>(to);
    UniformParams<T> q;
    // The CPU computes in double for float64 and in float (from, to - from cast) otherwise.
    q.from = static_cast<C>(from);
    q.range = static_cast<C>(to - from);
    q.hi = static_cast<C>(hi);
    q.clamp = static_cast<C>(lo) < static_cast<C>(hi);
    q.below = storage_bits(host_next_below(hi));
    const int per_block = std::is_same_v<T, double> ? 2 : 4;
    uniform_kernel_impl<T><<<grid_blocks(philox_blocks(n, per_block), kThreads), kThreads, 0, stream>>>(
        static_cast<typename ElemTraits<T>::storage*>(out.data_ptr()), n, st, q);
    BM_CUDA_CHECK_LAUNCH();
  });
}

// ---- normal --------------------------------------------------------------------------
template <typename T>
__global__ void __launch_bounds__(kThreads) normal_kernel_impl(typename ElemTraits<T>::storage* p, int64_t n,
                                                               PhiloxState st, typename ElemTraits<T>::wide mean,
                                                               typename ElemTraits<T>::wide stddev) {
  using S = typename ElemTraits<T>::storage;
  if constexpr (std::is_same_v<T, double>) {
    BM_FOR_EACH_PHILOX_BLOCK(b, (n + 1) / 2) {
      const philox::Words4 w = philox::block_words(st.seed, st.offset + static_cast<uint64_t>(b));
      double z[2];
      philox::box_muller(philox::uniform_double(w.w[0], w.w[1]), philox::uniform_double(w.w[2], w.w[3]), z[0], z[1]);
      const S vals[2] = {__dadd_rn(mean, __dmul_rn(stddev, z[0])), __dadd_rn(mean, __dmul_rn(stddev, z[1]))};
      store_lanes<2>(p, b, n, vals);
    }
  } else {
    BM_FOR_EACH_PHILOX_BLOCK(b, (n + 3) / 4) {
      const philox::Words4 w = philox::block_words(st.seed, st.offset + static_cast<uint64_t>(b));
      float z[4];
      philox::box_muller(philox::uniform_float(w.w[0], 24), philox::uniform_float(w.w[1], 24), z[0], z[1]);
      philox::box_muller(philox::uniform_float(w.w[2], 24), philox::uniform_float(w.w[3], 24), z[2], z[3]);
      S vals[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) vals[j] = ElemTraits<T>::store(__fadd_rn(mean, __fmul_rn(stddev, z[j])));
      store_lanes<4>(p, b, n, vals);
    }
  }
}

void normal_cuda(const Tensor& out, PhiloxState st, double mean, double std) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  BM_DISPATCH_FLOATING(out.dtype(), "normal_", [&] {
    using T = scalar_t;
    using C = typename ElemTraits<T>::wide;
    const int per_block = std::is_same_v<T, double> ? 2 : 4;
    normal_kernel_impl<T><<<grid_blocks(philox_blocks(n, per_block), kThreads), kThreads, 0, stream>>>(
        static_cast<typename ElemTraits<T>::storage*>(out.data_ptr()), n, st, static_cast<C>(mean),
        static_cast<C>(std));
    BM_CUDA_CHECK_LAUNCH();
  });
}

// ---- randint -------------------------------------------------------------------------
// low + (64-bit draw mod range) with wrapping uint64 addition, stored as the CPU stores it:
// integers by static_cast, bool/float types through double (the CPU's from_double).
template <typename T>
__device__ __forceinline__ typename ElemTraits<T>::storage randint_value(int64_t v) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) return static_cast<T>(v);
  else if constexpr (std::is_same_v<T, bool>) return static_cast<double>(v) != 0.0;
  else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>)
    return ElemTraits<T>::store(static_cast<float>(static_cast<double>(v)));
  else return static_cast<T>(static_cast<double>(v));
}

template <typename T>
__global__ void __launch_bounds__(kThreads) randint_kernel_impl(typename ElemTraits<T>::storage* p, int64_t n,
                                                                PhiloxState st, int64_t low, uint64_t range) {
  using S = typename ElemTraits<T>::storage;
  BM_FOR_EACH_PHILOX_BLOCK(b, (n + 1) / 2) {
    const philox::Words4 w = philox::block_words(st.seed, st.offset + static_cast<uint64_t>(b));
    S vals[2];
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const uint64_t r = philox::bits64(w.w[2 * j], w.w[2 * j + 1]) % range;
      vals[j] = randint_value<T>(static_cast<int64_t>(static_cast<uint64_t>(low) + r));
    }
    store_lanes<2>(p, b, n, vals);
  }
}

void randint_cuda(const Tensor& out, PhiloxState st, int64_t low, uint64_t range) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  BM_DISPATCH_ALL(out.dtype(), "randint", [&] {
    randint_kernel_impl<scalar_t><<<grid_blocks(philox_blocks(n, 2), kThreads), kThreads, 0, stream>>>(
        static_cast<typename ElemTraits<scalar_t>::storage*>(out.data_ptr()), n, st, low, range);
    BM_CUDA_CHECK_LAUNCH();
  });
}

// ---- bernoulli -----------------------------------------------------------------------
// out = (u < p) ? one : zero with both values converted on the host, so the kernel only
// moves bits: one instantiation per element size.
template <typename Word>
__global__ void __launch_bounds__(kThreads) bernoulli_scalar_kernel(Word* p, int64_t n, PhiloxState st, double prob,
                                                                    Word one, Word zero) {
  BM_FOR_EACH_PHILOX_BLOCK(b, (n + 3) / 4) {
    const philox::Words4 w = philox::block_words(st.seed, st.offset + static_cast<uint64_t>(b));
    Word vals[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) vals[j] = philox::uniform_u32(w.w[j]) < prob ? one : zero;
    store_lanes<4>(p, b, n, vals);
  }
}

template <typename Word, typename T>
void launch_bernoulli(const Tensor& out, PhiloxState st, double prob, double value, cudaStream_t stream) {
  static_assert(sizeof(Word) == sizeof(T), "bernoulli: word and dtype sizes differ");
  const T one = host_from_double<T>(value), zero = host_from_double<T>(0.0);
  Word one_bits, zero_bits;
  std::memcpy(&one_bits, &one, sizeof(Word));
  std::memcpy(&zero_bits, &zero, sizeof(Word));
  const int64_t n = out.numel();
  bernoulli_scalar_kernel<Word><<<grid_blocks(philox_blocks(n, 4), kThreads), kThreads, 0, stream>>>(
      static_cast<Word*>(out.data_ptr()), n, st, prob, one_bits, zero_bits);
  BM_CUDA_CHECK_LAUNCH();
}

void bernoulli_cuda(const Tensor& out, PhiloxState st, double prob, double value) {
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  BM_DISPATCH_ALL(out.dtype(), "bernoulli_", [&] {
    using T = scalar_t;
    if constexpr (sizeof(T) == 1) launch_bernoulli<uint8_t, T>(out, st, prob, value, stream);
    else if constexpr (sizeof(T) == 2) launch_bernoulli<uint16_t, T>(out, st, prob, value, stream);
    else if constexpr (sizeof(T) == 4) launch_bernoulli<uint32_t, T>(out, st, prob, value, stream);
    else launch_bernoulli<uint64_t, T>(out, st, prob, value, stream);
  });
}

// out[i] = (u < probs[i]) ? 1 : 0; out and probs contiguous, one floating dtype.
template <typename T>
__global__ void __launch_bounds__(kThreads) bernoulli_tensor_kernel_impl(typename ElemTraits<T>::storage* p,
                                                                         const typename ElemTraits<T>::storage* q,
                                                                         int64_t n, PhiloxState st) {
  using S = typename ElemTraits<T>::storage;
  const S one = ElemTraits<T>::store(1.0f), zero = ElemTraits<T>::store(0.0f);
  BM_FOR_EACH_PHILOX_BLOCK(b, (n + 3) / 4) {
    const philox::Words4 w = philox::block_words(st.seed, st.offset + static_cast<uint64_t>(b));
    S vals[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t i = 4 * b + j;
      vals[j] = (i < n && philox::uniform_u32(w.w[j]) < static_cast<double>(ElemTraits<T>::load(q[i]))) ? one : zero;
    }
    store_lanes<4>(p, b, n, vals);
  }
}

void bernoulli_tensor_cuda(const Tensor& out, const Tensor& probs, PhiloxState st) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  BM_DISPATCH_FLOATING(out.dtype(), "bernoulli", [&] {
    using S = typename ElemTraits<scalar_t>::storage;
    bernoulli_tensor_kernel_impl<scalar_t><<<grid_blocks(philox_blocks(n, 4), kThreads), kThreads, 0, stream>>>(
        static_cast<S*>(out.data_ptr()), static_cast<const S*>(probs.data_ptr()), n, st);
    BM_CUDA_CHECK_LAUNCH();
  });
}

// ---- randperm ------------------------------------------------------------------------
// The CPU kernel sorts indices by (64-bit key, index); running it on the host and copying
// the result gives the CPU's permutation exactly, at the cost of an O(n log n) host sort
// and one host-to-device copy (randperm feeds data loaders, not inner loops).
void randperm_cuda(const Tensor& out, PhiloxState st) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Tensor host = Tensor::empty({n}, DType::Int64, Device());
  randperm_kernel.get(Device())(host, st);
  copy_kernel.get(out.device())(out, to(host, out.device()));
}

#undef BM_FOR_EACH_PHILOX_BLOCK

}  // namespace

BM_REGISTER_KERNEL(uniform_kernel, CUDA, &uniform_cuda);
BM_REGISTER_KERNEL(normal_kernel, CUDA, &normal_cuda);
BM_REGISTER_KERNEL(randint_kernel, CUDA, &randint_cuda);
BM_REGISTER_KERNEL(bernoulli_kernel, CUDA, &bernoulli_cuda);
BM_REGISTER_KERNEL(bernoulli_tensor_kernel, CUDA, &bernoulli_tensor_cuda);
BM_REGISTER_KERNEL(randperm_kernel, CUDA, &randperm_cuda);

}  // namespace bigmodel::cuda
