// CUDA-on-CPU emulation of cuDNN's v8 RNN API, part 1 (-DBIGMODEL_CUDA=EMULATE only): dropout,
// RNN and RNN-data descriptors, the weight-space layout with cudnnGetRNNWeightSpaceSize /
// cudnnGetRNNWeightParams, and cudnnGetRNNTempSpaceSizes. The computations are in
// emu_cudnn_rnn_run.cpp. Checks follow the cudnn_adv API reference, cited where they apply.
#include "tests/cuda_emu/emu_cudnn_rnn.h"

#include <algorithm>
#include <cstdint>

using bm_emu_cudnn::fail;

namespace bm_emu_cudnn {

int gates(const cudnnRNNStruct& r) { return r.cell == CUDNN_LSTM ? 4 : (r.cell == CUDNN_GRU ? 3 : 1); }
int dirs(const cudnnRNNStruct& r) { return r.dir == CUDNN_BIDIRECTIONAL ? 2 : 1; }

// cudnnRNNBiasMode_t: NO_BIAS none; SINGLE_INP_BIAS "one input bias in input GEMM";
// DOUBLE_BIAS both; SINGLE_REC_BIAS "one recurrent bias in recurrent GEMM".
bool has_bias(const cudnnRNNStruct& r, int id) {
  const bool rec = id >= gates(r);
  switch (r.bias) {
    case CUDNN_RNN_DOUBLE_BIAS: return true;
    case CUDNN_RNN_SINGLE_INP_BIAS: return !rec;
    case CUDNN_RNN_SINGLE_REC_BIAS: return rec;
    default: return false;
  }
}

int layer_in(const cudnnRNNStruct& r, int pseudo) { return pseudo / dirs(r) == 0 ? r.input : r.proj * dirs(r); }

WeightLayout weight_layout(const cudnnRNNStruct& r) {
  const int G = gates(r), P = r.layers * dirs(r);
  const size_t es = type_size(r.dtype), H = static_cast<size_t>(r.hidden);
  auto align = [](size_t v, size_t a) { return (v + a - 1) / a * a; };
  WeightLayout w;
  w.mat.assign(static_cast<size_t>(P) * 2 * G, 0);
  w.bias.assign(static_cast<size_t>(P) * 2 * G, SIZE_MAX);
  size_t off = 0;
  for (int p = 0; p < P; ++p) {
    off = align(off, 256);
    for (int id = 0; id < 2 * G; ++id)
      if (has_bias(r, id)) {
        off = align(off, 64);
        w.bias[static_cast<size_t>(p) * 2 * G + id] = off;
        off += H * es;
      }
    for (int id = G; id < 2 * G; ++id) {
      off = align(off, 64);
      w.mat[static_cast<size_t>(p) * 2 * G + id] = off;
      off += H * H * es;
    }
    for (int id = 0; id < G; ++id) {
      off = align(off, 64);
      w.mat[static_cast<size_t>(p) * 2 * G + id] = off;
      off += H * static_cast<size_t>(layer_in(r, p)) * es;
    }
  }
  w.total = align(off, 256);
  return w;
}

size_t acc_size(const cudnnRNNStruct& r) { return r.dtype == CUDNN_DATA_DOUBLE ? 8 : 4; }
// gates (G*H), c, h, GRU's R_n h + b_Rn (3 * H), then the input and recurrent GEMMs' output
// gradients (2 * G*H), written by backward data for backward weights.
size_t cell_size(const cudnnRNNStruct& r) { return static_cast<size_t>(3 * gates(r) + 3) * r.hidden; }
size_t reserve_bytes(const cudnnRNNStruct& r, int max_seq, int batch) {
  return kReserveHeader + static_cast<size_t>(r.layers) * dirs(r) * max_seq * batch * cell_size(r) * acc_size(r);
}
size_t work_bytes(const cudnnRNNStruct& r, int max_seq, int batch) {
  return 256 + static_cast<size_t>(max_seq) * batch * std::max(r.input, r.proj * dirs(r)) * 2 * acc_size(r);
}

}  // namespace bm_emu_cudnn

// ---- dropout (cudnn_ops) ----

