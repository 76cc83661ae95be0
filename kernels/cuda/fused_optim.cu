// CUDA kernels of the multi-tensor optimizer ops (core/ops/fused_optim.h): one launch covers
// every tensor of a list. The host builds a table (one entry per tensor: its pointers, size and
// per-tensor scalars; one entry per chunk of kChunk elements), stages it through a pinned
// buffer into device memory on the current stream (no host sync), and each block takes one
// chunk. The per-element math is kernels/fused_optim_math.h, shared with the CPU kernels: on the
// device its round-to-nearest intrinsics (__fmul_rn, ...), which nvcc never contracts into FMAs,
// in the CPU's order, so CUDA and CPU agree bit for bit.
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
#include "kernels/fused_optim_math.h"

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

int64_t count_chunks(const std::vector<TensorEntry>& tensors) {
  int64_t n = 0;
  for (const TensorEntry& e : tensors) n += (e.numel + kChunk - 1) / kChunk;
  return n;
}

// Launches kernel over the chunk table of `entries` (uploaded here): one block per chunk, none
// when every tensor is empty. The kernels below all take (tensors, chunks, op).
template <typename Op>
void launch_over_chunks(void (*kernel)(const TensorEntry*, const ChunkEntry*, Op),
                        const std::vector<TensorEntry>& entries, Device device, const Op& op) {
  DeviceGuard guard(device.index);
  cudaStream_t stream = current_cuda_stream(device.index);
  const DeviceTable t = upload_table(entries, device, stream);
  if (t.num_chunks == 0) return;
  kernel<<<static_cast<unsigned>(t.num_chunks), kThreads, 0, stream>>>(t.tensors, t.chunks, op);
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

// The table of a single list (norm, scale, unscale): one entry per tensor, its data in ptr[0].
std::vector<TensorEntry> list_entries(const std::vector<Tensor>& tensors) {
  std::vector<TensorEntry> entries;
  entries.reserve(tensors.size());
  for (const Tensor& t : tensors) entries.push_back(entry_of({&t}, t.numel()));
  return entries;
}

// The chunk this block owns: its tensor's entry and the element range [start, end).
struct BlockChunk {
  TensorEntry e;
  int64_t start, end;
};
__device__ __forceinline__ BlockChunk block_chunk(const TensorEntry* tensors, const ChunkEntry* chunks) {
  const ChunkEntry c = chunks[blockIdx.x];
  const TensorEntry e = tensors[c.tensor];
  const int64_t start = static_cast<int64_t>(c.chunk) * kChunk;
  return {e, start, start + kChunk < e.numel ? start + kChunk : e.numel};
}

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

// ------------------------------------------------------------------ SGD / Adam updates
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

// Entry: ptr = {param, grad, momentum buffer, -, -, master}; s0 != 0 on the buffer's first step.
template <typename T, typename P>
struct SGDOp {
  fused::SGDConsts<T> k;
  template <int W>
  __device__ __forceinline__ void run(const TensorEntry& e, int64_t i) const {
    const bool first = e.s0 != 0.0;
    Pack<T, W> p = load_param<T, P, W>(e, i);
    const Pack<T, W> g = load_grad<T, P, W>(e, i);
    Pack<T, W> b;
    if (k.use_mom && !first) b = load_pack<T, W>(e.ptr[2], i);
#pragma unroll
    for (int q = 0; q < W; ++q) p.v[q] = fused::sgd_update(p.v[q], g.v[q], b.v, q, first, k);
    store_param<T, P, W>(e, i, p);
    if (k.use_mom) store_pack<T, W>(e.ptr[2], i, b);
  }
};

// Entry: ptr = {param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, master}; s0 = step_size,
// s1 = bias_correction2_sqrt (rounded to T here exactly as the CPU rounds them).
template <typename T, typename P>
struct AdamOp {
  fused::AdamConsts<T> k;
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
    for (int q = 0; q < W; ++q) p.v[q] = fused::adam_update(p.v[q], g.v[q], m.v, v.v, vm.v, q, step_size, bc2, k);
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
  const BlockChunk c = block_chunk(tensors, chunks);
  chunk_loop<T, V>(c.e, c.start, c.end, all_aligned<T, V>(c.e), op);
}

// T: the compute (= state) type; P: the parameter/gradient dtype (T, or Half/BFloat16 with T = float).
template <typename T, typename P>
void sgd_typed(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& bufs,
               const std::vector<uint8_t>& first, const std::vector<Tensor>& masters, const FusedSGDOptions& o) {
  const auto k = fused::SGDConsts<T>::from(o);
  std::vector<TensorEntry> entries;
  entries.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor* buf = k.use_mom ? &bufs[i] : nullptr;
    const Tensor* master = masters.empty() ? nullptr : &masters[i];
    entries.push_back(entry_of({&params[i], &grads[i], buf, nullptr, nullptr, master}, params[i].numel(),
                               k.use_mom && first[i] ? 1.0 : 0.0));
  }
  launch_over_chunks(&fused_update_kernel<T, SGDOp<T, P>>, entries, params[0].device(), SGDOp<T, P>{k});
}

