// Shared pieces of the fused attention kernels (kernels/cuda/flash_attention*.cu): the launch
// parameters (pointers and element strides of [B, H, N, D] views), the mask lookup, and the
// launchers each kernel file exports to the dispatcher in flash_attention.cu.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"

namespace bigmodel::cuda::flash {

enum MaskKind : int { kNoMask = 0, kBoolMask = 1, kAdditiveMask = 2 };

struct FlashParams {
  const void* q;
  const void* k;
  const void* v;
  const void* mask;  // uint8 (bool) or q's dtype (additive), [B, H, Nq, Nk] with strides sm
  void* out;         // contiguous [B, H, Nq, D]
  float* lse;        // contiguous [B, H, Nq]
  int64_t sq[4], sk[4], sv[4], sm[4];  // element strides of (b, h, row, d) / (b, h, row, col)
  int B, H, Nq, Nk, D;
  int mask_kind;
  float scale;
  bool causal;
  // Backward only.
  const void* dout;  // [B, H, Nq, D] with strides sdo
  int64_t sdo[4];
  void* dq;  // contiguous [B, H, Nq, D]
  void* dk;  // contiguous [B, H, Nk, D]
  void* dv;
  float* delta;  // contiguous [B, H, Nq] scratch: rowsum(dout * out)
};

// The additive term the mask puts on score (row, col): 0 or -inf for a bool mask, the value
// for an additive one. `base` is the mask's (b, h) offset. Callers check row < Nq, col < Nk.
template <typename LoadT>
__device__ __forceinline__ float mask_term(const FlashParams& p, int64_t base, int row, int col, LoadT load_elem) {
  const int64_t off = base + static_cast<int64_t>(row) * p.sm[2] + static_cast<int64_t>(col) * p.sm[3];
  if (p.mask_kind == kBoolMask) {
    return static_cast<const uint8_t*>(p.mask)[off] ? 0.0f : -__int_as_float(0x7f800000);
  }
  return load_elem(off);
}

// Raises a kernel's dynamic shared-memory limit past 48 KB once per device (the attribute is
// per function and device); racing first calls both set it, which is harmless.
class FlashSmemOptIn {
 public:
  void ensure(const void* kernel, int bytes) {
    int dev = 0;
    BM_CUDA_CHECK(cudaGetDevice(&dev));
    const uint64_t bit = uint64_t{1} << (dev & 63);
    if (done_.load(std::memory_order_acquire) & bit) return;
    BM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    done_.fetch_or(bit, std::memory_order_release);
  }

 private:
  std::atomic<uint64_t> done_{0};
};

// Launchers (defined in flash_attention_simt.cu / flash_attention_tc.cu). `dtype`: 0 float32,
// 1 float16, 2 bfloat16.
void launch_forward_simt(const FlashParams& p, int dtype, cudaStream_t stream);
void launch_backward_simt(const FlashParams& p, int dtype, cudaStream_t stream);
// Tensor-core forward: float16/bfloat16, D <= 128, q/k/v 16-byte aligned with row and batch
// strides multiples of 8 elements and unit stride along D (the dispatcher checks).
void launch_forward_tc(const FlashParams& p, int dtype, cudaStream_t stream);
// Tensor-core backward (same layout rules, dout included): needs p.delta filled by
// launch_delta first and dq_accum, a zeroed float32 [B, H, Nq, D] scratch buffer.
void launch_backward_tc(const FlashParams& p, int dtype, float* dq_accum, cudaStream_t stream);
// delta = rowsum(dout * out) into p.delta (the first step of either backward).
void launch_delta(const FlashParams& p, int dtype, cudaStream_t stream);

}  // namespace bigmodel::cuda::flash
