// CUDA-on-CPU emulation of cuDNN's v8 RNN API, part 2 (-DBIGMODEL_CUDA=EMULATE only):
// cudnnRNNForward over the weight layout of emu_cudnn_rnn.cpp (the backward calls are in
// emu_cudnn_rnn_bwd.cpp), with the cell equations of cudnnRNNMode_t (cudnn_adv reference):
//   RNN_RELU / RNN_TANH: h_t = act(W_i x_t + R_i h_t-1 + b_Wi + b_Ri)
//   LSTM: i, f, o = sigmoid(W x_t + R h_t-1 + b_W + b_R) of their gates, c'_t = tanh(same for
//         c'), c_t = f * c_t-1 + i * c'_t, h_t = o * tanh(c_t)           (ids 0-3: i, f, c', o)
//   GRU:  r, u = sigmoid(W x_t + R h_t-1 + b_W + b_R) of their gates,
//         h'_t = tanh(W_h x_t + r * (R_h h_t-1 + b_Rh) + b_Wh), h_t = (1 - u) * h'_t + u * h_t-1
//                                                                         (ids 0-2: r, u, h')
// Layer l's input is layer l-1's output (both directions concatenated, forward first); the
// reverse direction of a sequence runs from its own last step down to step 0. float math
// (float accumulation) for float / half / bfloat16 data, double for double; the stored
// outputs and the hidden state fed back are rounded to the data type, the cell state is not.
#include <atomic>
#include <vector>

#include "tests/cuda_emu/emu_cudnn_rnn_impl.h"
#include "tests/cuda_emu/emu_streams.h"

using namespace bm_emu_cudnn;
using namespace bm_emu_cudnn::rnn_impl;

namespace {

std::atomic<int64_t> g_rnn_runs{0};

template <typename Acc>
void forward(const Call& c, Acc* cells, const void* x, void* y, const void* hx, void* hy, const void* cx, void* cy,
             const void* w) {
  Net<Acc> net{c, CellOff(c), cells};
  const CellOff& o = net.o;
  const int H = c.H, G = c.G;
  std::vector<Acc> h(H), cc(H), hin(H), gi(G * H), gh(G * H);
  for (int l = 0; l < c.L; ++l) {
    const std::vector<Acc> in = net.layer_input(l, x, c.tf32);
    for (int dir = 0; dir < c.D; ++dir) {
      const int p = l * c.D + dir;
      const Weights<Acc> wt = load_weights<Acc>(c, w, p, c.tf32);
      for (int b = 0; b < c.B; ++b) {
        const int len = c.xd->lengths[b];
        for (int s = 0; s < len; ++s) {
          const int t = Net<Acc>::time(dir, s, len);
          net.prev_state(p, dir, b, s, hx, cx, h, cc);
          const Acc* xin = &in[(static_cast<size_t>(t) * c.B + b) * wt.in];
          for (int k = 0; k < H; ++k) hin[k] = c.tf32 ? tf32r(h[k]) : h[k];
          for (int q = 0; q < G * H; ++q) {
            Acc a = wt.bW[q], r = wt.bR[q];
            for (int j = 0; j < wt.in; ++j) a += wt.W[static_cast<size_t>(q) * wt.in + j] * xin[j];
            for (int j = 0; j < H; ++j) r += wt.R[static_cast<size_t>(q) * H + j] * hin[j];
            gi[q] = a, gh[q] = r;
          }
          Acc* cl = net.cell(p, t, b);
          for (int k = 0; k < H; ++k) {
            Acc hn, cn = 0;
            if (c.lstm) {
              const Acc i = sigm(gi[k] + gh[k]), f = sigm(gi[H + k] + gh[H + k]);
              const Acc g = std::tanh(gi[2 * H + k] + gh[2 * H + k]), og = sigm(gi[3 * H + k] + gh[3 * H + k]);
              cn = f * cc[k] + i * g;
              hn = og * std::tanh(cn);
              cl[o.gates + k] = i, cl[o.gates + H + k] = f, cl[o.gates + 2 * H + k] = g, cl[o.gates + 3 * H + k] = og;
            } else if (c.gru) {
              const Acc r = sigm(gi[k] + gh[k]), u = sigm(gi[H + k] + gh[H + k]);
              const Acc n = std::tanh(gi[2 * H + k] + r * gh[2 * H + k]);
              hn = (Acc(1) - u) * n + u * h[k];
              cl[o.gates + k] = r, cl[o.gates + H + k] = u, cl[o.gates + 2 * H + k] = n, cl[o.ghn + k] = gh[2 * H + k];
            } else {
              const Acc pre = gi[k] + gh[k];
              hn = c.r->cell == CUDNN_RNN_RELU ? std::max(pre, Acc(0)) : std::tanh(pre);
              cl[o.gates + k] = hn;
            }
            cl[o.c + k] = cn;
            cl[o.h + k] = static_cast<Acc>(round_to(c.t, hn));
          }
        }
        // hy / cy: the state after the sequence's last step in this direction; not written
        // when NULL.
        net.prev_state(p, dir, b, len, hx, cx, h, cc);
        for (int k = 0; k < H; ++k) {
          const int64_t i = (static_cast<int64_t>(p) * c.B + b) * H + k;
          if (hy) store(c.t, hy, i, h[k]);
          if (c.lstm && cy) store(c.t, cy, i, cc[k]);
        }
      }
    }
  }
  const int top = (c.L - 1) * c.D;
  for (int b = 0; b < c.B; ++b)
    for (int t = 0; t < c.xd->lengths[b]; ++t)
      for (int j = 0; j < c.D * H; ++j)
        store(c.t, y, row(*c.yd, t, b) * c.D * H + j, net.cell(top + j / H, t, b)[o.h + j % H]);
  fill_padding(*c.yd, y);
}

}  // namespace