void fused_sgd_cuda(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                    const std::vector<Tensor>& bufs, const std::vector<uint8_t>& first,
                    const std::vector<Tensor>& masters, const FusedSGDOptions& o) {
  fused::dispatch_step_types(params[0].dtype(), [&](auto types) {
    using Types = decltype(types);
    sgd_typed<typename Types::compute, typename Types::param>(params, grads, bufs, first, masters, o);
  });
}

template <typename T, typename P>
void adam_typed(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& m1,
                const std::vector<Tensor>& m2, const std::vector<Tensor>& vmax, const std::vector<Tensor>& masters,
                const std::vector<int64_t>& steps, const FusedAdamOptions& o) {
  std::vector<TensorEntry> entries;
  entries.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const AdamStepScalars s = adam_step_scalars(o, steps[i]);
    const Tensor* vm = o.amsgrad ? &vmax[i] : nullptr;
    const Tensor* master = masters.empty() ? nullptr : &masters[i];
    entries.push_back(entry_of({&params[i], &grads[i], &m1[i], &m2[i], vm, master}, params[i].numel(), s.step_size,
                               s.bias_correction2_sqrt));
  }
  launch_over_chunks(&fused_update_kernel<T, AdamOp<T, P>>, entries, params[0].device(),
                     AdamOp<T, P>{fused::AdamConsts<T>::from(o)});
}

void fused_adam_cuda(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                     const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                     const std::vector<Tensor>& max_exp_avg_sqs, const std::vector<Tensor>& masters,
                     const std::vector<int64_t>& steps, const FusedAdamOptions& o) {
  fused::dispatch_step_types(params[0].dtype(), [&](auto types) {
    using Types = decltype(types);
    adam_typed<typename Types::compute, typename Types::param>(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs,
                                                               masters, steps, o);
  });
}

// ------------------------------------------------------------------ norm, scale, unscale
using fused::NormKind;

// The single-list kernels: each thread runs op.element(x[i]) over its elements of the block's
// chunk (one per step; the tensor's data is ptr[0]), after op.begin(); then every thread calls
// op.finish() (block reductions need the whole block). op is copied: it keeps per-thread state.
template <typename Op>
__global__ void __launch_bounds__(kThreads) list_kernel(const TensorEntry* __restrict__ tensors,
                                                        const ChunkEntry* __restrict__ chunks, Op op) {
  const BlockChunk c = block_chunk(tensors, chunks);
  auto* x = static_cast<typename Op::S*>(c.e.ptr[0]);
  Op o = op;
  o.begin();
  for (int64_t i = c.start + threadIdx.x; i < c.end; i += blockDim.x) o.element(x[i]);
  o.finish();
}

// Norm phase 1: one partial per chunk (double sum, or max |x|) into partial[chunk].
template <typename T>
struct NormPartialOp {
  using S = typename ElemTraits<T>::storage;
  double* partial;
  NormKind kind;
  double p;
  double acc;
  __device__ __forceinline__ void begin() { acc = 0.0; }
  __device__ __forceinline__ void element(const S& x) {
    acc = fused::norm_accumulate(acc, static_cast<double>(ElemTraits<T>::load(x)), kind, p);
  }
  __device__ __forceinline__ void finish() {
    if (kind == NormKind::Inf) {
      // NaN must survive the reduction: MaxOp drops it, so count NaNs separately.
      const double nan_seen = block_sum(acc != acc ? 1.0 : 0.0);
      const double m = block_reduce(acc != acc ? 0.0 : acc, MaxOp{}, 0.0);
      if (threadIdx.x == 0) partial[blockIdx.x] = nan_seen > 0.0 ? __longlong_as_double(0x7ff8000000000000LL) : m;
    } else {
      const double sum = block_sum(acc);
      if (threadIdx.x == 0) partial[blockIdx.x] = sum;
    }
  }
};

