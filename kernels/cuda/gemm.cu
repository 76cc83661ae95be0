// The GEMM entry points of gemm.h: argument validation, the backend switch (ours / cublas,
// BIGMODEL_GEMM), and the choice among our kernels (SGEMM, tensor cores, int8 mma, or the
// simple tiled fallback) by dtype, layout and alignment.
#include <algorithm>
#include <climits>
#include <cstdlib>

#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_internal.h"
#include "core/backends.h"
#include "core/error.h"

namespace bigmodel::cuda {
namespace {

// 0 ours, 1 cublas: the "gemm" entry of the backend registry (core/backends.h).
int current_backend() { return uses_vendor_backend("gemm") ? 1 : 0; }

// Shared shape checks of the float and int8 forms. Returns false when there is nothing to do.
bool check_shape(const char* op, int64_t M, int64_t N, int64_t K, bool ta, bool tb, int64_t lda, int64_t ldb,
                 int64_t ldc, int64_t batch, const void* A, const void* B, const void* C) {
  BM_CHECK_VALUE(M >= 0 && N >= 0 && K >= 0 && batch >= 0, op, "negative size: M=", M, " N=", N, " K=", K,
                 " batch=", batch);
  BM_CHECK_VALUE(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX, op, "M=", M, " N=", N, " K=", K,
                 " exceed the kernels' 32-bit index range");
  const int64_t a_cols = ta ? M : K, b_cols = tb ? K : N;
  BM_CHECK_VALUE(lda >= std::max<int64_t>(a_cols, 1), op, "lda=", lda, " is smaller than the ", a_cols,
                 " columns of A as stored (trans_a=", ta, ")");
  BM_CHECK_VALUE(ldb >= std::max<int64_t>(b_cols, 1), op, "ldb=", ldb, " is smaller than the ", b_cols,
                 " columns of B as stored (trans_b=", tb, ")");
  BM_CHECK_VALUE(ldc >= std::max<int64_t>(N, 1), op, "ldc=", ldc, " is smaller than N=", N);
  if (M == 0 || N == 0 || batch == 0) return false;
  BM_CHECK_VALUE(C != nullptr && (K == 0 || (A != nullptr && B != nullptr)), op, "null matrix pointer");
  return true;
}

bool check_params(const GemmParams& p) {
  const DType in = p.in_dtype, out = p.out_dtype;
  const bool half_in = in == DType::Float16 || in == DType::BFloat16;
  BM_CHECK_DTYPE(in == DType::Float32 || in == DType::Float64 || half_in, "gemm", "input dtype ", dtype_name(in),
                 " is not supported (float32, float64, float16, bfloat16)");
  BM_CHECK_DTYPE(out == in || (half_in && out == DType::Float32), "gemm", "output dtype ", dtype_name(out),
                 " does not go with input dtype ", dtype_name(in), " (same dtype, or float32 for half inputs)");
  BM_CHECK_VALUE(!p.aux || p.ld_aux >= std::max<int64_t>(p.N, 1), "gemm", "ld_aux=", p.ld_aux, " is smaller than N=",
                 p.N);
  return check_shape("gemm", p.M, p.N, p.K, p.trans_a, p.trans_b, p.lda, p.ldb, p.ldc, p.batch, p.A, p.B, p.C);
}

}  // namespace

void set_gemm_backend(const std::string& name) { set_backend("gemm", name); }
std::string gemm_backend() { return backend("gemm"); }

void gemm(const GemmParams& p, void* stream) {
  if (current_backend() == 1) gemm_cublas(p, stream);
  else gemm_ours(p, stream);
}

void gemm_ours(const GemmParams& p, void* stream) {
  if (!check_params(p)) return;
  // The simple kernel's grid puts M tiles on gridDim.y (at most 65535).
  const bool generic_fits = p.M <= int64_t{65535} * 32;
  if (p.in_dtype == DType::Float32) {
    gemm_detail::launch_gemm_f32(p, stream);
  } else if (gemm_detail::wgmma_gemm_supported(p)) {
    gemm_detail::launch_gemm_wgmma(p, stream);
  } else if (gemm_detail::tc_gemm_supported(p)) {
    gemm_detail::launch_gemm_tc(p, stream);
  } else {
    BM_CHECK_VALUE(generic_fits, "gemm", "M=", p.M, " is too large for unaligned ", dtype_name(p.in_dtype),
                   " operands (align them to 16 bytes with leading dims multiple of 8)");
    gemm_detail::launch_gemm_generic(p, stream);
  }
}

void gemm_int8(const GemmInt8Params& p, void* stream) {
  if (current_backend() == 1) gemm_int8_cublas(p, stream);
  else gemm_int8_ours(p, stream);
}

void gemm_int8_ours(const GemmInt8Params& p, void* stream) {
  if (!check_shape("gemm_int8", p.M, p.N, p.K, p.trans_a, p.trans_b, p.lda, p.ldb, p.ldc, p.batch, p.A, p.B, p.C))
    return;
  if (gemm_detail::int8_mma_supported(p)) {
    gemm_detail::launch_gemm_int8_mma(p, stream);
  } else {
    BM_CHECK_VALUE(p.M <= int64_t{65535} * 32, "gemm_int8", "M=", p.M, " is too large for the unaligned int8 path");
    gemm_detail::launch_gemm_int8_generic(p, stream);
  }
}

namespace gemm_detail {
bool check_gemm_params(const GemmParams& p) { return check_params(p); }
bool check_gemm_int8_params(const GemmInt8Params& p) {
  return check_shape("gemm_int8", p.M, p.N, p.K, p.trans_a, p.trans_b, p.lda, p.ldb, p.ldc, p.batch, p.A, p.B, p.C);
}
}  // namespace gemm_detail

}  // namespace bigmodel::cuda
