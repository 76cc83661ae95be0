// CPU loss kernels: class-index NLL forward/backward and the pointwise losses (L1, BCE,
// BCE with logits) with their input/target derivatives.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "core/ops/loss.h"
#include "kernels/cpu/loops.h"

namespace bigmodel::cpu {
namespace {

template <typename T>
void nll_forward_typed(const Tensor& loss, const Tensor& target_weight, const Tensor& valid, const Tensor& input,
                       const Tensor& target, const Tensor& weight, int64_t ignore_index) {
  using C = compute_t<T>;
  const int64_t n = input.size(0), classes = input.size(1), extra = input.size(2);
  const T* in = static_cast<const T*>(input.data_ptr());
  const int64_t* tgt = static_cast<const int64_t*>(target.data_ptr());
  const T* w = weight.defined() ? static_cast<const T*>(weight.data_ptr()) : nullptr;
  T* out = static_cast<T*>(loss.data_ptr());
  T* tw = static_cast<T*>(target_weight.data_ptr());
  T* ok = valid.defined() ? static_cast<T*>(valid.data_ptr()) : nullptr;
  const int64_t total = n * extra;
#pragma omp parallel for if (total > kParallelGrain)
  for (int64_t i = 0; i < total; ++i) {
    const int64_t t = tgt[i];
    if (t == ignore_index) {
      out[i] = tw[i] = static_cast<T>(C(0));
      if (ok) ok[i] = static_cast<T>(C(0));
      continue;
    }
    const int64_t b = i / extra, d = i % extra;
    const C wt = w ? static_cast<C>(w[t]) : C(1);
    out[i] = static_cast<T>(-wt * static_cast<C>(in[(b * classes + t) * extra + d]));
    tw[i] = static_cast<T>(wt);
    if (ok) ok[i] = static_cast<T>(C(1));
  }
}

void nll_forward_cpu(const Tensor& loss, const Tensor& target_weight, const Tensor& valid, const Tensor& input,
                     const Tensor& target, const Tensor& weight, int64_t ignore_index, const char* op) {
  // Validate first, serially: an exception must not leave an OpenMP region.
  const int64_t classes = input.size(1), total = target.numel();
  const int64_t* tgt = static_cast<const int64_t*>(target.data_ptr());
  for (int64_t i = 0; i < total; ++i) {
    const int64_t t = tgt[i];
    if (t != ignore_index && (t < 0 || t >= classes))
      throw IndexError(str_cat("[", op, "] target ", t, " is out of bounds for ", classes, " classes"));
  }
  BM_DISPATCH_FLOATING(input.dtype(), op, [&] {
    nll_forward_typed<scalar_t>(loss, target_weight, valid, input, target, weight, ignore_index);
  });
}

template <typename T>
void nll_backward_typed(const Tensor& grad_input, const Tensor& grad, const Tensor& target, const Tensor& weight,
                        int64_t ignore_index) {
  using C = compute_t<T>;
  const int64_t n = grad_input.size(0), classes = grad_input.size(1), extra = grad_input.size(2);
  std::memset(grad_input.data_ptr(), 0, grad_input.nbytes());  // zero bits are 0.0 in every float type
  const int64_t* tgt = static_cast<const int64_t*>(target.data_ptr());
  T* gi = static_cast<T*>(grad_input.data_ptr());
  const T* g = static_cast<const T*>(grad.data_ptr());
  const T* w = weight.defined() ? static_cast<const T*>(weight.data_ptr()) : nullptr;
  const int64_t total = n * extra;
#pragma omp parallel for if (total > kParallelGrain)
  for (int64_t i = 0; i < total; ++i) {
    const int64_t t = tgt[i];
    if (t == ignore_index) continue;
    const int64_t b = i / extra, d = i % extra;
    const C wt = w ? static_cast<C>(w[t]) : C(1);
    gi[(b * classes + t) * extra + d] = static_cast<T>(-wt * static_cast<C>(g[i]));
  }
}

void nll_backward_cpu(const Tensor& grad_input, const Tensor& grad, const Tensor& target, const Tensor& weight,
                      int64_t ignore_index) {
  BM_DISPATCH_FLOATING(grad_input.dtype(), "nll_loss_backward",
                       [&] { nll_backward_typed<scalar_t>(grad_input, grad, target, weight, ignore_index); });
}

// softplus(-x) = log(1 + exp(-x)), stable for large |x|.
template <typename C>
C softplus_neg(C x) {
  return std::log1p(std::exp(-std::fabs(x))) + std::max(-x, C(0));
}

template <typename C>
C bce_log(C v) {  // PyTorch clamps the logs at -100 so that 0 and 1 give finite losses
  return std::max(std::log(v), C(-100));
}

template <typename T>
void pointwise_typed(PointwiseLoss kind, const Tensor& out, const Tensor& input, const Tensor& target,
                     const Tensor& pos_weight) {
  using C = compute_t<T>;
  switch (kind) {
    case PointwiseLoss::L1:
      map_elements<T, T, T, T>(out, {&input, &target, &pos_weight}, [](T x, T y, T) {
        return static_cast<T>(std::fabs(static_cast<C>(x) - static_cast<C>(y)));
      });
      break;
    case PointwiseLoss::BCE: {
      std::atomic<bool> out_of_range{false};
      map_elements<T, T, T, T>(out, {&input, &target, &pos_weight}, [&out_of_range](T xv, T yv, T) {
        const C x = static_cast<C>(xv), y = static_cast<C>(yv);
        if (!(x >= C(0) && x <= C(1))) out_of_range.store(true, std::memory_order_relaxed);
        return static_cast<T>(-(y * bce_log(x) + (C(1) - y) * bce_log(C(1) - x)));
      });
      if (out_of_range.load())
        throw ValueError("[binary_cross_entropy] all elements of input should be between 0 and 1");
      break;
    }
    case PointwiseLoss::BCEWithLogits:
      map_elements<T, T, T, T>(out, {&input, &target, &pos_weight}, [](T xv, T yv, T pv) {
        const C x = static_cast<C>(xv), y = static_cast<C>(yv), pw = static_cast<C>(pv);
        return static_cast<T>((C(1) - y) * x + (C(1) + (pw - C(1)) * y) * softplus_neg(x));
      });
      break;
  }
}

template <typename T>
void pointwise_backward_typed(PointwiseLoss kind, bool wrt_target, const Tensor& grad, const Tensor& input,
                              const Tensor& target, const Tensor& pos_weight, const Tensor& grad_out) {
  using C = compute_t<T>;
  map_elements<T, T, T, T, T>(grad, {&input, &target, &pos_weight, &grad_out}, [kind, wrt_target](T xv, T yv, T pv, T gv) {
    const C x = static_cast<C>(xv), y = static_cast<C>(yv), pw = static_cast<C>(pv), g = static_cast<C>(gv);
    C d = 0;
    switch (kind) {
      case PointwiseLoss::L1: {
        const C diff = x - y;
        const C sign = static_cast<C>((diff > C(0)) - (diff < C(0)));
        d = wrt_target ? -sign : sign;
        break;
      }
      case PointwiseLoss::BCE:
        d = wrt_target ? bce_log(C(1) - x) - bce_log(x) : (x - y) / std::max((C(1) - x) * x, C(1e-12));
        break;
      case PointwiseLoss::BCEWithLogits: {
        const C scale = C(1) + (pw - C(1)) * y;  // pos_weight applies to the positive term
        d = wrt_target ? -x + (pw - C(1)) * softplus_neg(x)
                       : (C(1) - y) - scale / (C(1) + std::exp(x));  // sigmoid(-x) = 1 / (1 + e^x)
        break;
      }
    }
    return static_cast<T>(d * g);
  });
}

void pointwise_cpu(PointwiseLoss kind, const Tensor& out, const Tensor& input, const Tensor& target,
                   const Tensor& pos_weight) {
  BM_DISPATCH_FLOATING(out.dtype(), "loss", [&] { pointwise_typed<scalar_t>(kind, out, input, target, pos_weight); });
}

void pointwise_backward_cpu(PointwiseLoss kind, bool wrt_target, const Tensor& grad, const Tensor& input,
                            const Tensor& target, const Tensor& pos_weight, const Tensor& grad_out) {
  BM_DISPATCH_FLOATING(grad.dtype(), "loss_backward", [&] {
    pointwise_backward_typed<scalar_t>(kind, wrt_target, grad, input, target, pos_weight, grad_out);
  });
}

}  // namespace

BM_REGISTER_KERNEL(nll_forward_kernel, CPU, &nll_forward_cpu);
BM_REGISTER_KERNEL(nll_backward_kernel, CPU, &nll_backward_cpu);
BM_REGISTER_KERNEL(pointwise_loss_kernel, CPU, &pointwise_cpu);
BM_REGISTER_KERNEL(pointwise_loss_backward_kernel, CPU, &pointwise_backward_cpu);

}  // namespace bigmodel::cpu