cudnnStatus_t CUDNNWINAPI cudnnCreateDropoutDescriptor(cudnnDropoutDescriptor_t* dropoutDesc) {
  return bm_emu_cudnn::create(dropoutDesc, "cudnnCreateDropoutDescriptor");
}

cudnnStatus_t CUDNNWINAPI cudnnDestroyDropoutDescriptor(cudnnDropoutDescriptor_t dropoutDesc) {
  return bm_emu_cudnn::destroy(dropoutDesc);
}

// cudnnSetDropoutDescriptor: dropout is the probability of zeroing a value, in [0, 1); states
// (device RNG states of cudnnDropoutGetStatesSize bytes) are initialised from seed. With
// probability 0 no random number initialisation takes place, so states may be NULL. cuDNN's RNG
// is not emulated: a probability > 0 is NOT_SUPPORTED here.
cudnnStatus_t CUDNNWINAPI cudnnSetDropoutDescriptor(cudnnDropoutDescriptor_t dropoutDesc, cudnnHandle_t handle,
                                                    float dropout, void* states, size_t stateSizeInBytes,
                                                    unsigned long long seed) {
  const char* fn = "cudnnSetDropoutDescriptor";
  (void)states, (void)stateSizeInBytes, (void)seed;
  if (!dropoutDesc || !handle) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL descriptor or handle");
  if (!(dropout >= 0.0f && dropout < 1.0f)) return fail(CUDNN_STATUS_BAD_PARAM, fn, "dropout outside [0, 1)");
  if (dropout > 0.0f) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "dropout > 0 (cuDNN's RNG) is not emulated");
  dropoutDesc->set = true;
  dropoutDesc->dropout = dropout;
  return CUDNN_STATUS_SUCCESS;
}

// ---- RNN descriptor (cudnn_adv) ----

cudnnStatus_t CUDNNWINAPI cudnnCreateRNNDescriptor(cudnnRNNDescriptor_t* rnnDesc) {
  return bm_emu_cudnn::create(rnnDesc, "cudnnCreateRNNDescriptor");
}

cudnnStatus_t CUDNNWINAPI cudnnDestroyRNNDescriptor(cudnnRNNDescriptor_t rnnDesc) {
  return bm_emu_cudnn::destroy(rnnDesc);
}

