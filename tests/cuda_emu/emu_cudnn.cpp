// CUDA-on-CPU emulation of cuDNN's legacy API, part 1 (-DBIGMODEL_CUDA=EMULATE only): the
// handle and its stream, version and error strings, tensor / filter / convolution descriptors,
// cudnnGetConvolution2dForwardOutputDim and cudnnAddTensor. The convolutions themselves are in
// emu_cudnn_conv.cpp, the RNN API in emu_cudnn_rnn.cpp. Each check cites the documented rule
// (cuDNN 9 API reference, cudnn_ops / cudnn_cnn / cudnn_graph) it follows; the semantics come
// from that documentation, never from how bigmodel's wrappers (kernels/cuda/*_cudnn.cu) use
// them, since those wrappers are what this emulation tests.
#include "tests/cuda_emu/emu_cudnn.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/half.h"
#include "tests/cuda_emu/emu_streams.h"

namespace bm_emu_cudnn {

cudnnStatus_t fail(cudnnStatus_t st, const char* fn, const char* why) {
  std::fprintf(stderr, "[emu-cudnn] %s: %s -> %s\n", fn, why, cudnnGetErrorString(st));
  return st;
}

size_t type_size(cudnnDataType_t t) {
  switch (t) {
    case CUDNN_DATA_FLOAT: return 4;
    case CUDNN_DATA_DOUBLE: return 8;
    case CUDNN_DATA_HALF:
    case CUDNN_DATA_BFLOAT16: return 2;
    default: return 0;
  }
}

double load(cudnnDataType_t t, const void* p, int64_t i) {
  switch (t) {
    case CUDNN_DATA_FLOAT: return static_cast<const float*>(p)[i];
    case CUDNN_DATA_DOUBLE: return static_cast<const double*>(p)[i];
    case CUDNN_DATA_HALF: {
      bigmodel::Half h;
      std::memcpy(&h.bits, static_cast<const char*>(p) + 2 * i, 2);
      return static_cast<float>(h);
    }
    case CUDNN_DATA_BFLOAT16: {
      bigmodel::BFloat16 h;
      std::memcpy(&h.bits, static_cast<const char*>(p) + 2 * i, 2);
      return static_cast<float>(h);
    }
    default: return 0;
  }
}

void store(cudnnDataType_t t, void* p, int64_t i, double v) {
  switch (t) {
    case CUDNN_DATA_FLOAT: static_cast<float*>(p)[i] = static_cast<float>(v); break;
    case CUDNN_DATA_DOUBLE: static_cast<double*>(p)[i] = v; break;
    case CUDNN_DATA_HALF: {
      const bigmodel::Half h(static_cast<float>(v));
      std::memcpy(static_cast<char*>(p) + 2 * i, &h.bits, 2);
      break;
    }
    case CUDNN_DATA_BFLOAT16: {
      const bigmodel::BFloat16 h(static_cast<float>(v));
      std::memcpy(static_cast<char*>(p) + 2 * i, &h.bits, 2);
      break;
    }
    default: break;
  }
}

double round_to(cudnnDataType_t t, double v) {
  char buf[8];
  store(t, buf, 0, v);
  return load(t, buf, 0);
}

void scribble(void* p, size_t bytes) {
  if (p && bytes) std::memset(p, 0xFF, bytes);
}

}  // namespace bm_emu_cudnn

using bm_emu_cudnn::fail;

// ---- handle, version, errors (cudnn_graph) ----

size_t CUDNNWINAPI cudnnGetVersion(void) { return CUDNN_VERSION; }

const char* CUDNNWINAPI cudnnGetErrorString(cudnnStatus_t status) {
  switch (status) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_BAD_PARAM_NULL_POINTER: return "CUDNN_STATUS_BAD_PARAM_NULL_POINTER";
    case CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH: return "CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED: return "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
    case 2001: return "CUDNN_STATUS_INVALID_VALUE";
    default: return "CUDNN_UNKNOWN_STATUS_FOUND";
  }
}

