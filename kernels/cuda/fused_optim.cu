// CUDA kernels of the multi-tensor optimizer ops (core/ops/fused_optim.h): one launch covers
// every tensor of a list. The host builds a table (one entry per tensor: its pointers, size and
// per-tensor scalars; one entry per chunk of kChunk elements), stages it through a pinned
// buffer into device memory on the current stream (no host sync), and each block takes one
// chunk. Arithmetic uses the round-to-nearest intrinsics (__fmul_rn, ...), which nvcc never
// contracts into FMAs, in the order of the CPU kernel, so CUDA and CPU agree bit for bit.
// Float32 and Float64 parameters with state of the same dtype; Float16/BFloat16 parameters and
// gradients with float32 state and optional float32 master copies (read p or the master, update
// in float32, write the master and round(p) in the same pass); the norm, scale and unscale take
// every floating dtype.
#include <cmath>
#include <cstring>
#include <vector>

#include "core/cuda_info.h"
#include "core/ops/fused_optim.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_allocator.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/functors.h"

namespace bigmodel::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 16384;  // elements per block: 64 per thread

struct TensorEntry {  // 72 bytes
  void* ptr[6];       // param, grad, state 1..3, float32 master copy (null when absent)
  int64_t numel;
  double s0, s1;      // per-tensor scalars (Adam: step_size, bias_correction2_sqrt; SGD: first step)
};
struct ChunkEntry {
  int32_t tensor;
  int32_t chunk;  // start = chunk * kChunk
};

// The device copy of a table: entries then chunks, in one Int64 tensor kept alive by the caller
// until the launch is enqueued (later users of the block run after it on the same stream).
struct DeviceTable {
  Tensor storage;
  const TensorEntry* tensors = nullptr;
  const ChunkEntry* chunks = nullptr;
  int64_t num_chunks = 0;
};

DeviceTable upload_table(const std::vector<TensorEntry>& tensors, Device device, cudaStream_t stream) {
  std::vector<ChunkEntry> chunks;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int64_t n = tensors[i].numel;
    for (int64_t c = 0; c * kChunk < n; ++c) chunks.push_back({static_cast<int32_t>(i), static_cast<int32_t>(c)});
  }
  DeviceTable t;
  t.num_chunks = static_cast<int64_t>(chunks.size());
  if (chunks.empty()) return t;
  const size_t tensor_bytes = tensors.size() * sizeof(TensorEntry);
  const size_t bytes = tensor_bytes + chunks.size() * sizeof(ChunkEntry);
  t.storage = Tensor::empty({static_cast<int64_t>((bytes + 7) / 8)}, DType::Int64, device);
  void* pinned = pinned_alloc(bytes);
  std::memcpy(pinned, tensors.data(), tensor_bytes);
  std::memcpy(static_cast<char*>(pinned) + tensor_bytes, chunks.data(), chunks.size() * sizeof(ChunkEntry));
  try {
    BM_CUDA_CHECK(cudaMemcpyAsync(t.storage.data_ptr(), pinned, bytes, cudaMemcpyHostToDevice, stream));
    pinned_record_use(pinned, device.index, stream);
  } catch (...) {
    pinned_free(pinned);
    throw;
  }
  pinned_free(pinned);  // reused only after the copy has run
  char* base = static_cast<char*>(t.storage.data_ptr());
  t.tensors = reinterpret_cast<const TensorEntry*>(base);
  t.chunks = reinterpret_cast<const ChunkEntry*>(base + tensor_bytes);
  return t;
}

// Correctly rounded float / double arithmetic that the compiler may not fuse (the CPU's order).
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }

template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// Runs op(k, i) for the elements of one chunk: V at a time (16-byte loads inside op) when every
// pointer of the tensor is aligned, then the tail one by one.
template <typename T, int V, typename Op>
__device__ __forceinline__ void chunk_loop(const TensorEntry& e, int64_t start, int64_t end, bool aligned, Op op) {
  int64_t i = start;
  if (aligned) {
    const int64_t vec_end = start + (end - start) / V * V;
    for (int64_t j = start + static_cast<int64_t>(threadIdx.x) * V; j < vec_end; j += static_cast<int64_t>(blockDim.x) * V)
      op.template run<V>(e, j);
    i = vec_end;
  }
  for (int64_t j = i + threadIdx.x; j < end; j += blockDim.x) op.template run<1>(e, j);
}

