// The cuDNN baseline of the recurrent layers (bm.backends.rnn = "cudnn"): the kernels behind
// core/ops/rnn.h's cudnn_rnn, a whole RNN tanh/relu, LSTM or GRU stack through cuDNN 9's v8 RNN
// API (cudnnRNNForward, cudnnRNNBackwardData_v8, cudnnRNNBackwardWeights_v8) with padded,
// time-major data descriptors carrying each sequence's length. Without cuDNN at configure time
// (no BIGMODEL_WITH_CUDNN) both kernels raise a clear error.
#include "core/ops/rnn.h"

#ifdef BIGMODEL_WITH_CUDNN
#include <cudnn.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/runtime.h"
#endif

namespace bigmodel::cuda {
namespace {

#ifndef BIGMODEL_WITH_CUDNN

[[noreturn]] void no_cudnn() {
  throw Error(
      "[cudnn_rnn] bigmodel was built without cuDNN (libcudnn / cudnn.h not found when it was "
      "configured); "
      "use bm.backends.rnn = 'ours' (or unset BIGMODEL_RNN)");
}
void rnn_forward_cudnn(const RnnVendorDesc&, const Tensor&, const Tensor&, const Tensor&,
                       const Tensor&, const Tensor&, const Tensor&, const std::vector<Tensor>&,
                       bool, RnnVendorState&) {
  no_cudnn();
}
void rnn_backward_cudnn(const RnnVendorDesc&, const Tensor&, const Tensor&, const Tensor&,
                        const std::vector<Tensor>*, const Tensor&, const Tensor&, const Tensor&,
                        const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        RnnVendorState&) {
  no_cudnn();
}

#else

// The problem in words, for every error message: "LSTM 2 layers bidirectional, input
// [T, B, I], hidden H, float32".
std::string describe(const RnnVendorDesc& d, DType dtype) {
  static const char* cells[] = {"RNN_TANH", "RNN_RELU", "LSTM", "GRU"};
  return str_cat(cells[static_cast<int>(d.cell)], " ", d.num_layers,
                 d.num_layers == 1 ? " layer" : " layers", d.bidirectional ? " bidirectional" : "",
                 ", input [", d.seq_len, ", ", d.batch, ", ", d.input_size, "], hidden ",
                 d.hidden_size, ", ", dtype_name(dtype));
}

void check_cudnn(cudnnStatus_t st, const char* expr, const char* file, int line,
                 const RnnVendorDesc& d, DType dtype) {
  if (st != CUDNN_STATUS_SUCCESS)
    throw Error(str_cat("[cudnn_rnn] cuDNN call ", expr, " failed: ", cudnnGetErrorString(st), " (",
                        describe(d, dtype), ") at ", file, ":", line));
}
// Every cuDNN call names the problem it failed on (d and dtype in scope).
#define BM_CUDNN_RNN_CHECK(expr) check_cudnn((expr), #expr, __FILE__, __LINE__, d, dtype)

std::mutex g_mutex;                    // guards the handles and every call on them
std::vector<cudnnHandle_t> g_handles;  // per device ordinal; process lifetime

cudnnHandle_t handle_for(int device, cudaStream_t stream, const RnnVendorDesc& d, DType dtype) {
  if (static_cast<int>(g_handles.size()) <= device) g_handles.resize(device + 1, nullptr);
  if (!g_handles[device]) BM_CUDNN_RNN_CHECK(cudnnCreate(&g_handles[device]));
  BM_CUDNN_RNN_CHECK(cudnnSetStream(g_handles[device], stream));
  return g_handles[device];
}

int gates_of(RnnCell cell) { return cell == RnnCell::Lstm ? 4 : (cell == RnnCell::Gru ? 3 : 1); }

cudnnRNNMode_t cudnn_mode(RnnCell cell) {
  switch (cell) {
    case RnnCell::Tanh:
      return CUDNN_RNN_TANH;
    case RnnCell::Relu:
      return CUDNN_RNN_RELU;
    case RnnCell::Lstm:
      return CUDNN_LSTM;
    case RnnCell::Gru:
      return CUDNN_GRU;  // n = tanh(W_n x + b_in + r * (R_n h + b_hn)): PyTorch's GRU
  }
  return CUDNN_LSTM;
}

// Data type, compute precision and math type per dtype: float32 true fp32 (FMA, no TF32, as our
// kernels and the conv baseline), half types in tensor-op math with float32 compute.
struct Precision {
  cudnnDataType_t data, math_prec;
  cudnnMathType_t math;
};

Precision precision_of(DType dtype, const RnnVendorDesc& d) {
  switch (dtype) {
    case DType::Float32:
      return {CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT, CUDNN_FMA_MATH};
    case DType::Float64:
      return {CUDNN_DATA_DOUBLE, CUDNN_DATA_DOUBLE, CUDNN_DEFAULT_MATH};
    case DType::Float16:
      return {CUDNN_DATA_HALF, CUDNN_DATA_FLOAT, CUDNN_TENSOR_OP_MATH};
    case DType::BFloat16:
      // cuDNN's RNN takes bfloat16 from 9.13 on; older libraries would fail deep inside.
      if (cudnnGetVersion() < 91300)
        throw DTypeError(
            str_cat("[cudnn_rnn] the cuDNN RNN needs cuDNN >= 9.13 for bfloat16, this is ",
                    cudnnGetVersion(), " (", describe(d, dtype),
                    "); use bm.backends.rnn = 'ours' or float16/float32"));
      return {CUDNN_DATA_BFLOAT16, CUDNN_DATA_FLOAT, CUDNN_TENSOR_OP_MATH};
    default:
      break;
  }
  throw DTypeError(str_cat("[cudnn_rnn] the cuDNN RNN has no ", dtype_name(dtype), " (",
                           describe(d, dtype), ")"));
}

// The descriptors of one call (RNN, its no-op dropout, x/y data, h/c state), destroyed on scope
// exit, and the sizes cuDNN asks for.
struct RnnCall {
  const RnnVendorDesc& d;
  DType dtype;
  cudnnHandle_t handle = nullptr;
  cudnnRNNDescriptor_t rnn = nullptr;
  cudnnDropoutDescriptor_t dropout = nullptr;
  cudnnRNNDataDescriptor_t x = nullptr, y = nullptr;
  cudnnTensorDescriptor_t h = nullptr;
  size_t weight_bytes = 0, work_bytes = 0, reserve_bytes = 0;

