// The cuDNN baseline behind the conv kernels' signatures (bm.backends.conv = "cudnn"): NCHW
// descriptors, one handle per device (its stream set to the current one on each call), the
// algorithm found once per problem with cudnnFind*AlgorithmEx and cached, and workspaces
// taken from the caching allocator. float32 / float64 use CUDNN_FMA_MATH (true fp32, like our
// kernels; no TF32), half types the tensor-op math with float32 compute. Without cuDNN at
// configure time (no BIGMODEL_WITH_CUDNN) every call raises a clear error.
#include "kernels/cuda/conv_internal.h"

#ifdef BIGMODEL_WITH_CUDNN
#include <cudnn.h>

#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/runtime.h"
#endif

namespace bigmodel::cuda::conv_detail {

#ifndef BIGMODEL_WITH_CUDNN

namespace {
[[noreturn]] void no_cudnn(const char* op) {
  throw Error(str_cat("[", op, "] bigmodel was built without cuDNN (libcudnn / cudnn.h not found when it was "
                      "configured); use bm.backends.conv = 'ours' (or unset BIGMODEL_CONV)"));
}
}  // namespace

bool cudnn_conv_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Conv2dParams&) {
  no_cudnn("conv2d");
}
bool cudnn_conv_backward_input(const Tensor&, const Tensor&, const Tensor&, const Conv2dParams&) {
  no_cudnn("conv2d_backward_input");
}
bool cudnn_conv_backward_weight(const Tensor&, const Tensor&, const Tensor&, const Conv2dParams&) {
  no_cudnn("conv2d_backward_weight");
}

#else

namespace {

void check_cudnn(cudnnStatus_t st, const char* expr, const char* file, int line) {
  if (st != CUDNN_STATUS_SUCCESS)
    throw Error(str_cat("[conv2d] cuDNN call ", expr, " failed: ", cudnnGetErrorString(st), " at ", file, ":", line));
}
#define BM_CUDNN_CHECK(expr) check_cudnn((expr), #expr, __FILE__, __LINE__)

enum class Op { Forward, BackwardData, BackwardFilter };

struct Algo {
  int algo = 0;
  size_t workspace = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

std::mutex g_mutex;  // guards the handles, the plan cache and every call on a handle
std::vector<cudnnHandle_t> g_handles;  // per device ordinal; process lifetime
std::map<std::vector<int64_t>, Algo> g_plans;

cudnnHandle_t handle_for(int device, cudaStream_t stream) {
  if (static_cast<int>(g_handles.size()) <= device) g_handles.resize(device + 1, nullptr);
  if (!g_handles[device]) BM_CUDNN_CHECK(cudnnCreate(&g_handles[device]));
  BM_CUDNN_CHECK(cudnnSetStream(g_handles[device], stream));
  return g_handles[device];
}

cudnnDataType_t cudnn_type(DType t) {
  switch (t) {
    case DType::Float32: return CUDNN_DATA_FLOAT;
    case DType::Float64: return CUDNN_DATA_DOUBLE;
    case DType::Float16: return CUDNN_DATA_HALF;
    case DType::BFloat16: return CUDNN_DATA_BFLOAT16;
    default: throw DTypeError(str_cat("[conv2d] the cuDNN backend has no ", dtype_name(t)));
  }
}

// The descriptors of one call, destroyed on scope exit.
struct Descs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Descs() {
    BM_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    BM_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    BM_CUDNN_CHECK(cudnnCreateTensorDescriptor(&bias));
    BM_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    BM_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
  }
  ~Descs() {
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyTensorDescriptor(bias);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(x);
  }
  Descs(const Descs&) = delete;
  Descs& operator=(const Descs&) = delete;
};

int as_int(int64_t v) { return static_cast<int>(v); }

// Fills the descriptors for x [N, C, H, W], w [O, C/g, kH, kW], y [N, O, oH, oW]; false
// when cuDNN's symmetric padding would not give y's spatial size.
bool describe(Descs& d, DType dtype, const Shape& xs, const Shape& ws, const Shape& ys, const Conv2dParams& p) {
  const cudnnDataType_t t = cudnn_type(dtype);
  BM_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NCHW, t, as_int(xs[0]), as_int(xs[1]), as_int(xs[2]),
                                            as_int(xs[3])));
  BM_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d.y, CUDNN_TENSOR_NCHW, t, as_int(ys[0]), as_int(ys[1]), as_int(ys[2]),
                                            as_int(ys[3])));
  BM_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d.bias, CUDNN_TENSOR_NCHW, t, 1, as_int(ys[1]), 1, 1));
  BM_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d.w, t, CUDNN_TENSOR_NCHW, as_int(ws[0]), as_int(ws[1]), as_int(ws[2]),
                                            as_int(ws[3])));
  const cudnnDataType_t compute = dtype == DType::Float64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  BM_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d.conv, as_int(p.pad_h), as_int(p.pad_w), as_int(p.stride_h),
                                                 as_int(p.stride_w), as_int(p.dilation_h), as_int(p.dilation_w),
                                                 CUDNN_CROSS_CORRELATION, compute));
  BM_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d.conv, as_int(p.groups)));
  int n = 0, c = 0, h = 0, w = 0;
  BM_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(d.conv, d.x, d.w, &n, &c, &h, &w));
  return n == ys[0] && c == ys[1] && h == ys[2] && w == ys[3];
}