// Every pointer aligned for a Pack<T, V> (T: the widest element type of the lists, the state
// type), which also aligns the narrower half packs of V elements.
template <typename T, int V>
__device__ __forceinline__ bool all_aligned(const TensorEntry& e) {
  uintptr_t bits = 0;
#pragma unroll
  for (int k = 0; k < 6; ++k) bits |= reinterpret_cast<uintptr_t>(e.ptr[k]);
  return (bits & (sizeof(T) * V - 1)) == 0;
}

template <typename T, int W>
__device__ __forceinline__ Pack<T, W> load_pack(const void* base, int64_t i) {
  return *reinterpret_cast<const Pack<T, W>*>(static_cast<const T*>(base) + i);
}
template <typename T, int W>
__device__ __forceinline__ void store_pack(void* base, int64_t i, const Pack<T, W>& v) {
  *reinterpret_cast<Pack<T, W>*>(static_cast<T*>(base) + i) = v;
}

// ------------------------------------------------------------------ SGD
template <typename T>
struct SGDConsts {
  T wd, mom, damp, neg_lr;
  bool use_wd, use_mom, nesterov, maximize;
};

// Elements i..i+W of a half list, widened (exactly) to T.
template <typename T, typename P, int W>
__device__ __forceinline__ Pack<T, W> widen(const void* base, int64_t i) {
  using S = typename ElemTraits<P>::storage;
  const Pack<S, W> h = load_pack<S, W>(base, i);
  Pack<T, W> r;
#pragma unroll
  for (int q = 0; q < W; ++q) r.v[q] = ElemTraits<P>::load(h.v[q]);
  return r;
}

// The parameter of element i..i+W in the compute type T: the master copy when there is one,
// else p widened (exactly) from its storage type P.
template <typename T, typename P, int W>
__device__ __forceinline__ Pack<T, W> load_param(const TensorEntry& e, int64_t i) {
  if constexpr (std::is_same_v<T, P>) {
    return load_pack<T, W>(e.ptr[0], i);
  } else {
    if (e.ptr[5]) return load_pack<T, W>(e.ptr[5], i);
    return widen<T, P, W>(e.ptr[0], i);
  }
}

// Writes the updated parameter: into p (and the master copy, then p = its rounding) for half P.
template <typename T, typename P, int W>
__device__ __forceinline__ void store_param(const TensorEntry& e, int64_t i, const Pack<T, W>& p) {
  if constexpr (std::is_same_v<T, P>) {
    store_pack<T, W>(e.ptr[0], i, p);
  } else {
    using S = typename ElemTraits<P>::storage;
    if (e.ptr[5]) store_pack<T, W>(e.ptr[5], i, p);
    Pack<S, W> h;
#pragma unroll
    for (int q = 0; q < W; ++q) h.v[q] = ElemTraits<P>::store(p.v[q]);
    store_pack<S, W>(e.ptr[0], i, h);
  }
}

template <typename T, typename P, int W>
__device__ __forceinline__ Pack<T, W> load_grad(const TensorEntry& e, int64_t i) {
  if constexpr (std::is_same_v<T, P>) return load_pack<T, W>(e.ptr[1], i);
  else return widen<T, P, W>(e.ptr[1], i);
}

template <typename T, typename P>
struct SGDOp {
  SGDConsts<T> k;
  template <int W>
  __device__ __forceinline__ void run(const TensorEntry& e, int64_t i) const {
    Pack<T, W> p = load_param<T, P, W>(e, i);
    const Pack<T, W> g = load_grad<T, P, W>(e, i);
    Pack<T, W> b;
    if (k.use_mom && e.s0 == 0.0) b = load_pack<T, W>(e.ptr[2], i);
#pragma unroll
    for (int q = 0; q < W; ++q) {
      T d = k.maximize ? -g.v[q] : g.v[q];
      if (k.use_wd) d = add_rn(d, mul_rn(p.v[q], k.wd));
      if (k.use_mom) {
        b.v[q] = e.s0 != 0.0 ? d : add_rn(mul_rn(b.v[q], k.mom), mul_rn(d, k.damp));
        d = k.nesterov ? add_rn(d, mul_rn(b.v[q], k.mom)) : b.v[q];
      }
      p.v[q] = add_rn(p.v[q], mul_rn(d, k.neg_lr));
    }
    store_param<T, P, W>(e, i, p);
    if (k.use_mom) store_pack<T, W>(e.ptr[2], i, b);
  }
};

