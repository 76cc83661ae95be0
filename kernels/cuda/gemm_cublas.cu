// The cuBLASLt baseline behind gemm.h's signature: row-major C = op(A) op(B) is computed as the
// column-major C^T = op(B)^T op(A)^T (operands swapped, no copies), with cuBLASLt's bias /
// ReLU / GELU epilogues, strided batches, and its int8 (IMMA) path. One handle and a 32 MiB
// workspace per device; the heuristic's algorithm is cached per problem.
#include <cublasLt.h>

#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_internal.h"

namespace bigmodel::cuda {
namespace {

void check_cublas(cublasStatus_t st, const char* expr, const char* file, int line) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw Error(str_cat("[gemm] cuBLASLt call ", expr, " failed: ", cublasLtGetStatusName(st), " (",
                        cublasLtGetStatusString(st), ") at ", file, ":", line));
}
#define BM_CUBLAS_CHECK(expr) check_cublas((expr), #expr, __FILE__, __LINE__)

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

struct DeviceState {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
};

using PlanKey = std::vector<int64_t>;

std::mutex g_mutex;
std::vector<DeviceState> g_devices;  // indexed by device ordinal; never freed (process lifetime)
std::map<PlanKey, cublasLtMatmulAlgo_t> g_plans;

DeviceState& device_state() {
  int dev = 0;
  BM_CUDA_CHECK(cudaGetDevice(&dev));
  if (static_cast<int>(g_devices.size()) <= dev) g_devices.resize(dev + 1);
  DeviceState& s = g_devices[dev];
  if (!s.handle) {
    BM_CUBLAS_CHECK(cublasLtCreate(&s.handle));
    BM_CUDA_CHECK(cudaMalloc(&s.workspace, kWorkspaceBytes));
  }
  return s;
}

// Bytes a pointer is aligned to, up to cuBLASLt's preferred 256.
uint32_t alignment(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::Float32: return CUDA_R_32F;
    case DType::Float64: return CUDA_R_64F;
    case DType::Float16: return CUDA_R_16F;
    case DType::BFloat16: return CUDA_R_16BF;
    default: throw DTypeError(str_cat("[gemm] cuBLAS backend has no ", dtype_name(t)));
  }
}

// RAII for the descriptors of one call.
struct Descs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~Descs() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

cublasLtMatrixLayout_t make_layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                                   int64_t stride) {
  cublasLtMatrixLayout_t l = nullptr;
  BM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    BM_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    BM_CUBLAS_CHECK(
        cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
  return l;
}

// One matmul in column-major terms: D (m x n, ldd) = op(X) (m x k) op(Y) (k x n), where the
// caller passes row-major B as X and row-major A as Y.
struct LtCall {
  int64_t m, n, k;
  bool trans_x, trans_y;
  const void* X;
  int64_t ldx, stride_x;
  const void* Y;
  int64_t ldy, stride_y;
  void* D;
  int64_t ldd, stride_d, batch;
  cudaDataType_t in_type, out_type, scale_type;
  cublasComputeType_t compute;
  const void* alpha;
  const void* beta;
  const void* bias;
  cublasLtEpilogue_t epilogue;
};

void run_lt(const LtCall& c, cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_mutex);
  DeviceState& dev = device_state();
  Descs d;
  BM_CUBLAS_CHECK(cublasLtMatmulDescCreate(&d.op, c.compute, c.scale_type));
  const cublasOperation_t tx = c.trans_x ? CUBLAS_OP_T : CUBLAS_OP_N, ty = c.trans_y ? CUBLAS_OP_T : CUBLAS_OP_N;
  BM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &tx, sizeof(tx)));
  BM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &ty, sizeof(ty)));
  if (c.epilogue != CUBLASLT_EPILOGUE_DEFAULT) {
    BM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &c.epilogue,
                                                   sizeof(c.epilogue)));
  }
  if (c.bias) {
    BM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &c.bias, sizeof(c.bias)));
    const int32_t bias_type = c.out_type;
    BM_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
    const int64_t bias_stride = 0;  // one bias for every batch
    BM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, &bias_stride,
                                                   sizeof(bias_stride)));
  }
  // Layouts describe the matrices as stored (before op).
  d.a = make_layout(c.in_type, c.trans_x ? c.k : c.m, c.trans_x ? c.m : c.k, c.ldx, c.batch, c.stride_x);
  d.b = make_layout(c.in_type, c.trans_y ? c.n : c.k, c.trans_y ? c.k : c.n, c.ldy, c.batch, c.stride_y);
  d.c = make_layout(c.out_type, c.m, c.n, c.ldd, c.batch, c.stride_d);

  const uint32_t al_x = alignment(c.X), al_y = alignment(c.Y), al_d = alignment(c.D);
  const PlanKey key = {c.m, c.n, c.k, c.trans_x, c.trans_y, c.ldx, c.ldy, c.ldd, c.batch, c.stride_x, c.stride_y,
                       c.stride_d, c.in_type, c.out_type, c.compute, c.epilogue, al_x, al_y, al_d,
                       c.bias ? alignment(c.bias) : 0, reinterpret_cast<intptr_t>(dev.handle)};
  auto it = g_plans.find(key);
  if (it == g_plans.end()) {
    BM_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&d.pref));
    const uint64_t ws = kWorkspaceBytes;
    BM_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    BM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_x,
                                                         sizeof(al_x)));
    BM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_y,
                                                         sizeof(al_y)));
    BM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_d,
                                                         sizeof(al_d)));
    BM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d,
                                                         sizeof(al_d)));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    BM_CUBLAS_CHECK(
        cublasLtMatmulAlgoGetHeuristic(dev.handle, d.op, d.a, d.b, d.c, d.c, d.pref, 1, &result, &found));
    if (found == 0)
      throw Error(str_cat("[gemm] cuBLASLt has no algorithm for m=", c.m, " n=", c.n, " k=", c.k, " batch=", c.batch,
                          " (column-major view) with these dtypes/layout/epilogue"));
    it = g_plans.emplace(key, result.algo).first;
  }
  // C and D are the same matrix: beta * C is read from, and the result written to, c.D.
  BM_CUBLAS_CHECK(cublasLtMatmul(dev.handle, d.op, c.alpha, c.X, d.a, c.Y, d.b, c.beta, c.D, d.c, c.D, d.c,
                                 &it->second, dev.workspace, kWorkspaceBytes, stream));
}