cudnnStatus_t CUDNNWINAPI cudnnCreate(cudnnHandle_t* handle) {
  return bm_emu_cudnn::create(handle, "cudnnCreate");
}

cudnnStatus_t CUDNNWINAPI cudnnDestroy(cudnnHandle_t handle) {
  return bm_emu_cudnn::destroy(handle);
}

// cudnnSetStream: "the cuDNN library functions will use this stream"; the emulation runs every
// call at once, so the stream is only kept (NULL is the default stream, allowed).
cudnnStatus_t CUDNNWINAPI cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
  if (!handle) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetStream", "handle is NULL");
  handle->stream = streamId;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnGetStream(cudnnHandle_t handle, cudaStream_t* streamId) {
  if (!handle || !streamId) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetStream", "NULL argument");
  *streamId = handle->stream;
  return CUDNN_STATUS_SUCCESS;
}

// ---- tensor descriptors (cudnn_graph / cudnn_ops) ----

cudnnStatus_t CUDNNWINAPI cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* tensorDesc) {
  return bm_emu_cudnn::create(tensorDesc, "cudnnCreateTensorDescriptor");
}

cudnnStatus_t CUDNNWINAPI cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc) {
  return bm_emu_cudnn::destroy(tensorDesc);
}

namespace {

// The element count a tensor spans must stay below 2 Giga-elements ("the total size of a
// tensor including the potential padding between dimensions is limited to 2 Giga-elements of
// type datatype": NOT_SUPPORTED beyond).
bool too_big(int nb, const int* dims, const int* strides) {
  int64_t span = 1;
  for (int i = 0; i < nb; ++i) span += static_cast<int64_t>(dims[i] - 1) * strides[i];
  return span > (int64_t{1} << 31);
}

}  // namespace

// cudnnSetTensorNdDescriptor: BAD_PARAM when an element of dimA is <= 0 or the data type is
// invalid; NOT_SUPPORTED when nbDims is outside [3, CUDNN_DIM_MAX] or the tensor exceeds 2
// Giga-elements ("do not use 2 dimensions": the RNN API's hidden-state descriptors are 3-d).
// Negative strides: "xDesc or yDesc have negative tensor striding" is NOT_SUPPORTED by the
// compute functions; the emulation refuses them here already, with that status.
cudnnStatus_t CUDNNWINAPI cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnDataType_t dataType,
                                                     int nbDims, const int dimA[], const int strideA[]) {
  const char* fn = "cudnnSetTensorNdDescriptor";
  if (!tensorDesc || !dimA || !strideA) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL argument");
  if (bm_emu_cudnn::type_size(dataType) == 0)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "data type not float/double/half/bfloat16 (emulated types)");
  if (nbDims < 3 || nbDims > CUDNN_DIM_MAX) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "nbDims outside [3, 8]");
  for (int i = 0; i < nbDims; ++i) {
    if (dimA[i] <= 0) return fail(CUDNN_STATUS_BAD_PARAM, fn, "a dimension is <= 0");
    if (strideA[i] < 0) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "negative stride");
  }
  if (too_big(nbDims, dimA, strideA)) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "more than 2 Giga-elements");
  tensorDesc->set = true;
  tensorDesc->dtype = dataType;
  tensorDesc->nb = nbDims;
  std::copy(dimA, dimA + nbDims, tensorDesc->dims);
  std::copy(strideA, strideA + nbDims, tensorDesc->strides);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t tensorDesc, cudnnDataType_t dataType,
                                                       int n, int c, int h, int w, int nStride, int cStride,
                                                       int hStride, int wStride) {
  const int dims[4] = {n, c, h, w}, strides[4] = {nStride, cStride, hStride, wStride};
  return cudnnSetTensorNdDescriptor(tensorDesc, dataType, 4, dims, strides);
}

