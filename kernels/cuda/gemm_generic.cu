// Launches the simple tiled GEMM (gemm_generic.cuh) for the float dtypes: the path for
// operands the fast kernels cannot take (unaligned pointers or leading dims) and for float64.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_generic.cuh"

namespace bigmodel::cuda::gemm_detail {
namespace {

template <typename Acc>
__device__ __forceinline__ Acc activate_acc(Acc v, GemmActivation act) {
  if (act == GemmActivation::ReLU) return v > Acc(0) ? v : Acc(0);
  if (act == GemmActivation::GELUTanh) {
    const Acc inner = Acc(0.7978845608028654) * (v + Acc(0.044715) * v * v * v);
    return Acc(0.5) * v * (Acc(1) + tanh(inner));
  }
  if (act == GemmActivation::GELU) return Acc(0.5) * v * (Acc(1) + erf(v * Acc(0.7071067811865476)));
  return v;
}

template <typename TOut, typename Acc>
__device__ __forceinline__ TOut narrow(Acc v) {
  if constexpr (std::is_same_v<TOut, __half> || std::is_same_v<TOut, __nv_bfloat16>)
    return from_float<TOut>(static_cast<float>(v));
  else return static_cast<TOut>(v);
}

template <typename TOut, typename Acc>
struct EpilogueStore {
  Epilogue ep;
  __device__ void operator()(TOut* c, int64_t b, int m, int n, Acc acc) const {
    Acc v = static_cast<Acc>(ep.alpha) * acc;
    if (ep.beta != 0.0f) v += static_cast<Acc>(ep.beta) * widen<Acc>(*c);
    if (ep.bias) v += widen<Acc>(static_cast<const TOut*>(ep.bias)[n]);
    if (TOut* aux = aux_at<TOut>(ep, b, m, n)) *aux = narrow<TOut, Acc>(v);
    *c = narrow<TOut, Acc>(activate_acc<Acc>(v, ep.act));
  }
};

template <typename TIn, typename TOut, typename Acc>
void launch(const GemmParams& p, const GenericShape& s, dim3 grid, cudaStream_t stream) {
  EpilogueStore<TOut, Acc> store{make_epilogue(p)};
  gemm_generic_32x32<TIn, TOut, Acc><<<grid, 256, 0, stream>>>(s, static_cast<const TIn*>(p.A),
                                                                static_cast<const TIn*>(p.B),
                                                                static_cast<TOut*>(p.C), store);
  BM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_gemm_generic(const GemmParams& p, void* stream) {
  const GenericShape s = generic_shape(p);
  const dim3 grid = generic_grid(p);
  auto st = static_cast<cudaStream_t>(stream);
  const bool f32_out = p.out_dtype == DType::Float32;
  switch (p.in_dtype) {
    case DType::Float32: launch<float, float, float>(p, s, grid, st); break;
    case DType::Float64: launch<double, double, double>(p, s, grid, st); break;
    case DType::Float16:
      if (f32_out) launch<__half, float, float>(p, s, grid, st);
      else launch<__half, __half, float>(p, s, grid, st);
      break;
    case DType::BFloat16:
      if (f32_out) launch<__nv_bfloat16, float, float>(p, s, grid, st);
      else launch<__nv_bfloat16, __nv_bfloat16, float>(p, s, grid, st);
      break;
    default: throw DTypeError(str_cat("[gemm] no CUDA kernel for ", dtype_name(p.in_dtype)));
  }
}

}  // namespace bigmodel::cuda::gemm_detail
