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
#include <string>
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

enum class Op { Forward, BackwardData, BackwardFilter };

// One call's problem, named in every error: the op, x [N, C, H, W], w [O, C/g, kH, kW] and
// y [N, O, oH, oW] (the data of whichever direction runs), the dtype and device.
struct Problem {
  const char* name;  // "conv2d", "conv2d_backward_input", "conv2d_backward_weight"
  Op op;
  DType dtype;
  Device dev;
  const Shape& x;
  const Shape& w;
  const Shape& y;
  const Conv2dParams& p;
  std::string shapes() const {
    return str_cat("x ", shape_str(x), ", w ", shape_str(w), ", y ", shape_str(y), ", ", dtype_name(dtype));
  }
};

void check_cudnn(const Problem& pr, cudnnStatus_t st, const char* expr, const char* file, int line) {
  if (st != CUDNN_STATUS_SUCCESS)
    throw Error(str_cat("[", pr.name, "] cuDNN call ", expr, " failed: ", cudnnGetErrorString(st), " (",
                        pr.shapes(), ") at ", file, ":", line));
}
#define BM_CUDNN_CHECK(pr, expr) check_cudnn((pr), (expr), #expr, __FILE__, __LINE__)

struct Algo {
  int algo = 0;
  size_t workspace = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

std::mutex g_mutex;  // guards the handles, the plan cache and every call on a handle
std::vector<cudnnHandle_t> g_handles;  // per device ordinal; process lifetime
std::map<std::vector<int64_t>, Algo> g_plans;

cudnnHandle_t handle_for(const Problem& pr, cudaStream_t stream) {
  const int device = pr.dev.index;
  if (static_cast<int>(g_handles.size()) <= device) g_handles.resize(device + 1, nullptr);
  if (!g_handles[device]) BM_CUDNN_CHECK(pr, cudnnCreate(&g_handles[device]));
  BM_CUDNN_CHECK(pr, cudnnSetStream(g_handles[device], stream));
  return g_handles[device];
}

cudnnDataType_t cudnn_type(const Problem& pr) {
  switch (pr.dtype) {
    case DType::Float32: return CUDNN_DATA_FLOAT;
    case DType::Float64: return CUDNN_DATA_DOUBLE;
    case DType::Float16: return CUDNN_DATA_HALF;
    case DType::BFloat16: return CUDNN_DATA_BFLOAT16;
    default: throw DTypeError(str_cat("[", pr.name, "] the cuDNN backend has no ", dtype_name(pr.dtype)));
  }
}

// The descriptors of one call, destroyed on scope exit.
struct Descs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  explicit Descs(const Problem& pr) {
    BM_CUDNN_CHECK(pr, cudnnCreateTensorDescriptor(&x));
    BM_CUDNN_CHECK(pr, cudnnCreateTensorDescriptor(&y));
    BM_CUDNN_CHECK(pr, cudnnCreateTensorDescriptor(&bias));
    BM_CUDNN_CHECK(pr, cudnnCreateFilterDescriptor(&w));
    BM_CUDNN_CHECK(pr, cudnnCreateConvolutionDescriptor(&conv));
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

void set_4d(const Problem& pr, cudnnTensorDescriptor_t d, cudnnDataType_t t, const Shape& s) {
  BM_CUDNN_CHECK(pr, cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, t, as_int(s[0]), as_int(s[1]), as_int(s[2]),
                                                as_int(s[3])));
}

// Fills the descriptors from the problem's shapes; false when cuDNN's symmetric padding
// would not give y's spatial size.
bool describe(Descs& d, const Problem& pr) {
  const cudnnDataType_t t = cudnn_type(pr);
  const Shape &xs = pr.x, &ws = pr.w, &ys = pr.y;
  const Conv2dParams& p = pr.p;
  set_4d(pr, d.x, t, xs);
  set_4d(pr, d.y, t, ys);
  set_4d(pr, d.bias, t, {1, ys[1], 1, 1});
  BM_CUDNN_CHECK(pr, cudnnSetFilter4dDescriptor(d.w, t, CUDNN_TENSOR_NCHW, as_int(ws[0]), as_int(ws[1]),
                                                as_int(ws[2]), as_int(ws[3])));
  const cudnnDataType_t compute = pr.dtype == DType::Float64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  BM_CUDNN_CHECK(pr, cudnnSetConvolution2dDescriptor(d.conv, as_int(p.pad_h), as_int(p.pad_w), as_int(p.stride_h),
                                                     as_int(p.stride_w), as_int(p.dilation_h),
                                                     as_int(p.dilation_w), CUDNN_CROSS_CORRELATION, compute));
  BM_CUDNN_CHECK(pr, cudnnSetConvolutionGroupCount(d.conv, as_int(p.groups)));
  int n = 0, c = 0, h = 0, w = 0;
  BM_CUDNN_CHECK(pr, cudnnGetConvolution2dForwardOutputDim(d.conv, d.x, d.w, &n, &c, &h, &w));
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
Algo pick(const Problem& pr, const Perf* perf, int count) {
  const bool fp32 = pr.dtype == DType::Float32 || pr.dtype == DType::Float64;
  for (int i = 0; i < count; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (fp32 && perf[i].mathType != CUDNN_FMA_MATH && perf[i].mathType != CUDNN_DEFAULT_MATH) continue;
    Algo a;
    a.algo = static_cast<int>(perf[i].algo);
    a.workspace = perf[i].memory;
    a.math = perf[i].mathType;
    return a;
  }
  throw Error(str_cat("[", pr.name, "] cuDNN found no algorithm for this problem (", pr.shapes(), ")"));
}

std::vector<int64_t> plan_key(const Problem& pr) {
  std::vector<int64_t> k = {static_cast<int64_t>(pr.op), static_cast<int64_t>(pr.dtype), pr.dev.index};
  for (const Shape* s : {&pr.x, &pr.w, &pr.y}) k.insert(k.end(), s->begin(), s->end());
  const Conv2dParams& p = pr.p;
  k.insert(k.end(), {p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h, p.dilation_w, p.groups});
  return k;
}

struct Scalars {
  float f1 = 1.0f, f0 = 0.0f;
  double d1 = 1.0, d0 = 0.0;
  const void* one(DType t) const { return t == DType::Float64 ? static_cast<const void*>(&d1) : &f1; }
  const void* zero(DType t) const { return t == DType::Float64 ? static_cast<const void*>(&d0) : &f0; }
};

// What a direction's Find and run calls see: the handle (on the current stream), the
// descriptors, and for the run the algorithm with its workspace.
struct Call {
  cudnnHandle_t h;
  const Descs& d;
  const void* one;
  const void* zero;
};

// The body shared by the three directions: descriptors from the shapes, the algorithm found
// once per problem with `find(call, perf, count, &found, scratch, scratch_bytes)` (on a
// scratch workspace, then cached), then `run(call, algo, workspace)` with the algorithm's
// workspace. False when cuDNN cannot express the geometry. Perf is the direction's
// cudnnConvolution*AlgoPerf_t and kAlgos its algorithm count.
template <typename Perf, int kAlgos, typename Find, typename Run>
bool run_conv(const Problem& pr, Find find, Run run) {
  std::lock_guard<std::mutex> lock(g_mutex);
  Descs d(pr);
  if (!describe(d, pr)) return false;
  const Scalars s;
  const Call c{handle_for(pr, current_cuda_stream(pr.dev.index)), d, s.one(pr.dtype), s.zero(pr.dtype)};
  const auto key = plan_key(pr);
  auto it = g_plans.find(key);
  if (it == g_plans.end()) {
    BM_CUDNN_CHECK(pr, cudnnSetConvolutionMathType(d.conv, default_math(pr.dtype)));
    size_t bytes = 0;
    Tensor scratch = find_workspace(pr.dev, bytes);
    Perf perf[kAlgos];
    int count = 0;
    find(c, perf, kAlgos, &count, bytes ? scratch.data_ptr() : nullptr, bytes);
    it = g_plans.emplace(key, pick(pr, perf, count)).first;
  }
  const Algo algo = it->second;
  BM_CUDNN_CHECK(pr, cudnnSetConvolutionMathType(d.conv, algo.math));
  Tensor ws = algo.workspace ? workspace(algo.workspace, pr.dev) : Tensor();
  run(c, algo, algo.workspace ? ws.data_ptr() : nullptr);
  return true;
}

}  // namespace

bool cudnn_conv_forward(const Tensor& out, const Tensor& input, const Tensor& weight, const Tensor& bias,
                        const Conv2dParams& p) {
  const Problem pr{"conv2d", Op::Forward, input.dtype(), out.device(), input.sizes(), weight.sizes(), out.sizes(), p};
  return run_conv<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT>(
      pr,
      [&](const Call& c, auto* perf, int n, int* count, void* scratch, size_t bytes) {
        BM_CUDNN_CHECK(pr, cudnnFindConvolutionForwardAlgorithmEx(c.h, c.d.x, input.data_ptr(), c.d.w,
                                                                  weight.data_ptr(), c.d.conv, c.d.y, out.data_ptr(),
                                                                  n, count, perf, scratch, bytes));
      },
      [&](const Call& c, const Algo& a, void* ws) {
        BM_CUDNN_CHECK(pr, cudnnConvolutionForward(c.h, c.one, c.d.x, input.data_ptr(), c.d.w, weight.data_ptr(),
                                                   c.d.conv, static_cast<cudnnConvolutionFwdAlgo_t>(a.algo), ws,
                                                   a.workspace, c.zero, c.d.y, out.data_ptr()));
        if (bias.defined())
          BM_CUDNN_CHECK(pr, cudnnAddTensor(c.h, c.one, c.d.bias, bias.data_ptr(), c.one, c.d.y, out.data_ptr()));
      });
}

bool cudnn_conv_backward_input(const Tensor& grad_input, const Tensor& grad_output, const Tensor& weight,
                               const Conv2dParams& p) {
  const Problem pr{"conv2d_backward_input", Op::BackwardData, grad_output.dtype(), grad_input.device(),
                   grad_input.sizes(), weight.sizes(), grad_output.sizes(), p};
  return run_conv<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT>(
      pr,
      [&](const Call& c, auto* perf, int n, int* count, void* scratch, size_t bytes) {
        BM_CUDNN_CHECK(pr, cudnnFindConvolutionBackwardDataAlgorithmEx(
                               c.h, c.d.w, weight.data_ptr(), c.d.y, grad_output.data_ptr(), c.d.conv, c.d.x,
                               grad_input.data_ptr(), n, count, perf, scratch, bytes));
      },
      [&](const Call& c, const Algo& a, void* ws) {
        BM_CUDNN_CHECK(pr, cudnnConvolutionBackwardData(
                               c.h, c.one, c.d.w, weight.data_ptr(), c.d.y, grad_output.data_ptr(), c.d.conv,
                               static_cast<cudnnConvolutionBwdDataAlgo_t>(a.algo), ws, a.workspace, c.zero, c.d.x,
                               grad_input.data_ptr()));
      });
}

bool cudnn_conv_backward_weight(const Tensor& grad_weight, const Tensor& grad_output, const Tensor& input,
                                const Conv2dParams& p) {
  const Problem pr{"conv2d_backward_weight", Op::BackwardFilter, grad_output.dtype(), grad_weight.device(),
                   input.sizes(), grad_weight.sizes(), grad_output.sizes(), p};
  return run_conv<cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT>(
      pr,
      [&](const Call& c, auto* perf, int n, int* count, void* scratch, size_t bytes) {
        BM_CUDNN_CHECK(pr, cudnnFindConvolutionBackwardFilterAlgorithmEx(
                               c.h, c.d.x, input.data_ptr(), c.d.y, grad_output.data_ptr(), c.d.conv, c.d.w,
                               grad_weight.data_ptr(), n, count, perf, scratch, bytes));
      },
      [&](const Call& c, const Algo& a, void* ws) {
        BM_CUDNN_CHECK(pr, cudnnConvolutionBackwardFilter(
                               c.h, c.one, c.d.x, input.data_ptr(), c.d.y, grad_output.data_ptr(), c.d.conv,
                               static_cast<cudnnConvolutionBwdFilterAlgo_t>(a.algo), ws, a.workspace, c.zero, c.d.w,
                               grad_weight.data_ptr()));
      });
}

#endif  // BIGMODEL_WITH_CUDNN

}  // namespace bigmodel::cuda::conv_detail
