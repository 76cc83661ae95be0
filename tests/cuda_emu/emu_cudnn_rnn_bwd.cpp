// CUDA-on-CPU emulation of cuDNN's v8 RNN API, part 3 (-DBIGMODEL_CUDA=EMULATE only):
// cudnnRNNBackwardData_v8 and cudnnRNNBackwardWeights_v8, the exact gradients of the cell
// equations emu_cudnn_rnn_run.cpp's forward computes, from what it kept in the reserve space.
// Backward data leaves the gate gradients there too: backward weights takes no dy, so it reads
// them (the emulation refuses it before a backward data of the same forward).
#include <cstring>
#include <vector>

#include "tests/cuda_emu/emu_cudnn_rnn_impl.h"
#include "tests/cuda_emu/emu_streams.h"

using namespace bm_emu_cudnn;
using namespace bm_emu_cudnn::rnn_impl;

namespace {

// Backward data: from dy (and dhy, dcy) down through the layers; per step the gradients of
// the input GEMM's and the recurrent GEMM's outputs (they differ for GRU's h' gate, whose
// recurrent part is scaled by r) are kept in the reserve space for backward weights.
template <typename Acc>
void backward_data(const Call& c, Acc* cells, const void* dy, void* dx, const void* hx, const void* dhy, void* dhx,
                   const void* cx, const void* dcy, void* dcx, const void* w) {
  Net<Acc> net{c, CellOff(c), cells};
  const CellOff& o = net.o;
  const int H = c.H, G = c.G, DH = c.D * c.H;
  std::vector<Acc> dout(static_cast<size_t>(c.T) * c.B * DH, Acc(0));
  for (int b = 0; b < c.B; ++b)  // dy is read at valid positions only
    for (int t = 0; t < c.yd->lengths[b]; ++t)
      for (int j = 0; j < DH; ++j)
        dout[(static_cast<size_t>(t) * c.B + b) * DH + j] = static_cast<Acc>(load(c.t, dy, row(*c.yd, t, b) * DH + j));
  std::vector<Acc> h(H), cc(H), dh(H), dc(H), dhn(H), dcn(H);
  std::vector<Acc> din;
  for (int l = c.L - 1; l >= 0; --l) {
    const int in = l == 0 ? c.I : DH;
    din.assign(static_cast<size_t>(c.T) * c.B * in, Acc(0));
    for (int dir = 0; dir < c.D; ++dir) {
      const int p = l * c.D + dir;
      const Weights<Acc> wt = load_weights<Acc>(c, w, p, false);
      for (int b = 0; b < c.B; ++b) {
        const int len = c.xd->lengths[b];
        for (int k = 0; k < H; ++k) {
          const int64_t i = (static_cast<int64_t>(p) * c.B + b) * H + k;
          dhn[k] = dhy ? static_cast<Acc>(load(c.t, dhy, i)) : Acc(0);
          dcn[k] = c.lstm && dcy ? static_cast<Acc>(load(c.t, dcy, i)) : Acc(0);
        }
        for (int s = len - 1; s >= 0; --s) {
          const int t = Net<Acc>::time(dir, s, len);
          net.prev_state(p, dir, b, s, hx, cx, h, cc);
          Acc* cl = net.cell(p, t, b);
          Acc* dpin = cl + o.dpin;
          Acc* dprec = cl + o.dprec;
          for (int k = 0; k < H; ++k) {
            dh[k] = dout[(static_cast<size_t>(t) * c.B + b) * DH + dir * H + k] + dhn[k];
            const Acc* gt = cl + o.gates;
            if (c.lstm) {
              const Acc i = gt[k], f = gt[H + k], g = gt[2 * H + k], og = gt[3 * H + k];
              const Acc tc = std::tanh(cl[o.c + k]);
              const Acc dct = dcn[k] + dh[k] * og * (Acc(1) - tc * tc);
              dpin[k] = dct * g * i * (Acc(1) - i);
              dpin[H + k] = dct * cc[k] * f * (Acc(1) - f);
              dpin[2 * H + k] = dct * i * (Acc(1) - g * g);
              dpin[3 * H + k] = dh[k] * tc * og * (Acc(1) - og);
              for (int q = 0; q < 4; ++q) dprec[q * H + k] = dpin[q * H + k];
              dc[k] = dct * f;
            } else if (c.gru) {
              const Acc r = gt[k], u = gt[H + k], n = gt[2 * H + k];
              const Acc dpn = dh[k] * (Acc(1) - u) * (Acc(1) - n * n);
              const Acc dpu = dh[k] * (h[k] - n) * u * (Acc(1) - u);
              const Acc dpr = dpn * cl[o.ghn + k] * r * (Acc(1) - r);
              dpin[k] = dprec[k] = dpr;
              dpin[H + k] = dprec[H + k] = dpu;
              dpin[2 * H + k] = dpn;
              dprec[2 * H + k] = dpn * r;
            } else {
              const Acc a = gt[k];
              const Acc d = c.r->cell == CUDNN_RNN_RELU ? (a > Acc(0) ? Acc(1) : Acc(0)) : Acc(1) - a * a;
              dpin[k] = dprec[k] = dh[k] * d;
            }
          }
          // dh_prev = R^T dprec (+ u * dh for GRU); the layer input's gradient += W^T dpin.
          for (int j = 0; j < H; ++j) {
            Acc v = c.gru ? dh[j] * cl[o.gates + H + j] : Acc(0);
            for (int q = 0; q < G * H; ++q) v += wt.R[static_cast<size_t>(q) * H + j] * dprec[q];
            dhn[j] = v;
          }
          if (c.lstm) dcn = dc;
          Acc* dst = &din[(static_cast<size_t>(t) * c.B + b) * in];
          for (int q = 0; q < G * H; ++q) {
            const Acc g = dpin[q];
            const Acc* wr = &wt.W[static_cast<size_t>(q) * in];
            for (int j = 0; j < in; ++j) dst[j] += wr[j] * g;
          }
        }
        for (int k = 0; k < H; ++k) {  // dhx / dcx: not written when NULL
          const int64_t i = (static_cast<int64_t>(p) * c.B + b) * H + k;
          if (dhx) store(c.t, dhx, i, dhn[k]);
          if (c.lstm && dcx) store(c.t, dcx, i, dcn[k]);
        }
      }
    }
    dout.swap(din);
  }
  for (int b = 0; b < c.B; ++b)
    for (int t = 0; t < c.xd->lengths[b]; ++t)
      for (int j = 0; j < c.I; ++j)
        store(c.t, dx, row(*c.xd, t, b) * c.I + j, dout[(static_cast<size_t>(t) * c.B + b) * c.I + j]);
  fill_padding(*c.xd, dx);
}

// Backward weights: per pseudo-layer, sum over valid steps of dpin x input^T, dprec x h_prev^T
// and the bias gradients, added into (ADD) the gradient weight space at the weights' places.
template <typename Acc>
void backward_weights(const Call& c, Acc* cells, const void* x, const void* hx, void* dw) {
  Net<Acc> net{c, CellOff(c), cells};
  const CellOff& o = net.o;
  const WeightLayout lay = weight_layout(*c.r);
  const int H = c.H, G = c.G;
  std::vector<Acc> h(H), cc(H);
  char* base = static_cast<char*>(dw);
  for (int l = 0; l < c.L; ++l) {
    const std::vector<Acc> in = net.layer_input(l, x, false);
    const int nin = l == 0 ? c.I : c.D * H;
    for (int dir = 0; dir < c.D; ++dir) {
      const int p = l * c.D + dir;
      const size_t GH = static_cast<size_t>(G) * H;
      std::vector<Acc> dW(GH * nin, Acc(0)), dR(GH * H, Acc(0)), dbW(GH, Acc(0)), dbR(GH, Acc(0));
      for (int b = 0; b < c.B; ++b) {
        const int len = c.xd->lengths[b];
        for (int s = 0; s < len; ++s) {
          const int t = Net<Acc>::time(dir, s, len);
          net.prev_state(p, dir, b, s, hx, nullptr, h, cc);
          const Acc* cl = net.cell(p, t, b);
          const Acc* xin = &in[(static_cast<size_t>(t) * c.B + b) * nin];
          for (size_t q = 0; q < GH; ++q) {
            const Acc gi = cl[o.dpin + q], gr = cl[o.dprec + q];
            for (int j = 0; j < nin; ++j) dW[q * nin + j] += gi * xin[j];
            for (int j = 0; j < H; ++j) dR[q * H + j] += gr * h[j];
            dbW[q] += gi, dbR[q] += gr;
          }
        }
      }
      auto add = [&](size_t off, const Acc* v, size_t n) {
        for (size_t i = 0; i < n; ++i)
          store(c.t, base + off, static_cast<int64_t>(i), load(c.t, base + off, static_cast<int64_t>(i)) + v[i]);
      };
      for (int q = 0; q < G; ++q) {
        const size_t ki = static_cast<size_t>(p) * 2 * G + q, kr = ki + G;
        add(lay.mat[ki], &dW[static_cast<size_t>(q) * H * nin], static_cast<size_t>(H) * nin);
        add(lay.mat[kr], &dR[static_cast<size_t>(q) * H * H], static_cast<size_t>(H) * H);
        if (lay.bias[ki] != SIZE_MAX) add(lay.bias[ki], &dbW[static_cast<size_t>(q) * H], H);
        if (lay.bias[kr] != SIZE_MAX) add(lay.bias[kr], &dbR[static_cast<size_t>(q) * H], H);
      }
    }
  }
}

// The reserve space of a training forward of this problem, at least at `phase`; else BAD_PARAM
// (cuDNN cannot tell, and would compute from garbage).
cudnnStatus_t reserve_from(const char* fn, const Call& c, void* reserve, uint32_t phase) {
  Header hd;
  std::memcpy(&hd, reserve, sizeof hd);
  if (hd.magic != kMagic || hd.key != key_of(c))
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "reserve space not filled by a training cudnnRNNForward of this problem");
  if (hd.phase < phase)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "reserve space holds no cudnnRNNBackwardData_v8 results yet");
  return CUDNN_STATUS_SUCCESS;
}

