// CUDA kernels of the plain reductions: reduce_kernel (sum, prod, max, min, all, any),
// arg_reduce_kernel (max/min with indices, argmax/argmin) and index_grad_kernel (their
// backward), with the CPU's contract (kernels/cpu/reduce.cpp) and any 2-D strides on the
// input matrix. Sums and products accumulate in float for float32/float16/bfloat16, in
// double for float64 and in int64 (wrapping) for integers and bools.
#include <limits>
#include <type_traits>

#include "core/dispatch.h"
#include "core/ops/reduce_kernels.h"
#include "kernels/cuda/dtype_convert.cuh"
#include "kernels/cuda/reduce_launch.cuh"

namespace bigmodel::cuda {
namespace {

template <typename T>
using storage_of = typename ElemTraits<T>::storage;

template <typename T>
constexpr bool kIsFloat = std::is_floating_point_v<typename ElemTraits<T>::wide>;

// Accumulator of sums and products.
template <typename T>
using arith_acc_t = std::conditional_t<kIsFloat<T>, typename ElemTraits<T>::wide, int64_t>;
// Accumulator of comparisons: the compute type, bools and int32 widened to a shuffleable int.
template <typename T>
using compare_acc_t = std::conditional_t<kIsFloat<T>, typename ElemTraits<T>::wide,
                                         std::conditional_t<std::is_same_v<T, int64_t>, int64_t, int32_t>>;

template <typename A>
__device__ __forceinline__ bool is_nan(A x) {
  if constexpr (std::is_floating_point_v<A>) return x != x;
  else return false;
}

// The starting value of a max (lowest) or min (highest) in T's own range.
template <typename T, typename A>
__device__ __forceinline__ A extreme_identity(bool is_max) {
  if constexpr (std::is_floating_point_v<A>)
    return is_max ? -std::numeric_limits<A>::infinity() : std::numeric_limits<A>::infinity();
  else if constexpr (std::is_same_v<T, bool>) return is_max ? 0 : 1;
  else return is_max ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
}

// Sum or product; Out is T (floats) or int64 (integers and bools), as on the CPU.
template <typename T, typename Out>
struct ArithReducer {
  using In = storage_of<T>;
  using Acc = arith_acc_t<T>;
  using UAcc = std::conditional_t<std::is_same_v<Acc, int64_t>, uint64_t, Acc>;  // integer wrap-around
  storage_of<Out>* out;
  int64_t out_stride;
  bool is_sum;
  __device__ Acc identity() const { return Acc(is_sum ? 0 : 1); }
  __device__ Acc combine(Acc a, Acc b) const {
    return static_cast<Acc>(is_sum ? static_cast<UAcc>(a) + static_cast<UAcc>(b)
                                   : static_cast<UAcc>(a) * static_cast<UAcc>(b));
  }
  __device__ Acc step(Acc a, In v, int64_t, int64_t) const {
    return combine(a, static_cast<Acc>(ElemTraits<T>::load(v)));
  }
  __device__ void write(int64_t row, Acc a) const { out[row * out_stride] = ElemTraits<Out>::store(a); }
};

// Max or min of values; a NaN anywhere gives NaN, as on the CPU.
template <typename T>
struct ExtremeReducer {
  using In = storage_of<T>;
  using Acc = compare_acc_t<T>;
  storage_of<T>* out;
  int64_t out_stride;
  bool is_max;
  __device__ Acc identity() const { return extreme_identity<T, Acc>(is_max); }
  __device__ Acc combine(Acc a, Acc x) const {
    if (is_nan(x)) return x;
    if (is_nan(a)) return a;
    return is_max ? (x > a ? x : a) : (x < a ? x : a);
  }
  __device__ Acc step(Acc a, In v, int64_t, int64_t) const {
    return combine(a, static_cast<Acc>(ElemTraits<T>::load(v)));
  }
  __device__ void write(int64_t row, Acc a) const { out[row * out_stride] = ElemTraits<T>::store(a); }
};

// all / any: value != 0 (NaN counts as true), result bool.
template <typename T>
struct TruthReducer {
  using In = storage_of<T>;
  using Acc = int32_t;
  bool* out;
  int64_t out_stride;
  bool is_all;
  __device__ Acc identity() const { return is_all ? 1 : 0; }
  __device__ Acc combine(Acc a, Acc b) const { return is_all ? (a & b) : (a | b); }
  __device__ Acc step(Acc a, In v, int64_t, int64_t) const {
    const auto w = ElemTraits<T>::load(v);
    return combine(a, w != decltype(w)(0) ? 1 : 0);
  }
  __device__ void write(int64_t row, Acc a) const { out[row * out_stride] = a != 0; }
};

template <typename A>
struct ArgAcc {
  A value;
  int64_t index;
};

// Value and position of the first extreme element; the first NaN wins (CPU and PyTorch).
// Combining by (value, then smaller index) makes the result independent of the order.
template <typename T>
struct ArgReducer {
  using In = storage_of<T>;
  using A = compare_acc_t<T>;
  using Acc = ArgAcc<A>;
  storage_of<T>* values;  // may be null (argmax/argmin)
  int64_t values_stride;
  int64_t* indices;
  int64_t indices_stride;
  bool is_max;
  __device__ Acc identity() const { return {extreme_identity<T, A>(is_max), std::numeric_limits<int64_t>::max()}; }
  __device__ Acc combine(Acc a, Acc b) const {
    const bool an = is_nan(a.value), bn = is_nan(b.value);
    if (an || bn) {
      if (an && bn) return a.index < b.index ? a : b;
      return an ? a : b;
    }
    if (a.value == b.value) return a.index < b.index ? a : b;
    return (is_max ? a.value > b.value : a.value < b.value) ? a : b;
  }
  __device__ Acc step(Acc a, In v, int64_t, int64_t col) const {
    return combine(a, Acc{static_cast<A>(ElemTraits<T>::load(v)), col});
  }
  __device__ void write(int64_t row, Acc a) const {
    if (values) values[row * values_stride] = ElemTraits<T>::store(a.value);
    indices[row * indices_stride] = a.index;
  }
};

// The input matrix's geometry (the CPU front end hands a [rows, cols] matrix; any strides).
struct Matrix {
  int64_t rows, cols, rs, cs;
};

Matrix matrix_of(const Tensor& in, const char* op) {
  BM_CHECK(in.dim() == 2, Error, op, "expects a [rows, cols] matrix, got shape ", shape_str(in.sizes()));
  return {in.size(0), in.size(1), in.stride(0), in.stride(1)};
}

template <typename T>
void reduce_typed(ReduceOp op, const Tensor& out, const Tensor& in) {
  const Matrix m = matrix_of(in, "reduce");
  const auto* src = static_cast<const storage_of<T>*>(in.data_ptr());
  const int64_t os = out.dim() == 0 ? 0 : out.stride(0);
  const Device dev = in.device();
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Prod: {
      const bool is_sum = op == ReduceOp::Sum;
      if constexpr (kIsFloat<T>) {
        BM_CHECK(out.dtype() == in.dtype(), NotImplementedError, is_sum ? "sum" : "prod", "on CUDA the result dtype must be the input's (",
                 dtype_name(in.dtype()), "), got ", dtype_name(out.dtype()));
        ArithReducer<T, T> r{static_cast<storage_of<T>*>(out.data_ptr()), os, is_sum};
        launch_row_reduce(r, src, m.rows, m.cols, m.rs, m.cs, dev);
      } else {
        BM_CHECK(out.dtype() == DType::Int64, NotImplementedError, is_sum ? "sum" : "prod", "on CUDA integer sums give int64, got ",
                 dtype_name(out.dtype()));
        ArithReducer<T, int64_t> r{static_cast<int64_t*>(out.data_ptr()), os, is_sum};
        launch_row_reduce(r, src, m.rows, m.cols, m.rs, m.cs, dev);
      }
      break;
    }
    case ReduceOp::Max:
    case ReduceOp::Min: {
      ExtremeReducer<T> r{static_cast<storage_of<T>*>(out.data_ptr()), os, op == ReduceOp::Max};
      launch_row_reduce(r, src, m.rows, m.cols, m.rs, m.cs, dev);
      break;
    }
    case ReduceOp::All:
    case ReduceOp::Any: {
      TruthReducer<T> r{static_cast<bool*>(out.data_ptr()), os, op == ReduceOp::All};
      launch_row_reduce(r, src, m.rows, m.cols, m.rs, m.cs, dev);
      break;
    }
  }
}

void reduce_cuda(ReduceOp op, const Tensor& out, const Tensor& in) {
  BM_DISPATCH_ALL(in.dtype(), "reduce", [&] { reduce_typed<scalar_t>(op, out, in); });
}

void arg_reduce_cuda(bool is_max, const Tensor& values, const Tensor& indices, const Tensor& in) {
  const Matrix m = matrix_of(in, is_max ? "argmax" : "argmin");
  BM_DISPATCH_ALL(in.dtype(), is_max ? "argmax" : "argmin", [&] {
    using S = storage_of<scalar_t>;
    ArgReducer<scalar_t> r{values.defined() ? static_cast<S*>(values.data_ptr()) : nullptr,
                           values.defined() && values.dim() > 0 ? values.stride(0) : 0,
                           static_cast<int64_t*>(indices.data_ptr()), indices.dim() > 0 ? indices.stride(0) : 0,
                           is_max};
    launch_row_reduce(r, static_cast<const S*>(in.data_ptr()), m.rows, m.cols, m.rs, m.cs, in.device());
  });
}

// grad_in[r, idx[r]] = grad_out[r] over a zeroed grad_in (all-zero bits are 0.0 in every
// float type). Indices are distinct per row, so no two threads write one element.
template <typename S>
__global__ void index_grad_scatter_kernel(S* __restrict__ grad_in, const int64_t* __restrict__ idx,
                                          const S* __restrict__ grad_out, int64_t rows, int64_t cols,
                                          int64_t idx_stride, int64_t g_stride) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < rows; r += step)
    grad_in[r * cols + idx[r * idx_stride]] = grad_out[r * g_stride];
}