cudnnMathType_t default_math(DType dtype) {
  return (dtype == DType::Float16 || dtype == DType::BFloat16) ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

// A float32 buffer of at least `bytes` from the caching allocator (freed when it goes out
// of scope; the allocator keeps it from other streams until this stream's work is done).
Tensor workspace(size_t bytes, Device device) {
  return Tensor::empty({static_cast<int64_t>((bytes + 3) / 4)}, DType::Float32, device);
}

constexpr size_t kFindWorkspace = size_t{256} << 20;

Tensor find_workspace(Device device, size_t& bytes) {
  try {
    bytes = kFindWorkspace;
    return workspace(bytes, device);
  } catch (const OutOfMemoryError&) {
    bytes = 0;
    return Tensor();
  }
}

// The first successful result of a Find call whose math type we accept (fp32 stays off TF32).
template <typename Perf>
Algo pick(const Perf* perf, int count, DType dtype, const char* what) {
  const bool fp32 = dtype == DType::Float32 || dtype == DType::Float64;
  for (int i = 0; i < count; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (fp32 && perf[i].mathType != CUDNN_FMA_MATH && perf[i].mathType != CUDNN_DEFAULT_MATH) continue;
    Algo a;
    a.algo = static_cast<int>(perf[i].algo);
    a.workspace = perf[i].memory;
    a.math = perf[i].mathType;
    return a;
  }
  throw Error(str_cat("[conv2d] cuDNN found no ", what, " algorithm for this problem"));
}

std::vector<int64_t> plan_key(Op op, DType dtype, int device, const Shape& xs, const Shape& ws, const Shape& ys,
                              const Conv2dParams& p) {
  std::vector<int64_t> k = {static_cast<int64_t>(op), static_cast<int64_t>(dtype), device};
  for (const Shape* s : {&xs, &ws, &ys}) k.insert(k.end(), s->begin(), s->end());
  k.insert(k.end(), {p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h, p.dilation_w, p.groups});
  return k;
}

struct Scalars {
  float f1 = 1.0f, f0 = 0.0f;
  double d1 = 1.0, d0 = 0.0;
  const void* one(DType t) const { return t == DType::Float64 ? static_cast<const void*>(&d1) : &f1; }
  const void* zero(DType t) const { return t == DType::Float64 ? static_cast<const void*>(&d0) : &f0; }
};

}  // namespace

bool cudnn_conv_forward(const Tensor& out, const Tensor& input, const Tensor& weight, const Tensor& bias,
                        const Conv2dParams& p) {
  const DType dtype = input.dtype();
  const Device dev = out.device();
  std::lock_guard<std::mutex> lock(g_mutex);
  Descs d;
  if (!describe(d, dtype, input.sizes(), weight.sizes(), out.sizes(), p)) return false;
  cudaStream_t stream = current_cuda_stream(dev.index);
  cudnnHandle_t h = handle_for(dev.index, stream);
  const auto key = plan_key(Op::Forward, dtype, dev.index, input.sizes(), weight.sizes(), out.sizes(), p);
  auto it = g_plans.find(key);
  if (it == g_plans.end()) {
    BM_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, default_math(dtype)));
    size_t bytes = 0;
    Tensor ws = find_workspace(dev, bytes);
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    BM_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
        h, d.x, input.data_ptr(), d.w, weight.data_ptr(), d.conv, d.y, out.data_ptr(),
        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf, bytes ? ws.data_ptr() : nullptr, bytes));
    it = g_plans.emplace(key, pick(perf, count, dtype, "forward")).first;
  }
  const Algo algo = it->second;
  BM_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, algo.math));
  Tensor ws = algo.workspace ? workspace(algo.workspace, dev) : Tensor();
  const Scalars s;
  BM_CUDNN_CHECK(cudnnConvolutionForward(h, s.one(dtype), d.x, input.data_ptr(), d.w, weight.data_ptr(), d.conv,
                                         static_cast<cudnnConvolutionFwdAlgo_t>(algo.algo),
                                         algo.workspace ? ws.data_ptr() : nullptr, algo.workspace, s.zero(dtype),
                                         d.y, out.data_ptr()));
  if (bias.defined())
    BM_CUDNN_CHECK(cudnnAddTensor(h, s.one(dtype), d.bias, bias.data_ptr(), s.one(dtype), d.y, out.data_ptr()));
  return true;
}

