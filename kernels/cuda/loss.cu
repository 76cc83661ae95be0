// CUDA loss kernels (contracts in core/ops/loss.h, CPU twins in kernels/cpu/loss.cpp):
// class-index NLL forward/backward, the pointwise losses (L1, BCE, BCE with logits) and
// their derivatives, and the fused cross-entropy that never materialises probabilities
// (forward: online logsumexp per row; backward: softmax - target from the saved lse).
// Bad targets / BCE inputs set a device flag that the host reads after the launch (one
// stream sync) to raise the CPU's error class and message.
#include <optional>

#include "core/ops/loss.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/offset_calc.h"
#include "kernels/cuda/row_stats.cuh"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

template <typename T>
using St = typename ElemTraits<T>::storage;
template <typename T>
using Cm = typename ElemTraits<T>::wide;

template <typename S>
const S* cptr(const Tensor& t) {
  return t.defined() ? static_cast<const S*>(t.data_ptr()) : nullptr;
}
template <typename S>
S* mptr(const Tensor& t) {
  return t.defined() ? static_cast<S*>(t.data_ptr()) : nullptr;
}

// A device-side error report: flag[0] = 1 when set, flag[1] = the offending value (any
// one of them when several threads report).
class DeviceFlag {
 public:
  DeviceFlag(Device device, cudaStream_t stream) : stream_(stream) {
    buf_ = Tensor::empty({2}, DType::Int64, device);
    BM_CUDA_CHECK(cudaMemsetAsync(buf_.data_ptr(), 0, 2 * sizeof(int64_t), stream_));
  }
  int64_t* ptr() const { return static_cast<int64_t*>(buf_.data_ptr()); }
  // Waits for the stream; returns whether the flag was set and the reported value.
  bool read(int64_t* value) const {
    int64_t host[2] = {0, 0};
    BM_CUDA_CHECK(
        cudaMemcpyAsync(host, buf_.data_ptr(), sizeof(host), cudaMemcpyDeviceToHost, stream_));
    BM_CUDA_CHECK(cudaStreamSynchronize(stream_));
    *value = host[1];
    return host[0] != 0;
  }

 private:
  Tensor buf_;
  cudaStream_t stream_;
};

__device__ __forceinline__ void raise_flag(int64_t* flag, int64_t value) {
  flag[1] = value;  // 64-bit stores are atomic: the host reads one reporter's value
  flag[0] = 1;
}

void check_targets(const DeviceFlag& flag, const char* op, int64_t classes) {
  int64_t bad = 0;
  if (flag.read(&bad))
    throw IndexError(
        str_cat("[", op, "] target ", bad, " is out of bounds for ", classes, " classes"));
}

// ---------------------------------------------------------------- nll
template <typename T>
__global__ void nll_forward_kernel_cuda(St<T>* __restrict__ loss, St<T>* __restrict__ tw,
                                        St<T>* __restrict__ ok, const St<T>* __restrict__ in,
                                        const int64_t* __restrict__ tgt,
                                        const St<T>* __restrict__ w, int64_t total, int64_t classes,
                                        int64_t extra, int64_t ignore_index,
                                        int64_t* __restrict__ flag) {
  using C = Cm<T>;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t t = tgt[i];
    const bool ignored = t == ignore_index;
    if (!ignored && (t < 0 || t >= classes)) raise_flag(flag, t);
    if (ignored || t < 0 || t >= classes) {
      loss[i] = tw[i] = ElemTraits<T>::store(C(0));
      if (ok) ok[i] = ElemTraits<T>::store(C(0));
      continue;
    }
    const int64_t b = i / extra, d = i - b * extra;
    const C wt = w ? ElemTraits<T>::load(w[t]) : C(1);
    loss[i] = ElemTraits<T>::store(-wt * ElemTraits<T>::load(in[(b * classes + t) * extra + d]));
    tw[i] = ElemTraits<T>::store(wt);
    if (ok) ok[i] = ElemTraits<T>::store(C(1));
  }
}

