// The emulation build's cuBLASLt: the calls kernels/cuda/gemm_cublas.cu makes, computed on the
// host over the emulator's device memory (host memory), so the cuBLAS baseline's wrapper (the
// row-major to column-major swap, transposes, leading dimensions, strided batches, the bias /
// ReLU / GELU / GELU_AUX epilogues, the int8 path, the algorithm cache) runs without a GPU.
// Semantics follow cublasLt.h's comments and the cuBLASLt API reference as we read them:
//   D = epilogue(alpha * op(A) op(B) + beta * C), all column-major; the bias (a vector of D's
//   rows) is added before the activation; GELU_AUX writes the activation's input (in D's type)
//   to the aux matrix; GELU is the tanh approximation (the documents do not say which; cuBLASLt
//   is known to use it). Checks, each returning the status the documents name: attribute sizes
//   (INVALID_VALUE), layouts consistent with m, n, k and ld >= rows (INVALID_VALUE), supported
//   type / compute combinations and int8's TN-only rule (NOT_SUPPORTED from the heuristic, with
//   no algorithm), aux ld / batch stride multiples of 8, and at matmul time the algorithm's
//   assumptions: pointer alignments it was chosen for, the same types / epilogue / transposes,
//   enough workspace. Not emulated: row orders other than column-major, pointer modes other
//   than host, fp8, ReLU bit masks, the backward epilogues.
// BIGMODEL_EMU_CUBLASLT_NO_AUX=1 makes the heuristic find no algorithm for the *_AUX epilogues,
// as a real cuBLASLt may, so the wrapper's fallback runs too.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tests/cuda_emu/emu_streams.h"