int64_t bm_emu_cudnn::rnn_runs() { return g_rnn_runs.load(); }
void bm_emu_cudnn::rnn_impl::count_run() { ++g_rnn_runs; }

// cudnnRNNForward: y, hy, cy from x, hx, cx. hx / cx NULL: zero initial state; hy / cy NULL:
// not written; cDesc / cx / cy only for LSTM. In CUDNN_FWD_MODE_TRAINING the reserve space keeps
// what cudnnRNNBackwardData_v8 needs; in inference it is not used (may be NULL).
cudnnStatus_t CUDNNWINAPI cudnnRNNForward(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                          cudnnForwardMode_t fwdMode, const int32_t devSeqLengths[],
                                          cudnnRNNDataDescriptor_t xDesc, const void* x,
                                          cudnnRNNDataDescriptor_t yDesc, void* y, cudnnTensorDescriptor_t hDesc,
                                          const void* hx, void* hy, cudnnTensorDescriptor_t cDesc, const void* cx,
                                          void* cy, size_t weightSpaceSize, const void* weightSpace,
                                          size_t workSpaceSize, void* workSpace, size_t reserveSpaceSize,
                                          void* reserveSpace) {
  const char* fn = "cudnnRNNForward";
  // BIGMODEL_EMU_ASYNC=1: its checks read device data (lengths, reserve space), so it runs
  // after the stream's queued work, at once.
  if (handle) bm_emu::library_call_waits(handle->stream);
  Call c;
  cudnnStatus_t st =
      validate(fn, handle, rnnDesc, devSeqLengths, xDesc, yDesc, hDesc, cDesc, c, hx || hy, cx || cy);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if (fwdMode != CUDNN_FWD_MODE_INFERENCE && fwdMode != CUDNN_FWD_MODE_TRAINING)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "invalid fwdMode");
  if (!x || !y) return fail(CUDNN_STATUS_BAD_PARAM, fn, "x or y is NULL");
  const bool train = fwdMode == CUDNN_FWD_MODE_TRAINING;
  st = check_spaces(fn, c, weightSpaceSize, weightSpace, workSpaceSize, workSpace, train, reserveSpaceSize,
                    reserveSpace);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  scribble(workSpace, workSpaceSize);
  const size_t ncells = static_cast<size_t>(c.L) * c.D * c.T * c.B * cell_size(*c.r);
  std::vector<char> local;
  char* cells = nullptr;
  if (train) {
    Header hd{kMagic, key_of(c), 1};
    std::memcpy(reserveSpace, &hd, sizeof hd);
    cells = static_cast<char*>(reserveSpace) + kReserveHeader;
  } else {
    local.resize(ncells * acc_size(*c.r));
    cells = local.data();
  }
  if (c.t == CUDNN_DATA_DOUBLE) forward<double>(c, reinterpret_cast<double*>(cells), x, y, hx, hy, cx, cy, weightSpace);
  else forward<float>(c, reinterpret_cast<float*>(cells), x, y, hx, hy, cx, cy, weightSpace);
  ++g_rnn_runs;
  return CUDNN_STATUS_SUCCESS;
}
