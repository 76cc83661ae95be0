// CPU GEMM for the matmul family: OpenBLAS sgemm/dgemm for float32/float64 (strided and
// transposed operands go to BLAS as they are), float16/bfloat16 through float32 sgemm,
// and a plain loop for integers. Batches are looped here; broadcast batches have stride 0.
// Also linear_kernel: the same GEMM with bias / activation / aux applied in one output pass.
#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/ops/linalg.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/functors.h"

namespace bigmodel::cpu {
namespace {

// Below this many multiply-adds OpenBLAS runs one thread, so we parallelise over batches
// instead; above it we leave the threads to OpenBLAS (avoids oversubscription).
constexpr int64_t kSmallGemm = 64 * 64 * 64;

// How row-major BLAS can read a rows x cols matrix with element strides (rs, cs) in place:
// NoTrans with ld = rs when columns are contiguous, Trans with ld = cs when rows are.
struct BlasLayout {
  bool ok = false;
  bool trans = false;
  int64_t ld = 0;
};

BlasLayout blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  const int64_t r1 = std::max<int64_t>(rows, 1), c1 = std::max<int64_t>(cols, 1);
  if (cols == 1 || cs == 1) {
    int64_t ld = rows == 1 ? c1 : rs;
    if (ld >= c1 && ld <= INT_MAX) return {true, false, ld};
  }
  if (rows == 1 || rs == 1) {
    int64_t ld = cols == 1 ? r1 : cs;
    if (ld >= r1 && ld <= INT_MAX) return {true, true, ld};
  }
  return {};
}

// Element offsets of every batch of a tensor whose leading dims are the batch dims.
std::vector<int64_t> batch_offsets(const Tensor& t) {
  const int64_t nb = t.dim() - 2;
  int64_t total = 1;
  for (int64_t d = 0; d < nb; ++d) total *= t.size(d);
  std::vector<int64_t> offs(total, 0);
  std::vector<int64_t> idx(nb, 0);
  int64_t cur = 0;
  for (int64_t i = 0; i < total; ++i) {
    offs[i] = cur;
    for (int64_t d = nb - 1; d >= 0; --d) {  // odometer step
      cur += t.stride(d);
      if (++idx[d] < t.size(d)) break;
      cur -= t.stride(d) * t.size(d);
      idx[d] = 0;
    }
  }
  return offs;
}

// One strided rows x cols matrix, read as C (float for half types).
template <typename T, typename C>
void pack(const T* src, int64_t rows, int64_t cols, int64_t rs, int64_t cs, C* dst) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[i * cols + j] = static_cast<C>(static_cast<compute_t<T>>(src[i * rs + j * cs]));
}

void blas_gemm(bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A,
              lda, B, ldb, 0.0f, C, N);
}
void blas_gemm(bool ta, bool tb, int M, int N, int K, const double* A, int lda, const double* B, int ldb, double* C) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0, A,
              lda, B, ldb, 0.0, C, N);
}

struct GemmShape {
  int64_t M, N, K;
  int64_t ars, acs, brs, bcs;  // element strides of the matrices
};

// float / double: straight to BLAS when the layout allows, else through a packed copy.
template <typename T>
void gemm_blas_one(const GemmShape& s, const T* a, const T* b, T* c, const BlasLayout& la, const BlasLayout& lb) {
  std::vector<T> abuf, bbuf;
  const T* A = a;
  const T* B = b;
  BlasLayout use_a = la, use_b = lb;
  if (!la.ok) {
    abuf.resize(s.M * s.K);
    pack<T, T>(a, s.M, s.K, s.ars, s.acs, abuf.data());
    A = abuf.data();
    use_a = {true, false, std::max<int64_t>(s.K, 1)};
  }
  if (!lb.ok) {
    bbuf.resize(s.K * s.N);
    pack<T, T>(b, s.K, s.N, s.brs, s.bcs, bbuf.data());
    B = bbuf.data();
    use_b = {true, false, std::max<int64_t>(s.N, 1)};
  }
  blas_gemm(use_a.trans, use_b.trans, static_cast<int>(s.M), static_cast<int>(s.N), static_cast<int>(s.K), A,
            static_cast<int>(use_a.ld), B, static_cast<int>(use_b.ld), c);
}

// float16 / bfloat16 operands as float32, sgemm into C (M x N float32).
template <typename T>
void gemm_half_to_float(const GemmShape& s, const T* a, const T* b, float* C) {
  std::vector<float> A(s.M * s.K), B(s.K * s.N);
  pack<T, float>(a, s.M, s.K, s.ars, s.acs, A.data());
  pack<T, float>(b, s.K, s.N, s.brs, s.bcs, B.data());
  blas_gemm(false, false, static_cast<int>(s.M), static_cast<int>(s.N), static_cast<int>(s.K), A.data(),
            static_cast<int>(std::max<int64_t>(s.K, 1)), B.data(), static_cast<int>(std::max<int64_t>(s.N, 1)), C);
}