// cudnnSetTensor4dDescriptor: NCHW gives strides (c*h*w, h*w, w, 1), NHWC (h*w*c, 1, w*c, c);
// NCHW_VECT_C is an int8x4/x32 layout, not emulated (NOT_SUPPORTED here). BAD_PARAM for a
// dimension <= 0 or an invalid format / data type.
cudnnStatus_t CUDNNWINAPI cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnTensorFormat_t format,
                                                     cudnnDataType_t dataType, int n, int c, int h, int w) {
  const char* fn = "cudnnSetTensor4dDescriptor";
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return fail(CUDNN_STATUS_BAD_PARAM, fn, "a dimension is <= 0");
  if (format == CUDNN_TENSOR_NCHW) return cudnnSetTensor4dDescriptorEx(tensorDesc, dataType, n, c, h, w, c * h * w, h * w, w, 1);
  if (format == CUDNN_TENSOR_NHWC) return cudnnSetTensor4dDescriptorEx(tensorDesc, dataType, n, c, h, w, h * w * c, 1, w * c, c);
  if (format == CUDNN_TENSOR_NCHW_VECT_C) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "NCHW_VECT_C is not emulated");
  return fail(CUDNN_STATUS_BAD_PARAM, fn, "invalid format");
}

// cudnnGetTensorNdDescriptor: the rank goes to *nbDims, the first min(nbDims, nbDimsRequested)
// dimensions and strides to dimA / strideA.
cudnnStatus_t CUDNNWINAPI cudnnGetTensorNdDescriptor(const cudnnTensorDescriptor_t tensorDesc, int nbDimsRequested,
                                                     cudnnDataType_t* dataType, int* nbDims, int dimA[],
                                                     int strideA[]) {
  const char* fn = "cudnnGetTensorNdDescriptor";
  if (!tensorDesc || !dataType || !nbDims) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL argument");
  if (nbDimsRequested < 0) return fail(CUDNN_STATUS_BAD_PARAM, fn, "nbDimsRequested < 0");
  if (!tensorDesc->set) return fail(CUDNN_STATUS_BAD_PARAM, fn, "descriptor was never set");
  *dataType = tensorDesc->dtype;
  *nbDims = tensorDesc->nb;
  for (int i = 0; i < std::min(nbDimsRequested, tensorDesc->nb); ++i) {
    if (dimA) dimA[i] = tensorDesc->dims[i];
    if (strideA) strideA[i] = tensorDesc->strides[i];
  }
  return CUDNN_STATUS_SUCCESS;
}

// ---- filter descriptors (cudnn_cnn) ----

cudnnStatus_t CUDNNWINAPI cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* filterDesc) {
  return bm_emu_cudnn::create(filterDesc, "cudnnCreateFilterDescriptor");
}

cudnnStatus_t CUDNNWINAPI cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc) {
  return bm_emu_cudnn::destroy(filterDesc);
}

// cudnnSetFilter4dDescriptor: k output maps, c input maps (per group), h x w; format NCHW keeps
// KCRS order, NHWC KRSC. BAD_PARAM for a parameter <= 0 or an invalid format.
cudnnStatus_t CUDNNWINAPI cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc, cudnnDataType_t dataType,
                                                     cudnnTensorFormat_t format, int k, int c, int h, int w) {
  const char* fn = "cudnnSetFilter4dDescriptor";
  if (!filterDesc) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL descriptor");
  if (k <= 0 || c <= 0 || h <= 0 || w <= 0) return fail(CUDNN_STATUS_BAD_PARAM, fn, "a dimension is <= 0");
  if (bm_emu_cudnn::type_size(dataType) == 0) return fail(CUDNN_STATUS_BAD_PARAM, fn, "data type not emulated");
  if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "format is not NCHW or NHWC");
  filterDesc->set = true;
  filterDesc->dtype = dataType;
  filterDesc->format = format;
  filterDesc->nb = 4;
  const int dims[4] = {k, c, h, w};
  std::copy(dims, dims + 4, filterDesc->dims);
  return CUDNN_STATUS_SUCCESS;
}