template <typename T>
__global__ void nll_backward_kernel_cuda(St<T>* __restrict__ gi, const St<T>* __restrict__ g,
                                         const int64_t* __restrict__ tgt,
                                         const St<T>* __restrict__ w, int64_t total,
                                         int64_t classes, int64_t extra, int64_t ignore_index) {
  using C = Cm<T>;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t t = tgt[i];
    if (t == ignore_index || t < 0 || t >= classes) continue;  // the forward rejected bad targets
    const int64_t b = i / extra, d = i - b * extra;
    const C wt = w ? ElemTraits<T>::load(w[t]) : C(1);
    gi[(b * classes + t) * extra + d] = ElemTraits<T>::store(-wt * ElemTraits<T>::load(g[i]));
  }
}

void nll_forward_cuda(const Tensor& loss, const Tensor& target_weight, const Tensor& valid,
                      const Tensor& input, const Tensor& target, const Tensor& weight,
                      int64_t ignore_index, const char* op) {
  const int64_t classes = input.size(1), extra = input.size(2), total = target.numel();
  DeviceGuard guard(input.device().index);
  cudaStream_t stream = current_cuda_stream(input.device().index);
  DeviceFlag flag(input.device(), stream);
  BM_DISPATCH_FLOATING(input.dtype(), op, [&] {
    using S = St<scalar_t>;
    nll_forward_kernel_cuda<scalar_t><<<grid_blocks(total, 256), 256, 0, stream>>>(
        mptr<S>(loss), mptr<S>(target_weight), mptr<S>(valid), cptr<S>(input),
        cptr<int64_t>(target), cptr<S>(weight), total, classes, extra, ignore_index, flag.ptr());
    BM_CUDA_CHECK_LAUNCH();
  });
  check_targets(flag, op, classes);
}

void nll_backward_cuda(const Tensor& grad_input, const Tensor& grad, const Tensor& target,
                       const Tensor& weight, int64_t ignore_index) {
  const int64_t classes = grad_input.size(1), extra = grad_input.size(2), total = target.numel();
  DeviceGuard guard(grad_input.device().index);
  cudaStream_t stream = current_cuda_stream(grad_input.device().index);
  BM_CUDA_CHECK(
      cudaMemsetAsync(grad_input.data_ptr(), 0, grad_input.nbytes(), stream));  // 0 bits = 0.0
  BM_DISPATCH_FLOATING(grad_input.dtype(), "nll_loss_backward", [&] {
    using S = St<scalar_t>;
    nll_backward_kernel_cuda<scalar_t><<<grid_blocks(total, 256), 256, 0, stream>>>(
        mptr<S>(grad_input), cptr<S>(grad), cptr<int64_t>(target), cptr<S>(weight), total, classes,
        extra, ignore_index);
    BM_CUDA_CHECK_LAUNCH();
  });
}

// ---------------------------------------------------------------- pointwise losses
template <typename C>
__device__ __forceinline__ C softplus_neg(C x) {  // log(1 + exp(-x)), stable for large |x|
  return log1p(exp(-fabs(x))) + (-x > C(0) ? -x : C(0));
}

template <typename C>
__device__ __forceinline__ C bce_log(C v) {  // PyTorch clamps the logs at -100
  const C l = log(v);
  return l > C(-100) ? l : C(-100);
}

template <typename C>
__device__ __forceinline__ C pointwise_value(PointwiseLoss kind, C x, C y, C pw) {
  switch (kind) {
    case PointwiseLoss::L1:
      return fabs(x - y);
    case PointwiseLoss::BCE:
      return -(y * bce_log(x) + (C(1) - y) * bce_log(C(1) - x));
    default:
      return (C(1) - y) * x + (C(1) + (pw - C(1)) * y) * softplus_neg(x);
  }
}

