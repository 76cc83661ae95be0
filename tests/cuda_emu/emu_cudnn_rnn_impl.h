// CUDA-on-CPU emulation of cuDNN's v8 RNN API: the helpers emu_cudnn_rnn_run.cpp (forward) and
// emu_cudnn_rnn_bwd.cpp (backward data / weights) share: one call's validated shape, the RNN
// data layouts' indexing, the argument checks, the reserve space's header and cells, and one
// pseudo-layer's weights in the accumulation type. Emulation build only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "tests/cuda_emu/emu_cudnn_rnn.h"

namespace bm_emu_cudnn::rnn_impl {

// The shape of one call, from descriptors that passed validate().
struct Call {
  const cudnnRNNStruct* r;
  const cudnnRNNDataStruct* xd;
  const cudnnRNNDataStruct* yd;
  cudnnDataType_t t;
  int G, D, H, L, T, B, I;
  bool lstm, gru;
  bool tf32;  // FLOAT data with a math type that permits TF32 tensor cores (not FMA)
};

// Vector index of (t, b) in an RNN data buffer of descriptor d: SEQ_MAJOR_UNPACKED t*batch + b,
// BATCH_MAJOR_UNPACKED b*maxSeq + t, SEQ_MAJOR_PACKED the sequences still running at t, in
// batch order after those of the earlier steps. -1 for a padding position of the packed layout.
inline int64_t row(const cudnnRNNDataStruct& d, int t, int b) {
  if (d.layout == CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED) return static_cast<int64_t>(t) * d.batch + b;
  if (d.layout == CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED) return static_cast<int64_t>(b) * d.max_seq + t;
  if (t >= d.lengths[b]) return -1;
  int64_t base = 0;
  for (int s = 0; s < t; ++s)
    for (int len : d.lengths) base += len > s;
  return base + b;
}

// Checks shared by the three calls (BAD_PARAM unless noted), per the cudnn_adv reference:
// NULL handle / descriptors / data; descriptors not set; x and y data types different from the
// RNN's; xDesc vectorSize != inputSize, yDesc vectorSize != projSize * dirs; yDesc's layout,
// maxSeqLength, batchSize or seqLengthArray different from xDesc's; hDesc (and cDesc for LSTM)
// not a fully packed 3-d [numLayers * dirs, batchSize, projSize (hiddenSize for c)] tensor of
// the RNN's data type (they may be NULL when no state buffer uses them); an unpacked layout without CUDNN_RNN_PADDED_IO_ENABLED (NOT_SUPPORTED);
// devSeqLengths NULL ("cannot be NULL"). devSeqLengths must be a device copy of seqLengthArray:
// the emulation reads it and fails when it differs (cuDNN would silently use it).
inline cudnnStatus_t validate(const char* fn, cudnnHandle_t handle, const cudnnRNNStruct* r, const int32_t* dev_lengths,
                       const cudnnRNNDataStruct* xd, const cudnnRNNDataStruct* yd, const cudnnTensorStruct* hd,
                       const cudnnTensorStruct* cd, Call& c, bool h_used, bool c_used) {
  if (!handle || !r || !xd || !yd) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL handle or descriptor");
  if (!r->set || !xd->set || !yd->set) return fail(CUDNN_STATUS_BAD_PARAM, fn, "descriptor never set");
  if (xd->dtype != r->dtype || yd->dtype != r->dtype)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "x / y data type differs from the RNN descriptor's");
  const int D = dirs(*r);
  if (xd->vec != r->input) return fail(CUDNN_STATUS_BAD_PARAM, fn, "xDesc vectorSize != inputSize");
  if (yd->vec != r->proj * D) return fail(CUDNN_STATUS_BAD_PARAM, fn, "yDesc vectorSize != projSize * dirs");
  if (yd->layout != xd->layout || yd->max_seq != xd->max_seq || yd->batch != xd->batch || yd->lengths != xd->lengths)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "xDesc and yDesc differ in layout, maxSeqLength, batch or lengths");
  if (xd->layout != CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED && !(r->aux & CUDNN_RNN_PADDED_IO_ENABLED))
    return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "unpacked layout without CUDNN_RNN_PADDED_IO_ENABLED");
  const bool lstm = r->cell == CUDNN_LSTM;
  auto state_ok = [&](const cudnnTensorStruct* s, int width) {
    return s && s->set && s->dtype == r->dtype && s->nb == 3 && s->dims[0] == r->layers * D &&
           s->dims[1] == xd->batch && s->dims[2] == width && s->strides[2] == 1 && s->strides[1] == width &&
           s->strides[0] == width * xd->batch;
  };
  // "When all hx, dhy, dhx are NULL, hDesc can be NULL too; the same rule applies to cx, dcy,
  // dcx and cDesc": a descriptor is checked when a state buffer uses it, or when it is given.
  if ((h_used || hd) && !state_ok(hd, r->proj))
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "hDesc is not a packed [numLayers*dirs, batch, projSize] tensor");
  if (lstm && (c_used || cd) && !state_ok(cd, r->hidden))
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "cDesc is not a packed [numLayers*dirs, batch, hiddenSize] tensor");
  if (!dev_lengths) return fail(CUDNN_STATUS_BAD_PARAM, fn, "devSeqLengths is NULL");
  for (int b = 0; b < xd->batch; ++b)
    if (dev_lengths[b] != xd->lengths[b])
      return fail(CUDNN_STATUS_BAD_PARAM, fn, "devSeqLengths differs from the descriptors' seqLengthArray");
  c = Call{r, xd, yd, r->dtype, gates(*r), D, r->hidden, r->layers, xd->max_seq, xd->batch, r->input, lstm,
           r->cell == CUDNN_GRU, r->dtype == CUDNN_DATA_FLOAT && r->math != CUDNN_FMA_MATH};
  return CUDNN_STATUS_SUCCESS;
}

