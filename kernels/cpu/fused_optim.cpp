// CPU kernels of the multi-tensor optimizer ops (core/ops/fused_optim.h). The tensors are cut
// into fixed-size chunks and OpenMP runs over the chunk table, so a list of many small tensors
// and one huge tensor both spread over the threads. The per-element math is
// kernels/fused_optim_math.h (shared with the CUDA kernels): the SAME float operations in the
// SAME order as the per-tensor optimizers (one rounding per op of python/bigmodel/optim/*.py),
// so the fused and per-tensor paths agree bit for bit. (The build has no -march / -mfma flags,
// so nothing fuses a*b+c here; keep it that way.)
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/ops/fused_optim.h"
#include "kernels/fused_optim_math.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define BM_FUSED_X86 1
#endif

namespace bigmodel::cpu {
namespace {

constexpr int64_t kChunk = 16384;  // elements per task: 64 KiB of float per list

struct Chunk {
  int32_t tensor;
  int64_t begin, end;
};

std::vector<Chunk> make_chunks(const std::vector<Tensor>& tensors) {
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int64_t n = tensors[i].numel();
    for (int64_t b = 0; b < n; b += kChunk) chunks.push_back({static_cast<int32_t>(i), b, std::min(n, b + kChunk)});
  }
  return chunks;
}

int64_t total_numel(const std::vector<Tensor>& tensors) {
  int64_t n = 0;
  for (const Tensor& t : tensors) n += t.numel();
  return n;
}

// Runs body(chunk, index) over every chunk, in parallel when there is enough work.
template <typename F>
void for_each_chunk(const std::vector<Chunk>& chunks, int64_t work, F body) {
  const int64_t count = static_cast<int64_t>(chunks.size());
#pragma omp parallel for schedule(static) if (work > kChunk && count > 1)
  for (int64_t c = 0; c < count; ++c) body(chunks[c], c);
}

// ------------------------------------------------------------------ half parameters
// Float16/BFloat16 parameters run the float32 loops below on float copies of a sub-block
// (a few KiB on the stack, so the data stays in L1): grads widened exactly, the parameter
// widened from p or taken from the float32 master copy (updated in place), and the result
// rounded back into p. So the half path computes exactly what the float32 path computes on
// float(p), which is what the per-tensor loop does for half parameters.
constexpr int64_t kSub = 512;

// body(p_f, g_f, off, len) runs the float32 loop over elements [off, off + len) of tensor t,
// with p_f / g_f pointing at element 0 of the sub-block (state pointers are offset by off).
#ifdef BM_FUSED_X86
// 8 conversions per instruction, the same bits as Half/BFloat16's scalar conversions
// (round to nearest even; bfloat16 NaN made quiet as BFloat16::from_float does). Each returns
// how far it got; the scalar loops finish the tail.
__attribute__((target("avx2"))) int64_t widen_avx2(const BFloat16* src, float* dst, int64_t n) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j));
    _mm256_storeu_ps(dst + j, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
  }
  return j;
}
__attribute__((target("avx2"))) int64_t narrow_avx2(const float* src, BFloat16* dst, int64_t n) {
  const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
  const __m256i quiet = _mm256_set1_epi32(0x400000);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256i x = _mm256_castps_si256(_mm256_loadu_ps(src + j));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), one);
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(bias, lsb)), 16);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, abs_mask), inf);  // |x| > inf, as integers
    const __m256i r = _mm256_blendv_epi8(rounded, _mm256_srli_epi32(_mm256_or_si256(x, quiet), 16), nan);
    // 8 x u32 (< 2^16) -> 8 x u16: packus works per 128-bit lane, then gather qwords 0 and 2.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j), _mm256_castsi256_si128(packed));
  }
  return j;
}
__attribute__((target("avx2,f16c"))) int64_t widen_avx2(const Half* src, float* dst, int64_t n) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j))));
  return j;
}
__attribute__((target("avx2,f16c"))) int64_t narrow_avx2(const float* src, Half* dst, int64_t n) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + j), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  return j;
}

bool cpu_has_avx2_f16c() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  return has;
}
#endif