bool cudnn_conv_backward_input(const Tensor& grad_input, const Tensor& grad_output, const Tensor& weight,
                               const Conv2dParams& p) {
  const DType dtype = grad_output.dtype();
  const Device dev = grad_input.device();
  std::lock_guard<std::mutex> lock(g_mutex);
  Descs d;
  if (!describe(d, dtype, grad_input.sizes(), weight.sizes(), grad_output.sizes(), p)) return false;
  cudaStream_t stream = current_cuda_stream(dev.index);
  cudnnHandle_t h = handle_for(dev.index, stream);
  const auto key =
      plan_key(Op::BackwardData, dtype, dev.index, grad_input.sizes(), weight.sizes(), grad_output.sizes(), p);
  auto it = g_plans.find(key);
  if (it == g_plans.end()) {
    BM_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, default_math(dtype)));
    size_t bytes = 0;
    Tensor ws = find_workspace(dev, bytes);
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int count = 0;
    BM_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
        h, d.w, weight.data_ptr(), d.y, grad_output.data_ptr(), d.conv, d.x, grad_input.data_ptr(),
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf, bytes ? ws.data_ptr() : nullptr, bytes));
    it = g_plans.emplace(key, pick(perf, count, dtype, "backward-data")).first;
  }
  const Algo algo = it->second;
  BM_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, algo.math));
  Tensor ws = algo.workspace ? workspace(algo.workspace, dev) : Tensor();
  const Scalars s;
  BM_CUDNN_CHECK(cudnnConvolutionBackwardData(h, s.one(dtype), d.w, weight.data_ptr(), d.y, grad_output.data_ptr(),
                                              d.conv, static_cast<cudnnConvolutionBwdDataAlgo_t>(algo.algo),
                                              algo.workspace ? ws.data_ptr() : nullptr, algo.workspace,
                                              s.zero(dtype), d.x, grad_input.data_ptr()));
  return true;
}

bool cudnn_conv_backward_weight(const Tensor& grad_weight, const Tensor& grad_output, const Tensor& input,
                                const Conv2dParams& p) {
  const DType dtype = grad_output.dtype();
  const Device dev = grad_weight.device();
  std::lock_guard<std::mutex> lock(g_mutex);
  Descs d;
  if (!describe(d, dtype, input.sizes(), grad_weight.sizes(), grad_output.sizes(), p)) return false;
  cudaStream_t stream = current_cuda_stream(dev.index);
  cudnnHandle_t h = handle_for(dev.index, stream);
  const auto key =
      plan_key(Op::BackwardFilter, dtype, dev.index, input.sizes(), grad_weight.sizes(), grad_output.sizes(), p);
  auto it = g_plans.find(key);
  if (it == g_plans.end()) {
    BM_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, default_math(dtype)));
    size_t bytes = 0;
    Tensor ws = find_workspace(dev, bytes);
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int count = 0;
    BM_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
        h, d.x, input.data_ptr(), d.y, grad_output.data_ptr(), d.conv, d.w, grad_weight.data_ptr(),
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf, bytes ? ws.data_ptr() : nullptr, bytes));
    it = g_plans.emplace(key, pick(perf, count, dtype, "backward-filter")).first;
  }
  const Algo algo = it->second;
  BM_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, algo.math));
  Tensor ws = algo.workspace ? workspace(algo.workspace, dev) : Tensor();
  const Scalars s;
  BM_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, s.one(dtype), d.x, input.data_ptr(), d.y, grad_output.data_ptr(),
                                                d.conv, static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo.algo),
                                                algo.workspace ? ws.data_ptr() : nullptr, algo.workspace,
                                                s.zero(dtype), d.w, grad_weight.data_ptr()));
  return true;
}

#endif  // BIGMODEL_WITH_CUDNN

}  // namespace bigmodel::cuda::conv_detail