void index_grad_cuda(const Tensor& grad_in, const Tensor& indices, const Tensor& grad_out) {
  BM_CHECK(grad_in.is_contiguous() && grad_in.dim() == 2, Error, "max_backward",
           "expects a contiguous [rows, cols] gradient, got shape ", shape_str(grad_in.sizes()));
  const int64_t rows = grad_in.size(0), cols = grad_in.size(1);
  if (grad_in.numel() == 0) return;
  DeviceGuard guard(grad_in.device().index);
  cudaStream_t stream = current_cuda_stream(grad_in.device().index);
  BM_CUDA_CHECK(cudaMemsetAsync(grad_in.data_ptr(), 0, grad_in.nbytes(), stream));
  const int64_t is = indices.dim() > 0 ? indices.stride(0) : 0, gs = grad_out.dim() > 0 ? grad_out.stride(0) : 0;
  BM_DISPATCH_FLOATING(grad_in.dtype(), "max_backward", [&] {
    using S = storage_of<scalar_t>;
    index_grad_scatter_kernel<S><<<grid_blocks(rows, 256), 256, 0, stream>>>(
        static_cast<S*>(grad_in.data_ptr()), static_cast<const int64_t*>(indices.data_ptr()),
        static_cast<const S*>(grad_out.data_ptr()), rows, cols, is, gs);
    BM_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

BM_REGISTER_KERNEL(reduce_kernel, CUDA, &reduce_cuda);
BM_REGISTER_KERNEL(arg_reduce_kernel, CUDA, &arg_reduce_cuda);
BM_REGISTER_KERNEL(index_grad_kernel, CUDA, &index_grad_cuda);

}  // namespace bigmodel::cuda