// cudnnSetRNNDescriptor_v8. Documented rules checked (BAD_PARAM unless noted):
// - inputSize, hiddenSize, projSize, numLayers > 0; projSize <= hiddenSize, and projSize <
//   hiddenSize only for LSTM (the projection is not emulated: NOT_SUPPORTED);
// - mathPrec: FLOAT data only FLOAT, DOUBLE only DOUBLE, HALF either HALF or FLOAT, BFLOAT16
//   FLOAT; the enumerants valid;
// - the dropout descriptor, when given, set; auxFlags only CUDNN_RNN_PADDED_IO_ENABLED/DISABLED.
// Emulated: ALGO_STANDARD with CUDNN_LINEAR_INPUT (the persistent algorithms and SKIP_INPUT are
// NOT_SUPPORTED here).
cudnnStatus_t CUDNNWINAPI cudnnSetRNNDescriptor_v8(cudnnRNNDescriptor_t rnnDesc, cudnnRNNAlgo_t algo,
                                                   cudnnRNNMode_t cellMode, cudnnRNNBiasMode_t biasMode,
                                                   cudnnDirectionMode_t dirMode, cudnnRNNInputMode_t inputMode,
                                                   cudnnDataType_t dataType, cudnnDataType_t mathPrec,
                                                   cudnnMathType_t mathType, int32_t inputSize, int32_t hiddenSize,
                                                   int32_t projSize, int32_t numLayers,
                                                   cudnnDropoutDescriptor_t dropoutDesc, uint32_t auxFlags) {
  const char* fn = "cudnnSetRNNDescriptor_v8";
  if (!rnnDesc) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL descriptor");
  if (cellMode != CUDNN_RNN_RELU && cellMode != CUDNN_RNN_TANH && cellMode != CUDNN_LSTM && cellMode != CUDNN_GRU)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "invalid cellMode");
  if (biasMode != CUDNN_RNN_NO_BIAS && biasMode != CUDNN_RNN_SINGLE_INP_BIAS && biasMode != CUDNN_RNN_DOUBLE_BIAS &&
      biasMode != CUDNN_RNN_SINGLE_REC_BIAS)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "invalid biasMode");
  if (dirMode != CUDNN_UNIDIRECTIONAL && dirMode != CUDNN_BIDIRECTIONAL)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "invalid dirMode");
  if (inputMode != CUDNN_LINEAR_INPUT && inputMode != CUDNN_SKIP_INPUT)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "invalid inputMode");
  if (inputSize <= 0 || hiddenSize <= 0 || projSize <= 0 || numLayers <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "inputSize, hiddenSize, projSize and numLayers must be > 0");
  if (projSize > hiddenSize) return fail(CUDNN_STATUS_BAD_PARAM, fn, "projSize > hiddenSize");
  if (projSize < hiddenSize && cellMode != CUDNN_LSTM)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "projSize < hiddenSize is only for LSTM");
  const bool prec_ok = (dataType == CUDNN_DATA_FLOAT && mathPrec == CUDNN_DATA_FLOAT) ||
                       (dataType == CUDNN_DATA_DOUBLE && mathPrec == CUDNN_DATA_DOUBLE) ||
                       (dataType == CUDNN_DATA_HALF && (mathPrec == CUDNN_DATA_HALF || mathPrec == CUDNN_DATA_FLOAT)) ||
                       (dataType == CUDNN_DATA_BFLOAT16 && mathPrec == CUDNN_DATA_FLOAT);
  if (!prec_ok) return fail(CUDNN_STATUS_BAD_PARAM, fn, "dataType / mathPrec pair not allowed");
  if (mathType != CUDNN_DEFAULT_MATH && mathType != CUDNN_TENSOR_OP_MATH &&
      mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && mathType != CUDNN_FMA_MATH)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "invalid mathType");
  if (dropoutDesc && !dropoutDesc->set) return fail(CUDNN_STATUS_BAD_PARAM, fn, "dropout descriptor never set");
  if ((auxFlags & ~static_cast<uint32_t>(CUDNN_RNN_PADDED_IO_ENABLED)) != 0)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "unknown auxFlags");
  if (algo != CUDNN_RNN_ALGO_STANDARD) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "only ALGO_STANDARD is emulated");
  if (inputMode != CUDNN_LINEAR_INPUT) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "SKIP_INPUT is not emulated");
  if (projSize != hiddenSize) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "LSTM projection is not emulated");
  cudnnRNNStruct& r = *rnnDesc;
  r.set = true;
  r.algo = algo, r.cell = cellMode, r.bias = biasMode, r.dir = dirMode, r.input_mode = inputMode;
  r.dtype = dataType, r.math_prec = mathPrec, r.math = mathType;
  r.input = inputSize, r.hidden = hiddenSize, r.proj = projSize, r.layers = numLayers;
  r.aux = auxFlags;
  return CUDNN_STATUS_SUCCESS;
}

// ---- RNN data descriptor (cudnn_adv) ----

cudnnStatus_t CUDNNWINAPI cudnnCreateRNNDataDescriptor(cudnnRNNDataDescriptor_t* rnnDataDesc) {
  return bm_emu_cudnn::create(rnnDataDesc, "cudnnCreateRNNDataDescriptor");
}

cudnnStatus_t CUDNNWINAPI cudnnDestroyRNNDataDescriptor(cudnnRNNDataDescriptor_t rnnDataDesc) {
  return bm_emu_cudnn::destroy(rnnDataDesc);
}