template <typename C>
__device__ __forceinline__ C pointwise_derivative(PointwiseLoss kind, bool wrt_target, C x, C y,
                                                  C pw) {
  switch (kind) {
    case PointwiseLoss::L1: {
      const C diff = x - y;
      const C sign = static_cast<C>((diff > C(0)) - (diff < C(0)));
      return wrt_target ? -sign : sign;
    }
    case PointwiseLoss::BCE: {
      if (wrt_target) return bce_log(C(1) - x) - bce_log(x);
      const C den = (C(1) - x) * x;
      return (x - y) / (den > C(1e-12) ? den : C(1e-12));
    }
    default: {
      const C scale = C(1) + (pw - C(1)) * y;  // pos_weight applies to the positive term
      return wrt_target ? -x + (pw - C(1)) * softplus_neg(x) : (C(1) - y) - scale / (C(1) + exp(x));
    }
  }
}

template <typename T>
__global__ void pointwise_loss_kernel_cuda(PointwiseLoss kind, St<T>* __restrict__ out,
                                           const St<T>* __restrict__ in,
                                           const St<T>* __restrict__ tgt,
                                           const St<T>* __restrict__ pw, OffsetCalc<4> calc,
                                           int64_t n, int64_t* __restrict__ flag) {
  using C = Cm<T>;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    int64_t off[4];
    calc.offsets(i, off);
    const C x = ElemTraits<T>::load(in[off[1]]), y = ElemTraits<T>::load(tgt[off[2]]);
    if (kind == PointwiseLoss::BCE && !(x >= C(0) && x <= C(1))) raise_flag(flag, 1);
    out[off[0]] =
        ElemTraits<T>::store(pointwise_value(kind, x, y, ElemTraits<T>::load(pw[off[3]])));
  }
}

template <typename T>
__global__ void pointwise_loss_backward_kernel_cuda(
    PointwiseLoss kind, bool wrt_target, St<T>* __restrict__ grad, const St<T>* __restrict__ in,
    const St<T>* __restrict__ tgt, const St<T>* __restrict__ pw, const St<T>* __restrict__ gout,
    OffsetCalc<5> calc, int64_t n) {
  using C = Cm<T>;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    int64_t off[5];
    calc.offsets(i, off);
    const C d =
        pointwise_derivative(kind, wrt_target, ElemTraits<T>::load(in[off[1]]),
                             ElemTraits<T>::load(tgt[off[2]]), ElemTraits<T>::load(pw[off[3]]));
    grad[off[0]] = ElemTraits<T>::store(d * ElemTraits<T>::load(gout[off[4]]));
  }
}

void pointwise_cuda(PointwiseLoss kind, const Tensor& out, const Tensor& input,
                    const Tensor& target, const Tensor& pos_weight) {
  const int64_t n = out.numel();
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  std::optional<DeviceFlag> flag;  // only BCE validates its input (and pays the sync)
  if (kind == PointwiseLoss::BCE) flag.emplace(out.device(), stream);
  const Tensor* ts[4] = {&out, &input, &target, &pos_weight};
  const OffsetCalc<4> calc = make_offset_calc<4>(ts, "loss");
  BM_DISPATCH_FLOATING(out.dtype(), "loss", [&] {
    using S = St<scalar_t>;
    pointwise_loss_kernel_cuda<scalar_t><<<grid_blocks(n, 256), 256, 0, stream>>>(
        kind, mptr<S>(out), cptr<S>(input), cptr<S>(target), cptr<S>(pos_weight), calc, n,
        flag ? flag->ptr() : nullptr);
    BM_CUDA_CHECK_LAUNCH();
  });
  int64_t unused = 0;
  if (flag && flag->read(&unused))
    throw ValueError("[binary_cross_entropy] all elements of input should be between 0 and 1");
}

void pointwise_backward_cuda(PointwiseLoss kind, bool wrt_target, const Tensor& grad,
                             const Tensor& input, const Tensor& target, const Tensor& pos_weight,
                             const Tensor& grad_out) {
  const int64_t n = grad.numel();
  DeviceGuard guard(grad.device().index);
  cudaStream_t stream = current_cuda_stream(grad.device().index);
  const Tensor* ts[5] = {&grad, &input, &target, &pos_weight, &grad_out};
  const OffsetCalc<5> calc = make_offset_calc<5>(ts, "loss_backward");
  BM_DISPATCH_FLOATING(grad.dtype(), "loss_backward", [&] {
    using S = St<scalar_t>;
    pointwise_loss_backward_kernel_cuda<scalar_t><<<grid_blocks(n, 256), 256, 0, stream>>>(
        kind, wrt_target, mptr<S>(grad), cptr<S>(input), cptr<S>(target), cptr<S>(pos_weight),
        cptr<S>(grad_out), calc, n);
    BM_CUDA_CHECK_LAUNCH();
  });
}