// Space checks: a size below what cudnnGetRNNWeightSpaceSize / cudnnGetRNNTempSpaceSizes give,
// or a NULL buffer of a non-zero required size, is BAD_PARAM.
inline cudnnStatus_t check_spaces(const char* fn, const Call& c, size_t wsize, const void* w, size_t work, const void* wp,
                           bool need_reserve, size_t reserve, const void* rp) {
  if (wsize < weight_layout(*c.r).total || !w) return fail(CUDNN_STATUS_BAD_PARAM, fn, "weight space too small or NULL");
  if (work < work_bytes(*c.r, c.T, c.B) || !wp) return fail(CUDNN_STATUS_BAD_PARAM, fn, "workspace too small or NULL");
  if (need_reserve && (reserve < reserve_bytes(*c.r, c.T, c.B) || !rp))
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "reserve space too small or NULL");
  return CUDNN_STATUS_SUCCESS;
}

// The reserve space's header: which forward filled it (a key of the problem) and how far the
// training step got (1: forward, 2: backward data, whose gate gradients backward weights reads).
struct Header {
  uint64_t magic, key;
  uint32_t phase;
};
constexpr uint64_t kMagic = 0x52657365727665ull;

inline uint64_t key_of(const Call& c) {
  uint64_t k = 1469598103934665603ull;
  auto mix = [&](int64_t v) { k = (k ^ static_cast<uint64_t>(v)) * 1099511628211ull; };
  for (int64_t v : {int64_t(c.r->cell), int64_t(c.r->bias), int64_t(c.r->dir), int64_t(c.t), int64_t(c.I),
                    int64_t(c.H), int64_t(c.L), int64_t(c.T), int64_t(c.B), int64_t(c.xd->layout)})
    mix(v);
  for (int len : c.xd->lengths) mix(len);
  return k;
}

// One pseudo-layer's weights in the accumulation type: W [G*H, in], R [G*H, H] (row q*H + k is
// gate q's row k), biases [G*H] (0 where the bias mode has none).
template <typename Acc>
struct Weights {
  int in;
  std::vector<Acc> W, R, bW, bR;
};

template <typename Acc>
Weights<Acc> load_weights(const Call& c, const void* space, int p, bool tf32) {
  const WeightLayout lay = weight_layout(*c.r);
  Weights<Acc> w;
  w.in = layer_in(*c.r, p);
  const size_t GH = static_cast<size_t>(c.G) * c.H;
  w.W.resize(GH * w.in), w.R.resize(GH * c.H), w.bW.assign(GH, 0), w.bR.assign(GH, 0);
  const char* base = static_cast<const char*>(space);
  auto rd = [&](const char* at, size_t i) {
    const double v = load(c.t, at, static_cast<int64_t>(i));
    return static_cast<Acc>(tf32 ? round_to(CUDNN_DATA_FLOAT, static_cast<float>(v)) : v);
  };
  for (int q = 0; q < c.G; ++q)
    for (int rec = 0; rec < 2; ++rec) {
      const size_t k = static_cast<size_t>(p) * 2 * c.G + q + rec * c.G;
      std::vector<Acc>& m = rec ? w.R : w.W;
      const size_t cols = rec ? c.H : w.in;
      for (size_t i = 0; i < c.H * cols; ++i) m[q * c.H * cols + i] = rd(base + lay.mat[k], i);
      if (lay.bias[k] != SIZE_MAX)
        for (int i = 0; i < c.H; ++i) (rec ? w.bR : w.bW)[q * c.H + i] = static_cast<Acc>(load(c.t, base + lay.bias[k], i));
    }
  return w;
}