// float16 / bfloat16: convert both operands to float32, sgemm, round back.
template <typename T>
void gemm_half_one(const GemmShape& s, const T* a, const T* b, T* c) {
  std::vector<float> C(s.M * s.N);
  gemm_half_to_float<T>(s, a, b, C.data());
  for (int64_t i = 0; i < s.M * s.N; ++i) c[i] = static_cast<T>(C[i]);
}

// Integers: i-k-j loop (streams rows of b and c); unsigned arithmetic wraps on overflow
// like PyTorch's integer matmul instead of being undefined.
template <typename T>
void gemm_int_rows(const GemmShape& s, const T* a, const T* b, T* c, int64_t row_begin, int64_t row_end) {
  std::vector<uint64_t> acc(s.N);
  for (int64_t i = row_begin; i < row_end; ++i) {
    std::fill(acc.begin(), acc.end(), 0);
    for (int64_t k = 0; k < s.K; ++k) {
      const uint64_t aik = static_cast<uint64_t>(static_cast<int64_t>(a[i * s.ars + k * s.acs]));
      const T* brow = b + k * s.brs;
      for (int64_t j = 0; j < s.N; ++j) acc[j] += aik * static_cast<uint64_t>(static_cast<int64_t>(brow[j * s.bcs]));
    }
    for (int64_t j = 0; j < s.N; ++j) c[i * s.N + j] = static_cast<T>(static_cast<int64_t>(acc[j]));
  }
}

template <typename T>
void gemm_typed(const Tensor& out, const Tensor& a, const Tensor& b) {
  const int64_t nd = out.dim();
  GemmShape s{a.size(nd - 2), b.size(nd - 1), a.size(nd - 1),
              a.stride(nd - 2), a.stride(nd - 1), b.stride(nd - 2), b.stride(nd - 1)};
  const int64_t batches = out.numel() / std::max<int64_t>(s.M * s.N, 1);
  if (out.numel() == 0) return;
  T* c = out.data<T>();
  if (s.K == 0) {  // an empty sum: zeros (all-zero bits are zero for every dtype)
    std::memset(static_cast<void*>(c), 0, out.nbytes());
    return;
  }
  BM_CHECK_VALUE(s.M <= INT_MAX && s.N <= INT_MAX && s.K <= INT_MAX, "matmul", "matrix dims ", s.M, "x", s.K,
                 " @ ", s.K, "x", s.N, " exceed the BLAS int range");
  const std::vector<int64_t> aoff = batch_offsets(a), boff = batch_offsets(b);
  const T* ap = a.data<T>();
  const T* bp = b.data<T>();
  const int64_t work = s.M * s.N * s.K;
  const bool batch_parallel = batches > 1 && work <= kSmallGemm;

  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    const BlasLayout la = blas_layout(s.M, s.K, s.ars, s.acs), lb = blas_layout(s.K, s.N, s.brs, s.bcs);
#pragma omp parallel for schedule(static) if (batch_parallel)
    for (int64_t i = 0; i < batches; ++i) gemm_blas_one<T>(s, ap + aoff[i], bp + boff[i], c + i * s.M * s.N, la, lb);
  } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
#pragma omp parallel for schedule(static) if (batch_parallel)
    for (int64_t i = 0; i < batches; ++i) gemm_half_one<T>(s, ap + aoff[i], bp + boff[i], c + i * s.M * s.N);
  } else {
    // Integers have no threaded library under them: split rows of every batch over threads.
    const int64_t tasks = batches * s.M;
#pragma omp parallel for schedule(static) if (work * batches > kSmallGemm)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t i = t / s.M, row = t % s.M;
      gemm_int_rows<T>(s, ap + aoff[i], bp + boff[i], c + i * s.M * s.N, row, row + 1);
    }
  }
}

void gemm_cpu(const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (out.dtype()) {
    case DType::Float32: gemm_typed<float>(out, a, b); break;
    case DType::Float64: gemm_typed<double>(out, a, b); break;
    case DType::Float16: gemm_typed<Half>(out, a, b); break;
    case DType::BFloat16: gemm_typed<BFloat16>(out, a, b); break;
    case DType::Int32: gemm_typed<int32_t>(out, a, b); break;
    case DType::Int64: gemm_typed<int64_t>(out, a, b); break;
    default:
      throw DTypeError(str_cat("[matmul] not implemented for ", dtype_name(out.dtype())));
  }
}

// ---- linear_kernel ------------------------------------------------------------------------

