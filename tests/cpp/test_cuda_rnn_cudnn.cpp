// cuda tier (C++): the cuDNN RNN baseline (core/ops/rnn.h cudnn_rnn, kernels/cuda/rnn_cudnn.cu).
// The front end's argument checks run everywhere (CPU tensors reach the device check last); on
// a GPU one LSTM layer and one bidirectional GRU stack with lengths are checked against the CPU
// (lstm_layer, and a step loop built from ops), forward and every gradient.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/backends.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/reduce.h"
#include "core/ops/rnn.h"
#include "core/ops/shape_ops.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"
#include "core/random.h"
#include "nn/rnn.h"
#include "tests/cpp/cuda_test_skip.h"

using namespace bigmodel;

namespace {

const Device kGpu(DeviceType::CUDA, 0);
const Device kCpu;

// Runs fn, expecting an exception of type E whose message starts with "[cudnn_rnn]" and holds
// `part`.
template <typename E, typename Fn>
void expect_error(Fn fn, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one containing '" << part << "'";
  } catch (const E& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("[cudnn_rnn]", 0), 0u) << msg;
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
  }
}

std::vector<Tensor> lstm_weights(int64_t I, int64_t H, Device dev, DType dt = DType::Float32) {
  return {randn({4 * H, I}, dt, dev), randn({4 * H, H}, dt, dev), randn({4 * H}, dt, dev),
          randn({4 * H}, dt, dev)};
}

// max |a - e| / max(1, max |e|) with a on any device.
double rel_error(const Tensor& a, const Tensor& e) {
  EXPECT_EQ(a.sizes(), e.sizes());
  const Tensor x = contiguous(to(to(a, kCpu), DType::Float64)),
               y = contiguous(to(to(e, kCpu), DType::Float64));
  double err = 0, scale = 1;
  for (int64_t i = 0; i < x.numel(); ++i) {
    err = std::max(err, std::fabs(x.data<double>()[i] - y.data<double>()[i]));
    scale = std::max(scale, std::fabs(y.data<double>()[i]));
  }
  EXPECT_FALSE(std::isnan(err));
  return err / scale;
}

// Skips (printing why) in a build without cuDNN, where every call raises saying so.
#define SKIP_WITHOUT_CUDNN()                                                                       \
  try {                                                                                            \
    cudnn_rnn(randn({2, 1, 3}, DType::Float32, kGpu), randn({1, 1, 2}, DType::Float32, kGpu),      \
              Tensor(), {randn({2, 3}, DType::Float32, kGpu), randn({2, 2}, DType::Float32, kGpu)}, \
              RnnCell::Tanh, 1, false, false);                                                     \
  } catch (const Error& e) {                                                                       \
    if (std::string(e.what()).find("without cuDNN") == std::string::npos) throw;                   \
    GTEST_SKIP() << e.what();                                                                      \
  }

Tensor leaf(const Tensor& t, Device dev) { return to(t, dev).detach().requires_grad_(true); }

}  // namespace

