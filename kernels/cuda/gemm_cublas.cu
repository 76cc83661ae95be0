// The cuBLASLt baseline behind gemm.h's signature: row-major C = op(A) op(B) is computed as the
// column-major C^T = op(B)^T op(A)^T (operands swapped, no copies), with cuBLASLt's bias /
// ReLU / GELU epilogues (GELU_AUX for the pre-activation output), strided batches, and its int8
// (IMMA) path. What cuBLASLt's epilogues lack (the erf GELU, an aux output it cannot lay out) runs
// as a second pass over C. One handle and a 32 MiB workspace per device; the heuristic's
// algorithm is cached per problem.
#include <cublasLt.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_common.cuh"
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
  void* aux = nullptr;  // the *_AUX epilogues' output
  int64_t ld_aux = 0, stride_aux = 0;
};

// Returns false, running nothing, when the heuristic has no algorithm and `may_decline` is set
// (the caller then has another way); otherwise that is an error.
bool run_lt(const LtCall& c, cudaStream_t stream, bool may_decline = false) {
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
  if (c.aux) {
    BM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &c.aux,
                                                   sizeof(c.aux)));
    BM_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &c.ld_aux, sizeof(c.ld_aux)));
    BM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE,
                                                   &c.stride_aux, sizeof(c.stride_aux)));
  }
  // Layouts describe the matrices as stored (before op).
  d.a = make_layout(c.in_type, c.trans_x ? c.k : c.m, c.trans_x ? c.m : c.k, c.ldx, c.batch, c.stride_x);
  d.b = make_layout(c.in_type, c.trans_y ? c.n : c.k, c.trans_y ? c.k : c.n, c.ldy, c.batch, c.stride_y);
  d.c = make_layout(c.out_type, c.m, c.n, c.ldd, c.batch, c.stride_d);

  const uint32_t al_x = alignment(c.X), al_y = alignment(c.Y), al_d = alignment(c.D);
  const PlanKey key = {c.m, c.n, c.k, c.trans_x, c.trans_y, c.ldx, c.ldy, c.ldd, c.batch, c.stride_x, c.stride_y,
                       c.stride_d, c.in_type, c.out_type, c.compute, c.epilogue, al_x, al_y, al_d,
                       c.bias ? alignment(c.bias) : 0, c.aux ? alignment(c.aux) : 0, c.ld_aux, c.stride_aux,
                       reinterpret_cast<intptr_t>(dev.handle)};
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
    // "No algorithm" comes back either as success with none found or as NOT_SUPPORTED
    // (cublasLt.h: "if no heuristic function available for current configuration").
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(dev.handle, d.op, d.a, d.b, d.c, d.c, d.pref, 1, &result, &found);
    if (st == CUBLAS_STATUS_NOT_SUPPORTED) found = 0;
    else BM_CUBLAS_CHECK(st);
    if (found == 0 && may_decline) return false;
    if (found == 0)
      throw Error(str_cat("[gemm] cuBLASLt has no algorithm for m=", c.m, " n=", c.n, " k=", c.k, " batch=", c.batch,
                          " (column-major view) with these dtypes/layout/epilogue"));
    it = g_plans.emplace(key, result.algo).first;
  }
  // C and D are the same matrix: beta * C is read from, and the result written to, c.D.
  BM_CUBLAS_CHECK(cublasLtMatmul(dev.handle, d.op, c.alpha, c.X, d.a, c.Y, d.b, c.beta, c.D, d.c, c.D, d.c,
                                 &it->second, dev.workspace, kWorkspaceBytes, stream));
  return true;
}

cublasLtEpilogue_t lt_epilogue(bool bias, GemmActivation act, bool aux) {
  switch (act) {
    case GemmActivation::ReLU: return bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    case GemmActivation::GELUTanh:
      if (aux) return bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
      return bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
    default: return bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  }
}

// cuBLASLt writes a GELU aux matrix only for the tanh GELU, with ld and batch stride multiples
// of 8 (cublasLt.h); its aux for ReLU is a bit mask, not the values we promise.
bool lt_aux_supported(const GemmParams& p) {
  return p.act == GemmActivation::GELUTanh && p.in_dtype != DType::Float64 && p.ld_aux % 8 == 0 &&
         (p.batch == 1 || p.stride_aux % 8 == 0) && alignment(p.aux) >= 16;
}