// One row of linear_kernel's output pass in compute type S (float, or double for float64):
// pre = src + bias; aux = pre; out = act(pre). src may alias out. pre and t are N-element
// scratch rows; the tanh GELU goes through the vectorised tanh (as the unary gelu op does).
template <typename T, typename S>
void linear_row(const S* src, const T* bias, T* out, T* aux, int64_t N, LinearAct act, S* pre, S* t) {
  for (int64_t j = 0; j < N; ++j) pre[j] = src[j] + (bias ? static_cast<S>(static_cast<compute_t<T>>(bias[j])) : S(0));
  if (aux)
    for (int64_t j = 0; j < N; ++j) aux[j] = static_cast<T>(pre[j]);
  switch (act) {
    case LinearAct::None:
      for (int64_t j = 0; j < N; ++j) out[j] = static_cast<T>(pre[j]);
      break;
    case LinearAct::ReLU:
      for (int64_t j = 0; j < N; ++j) out[j] = static_cast<T>(fn::relu(pre[j]));
      break;
    case LinearAct::GELU:
      for (int64_t j = 0; j < N; ++j) out[j] = static_cast<T>(fn::gelu(pre[j]));
      break;
    case LinearAct::GELUTanh:
      if constexpr (std::is_same_v<S, float>) {
        using K = fn::GeluConst<float>;
        for (int64_t j = 0; j < N; ++j) t[j] = K::kSqrt2OverPi * (pre[j] + K::kCubic * pre[j] * pre[j] * pre[j]);
        vec::tanh_f32(t, t, N);
        for (int64_t j = 0; j < N; ++j) out[j] = static_cast<T>(0.5f * pre[j] * (1.0f + t[j]));
      } else {
        for (int64_t j = 0; j < N; ++j) out[j] = static_cast<T>(fn::gelu_tanh(pre[j]));
      }
      break;
  }
}

// out = act(x @ w^T + bias): the GEMM writes out (float32 / float64) or a float32 buffer
// (half types), then one pass over the rows adds the bias, writes aux and applies act, while
// each row is still in cache. Saves the separate add's allocation and extra full passes.
template <typename T>
void linear_typed(const Tensor& out, const Tensor& aux, const Tensor& x, const Tensor& w, const Tensor& bias,
                  LinearAct act) {
  using S = std::conditional_t<std::is_same_v<T, double>, double, float>;
  // op(B) = w^T: K x N with strides (w.stride(1), w.stride(0)).
  const GemmShape s{x.size(0), w.size(0), x.size(1), x.stride(0), x.stride(1), w.stride(1), w.stride(0)};
  BM_CHECK_VALUE(s.M <= INT_MAX && s.N <= INT_MAX && s.K <= INT_MAX, "linear", "matrix dims ", s.M, "x", s.K,
                 " @ ", s.K, "x", s.N, " exceed the BLAS int range");
  T* o = out.data<T>();
  std::vector<float> cbuf;  // the float32 product of half inputs
  const S* src = nullptr;
  if constexpr (std::is_same_v<T, S>) {
    if (s.K == 0) std::memset(static_cast<void*>(o), 0, out.nbytes());
    else gemm_blas_one<T>(s, x.data<T>(), w.data<T>(), o, blas_layout(s.M, s.K, s.ars, s.acs),
                          blas_layout(s.K, s.N, s.brs, s.bcs));
    src = o;
  } else {
    cbuf.assign(s.M * s.N, 0.0f);
    if (s.K > 0) gemm_half_to_float<T>(s, x.data<T>(), w.data<T>(), cbuf.data());
    src = cbuf.data();
  }
  const T* b = bias.defined() ? bias.data<T>() : nullptr;
  T* a = aux.defined() ? aux.data<T>() : nullptr;
#pragma omp parallel if (s.M * s.N > 32768)
  {
    std::vector<S> pre(s.N), t(act == LinearAct::GELUTanh ? s.N : 0);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < s.M; ++i)
      linear_row<T, S>(src + i * s.N, b, o + i * s.N, a ? a + i * s.N : nullptr, s.N, act, pre.data(), t.data());
  }
}

void linear_cpu(const Tensor& out, const Tensor& aux, const Tensor& x, const Tensor& w, const Tensor& bias,
                LinearAct act) {
  switch (out.dtype()) {
    case DType::Float32: linear_typed<float>(out, aux, x, w, bias, act); break;
    case DType::Float64: linear_typed<double>(out, aux, x, w, bias, act); break;
    case DType::Float16: linear_typed<Half>(out, aux, x, w, bias, act); break;
    case DType::BFloat16: linear_typed<BFloat16>(out, aux, x, w, bias, act); break;
    default: throw DTypeError(str_cat("[linear] not implemented for ", dtype_name(out.dtype())));
  }
}

}  // namespace

BM_REGISTER_KERNEL(gemm_kernel, CPU, &gemm_cpu);
BM_REGISTER_KERNEL(linear_kernel, CPU, &linear_cpu);

}  // namespace bigmodel::cpu