// ------------------------------------------------------------------ Adam / AdamW
template <typename T>
struct AdamConsts {
  T b1, one_minus_b1, b2, one_minus_b2, eps, wd, decay;
  bool use_wd, decoupled, amsgrad, maximize;
};

template <typename T, typename P>
struct AdamOp {
  AdamConsts<T> k;
  template <int W>
  __device__ __forceinline__ void run(const TensorEntry& e, int64_t i) const {
    const T step_size = static_cast<T>(e.s0), bc2 = static_cast<T>(e.s1);
    Pack<T, W> p = load_param<T, P, W>(e, i);
    const Pack<T, W> g = load_grad<T, P, W>(e, i);
    Pack<T, W> m = load_pack<T, W>(e.ptr[2], i);
    Pack<T, W> v = load_pack<T, W>(e.ptr[3], i);
    Pack<T, W> vm;
    if (k.amsgrad) vm = load_pack<T, W>(e.ptr[4], i);
#pragma unroll
    for (int q = 0; q < W; ++q) {
      T grad = k.maximize ? -g.v[q] : g.v[q];
      T param = p.v[q];
      if (k.use_wd) {
        if (k.decoupled) param = mul_rn(param, k.decay);
        else grad = add_rn(grad, mul_rn(param, k.wd));
      }
      m.v[q] = add_rn(mul_rn(m.v[q], k.b1), mul_rn(grad, k.one_minus_b1));
      v.v[q] = add_rn(mul_rn(v.v[q], k.b2), mul_rn(mul_rn(grad, grad), k.one_minus_b2));
      T second = v.v[q];
      if (k.amsgrad) {
        second = fn::maximum(vm.v[q], second);
        vm.v[q] = second;
      }
      const T denom = add_rn(div_rn(sqrt_rn(second), bc2), k.eps);
      p.v[q] = add_rn(param, mul_rn(div_rn(m.v[q], denom), step_size));
    }
    store_param<T, P, W>(e, i, p);
    store_pack<T, W>(e.ptr[2], i, m);
    store_pack<T, W>(e.ptr[3], i, v);
    if (k.amsgrad) store_pack<T, W>(e.ptr[4], i, vm);
  }
};

// T: the compute/state type; V elements per vector step (16-byte state loads; the half
// parameter/gradient loads of the same V elements are 8 bytes).
template <typename T, typename Op>
__global__ void __launch_bounds__(kThreads) fused_update_kernel(const TensorEntry* __restrict__ tensors,
                                                                const ChunkEntry* __restrict__ chunks, Op op) {
  constexpr int V = 16 / sizeof(T);
  const ChunkEntry c = chunks[blockIdx.x];
  const TensorEntry e = tensors[c.tensor];
  const int64_t start = static_cast<int64_t>(c.chunk) * kChunk;
  const int64_t end = start + kChunk < e.numel ? start + kChunk : e.numel;
  chunk_loop<T, V>(e, start, end, all_aligned<T, V>(e), op);
}

template <typename T, typename Op>
void launch_update(const std::vector<TensorEntry>& entries, Device device, const Op& op) {
  DeviceGuard guard(device.index);
  cudaStream_t stream = current_cuda_stream(device.index);
  DeviceTable t = upload_table(entries, device, stream);
  if (t.num_chunks == 0) return;
  fused_update_kernel<T, Op><<<static_cast<unsigned>(t.num_chunks), kThreads, 0, stream>>>(t.tensors, t.chunks, op);
  BM_CUDA_CHECK_LAUNCH();
}

TensorEntry entry_of(std::initializer_list<const Tensor*> ts, int64_t numel, double s0 = 0.0, double s1 = 0.0) {
  TensorEntry e{};
  int k = 0;
  for (const Tensor* t : ts) e.ptr[k++] = (t && t->defined()) ? t->data_ptr() : nullptr;
  e.numel = numel;
  e.s0 = s0;
  e.s1 = s1;
  return e;
}

