// Per-element math of the multi-tensor optimizer kernels (core/ops/fused_optim.h): the SGD and
// Adam/AdamW updates and the norm / scale / unscale element steps, written once for
// kernels/cpu/fused_optim.cpp and kernels/cuda/fused_optim.cu, so both backends compute every
// element with the same operations in the same order and agree bit for bit.
#pragma once
#include <cmath>
#include <type_traits>

#include "core/dtype.h"
#include "core/half.h"
#include "core/ops/fused_optim.h"
#include "kernels/functors.h"

namespace bigmodel::fused {

// ------------------------------------------------------------------ correctly rounded arithmetic
// One rounding per operation and never an FMA, as the per-tensor optimizers (one kernel per
// operation) round: on the device the round-to-nearest intrinsics, which nvcc does not contract;
// on the host plain operators, which GCC contracts after inlining only where the target has FMA
// (the build has no -march / -mfma flags: x86-64's baseline has none; keep it that way, or build
// with -ffp-contract=off). tests/cpp/test_fused_optim_math.cpp fails if they get fused.
// T: float or double.
template <typename T>
BM_HOST_DEVICE T mul_rn(T a, T b) {
#ifdef __CUDA_ARCH__
  if constexpr (std::is_same_v<T, float>) return __fmul_rn(a, b);
  else return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
template <typename T>
BM_HOST_DEVICE T add_rn(T a, T b) {
#ifdef __CUDA_ARCH__
  if constexpr (std::is_same_v<T, float>) return __fadd_rn(a, b);
  else return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
template <typename T>
BM_HOST_DEVICE T div_rn(T a, T b) {
#ifdef __CUDA_ARCH__
  if constexpr (std::is_same_v<T, float>) return __fdiv_rn(a, b);
  else return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
template <typename T>
BM_HOST_DEVICE T sqrt_rn(T a) {
#ifdef __CUDA_ARCH__
  if constexpr (std::is_same_v<T, float>) return __fsqrt_rn(a);
  else return __dsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}

// ------------------------------------------------------------------ parameter dtypes
// The types of a fused SGD/Adam step: compute (= state and master) type T and parameter /
// gradient storage type P.
template <typename T, typename P>
struct StepTypes {
  using compute = T;
  using param = P;
};

// Calls body(StepTypes<T, P>{}) for parameters of dtype dt (checked by the front end):
// Float64 -> (double, double), Float32 -> (float, float), Float16 / BFloat16 -> (float, half).
template <typename F>
void dispatch_step_types(DType dt, F&& body) {
  switch (dt) {
    case DType::Float64: return body(StepTypes<double, double>{});
    case DType::Float16: return body(StepTypes<float, Half>{});
    case DType::BFloat16: return body(StepTypes<float, BFloat16>{});
    default: return body(StepTypes<float, float>{});
  }
}

// ------------------------------------------------------------------ SGD
// T: the compute (= state) type, float for half parameters. The Python numbers are rounded to T
// once, as the per-tensor path turns them into 0-d tensors of the state dtype.
template <typename T>
struct SGDConsts {
  T wd, mom, damp, neg_lr;  // damp = 1 - dampening, neg_lr = -lr
  bool use_wd, use_mom, nesterov, maximize;

  static SGDConsts from(const FusedSGDOptions& o) {
    return {static_cast<T>(o.weight_decay), static_cast<T>(o.momentum), static_cast<T>(1.0 - o.dampening),
            static_cast<T>(-o.lr), o.weight_decay != 0.0, o.momentum != 0.0, o.nesterov, o.maximize};
  }
};

// The update of element i: returns the new parameter. buf[i] is its momentum buffer, touched only
// when k.use_mom (buf may be null otherwise): read unless first (the buffer's first step starts
// it as the update), then written. (An array and an index rather than a reference: the CPU loop
// then loads the buffer only under the momentum branch, which GCC unswitches and vectorises.)
template <typename T, typename Index>
BM_HOST_DEVICE T sgd_update(T p, T g, T* buf, Index i, bool first, const SGDConsts<T>& k) {
  T d = k.maximize ? -g : g;
  if (k.use_wd) d = add_rn(d, mul_rn(p, k.wd));
  if (k.use_mom) {
    const T b = first ? d : add_rn(mul_rn(buf[i], k.mom), mul_rn(d, k.damp));
    buf[i] = b;
    d = k.nesterov ? add_rn(d, mul_rn(b, k.mom)) : b;
  }
  return add_rn(p, mul_rn(d, k.neg_lr));
}

// ------------------------------------------------------------------ Adam / AdamW
template <typename T>
struct AdamConsts {
  T b1, one_minus_b1, b2, one_minus_b2, eps, wd, decay;  // decay = 1 - lr * weight_decay (AdamW)
  bool use_wd, decoupled, amsgrad, maximize;

  static AdamConsts from(const FusedAdamOptions& o) {
    return {static_cast<T>(o.beta1),
            static_cast<T>(1.0 - o.beta1),
            static_cast<T>(o.beta2),
            static_cast<T>(1.0 - o.beta2),
            static_cast<T>(o.eps),
            static_cast<T>(o.weight_decay),
            static_cast<T>(1.0 - o.lr * o.weight_decay),
            o.weight_decay != 0.0,
            o.decoupled,
            o.amsgrad,
            o.maximize};
  }
};

// The update of element i: returns the new parameter; m[i] and v[i] are updated, and vmax[i]
// (touched only when k.amsgrad) keeps the running max of v. step_size = -lr / (1 - beta1^t) and
// bc2 = sqrt(1 - beta2^t), both rounded to T (AdamStepScalars).
template <typename T, typename Index>
BM_HOST_DEVICE T adam_update(T param, T g, T* m, T* v, T* vmax, Index i, T step_size, T bc2, const AdamConsts<T>& k) {
  T grad = k.maximize ? -g : g;
  if (k.use_wd) {
    if (k.decoupled) param = mul_rn(param, k.decay);
    else grad = add_rn(grad, mul_rn(param, k.wd));
  }
  const T mi = add_rn(mul_rn(m[i], k.b1), mul_rn(grad, k.one_minus_b1));
  const T vi = add_rn(mul_rn(v[i], k.b2), mul_rn(mul_rn(grad, grad), k.one_minus_b2));
  m[i] = mi;
  v[i] = vi;
  T second = vi;
  if (k.amsgrad) {
    second = fn::maximum(vmax[i], vi);  // NaN wins, the old one if both
    vmax[i] = second;
  }
  const T denom = add_rn(div_rn(sqrt_rn(second), bc2), k.eps);
  return add_rn(param, mul_rn(div_rn(mi, denom), step_size));
}

// ------------------------------------------------------------------ norm, scale, unscale
// The total norm sums in double per chunk; the chunks combine in a backend-specific order, so
// the norm is deterministic per backend but not bit-matched across them: plain operators here
// (the device may fuse x * x + acc).
enum class NormKind : int { Inf, Two, One, P };

inline NormKind norm_kind(double p) {
  return std::isinf(p) ? NormKind::Inf : p == 2.0 ? NormKind::Two : p == 1.0 ? NormKind::One : NormKind::P;
}

// acc after element x (in double): max |x| (NaN wins), or the sum of |x|^p.
BM_HOST_DEVICE double norm_accumulate(double acc, double x, NormKind kind, double p) {
  const double a = std::fabs(x);
  switch (kind) {
    case NormKind::Inf: return fn::maximum(acc, a);
    case NormKind::Two: return acc + a * a;
    case NormKind::One: return acc + a;
    default: return acc + std::pow(a, p);
  }
}

// The norm from the combined accumulator.
BM_HOST_DEVICE double norm_finish(double acc, NormKind kind, double p) {
  if (kind == NormKind::Two) return std::sqrt(acc);
  if (kind == NormKind::P) return std::pow(acc, 1.0 / p);
  return acc;
}

// GradScaler's unscale of one element (C: float for half grads, the grads' dtype otherwise):
// returns x * inv and notes a non-finite x.
template <typename C>
BM_HOST_DEVICE C unscale_value(C x, C inv, bool& nonfinite) {
  nonfinite |= !std::isfinite(x);
  return mul_rn(x, inv);
}

}  // namespace bigmodel::fused
