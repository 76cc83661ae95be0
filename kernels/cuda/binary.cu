// CUDA kernel for binary elementwise ops (arithmetic, pow, maximum/minimum, remainder,
// bitwise, comparisons, logical), registered into binary_kernel with the CPU's dtype rules
// (kernels/cpu/binary.cpp) and the shared math of kernels/functors.h. Contiguous, 16-byte
// aligned operands take a vectorised path (16 bytes per input load per thread); any other
// layout (strided views, broadcast operands with stride 0) walks an OffsetCalc.
#include "core/dispatch.h"
#include "core/ops/elementwise.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/offset_calc.h"
#include "kernels/cuda/runtime.h"
#include "kernels/functors.h"

namespace bigmodel::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
using compute_of = typename ElemTraits<T>::wide;  // float for half types

// out = OP(a, b): loads storage values, computes in the compute type, stores.
template <BinaryOp OP, typename T>
struct BinaryFunctor {
  using S = typename ElemTraits<T>::storage;
  using C = compute_of<T>;
  static constexpr bool kBoolOut = OP >= BinaryOp::Eq;
  using OutS = std::conditional_t<kBoolOut, bool, S>;

  __device__ __forceinline__ OutS operator()(S xs, S ys) const {
    const C x = ElemTraits<T>::load(xs), y = ElemTraits<T>::load(ys);
    if constexpr (OP == BinaryOp::Eq) return x == y;
    else if constexpr (OP == BinaryOp::Ne) return x != y;
    else if constexpr (OP == BinaryOp::Lt) return x < y;
    else if constexpr (OP == BinaryOp::Le) return x <= y;
    else if constexpr (OP == BinaryOp::Gt) return x > y;
    else if constexpr (OP == BinaryOp::Ge) return x >= y;
    else if constexpr (OP == BinaryOp::LogicalAnd) return x && y;
    else if constexpr (OP == BinaryOp::LogicalOr) return x || y;
    else if constexpr (OP == BinaryOp::LogicalXor) return x != y;
    else return ElemTraits<T>::store(apply(x, y));
  }
  __device__ __forceinline__ C apply(C x, C y) const {
    if constexpr (OP == BinaryOp::Add) return fn::add(x, y);
    else if constexpr (OP == BinaryOp::Sub) return fn::sub(x, y);
    else if constexpr (OP == BinaryOp::Mul) return fn::mul(x, y);
    else if constexpr (OP == BinaryOp::Div) return fn::div(x, y);
    else if constexpr (OP == BinaryOp::Maximum) return fn::maximum(x, y);
    else if constexpr (OP == BinaryOp::Minimum) return fn::minimum(x, y);
    else if constexpr (OP == BinaryOp::Pow) return fn::pow(x, y);
    else if constexpr (OP == BinaryOp::Remainder) return fn::remainder(x, y);
    else if constexpr (OP == BinaryOp::Fmod) return fn::fmod(x, y);
    else if constexpr (OP == BinaryOp::FloorDivide) return fn::floor_divide(x, y);
    else if constexpr (OP == BinaryOp::BitwiseAnd) return C(x & y);
    else if constexpr (OP == BinaryOp::BitwiseOr) return C(x | y);
    else return C(x ^ y);  // BitwiseXor
  }
};

template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// Contiguous operands, every pointer aligned to its pack: V elements per load.
template <typename F, int V>
__global__ void binary_vec_kernel(typename F::OutS* __restrict__ out, const typename F::S* __restrict__ a,
                                  const typename F::S* __restrict__ b, int64_t n, F f) {
  using S = typename F::S;
  using O = typename F::OutS;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t packs = n / V;
  for (int64_t i = first; i < packs; i += stride) {
    const Pack<S, V> pa = reinterpret_cast<const Pack<S, V>*>(a)[i];
    const Pack<S, V> pb = reinterpret_cast<const Pack<S, V>*>(b)[i];
    Pack<O, V> po;
#pragma unroll
    for (int k = 0; k < V; ++k) po.v[k] = f(pa.v[k], pb.v[k]);
    reinterpret_cast<Pack<O, V>*>(out)[i] = po;
  }
  for (int64_t i = packs * V + first; i < n; i += stride) out[i] = f(a[i], b[i]);
}

template <typename F>
__global__ void binary_strided_kernel(typename F::OutS* __restrict__ out, const typename F::S* __restrict__ a,
                                      const typename F::S* __restrict__ b, OffsetCalc<3> calc, int64_t n, F f) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[3];
    calc.offsets(i, off);
    out[off[0]] = f(a[off[1]], b[off[2]]);
  }
}

bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

