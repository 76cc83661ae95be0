// The launch loop shared by elementwise CUDA kernels (unary, unary backward, where):
// out[i] = f(in0[i], in1[i], ...) over tensors of one shape (inputs already expanded, so
// broadcast dims have stride 0). Contiguous operands whose pointers are aligned to a
// 16-byte pack take the vectorised path (16 bytes per load of the widest operand); any other
// layout walks an OffsetCalc. binary.cu carries its own copy of this loop and could use
// launch_elementwise instead.
//
// Operands may alias (in-place ops pass out == in; masked_fill_ passes out == b): every
// element is read and written by the same thread, so the pointers are not __restrict__.
#pragma once
#include <cstdint>
#include <utility>

#include "core/tensor.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/offset_calc.h"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda::elementwise {

constexpr int kThreads = 256;

template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

template <typename T, typename... Ts>
constexpr size_t max_size() {
  if constexpr (sizeof...(Ts) == 0) return sizeof(T);
  else return sizeof(T) > max_size<Ts...>() ? sizeof(T) : max_size<Ts...>();
}

// Elements per thread per step: 16 bytes of the widest operand.
template <typename Out, typename... Ins>
constexpr int vec_width() {
  return static_cast<int>(16 / max_size<Out, Ins...>());
}

// Packs by value: each is one 16-byte (or narrower) load, not V scalar loads.
template <int V, typename Out, typename F, typename... P>
__device__ __forceinline__ void apply_packs(Pack<Out, V>& po, const F& f, P... p) {
#pragma unroll
  for (int k = 0; k < V; ++k) po.v[k] = f(p.v[k]...);
}

// No __launch_bounds__ here: with it ptxas spilled 8-20 bytes around the float64 exp slow
// path (40 registers used); without it, none.
template <int V, typename Out, typename F, typename... Ins>
__global__ void vec_kernel(Out* out, int64_t n, F f, const Ins*... in) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t packs = n / V;
  for (int64_t i = first; i < packs; i += stride) {
    Pack<Out, V> po;
    apply_packs<V>(po, f, reinterpret_cast<const Pack<Ins, V>*>(in)[i]...);
    reinterpret_cast<Pack<Out, V>*>(out)[i] = po;
  }
  // The tail (n % V elements) after the last whole pack; at most one step per thread.
#pragma unroll 1
  for (int64_t i = packs * V + first; i < n; i += stride) out[i] = f(in[i]...);
}

template <typename Out, typename F, size_t... I, typename... Ins>
__device__ __forceinline__ void strided_one(Out* out, const int64_t (&off)[sizeof...(Ins) + 1], const F& f,
                                            std::index_sequence<I...>, const Ins*... in) {
  out[off[0]] = f(in[off[I + 1]]...);
}

template <typename Out, typename F, typename... Ins>
__global__ void __launch_bounds__(kThreads)
    strided_kernel(Out* out, OffsetCalc<sizeof...(Ins) + 1> calc, int64_t n, F f, const Ins*... in) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[sizeof...(Ins) + 1];
    calc.offsets(i, off);
    strided_one(out, off, f, std::index_sequence_for<Ins...>{}, in...);
  }
}

template <typename>
using TensorRef = const Tensor&;

inline bool aligned_to(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// out = f(ins...) elementwise. Out and Ins are device storage types (uint16_t for half
// types); `f` is a device functor taking Ins by value and returning Out. `op` names the
// caller in errors. Runs on the current stream of out's device.
template <typename Out, typename... Ins, typename F>
void launch(const char* op, F f, const Tensor& out, TensorRef<Ins>... ins) {
  constexpr int V = vec_width<Out, Ins...>();
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  Out* o = static_cast<Out*>(out.data_ptr());
  bool vec = out.is_contiguous() && aligned_to(o, sizeof(Out) * V);
  ((vec = vec && ins.is_contiguous() && aligned_to(ins.data_ptr(), sizeof(Ins) * V)), ...);
  if (vec) {
    vec_kernel<V, Out, F, Ins...><<<grid_blocks((n + V - 1) / V, kThreads), kThreads, 0, stream>>>(
        o, n, f, static_cast<const Ins*>(ins.data_ptr())...);
  } else {
    const Tensor* ts[sizeof...(Ins) + 1] = {&out, &ins...};
    strided_kernel<Out, F, Ins...><<<grid_blocks(n, kThreads), kThreads, 0, stream>>>(
        o, make_offset_calc<sizeof...(Ins) + 1>(ts, op), n, f, static_cast<const Ins*>(ins.data_ptr())...);
  }
  BM_CUDA_CHECK_LAUNCH();
}

}  // namespace bigmodel::cuda::elementwise