TEST(CudaRnnCudnn, FrontEndChecksRunWithoutGpu) {
  const int64_t T = 4, B = 2, I = 3, H = 5;
  const Tensor x = randn({T, B, I}), h0 = randn({1, B, H}), c0 = randn({1, B, H});
  const std::vector<Tensor> w = lstm_weights(I, H, kCpu);
  auto call = [&](const Tensor& xx, const Tensor& hh, const Tensor& cc,
                  const std::vector<Tensor>& ww, RnnCell cell, int64_t layers, bool bidir,
                  const std::vector<int64_t>& lengths = {}) {
    cudnn_rnn(xx, hh, cc, ww, cell, layers, bidir, true, lengths);
  };
  expect_error<ValueError>([] { rnn_cell_from_name("LSTMX"); }, "unknown mode 'LSTMX'");
  EXPECT_EQ(rnn_cell_from_name("GRU"), RnnCell::Gru);
  expect_error<ValueError>([&] { call(x, h0, c0, w, RnnCell::Lstm, 0, false); }, "num_layers >= 1");
  expect_error<ShapeError>(
      [&] {
        call(reshape(x, {T * B, I}), h0, c0, w, RnnCell::Lstm, 1, false);
      },
      "expected input of shape [T, B, input_size], got [8, 3]");
  expect_error<ShapeError>([&] { call(x, h0, c0, w, RnnCell::Lstm, 1, true); },
                           "expected h0 of shape [2, 2, H]");
  expect_error<ShapeError>([&] { call(x, h0, Tensor(), w, RnnCell::Lstm, 1, false); },
                           "expected c0 of shape");
  expect_error<ValueError>([&] { call(x, h0, c0, w, RnnCell::Tanh, 1, false); },
                           "c0 is only taken by an LSTM");
  expect_error<ValueError>(
      [&] {
        call(x, h0, c0, {w[0], w[1]}, RnnCell::Lstm, 1, false);
      },
      "expected 4 weights (4 per layer and direction), got 2");
  expect_error<ShapeError>([&] { call(x, h0, Tensor(), w, RnnCell::Gru, 1, false); },
                           "expected weight_ih_l0 of shape [15, 3]");
  expect_error<ShapeError>(
      [&] {
        call(x, h0, c0, {w[0], t(w[1]), w[2], w[3]}, RnnCell::Lstm, 1, false);
      },
      "expected weight_hh_l0 of shape [20, 5]");
  expect_error<DTypeError>([&] { call(x, to(h0, DType::Float64), c0, w, RnnCell::Lstm, 1, false); },
                           "expected one dtype, got input float32 and h0 float64");
  expect_error<DTypeError>(
      [&] {
        call(to(x, DType::Int32), to(h0, DType::Int32), to(c0, DType::Int32), w, RnnCell::Lstm, 1,
             false);
      },
      "expects floating point tensors, got int32");
  expect_error<ValueError>([&] { call(x, h0, c0, w, RnnCell::Lstm, 1, false, {4}); },
                           "expected 2 lengths");
  expect_error<ValueError>(
      [&] {
        call(x, h0, c0, w, RnnCell::Lstm, 1, false, {0, 4});
      },
      "lengths must lie in [1, 4]");
  expect_error<ValueError>(
      [&] {
        call(x, h0, c0, w, RnnCell::Lstm, 1, false, {4, 5});
      },
      "lengths must lie in [1, 4]");
  // Everything right but the device: the CPU never runs cuDNN.
  expect_error<DeviceError>(
      [&] {
        call(x, h0, c0, w, RnnCell::Lstm, 1, false, {4, 2});
      },
      "the cuDNN backend runs on CUDA tensors, got input on cpu");
}

