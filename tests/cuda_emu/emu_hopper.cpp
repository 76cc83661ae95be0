// CUDA-on-CPU emulation: kernels/cuda/gemm_wgmma.cu (TMA + wgmma, sm_90a only) is not
// emulated. The emulated device reports compute capability 8.0, so gemm.cu never picks it.
#include "kernels/cuda/gemm_internal.h"

#include "core/error.h"

namespace bigmodel::cuda::gemm_detail {
bool wgmma_gemm_available() { return false; }
bool wgmma_gemm_supported(const GemmParams&) { return false; }
void launch_gemm_wgmma(const GemmParams&, void*) {
  throw Error("[gemm] the Hopper wgmma GEMM is not part of the CUDA emulation build");
}
}  // namespace bigmodel::cuda::gemm_detail