// ---------------------------------------------------------------- fused cross-entropy
// wsum[0] = sum of the class weights (one block).
template <typename S>
__global__ void __launch_bounds__(1024, 1)
    weight_sum_kernel(S* __restrict__ wsum, const S* __restrict__ w, int64_t classes) {
  __shared__ Sum2<S> slots[32];
  Sum2<S> acc = Sum2<S>::identity();
  for (int64_t c = threadIdx.x; c < classes; c += blockDim.x) acc.a += w[c];
  acc = block_combine(acc, slots);
  if (threadIdx.x == 0) wsum[0] = acc.a;
}

// One row per warp (classes <= 1024) or per block: the online max + sum of exponentials
// (and, with label smoothing, sum_c w[c] x[c]) in one read of the row. Ignored and
// rejected rows skip the read.
template <typename T, int V, bool BLOCK>
__global__ void __launch_bounds__(BLOCK ? 1024 : 32 * kRowsPerBlock, 1)
    cross_entropy_forward_kernel_cuda(St<T>* __restrict__ loss, St<T>* __restrict__ tw,
                                      Cm<T>* __restrict__ lse, const St<T>* __restrict__ x,
                                      const int64_t* __restrict__ target,
                                      const Cm<T>* __restrict__ w, const Cm<T>* __restrict__ wsum,
                                      int64_t rows, int64_t classes, int64_t ignore_index,
                                      double eps, int64_t* __restrict__ flag) {
  using C = Cm<T>;
  using P = RowPack<St<T>, V>;
  __shared__ MaxSum<C> slots[32];
  __shared__ Sum2<C> slots2[32];
  const RowWalk<BLOCK> walk;
  const int64_t packs = classes / V;
  const bool smooth = eps > 0;
  for (int64_t row = walk.first(); row < rows; row += walk.stride()) {
    const int64_t t = target[row];  // the same for every thread of the row: uniform branches
    if (t == ignore_index || t < 0 || t >= classes) {
      if (walk.tid() == 0) {
        if (t != ignore_index) raise_flag(flag, t);
        loss[row] = tw[row] = ElemTraits<T>::store(C(0));
        lse[row] = C(0);
      }
      continue;
    }
    const P* xr = reinterpret_cast<const P*>(x + row * classes);
    MaxSum<C> acc = MaxSum<C>::identity();
    Sum2<C> wx = Sum2<C>::identity();  // a: sum_c w[c] x[c]
    for (int64_t p = walk.tid(); p < packs; p += walk.step()) {
      const P v = xr[p];
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const C xv = ElemTraits<T>::load(v.v[j]);
        acc.add(xv);
        if (smooth) wx.a += (w ? w[p * V + j] : C(1)) * xv;
      }
    }
    acc = walk.combine(acc, slots);
    if (smooth) wx = walk.combine(wx, slots2);
    if (walk.tid() == 0) {
      const C log_s = dev_log(acc.s);
      const C wt = w ? w[t] : C(1);
      // (x_t - m) - log s, as log_softmax computes it: the shifted value keeps its precision.
      C value = -wt * ((ElemTraits<T>::load(x[row * classes + t]) - acc.m) - log_s);
      if (smooth) {
        const C W = wsum ? wsum[0] : static_cast<C>(classes);
        const C smooth_term = -(wx.a - acc.m * W) + log_s * W;  // -sum_c w[c] (x[c] - lse)
        value = static_cast<C>(1.0 - eps) * value +
                static_cast<C>(eps / static_cast<double>(classes)) * smooth_term;
      }
      loss[row] = ElemTraits<T>::store(value);
      tw[row] = ElemTraits<T>::store(wt);
      lse[row] = acc.m + log_s;
    }
  }
}