template <BinaryOp OP, typename T>
void launch_binary(const Tensor& out, const Tensor& a, const Tensor& b) {
  using F = BinaryFunctor<OP, T>;
  using S = typename F::S;
  using O = typename F::OutS;
  constexpr int V = 16 / sizeof(S) > 0 ? static_cast<int>(16 / sizeof(S)) : 1;
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  auto* o = static_cast<O*>(out.data_ptr());
  auto* pa = static_cast<const S*>(a.data_ptr());
  auto* pb = static_cast<const S*>(b.data_ptr());
  if (out.is_contiguous() && a.is_contiguous() && b.is_contiguous() && aligned(pa, sizeof(S) * V) &&
      aligned(pb, sizeof(S) * V) && aligned(o, sizeof(O) * V)) {
    binary_vec_kernel<F, V><<<grid_blocks((n + V - 1) / V, kThreads), kThreads, 0, stream>>>(o, pa, pb, n, F{});
  } else {
    const Tensor* ts[3] = {&out, &a, &b};
    binary_strided_kernel<F><<<grid_blocks(n, kThreads), kThreads, 0, stream>>>(o, pa, pb,
                                                                                make_offset_calc<3>(ts, "binary"), n, F{});
  }
  BM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void arith_typed(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
    case BinaryOp::Add: return launch_binary<BinaryOp::Add, T>(out, a, b);
    case BinaryOp::Sub: return launch_binary<BinaryOp::Sub, T>(out, a, b);
    case BinaryOp::Mul: return launch_binary<BinaryOp::Mul, T>(out, a, b);
    case BinaryOp::Div: return launch_binary<BinaryOp::Div, T>(out, a, b);
    case BinaryOp::Maximum: return launch_binary<BinaryOp::Maximum, T>(out, a, b);
    case BinaryOp::Minimum: return launch_binary<BinaryOp::Minimum, T>(out, a, b);
    default: break;
  }
  if constexpr (!std::is_same_v<T, bool>) {
    switch (op) {
      case BinaryOp::Pow: return launch_binary<BinaryOp::Pow, T>(out, a, b);
      case BinaryOp::Remainder: return launch_binary<BinaryOp::Remainder, T>(out, a, b);
      case BinaryOp::Fmod: return launch_binary<BinaryOp::Fmod, T>(out, a, b);
      case BinaryOp::FloorDivide: return launch_binary<BinaryOp::FloorDivide, T>(out, a, b);
      default: break;
    }
  }
  throw NotImplementedError(str_cat("[binary] op not implemented on CUDA for ", dtype_name(out.dtype())));
}

template <typename T>
void compare_typed(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
    case BinaryOp::Eq: return launch_binary<BinaryOp::Eq, T>(out, a, b);
    case BinaryOp::Ne: return launch_binary<BinaryOp::Ne, T>(out, a, b);
    case BinaryOp::Lt: return launch_binary<BinaryOp::Lt, T>(out, a, b);
    case BinaryOp::Le: return launch_binary<BinaryOp::Le, T>(out, a, b);
    case BinaryOp::Gt: return launch_binary<BinaryOp::Gt, T>(out, a, b);
    default: return launch_binary<BinaryOp::Ge, T>(out, a, b);
  }
}

template <typename T>
void bitwise_typed(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
    case BinaryOp::BitwiseAnd: return launch_binary<BinaryOp::BitwiseAnd, T>(out, a, b);
    case BinaryOp::BitwiseOr: return launch_binary<BinaryOp::BitwiseOr, T>(out, a, b);
    default: return launch_binary<BinaryOp::BitwiseXor, T>(out, a, b);
  }
}

void binary_cuda(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  const DType dt = a.dtype();
  switch (op) {
    case BinaryOp::BitwiseAnd:
    case BinaryOp::BitwiseOr:
    case BinaryOp::BitwiseXor:
      if (dt == DType::Bool) bitwise_typed<bool>(op, out, a, b);
      else if (dt == DType::Int32) bitwise_typed<int32_t>(op, out, a, b);
      else if (dt == DType::Int64) bitwise_typed<int64_t>(op, out, a, b);
      else throw DTypeError(str_cat("[binary] bitwise ops not implemented for ", dtype_name(dt)));
      return;
    case BinaryOp::LogicalAnd: return launch_binary<BinaryOp::LogicalAnd, bool>(out, a, b);
    case BinaryOp::LogicalOr: return launch_binary<BinaryOp::LogicalOr, bool>(out, a, b);
    case BinaryOp::LogicalXor: return launch_binary<BinaryOp::LogicalXor, bool>(out, a, b);
    default: break;
  }
  if (binary_returns_bool(op)) {
    BM_DISPATCH_ALL(dt, "binary", [&] { compare_typed<scalar_t>(op, out, a, b); });
  } else {
    BM_DISPATCH_ALL(dt, "binary", [&] { arith_typed<scalar_t>(op, out, a, b); });
  }
}

}  // namespace

BM_REGISTER_KERNEL(binary_kernel, CUDA, &binary_cuda);

}  // namespace bigmodel::cuda