namespace {

constexpr uint64_t kAlgoMagic = 0x656d75436c744c74ull;  // "emuCltLt"

struct Layout {
  cudaDataType type;
  uint64_t rows, cols;
  int64_t ld;
  int32_t order = CUBLASLT_ORDER_COL;
  int32_t batch = 1;
  int64_t stride = 0;
};

struct MatmulDesc {
  cublasComputeType_t compute;
  cudaDataType_t scale;
  int32_t pointer_mode = CUBLASLT_POINTER_MODE_HOST;
  int32_t trans_a = CUBLAS_OP_N, trans_b = CUBLAS_OP_N, trans_c = CUBLAS_OP_N;
  uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;
  int32_t bias_type = -1;
  int64_t bias_stride = 0;
  void* aux = nullptr;
  int64_t aux_ld = 0, aux_stride = 0;
  int32_t aux_type = -1;
};

struct Preference {
  uint64_t max_workspace = 0;
  uint32_t align[4] = {256, 256, 256, 256};  // A, B, C, D: the documented default
};

template <typename T>
cublasStatus_t set_value(T& dst, const void* buf, size_t size) {
  if (!buf || size != sizeof(T)) return CUBLAS_STATUS_INVALID_VALUE;
  std::memcpy(&dst, buf, sizeof(T));
  return CUBLAS_STATUS_SUCCESS;
}

uint32_t alignment_of(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

size_t type_bytes(cudaDataType t) {
  switch (t) {
    case CUDA_R_64F: return 8;
    case CUDA_R_32F:
    case CUDA_R_32I: return 4;
    case CUDA_R_16F:
    case CUDA_R_16BF: return 2;
    case CUDA_R_8I: return 1;
    default: return 0;
  }
}

double load(const void* base, int64_t index, cudaDataType t) {
  switch (t) {
    case CUDA_R_64F: return static_cast<const double*>(base)[index];
    case CUDA_R_32F: return static_cast<const float*>(base)[index];
    case CUDA_R_32I: return static_cast<const int32_t*>(base)[index];
    case CUDA_R_16F: return __half2float(static_cast<const __half*>(base)[index]);
    case CUDA_R_16BF: return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[index]);
    case CUDA_R_8I: return static_cast<const int8_t*>(base)[index];
    default: return NAN;
  }
}

void store(void* base, int64_t index, cudaDataType t, double v) {
  switch (t) {
    case CUDA_R_64F: static_cast<double*>(base)[index] = v; break;
    case CUDA_R_32F: static_cast<float*>(base)[index] = static_cast<float>(v); break;
    case CUDA_R_32I: static_cast<int32_t*>(base)[index] = static_cast<int32_t>(v); break;
    case CUDA_R_16F: static_cast<__half*>(base)[index] = __float2half_rn(static_cast<float>(v)); break;
    case CUDA_R_16BF:
      static_cast<__nv_bfloat16*>(base)[index] = __float2bfloat16_rn(static_cast<float>(v));
      break;
    default: break;
  }
}

bool has(uint32_t epilogue, uint32_t bits) { return (epilogue & bits) == bits; }

// The problem as the descriptors describe it, after the documented checks.
struct Problem {
  int64_t m = 0, n = 0, k = 0;
  cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
};

Problem check_problem(const MatmulDesc& d, const Layout& a, const Layout& b, const Layout& c, const Layout& dl) {
  Problem p;
  auto fail = [&](cublasStatus_t s) {
    p.status = s;
    return p;
  };
  if (d.trans_c != CUBLAS_OP_N || d.pointer_mode != CUBLASLT_POINTER_MODE_HOST) return fail(CUBLAS_STATUS_NOT_SUPPORTED);
  for (const Layout* l : {&a, &b, &c, &dl})
    if (l->order != CUBLASLT_ORDER_COL) return fail(CUBLAS_STATUS_NOT_SUPPORTED);
  const bool ta = d.trans_a != CUBLAS_OP_N, tb = d.trans_b != CUBLAS_OP_N;
  p.m = static_cast<int64_t>(dl.rows);
  p.n = static_cast<int64_t>(dl.cols);
  p.k = static_cast<int64_t>(ta ? a.rows : a.cols);
  // op(A) is m x k, op(B) k x n, C and D m x n.
  if (static_cast<int64_t>(ta ? a.cols : a.rows) != p.m || static_cast<int64_t>(tb ? b.cols : b.rows) != p.k ||
      static_cast<int64_t>(tb ? b.rows : b.cols) != p.n || c.rows != dl.rows || c.cols != dl.cols)
    return fail(CUBLAS_STATUS_INVALID_VALUE);
  for (const Layout* l : {&a, &b, &c, &dl})
    if (l->ld < static_cast<int64_t>(l->rows) || l->ld < 1 || l->batch < 1) return fail(CUBLAS_STATUS_INVALID_VALUE);
  if (a.batch != dl.batch || b.batch != dl.batch || c.batch != dl.batch) return fail(CUBLAS_STATUS_INVALID_VALUE);
  if (c.type != dl.type || a.type != b.type) return fail(CUBLAS_STATUS_NOT_SUPPORTED);
  // The supported combinations used here (cublasLtMatmul's type table).
  const bool f32 = d.compute == CUBLAS_COMPUTE_32F && d.scale == CUDA_R_32F &&
                   (a.type == CUDA_R_32F ? dl.type == CUDA_R_32F
                                         : (a.type == CUDA_R_16F || a.type == CUDA_R_16BF) &&
                                               (dl.type == a.type || dl.type == CUDA_R_32F));
  const bool f64 = d.compute == CUBLAS_COMPUTE_64F && d.scale == CUDA_R_64F && a.type == CUDA_R_64F &&
                   dl.type == CUDA_R_64F;
  const bool i8 = d.compute == CUBLAS_COMPUTE_32I && d.scale == CUDA_R_32I && a.type == CUDA_R_8I &&
                  dl.type == CUDA_R_32I;
  if (!f32 && !f64 && !i8) return fail(CUBLAS_STATUS_NOT_SUPPORTED);
  if (i8) {
    // int8 with column-major layouts: A transposed, B not (TN), and no epilogue.
    if (!ta || tb || d.epilogue != CUBLASLT_EPILOGUE_DEFAULT) return fail(CUBLAS_STATUS_NOT_SUPPORTED);
    if (a.ld % 4 || b.ld % 4) return fail(CUBLAS_STATUS_NOT_SUPPORTED);
  }
  switch (d.epilogue) {
    case CUBLASLT_EPILOGUE_DEFAULT:
    case CUBLASLT_EPILOGUE_RELU:
    case CUBLASLT_EPILOGUE_BIAS:
    case CUBLASLT_EPILOGUE_RELU_BIAS:
    case CUBLASLT_EPILOGUE_GELU:
    case CUBLASLT_EPILOGUE_GELU_BIAS:
    case CUBLASLT_EPILOGUE_GELU_AUX:
    case CUBLASLT_EPILOGUE_GELU_AUX_BIAS: break;
    default: return fail(CUBLAS_STATUS_NOT_SUPPORTED);  // ReLU bit masks, backward epilogues: not emulated
  }
  if (f64 && d.epilogue != CUBLASLT_EPILOGUE_DEFAULT) return fail(CUBLAS_STATUS_NOT_SUPPORTED);
  if (has(d.epilogue, CUBLASLT_EPILOGUE_BIAS)) {
    if (!d.bias) return fail(CUBLAS_STATUS_INVALID_VALUE);
    // Bias elements have D's type (header: CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE).
    if (d.bias_type != -1 && d.bias_type != dl.type) return fail(CUBLAS_STATUS_NOT_SUPPORTED);
  }
  if (has(d.epilogue, CUBLASLT_EPILOGUE_GELU_AUX)) {
    // Header: GELU input ld divisible by 8 and >= D's rows; batch stride divisible by 8.
    if (!d.aux || d.aux_ld < p.m || d.aux_ld % 8 || d.aux_stride % 8) return fail(CUBLAS_STATUS_INVALID_VALUE);
    if (d.aux_type != -1 && d.aux_type != dl.type) return fail(CUBLAS_STATUS_NOT_SUPPORTED);
  }
  return p;
}

// What an algorithm remembers of the problem it was chosen for.
uint64_t problem_signature(const MatmulDesc& d, const Layout& a, const Layout& dl) {
  return (uint64_t(d.compute) << 48) ^ (uint64_t(a.type) << 40) ^ (uint64_t(dl.type) << 32) ^
         (uint64_t(d.epilogue) << 8) ^ (uint64_t(d.trans_a) << 4) ^ uint64_t(d.trans_b);
}

double gelu_tanh(double v) { return 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))); }

}  // namespace

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = reinterpret_cast<cublasLtHandle_t>(new int(1));
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  delete reinterpret_cast<int*>(handle);
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasLtGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    default: return "CUBLAS_STATUS_(other)";
  }
}

