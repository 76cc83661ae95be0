// The float32 fast paths of unary_vec.h. Work is split into chunks of kChunk elements (one
// OpenMP task each on big tensors); GELU's polynomial parts are plain loops the compiler
// vectorises, its tanh goes through vec_math.h's 8-wide tanh on a chunk-sized buffer.
#include "kernels/cpu/unary_vec.h"

#include <algorithm>

#include "kernels/cpu/loops.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/functors.h"

namespace bigmodel::cpu {
namespace {

constexpr int64_t kChunk = 2048;

bool contiguous_f32(std::initializer_list<const Tensor*> ts, int64_t numel) {
  for (const Tensor* t : ts)
    if (t->dtype() != DType::Float32 || !t->is_contiguous() || t->numel() != numel) return false;
  return true;
}

// Runs body(begin, end) over [0, n) in chunks, in parallel when n is large.
template <typename Body>
void for_chunks(int64_t n, Body body) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  if (n < kParallelGrain) {
    for (int64_t c = 0; c < chunks; ++c) body(c * kChunk, std::min(n, (c + 1) * kChunk));
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) body(c * kChunk, std::min(n, (c + 1) * kChunk));
}

using K = fn::GeluConst<float>;

// tanh(sqrt(2/pi) (x + 0.044715 x^3)) for x[0, len) into t.
void gelu_inner_tanh(const float* x, float* t, int64_t len) {
  for (int64_t i = 0; i < len; ++i) t[i] = K::kSqrt2OverPi * (x[i] + K::kCubic * x[i] * x[i] * x[i]);
  vec::tanh_f32(t, t, len);
}

}  // namespace

bool unary_vec_f32(UnaryOp op, const Tensor& out, const Tensor& in) {
  if (op != UnaryOp::Exp && op != UnaryOp::Tanh && op != UnaryOp::Sigmoid && op != UnaryOp::GeluTanh) return false;
  const int64_t n = out.numel();
  if (!vec::has_avx2_fma() || !contiguous_f32({&out, &in}, n)) return false;
  const float* x = in.data<float>();
  float* y = out.data<float>();
  for_chunks(n, [&](int64_t b, int64_t e) {
    switch (op) {
      case UnaryOp::Exp: vec::exp_f32(x + b, y + b, e - b); break;
      case UnaryOp::Tanh: vec::tanh_f32(x + b, y + b, e - b); break;
      case UnaryOp::Sigmoid: vec::sigmoid_f32(x + b, y + b, e - b); break;
      default: {  // GeluTanh: 0.5 x (1 + tanh(inner)); y may alias x, so tanh goes to a buffer
        alignas(32) float t[kChunk];
        gelu_inner_tanh(x + b, t, e - b);
        for (int64_t i = b; i < e; ++i) y[i] = 0.5f * x[i] * (1.0f + t[i - b]);
      }
    }
  });
  return true;
}

bool unary_backward_vec_f32(UnaryOp op, const Tensor& grad_in, const Tensor& grad, const Tensor& saved) {
  if (op != UnaryOp::GeluTanh) return false;  // tanh/sigmoid/exp backward use the output: no libm
  const int64_t n = grad_in.numel();
  if (!vec::has_avx2_fma() || !contiguous_f32({&grad_in, &grad, &saved}, n)) return false;
  const float* g = grad.data<float>();
  const float* x = saved.data<float>();
  float* gi = grad_in.data<float>();
  for_chunks(n, [&](int64_t b, int64_t e) {
    alignas(32) float t[kChunk];
    gelu_inner_tanh(x + b, t, e - b);
    for (int64_t i = b; i < e; ++i) {
      const float xi = x[i], ti = t[i - b];
      const float dinner = K::kSqrt2OverPi * (1.0f + 3.0f * K::kCubic * xi * xi);
      gi[i] = g[i] * (0.5f * (1.0f + ti) + 0.5f * xi * (1.0f - ti * ti) * dinner);
    }
  });
  return true;
}

}  // namespace bigmodel::cpu
