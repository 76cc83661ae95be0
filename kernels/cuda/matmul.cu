// The CUDA kernels of the matmul family's gemm_kernel and linear_kernel stubs (core/ops/
// linalg.h): reads the operands' strides, passes column- or row-contiguous matrices to gemm()
// as they are (transposed views cost nothing), copies only operands with neither layout, and
// runs a batch as one strided-batched GEMM when its batch dims collapse to one stride.
// linear_kernel is one GEMM whose epilogue adds the bias, applies the activation and writes
// the pre-activation (aux) for the backward.
#include <algorithm>
#include <vector>

#include "core/cuda_info.h"
#include "core/ops/linalg.h"
#include "core/ops/view.h"
#include "kernels/cuda/gemm.h"

namespace bigmodel::cuda {
namespace {

// How gemm() can read a rows x cols matrix with element strides (rs, cs) in place.
struct MatLayout {
  bool ok = false, trans = false;
  int64_t ld = 0;
};

MatLayout mat_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  const int64_t r1 = std::max<int64_t>(rows, 1), c1 = std::max<int64_t>(cols, 1);
  if (cols == 1 || cs == 1) {
    const int64_t ld = rows == 1 ? c1 : rs;
    if (ld >= c1) return {true, false, ld};
  }
  if (rows == 1 || rs == 1) {
    const int64_t ld = cols == 1 ? r1 : cs;
    if (ld >= r1) return {true, true, ld};
  }
  return {};
}

// The single element stride between consecutive batches (all batch dims flattened), if the
// batch dims of `t` have one: contiguous batches, or a broadcast (stride 0) over all of them.
bool uniform_batch_stride(const Tensor& t, int64_t& stride) {
  const int64_t nb = t.dim() - 2;
  bool have = false;
  int64_t s = 0, span = 1;  // span: batches covered by the dims seen so far
  for (int64_t d = nb - 1; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    if (!have) {
      s = t.stride(d);
      have = true;
    } else if (t.stride(d) != s * span) {
      return false;
    }
    span *= t.size(d);
  }
  stride = s;
  return true;
}

// Element offsets of every batch (the odometer walk of the CPU kernel).
std::vector<int64_t> batch_offsets(const Tensor& t) {
  const int64_t nb = t.dim() - 2;
  int64_t total = 1;
  for (int64_t d = 0; d < nb; ++d) total *= t.size(d);
  std::vector<int64_t> offs(total, 0);
  std::vector<int64_t> idx(nb, 0);
  int64_t cur = 0;
  for (int64_t i = 0; i < total; ++i) {
    offs[i] = cur;
    for (int64_t d = nb - 1; d >= 0; --d) {
      cur += t.stride(d);
      if (++idx[d] < t.size(d)) break;
      cur -= t.stride(d) * t.size(d);
      idx[d] = 0;
    }
  }
  return offs;
}

void gemm_cuda(const Tensor& out, const Tensor& a_in, const Tensor& b_in) {
  const DType dt = out.dtype();
  BM_CHECK_DTYPE(dt == DType::Float32 || dt == DType::Float64 || dt == DType::Float16 || dt == DType::BFloat16,
                 "matmul", "not implemented on CUDA for ", dtype_name(dt));
  if (out.numel() == 0) return;
  const int64_t nd = out.dim();
  const int64_t M = out.size(nd - 2), N = out.size(nd - 1), K = a_in.size(nd - 1);
  Tensor a = a_in, b = b_in;
  MatLayout la = mat_layout(M, K, a.stride(nd - 2), a.stride(nd - 1));
  if (!la.ok) {
    a = contiguous(a);
    la = mat_layout(M, K, a.stride(nd - 2), a.stride(nd - 1));
  }
  MatLayout lb = mat_layout(K, N, b.stride(nd - 2), b.stride(nd - 1));
  if (!lb.ok) {
    b = contiguous(b);
    lb = mat_layout(K, N, b.stride(nd - 2), b.stride(nd - 1));
  }

  DeviceGuard guard(out.device().index);
  void* stream = current_stream(out.device().index).handle;
  GemmParams p;
  p.M = M;
  p.N = N;
  p.K = K;
  p.trans_a = la.trans;
  p.trans_b = lb.trans;
  p.lda = la.ld;
  p.ldb = lb.ld;
  p.ldc = std::max<int64_t>(N, 1);  // out is contiguous
  p.stride_c = M * N;
  p.in_dtype = p.out_dtype = dt;
  const int64_t batches = out.numel() / (M * N);
  const size_t item = itemsize(dt);
  int64_t sa = 0, sb = 0;
  if (uniform_batch_stride(a, sa) && uniform_batch_stride(b, sb)) {
    p.A = a.data_ptr();
    p.B = b.data_ptr();
    p.C = out.data_ptr();
    p.stride_a = sa;
    p.stride_b = sb;
    p.batch = batches;
    gemm(p, stream);
  } else {
    const std::vector<int64_t> ao = batch_offsets(a), bo = batch_offsets(b);
    for (int64_t i = 0; i < batches; ++i) {
      p.A = static_cast<const char*>(a.data_ptr()) + ao[i] * item;
      p.B = static_cast<const char*>(b.data_ptr()) + bo[i] * item;
      p.C = static_cast<char*>(out.data_ptr()) + i * M * N * item;
      gemm(p, stream);
    }
  }
  if (sync_debug_enabled()) synchronize(out.device().index);
}

GemmActivation gemm_activation(LinearAct act) {
  switch (act) {
    case LinearAct::ReLU: return GemmActivation::ReLU;
    case LinearAct::GELU: return GemmActivation::GELU;
    case LinearAct::GELUTanh: return GemmActivation::GELUTanh;
    default: return GemmActivation::None;
  }
}

// out[M, N] = act(x[M, K] @ w[N, K]^T + bias) (aux = the pre-activation) as one GEMM: op(A) = x,
// op(B) = w^T, which a row-major [N, K] weight gives as trans_b with ldb = K, no copy.
void linear_cuda(const Tensor& out, const Tensor& aux, const Tensor& x_in, const Tensor& w_in, const Tensor& bias,
                 LinearAct act) {
  const DType dt = out.dtype();
  BM_CHECK_DTYPE(dt == DType::Float32 || dt == DType::Float64 || dt == DType::Float16 || dt == DType::BFloat16,
                 "linear", "not implemented on CUDA for ", dtype_name(dt));
  const int64_t M = x_in.size(0), K = x_in.size(1), N = w_in.size(0);
  Tensor x = x_in, w = w_in;
  MatLayout la = mat_layout(M, K, x.stride(0), x.stride(1));
  if (!la.ok) {
    x = contiguous(x);
    la = mat_layout(M, K, x.stride(0), x.stride(1));
  }
  MatLayout lb = mat_layout(K, N, w.stride(1), w.stride(0));  // w^T: K x N
  if (!lb.ok) {
    w = contiguous(w);
    lb = mat_layout(K, N, w.stride(1), w.stride(0));
  }
  DeviceGuard guard(out.device().index);
  GemmParams p;
  p.M = M;
  p.N = N;
  p.K = K;
  p.trans_a = la.trans;
  p.trans_b = lb.trans;
  p.A = x.data_ptr();
  p.lda = la.ld;
  p.B = w.data_ptr();
  p.ldb = lb.ld;
  p.C = out.data_ptr();
  p.ldc = N;  // out (and aux) are contiguous [M, N]
  p.in_dtype = p.out_dtype = dt;
  p.bias = bias.defined() ? bias.data_ptr() : nullptr;
  p.act = gemm_activation(act);
  if (aux.defined()) {
    p.aux = aux.data_ptr();
    p.ld_aux = N;
  }
  gemm(p, current_stream(out.device().index).handle);
  if (sync_debug_enabled()) synchronize(out.device().index);
}

}  // namespace

BM_REGISTER_KERNEL(gemm_kernel, CUDA, &gemm_cuda);
BM_REGISTER_KERNEL(linear_kernel, CUDA, &linear_cuda);

}  // namespace bigmodel::cuda