// T: the compute (= state) type; P: the parameter/gradient dtype (T, or Half/BFloat16 with T = float).
template <typename T, typename P>
void sgd_typed(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& bufs,
               const std::vector<uint8_t>& first, const std::vector<Tensor>& masters, const FusedSGDOptions& o) {
  SGDConsts<T> k{static_cast<T>(o.weight_decay), static_cast<T>(o.momentum), static_cast<T>(1.0 - o.dampening),
                 static_cast<T>(-o.lr), o.weight_decay != 0.0, o.momentum != 0.0, o.nesterov, o.maximize};
  std::vector<TensorEntry> entries;
  entries.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor* buf = k.use_mom ? &bufs[i] : nullptr;
    const Tensor* master = masters.empty() ? nullptr : &masters[i];
    entries.push_back(entry_of({&params[i], &grads[i], buf, nullptr, nullptr, master}, params[i].numel(),
                               k.use_mom && first[i] ? 1.0 : 0.0));
  }
  launch_update<T>(entries, params[0].device(), SGDOp<T, P>{k});
}

void fused_sgd_cuda(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                    const std::vector<Tensor>& bufs, const std::vector<uint8_t>& first,
                    const std::vector<Tensor>& masters, const FusedSGDOptions& o) {
  switch (params[0].dtype()) {
    case DType::Float64: return sgd_typed<double, double>(params, grads, bufs, first, masters, o);
    case DType::Float16: return sgd_typed<float, Half>(params, grads, bufs, first, masters, o);
    case DType::BFloat16: return sgd_typed<float, BFloat16>(params, grads, bufs, first, masters, o);
    default: return sgd_typed<float, float>(params, grads, bufs, first, masters, o);
  }
}

template <typename T, typename P>
void adam_typed(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& m1,
                const std::vector<Tensor>& m2, const std::vector<Tensor>& vmax, const std::vector<Tensor>& masters,
                const std::vector<int64_t>& steps, const FusedAdamOptions& o) {
  AdamConsts<T> k{static_cast<T>(o.beta1), static_cast<T>(1.0 - o.beta1), static_cast<T>(o.beta2),
                  static_cast<T>(1.0 - o.beta2), static_cast<T>(o.eps), static_cast<T>(o.weight_decay),
                  static_cast<T>(1.0 - o.lr * o.weight_decay), o.weight_decay != 0.0, o.decoupled, o.amsgrad,
                  o.maximize};
  std::vector<TensorEntry> entries;
  entries.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const AdamStepScalars s = adam_step_scalars(o, steps[i]);
    // The kernel rounds the scalars to T exactly as the CPU does (static_cast of the double).
    const Tensor* vm = o.amsgrad ? &vmax[i] : nullptr;
    const Tensor* master = masters.empty() ? nullptr : &masters[i];
    entries.push_back(entry_of({&params[i], &grads[i], &m1[i], &m2[i], vm, master}, params[i].numel(), s.step_size,
                               s.bias_correction2_sqrt));
  }
  launch_update<T>(entries, params[0].device(), AdamOp<T, P>{k});
}

void fused_adam_cuda(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                     const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                     const std::vector<Tensor>& max_exp_avg_sqs, const std::vector<Tensor>& masters,
                     const std::vector<int64_t>& steps, const FusedAdamOptions& o) {
  const auto& m = exp_avgs;
  const auto& v = exp_avg_sqs;
  const auto& vm = max_exp_avg_sqs;
  switch (params[0].dtype()) {
    case DType::Float64: return adam_typed<double, double>(params, grads, m, v, vm, masters, steps, o);
    case DType::Float16: return adam_typed<float, Half>(params, grads, m, v, vm, masters, steps, o);
    case DType::BFloat16: return adam_typed<float, BFloat16>(params, grads, m, v, vm, masters, steps, o);
    default: return adam_typed<float, float>(params, grads, m, v, vm, masters, steps, o);
  }
}

// ------------------------------------------------------------------ norm and scale
enum class NormKind : int { Inf, Two, One, P };