// grad[i, c] = g_i * (A p - [c == t] a - s w[c]) with a = (1 - eps) w[t], s = eps / C,
// A = a + s * wsum: elementwise over V-element packs (a pack never straddles rows).
template <typename T, int V>
__global__ void cross_entropy_backward_kernel_cuda(
    St<T>* __restrict__ gx, const Cm<T>* __restrict__ grad_rows, const St<T>* __restrict__ x,
    const int64_t* __restrict__ target, const Cm<T>* __restrict__ w, const Cm<T>* __restrict__ lse,
    const Cm<T>* __restrict__ wsum, int64_t rows, int64_t classes, int64_t ignore_index,
    double eps) {
  using C = Cm<T>;
  using P = RowPack<St<T>, V>;
  const int64_t packs = rows * classes / V;
  const P* xp = reinterpret_cast<const P*>(x);
  P* gp = reinterpret_cast<P*>(gx);
  const C s = static_cast<C>(eps / static_cast<double>(classes));
  const C W = wsum ? wsum[0] : static_cast<C>(classes);
  for (int64_t p = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; p < packs;
       p += int64_t{gridDim.x} * blockDim.x) {
    const int64_t e0 = p * V, row = e0 / classes, c0 = e0 - row * classes;
    const int64_t t = target[row];
    P o;
    if (t == ignore_index || t < 0 || t >= classes) {
#pragma unroll
      for (int j = 0; j < V; ++j) o.v[j] = ElemTraits<T>::store(C(0));
    } else {
      const C g = grad_rows[row], l = lse[row];
      const C a = g * static_cast<C>(1.0 - eps) * (w ? w[t] : C(1));
      const C gs = g * s;
      const C A = a + gs * W;
      const P v = xp[p];
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const int64_t c = c0 + j;
        const C prob = dev_exp(ElemTraits<T>::load(v.v[j]) - l);
        C d = A * prob - gs * (w ? w[c] : C(1));
        if (c == t) d -= a;
        o.v[j] = ElemTraits<T>::store(d);
      }
    }
    gp[p] = o;
  }
}

