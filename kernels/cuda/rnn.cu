// CUDA kernels of the fused LSTM / GRU cell steps (core/ops/rnn.h), forward and backward, with
// the CPU contract of kernels/cpu/rnn.cpp: contiguous tensors of one floating dtype, gates
// [B, 4H] (i, f, g, o) or gi/gh [B, 3H] (r, z, n), states [B, H]; half types compute in float.
// One thread per (row, hidden unit): each reads its 3-4 gate values (coalesced along H) and
// writes its outputs, so the kernels are one pass over memory.
#include "core/cuda_info.h"
#include "core/ops/rnn.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

constexpr int kThreads = 256;

template <typename C>
__device__ __forceinline__ C sigmoid_of(C x) {
  return C(1) / (C(1) + exp(-x));
}

template <typename T>
using S = typename ElemTraits<T>::storage;
template <typename T>
using W = typename ElemTraits<T>::wide;

template <typename T>
__device__ __forceinline__ W<T> ld(const S<T>* p, int64_t i) {
  return ElemTraits<T>::load(p[i]);
}

// Calls f(b, j, k) for each (row b, hidden unit j) of a [B, H] state, k = b * H + j: one
// thread per unit in a grid-stride loop.
template <typename F>
__device__ __forceinline__ void for_each_unit(int64_t B, int64_t H, F&& f) {
  const int64_t n = B * H;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = k / H;
    f(b, k - b * H, k);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) lstm_forward_kernel(S<T>* __restrict__ h, S<T>* __restrict__ c,
                                                                const S<T>* __restrict__ gates,
                                                                const S<T>* __restrict__ c_prev, int64_t B, int64_t H) {
  using C = W<T>;
  for_each_unit(B, H, [&](int64_t b, int64_t j, int64_t k) {
    const S<T>* gr = gates + b * 4 * H;
    const C i = sigmoid_of(ld<T>(gr, j));
    const C f = sigmoid_of(ld<T>(gr, H + j));
    const C g = tanh(ld<T>(gr, 2 * H + j));
    const C o = sigmoid_of(ld<T>(gr, 3 * H + j));
    const C cn = f * ld<T>(c_prev, k) + i * g;
    c[k] = ElemTraits<T>::store(cn);
    h[k] = ElemTraits<T>::store(o * tanh(cn));
  });
}

template <typename T>
__global__ void __launch_bounds__(kThreads) lstm_backward_kernel(
    S<T>* __restrict__ grad_gates, S<T>* __restrict__ grad_c_prev, const S<T>* __restrict__ grad_h,
    const S<T>* __restrict__ grad_c, const S<T>* __restrict__ gates, const S<T>* __restrict__ c_prev,
    const S<T>* __restrict__ c, int64_t B, int64_t H) {
  using C = W<T>;
  for_each_unit(B, H, [&](int64_t b, int64_t j, int64_t k) {
    const S<T>* gr = gates + b * 4 * H;
    S<T>* dg = grad_gates + b * 4 * H;
    const C i = sigmoid_of(ld<T>(gr, j));
    const C f = sigmoid_of(ld<T>(gr, H + j));
    const C g = tanh(ld<T>(gr, 2 * H + j));
    const C o = sigmoid_of(ld<T>(gr, 3 * H + j));
    const C tc = tanh(ld<T>(c, k));  // the stored forward c, as the CPU kernel uses
    const C gh = ld<T>(grad_h, k);
    const C dct = ld<T>(grad_c, k) + gh * o * (C(1) - tc * tc);
    dg[j] = ElemTraits<T>::store(dct * g * i * (C(1) - i));
    dg[H + j] = ElemTraits<T>::store(dct * ld<T>(c_prev, k) * f * (C(1) - f));
    dg[2 * H + j] = ElemTraits<T>::store(dct * i * (C(1) - g * g));
    dg[3 * H + j] = ElemTraits<T>::store(gh * tc * o * (C(1) - o));
    grad_c_prev[k] = ElemTraits<T>::store(dct * f);
  });
}

template <typename T>
__global__ void __launch_bounds__(kThreads) gru_forward_kernel(S<T>* __restrict__ h, const S<T>* __restrict__ gi,
                                                               const S<T>* __restrict__ gh,
                                                               const S<T>* __restrict__ h_prev, int64_t B, int64_t H) {
  using C = W<T>;
  for_each_unit(B, H, [&](int64_t b, int64_t j, int64_t k) {
    const S<T>* a = gi + b * 3 * H;
    const S<T>* bb = gh + b * 3 * H;
    const C r = sigmoid_of(ld<T>(a, j) + ld<T>(bb, j));
    const C z = sigmoid_of(ld<T>(a, H + j) + ld<T>(bb, H + j));
    const C nn = tanh(ld<T>(a, 2 * H + j) + r * ld<T>(bb, 2 * H + j));
    h[k] = ElemTraits<T>::store((C(1) - z) * nn + z * ld<T>(h_prev, k));
  });
}