// Phase 1: one partial per chunk (double sum, or max |x|).
template <typename T>
__global__ void __launch_bounds__(kThreads) norm_partial_kernel(const TensorEntry* __restrict__ tensors,
                                                                const ChunkEntry* __restrict__ chunks,
                                                                double* __restrict__ partial, NormKind kind, double p) {
  using S = typename ElemTraits<T>::storage;
  const ChunkEntry c = chunks[blockIdx.x];
  const TensorEntry e = tensors[c.tensor];
  const int64_t start = static_cast<int64_t>(c.chunk) * kChunk;
  const int64_t end = start + kChunk < e.numel ? start + kChunk : e.numel;
  const S* x = static_cast<const S*>(e.ptr[0]);
  double acc = 0.0;
  for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) {
    const double v = fabs(static_cast<double>(ElemTraits<T>::load(x[i])));
    if (kind == NormKind::Inf) acc = fn::maximum(acc, v);
    else if (kind == NormKind::Two) acc += v * v;
    else if (kind == NormKind::One) acc += v;
    else acc += pow(v, p);
  }
  if (kind == NormKind::Inf) {
    // NaN must survive the reduction: MaxOp drops it, so count NaNs separately.
    const double nan_seen = block_sum(acc != acc ? 1.0 : 0.0);
    acc = block_reduce(acc != acc ? 0.0 : acc, MaxOp{}, 0.0);
    if (threadIdx.x == 0) partial[blockIdx.x] = nan_seen > 0.0 ? __longlong_as_double(0x7ff8000000000000LL) : acc;
  } else {
    acc = block_sum(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
  }
}

// Phase 2: one block combines the partials in a fixed order and writes the norm.
template <typename T>
__global__ void __launch_bounds__(1024) norm_final_kernel(const double* __restrict__ partial, int64_t count,
                                                          typename ElemTraits<T>::storage* out, NormKind kind,
                                                          double p) {
  double acc = 0.0;
  bool nan = false;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    const double v = partial[i];
    if (v != v) nan = true;
    else acc = kind == NormKind::Inf ? (v > acc ? v : acc) : acc + v;
  }
  const double nan_seen = block_sum(nan ? 1.0 : 0.0);
  acc = kind == NormKind::Inf ? block_reduce(acc, MaxOp{}, 0.0) : block_sum(acc);
  if (threadIdx.x == 0) {
    double r = acc;
    if (kind == NormKind::Two) r = sqrt(acc);
    else if (kind == NormKind::P) r = pow(acc, 1.0 / p);
    if (nan_seen > 0.0) r = __longlong_as_double(0x7ff8000000000000LL);
    using C = typename ElemTraits<T>::wide;
    *out = ElemTraits<T>::store(static_cast<C>(r));
  }
}

template <typename T>
void norm_typed(const Tensor& out, const std::vector<Tensor>& tensors, double p) {
  const Device device = out.device();
  DeviceGuard guard(device.index);
  cudaStream_t stream = current_cuda_stream(device.index);
  std::vector<TensorEntry> entries;
  entries.reserve(tensors.size());
  for (const Tensor& t : tensors) entries.push_back(entry_of({&t}, t.numel()));
  DeviceTable t = upload_table(entries, device, stream);
  const NormKind kind = std::isinf(p) ? NormKind::Inf : p == 2.0 ? NormKind::Two : p == 1.0 ? NormKind::One : NormKind::P;
  Tensor partial = Tensor::empty({t.num_chunks > 0 ? t.num_chunks : 1}, DType::Float64, device);
  double* pp = partial.data<double>();
  if (t.num_chunks > 0) {
    norm_partial_kernel<T><<<static_cast<unsigned>(t.num_chunks), kThreads, 0, stream>>>(t.tensors, t.chunks, pp, kind, p);
    BM_CUDA_CHECK_LAUNCH();
  }
  using S = typename ElemTraits<T>::storage;
  norm_final_kernel<T><<<1, 1024, 0, stream>>>(pp, t.num_chunks, static_cast<S*>(out.data_ptr()), kind, p);
  BM_CUDA_CHECK_LAUNCH();
}

void fused_norm_cuda(const Tensor& out, const std::vector<Tensor>& tensors, double p) {
  BM_DISPATCH_FLOATING(out.dtype(), "fused_norm", [&] { norm_typed<scalar_t>(out, tensors, p); });
}

template <typename T>
__global__ void __launch_bounds__(kThreads) scale_kernel(const TensorEntry* __restrict__ tensors,
                                                         const ChunkEntry* __restrict__ chunks,
                                                         const typename ElemTraits<T>::storage* __restrict__ scale) {
  using S = typename ElemTraits<T>::storage;
  using C = typename ElemTraits<T>::wide;
  const ChunkEntry c = chunks[blockIdx.x];
  const TensorEntry e = tensors[c.tensor];
  const int64_t start = static_cast<int64_t>(c.chunk) * kChunk;
  const int64_t end = start + kChunk < e.numel ? start + kChunk : e.numel;
  S* x = static_cast<S*>(e.ptr[0]);
  const C s = ElemTraits<T>::load(*scale);
  for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x)
    x[i] = ElemTraits<T>::store(mul_rn(ElemTraits<T>::load(x[i]), s));
}