// cudnnSetRNNDataDescriptor: BAD_PARAM when maxSeqLength, batchSize or vectorSize <= 0, the
// seqLengthArray is NULL or one of its batchSize elements lies outside [1, maxSeqLength] ("the
// valid vector count is stored in seqLengthArray, such that 0 < seqLengthArray[i] <=
// maxSeqLength"), the layout is invalid, or (SEQ_MAJOR_PACKED: "sorted in descending order
// according to the sequence lengths") the lengths are not sorted.
// paddingFill: host memory "interpreted as the same data type as that of the RNN data tensor",
// only used for an output in an unpacked layout; NULL leaves the padding undefined.
cudnnStatus_t CUDNNWINAPI cudnnSetRNNDataDescriptor(cudnnRNNDataDescriptor_t rnnDataDesc, cudnnDataType_t dataType,
                                                    cudnnRNNDataLayout_t layout, int maxSeqLength, int batchSize,
                                                    int vectorSize, const int seqLengthArray[], void* paddingFill) {
  const char* fn = "cudnnSetRNNDataDescriptor";
  if (!rnnDataDesc || !seqLengthArray) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL descriptor or seqLengthArray");
  if (maxSeqLength <= 0 || batchSize <= 0 || vectorSize <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "maxSeqLength, batchSize and vectorSize must be > 0");
  if (layout != CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED && layout != CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED &&
      layout != CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "invalid layout");
  if (bm_emu_cudnn::type_size(dataType) == 0) return fail(CUDNN_STATUS_BAD_PARAM, fn, "data type not emulated");
  for (int b = 0; b < batchSize; ++b) {
    if (seqLengthArray[b] < 1 || seqLengthArray[b] > maxSeqLength)
      return fail(CUDNN_STATUS_BAD_PARAM, fn, "a sequence length lies outside [1, maxSeqLength]");
    if (layout == CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED && b > 0 && seqLengthArray[b] > seqLengthArray[b - 1])
      return fail(CUDNN_STATUS_BAD_PARAM, fn, "packed layout with lengths not sorted in descending order");
  }
  cudnnRNNDataStruct& d = *rnnDataDesc;
  d.set = true;
  d.dtype = dataType, d.layout = layout;
  d.max_seq = maxSeqLength, d.batch = batchSize, d.vec = vectorSize;
  d.lengths.assign(seqLengthArray, seqLengthArray + batchSize);
  d.has_fill = paddingFill != nullptr;
  d.fill = paddingFill ? bm_emu_cudnn::load(dataType, paddingFill, 0) : 0.0;
  return CUDNN_STATUS_SUCCESS;
}

// ---- sizes and weights ----

// cudnnGetRNNWeightSpaceSize: bytes of the weight space (and of its gradient) for rnnDesc.
cudnnStatus_t CUDNNWINAPI cudnnGetRNNWeightSpaceSize(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                                     size_t* weightSpaceSize) {
  if (!handle || !rnnDesc || !weightSpaceSize || !rnnDesc->set)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetRNNWeightSpaceSize", "NULL argument or RNN descriptor never set");
  *weightSpaceSize = bm_emu_cudnn::weight_layout(*rnnDesc).total;
  return CUDNN_STATUS_SUCCESS;
}

// cudnnGetRNNTempSpaceSizes: the workspace and reserve space fMode needs for inputs shaped as
// xDesc. The reserve space only serves training (inference: 0); reserveSpaceSize may be NULL.
cudnnStatus_t CUDNNWINAPI cudnnGetRNNTempSpaceSizes(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                                    cudnnForwardMode_t fwdMode, cudnnRNNDataDescriptor_t xDesc,
                                                    size_t* workSpaceSize, size_t* reserveSpaceSize) {
  const char* fn = "cudnnGetRNNTempSpaceSizes";
  if (!handle || !rnnDesc || !xDesc || !workSpaceSize) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL argument");
  if (!rnnDesc->set || !xDesc->set) return fail(CUDNN_STATUS_BAD_PARAM, fn, "descriptor never set");
  if (fwdMode != CUDNN_FWD_MODE_INFERENCE && fwdMode != CUDNN_FWD_MODE_TRAINING)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "invalid fwdMode");
  if (xDesc->vec != rnnDesc->input) return fail(CUDNN_STATUS_BAD_PARAM, fn, "xDesc vectorSize != inputSize");
  *workSpaceSize = bm_emu_cudnn::work_bytes(*rnnDesc, xDesc->max_seq, xDesc->batch);
  if (reserveSpaceSize)
    *reserveSpaceSize =
        fwdMode == CUDNN_FWD_MODE_TRAINING ? bm_emu_cudnn::reserve_bytes(*rnnDesc, xDesc->max_seq, xDesc->batch) : 0;
  return CUDNN_STATUS_SUCCESS;
}