// TF32 rounding of a GEMM operand (10 mantissa bits, to nearest even).
template <typename Acc>
Acc tf32r(Acc v) {
  float f = static_cast<float>(v);
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0xfffu + ((u >> 13) & 1u)) & ~0x1fffu;
  std::memcpy(&f, &u, 4);
  return static_cast<Acc>(f);
}

template <typename Acc>
Acc sigm(Acc v) { return Acc(1) / (Acc(1) + std::exp(-v)); }

// Offsets inside one reserve cell (see cell_size).
struct CellOff {
  size_t gates, c, h, ghn, dpin, dprec, size;
  explicit CellOff(const Call& k) {
    const size_t GH = static_cast<size_t>(k.G) * k.H;
    gates = 0, c = GH, h = GH + k.H, ghn = GH + 2 * k.H, dpin = GH + 3 * k.H, dprec = 2 * GH + 3 * k.H;
    size = 3 * GH + 3 * k.H;
  }
};

template <typename Acc>
struct Net {
  const Call& c;
  CellOff o;
  Acc* cells;
  Acc* cell(int p, int t, int b) const {
    return cells + ((static_cast<size_t>(p) * c.T + t) * c.B + b) * o.size;
  }
  // Time index of step s of a sequence of length len in direction dir (the reverse direction
  // starts at the sequence's own last step).
  static int time(int dir, int s, int len) { return dir == 0 ? s : len - 1 - s; }
  // Layer l's input at every valid (t, b): x for layer 0 (read through xDesc), the h of
  // layer l-1's directions above.
  std::vector<Acc> layer_input(int l, const void* x, bool tf32) const {
    const int in = l == 0 ? c.I : c.D * c.H;
    std::vector<Acc> v(static_cast<size_t>(c.T) * c.B * in, Acc(0));
    for (int b = 0; b < c.B; ++b)
      for (int t = 0; t < c.xd->lengths[b]; ++t) {
        Acc* dst = &v[(static_cast<size_t>(t) * c.B + b) * in];
        for (int j = 0; j < in; ++j) {
          Acc val = l == 0 ? static_cast<Acc>(load(c.t, x, row(*c.xd, t, b) * in + j))
                           : cell((l - 1) * c.D + j / c.H, t, b)[o.h + j % c.H];
          dst[j] = tf32 ? tf32r(val) : val;
        }
      }
    return v;
  }
  // The state entering step s of (p, b): the previous step's, or hx / cx (0 when NULL).
  void prev_state(int p, int dir, int b, int s, const void* hx, const void* cx, std::vector<Acc>& h,
                  std::vector<Acc>& cc) const {
    const int len = c.xd->lengths[b];
    for (int k = 0; k < c.H; ++k) {
      if (s > 0) {
        const Acc* pc = cell(p, time(dir, s - 1, len), b);
        h[k] = pc[o.h + k];
        cc[k] = pc[o.c + k];
      } else {
        const int64_t i = (static_cast<int64_t>(p) * c.B + b) * c.H + k;
        h[k] = hx ? static_cast<Acc>(load(c.t, hx, i)) : Acc(0);
        cc[k] = c.lstm && cx ? static_cast<Acc>(load(c.t, cx, i)) : Acc(0);
      }
    }
  }
};

// Padding of an output in an unpacked layout: paddingFill when the descriptor has one, else
// undefined (NaN here, so that a caller that relies on it sees it).
inline void fill_padding(const cudnnRNNDataStruct& d, void* out) {
  if (d.layout == CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED) return;
  const double v = d.has_fill ? d.fill : std::numeric_limits<double>::quiet_NaN();
  for (int b = 0; b < d.batch; ++b)
    for (int t = d.lengths[b]; t < d.max_seq; ++t)
      for (int j = 0; j < d.vec; ++j) store(d.dtype, out, row(d, t, b) * d.vec + j, v);
}

// Counts one completed RNN call (bm_emu_cudnn::rnn_runs()).
void count_run();

}  // namespace bm_emu_cudnn::rnn_impl