template <typename T>
void mul_typed(const std::vector<Tensor>& tensors, const Tensor& scale) {
  const Device device = tensors[0].device();
  DeviceGuard guard(device.index);
  cudaStream_t stream = current_cuda_stream(device.index);
  std::vector<TensorEntry> entries;
  entries.reserve(tensors.size());
  for (const Tensor& t : tensors) entries.push_back(entry_of({&t}, t.numel()));
  DeviceTable t = upload_table(entries, device, stream);
  if (t.num_chunks == 0) return;
  using S = typename ElemTraits<T>::storage;
  scale_kernel<T><<<static_cast<unsigned>(t.num_chunks), kThreads, 0, stream>>>(
      t.tensors, t.chunks, static_cast<const S*>(scale.data_ptr()));
  BM_CUDA_CHECK_LAUNCH();
}

void fused_mul_cuda(const std::vector<Tensor>& tensors, const Tensor& scale) {
  BM_DISPATCH_FLOATING(tensors[0].dtype(), "fused_mul_", [&] { mul_typed<scalar_t>(tensors, scale); });
}

// GradScaler's unscale: x *= inv (in the wide type: float for half, as on the CPU) and a
// non-finite element anywhere sets *found_inf = 1 (every writer stores the same value).
template <typename T>
__global__ void __launch_bounds__(kThreads) unscale_kernel(const TensorEntry* __restrict__ tensors,
                                                           const ChunkEntry* __restrict__ chunks,
                                                           float* __restrict__ found_inf,
                                                           const float* __restrict__ inv_scale) {
  using S = typename ElemTraits<T>::storage;
  using C = typename ElemTraits<T>::wide;
  const ChunkEntry c = chunks[blockIdx.x];
  const TensorEntry e = tensors[c.tensor];
  const int64_t start = static_cast<int64_t>(c.chunk) * kChunk;
  const int64_t end = start + kChunk < e.numel ? start + kChunk : e.numel;
  S* x = static_cast<S*>(e.ptr[0]);
  const C inv = static_cast<C>(*inv_scale);
  bool bad = false;
  for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) {
    const C v = ElemTraits<T>::load(x[i]);
    bad |= !isfinite(v);
    x[i] = ElemTraits<T>::store(mul_rn(v, inv));
  }
  if (__syncthreads_or(bad) && threadIdx.x == 0) *found_inf = 1.0f;
}

template <typename T>
void unscale_typed(const std::vector<Tensor>& grads, const Tensor& found_inf, const Tensor& inv_scale) {
  const Device device = grads[0].device();
  DeviceGuard guard(device.index);
  cudaStream_t stream = current_cuda_stream(device.index);
  std::vector<TensorEntry> entries;
  entries.reserve(grads.size());
  for (const Tensor& t : grads) entries.push_back(entry_of({&t}, t.numel()));
  DeviceTable t = upload_table(entries, device, stream);
  if (t.num_chunks == 0) return;
  unscale_kernel<T><<<static_cast<unsigned>(t.num_chunks), kThreads, 0, stream>>>(
      t.tensors, t.chunks, found_inf.data<float>(), inv_scale.data<float>());
  BM_CUDA_CHECK_LAUNCH();
}

void fused_unscale_cuda(const std::vector<Tensor>& grads, const Tensor& found_inf, const Tensor& inv_scale) {
  BM_DISPATCH_FLOATING(grads[0].dtype(), "fused_unscale_", [&] { unscale_typed<scalar_t>(grads, found_inf, inv_scale); });
}

}  // namespace

BM_REGISTER_KERNEL(fused_unscale_kernel, CUDA, &fused_unscale_cuda);
BM_REGISTER_KERNEL(fused_sgd_kernel, CUDA, &fused_sgd_cuda);
BM_REGISTER_KERNEL(fused_adam_kernel, CUDA, &fused_adam_cuda);
BM_REGISTER_KERNEL(fused_norm_kernel, CUDA, &fused_norm_cuda);
BM_REGISTER_KERNEL(fused_mul_kernel, CUDA, &fused_mul_cuda);

}  // namespace bigmodel::cuda