// ---- convolution descriptors (cudnn_cnn) ----

cudnnStatus_t CUDNNWINAPI cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* convDesc) {
  return bm_emu_cudnn::create(convDesc, "cudnnCreateConvolutionDescriptor");
}

cudnnStatus_t CUDNNWINAPI cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc) {
  return bm_emu_cudnn::destroy(convDesc);
}

// cudnnSetConvolution2dDescriptor: BAD_PARAM when pad_h or pad_w < 0, u or v <= 0, a dilation
// <= 0, or the mode is invalid. Group count 1 and default math until set otherwise.
cudnnStatus_t CUDNNWINAPI cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h,
                                                          int pad_w, int u, int v, int dilation_h, int dilation_w,
                                                          cudnnConvolutionMode_t mode,
                                                          cudnnDataType_t computeType) {
  const char* fn = "cudnnSetConvolution2dDescriptor";
  if (!convDesc) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL descriptor");
  if (pad_h < 0 || pad_w < 0) return fail(CUDNN_STATUS_BAD_PARAM, fn, "negative padding");
  if (u <= 0 || v <= 0) return fail(CUDNN_STATUS_BAD_PARAM, fn, "stride <= 0");
  if (dilation_h <= 0 || dilation_w <= 0) return fail(CUDNN_STATUS_BAD_PARAM, fn, "dilation <= 0");
  if (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) return fail(CUDNN_STATUS_BAD_PARAM, fn, "bad mode");
  if (bm_emu_cudnn::type_size(computeType) == 0) return fail(CUDNN_STATUS_BAD_PARAM, fn, "bad compute type");
  convDesc->set = true;
  convDesc->pad[0] = pad_h, convDesc->pad[1] = pad_w;
  convDesc->stride[0] = u, convDesc->stride[1] = v;
  convDesc->dilation[0] = dilation_h, convDesc->dilation[1] = dilation_w;
  convDesc->mode = mode;
  convDesc->compute = computeType;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t convDesc, int groupCount) {
  if (!convDesc || groupCount < 1)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolutionGroupCount", "NULL descriptor or groupCount < 1");
  convDesc->groups = groupCount;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc, cudnnMathType_t mathType) {
  if (!convDesc) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolutionMathType", "NULL descriptor");
  if (mathType != CUDNN_DEFAULT_MATH && mathType != CUDNN_TENSOR_OP_MATH &&
      mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && mathType != CUDNN_FMA_MATH)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolutionMathType", "invalid math type");
  convDesc->math = mathType;
  return CUDNN_STATUS_SUCCESS;
}

// cudnnGetConvolution2dForwardOutputDim: n = input n, c = filter k, and per spatial dimension
// out = 1 + (in + 2*pad - ((filter - 1)*dilation + 1)) / stride. BAD_PARAM when a descriptor
// is not a set 4-d one, when the input's feature maps are not filter c * groups, or when the
// dilated filter is larger than the padded input.
cudnnStatus_t CUDNNWINAPI cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t convDesc,
                                                                const cudnnTensorDescriptor_t inputTensorDesc,
                                                                const cudnnFilterDescriptor_t filterDesc, int* n,
                                                                int* c, int* h, int* w) {
  const char* fn = "cudnnGetConvolution2dForwardOutputDim";
  if (!convDesc || !inputTensorDesc || !filterDesc || !n || !c || !h || !w)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL argument");
  if (!convDesc->set || !inputTensorDesc->set || !filterDesc->set || inputTensorDesc->nb != 4 || filterDesc->nb != 4)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "descriptor not set, or not 4-d");
  const int* x = inputTensorDesc->dims;
  const int* f = filterDesc->dims;
  if (x[1] != f[1] * convDesc->groups)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "input feature maps != filter c * group count");
  int out[2];
  for (int i = 0; i < 2; ++i) {
    const int span = (f[2 + i] - 1) * convDesc->dilation[i] + 1;
    const int padded = x[2 + i] + 2 * convDesc->pad[i];
    if (span > padded) return fail(CUDNN_STATUS_BAD_PARAM, fn, "dilated filter larger than the padded input");
    out[i] = 1 + (padded - span) / convDesc->stride[i];
  }
  *n = x[0], *c = f[0], *h = out[0], *w = out[1];
  return CUDNN_STATUS_SUCCESS;
}