TEST(CudaRnnCudnn, LstmLayerMatchesCpuForwardAndGradients) {
  SKIP_WITHOUT_GPU();
  SKIP_WITHOUT_CUDNN();
  manual_seed(3);
  const int64_t T = 7, B = 3, I = 5, H = 6;
  const Tensor x = randn({T, B, I}), h0 = randn({1, B, H}), c0 = randn({1, B, H});
  const std::vector<Tensor> w = lstm_weights(I, H, kCpu);
  const Tensor gy = randn({T, B, H}), gh = randn({1, B, H}), gc = randn({1, B, H});

  // CPU reference: the input projection plus lstm_layer, as bm.nn.LSTM runs it.
  std::vector<Tensor> cw;
  for (const Tensor& p : w) cw.push_back(leaf(p, kCpu));
  const Tensor cx = leaf(x, kCpu), ch = leaf(h0, kCpu), cc = leaf(c0, kCpu);
  const Tensor xp =
      reshape(add(add(mm(reshape(cx, {T * B, I}), t(cw[0])), cw[2]), cw[3]), {T, B, 4 * H});
  const std::vector<Tensor> ref = lstm_layer(xp, select(ch, 0, 0), select(cc, 0, 0), cw[1]);
  Tensor loss = add(add(sum(mul(ref[0], gy)), sum(mul(ref[1], select(gh, 0, 0)))),
                    sum(mul(ref[2], select(gc, 0, 0))));
  loss.backward();

  std::vector<Tensor> gw;
  for (const Tensor& p : w) gw.push_back(leaf(p, kGpu));
  const Tensor gx = leaf(x, kGpu), ghx = leaf(h0, kGpu), gcx = leaf(c0, kGpu);
  const std::vector<Tensor> out = cudnn_rnn(gx, ghx, gcx, gw, RnnCell::Lstm, 1, false, true);
  ASSERT_EQ(out.size(), 3u);
  ASSERT_TRUE(out[0].device().is_cuda());
  const double tol = 1e-4;
  EXPECT_LE(rel_error(out[0], ref[0]), tol) << "out";
  EXPECT_LE(rel_error(select(out[1], 0, 0), ref[1]), tol) << "h_n";
  EXPECT_LE(rel_error(select(out[2], 0, 0), ref[2]), tol) << "c_n";
  Tensor gloss = add(add(sum(mul(out[0], to(gy, kGpu))), sum(mul(out[1], to(gh, kGpu)))),
                     sum(mul(out[2], to(gc, kGpu))));
  gloss.backward();
  EXPECT_LE(rel_error(gx.grad(), cx.grad()), tol) << "grad x";
  EXPECT_LE(rel_error(ghx.grad(), ch.grad()), tol) << "grad h0";
  EXPECT_LE(rel_error(gcx.grad(), cc.grad()), tol) << "grad c0";
  const char* names[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  for (size_t k = 0; k < 4; ++k) EXPECT_LE(rel_error(gw[k].grad(), cw[k].grad()), tol) << names[k];
}

// A GRU step loop from ops (PyTorch's formula, n = tanh(W_in x + b_in + r * (W_hn h + b_hn))),
// with each sequence's state frozen past its length, as the reference of a 2-layer
// bidirectional GRU with lengths.
TEST(CudaRnnCudnn, BidirectionalGruWithLengthsMatchesCpuStepLoop) {
  SKIP_WITHOUT_GPU();
  SKIP_WITHOUT_CUDNN();
  manual_seed(5);
  const int64_t T = 6, B = 4, I = 3, H = 5, L = 2, D = 2;
  const std::vector<int64_t> lengths = {6, 2, 5, 1};
  const Tensor x = randn({T, B, I}), h0 = randn({L * D, B, H});
  std::vector<Tensor> w;
  for (int64_t l = 0; l < L; ++l)
    for (int64_t d = 0; d < D; ++d)
      for (const Shape& s :
           {Shape{3 * H, l == 0 ? I : D * H}, Shape{3 * H, H}, Shape{3 * H}, Shape{3 * H}})
        w.push_back(mul(randn(s), Scalar(0.4)));
  const Tensor gy = randn({T, B, D * H}), gh = randn({L * D, B, H});

  std::vector<Tensor> cw;
  for (const Tensor& p : w) cw.push_back(leaf(p, kCpu));
  const Tensor cx = leaf(x, kCpu), ch = leaf(h0, kCpu);
  std::vector<float> mask_values;
  for (int64_t s = 0; s < T; ++s)
    for (int64_t b = 0; b < B; ++b) mask_values.push_back(s < lengths[b] ? 1.0f : 0.0f);
  const Tensor mask = from_vector(mask_values, {T, B, 1});
  Tensor layer_in = cx;
  std::vector<Tensor> h_n;
  for (int64_t l = 0; l < L; ++l) {
    std::vector<Tensor> dir_out;
    for (int64_t d = 0; d < D; ++d) {
      const Tensor* p = &cw[(l * D + d) * 4];
      Tensor h = select(ch, 0, l * D + d);
      std::vector<Tensor> outs(T);
      for (int64_t i = 0; i < T; ++i) {
        const int64_t s = d == 1 ? T - 1 - i : i;
        const Tensor gi = add(mm(select(layer_in, 0, s), t(p[0])), p[2]);
        const Tensor gg = add(mm(h, t(p[1])), p[3]);
        const Tensor m = select(mask, 0, s);
        const Tensor h_new = gru_cell_pointwise(gi, gg, h);
        outs[s] = mul(h_new, m);
        h = add(outs[s], mul(h, rsub(m, Scalar(1.0))));
      }
      dir_out.push_back(stack(outs, 0));
      h_n.push_back(h);
    }
    layer_in = cat(dir_out, 2);
  }
  const Tensor ref_hn = stack(h_n, 0);
  add(sum(mul(layer_in, gy)), sum(mul(ref_hn, gh))).backward();

  std::vector<Tensor> gw;
  for (const Tensor& p : w) gw.push_back(leaf(p, kGpu));
  const Tensor gx = leaf(x, kGpu), ghx = leaf(h0, kGpu);
  const std::vector<Tensor> out =
      cudnn_rnn(gx, ghx, Tensor(), gw, RnnCell::Gru, L, true, true, lengths);
  ASSERT_EQ(out.size(), 2u);
  const double tol = 1e-4;
  EXPECT_LE(rel_error(out[0], layer_in), tol) << "out";
  EXPECT_LE(rel_error(out[1], ref_hn), tol) << "h_n";
  add(sum(mul(out[0], to(gy, kGpu))), sum(mul(out[1], to(gh, kGpu)))).backward();
  EXPECT_LE(rel_error(gx.grad(), cx.grad()), tol) << "grad x";
  EXPECT_LE(rel_error(ghx.grad(), ch.grad()), tol) << "grad h0";
  for (size_t k = 0; k < w.size(); ++k)
    EXPECT_LE(rel_error(gw[k].grad(), cw[k].grad()), tol) << "weight " << k;
}

// The C++ nn::LSTM (moved with Module::to) takes the cuDNN path when the backend says so, with
// the same outputs and gradients as our kernels: a 2-layer bidirectional batch-first stack.
TEST(CudaRnnCudnn, NnLstmModuleFollowsTheBackend) {
  SKIP_WITHOUT_GPU();
  SKIP_WITHOUT_CUDNN();
  struct Restore {
    std::string was = backend("rnn");
    ~Restore() { set_backend("rnn", was); }
  } restore;
  manual_seed(5);
  nn::LSTM lstm(5, 6, 2, true, /*batch_first=*/true, 0.0, /*bidirectional=*/true);
  lstm.to(kGpu);
  const Tensor x = randn({3, 7, 5}, DType::Float32, kGpu), gy = randn({3, 7, 12}, DType::Float32, kGpu);
  std::vector<Tensor> outs, grads;
  for (const char* which : {"ours", "cudnn"}) {
    set_backend("rnn", which);
    lstm.zero_grad();
    const Tensor xi = x.detach().requires_grad_(true);
    nn::RNNOutput r = lstm.forward_with_state(xi);
    ASSERT_TRUE(r.output.device().is_cuda()) << which;
    add(add(sum(mul(r.output, gy)), sum(r.h_n)), sum(r.c_n)).backward();
    outs.push_back(r.output);
    outs.push_back(r.h_n);
    outs.push_back(r.c_n);
    grads.push_back(xi.grad());
    for (const Tensor& p : lstm.parameters()) grads.push_back(clone(p.grad()));
  }
  const size_t no = outs.size() / 2, ng = grads.size() / 2;
  for (size_t i = 0; i < no; ++i) EXPECT_LE(rel_error(outs[no + i], outs[i]), 1e-4) << "output " << i;
  for (size_t i = 0; i < ng; ++i) EXPECT_LE(rel_error(grads[ng + i], grads[i]), 1e-4) << "gradient " << i;
}