template <typename P>
void widen(const P* src, float* dst, int64_t n) {
  int64_t j = 0;
#ifdef BM_FUSED_X86
  if (cpu_has_avx2_f16c()) j = widen_avx2(src, dst, n);
#endif
  for (; j < n; ++j) dst[j] = static_cast<float>(src[j]);
}

template <typename P>
void narrow(const float* src, P* dst, int64_t n) {
  int64_t j = 0;
#ifdef BM_FUSED_X86
  if (cpu_has_avx2_f16c()) j = narrow_avx2(src, dst, n);
#endif
  for (; j < n; ++j) dst[j] = P(src[j]);
}

template <typename P, typename Body>
void half_blocks(P* p, const P* g, float* master, int64_t begin, int64_t end, Body body) {
  float pbuf[kSub], gbuf[kSub];
  for (int64_t off = begin; off < end; off += kSub) {
    const int64_t len = std::min(kSub, end - off);
    widen(g + off, gbuf, len);
    float* pf = master ? master + off : pbuf;
    if (!master) widen(p + off, pbuf, len);
    body(pf, gbuf, off, len);
    narrow(pf, p + off, len);
  }
}

template <typename P>
P* data_as(const Tensor& t) {
  return static_cast<P*>(t.data_ptr());
}

// ------------------------------------------------------------------ SGD
using fused::SGDConsts;

// Elements [0, n) of one tensor (pointers already offset); buf is null without momentum.
template <typename T>
void sgd_chunk(T* __restrict p, const T* __restrict g, T* __restrict buf, int64_t n, bool is_first,
               const SGDConsts<T>& k) {
  for (int64_t i = 0; i < n; ++i) p[i] = fused::sgd_update(p[i], g[i], buf, i, is_first, k);
}

// T: the compute (= state) type; P: the parameter/gradient storage type (T, or a half type with T = float).
template <typename T, typename P>
void sgd_typed(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& bufs,
               const std::vector<uint8_t>& first, const std::vector<Tensor>& masters, const FusedSGDOptions& o) {
  const SGDConsts<T> k = SGDConsts<T>::from(o);
  for_each_chunk(make_chunks(params), total_numel(params), [&](const Chunk& c, int64_t) {
    P* p = data_as<P>(params[c.tensor]);
    const P* g = data_as<const P>(grads[c.tensor]);
    T* buf = k.use_mom ? bufs[c.tensor].data<T>() : nullptr;
    const bool is_first = k.use_mom && first[c.tensor];
    if constexpr (std::is_same_v<T, P>) {
      sgd_chunk<T>(p + c.begin, g + c.begin, buf ? buf + c.begin : nullptr, c.end - c.begin, is_first, k);
    } else {
      float* master = masters.empty() ? nullptr : masters[c.tensor].data<float>();
      half_blocks<P>(p, g, master, c.begin, c.end, [&](float* pf, const float* gf, int64_t off, int64_t len) {
        sgd_chunk<float>(pf, gf, buf ? buf + off : nullptr, len, is_first, k);
      });
    }
  });
}

void fused_sgd_cpu(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                   const std::vector<Tensor>& bufs, const std::vector<uint8_t>& first,
                   const std::vector<Tensor>& masters, const FusedSGDOptions& o) {
  fused::dispatch_step_types(params[0].dtype(), [&](auto types) {
    using Types = decltype(types);
    sgd_typed<typename Types::compute, typename Types::param>(params, grads, bufs, first, masters, o);
  });
}

// ------------------------------------------------------------------ Adam / AdamW
using fused::AdamConsts;
enum class WeightDecay { None, L2, Decoupled };

// The loop of one chunk with the options as template arguments: they replace k's flags, so the
// compiler sees a branch-free body. (GCC does not vectorise std::sqrt without -fno-math-errno,
// so float32 also has an AVX loop below.)
template <typename T, WeightDecay WD, bool AMSGRAD, bool MAXIMIZE>
void adam_chunk(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, T* __restrict vm,
                int64_t begin, int64_t end, const AdamConsts<T>& opts, T step_size, T bc2) {
  AdamConsts<T> k = opts;
  k.use_wd = WD != WeightDecay::None;
  k.decoupled = WD == WeightDecay::Decoupled;
  k.amsgrad = AMSGRAD;
  k.maximize = MAXIMIZE;
  for (int64_t i = begin; i < end; ++i) p[i] = fused::adam_update(p[i], g[i], m, v, vm, i, step_size, bc2, k);
}

