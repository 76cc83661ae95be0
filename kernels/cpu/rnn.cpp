// CPU kernels of the fused LSTM / GRU cell steps (forward and backward). Rows of the batch
// are independent, so they split across threads; each row is one pass over its gates.
// Half types compute in float; float32 LSTM rows run 8 lanes at a time with the AVX2
// sigmoid/tanh of vec_math.h where the CPU has them (scalar libm calls were ~13 % of a step).
#include <cmath>
#include <type_traits>

#include "core/ops/rnn.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/vec_math.h"

namespace bigmodel::cpu {
namespace {

template <typename C>
inline C sigmoid_of(C x) {
  return C(1) / (C(1) + std::exp(-x));
}

template <typename T>
const T* cptr(const Tensor& t) {
  return static_cast<const T*>(t.data_ptr());
}
template <typename T>
T* mptr(const Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

#ifdef BM_VEC_X86
// Eight lanes of one LSTM row: the same formulas as the scalar loops below.
struct LstmForward8 {
  BM_TARGET_AVX2 void operator()(const float* gi, const float* gf, const float* gg, const float* go, const float* cp,
                                 float* h, float* c) const {
    const __m256 i = vec::sigmoid8(_mm256_loadu_ps(gi)), f = vec::sigmoid8(_mm256_loadu_ps(gf));
    const __m256 g = vec::tanh8(_mm256_loadu_ps(gg)), o = vec::sigmoid8(_mm256_loadu_ps(go));
    const __m256 cn = _mm256_fmadd_ps(f, _mm256_loadu_ps(cp), _mm256_mul_ps(i, g));
    _mm256_storeu_ps(c, cn);
    _mm256_storeu_ps(h, _mm256_mul_ps(o, vec::tanh8(cn)));
  }
};

struct LstmBackward8 {
  BM_TARGET_AVX2 void operator()(const float* gi, const float* gf, const float* gg, const float* go, const float* cp,
                                 const float* cc, const float* dh, const float* dc, float* dgi, float* dgf,
                                 float* dgg, float* dgo, float* dcp) const {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 i = vec::sigmoid8(_mm256_loadu_ps(gi)), f = vec::sigmoid8(_mm256_loadu_ps(gf));
    const __m256 g = vec::tanh8(_mm256_loadu_ps(gg)), o = vec::sigmoid8(_mm256_loadu_ps(go));
    const __m256 tc = vec::tanh8(_mm256_loadu_ps(cc));
    const __m256 gh = _mm256_loadu_ps(dh);
    const __m256 dct = _mm256_fmadd_ps(_mm256_mul_ps(gh, o), _mm256_fnmadd_ps(tc, tc, one), _mm256_loadu_ps(dc));
    _mm256_storeu_ps(dgi, _mm256_mul_ps(_mm256_mul_ps(dct, g), _mm256_mul_ps(i, _mm256_sub_ps(one, i))));
    _mm256_storeu_ps(dgf, _mm256_mul_ps(_mm256_mul_ps(dct, _mm256_loadu_ps(cp)),
                                        _mm256_mul_ps(f, _mm256_sub_ps(one, f))));
    _mm256_storeu_ps(dgg, _mm256_mul_ps(_mm256_mul_ps(dct, i), _mm256_fnmadd_ps(g, g, one)));
    _mm256_storeu_ps(dgo, _mm256_mul_ps(_mm256_mul_ps(gh, tc), _mm256_mul_ps(o, _mm256_sub_ps(one, o))));
    _mm256_storeu_ps(dcp, _mm256_mul_ps(dct, f));
  }
};

// One row [0, H) in blocks of 8. The tail runs through zero-padded copies, so every element
// gets the same arithmetic wherever it sits.
BM_TARGET_AVX2 void lstm_forward_row_avx2(const float* gr, const float* cp, float* h, float* c, int64_t H) {
  const LstmForward8 block;
  int64_t j = 0;
  for (; j + 8 <= H; j += 8) block(gr + j, gr + H + j, gr + 2 * H + j, gr + 3 * H + j, cp + j, h + j, c + j);
  if (j == H) return;
  alignas(32) float b[7][8] = {};  // gate i, f, g, o, c_prev | h, c
  for (int64_t k = 0; j + k < H; ++k) {
    for (int q = 0; q < 4; ++q) b[q][k] = gr[q * H + j + k];
    b[4][k] = cp[j + k];
  }
  block(b[0], b[1], b[2], b[3], b[4], b[5], b[6]);
  for (int64_t k = 0; j + k < H; ++k) {
    h[j + k] = b[5][k];
    c[j + k] = b[6][k];
  }
}

BM_TARGET_AVX2 void lstm_backward_row_avx2(const float* gr, const float* cp, const float* cc, const float* dh,
                                           const float* dc, float* dgr, float* dcp, int64_t H) {
  const LstmBackward8 block;
  int64_t j = 0;
  for (; j + 8 <= H; j += 8)
    block(gr + j, gr + H + j, gr + 2 * H + j, gr + 3 * H + j, cp + j, cc + j, dh + j, dc + j, dgr + j,
          dgr + H + j, dgr + 2 * H + j, dgr + 3 * H + j, dcp + j);
  if (j == H) return;
  alignas(32) float b[13][8] = {};  // gate i, f, g, o, c_prev, c, dh, dc | dgate i, f, g, o, dc_prev
  for (int64_t k = 0; j + k < H; ++k) {
    for (int q = 0; q < 4; ++q) b[q][k] = gr[q * H + j + k];
    b[4][k] = cp[j + k];
    b[5][k] = cc[j + k];
    b[6][k] = dh[j + k];
    b[7][k] = dc[j + k];
  }
  block(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12]);
  for (int64_t k = 0; j + k < H; ++k) {
    for (int q = 0; q < 4; ++q) dgr[q * H + j + k] = b[8 + q][k];
    dcp[j + k] = b[12][k];
  }
}
#endif

template <typename T>
void lstm_forward_typed(const Tensor& h, const Tensor& c, const Tensor& gates, const Tensor& c_prev) {
  using C = compute_t<T>;
  const int64_t B = c_prev.size(0), H = c_prev.size(1);
  const T* g = cptr<T>(gates);
  const T* cp = cptr<T>(c_prev);
  T* ho = mptr<T>(h);
  T* co = mptr<T>(c);
#ifdef BM_VEC_X86
  if constexpr (std::is_same_v<T, float>) {
    if (vec::has_avx2_fma()) {
      parallel_for(B, B * H * 4 > kParallelGrain,
                   [&](int64_t b) { lstm_forward_row_avx2(g + b * 4 * H, cp + b * H, ho + b * H, co + b * H, H); });
      return;
    }
  }
#endif
  parallel_for(B, B * H * 4 > kParallelGrain, [&](int64_t b) {
    const T* gr = g + b * 4 * H;
    for (int64_t j = 0; j < H; ++j) {
      const C i = sigmoid_of(static_cast<C>(gr[j]));
      const C f = sigmoid_of(static_cast<C>(gr[H + j]));
      const C gg = std::tanh(static_cast<C>(gr[2 * H + j]));
      const C o = sigmoid_of(static_cast<C>(gr[3 * H + j]));
      const C cn = f * static_cast<C>(cp[b * H + j]) + i * gg;
      co[b * H + j] = static_cast<T>(cn);
      ho[b * H + j] = static_cast<T>(o * std::tanh(cn));
    }
  });
}

template <typename T>
void lstm_backward_typed(const Tensor& grad_gates, const Tensor& grad_c_prev, const Tensor& grad_h,
                         const Tensor& grad_c, const Tensor& gates, const Tensor& c_prev, const Tensor& c) {
  using C = compute_t<T>;
  const int64_t B = c_prev.size(0), H = c_prev.size(1);
  const T *g = cptr<T>(gates), *cp = cptr<T>(c_prev), *cc = cptr<T>(c);
  const T *dh = cptr<T>(grad_h), *dc = cptr<T>(grad_c);
  T* dg = mptr<T>(grad_gates);
  T* dcp = mptr<T>(grad_c_prev);
#ifdef BM_VEC_X86
  if constexpr (std::is_same_v<T, float>) {
    if (vec::has_avx2_fma()) {
      parallel_for(B, B * H * 4 > kParallelGrain, [&](int64_t b) {
        const int64_t k = b * H;
        lstm_backward_row_avx2(g + 4 * k, cp + k, cc + k, dh + k, dc + k, dg + 4 * k, dcp + k, H);
      });
      return;
    }
  }
#endif
  parallel_for(B, B * H * 4 > kParallelGrain, [&](int64_t b) {
    const T* gr = g + b * 4 * H;
    T* dgr = dg + b * 4 * H;
    for (int64_t j = 0; j < H; ++j) {
      const int64_t k = b * H + j;
      const C i = sigmoid_of(static_cast<C>(gr[j]));
      const C f = sigmoid_of(static_cast<C>(gr[H + j]));
      const C gg = std::tanh(static_cast<C>(gr[2 * H + j]));
      const C o = sigmoid_of(static_cast<C>(gr[3 * H + j]));
      // c is the forward output as stored (rounded for half types), which is what h saw.
      const C tc = std::tanh(static_cast<C>(cc[k]));
      const C gh = static_cast<C>(dh[k]);
      const C dct = static_cast<C>(dc[k]) + gh * o * (C(1) - tc * tc);  // total dL/dc
      dgr[j] = static_cast<T>(dct * gg * i * (C(1) - i));
      dgr[H + j] = static_cast<T>(dct * static_cast<C>(cp[k]) * f * (C(1) - f));
      dgr[2 * H + j] = static_cast<T>(dct * i * (C(1) - gg * gg));
      dgr[3 * H + j] = static_cast<T>(gh * tc * o * (C(1) - o));
      dcp[k] = static_cast<T>(dct * f);
    }
  });
}

template <typename T>
void gru_forward_typed(const Tensor& h, const Tensor& gi, const Tensor& gh, const Tensor& h_prev) {
  using C = compute_t<T>;
  const int64_t B = h_prev.size(0), H = h_prev.size(1);
  const T *a = cptr<T>(gi), *bb = cptr<T>(gh), *hp = cptr<T>(h_prev);
  T* ho = mptr<T>(h);
  parallel_for(B, B * H * 3 > kParallelGrain, [&](int64_t b) {
    const T* ar = a + b * 3 * H;
    const T* br = bb + b * 3 * H;
    for (int64_t j = 0; j < H; ++j) {
      const C r = sigmoid_of(static_cast<C>(ar[j]) + static_cast<C>(br[j]));
      const C z = sigmoid_of(static_cast<C>(ar[H + j]) + static_cast<C>(br[H + j]));
      const C n = std::tanh(static_cast<C>(ar[2 * H + j]) + r * static_cast<C>(br[2 * H + j]));
      ho[b * H + j] = static_cast<T>((C(1) - z) * n + z * static_cast<C>(hp[b * H + j]));
    }
  });
}

template <typename T>
void gru_backward_typed(const Tensor& grad_gi, const Tensor& grad_gh, const Tensor& grad_h_prev,
                        const Tensor& grad_h, const Tensor& gi, const Tensor& gh, const Tensor& h_prev) {
  using C = compute_t<T>;
  const int64_t B = h_prev.size(0), H = h_prev.size(1);
  const T *a = cptr<T>(gi), *bb = cptr<T>(gh), *hp = cptr<T>(h_prev), *dh = cptr<T>(grad_h);
  T *da = mptr<T>(grad_gi), *db = mptr<T>(grad_gh), *dhp = mptr<T>(grad_h_prev);
  parallel_for(B, B * H * 3 > kParallelGrain, [&](int64_t b) {
    const T* ar = a + b * 3 * H;
    const T* br = bb + b * 3 * H;
    T* dar = da + b * 3 * H;
    T* dbr = db + b * 3 * H;
    for (int64_t j = 0; j < H; ++j) {
      const int64_t k = b * H + j;
      const C r = sigmoid_of(static_cast<C>(ar[j]) + static_cast<C>(br[j]));
      const C z = sigmoid_of(static_cast<C>(ar[H + j]) + static_cast<C>(br[H + j]));
      const C hn = static_cast<C>(br[2 * H + j]);
      const C n = std::tanh(static_cast<C>(ar[2 * H + j]) + r * hn);
      const C g = static_cast<C>(dh[k]);
      const C dn_pre = g * (C(1) - z) * (C(1) - n * n);  // dL/d(gi_n + r * gh_n)
      const C dr_pre = dn_pre * hn * r * (C(1) - r);
      const C dz_pre = g * (static_cast<C>(hp[k]) - n) * z * (C(1) - z);
      dar[j] = dbr[j] = static_cast<T>(dr_pre);
      dar[H + j] = dbr[H + j] = static_cast<T>(dz_pre);
      dar[2 * H + j] = static_cast<T>(dn_pre);
      dbr[2 * H + j] = static_cast<T>(dn_pre * r);
      dhp[k] = static_cast<T>(g * z);
    }
  });
}

void lstm_forward_cpu(const Tensor& h, const Tensor& c, const Tensor& gates, const Tensor& c_prev) {
  BM_DISPATCH_FLOATING(gates.dtype(), "lstm_cell_pointwise", [&] { lstm_forward_typed<scalar_t>(h, c, gates, c_prev); });
}
void lstm_backward_cpu(const Tensor& grad_gates, const Tensor& grad_c_prev, const Tensor& grad_h, const Tensor& grad_c,
                       const Tensor& gates, const Tensor& c_prev, const Tensor& c) {
  BM_DISPATCH_FLOATING(gates.dtype(), "lstm_cell_pointwise_backward", [&] {
    lstm_backward_typed<scalar_t>(grad_gates, grad_c_prev, grad_h, grad_c, gates, c_prev, c);
  });
}
void gru_forward_cpu(const Tensor& h, const Tensor& gi, const Tensor& gh, const Tensor& h_prev) {
  BM_DISPATCH_FLOATING(gi.dtype(), "gru_cell_pointwise", [&] { gru_forward_typed<scalar_t>(h, gi, gh, h_prev); });
}
void gru_backward_cpu(const Tensor& grad_gi, const Tensor& grad_gh, const Tensor& grad_h_prev, const Tensor& grad_h,
                      const Tensor& gi, const Tensor& gh, const Tensor& h_prev) {
  BM_DISPATCH_FLOATING(gi.dtype(), "gru_cell_pointwise_backward", [&] {
    gru_backward_typed<scalar_t>(grad_gi, grad_gh, grad_h_prev, grad_h, gi, gh, h_prev);
  });
}

}  // namespace

BM_REGISTER_KERNEL(lstm_pointwise_kernel, CPU, &lstm_forward_cpu);
BM_REGISTER_KERNEL(lstm_pointwise_backward_kernel, CPU, &lstm_backward_cpu);
BM_REGISTER_KERNEL(gru_pointwise_kernel, CPU, &gru_forward_cpu);
BM_REGISTER_KERNEL(gru_pointwise_backward_kernel, CPU, &gru_backward_cpu);

}  // namespace bigmodel::cpu