template <typename T, int V, bool BLOCK>
void ce_forward_launch(const Tensor& loss, const Tensor& tw, const Tensor& lse, const Tensor& wsum,
                       const Tensor& input, const Tensor& target, const Tensor& weight,
                       int64_t ignore_index, double eps, int64_t* flag, cudaStream_t stream) {
  using C = Cm<T>;
  const int64_t rows = input.size(0), classes = input.size(1);
  const unsigned grid = capped_blocks(BLOCK ? rows : (rows + kRowsPerBlock - 1) / kRowsPerBlock);
  const int threads = BLOCK ? row_block_threads(classes / V) : 32 * kRowsPerBlock;
  cross_entropy_forward_kernel_cuda<T, V, BLOCK><<<grid, threads, 0, stream>>>(
      mptr<St<T>>(loss), mptr<St<T>>(tw), mptr<C>(lse), cptr<St<T>>(input), cptr<int64_t>(target),
      cptr<C>(weight), cptr<C>(wsum), rows, classes, ignore_index, eps, flag);
  BM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void ce_forward_typed(const Tensor& loss, const Tensor& tw, const Tensor& lse, const Tensor& wsum,
                      const Tensor& input, const Tensor& target, const Tensor& weight,
                      int64_t ignore_index, double eps, int64_t* flag, cudaStream_t stream) {
  using C = Cm<T>;
  constexpr int V = 16 / sizeof(St<T>);
  const int64_t classes = input.size(1);
  if (wsum.defined()) {
    weight_sum_kernel<C><<<1, 1024, 0, stream>>>(mptr<C>(wsum), cptr<C>(weight), classes);
    BM_CUDA_CHECK_LAUNCH();
  }
  const bool vec = classes % V == 0 && aligned_to(input.data_ptr(), 16);
  if (classes <= 1024) {
    if (vec)
      ce_forward_launch<T, V, false>(loss, tw, lse, wsum, input, target, weight, ignore_index, eps,
                                     flag, stream);
    else
      ce_forward_launch<T, 1, false>(loss, tw, lse, wsum, input, target, weight, ignore_index, eps,
                                     flag, stream);
  } else {
    if (vec)
      ce_forward_launch<T, V, true>(loss, tw, lse, wsum, input, target, weight, ignore_index, eps,
                                    flag, stream);
    else
      ce_forward_launch<T, 1, true>(loss, tw, lse, wsum, input, target, weight, ignore_index, eps,
                                    flag, stream);
  }
}

void cross_entropy_fused_forward_cuda(const Tensor& loss, const Tensor& target_weight,
                                      const Tensor& lse, const Tensor& wsum, const Tensor& input,
                                      const Tensor& target, const Tensor& weight,
                                      int64_t ignore_index, double label_smoothing,
                                      const char* op) {
  DeviceGuard guard(input.device().index);
  cudaStream_t stream = current_cuda_stream(input.device().index);
  DeviceFlag flag(input.device(), stream);
  BM_DISPATCH_FLOATING(input.dtype(), op, [&] {
    ce_forward_typed<scalar_t>(loss, target_weight, lse, wsum, input, target, weight, ignore_index,
                               label_smoothing, flag.ptr(), stream);
  });
  check_targets(flag, op, input.size(1));
}

template <typename T, int V>
void ce_backward_launch(const Tensor& grad_input, const Tensor& grad_rows, const Tensor& input,
                        const Tensor& target, const Tensor& weight, const Tensor& lse,
                        const Tensor& wsum, int64_t ignore_index, double eps, cudaStream_t stream) {
  using C = Cm<T>;
  const int64_t rows = input.size(0), classes = input.size(1);
  cross_entropy_backward_kernel_cuda<T, V>
      <<<grid_blocks(rows * classes / V, 256), 256, 0, stream>>>(
          mptr<St<T>>(grad_input), cptr<C>(grad_rows), cptr<St<T>>(input), cptr<int64_t>(target),
          cptr<C>(weight), cptr<C>(lse), cptr<C>(wsum), rows, classes, ignore_index, eps);
  BM_CUDA_CHECK_LAUNCH();
}

void cross_entropy_fused_backward_cuda(const Tensor& grad_input, const Tensor& grad_rows,
                                       const Tensor& input, const Tensor& target,
                                       const Tensor& weight, const Tensor& lse, const Tensor& wsum,
                                       int64_t ignore_index, double label_smoothing) {
  DeviceGuard guard(input.device().index);
  cudaStream_t stream = current_cuda_stream(input.device().index);
  BM_DISPATCH_FLOATING(input.dtype(), "cross_entropy_backward", [&] {
    constexpr int V = 16 / sizeof(St<scalar_t>);
    if (input.size(1) % V == 0 && aligned_to(input.data_ptr(), 16) &&
        aligned_to(grad_input.data_ptr(), 16))
      ce_backward_launch<scalar_t, V>(grad_input, grad_rows, input, target, weight, lse, wsum,
                                      ignore_index, label_smoothing, stream);
    else
      ce_backward_launch<scalar_t, 1>(grad_input, grad_rows, input, target, weight, lse, wsum,
                                      ignore_index, label_smoothing, stream);
  });
}

}  // namespace

BM_REGISTER_KERNEL(nll_forward_kernel, CUDA, &nll_forward_cuda);
BM_REGISTER_KERNEL(nll_backward_kernel, CUDA, &nll_backward_cuda);
BM_REGISTER_KERNEL(pointwise_loss_kernel, CUDA, &pointwise_cuda);
BM_REGISTER_KERNEL(pointwise_loss_backward_kernel, CUDA, &pointwise_backward_cuda);
BM_REGISTER_KERNEL(cross_entropy_fused_forward_kernel, CUDA, &cross_entropy_fused_forward_cuda);
BM_REGISTER_KERNEL(cross_entropy_fused_backward_kernel, CUDA, &cross_entropy_fused_backward_cuda);

}  // namespace bigmodel::cuda