#ifdef BM_FUSED_X86
// The float32 loop, 8 elements per instruction: fused::adam_update written with AVX, every step
// its IEEE operation (mul, add, div, sqrt: correctly rounded; no FMA), so the bits are the same.
// (Keep the two in step: the Adam tests compare this path with the per-tensor loop bit for bit.)
// The tail (< 8 elements) is left to the scalar loop; returns where it stopped.
template <WeightDecay WD, bool AMSGRAD, bool MAXIMIZE>
__attribute__((target("avx"))) int64_t adam_chunk_avx(float* p, const float* g, float* m, float* v, float* vm,
                                                      int64_t begin, int64_t end, const AdamConsts<float>& k,
                                                      float step_size, float bc2) {
  const __m256 vb1 = _mm256_set1_ps(k.b1), vomb1 = _mm256_set1_ps(k.one_minus_b1), vb2 = _mm256_set1_ps(k.b2);
  const __m256 vomb2 = _mm256_set1_ps(k.one_minus_b2), veps = _mm256_set1_ps(k.eps), vwd = _mm256_set1_ps(k.wd);
  const __m256 vdecay = _mm256_set1_ps(k.decay), vstep = _mm256_set1_ps(step_size), vbc2 = _mm256_set1_ps(bc2);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    __m256 grad = _mm256_loadu_ps(g + i);
    if constexpr (MAXIMIZE) grad = _mm256_xor_ps(grad, sign);  // exact negation, as -g
    __m256 param = _mm256_loadu_ps(p + i);
    if constexpr (WD == WeightDecay::Decoupled) param = _mm256_mul_ps(param, vdecay);
    if constexpr (WD == WeightDecay::L2) grad = _mm256_add_ps(grad, _mm256_mul_ps(param, vwd));
    const __m256 mi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(m + i), vb1), _mm256_mul_ps(grad, vomb1));
    const __m256 vi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + i), vb2),
                                    _mm256_mul_ps(_mm256_mul_ps(grad, grad), vomb2));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    __m256 second = vi;
    if constexpr (AMSGRAD) {
      // fn::maximum(old, vi): maxps gives vi on NaN and at ties (as the scalar form); an old NaN wins.
      const __m256 old = _mm256_loadu_ps(vm + i);
      second = _mm256_blendv_ps(_mm256_max_ps(old, vi), old, _mm256_cmp_ps(old, old, _CMP_UNORD_Q));
      _mm256_storeu_ps(vm + i, second);
    }
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(second), vbc2), veps);
    _mm256_storeu_ps(p + i, _mm256_add_ps(param, _mm256_mul_ps(_mm256_div_ps(mi, denom), vstep)));
  }
  return i;
}

bool cpu_has_avx() {
  static const bool has = __builtin_cpu_supports("avx");
  return has;
}
#endif

template <typename T>
using AdamChunkFn = void (*)(T*, const T*, T*, T*, T*, int64_t, int64_t, const AdamConsts<T>&, T, T);

// The scalar loop, after the AVX loop for float32 where the CPU has AVX.
template <typename T, WeightDecay WD, bool AMSGRAD, bool MAXIMIZE>
void adam_chunk_best(T* p, const T* g, T* m, T* v, T* vm, int64_t begin, int64_t end, const AdamConsts<T>& k,
                     T step_size, T bc2) {
#ifdef BM_FUSED_X86
  if constexpr (std::is_same_v<T, float>) {
    if (cpu_has_avx()) begin = adam_chunk_avx<WD, AMSGRAD, MAXIMIZE>(p, g, m, v, vm, begin, end, k, step_size, bc2);
  }
#endif
  adam_chunk<T, WD, AMSGRAD, MAXIMIZE>(p, g, m, v, vm, begin, end, k, step_size, bc2);
}