  RnnCall(const RnnVendorDesc& desc, DType dt, cudnnHandle_t hnd, cudnnForwardMode_t mode)
      : d(desc), dtype(dt), handle(hnd) {
    try {
      set_up(mode);
    } catch (...) {
      destroy();  // a constructor that throws runs no destructor
      throw;
    }
  }
  ~RnnCall() { destroy(); }
  RnnCall(const RnnCall&) = delete;
  RnnCall& operator=(const RnnCall&) = delete;

 private:
  void set_up(cudnnForwardMode_t mode) {
    const Precision p = precision_of(dtype, d);
    BM_CUDNN_RNN_CHECK(cudnnCreateRNNDescriptor(&rnn));
    BM_CUDNN_RNN_CHECK(cudnnCreateDropoutDescriptor(&dropout));
    BM_CUDNN_RNN_CHECK(cudnnCreateRNNDataDescriptor(&x));
    BM_CUDNN_RNN_CHECK(cudnnCreateRNNDataDescriptor(&y));
    BM_CUDNN_RNN_CHECK(cudnnCreateTensorDescriptor(&h));
    // Dropout between layers is ours (the Python layer runs layer by layer when it is on), so
    // cuDNN's is off: probability 0 needs no RNG states.
    BM_CUDNN_RNN_CHECK(cudnnSetDropoutDescriptor(dropout, handle, 0.0f, nullptr, 0, 0));
    const int H = static_cast<int>(d.hidden_size);
    BM_CUDNN_RNN_CHECK(cudnnSetRNNDescriptor_v8(
        rnn, CUDNN_RNN_ALGO_STANDARD, cudnn_mode(d.cell),
        d.bias ? CUDNN_RNN_DOUBLE_BIAS : CUDNN_RNN_NO_BIAS,
        d.bidirectional ? CUDNN_BIDIRECTIONAL : CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT, p.data,
        p.math_prec, p.math, static_cast<int>(d.input_size), H, /*projSize=*/H,
        static_cast<int>(d.num_layers), dropout, CUDNN_RNN_PADDED_IO_ENABLED));
    // Time-major [T, B, vector] with each sequence's length; outputs past it are written as 0
    // (the zero bit pattern is 0 in every float type, so one double covers them all).
    static double zero = 0.0;  // static: cuDNN may keep the pointer
    const int T = static_cast<int>(d.seq_len), B = static_cast<int>(d.batch);
    const int D = d.bidirectional ? 2 : 1;
    BM_CUDNN_RNN_CHECK(
        cudnnSetRNNDataDescriptor(x, p.data, CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, T, B,
                                  static_cast<int>(d.input_size), d.lengths.data(), &zero));
    BM_CUDNN_RNN_CHECK(cudnnSetRNNDataDescriptor(
        y, p.data, CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, T, B, D * H, d.lengths.data(), &zero));
    const int dims[3] = {static_cast<int>(d.num_layers) * D, B, H};
    const int strides[3] = {B * H, H, 1};
    BM_CUDNN_RNN_CHECK(cudnnSetTensorNdDescriptor(h, p.data, 3, dims, strides));
    BM_CUDNN_RNN_CHECK(cudnnGetRNNWeightSpaceSize(handle, rnn, &weight_bytes));
    BM_CUDNN_RNN_CHECK(
        cudnnGetRNNTempSpaceSizes(handle, rnn, mode, x, &work_bytes, &reserve_bytes));
  }
  void destroy() {
    if (h) cudnnDestroyTensorDescriptor(h);
    if (y) cudnnDestroyRNNDataDescriptor(y);
    if (x) cudnnDestroyRNNDataDescriptor(x);
    if (dropout) cudnnDestroyDropoutDescriptor(dropout);
    if (rnn) cudnnDestroyRNNDescriptor(rnn);
    h = nullptr, y = x = nullptr, dropout = nullptr, rnn = nullptr;
  }
};

// A device buffer of at least `bytes` from the caching allocator (freed when it goes out of
// scope; the allocator keeps it from other streams until this stream's work is done).
Tensor buffer(size_t bytes, DType dtype, Device device) {
  const size_t item = itemsize(dtype);
  return Tensor::empty({static_cast<int64_t>((bytes + item - 1) / item)}, dtype, device);
}

// One contiguous run copied between a PyTorch-named parameter and the weight space.
struct Chunk {
  size_t param;        // index into the weights list
  size_t param_bytes;  // byte offset inside that parameter
  size_t space_bytes;  // byte offset inside the weight space
  size_t bytes;
};

int64_t elements_of(cudnnTensorDescriptor_t desc, const RnnVendorDesc& d, DType dtype) {
  cudnnDataType_t t;
  int nb = 0, dims[8] = {0}, strides[8] = {0};
  BM_CUDNN_RNN_CHECK(cudnnGetTensorNdDescriptor(desc, 8, &t, &nb, dims, strides));
  int64_t n = 1;
  for (int i = 0; i < nb; ++i) n *= dims[i];
  return n;
}

// Where each gate's matrix and bias of each layer and direction lives in the weight space,
// from cudnnGetRNNWeightParams: cuDNN's linear-layer ids 0..G-1 are the input matrices and
// G..2G-1 the recurrent ones, in PyTorch's gate order (i,f,g,o; r,z,n), each matrix row-major
// [H, in] like the matching rows of weight_ih / weight_hh. Runs adjacent in both the parameter
// and the weight space are merged, so a parameter whose gates cuDNN keeps back to back is one
// copy.
std::vector<Chunk> weight_chunks(const RnnCall& call, const Tensor& space) {
  const RnnVendorDesc& d = call.d;
  const DType dtype = call.dtype;
  const int64_t G = gates_of(d.cell), H = d.hidden_size, D = d.bidirectional ? 2 : 1;
  const size_t item = itemsize(dtype), per = d.bias ? 4 : 2;
  struct Descs {  // the matrix and bias descriptors cuDNN fills, destroyed on scope exit
    cudnnTensorDescriptor_t m = nullptr, b = nullptr;
    ~Descs() {
      if (m) cudnnDestroyTensorDescriptor(m);
      if (b) cudnnDestroyTensorDescriptor(b);
    }
  } descs;
  BM_CUDNN_RNN_CHECK(cudnnCreateTensorDescriptor(&descs.m));
  BM_CUDNN_RNN_CHECK(cudnnCreateTensorDescriptor(&descs.b));
  const cudnnTensorDescriptor_t mdesc = descs.m, bdesc = descs.b;
  const char* base = static_cast<const char*>(space.data_ptr());
  std::vector<Chunk> chunks;
  auto add = [&](size_t param, size_t param_bytes, const void* addr, size_t bytes, const char* what,
                 int64_t pseudo, int64_t id) {
    const char* p = static_cast<const char*>(addr);
    const bool inside = p != nullptr && p >= base && p + bytes <= base + call.weight_bytes;
    BM_CHECK_RUNTIME(inside, "cudnn_rnn", "cuDNN placed the ", what, " of pseudo-layer ", pseudo,
                     " id ", id, " outside its weight space (", describe(d, dtype), ")");
    chunks.push_back({param, param_bytes, static_cast<size_t>(p - base), bytes});
  };
  for (int64_t pseudo = 0; pseudo < d.num_layers * D; ++pseudo) {
    const int64_t layer = pseudo / D;
    const int64_t in = layer == 0 ? d.input_size : D * H;
    const size_t first = static_cast<size_t>(pseudo) * per;
    for (int64_t id = 0; id < 2 * G; ++id) {
      const bool recurrent = id >= G;
      const int64_t gate = id % G, cols = recurrent ? H : in;
      void* maddr = nullptr;
      void* baddr = nullptr;
      BM_CUDNN_RNN_CHECK(cudnnGetRNNWeightParams(
          call.handle, call.rnn, static_cast<int32_t>(pseudo), call.weight_bytes, space.data_ptr(),
          static_cast<int32_t>(id), mdesc, &maddr, bdesc, &baddr));
      // Our reading of the layout, checked: a gate's matrix has H x cols elements, its bias H.
      const int64_t melems = elements_of(mdesc, d, dtype);
      BM_CHECK_RUNTIME(melems == H * cols, "cudnn_rnn", "cuDNN's matrix of pseudo-layer ", pseudo,
                       " id ", id, " has ", melems, " elements, expected ", H, " x ", cols, " (",
                       describe(d, dtype), ")");
      add(first + (recurrent ? 1 : 0), static_cast<size_t>(gate * H * cols) * item, maddr,
          static_cast<size_t>(H * cols) * item, "matrix", pseudo, id);
      if (d.bias) {
        const int64_t belems = elements_of(bdesc, d, dtype);
        BM_CHECK_RUNTIME(belems == H, "cudnn_rnn", "cuDNN's bias of pseudo-layer ", pseudo, " id ",
                         id, " has ", belems, " elements, expected ", H, " (", describe(d, dtype),
                         ")");
        add(first + 2 + (recurrent ? 1 : 0), static_cast<size_t>(gate * H) * item, baddr,
            static_cast<size_t>(H) * item, "bias", pseudo, id);
      }
    }
  }
  // In parameter order, runs adjacent on both sides become one copy.
  std::sort(chunks.begin(), chunks.end(), [](const Chunk& a, const Chunk& b) {
    return a.param != b.param ? a.param < b.param : a.param_bytes < b.param_bytes;
  });
  std::vector<Chunk> merged;
  for (const Chunk& c : chunks) {
    if (!merged.empty()) {
      Chunk& last = merged.back();
      if (last.param == c.param && last.param_bytes + last.bytes == c.param_bytes &&
          last.space_bytes + last.bytes == c.space_bytes) {
        last.bytes += c.bytes;
        continue;
      }
    }
    merged.push_back(c);
  }
  return merged;
}

void rnn_forward_cudnn(const RnnVendorDesc& d, const Tensor& y, const Tensor& hy, const Tensor& cy,
                       const Tensor& x, const Tensor& hx, const Tensor& cx,
                       const std::vector<Tensor>& weights, bool training, RnnVendorState& state) {
  const DType dtype = x.dtype();
  const Device dev = x.device();
  const bool lstm = d.cell == RnnCell::Lstm;
  DeviceGuard guard(dev.index);
  std::lock_guard<std::mutex> lock(g_mutex);
  cudaStream_t stream = current_cuda_stream(dev.index);
  const cudnnForwardMode_t mode = training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE;
  RnnCall call(d, dtype, handle_for(dev.index, stream, d, dtype), mode);
  // Pack our parameters into cuDNN's weight space; it is kept for the backward, which then
  // uses exactly the forward's weights. Gaps cuDNN leaves (alignment) are zeroed first.
  Tensor space = buffer(call.weight_bytes, dtype, dev);
  BM_CUDA_CHECK(cudaMemsetAsync(space.data_ptr(), 0, call.weight_bytes, stream));
  for (const Chunk& c : weight_chunks(call, space))
    BM_CUDA_CHECK(
        cudaMemcpyAsync(static_cast<char*>(space.data_ptr()) + c.space_bytes,
                        static_cast<const char*>(weights[c.param].data_ptr()) + c.param_bytes,
                        c.bytes, cudaMemcpyDeviceToDevice, stream));
  Tensor work = buffer(call.work_bytes, dtype, dev);
  Tensor reserve = training ? buffer(call.reserve_bytes, dtype, dev) : Tensor();
  const int32_t* lengths = static_cast<const int32_t*>(state.dev_lengths.data_ptr());
  BM_CUDNN_RNN_CHECK(cudnnRNNForward(
      call.handle, call.rnn, mode, lengths, call.x, x.data_ptr(), call.y, y.data_ptr(), call.h,
      hx.data_ptr(), hy.data_ptr(), call.h, lstm ? cx.data_ptr() : nullptr,
      lstm ? cy.data_ptr() : nullptr, call.weight_bytes, space.data_ptr(), call.work_bytes,
      call.work_bytes ? work.data_ptr() : nullptr, training ? call.reserve_bytes : 0,
      training && call.reserve_bytes ? reserve.data_ptr() : nullptr));
  if (sync_debug_enabled()) BM_CUDA_CHECK(cudaStreamSynchronize(stream));
  state.weight_space = space;
  state.reserve = reserve;
}

void rnn_backward_cudnn(const RnnVendorDesc& d, const Tensor& dx, const Tensor& dhx,
                        const Tensor& dcx, const std::vector<Tensor>* grad_weights, const Tensor& x,
                        const Tensor& hx, const Tensor& cx, const Tensor& y, const Tensor& dy,
                        const Tensor& dhy, const Tensor& dcy, RnnVendorState& state) {
  const DType dtype = x.dtype();
  const Device dev = x.device();
  const bool lstm = d.cell == RnnCell::Lstm;
  BM_CHECK_RUNTIME(state.reserve.defined(), "cudnn_rnn",
                   "backward of a forward run without grad (no cuDNN reserve space) (",
                   describe(d, dtype), ")");
  DeviceGuard guard(dev.index);
  std::lock_guard<std::mutex> lock(g_mutex);
  cudaStream_t stream = current_cuda_stream(dev.index);
  RnnCall call(d, dtype, handle_for(dev.index, stream, d, dtype), CUDNN_FWD_MODE_TRAINING);
  const size_t reserve_have = state.reserve.nbytes();
  BM_CHECK_RUNTIME(
      call.weight_bytes <= state.weight_space.nbytes() && call.reserve_bytes <= reserve_have,
      "cudnn_rnn", "cuDNN's weight/reserve sizes changed between forward and backward (",
      describe(d, dtype), ")");
  const int32_t* lengths = static_cast<const int32_t*>(state.dev_lengths.data_ptr());
  Tensor work = buffer(call.work_bytes, dtype, dev);
  void* work_ptr = call.work_bytes ? work.data_ptr() : nullptr;
  void* reserve_ptr = call.reserve_bytes ? state.reserve.data_ptr() : nullptr;
  // Past a sequence's length x had no effect: its gradient there is 0, whether or not cuDNN
  // writes the padding.
  BM_CUDA_CHECK(cudaMemsetAsync(dx.data_ptr(), 0, dx.nbytes(), stream));
  BM_CUDNN_RNN_CHECK(cudnnRNNBackwardData_v8(
      call.handle, call.rnn, lengths, call.y, y.data_ptr(), dy.data_ptr(), call.x, dx.data_ptr(),
      call.h, hx.data_ptr(), dhy.data_ptr(), dhx.data_ptr(), call.h, lstm ? cx.data_ptr() : nullptr,
      lstm ? dcy.data_ptr() : nullptr, lstm ? dcx.data_ptr() : nullptr, call.weight_bytes,
      state.weight_space.data_ptr(), call.work_bytes, work_ptr, call.reserve_bytes, reserve_ptr));
  if (grad_weights) {
    // cuDNN only adds into the weight gradient space, so it starts at zero.
    Tensor dspace = buffer(call.weight_bytes, dtype, dev);
    BM_CUDA_CHECK(cudaMemsetAsync(dspace.data_ptr(), 0, call.weight_bytes, stream));
    BM_CUDNN_RNN_CHECK(cudnnRNNBackwardWeights_v8(
        call.handle, call.rnn, CUDNN_WGRAD_MODE_ADD, lengths, call.x, x.data_ptr(), call.h,
        hx.data_ptr(), call.y, y.data_ptr(), call.weight_bytes, dspace.data_ptr(), call.work_bytes,
        work_ptr, call.reserve_bytes, reserve_ptr));
    // The chunks of dspace come out at the same offsets as those of the forward's space.
    for (const Chunk& c : weight_chunks(call, dspace))
      BM_CUDA_CHECK(
          cudaMemcpyAsync(static_cast<char*>((*grad_weights)[c.param].data_ptr()) + c.param_bytes,
                          static_cast<const char*>(dspace.data_ptr()) + c.space_bytes, c.bytes,
                          cudaMemcpyDeviceToDevice, stream));
  }
  if (sync_debug_enabled()) BM_CUDA_CHECK(cudaStreamSynchronize(stream));
}

#endif  // BIGMODEL_WITH_CUDNN

}  // namespace

BM_REGISTER_KERNEL(rnn_vendor_forward_kernel, CUDA, &rnn_forward_cudnn);
BM_REGISTER_KERNEL(rnn_vendor_backward_kernel, CUDA, &rnn_backward_cudnn);

}  // namespace bigmodel::cuda