// The second pass: pre = C (+ bias when given); aux = pre; C = act(pre), over batch x M x N
// elements (C holds what cuBLASLt wrote). float64 stays in double; the rest compute in float.
template <typename T>
__global__ void activation_pass(T* C, int64_t ldc, int64_t stride_c, const T* bias, T* aux, int64_t ld_aux,
                                int64_t stride_aux, int64_t M, int64_t N, int64_t total, GemmActivation act) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t n = i % N, m = (i / N) % M, b = i / (N * M);
    T* c = C + b * stride_c + m * ldc + n;
    if constexpr (std::is_same_v<T, double>) {
      const double v = *c + (bias ? bias[n] : 0.0);
      if (aux) aux[b * stride_aux + m * ld_aux + n] = v;
      double r = v;
      if (act == GemmActivation::ReLU) r = v > 0.0 ? v : 0.0;
      else if (act == GemmActivation::GELU) r = 0.5 * v * (1.0 + erf(v * 0.7071067811865476));
      else if (act == GemmActivation::GELUTanh)
        r = 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
      *c = r;
    } else {
      T pre = *c;
      if (bias) pre = gemm_detail::from_float<T>(gemm_detail::to_float(pre) + gemm_detail::to_float(bias[n]));
      if (aux) aux[b * stride_aux + m * ld_aux + n] = pre;
      *c = gemm_detail::from_float<T>(gemm_detail::activate(gemm_detail::to_float(pre), act));
    }
  }
}

template <typename T>
void launch_activation_pass(const GemmParams& p, const void* bias, cudaStream_t stream) {
  const int64_t total = p.batch * p.M * p.N;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, int64_t{1} << 20);
  activation_pass<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
      static_cast<T*>(p.C), p.ldc, p.stride_c, static_cast<const T*>(bias), static_cast<T*>(p.aux), p.ld_aux,
      p.stride_aux, p.M, p.N, total, p.act);
  BM_CUDA_CHECK_LAUNCH();
}

void run_activation_pass(const GemmParams& p, const void* bias, cudaStream_t stream) {
  switch (p.out_dtype) {
    case DType::Float32: launch_activation_pass<float>(p, bias, stream); break;
    case DType::Float64: launch_activation_pass<double>(p, bias, stream); break;
    case DType::Float16: launch_activation_pass<__half>(p, bias, stream); break;
    case DType::BFloat16: launch_activation_pass<__nv_bfloat16>(p, bias, stream); break;
    default: throw DTypeError(str_cat("[gemm] cuBLAS backend has no ", dtype_name(p.out_dtype)));
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
  const auto st = static_cast<cudaStream_t>(stream);
  // GELU (erf) and aux outputs cuBLASLt cannot write: the product (+ bias) here, the rest in a
  // pass. float64 takes its bias in the pass too: cuBLASLt's epilogues are for the float types.
  const bool f64_epilogue = f64 && (p.bias || p.act != GemmActivation::None || p.aux);
  auto two_passes = [&] {
    c.bias = f64 ? nullptr : p.bias;
    c.epilogue = lt_epilogue(c.bias != nullptr, GemmActivation::None, false);
    c.aux = nullptr;
    run_lt(c, st);
    run_activation_pass(p, f64 ? p.bias : nullptr, st);
  };
  if (f64_epilogue || p.act == GemmActivation::GELU || (p.aux && !lt_aux_supported(p))) return two_passes();
  c.epilogue = lt_epilogue(p.bias != nullptr, p.act, p.aux != nullptr);
  c.aux = p.aux;
  c.ld_aux = p.ld_aux;
  c.stride_aux = p.batch > 1 ? p.stride_aux : 0;
  // GELU_AUX has fewer kernels than the plain epilogues: without one, the two-pass form.
  if (!run_lt(c, st, /*may_decline=*/p.aux != nullptr)) two_passes();
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