// y must be "produced by the preceding cudnnRNNForward() call": the emulation compares it with
// the top layer's outputs kept in the reserve space (cuDNN would silently use it).
template <typename Acc>
bool same_y(const Call& c, const Acc* cells, const void* y) {
  Net<Acc> net{c, CellOff(c), const_cast<Acc*>(cells)};
  const int top = (c.L - 1) * c.D, DH = c.D * c.H;
  for (int b = 0; b < c.B; ++b)
    for (int t = 0; t < c.xd->lengths[b]; ++t)
      for (int j = 0; j < DH; ++j)
        if (load(c.t, y, row(*c.yd, t, b) * DH + j) != static_cast<double>(net.cell(top + j / c.H, t, b)[net.o.h + j % c.H]))
          return false;
  return true;
}

bool y_matches(const Call& c, void* reserve, const void* y) {
  char* cells = static_cast<char*>(reserve) + kReserveHeader;
  return c.t == CUDNN_DATA_DOUBLE ? same_y(c, reinterpret_cast<double*>(cells), y)
                                  : same_y(c, reinterpret_cast<float*>(cells), y);
}

}  // namespace

// cudnnRNNBackwardData_v8: dx, dhx, dcx from dy, dhy, dcy; "must be called after
// cudnnRNNForward()" in CUDNN_FWD_MODE_TRAINING with the same reserve space. dhy / dcy NULL:
// zero; dhx / dcx NULL: not written; hx / cx as in the forward.
cudnnStatus_t CUDNNWINAPI cudnnRNNBackwardData_v8(
    cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc, const int32_t devSeqLengths[], cudnnRNNDataDescriptor_t yDesc,
    const void* y, const void* dy, cudnnRNNDataDescriptor_t xDesc, void* dx, cudnnTensorDescriptor_t hDesc,
    const void* hx, const void* dhy, void* dhx, cudnnTensorDescriptor_t cDesc, const void* cx, const void* dcy,
    void* dcx, size_t weightSpaceSize, const void* weightSpace, size_t workSpaceSize, void* workSpace,
    size_t reserveSpaceSize, void* reserveSpace) {
  const char* fn = "cudnnRNNBackwardData_v8";
  // BIGMODEL_EMU_ASYNC=1: its checks read device data (lengths, reserve space), so it runs
  // after the stream's queued work, at once.
  if (handle) bm_emu::library_call_waits(handle->stream);
  Call c;
  cudnnStatus_t st = validate(fn, handle, rnnDesc, devSeqLengths, xDesc, yDesc, hDesc, cDesc, c,
                              hx || dhy || dhx, cx || dcy || dcx);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if (!y || !dy || !dx) return fail(CUDNN_STATUS_BAD_PARAM, fn, "y, dy or dx is NULL");
  st = check_spaces(fn, c, weightSpaceSize, weightSpace, workSpaceSize, workSpace, true, reserveSpaceSize, reserveSpace);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if ((st = reserve_from(fn, c, reserveSpace, 1)) != CUDNN_STATUS_SUCCESS) return st;
  if (!y_matches(c, reserveSpace, y)) return fail(CUDNN_STATUS_BAD_PARAM, fn, "y is not the forward's output");
  scribble(workSpace, workSpaceSize);
  char* cells = static_cast<char*>(reserveSpace) + kReserveHeader;
  if (c.t == CUDNN_DATA_DOUBLE)
    backward_data(c, reinterpret_cast<double*>(cells), dy, dx, hx, dhy, dhx, cx, dcy, dcx, weightSpace);
  else
    backward_data(c, reinterpret_cast<float*>(cells), dy, dx, hx, dhy, dhx, cx, dcy, dcx, weightSpace);
  Header hd;
  std::memcpy(&hd, reserveSpace, sizeof hd);
  hd.phase = 2;
  std::memcpy(reserveSpace, &hd, sizeof hd);
  count_run();
  return CUDNN_STATUS_SUCCESS;
}