// ---- cudnnAddTensor (cudnn_ops): C = alpha * A + beta * C ----
// "Each dimension of the bias tensor A must match the corresponding dimension of the
// destination tensor C or must be equal to 1" (broadcast); up to 5 dimensions (NOT_SUPPORTED
// beyond); BAD_PARAM when the dimensions are incompatible or the two data types differ.
// alpha / beta are host floats, doubles for DOUBLE tensors ("Scaling Parameters"); beta == 0
// does not read C ("the output is not read and may contain uninitialized data, including NaN").
cudnnStatus_t CUDNNWINAPI cudnnAddTensor(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t aDesc,
                                         const void* A, const void* beta, const cudnnTensorDescriptor_t cDesc,
                                         void* C) {
  const char* fn = "cudnnAddTensor";
  if (handle) bm_emu::library_call_waits(handle->stream);  // BIGMODEL_EMU_ASYNC=1: in stream order
  if (!handle || !alpha || !aDesc || !A || !beta || !cDesc || !C) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL argument");
  if (!aDesc->set || !cDesc->set) return fail(CUDNN_STATUS_BAD_PARAM, fn, "descriptor never set");
  if (aDesc->dtype != cDesc->dtype) return fail(CUDNN_STATUS_BAD_PARAM, fn, "A and C have different data types");
  if (aDesc->nb != cDesc->nb) return fail(CUDNN_STATUS_BAD_PARAM, fn, "A and C have different ranks");
  if (cDesc->nb > 5) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "more than 5 dimensions");
  const int nb = cDesc->nb;
  for (int i = 0; i < nb; ++i)
    if (aDesc->dims[i] != cDesc->dims[i] && aDesc->dims[i] != 1)
      return fail(CUDNN_STATUS_BAD_PARAM, fn, "a dimension of A is neither C's nor 1");
  const cudnnDataType_t t = cDesc->dtype;
  const bool dbl = t == CUDNN_DATA_DOUBLE;
  const double a = dbl ? *static_cast<const double*>(alpha) : *static_cast<const float*>(alpha);
  const double b = dbl ? *static_cast<const double*>(beta) : *static_cast<const float*>(beta);
  int64_t total = 1;
  for (int i = 0; i < nb; ++i) total *= cDesc->dims[i];
  for (int64_t e = 0; e < total; ++e) {
    int64_t rest = e, ci = 0, ai = 0;
    for (int i = nb - 1; i >= 0; --i) {
      const int64_t idx = rest % cDesc->dims[i];
      rest /= cDesc->dims[i];
      ci += idx * cDesc->strides[i];
      ai += (aDesc->dims[i] == 1 ? 0 : idx) * aDesc->strides[i];
    }
    // Float math for the float types, double for double, as the device would.
    double v;
    if (dbl) {
      v = a * bm_emu_cudnn::load(t, A, ai) + (b != 0 ? b * bm_emu_cudnn::load(t, C, ci) : 0.0);
    } else {
      const float fa = static_cast<float>(a), fb = static_cast<float>(b);
      float r = fa * static_cast<float>(bm_emu_cudnn::load(t, A, ai));
      if (fb != 0) r += fb * static_cast<float>(bm_emu_cudnn::load(t, C, ci));
      v = r;
    }
    bm_emu_cudnn::store(t, C, ci, v);
  }
  return CUDNN_STATUS_SUCCESS;
}
