// CUDA-on-CPU emulation: what emu_cudnn.cpp (handle, tensor/filter/convolution descriptors,
// convolutions) and emu_cudnn_rnn.cpp (the v8 RNN API) share: the opaque structs behind
// cuDNN's handle and tensor descriptor types, element loads/stores in every data type, and the
// diagnostic that names why a call failed. Emulation build only (-DBIGMODEL_CUDA=EMULATE).
#pragma once

#include <cudnn.h>

#include <cstdint>
#include <cstdio>

// cudnnHandle_t: the stream set by cudnnSetStream (every call is synchronous here anyway).
struct cudnnContext {
  uint32_t magic = 0x43644e4e;
  cudaStream_t stream = nullptr;
};

// cudnnTensorDescriptor_t: data type, rank, dims and strides in elements ("set" once a Set*
// call succeeded; cuDNN rejects a descriptor that was only created).
struct cudnnTensorStruct {
  bool set = false;
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT;
  int nb = 0;
  int dims[CUDNN_DIM_MAX] = {0};
  int strides[CUDNN_DIM_MAX] = {0};
};

// cudnnFilterDescriptor_t: a 4-d filter [K, C, R, S] in NCHW (KCRS) or NHWC (KRSC) order.
struct cudnnFilterStruct {
  bool set = false;
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  int nb = 0;
  int dims[CUDNN_DIM_MAX] = {0};
};

// cudnnConvolutionDescriptor_t: 2-d geometry, mode, compute type, group count and math type.
struct cudnnConvolutionStruct {
  bool set = false;
  int pad[2] = {0, 0}, stride[2] = {1, 1}, dilation[2] = {1, 1};
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  int groups = 1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

namespace bm_emu_cudnn {

// Prints why the emulated call fails (cuDNN itself only returns the status; the message is for
// whoever reads the test log) and returns the status.
cudnnStatus_t fail(cudnnStatus_t st, const char* fn, const char* why);

// cudnnCreate*: a fresh object behind the handle (BAD_PARAM for a NULL out-pointer); and
// cudnnDestroy*, which frees it (NULL allowed).
template <typename T>
cudnnStatus_t create(T** out, const char* fn) {
  if (!out) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL argument");
  *out = new T();
  return CUDNN_STATUS_SUCCESS;
}
template <typename T>
cudnnStatus_t destroy(T* p) {
  delete p;
  return CUDNN_STATUS_SUCCESS;
}

// Bytes of one element; 0 for a type the emulation does not support.
size_t type_size(cudnnDataType_t t);
// Element i of a buffer of type t, widened to double; and its store (rounded to t).
double load(cudnnDataType_t t, const void* p, int64_t i);
void store(cudnnDataType_t t, void* p, int64_t i, double v);
// v rounded to t's precision (what storing it and loading it back gives).
double round_to(cudnnDataType_t t, double v);
// Fills `bytes` bytes with 0xFF (a NaN in every floating type): what an output holds that the
// emulation documents as unspecified (Find*Ex outputs, the unused part of a workspace).
void scribble(void* p, size_t bytes);
// How many convolutions (forward, backward data, backward filter; Find calls not counted) and RNN
// calls (forward, backward data, backward weights) have run since the process started: lets a
// test of the emulation build check that a wrapper really reached cuDNN instead of falling
// back to another path.
int64_t conv_runs();
int64_t rnn_runs();

}  // namespace bm_emu_cudnn