template <typename T, WeightDecay WD>
AdamChunkFn<T> pick_adam_chunk(bool amsgrad, bool maximize) {
  if (amsgrad) return maximize ? &adam_chunk_best<T, WD, true, true> : &adam_chunk_best<T, WD, true, false>;
  return maximize ? &adam_chunk_best<T, WD, false, true> : &adam_chunk_best<T, WD, false, false>;
}

// The chunk loop compiled for k's options.
template <typename T>
AdamChunkFn<T> pick_adam_chunk(const AdamConsts<T>& k) {
  if (!k.use_wd) return pick_adam_chunk<T, WeightDecay::None>(k.amsgrad, k.maximize);
  if (!k.decoupled) return pick_adam_chunk<T, WeightDecay::L2>(k.amsgrad, k.maximize);
  return pick_adam_chunk<T, WeightDecay::Decoupled>(k.amsgrad, k.maximize);
}

// T: the compute (= state) type; P: the parameter/gradient storage type (T, or a half type with T = float).
template <typename T, typename P>
void adam_typed(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& m1,
                const std::vector<Tensor>& m2, const std::vector<Tensor>& vmax, const std::vector<Tensor>& masters,
                const std::vector<int64_t>& steps, const FusedAdamOptions& o) {
  const AdamConsts<T> k = AdamConsts<T>::from(o);
  const AdamChunkFn<T> run = pick_adam_chunk(k);
  for_each_chunk(make_chunks(params), total_numel(params), [&](const Chunk& c, int64_t) {
    const AdamStepScalars s = adam_step_scalars(o, steps[c.tensor]);
    T* vm = o.amsgrad ? vmax[c.tensor].data<T>() : nullptr;
    T* m = m1[c.tensor].data<T>();
    T* v = m2[c.tensor].data<T>();
    const T step_size = static_cast<T>(s.step_size), bc2 = static_cast<T>(s.bias_correction2_sqrt);
    if constexpr (std::is_same_v<T, P>) {
      run(params[c.tensor].data<T>(), grads[c.tensor].data<T>(), m, v, vm, c.begin, c.end, k, step_size, bc2);
    } else {
      float* master = masters.empty() ? nullptr : masters[c.tensor].data<float>();
      half_blocks<P>(data_as<P>(params[c.tensor]), data_as<const P>(grads[c.tensor]), master, c.begin, c.end,
                     [&](float* pf, const float* gf, int64_t off, int64_t len) {
                       // The chunk loop indexes from 0 here: shift the state pointers to the sub-block.
                       run(pf, gf, m + off, v + off, vm ? vm + off : nullptr, 0, len, k, step_size, bc2);
                     });
    }
  });
}

void fused_adam_cpu(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                    const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                    const std::vector<Tensor>& max_exp_avg_sqs, const std::vector<Tensor>& masters,
                    const std::vector<int64_t>& steps, const FusedAdamOptions& o) {
  fused::dispatch_step_types(params[0].dtype(), [&](auto types) {
    using Types = decltype(types);
    adam_typed<typename Types::compute, typename Types::param>(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs,
                                                               masters, steps, o);
  });
}

// ------------------------------------------------------------------ norm and scale
using fused::NormKind;

// The accumulator of elements [begin, end): the kind is a template argument so each loop is
// branch-free.
template <NormKind K, typename T>
double chunk_norm(const T* x, int64_t begin, int64_t end, double p) {
  using C = compute_t<T>;
  double acc = 0.0;
  for (int64_t i = begin; i < end; ++i)
    acc = fused::norm_accumulate(acc, static_cast<double>(static_cast<C>(x[i])), K, p);
  return acc;
}

