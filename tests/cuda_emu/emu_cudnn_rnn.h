// CUDA-on-CPU emulation of cuDNN's v8 RNN API: what emu_cudnn_rnn.cpp (descriptors, sizes,
// weight layout, argument checks) and emu_cudnn_rnn_run.cpp (cudnnRNNForward,
// cudnnRNNBackwardData_v8, cudnnRNNBackwardWeights_v8) share. Emulation build only.
#pragma once

#include <cstdint>
#include <vector>

#include "tests/cuda_emu/emu_cudnn.h"

struct cudnnDropoutStruct {
  bool set = false;
  float dropout = 0;
};

struct cudnnRNNStruct {
  bool set = false;
  cudnnRNNAlgo_t algo = CUDNN_RNN_ALGO_STANDARD;
  cudnnRNNMode_t cell = CUDNN_LSTM;
  cudnnRNNBiasMode_t bias = CUDNN_RNN_DOUBLE_BIAS;
  cudnnDirectionMode_t dir = CUDNN_UNIDIRECTIONAL;
  cudnnRNNInputMode_t input_mode = CUDNN_LINEAR_INPUT;
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT, math_prec = CUDNN_DATA_FLOAT;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  int input = 0, hidden = 0, proj = 0, layers = 0;
  uint32_t aux = 0;
};

struct cudnnRNNDataStruct {
  bool set = false;
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT;
  cudnnRNNDataLayout_t layout = CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED;
  int max_seq = 0, batch = 0, vec = 0;
  std::vector<int> lengths;
  bool has_fill = false;
  double fill = 0;  // paddingFill, read as the descriptor's data type when it was set
};

namespace bm_emu_cudnn {

// Gates per cell (linear layers per GEMM): 1 for RNN_RELU / RNN_TANH, 4 LSTM, 3 GRU.
int gates(const cudnnRNNStruct& r);
int dirs(const cudnnRNNStruct& r);
// Whether linear layer `id` (0..2G-1; G.. are recurrent) has a bias under r's bias mode.
bool has_bias(const cudnnRNNStruct& r, int id);

// The emulation's weight-space layout (its own, as cuDNN's is opaque): per pseudo-layer a block
// aligned to 256 bytes holding first the biases, then the recurrent matrices, then the input
// matrices, each aligned to 64 bytes (the gaps are never read). Matrices are row-major
// [hidden, in] ({1, rows, cols} in GetRNNWeightParams' words).
struct WeightLayout {
  std::vector<size_t> mat, bias;  // byte offsets, [pseudo * 2G + id]; bias SIZE_MAX when absent
  size_t total = 0;
};
WeightLayout weight_layout(const cudnnRNNStruct& r);
// Columns of pseudo-layer p's input matrices: inputSize for layer 0, projSize * dirs above.
int layer_in(const cudnnRNNStruct& r, int pseudo);

// The reserve space: a header, then per pseudo-layer, time step and batch entry one cell of
// `cell_size` accumulation-type values (see emu_cudnn_rnn_run.cpp).
constexpr size_t kReserveHeader = 64;
size_t acc_size(const cudnnRNNStruct& r);
size_t cell_size(const cudnnRNNStruct& r);
size_t reserve_bytes(const cudnnRNNStruct& r, int max_seq, int batch);
size_t work_bytes(const cudnnRNNStruct& r, int max_seq, int batch);

}  // namespace bm_emu_cudnn
