// The CUDA GEMM interface over raw device pointers (plain C++: no CUDA headers, streams as
// void*). One signature, two backends: our kernels (gemm_f32.cu, gemm_tc.cu, gemm_int8.cu,
// gemm_generic.cu) and cuBLASLt (gemm_cublas.cu), chosen by set_gemm_backend / BIGMODEL_GEMM.
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace bigmodel::cuda {

// What runs after the product, per element of C (n is the column):
//   pre = alpha * op(A) op(B) + beta * C + bias[n];  C = act(pre);  aux = pre (when aux is set)
// The same order as cuBLASLt's epilogues, so the two backends compute one function.
// GELU is the exact (erf) form; cuBLASLt has only the tanh form, so its backend applies GELU
// in a second pass over C (gemm_cublas.cu).
enum class GemmActivation : uint8_t { None, ReLU, GELUTanh, GELU };

// Row-major matrices. op(A) is M x K: A is stored M x K (trans_a false, lda >= K) or K x M
// (trans_a true, lda >= M); op(B) is K x N: B is stored K x N (ldb >= N) or N x K (ldb >= K);
// C is M x N with ldc >= N. Batch b reads A + b * stride_a (elements) and so on; a stride of
// 0 broadcasts one matrix over the batch. beta == 0 never reads C (C may hold NaNs).
struct GemmParams {
  int64_t M = 0, N = 0, K = 0;
  bool trans_a = false, trans_b = false;
  const void* A = nullptr;
  int64_t lda = 0, stride_a = 0;
  const void* B = nullptr;
  int64_t ldb = 0, stride_b = 0;
  void* C = nullptr;
  int64_t ldc = 0, stride_c = 0;
  int64_t batch = 1;
  float alpha = 1.0f, beta = 0.0f;
  // Float32 / Float16 / BFloat16 (Float64 runs on the simple kernel). Accumulation is float32.
  DType in_dtype = DType::Float32;
  // The dtype of C: in_dtype, or Float32 for half inputs.
  DType out_dtype = DType::Float32;
  const void* bias = nullptr;  // N elements of out_dtype, or null
  GemmActivation act = GemmActivation::None;
  // Optional second output: the pre-activation value above (out_dtype, M x N, ld_aux >= N,
  // batch b at aux + b * stride_aux), which an activation's backward needs (cuBLASLt's
  // GELU_AUX epilogue). Null writes nothing.
  void* aux = nullptr;
  int64_t ld_aux = 0, stride_aux = 0;
};

// Runs the GEMM on `stream` (a cudaStream_t; null is the legacy default stream) with the
// selected backend. Throws ValueError for arguments out of contract, Error on CUDA failures.
void gemm(const GemmParams& p, void* stream = nullptr);
// The two backends directly (the tests compare them; the bench times both).
void gemm_ours(const GemmParams& p, void* stream = nullptr);
void gemm_cublas(const GemmParams& p, void* stream = nullptr);

// int8 x int8 -> int32: C = op(A) op(B) (+ C when accumulate), exact in int32 (wrapping on
// overflow like the hardware). Same layout rules as GemmParams. The tensor-core kernel takes
// A stored M x K and B stored N x K (trans_a false, trans_b true: x @ W^T, the quantized
// Linear) with K, lda, ldb multiples of 16; every other case runs on the simple kernel.
struct GemmInt8Params {
  int64_t M = 0, N = 0, K = 0;
  bool trans_a = false, trans_b = true;
  const int8_t* A = nullptr;
  int64_t lda = 0, stride_a = 0;
  const int8_t* B = nullptr;
  int64_t ldb = 0, stride_b = 0;
  int32_t* C = nullptr;
  int64_t ldc = 0, stride_c = 0;
  int64_t batch = 1;
  bool accumulate = false;
};
void gemm_int8(const GemmInt8Params& p, void* stream = nullptr);
void gemm_int8_ours(const GemmInt8Params& p, void* stream = nullptr);
// cuBLASLt's int8 path; it needs the NT form above with K, lda, ldb multiples of 4.
void gemm_int8_cublas(const GemmInt8Params& p, void* stream = nullptr);

// "ours" (default) or "cublas"; the first call reads BIGMODEL_GEMM. Unknown names raise ValueError.
void set_gemm_backend(const std::string& name);
std::string gemm_backend();

}  // namespace bigmodel::cuda