// Norm phase 2: one block combines the partials in a fixed order and writes the norm.
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
    double r = fused::norm_finish(acc, kind, p);
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
  const std::vector<TensorEntry> entries = list_entries(tensors);
  const int64_t num_chunks = count_chunks(entries);
  const NormKind kind = fused::norm_kind(p);
  Tensor partial = Tensor::empty({num_chunks > 0 ? num_chunks : 1}, DType::Float64, device);
  double* pp = partial.data<double>();
  launch_over_chunks(&list_kernel<NormPartialOp<T>>, entries, device, NormPartialOp<T>{pp, kind, p, 0.0});
  using S = typename ElemTraits<T>::storage;
  norm_final_kernel<T><<<1, 1024, 0, stream>>>(pp, num_chunks, static_cast<S*>(out.data_ptr()), kind, p);
  BM_CUDA_CHECK_LAUNCH();
}

void fused_norm_cuda(const Tensor& out, const std::vector<Tensor>& tensors, double p) {
  BM_DISPATCH_FLOATING(out.dtype(), "fused_norm", [&] { norm_typed<scalar_t>(out, tensors, p); });
}

// x *= scale (a device scalar of the list's dtype, read by every thread: no host sync).
template <typename T>
struct ScaleOp {
  using S = typename ElemTraits<T>::storage;
  using C = typename ElemTraits<T>::wide;
  const S* scale;
  C s;
  __device__ __forceinline__ void begin() { s = ElemTraits<T>::load(*scale); }
  __device__ __forceinline__ void element(S& x) { x = ElemTraits<T>::store(fused::mul_rn(ElemTraits<T>::load(x), s)); }
  __device__ __forceinline__ void finish() {}
};

void fused_mul_cuda(const std::vector<Tensor>& tensors, const Tensor& scale) {
  BM_DISPATCH_FLOATING(tensors[0].dtype(), "fused_mul_", [&] {
    using Op = ScaleOp<scalar_t>;
    launch_over_chunks(&list_kernel<Op>, list_entries(tensors), tensors[0].device(),
                       Op{static_cast<const typename Op::S*>(scale.data_ptr()), {}});
  });
}

// GradScaler's unscale: x *= inv (in the wide type: float for half, as on the CPU) and a
// non-finite element anywhere sets *found_inf = 1 (every writer stores the same value).
template <typename T>
struct UnscaleOp {
  using S = typename ElemTraits<T>::storage;
  using C = typename ElemTraits<T>::wide;
  float* found_inf;
  const float* inv_scale;
  C inv;
  bool bad;
  __device__ __forceinline__ void begin() {
    inv = static_cast<C>(*inv_scale);
    bad = false;
  }
  __device__ __forceinline__ void element(S& x) {
    x = ElemTraits<T>::store(fused::unscale_value(ElemTraits<T>::load(x), inv, bad));
  }
  __device__ __forceinline__ void finish() {
    if (__syncthreads_or(bad) && threadIdx.x == 0) *found_inf = 1.0f;
  }
};

void fused_unscale_cuda(const std::vector<Tensor>& grads, const Tensor& found_inf, const Tensor& inv_scale) {
  BM_DISPATCH_FLOATING(grads[0].dtype(), "fused_unscale_", [&] {
    using Op = UnscaleOp<scalar_t>;
    launch_over_chunks(&list_kernel<Op>, list_entries(grads), grads[0].device(),
                       Op{found_inf.data<float>(), inv_scale.data<float>(), {}, false});
  });
}

}  // namespace

BM_REGISTER_KERNEL(fused_unscale_kernel, CUDA, &fused_unscale_cuda);
BM_REGISTER_KERNEL(fused_sgd_kernel, CUDA, &fused_sgd_cuda);
BM_REGISTER_KERNEL(fused_adam_kernel, CUDA, &fused_adam_cuda);
BM_REGISTER_KERNEL(fused_norm_kernel, CUDA, &fused_norm_cuda);
BM_REGISTER_KERNEL(fused_mul_kernel, CUDA, &fused_mul_cuda);

}  // namespace bigmodel::cuda