// One partial per chunk (double sums, or the max |x|), combined in chunk order: the result
// does not depend on the thread count.
template <typename T>
void norm_typed(const Tensor& out, const std::vector<Tensor>& tensors, double p) {
  using C = compute_t<T>;
  const std::vector<Chunk> chunks = make_chunks(tensors);
  std::vector<double> partial(chunks.size(), 0.0);
  const NormKind kind = fused::norm_kind(p);
  for_each_chunk(chunks, total_numel(tensors), [&](const Chunk& c, int64_t ci) {
    const T* x = tensors[c.tensor].data<T>();
    switch (kind) {
      case NormKind::Inf: partial[ci] = chunk_norm<NormKind::Inf>(x, c.begin, c.end, p); break;
      case NormKind::Two: partial[ci] = chunk_norm<NormKind::Two>(x, c.begin, c.end, p); break;
      case NormKind::One: partial[ci] = chunk_norm<NormKind::One>(x, c.begin, c.end, p); break;
      case NormKind::P: partial[ci] = chunk_norm<NormKind::P>(x, c.begin, c.end, p); break;
    }
  });
  double total = 0.0;
  for (double v : partial) total = kind == NormKind::Inf ? fn::maximum(total, v) : total + v;
  *out.data<T>() = static_cast<T>(static_cast<C>(fused::norm_finish(total, kind, p)));
}

void fused_norm_cpu(const Tensor& out, const std::vector<Tensor>& tensors, double p) {
  BM_DISPATCH_FLOATING(out.dtype(), "fused_norm", [&] { norm_typed<scalar_t>(out, tensors, p); });
}

template <typename T>
void mul_typed(const std::vector<Tensor>& tensors, const Tensor& scale) {
  using C = compute_t<T>;
  const C s = static_cast<C>(*scale.data<T>());
  for_each_chunk(make_chunks(tensors), total_numel(tensors), [&](const Chunk& c, int64_t) {
    T* x = tensors[c.tensor].data<T>();
    for (int64_t i = c.begin; i < c.end; ++i) x[i] = static_cast<T>(fused::mul_rn(static_cast<C>(x[i]), s));
  });
}

void fused_mul_cpu(const std::vector<Tensor>& tensors, const Tensor& scale) {
  BM_DISPATCH_FLOATING(tensors[0].dtype(), "fused_mul_", [&] { mul_typed<scalar_t>(tensors, scale); });
}

// GradScaler's unscale: one pass that multiplies and checks. Each chunk notes a non-finite
// element in its own flag (no shared writes in the parallel loop); found_inf is set after.
template <typename T>
void unscale_typed(const std::vector<Tensor>& grads, const Tensor& found_inf, const Tensor& inv_scale) {
  using C = compute_t<T>;
  // float32 for half grads (PyTorch's opmath), the grads' own dtype otherwise.
  const C inv = static_cast<C>(*inv_scale.data<float>());
  const std::vector<Chunk> chunks = make_chunks(grads);
  std::vector<uint8_t> bad(chunks.size(), 0);
  for_each_chunk(chunks, total_numel(grads), [&](const Chunk& c, int64_t ci) {
    T* x = grads[c.tensor].data<T>();
    bool nonfinite = false;
    for (int64_t i = c.begin; i < c.end; ++i)
      x[i] = static_cast<T>(fused::unscale_value(static_cast<C>(x[i]), inv, nonfinite));
    bad[ci] = nonfinite;
  });
  if (std::find(bad.begin(), bad.end(), uint8_t{1}) != bad.end()) *found_inf.data<float>() = 1.0f;
}

void fused_unscale_cpu(const std::vector<Tensor>& grads, const Tensor& found_inf, const Tensor& inv_scale) {
  BM_DISPATCH_FLOATING(grads[0].dtype(), "fused_unscale_", [&] { unscale_typed<scalar_t>(grads, found_inf, inv_scale); });
}

}  // namespace

BM_REGISTER_KERNEL(fused_unscale_kernel, CPU, &fused_unscale_cpu);
BM_REGISTER_KERNEL(fused_sgd_kernel, CPU, &fused_sgd_cpu);
BM_REGISTER_KERNEL(fused_adam_kernel, CPU, &fused_adam_cpu);
BM_REGISTER_KERNEL(fused_norm_kernel, CPU, &fused_norm_cpu);
BM_REGISTER_KERNEL(fused_mul_kernel, CPU, &fused_mul_cpu);

}  // namespace bigmodel::cpu