// cudnnRNNBackwardWeights_v8: the weight gradients from x, hx, y and the gate gradients that
// cudnnRNNBackwardData_v8 left in the reserve space (so it runs after it). addGrad: "currently,
// only CUDNN_WGRAD_MODE_ADD is supported" (adds into dweightSpace); SET is NOT_SUPPORTED.
cudnnStatus_t CUDNNWINAPI cudnnRNNBackwardWeights_v8(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                                     cudnnWgradMode_t addGrad, const int32_t devSeqLengths[],
                                                     cudnnRNNDataDescriptor_t xDesc, const void* x,
                                                     cudnnTensorDescriptor_t hDesc, const void* hx,
                                                     cudnnRNNDataDescriptor_t yDesc, const void* y,
                                                     size_t weightSpaceSize, void* dweightSpace, size_t workSpaceSize,
                                                     void* workSpace, size_t reserveSpaceSize, void* reserveSpace) {
  const char* fn = "cudnnRNNBackwardWeights_v8";
  // BIGMODEL_EMU_ASYNC=1: its checks read device data (lengths, reserve space), so it runs
  // after the stream's queued work, at once.
  if (handle) bm_emu::library_call_waits(handle->stream);
  Call c;
  cudnnStatus_t st = validate(fn, handle, rnnDesc, devSeqLengths, xDesc, yDesc, hDesc, nullptr, c, hx != nullptr, false);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if (addGrad == CUDNN_WGRAD_MODE_SET) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "only CUDNN_WGRAD_MODE_ADD is supported");
  if (addGrad != CUDNN_WGRAD_MODE_ADD) return fail(CUDNN_STATUS_BAD_PARAM, fn, "invalid addGrad");
  if (!x || !y) return fail(CUDNN_STATUS_BAD_PARAM, fn, "x or y is NULL");
  st = check_spaces(fn, c, weightSpaceSize, dweightSpace, workSpaceSize, workSpace, true, reserveSpaceSize, reserveSpace);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if ((st = reserve_from(fn, c, reserveSpace, 2)) != CUDNN_STATUS_SUCCESS) return st;
  if (!y_matches(c, reserveSpace, y)) return fail(CUDNN_STATUS_BAD_PARAM, fn, "y is not the forward's output");
  scribble(workSpace, workSpaceSize);
  char* cells = static_cast<char*>(reserveSpace) + kReserveHeader;
  if (c.t == CUDNN_DATA_DOUBLE) backward_weights(c, reinterpret_cast<double*>(cells), x, hx, dweightSpace);
  else backward_weights(c, reinterpret_cast<float*>(cells), x, hx, dweightSpace);
  count_run();
  return CUDNN_STATUS_SUCCESS;
}
