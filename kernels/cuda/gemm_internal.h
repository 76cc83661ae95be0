// Launchers of the individual GEMM kernels, called by the dispatcher in gemm.cu after it has
// validated the parameters. Plain C++ (streams as void*), so .cpp tests could include it too.
#pragma once
#include <cstdint>

#include "kernels/cuda/gemm.h"

namespace bigmodel::cuda::gemm_detail {

// gemm_f32.cu: float32 in and out, any shape and layout (float4 loads where aligned).
void launch_gemm_f32(const GemmParams& p, void* stream);
// gemm_tc.cu: float16 / bfloat16 in on tensor cores; needs tc_gemm_supported(p).
bool tc_gemm_supported(const GemmParams& p);
void launch_gemm_tc(const GemmParams& p, void* stream);
// gemm_wgmma.cu (sm_90a): float16 / bfloat16 in on Hopper (TMA + wgmma). available: a compute
// capability 9.0 device and the driver's tensor-map encoder; supported: that, dtypes, TMA's
// 16-byte alignment of A/B and their leading dims / batch strides, K >= 1, and
// BIGMODEL_GEMM_WGMMA is not "0".
bool wgmma_gemm_available();
bool wgmma_gemm_supported(const GemmParams& p);
void launch_gemm_wgmma(const GemmParams& p, void* stream);
// gemm_generic.cu: every dtype pair and layout, any alignment; simple tiles, the fallback.
void launch_gemm_generic(const GemmParams& p, void* stream);
// gemm_int8.cu
bool int8_mma_supported(const GemmInt8Params& p);
void launch_gemm_int8_mma(const GemmInt8Params& p, void* stream);
void launch_gemm_int8_generic(const GemmInt8Params& p, void* stream);

// gemm.cu: the validation both backends share; false when there is nothing to compute.
bool check_gemm_params(const GemmParams& p);
bool check_gemm_int8_params(const GemmInt8Params& p);

// Bytes a pointer is aligned to (1, 2, 4, 8 or 16).
inline int pointer_alignment(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  for (int a = 16; a > 1; a /= 2)
    if (v % static_cast<uintptr_t>(a) == 0) return a;
  return 1;
}

}  // namespace bigmodel::cuda::gemm_detail