const char* cublasLtGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid value was used as an argument (emulated cuBLASLt)";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported (emulated cuBLASLt)";
    default: return "error (emulated cuBLASLt)";
  }
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
  if (!layout) return CUBLAS_STATUS_INVALID_VALUE;
  auto* l = new Layout{type, rows, cols, ld};
  *layout = reinterpret_cast<cublasLtMatrixLayout_t>(l);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  delete reinterpret_cast<Layout*>(layout);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr,
                                                const void* buf, size_t size) {
  auto& l = *reinterpret_cast<Layout*>(layout);
  switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_ORDER: return set_value(l.order, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_ROWS: return set_value(l.rows, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_COLS: return set_value(l.cols, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_LD: return set_value(l.ld, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return set_value(l.batch, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return set_value(l.stride, buf, size);
    default: return CUBLAS_STATUS_NOT_SUPPORTED;  // not emulated
  }
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute, cudaDataType_t scale) {
  if (!desc) return CUBLAS_STATUS_INVALID_VALUE;
  auto* d = new MatmulDesc{};
  d->compute = compute;
  d->scale = scale;
  *desc = reinterpret_cast<cublasLtMatmulDesc_t>(d);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
  delete reinterpret_cast<MatmulDesc*>(desc);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t size) {
  auto& d = *reinterpret_cast<MatmulDesc*>(desc);
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: return set_value(d.compute, buf, size);
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: return set_value(d.scale, buf, size);
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: return set_value(d.pointer_mode, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSA: return set_value(d.trans_a, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSB: return set_value(d.trans_b, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSC: return set_value(d.trans_c, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return set_value(d.epilogue, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return set_value(d.bias, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: return set_value(d.bias_type, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE: return set_value(d.bias_stride, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: return set_value(d.aux, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: return set_value(d.aux_ld, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE: return set_value(d.aux_stride, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE: return set_value(d.aux_type, buf, size);
    default: return CUBLAS_STATUS_NOT_SUPPORTED;  // not emulated
  }
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  if (!pref) return CUBLAS_STATUS_INVALID_VALUE;
  *pref = reinterpret_cast<cublasLtMatmulPreference_t>(new Preference{});
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  delete reinterpret_cast<Preference*>(pref);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t size) {
  auto& p = *reinterpret_cast<Preference*>(pref);
  switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: return set_value(p.max_workspace, buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES: return set_value(p.align[0], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES: return set_value(p.align[1], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES: return set_value(p.align[2], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: return set_value(p.align[3], buf, size);
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
  }
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t dl,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int* returned) {
  if (!handle || !desc || !a || !b || !c || !dl || !pref || !results || !returned || requested <= 0)
    return CUBLAS_STATUS_INVALID_VALUE;
  *returned = 0;
  const auto& d = *reinterpret_cast<MatmulDesc*>(desc);
  const auto& la = *reinterpret_cast<Layout*>(a);
  const auto& ld = *reinterpret_cast<Layout*>(dl);
  const Problem p = check_problem(d, la, *reinterpret_cast<Layout*>(b), *reinterpret_cast<Layout*>(c), ld);
  if (p.status != CUBLAS_STATUS_SUCCESS) return p.status;
  const char* no_aux = std::getenv("BIGMODEL_EMU_CUBLASLT_NO_AUX");
  if (no_aux && std::strcmp(no_aux, "1") == 0 && (d.epilogue & 128u)) return CUBLAS_STATUS_NOT_SUPPORTED;
  const auto& pr = *reinterpret_cast<Preference*>(pref);
  // Alignments the algorithm may assume: the preference's minimums for A-D (default 256), and
  // the bias / aux pointers' own (the header: the heuristic reads their values for that).
  cublasLtMatmulHeuristicResult_t r{};
  r.algo.data[0] = kAlgoMagic;
  r.algo.data[1] = problem_signature(d, la, ld);
  for (int i = 0; i < 4; ++i) r.algo.data[2 + i] = pr.align[i];
  r.algo.data[6] = (d.bias ? alignment_of(d.bias) : 1) | uint64_t{d.aux ? alignment_of(d.aux) : 1} << 16;
  r.workspaceSize = pr.max_workspace >= 4096 ? 4096 : 0;  // some algorithms want a workspace
  r.algo.data[7] = r.workspaceSize;
  r.state = CUBLAS_STATUS_SUCCESS;
  r.wavesCount = 1.0f;
  results[0] = r;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t a, const void* B, cublasLtMatrixLayout_t b, const void* beta,
                              const void* C, cublasLtMatrixLayout_t c, void* D, cublasLtMatrixLayout_t dl,
                              const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspace_bytes,
                              cudaStream_t stream) {
  if (!handle || !desc || !alpha || !beta || !a || !b || !c || !dl || !algo) return CUBLAS_STATUS_INVALID_VALUE;
  const auto& d = *reinterpret_cast<MatmulDesc*>(desc);
  const auto& la = *reinterpret_cast<Layout*>(a);
  const auto& lb = *reinterpret_cast<Layout*>(b);
  const auto& lc = *reinterpret_cast<Layout*>(c);
  const auto& ld = *reinterpret_cast<Layout*>(dl);
  const Problem p = check_problem(d, la, lb, lc, ld);
  if (p.status != CUBLAS_STATUS_SUCCESS) return p.status;
  // The algorithm must be one the heuristic chose for this kind of problem, with pointers at
  // least as aligned as it assumed, and the workspace it asked for.
  if (algo->data[0] != kAlgoMagic || algo->data[1] != problem_signature(d, la, ld)) return CUBLAS_STATUS_INVALID_VALUE;
  const void* ptrs[4] = {A, B, C, D};
  for (int i = 0; i < 4; ++i)
    if (alignment_of(ptrs[i]) < algo->data[2 + i]) return CUBLAS_STATUS_INVALID_VALUE;
  if ((d.bias && alignment_of(d.bias) < (algo->data[6] & 0xffff)) || (d.aux && alignment_of(d.aux) < (algo->data[6] >> 16)))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (workspace_bytes < algo->data[7] || (algo->data[7] > 0 && !workspace)) return CUBLAS_STATUS_INVALID_VALUE;
  if (p.m == 0 || p.n == 0) return CUBLAS_STATUS_SUCCESS;
  if (!A || !B || !D || (!C && load(beta, 0, d.scale) != 0.0)) return CUBLAS_STATUS_INVALID_VALUE;

  const double al = load(alpha, 0, d.scale), be = load(beta, 0, d.scale);
  const bool ta = d.trans_a != CUBLAS_OP_N, tb = d.trans_b != CUBLAS_OP_N;
  const bool wide = d.compute == CUBLAS_COMPUTE_64F, ints = d.compute == CUBLAS_COMPUTE_32I;
  const bool bias = has(d.epilogue, CUBLASLT_EPILOGUE_BIAS), relu = has(d.epilogue, CUBLASLT_EPILOGUE_RELU),
             gelu = has(d.epilogue, CUBLASLT_EPILOGUE_GELU), aux = has(d.epilogue, CUBLASLT_EPILOGUE_GELU_AUX);
  // Checked and with alpha/beta read now (host pointers); the product itself runs on the
  // stream (at once by default, queued with BIGMODEL_EMU_ASYNC=1), on copies of the descriptors.
  bm_emu::on_stream(stream, "cublasLtMatmul", [=] {
  for (int32_t bt = 0; bt < ld.batch; ++bt) {
    for (int64_t j = 0; j < p.n; ++j) {
      for (int64_t i = 0; i < p.m; ++i) {
        // Accumulate as the compute type does: float, double or int32.
        float accf = 0.f;
        double accd = 0.0;
        int64_t acci = 0;
        for (int64_t kk = 0; kk < p.k; ++kk) {
          const double x = load(A, bt * la.stride + (ta ? kk + i * la.ld : i + kk * la.ld), la.type);
          const double y = load(B, bt * lb.stride + (tb ? j + kk * lb.ld : kk + j * lb.ld), lb.type);
          if (wide) accd += x * y;
          else if (ints) acci += static_cast<int64_t>(x) * static_cast<int64_t>(y);
          else accf += static_cast<float>(x) * static_cast<float>(y);
        }
        const double acc = wide ? accd : ints ? static_cast<double>(acci) : accf;
        double v = al * acc;
        if (be != 0.0) v += be * load(C, bt * lc.stride + i + j * lc.ld, lc.type);
        if (!wide && !ints) v = static_cast<float>(v);
        if (bias) v += load(d.bias, bt * d.bias_stride + i, ld.type);
        if (aux) store(d.aux, bt * d.aux_stride + i + j * d.aux_ld, ld.type, v);
        if (relu) v = v > 0 ? v : 0;
        if (gelu) v = gelu_tanh(v);
        store(D, bt * ld.stride + i + j * ld.ld, ld.type, v);
      }
    }
  }
  });
  return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