// cudnnGetRNNWeightParams: where linear layer linLayerID of pseudoLayer lives in weightSpace.
// pseudoLayer in [0, numLayers * dirs) (bidirectional: even the forward, odd the reverse
// direction of layer pseudoLayer / 2); linLayerID in [0, 2G) for RELU/TANH (G = 1), LSTM (4:
// 0-3 the input GEMM's i, f, c', o, 4-7 the recurrent ones), GRU (3: r, u, c' in that order).
// mDesc gets {1, rows, cols} (rows = hiddenSize, cols = the layer's input or the recurrent
// width) and *mAddr the matrix; bDesc {1, rows, 1} and *bAddr the bias, or 0 dimensions and
// NULL when the bias mode has no such bias. BAD_PARAM for an index out of range, a NULL
// argument that is not optional, or weightSpaceSize smaller than cudnnGetRNNWeightSpaceSize.
cudnnStatus_t CUDNNWINAPI cudnnGetRNNWeightParams(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                                  int32_t pseudoLayer, size_t weightSpaceSize,
                                                  const void* weightSpace, int32_t linLayerID,
                                                  cudnnTensorDescriptor_t mDesc, void** mAddr,
                                                  cudnnTensorDescriptor_t bDesc, void** bAddr) {
  const char* fn = "cudnnGetRNNWeightParams";
  if (!handle || !rnnDesc || !rnnDesc->set) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL handle or RNN descriptor");
  const cudnnRNNStruct& r = *rnnDesc;
  const int G = bm_emu_cudnn::gates(r), P = r.layers * bm_emu_cudnn::dirs(r);
  if (pseudoLayer < 0 || pseudoLayer >= P) return fail(CUDNN_STATUS_BAD_PARAM, fn, "pseudoLayer out of range");
  if (linLayerID < 0 || linLayerID >= 2 * G) return fail(CUDNN_STATUS_BAD_PARAM, fn, "linLayerID out of range");
  const bm_emu_cudnn::WeightLayout w = bm_emu_cudnn::weight_layout(r);
  if (weightSpaceSize < w.total) return fail(CUDNN_STATUS_BAD_PARAM, fn, "weightSpaceSize too small");
  if (!weightSpace) return fail(CUDNN_STATUS_BAD_PARAM, fn, "weightSpace is NULL");
  if ((mDesc != nullptr) != (mAddr != nullptr) || (bDesc != nullptr) != (bAddr != nullptr))
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "a descriptor without its address pointer (or the reverse)");
  const size_t k = static_cast<size_t>(pseudoLayer) * 2 * G + linLayerID;
  char* base = static_cast<char*>(const_cast<void*>(weightSpace));
  const int rows = r.hidden, cols = linLayerID >= G ? r.proj : bm_emu_cudnn::layer_in(r, pseudoLayer);
  if (mDesc) {
    const int dims[3] = {1, rows, cols}, strides[3] = {rows * cols, cols, 1};
    const cudnnStatus_t st = cudnnSetTensorNdDescriptor(mDesc, r.dtype, 3, dims, strides);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    *mAddr = base + w.mat[k];
  }
  if (bDesc) {
    if (w.bias[k] == SIZE_MAX) {
      *bDesc = cudnnTensorStruct();
      bDesc->set = true;  // a descriptor with 0 dimensions: "the bias vector does not exist"
      bDesc->dtype = r.dtype;
      *bAddr = nullptr;
    } else {
      const int dims[3] = {1, rows, 1}, strides[3] = {rows, 1, 1};
      const cudnnStatus_t st = cudnnSetTensorNdDescriptor(bDesc, r.dtype, 3, dims, strides);
      if (st != CUDNN_STATUS_SUCCESS) return st;
      *bAddr = base + w.bias[k];
    }
  }
  return CUDNN_STATUS_SUCCESS;
}