template <typename T>
__global__ void __launch_bounds__(kThreads) gru_backward_kernel(
    S<T>* __restrict__ grad_gi, S<T>* __restrict__ grad_gh, S<T>* __restrict__ grad_h_prev,
    const S<T>* __restrict__ grad_h, const S<T>* __restrict__ gi, const S<T>* __restrict__ gh,
    const S<T>* __restrict__ h_prev, int64_t B, int64_t H) {
  using C = W<T>;
  for_each_unit(B, H, [&](int64_t b, int64_t j, int64_t k) {
    const S<T>* a = gi + b * 3 * H;
    const S<T>* bb = gh + b * 3 * H;
    S<T>* da = grad_gi + b * 3 * H;
    S<T>* db = grad_gh + b * 3 * H;
    const C r = sigmoid_of(ld<T>(a, j) + ld<T>(bb, j));
    const C z = sigmoid_of(ld<T>(a, H + j) + ld<T>(bb, H + j));
    const C hn = ld<T>(bb, 2 * H + j);
    const C nn = tanh(ld<T>(a, 2 * H + j) + r * hn);
    const C g = ld<T>(grad_h, k);
    const C dn_pre = g * (C(1) - z) * (C(1) - nn * nn);
    const C dr_pre = dn_pre * hn * r * (C(1) - r);
    const C dz_pre = g * (ld<T>(h_prev, k) - nn) * z * (C(1) - z);
    da[j] = db[j] = ElemTraits<T>::store(dr_pre);
    da[H + j] = db[H + j] = ElemTraits<T>::store(dz_pre);
    da[2 * H + j] = ElemTraits<T>::store(dn_pre);
    db[2 * H + j] = ElemTraits<T>::store(dn_pre * r);
    grad_h_prev[k] = ElemTraits<T>::store(g * z);
  });
}

template <typename T>
S<T>* mp(const Tensor& t) {
  return static_cast<S<T>*>(t.data_ptr());
}
template <typename T>
const S<T>* cp(const Tensor& t) {
  return static_cast<const S<T>*>(t.data_ptr());
}

// Runs kernel(args..., B, H) over the B * H units of `state` ([B, H]) on the current stream
// of its device.
template <typename... KernelArgs, typename... Args>
void launch_over_units(void (*kernel)(KernelArgs...), const Tensor& state, Args... args) {
  const int64_t B = state.size(0), H = state.size(1);
  DeviceGuard guard(state.device().index);
  cudaStream_t stream = current_cuda_stream(state.device().index);
  kernel<<<grid_blocks(B * H, kThreads), kThreads, 0, stream>>>(args..., B, H);
  BM_CUDA_CHECK_LAUNCH();
}

void lstm_forward_cuda(const Tensor& h, const Tensor& c, const Tensor& gates, const Tensor& c_prev) {
  BM_DISPATCH_FLOATING(gates.dtype(), "lstm_cell_pointwise", [&] {
    launch_over_units(lstm_forward_kernel<scalar_t>, c_prev, mp<scalar_t>(h), mp<scalar_t>(c), cp<scalar_t>(gates),
                      cp<scalar_t>(c_prev));
  });
}

void lstm_backward_cuda(const Tensor& grad_gates, const Tensor& grad_c_prev, const Tensor& grad_h,
                        const Tensor& grad_c, const Tensor& gates, const Tensor& c_prev, const Tensor& c) {
  BM_DISPATCH_FLOATING(gates.dtype(), "lstm_cell_pointwise_backward", [&] {
    launch_over_units(lstm_backward_kernel<scalar_t>, c_prev, mp<scalar_t>(grad_gates), mp<scalar_t>(grad_c_prev),
                      cp<scalar_t>(grad_h), cp<scalar_t>(grad_c), cp<scalar_t>(gates), cp<scalar_t>(c_prev),
                      cp<scalar_t>(c));
  });
}

void gru_forward_cuda(const Tensor& h, const Tensor& gi, const Tensor& gh, const Tensor& h_prev) {
  BM_DISPATCH_FLOATING(gi.dtype(), "gru_cell_pointwise", [&] {
    launch_over_units(gru_forward_kernel<scalar_t>, h_prev, mp<scalar_t>(h), cp<scalar_t>(gi), cp<scalar_t>(gh),
                      cp<scalar_t>(h_prev));
  });
}

void gru_backward_cuda(const Tensor& grad_gi, const Tensor& grad_gh, const Tensor& grad_h_prev, const Tensor& grad_h,
                       const Tensor& gi, const Tensor& gh, const Tensor& h_prev) {
  BM_DISPATCH_FLOATING(gi.dtype(), "gru_cell_pointwise_backward", [&] {
    launch_over_units(gru_backward_kernel<scalar_t>, h_prev, mp<scalar_t>(grad_gi), mp<scalar_t>(grad_gh),
                      mp<scalar_t>(grad_h_prev), cp<scalar_t>(grad_h), cp<scalar_t>(gi), cp<scalar_t>(gh),
                      cp<scalar_t>(h_prev));
  });
}

}  // namespace

BM_REGISTER_KERNEL(lstm_pointwise_kernel, CUDA, &lstm_forward_cuda);
BM_REGISTER_KERNEL(lstm_pointwise_backward_kernel, CUDA, &lstm_backward_cuda);
BM_REGISTER_KERNEL(gru_pointwise_kernel, CUDA, &gru_forward_cuda);
BM_REGISTER_KERNEL(gru_pointwise_backward_kernel, CUDA, &gru_backward_cuda);

}  // namespace bigmodel::cuda