cublasLtEpilogue_t lt_epilogue(bool bias, GemmActivation act) {
  switch (act) {
    case GemmActivation::ReLU: return bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    case GemmActivation::GELUTanh: return bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
    default: return bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  }
}

}  // namespace

void gemm_cublas(const GemmParams& p, void* stream) {
  if (!gemm_detail::check_gemm_params(p)) return;
  const bool f64 = p.in_dtype == DType::Float64;
  const double alpha64 = p.alpha, beta64 = p.beta;
  LtCall c;
  // Column-major C^T (N x M) = op(B)^T (N x K) op(A)^T (K x M).
  c.m = p.N;
  c.n = p.M;
  c.k = p.K;
  c.trans_x = p.trans_b;
  c.trans_y = p.trans_a;
  c.X = p.B;
  c.ldx = p.ldb;
  c.stride_x = p.stride_b;
  c.Y = p.A;
  c.ldy = p.lda;
  c.stride_y = p.stride_a;
  c.D = p.C;
  c.ldd = p.ldc;
  c.stride_d = p.stride_c;
  c.batch = p.batch;
  c.in_type = cuda_type(p.in_dtype);
  c.out_type = cuda_type(p.out_dtype);
  c.scale_type = f64 ? CUDA_R_64F : CUDA_R_32F;
  // float32 stays float32 (no TF32), so the baseline computes what our SGEMM computes.
  c.compute = f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F;
  c.alpha = f64 ? static_cast<const void*>(&alpha64) : static_cast<const void*>(&p.alpha);
  c.beta = f64 ? static_cast<const void*>(&beta64) : static_cast<const void*>(&p.beta);
  c.bias = p.bias;
  c.epilogue = lt_epilogue(p.bias != nullptr, p.act);
  run_lt(c, static_cast<cudaStream_t>(stream));
}

void gemm_int8_cublas(const GemmInt8Params& p, void* stream) {
  if (!gemm_detail::check_gemm_int8_params(p)) return;
  BM_CHECK_VALUE(!p.trans_a && p.trans_b && p.K % 4 == 0 && p.lda % 4 == 0 && p.ldb % 4 == 0, "gemm_int8",
                 "the cuBLAS int8 path needs A stored M x K and B stored N x K (trans_a=false, trans_b=true) with "
                 "K, lda, ldb multiples of 4; got trans_a=", p.trans_a, " trans_b=", p.trans_b, " K=", p.K,
                 " lda=", p.lda, " ldb=", p.ldb);
  const int32_t alpha = 1, beta = p.accumulate ? 1 : 0;
  LtCall c;
  c.m = p.N;
  c.n = p.M;
  c.k = p.K;
  c.trans_x = true;  // B stored N x K row-major is K x N column-major: transposed
  c.trans_y = false;
  c.X = p.B;
  c.ldx = p.ldb;
  c.stride_x = p.stride_b;
  c.Y = p.A;
  c.ldy = p.lda;
  c.stride_y = p.stride_a;
  c.D = p.C;
  c.ldd = p.ldc;
  c.stride_d = p.stride_c;
  c.batch = p.batch;
  c.in_type = CUDA_R_8I;
  c.out_type = CUDA_R_32I;
  c.scale_type = CUDA_R_32I;
  c.compute = CUBLAS_COMPUTE_32I;
  c.alpha = &alpha;
  c.beta = &beta;
  c.bias = nullptr;
  c.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  run_lt(c, static_cast<cudaStream_t>(stream));
}

}  // namespace bigmodel::cuda
