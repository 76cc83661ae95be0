// CUDA entries of the fused attention stubs (core/ops/attention.h): turns the front end's
// [B, H, N, D] views into FlashParams and picks the kernel: the tensor-core forward for
// float16/bfloat16 when q/k/v are 16-byte aligned with unit stride along D and other strides
// multiples of 8 (forward and backward), else the CUDA-core kernels (float32, other layouts).
#include "core/cuda_info.h"
#include "core/ops/attention.h"
#include "core/ops/creation.h"
#include "core/ops/view.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/flash_attention_common.cuh"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

using flash::FlashParams;

int dtype_code(DType dt) { return dt == DType::Float32 ? 0 : (dt == DType::Float16 ? 1 : 2); }

void copy_strides(int64_t (&dst)[4], const Tensor& t) {
  for (int i = 0; i < 4; ++i) dst[i] = t.size(i) == 1 ? 0 : t.stride(i);  // size-1 dims: any stride works
}

FlashParams make_params(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double scale,
                        bool causal) {
  FlashParams p{};
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  copy_strides(p.sq, q);
  copy_strides(p.sk, k);
  copy_strides(p.sv, v);
  p.B = static_cast<int>(q.size(0));
  p.H = static_cast<int>(q.size(1));
  p.Nq = static_cast<int>(q.size(2));
  p.Nk = static_cast<int>(k.size(2));
  p.D = static_cast<int>(q.size(3));
  p.scale = static_cast<float>(scale);
  p.causal = causal;
  p.mask_kind = flash::kNoMask;
  if (mask.defined()) {
    p.mask = mask.data_ptr();
    copy_strides(p.sm, mask);
    p.mask_kind = mask.dtype() == DType::Bool ? flash::kBoolMask : flash::kAdditiveMask;
  }
  return p;
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// The tensor-core kernel reads 16-byte chunks of rows: unit stride along D, 16-byte aligned
// rows for every (b, h, n).
bool tc_layout_ok(const Tensor& t) {
  if (!aligned16(t.data_ptr()) || (t.size(3) > 1 && t.stride(3) != 1)) return false;
  for (int i = 0; i < 3; ++i) {
    if (t.size(i) > 1 && t.stride(i) % 8 != 0) return false;
  }
  return true;
}

void flash_forward_cuda(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& mask, double scale, bool causal) {
  DeviceGuard guard(q.device().index);
  cudaStream_t stream = current_cuda_stream(q.device().index);
  FlashParams p = make_params(q, k, v, mask, scale, causal);
  p.out = out.data_ptr();
  p.lse = static_cast<float*>(lse.data_ptr());
  const int code = dtype_code(q.dtype());
  if (code != 0 && tc_layout_ok(q) && tc_layout_ok(k) && tc_layout_ok(v)) {
    flash::launch_forward_tc(p, code, stream);
  } else {
    flash::launch_forward_simt(p, code, stream);
  }
}

void flash_backward_cuda(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout, const Tensor& q,
                         const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& mask,
                         double scale, bool causal) {
  DeviceGuard guard(q.device().index);
  cudaStream_t stream = current_cuda_stream(q.device().index);
  FlashParams p = make_params(q, k, v, mask, scale, causal);
  Tensor outc = out.is_contiguous() ? out : contiguous(out);
  p.out = const_cast<void*>(outc.data_ptr());
  p.lse = static_cast<float*>(lse.data_ptr());
  const int code = dtype_code(q.dtype());
  const bool tc = code != 0 && tc_layout_ok(q) && tc_layout_ok(k) && tc_layout_ok(v);
  // The tensor-core kernel reads dO as it reads Q; a broadcast or odd-strided gradient (e.g. from
  // .sum()) is made contiguous once.
  const Tensor g = tc && !tc_layout_ok(dout) ? contiguous(dout) : dout;
  p.dout = g.data_ptr();
  copy_strides(p.sdo, g);
  p.dq = dq.data_ptr();
  p.dk = dk.data_ptr();
  p.dv = dv.data_ptr();
  Tensor delta = empty(Shape{q.size(0), q.size(1), q.size(2)}, DType::Float32, q.device());
  p.delta = static_cast<float*>(delta.data_ptr());
  if (tc) {
    Tensor dq_accum = zeros(Shape{q.size(0), q.size(1), q.size(2), q.size(3)}, DType::Float32, q.device());
    flash::launch_delta(p, code, stream);
    flash::launch_backward_tc(p, code, static_cast<float*>(dq_accum.data_ptr()), stream);
  } else {
    flash::launch_backward_simt(p, code, stream);
  }
}

}  // namespace

BM_REGISTER_KERNEL(flash_attention_forward_kernel, CUDA, &flash_forward_cuda);
BM_REGISTER_KERNEL(flash_attention_backward_kernel, CUDA, &flash_backward_cuda);

}  // namespace bigmodel::cuda
