// The C++ layers beyond the basic set (nn/normalization.h, nn/embedding.h, nn/layers.h extras,
// nn/rnn.h, nn/attention.h): parameter names/shapes as PyTorch's, init ranges, forward against
// references computed independently (host loops or simpler ops), and bad inputs throwing the
// right bigmodel::Error subclass with the layer's name in the message.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/compare.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/reduce.h"
#include "core/ops/shape_ops.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"
#include "core/random.h"
#include "core/ops/softmax.h"
#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/layers.h"
#include "nn/normalization.h"
#include "nn/rnn.h"

using namespace bigmodel;

namespace {

std::vector<double> values(const Tensor& t) {
  Tensor c = reshape(contiguous(to(t.detach(), DType::Float64)), {-1});
  const double* p = c.data<double>();
  return std::vector<double>(p, p + c.numel());
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  auto va = values(a), vb = values(b);
  EXPECT_EQ(va.size(), vb.size());
  double m = 0;
  for (size_t i = 0; i < va.size() && i < vb.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

std::vector<std::pair<std::string, Shape>> names_and_shapes(const nn::StateDict& sd) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& kv : sd) out.emplace_back(kv.first, kv.second.sizes());
  return out;
}

// The message of the ErrType fn() throws ("<none>" when it throws nothing); another
// exception type escapes and fails the test.
template <class ErrType, class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const ErrType& e) {
    return e.what();
  }
  return "<none>";
}

#define EXPECT_LAYER_ERROR(ErrType, layer, stmt)                               \
  do {                                                                         \
    std::string msg_ = error_of<ErrType>([&] { stmt; });                       \
    EXPECT_NE(msg_.find("[" layer "]"), std::string::npos) << msg_;            \
  } while (0)

}  // namespace

// ---- LayerNorm ----------------------------------------------------------------------------
TEST(NnLayersCpp, LayerNormParamsAndInit) {
  nn::LayerNorm ln({3, 4});
  EXPECT_EQ(names_and_shapes(ln.state_dict()),
            (std::vector<std::pair<std::string, Shape>>{{"weight", {3, 4}}, {"bias", {3, 4}}}));
  for (double v : values(ln.weight)) EXPECT_EQ(v, 1.0);
  for (double v : values(ln.bias)) EXPECT_EQ(v, 0.0);
  EXPECT_TRUE(ln.weight.requires_grad());
  nn::LayerNorm plain(5, 1e-5, /*elementwise_affine=*/false);
  EXPECT_TRUE(plain.state_dict().empty());
  nn::LayerNorm no_bias(5, 1e-5, true, DType::Float64, /*bias=*/false);
  EXPECT_EQ(names_and_shapes(no_bias.state_dict()), (std::vector<std::pair<std::string, Shape>>{{"weight", {5}}}));
  EXPECT_EQ(no_bias.weight.dtype(), DType::Float64);
}

TEST(NnLayersCpp, LayerNormForwardMatchesHostLoop) {
  manual_seed(3);
  nn::LayerNorm ln(std::vector<int64_t>{2, 3}, 1e-3, true, DType::Float64);
  {
    NoGradGuard g;
    normal_(ln.weight);
    normal_(ln.bias);
  }
  Tensor x = randn({4, 2, 3}, DType::Float64);
  Tensor y = ln(x);
  auto xv = values(x), w = values(ln.weight), b = values(ln.bias);
  std::vector<double> ref(xv.size());
  for (int r = 0; r < 4; ++r) {
    double mean = 0, var = 0;
    for (int j = 0; j < 6; ++j) mean += xv[r * 6 + j] / 6;
    for (int j = 0; j < 6; ++j) var += (xv[r * 6 + j] - mean) * (xv[r * 6 + j] - mean) / 6;
    for (int j = 0; j < 6; ++j) ref[r * 6 + j] = (xv[r * 6 + j] - mean) / std::sqrt(var + 1e-3) * w[j] + b[j];
  }
  EXPECT_LT(max_abs_diff(y, from_vector(ref, {4, 2, 3})), 1e-12);
  // Gradients reach the parameters.
  sum(mul(y, y)).backward();
  EXPECT_TRUE(ln.weight.grad().defined());
  EXPECT_TRUE(ln.bias.grad().defined());
}

TEST(NnLayersCpp, LayerNormBadInputs) {
  nn::LayerNorm ln(4);
  EXPECT_LAYER_ERROR(ShapeError, "LayerNorm", ln(randn({2, 5})));
  EXPECT_LAYER_ERROR(ShapeError, "LayerNorm", (nn::LayerNorm({3, 4})(randn({4}))));
  EXPECT_LAYER_ERROR(ValueError, "LayerNorm", nn::LayerNorm(0));
  EXPECT_LAYER_ERROR(ValueError, "LayerNorm", nn::LayerNorm(std::vector<int64_t>{}));
  EXPECT_LAYER_ERROR(DTypeError, "LayerNorm", nn::LayerNorm(4, 1e-5, true, DType::Int64));
}

// ---- Embedding ----------------------------------------------------------------------------
TEST(NnLayersCpp, EmbeddingParamsInitAndPadding) {
  manual_seed(5);
  nn::Embedding emb(50, 40, /*padding_idx=*/-2);
  EXPECT_EQ(names_and_shapes(emb.state_dict()),
            (std::vector<std::pair<std::string, Shape>>{{"weight", {50, 40}}}));
  ASSERT_TRUE(emb.padding_idx.has_value());
  EXPECT_EQ(*emb.padding_idx, 48);
  auto w = values(emb.weight);
  double mean = 0, sq = 0;
  int n = 0;
  for (int r = 0; r < 50; ++r)
    for (int c = 0; c < 40; ++c) {
      if (r == 48) {
        EXPECT_EQ(w[r * 40 + c], 0.0);
        continue;
      }
      mean += w[r * 40 + c];
      sq += w[r * 40 + c] * w[r * 40 + c];
      ++n;
    }
  mean /= n;
  // N(0, 1): 1960 samples give a mean within ~0.1 and a variance within ~0.15 of the truth.
  EXPECT_LT(std::abs(mean), 0.1);
  EXPECT_LT(std::abs(sq / n - mean * mean - 1.0), 0.15);
}

TEST(NnLayersCpp, EmbeddingForwardPicksRowsAndSkipsPaddingGrad) {
  manual_seed(6);
  nn::Embedding emb(7, 3, 2);
  Tensor idx = from_vector<int64_t>({1, 2, 6, 1, 0, 2}, {2, 3});
  Tensor y = emb(idx);
  ASSERT_EQ(y.sizes(), (Shape{2, 3, 3}));
  auto w = values(emb.weight), yv = values(y);
  const int64_t picks[6] = {1, 2, 6, 1, 0, 2};
  for (int i = 0; i < 6; ++i)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(yv[i * 3 + c], w[picks[i] * 3 + c]);
  sum(y).backward();
  auto g = values(emb.weight.grad());
  const double counts[7] = {1, 2, 0, 0, 0, 0, 1};  // row 2 is padding: no gradient
  for (int r = 0; r < 7; ++r)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(g[r * 3 + c], counts[r]);
}

TEST(NnLayersCpp, EmbeddingBadInputs) {
  nn::Embedding emb(5, 2);
  EXPECT_LAYER_ERROR(DTypeError, "Embedding", emb(randn({3})));
  EXPECT_LAYER_ERROR(IndexError, "Embedding", emb(from_vector<int64_t>({0, 5}, {2})));
  EXPECT_LAYER_ERROR(IndexError, "Embedding", emb(from_vector<int64_t>({-1}, {1})));
  EXPECT_LAYER_ERROR(ValueError, "Embedding", nn::Embedding(5, 2, 5));
  EXPECT_LAYER_ERROR(ValueError, "Embedding", nn::Embedding(-1, 2));
}

// ---- Pooling ------------------------------------------------------------------------------
TEST(NnLayersCpp, AvgPool2dMatchesHostLoop) {
  manual_seed(7);
  Tensor x = randn({2, 3, 5, 6}, DType::Float64);
  nn::AvgPool2d pool({2, 3}, nn::Size2(1, 2), 1, /*ceil_mode=*/false, /*count_include_pad=*/false);
  Tensor y = pool(x);
  const int64_t oh = (5 + 2 - 2) / 1 + 1, ow = (6 + 2 - 3) / 2 + 1;
  ASSERT_EQ(y.sizes(), (Shape{2, 3, oh, ow}));
  auto xv = values(x);
  std::vector<double> ref;
  for (int p = 0; p < 6; ++p)
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        double acc = 0;
        int cnt = 0;
        for (int a = 0; a < 2; ++a)
          for (int b = 0; b < 3; ++b) {
            const int r = i - 1 + a, c = j * 2 - 1 + b;
            if (r < 0 || r >= 5 || c < 0 || c >= 6) continue;
            acc += xv[p * 30 + r * 6 + c];
            ++cnt;
          }
        ref.push_back(acc / cnt);
      }
  EXPECT_LT(max_abs_diff(y, from_vector(ref, y.sizes())), 1e-12);
  // Default stride = kernel_size, padding counted.
  nn::AvgPool2d pool2(2);
  EXPECT_EQ(pool2.stride.h, 2);
  EXPECT_EQ(pool2(x).sizes(), (Shape{2, 3, 2, 3}));
  EXPECT_LAYER_ERROR(ValueError, "AvgPool2d", pool2(randn({4})));
  EXPECT_LAYER_ERROR(ValueError, "AvgPool2d", nn::AvgPool2d(0));
}

TEST(NnLayersCpp, AdaptiveAvgPool2dMatchesHostLoop) {
  manual_seed(8);
  Tensor x = randn({3, 5, 7}, DType::Float64);
  nn::AdaptiveAvgPool2d pool({2, 3});
  Tensor y = pool(x);
  ASSERT_EQ(y.sizes(), (Shape{3, 2, 3}));
  auto xv = values(x);
  std::vector<double> ref;
  for (int p = 0; p < 3; ++p)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) {
        const int r0 = i * 5 / 2, r1 = ((i + 1) * 5 + 1) / 2, c0 = j * 7 / 3, c1 = ((j + 1) * 7 + 2) / 3;
        double acc = 0;
        for (int r = r0; r < r1; ++r)
          for (int c = c0; c < c1; ++c) acc += xv[p * 35 + r * 7 + c];
        ref.push_back(acc / ((r1 - r0) * (c1 - c0)));
      }
  EXPECT_LT(max_abs_diff(y, from_vector(ref, y.sizes())), 1e-12);
  EXPECT_LAYER_ERROR(ValueError, "AdaptiveAvgPool2d", pool(randn({7})));
  EXPECT_LAYER_ERROR(ValueError, "AdaptiveAvgPool2d", nn::AdaptiveAvgPool2d(-1));
}

// ---- Activations --------------------------------------------------------------------------
TEST(NnLayersCpp, ActivationsMatchHostFormulas) {
  manual_seed(9);
  Tensor x = mul(randn({4, 5}, DType::Float64), Scalar(2.0));
  auto xv = values(x);
  std::vector<double> gelu_erf, gelu_tanh, th, sg;
  for (double v : xv) {
    gelu_erf.push_back(0.5 * v * (1 + std::erf(v / std::sqrt(2.0))));
    gelu_tanh.push_back(0.5 * v * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v))));
    th.push_back(std::tanh(v));
    sg.push_back(1 / (1 + std::exp(-v)));
  }
  EXPECT_LT(max_abs_diff(nn::GELU()(x), from_vector(gelu_erf, {4, 5})), 1e-12);
  EXPECT_LT(max_abs_diff(nn::GELU("tanh")(x), from_vector(gelu_tanh, {4, 5})), 1e-12);
  EXPECT_GT(max_abs_diff(nn::GELU("tanh")(x), nn::GELU()(x)), 1e-6);  // the two really differ
  EXPECT_LT(max_abs_diff(nn::Tanh()(x), from_vector(th, {4, 5})), 1e-12);
  EXPECT_LT(max_abs_diff(nn::Sigmoid()(x), from_vector(sg, {4, 5})), 1e-12);
  // Softmax over dim 0 (columns) and -1 (rows).
  std::vector<double> sm0(20), lsm1(20);
  for (int c = 0; c < 5; ++c) {
    double z = 0;
    for (int r = 0; r < 4; ++r) z += std::exp(xv[r * 5 + c]);
    for (int r = 0; r < 4; ++r) sm0[r * 5 + c] = std::exp(xv[r * 5 + c]) / z;
  }
  for (int r = 0; r < 4; ++r) {
    double z = 0;
    for (int c = 0; c < 5; ++c) z += std::exp(xv[r * 5 + c]);
    for (int c = 0; c < 5; ++c) lsm1[r * 5 + c] = xv[r * 5 + c] - std::log(z);
  }
  EXPECT_LT(max_abs_diff(nn::Softmax(0)(x), from_vector(sm0, {4, 5})), 1e-12);
  EXPECT_LT(max_abs_diff(nn::LogSoftmax(-1)(x), from_vector(lsm1, {4, 5})), 1e-12);
  EXPECT_TRUE(nn::GELU().state_dict().empty());
  EXPECT_LAYER_ERROR(ValueError, "GELU", nn::GELU("fast"));
  EXPECT_LAYER_ERROR(IndexError, "Softmax", nn::Softmax(2)(x));
  EXPECT_LAYER_ERROR(DTypeError, "GELU", nn::GELU()(from_vector<int64_t>({1, 2}, {2})));
  EXPECT_LAYER_ERROR(DTypeError, "Softmax", nn::Softmax(0)(from_vector<int64_t>({1, 2}, {2})));
}

// ---- ModuleList ---------------------------------------------------------------------------
TEST(NnLayersCpp, ModuleListRegistersAndIndexes) {
  struct Stack : nn::Module {
    std::shared_ptr<nn::ModuleList> layers = register_module("layers", std::make_shared<nn::ModuleList>());
    std::string type_name() const override { return "Stack"; }
  } net;
  net.layers->push_back(std::make_shared<nn::Linear>(3, 4));
  net.layers->push_back(std::make_shared<nn::LayerNorm>(4));
  net.layers->push_back(std::make_shared<nn::GELU>());
  EXPECT_EQ(net.layers->size(), 3u);
  EXPECT_EQ(names_and_shapes(net.state_dict()),
            (std::vector<std::pair<std::string, Shape>>{{"layers.0.weight", {4, 3}},
                                                        {"layers.0.bias", {4}},
                                                        {"layers.1.weight", {4}},
                                                        {"layers.1.bias", {4}}}));
  EXPECT_EQ((*net.layers)[-1]->type_name(), "GELU");
  EXPECT_EQ(net.layers->get<nn::Linear>(0)->out_features, 4);
  int count = 0;
  for (const auto& m : *net.layers) count += m != nullptr;
  EXPECT_EQ(count, 3);
  EXPECT_LAYER_ERROR(IndexError, "ModuleList", (*net.layers)[3]);
  EXPECT_LAYER_ERROR(IndexError, "ModuleList", (*net.layers)[-4]);
  EXPECT_LAYER_ERROR(ValueError, "ModuleList", net.layers->get<nn::Linear>(1));
  EXPECT_LAYER_ERROR(NotImplementedError, "ModuleList", (*net.layers)(randn({2, 3})));
}

// ---- RNN / LSTM / GRU ---------------------------------------------------------------------
namespace {

// A recurrent layer's forward written from plain ops (matmul, sigmoid, tanh, chunk), step by
// step and layer by layer, without the fused cell ops or the batched input projection.
// x [T, B, I] (time-major), h0/c0 [L*D, B, H]; returns (output, h_n, c_n).
nn::RNNOutput reference_rnn(const nn::RNNBase& m, const Tensor& x_in, const Tensor& h0, const Tensor& c0) {
  const int64_t D = m.bidirectional ? 2 : 1, T = x_in.size(0);
  Tensor x = x_in;
  std::vector<Tensor> hs, cs;
  for (int64_t layer = 0; layer < m.num_layers; ++layer) {
    std::vector<Tensor> outs;
    for (int64_t d = 0; d < D; ++d) {
      auto w = m.layer_weights(layer, d);
      Tensor h = select(h0, 0, layer * D + d);
      Tensor c = m.mode == nn::RNNMode::LSTM ? select(c0, 0, layer * D + d) : Tensor();
      std::vector<Tensor> out(static_cast<size_t>(T));
      for (int64_t i = 0; i < T; ++i) {
        const int64_t s = d == 1 ? T - 1 - i : i;
        Tensor gi = add(matmul(select(x, 0, s), transpose(w[0], 0, 1)), w[2]);
        Tensor gh = add(matmul(h, transpose(w[1], 0, 1)), w[3]);
        if (m.mode == nn::RNNMode::LSTM) {
          auto g = chunk(add(gi, gh), 4, 1);
          c = add(mul(sigmoid(g[1]), c), mul(sigmoid(g[0]), tanh(g[2])));
          h = mul(sigmoid(g[3]), tanh(c));
        } else if (m.mode == nn::RNNMode::GRU) {
          auto a = chunk(gi, 3, 1), b = chunk(gh, 3, 1);
          Tensor r = sigmoid(add(a[0], b[0])), z = sigmoid(add(a[1], b[1]));
          Tensor n = tanh(add(a[2], mul(r, b[2])));
          h = add(mul(rsub(z, Scalar(1.0)), n), mul(z, h));
        } else {
          Tensor pre = add(gi, gh);
          h = m.mode == nn::RNNMode::RNN_TANH ? tanh(pre) : relu(pre);
        }
        out[s] = h;
      }
      outs.push_back(stack(out, 0));
      hs.push_back(h);
      if (c.defined()) cs.push_back(c);
    }
    x = cat(outs, 2);
  }
  return {x, stack(hs, 0), cs.empty() ? Tensor() : stack(cs, 0)};
}

void expect_rnn_params(const nn::RNNBase& m, int64_t gates, int64_t in, int64_t hidden) {
  std::vector<std::pair<std::string, Shape>> expected;
  const int64_t D = m.bidirectional ? 2 : 1;
  for (int64_t l = 0; l < m.num_layers; ++l)
    for (int64_t d = 0; d < D; ++d) {
      const std::string sfx = "_l" + std::to_string(l) + (d ? "_reverse" : "");
      const int64_t layer_in = l == 0 ? in : hidden * D;
      expected.push_back({"weight_ih" + sfx, {gates * hidden, layer_in}});
      expected.push_back({"weight_hh" + sfx, {gates * hidden, hidden}});
      if (m.bias) {
        expected.push_back({"bias_ih" + sfx, {gates * hidden}});
        expected.push_back({"bias_hh" + sfx, {gates * hidden}});
      }
    }
  EXPECT_EQ(names_and_shapes(m.state_dict()), expected);
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden));
  double lo = 1, hi = -1;
  for (const auto& p : m.parameters())
    for (double v : values(p)) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_GE(lo, -bound);
  EXPECT_LE(hi, bound);
  EXPECT_LT(lo, -0.8 * bound);  // the whole range is used, not a constant
  EXPECT_GT(hi, 0.8 * bound);
}

}  // namespace

TEST(NnLayersCpp, RnnParamNamesShapesAndInit) {
  manual_seed(10);
  nn::LSTM lstm(3, 5, 2, true, false, 0.0, /*bidirectional=*/true);
  expect_rnn_params(lstm, 4, 3, 5);
  nn::GRU gru(4, 6, 1);
  expect_rnn_params(gru, 3, 4, 6);
  nn::RNN rnn(2, 3, 3, "relu", /*bias=*/false);
  expect_rnn_params(rnn, 1, 2, 3);
}

TEST(NnLayersCpp, LstmForwardMatchesOpsReference) {
  manual_seed(11);
  nn::LSTM lstm(3, 4, 2, true, /*batch_first=*/true, 0.0, /*bidirectional=*/true, DType::Float64);
  Tensor x = randn({2, 5, 3}, DType::Float64);  // [B, T, I]
  Tensor h0 = randn({4, 2, 4}, DType::Float64), c0 = randn({4, 2, 4}, DType::Float64);
  auto [out, h_n, c_n] = lstm.forward_with_state(x, h0, c0);
  ASSERT_EQ(out.sizes(), (Shape{2, 5, 8}));
  ASSERT_EQ(h_n.sizes(), (Shape{4, 2, 4}));
  auto ref = reference_rnn(lstm, transpose(x, 0, 1), h0, c0);
  EXPECT_LT(max_abs_diff(out, transpose(ref.output, 0, 1)), 1e-12);
  EXPECT_LT(max_abs_diff(h_n, ref.h_n), 1e-12);
  EXPECT_LT(max_abs_diff(c_n, ref.c_n), 1e-12);
  // Zero initial states by default; forward() returns the output only.
  Tensor zero_state = zeros({4, 2, 4}, DType::Float64);
  auto ref0 = reference_rnn(lstm, transpose(x, 0, 1), zero_state, zero_state);
  EXPECT_LT(max_abs_diff(lstm(x), transpose(ref0.output, 0, 1)), 1e-12);
  // Gradients reach every parameter.
  sum(mul(out, out)).backward();
  for (const auto& p : lstm.parameters()) EXPECT_TRUE(p.grad().defined());
}

TEST(NnLayersCpp, GruAndRnnForwardMatchOpsReference) {
  manual_seed(12);
  nn::GRU gru(3, 4, 2, true, false, 0.0, true, DType::Float64);
  Tensor x = randn({6, 2, 3}, DType::Float64), h0 = randn({4, 2, 4}, DType::Float64);
  auto res = gru.forward_with_state(x, h0);
  EXPECT_FALSE(res.c_n.defined());
  auto ref = reference_rnn(gru, x, h0, Tensor());
  EXPECT_LT(max_abs_diff(res.output, ref.output), 1e-12);
  EXPECT_LT(max_abs_diff(res.h_n, ref.h_n), 1e-12);
  for (const char* nl : {"tanh", "relu"}) {
    nn::RNN rnn(3, 4, 2, nl, true, false, 0.0, false, DType::Float64);
    Tensor h = randn({2, 2, 4}, DType::Float64);
    auto r = rnn.forward_with_state(x, h);
    auto e = reference_rnn(rnn, x, h, Tensor());
    EXPECT_LT(max_abs_diff(r.output, e.output), 1e-12) << nl;
    EXPECT_LT(max_abs_diff(r.h_n, e.h_n), 1e-12) << nl;
  }
  // Unbatched input [T, I] equals a batch of one.
  Tensor x1 = randn({4, 3}, DType::Float64), h1 = randn({4, 4}, DType::Float64);
  auto u = gru.forward_with_state(x1, h1);
  auto b = gru.forward_with_state(unsqueeze(x1, 1), unsqueeze(h1, 1));
  EXPECT_EQ(u.output.sizes(), (Shape{4, 8}));
  EXPECT_LT(max_abs_diff(u.output, squeeze(b.output, 1)), 1e-12);
  EXPECT_LT(max_abs_diff(u.h_n, squeeze(b.h_n, 1)), 1e-12);
}

TEST(NnLayersCpp, RnnLengthsAndDropoutBetweenLayers) {
  manual_seed(13);
  nn::LSTM lstm(2, 3, 1, true, true, 0.0, false, DType::Float64);
  Tensor x = randn({2, 4, 2}, DType::Float64);
  auto full = lstm.forward_with_state(x);
  auto packed = lstm.forward_with_state(x, Tensor(), Tensor(), {4, 2});
  // Entry 0 runs all 4 steps; entry 1 stops after 2: its tail is zero and its state is step 2's.
  EXPECT_LT(max_abs_diff(select(packed.output, 0, 0), select(full.output, 0, 0)), 1e-12);
  auto short_run = lstm.forward_with_state(unsqueeze(narrow(select(x, 0, 1), 0, 0, 2), 0));
  EXPECT_LT(max_abs_diff(select(select(packed.h_n, 0, 0), 0, 1), select(select(short_run.h_n, 0, 0), 0, 0)), 1e-12);
  for (double v : values(narrow(select(packed.output, 0, 1), 0, 2, 2))) EXPECT_EQ(v, 0.0);
  // Dropout acts between layers while training only.
  nn::GRU gru(2, 3, 2, true, false, 0.5, false, DType::Float64);
  Tensor xs = randn({3, 2, 2}, DType::Float64);
  gru.eval();
  Tensor a = gru(xs), b = gru(xs);
  EXPECT_EQ(max_abs_diff(a, b), 0.0);
  gru.train();
  EXPECT_GT(max_abs_diff(gru(xs), a), 1e-6);
}

TEST(NnLayersCpp, RnnBadInputs) {
  nn::LSTM lstm(3, 4);
  EXPECT_LAYER_ERROR(ShapeError, "LSTM", lstm(randn({5, 2, 2})));
  EXPECT_LAYER_ERROR(ShapeError, "LSTM", lstm(randn({3})));
  EXPECT_LAYER_ERROR(ShapeError, "LSTM", lstm.forward_with_state(randn({5, 2, 3}), randn({1, 3, 4}), randn({1, 3, 4})));
  EXPECT_LAYER_ERROR(ValueError, "LSTM", lstm.forward_with_state(randn({5, 2, 3}), randn({1, 2, 4})));
  EXPECT_LAYER_ERROR(DTypeError, "LSTM", lstm(randn({5, 2, 3}, DType::Float64)));
  EXPECT_LAYER_ERROR(ValueError, "LSTM", lstm.forward_with_state(randn({5, 2, 3}), Tensor(), Tensor(), {5, 6}));
  nn::GRU gru(3, 4);
  EXPECT_LAYER_ERROR(ValueError, "GRU", gru.forward_with_state(randn({5, 2, 3}), randn({1, 2, 4}), randn({1, 2, 4})));
  EXPECT_LAYER_ERROR(IndexError, "GRU", gru.layer_weights(1, 0));
  EXPECT_LAYER_ERROR(ValueError, "RNN", nn::RNN(3, 4, 1, "gelu"));
  EXPECT_LAYER_ERROR(ValueError, "GRU", nn::GRU(3, 0));
  EXPECT_LAYER_ERROR(ValueError, "LSTM", nn::LSTM(3, 4, 2, true, false, 1.5));
}

// ---- MultiheadAttention -------------------------------------------------------------------
TEST(NnLayersCpp, MultiheadAttentionParamsAndInit) {
  manual_seed(14);
  nn::MultiheadAttention mha(8, 2);
  EXPECT_EQ(names_and_shapes(mha.state_dict()),
            (std::vector<std::pair<std::string, Shape>>{{"in_proj_weight", {24, 8}},
                                                        {"in_proj_bias", {24}},
                                                        {"out_proj.weight", {8, 8}},
                                                        {"out_proj.bias", {8}}}));
  const double xavier = std::sqrt(6.0 / 32), kaiming = 1 / std::sqrt(8.0);
  double lo = 1, hi = -1;
  for (double v : values(mha.in_proj_weight)) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_GE(lo, -xavier);
  EXPECT_LE(hi, xavier);
  EXPECT_GT(hi, kaiming);  // xavier's bound (0.43), wider than the Linear default (0.35)
  for (double v : values(mha.in_proj_bias)) EXPECT_EQ(v, 0.0);
  for (double v : values(mha.out_proj->bias)) EXPECT_EQ(v, 0.0);
  for (double v : values(mha.out_proj->weight)) EXPECT_LE(std::abs(v), kaiming);
  nn::MultiheadAttention no_bias(8, 4, 0.0, false);
  EXPECT_EQ(no_bias.state_dict().size(), 2u);
}

TEST(NnLayersCpp, MultiheadAttentionMatchesOpsReference) {
  manual_seed(15);
  const int64_t E = 6, H = 3, d = 2, L = 4, S = 5, N = 2;
  nn::MultiheadAttention mha(E, H, 0.0, true, /*batch_first=*/false, DType::Float64);
  {
    NoGradGuard g;
    normal_(mha.in_proj_bias);  // non-zero biases so they are exercised
    normal_(mha.out_proj->bias);
  }
  Tensor q = randn({L, N, E}, DType::Float64), k = randn({S, N, E}, DType::Float64),
         v = randn({S, N, E}, DType::Float64);
  Tensor kpm = ne(from_vector<int64_t>({0, 0, 0, 1, 1, 0, 0, 0, 0, 0}, {N, S}), Scalar(int64_t{0}));
  Tensor am = mul(randn({L, S}, DType::Float64), Scalar(0.5));
  auto [out, weights] = mha.forward(q, k, v, kpm, am);
  ASSERT_EQ(out.sizes(), (Shape{L, N, E}));
  ASSERT_EQ(weights.sizes(), (Shape{N, L, S}));
  // Reference: per batch entry and head, softmax(q_h k_h^T / sqrt(d) + mask) v_h.
  auto w = chunk(mha.in_proj_weight, 3, 0);
  auto b = chunk(mha.in_proj_bias, 3, 0);
  auto kpm_v = values(to(kpm, DType::Float64));
  std::vector<Tensor> outs, avg;
  for (int64_t n = 0; n < N; ++n) {
    Tensor qn = add(matmul(select(q, 1, n), transpose(w[0], 0, 1)), b[0]);
    Tensor kn = add(matmul(select(k, 1, n), transpose(w[1], 0, 1)), b[1]);
    Tensor vn = add(matmul(select(v, 1, n), transpose(w[2], 0, 1)), b[2]);
    std::vector<double> pad(L * S);
    for (int64_t i = 0; i < L * S; ++i) pad[i] = kpm_v[n * S + i % S] > 0 ? -1e300 : 0.0;
    Tensor mask = add(am, from_vector(pad, {L, S}));
    std::vector<Tensor> heads;
    Tensor wsum = zeros({L, S}, DType::Float64);
    for (int64_t h = 0; h < H; ++h) {
      Tensor qh = narrow(qn, 1, h * d, d), kh = narrow(kn, 1, h * d, d), vh = narrow(vn, 1, h * d, d);
      Tensor p = softmax(add(mul(matmul(qh, transpose(kh, 0, 1)), Scalar(1 / std::sqrt(2.0))), mask), -1);
      heads.push_back(matmul(p, vh));
      wsum = add(wsum, p);
    }
    outs.push_back(add(matmul(cat(heads, 1), transpose(mha.out_proj->weight, 0, 1)), mha.out_proj->bias));
    avg.push_back(mul(wsum, Scalar(1.0 / H)));
  }
  EXPECT_LT(max_abs_diff(out, stack(outs, 1)), 1e-12);
  EXPECT_LT(max_abs_diff(weights, stack(avg, 0)), 1e-12);
  // Masked keys get zero weight.
  EXPECT_EQ(values(weights)[3], 0.0);
  // need_weights = false gives the same output and no weights; per-head weights on request.
  auto [out2, none] = mha.forward(q, k, v, kpm, am, /*need_weights=*/false);
  EXPECT_FALSE(none.defined());
  EXPECT_LT(max_abs_diff(out2, out), 1e-12);
  auto per_head = mha.forward(q, k, v, kpm, am, true, /*average_attn_weights=*/false).second;
  EXPECT_EQ(per_head.sizes(), (Shape{N, H, L, S}));
  // batch_first and unbatched layouts agree with the sequence-first one.
  nn::MultiheadAttention bf(E, H, 0.0, true, true, DType::Float64);
  bf.load_state_dict(mha.state_dict());
  auto out_bf = bf.forward(transpose(q, 0, 1), transpose(k, 0, 1), transpose(v, 0, 1), kpm, am).first;
  EXPECT_LT(max_abs_diff(transpose(out_bf, 0, 1), out), 1e-12);
  auto [u_out, u_w] = mha.forward(select(q, 1, 0), select(k, 1, 0), select(v, 1, 0), select(kpm, 0, 0), am);
  EXPECT_LT(max_abs_diff(u_out, select(out, 1, 0)), 1e-12);
  EXPECT_LT(max_abs_diff(u_w, select(weights, 0, 0)), 1e-12);
}

TEST(NnLayersCpp, MultiheadAttentionCausalAndBadInputs) {
  manual_seed(16);
  nn::MultiheadAttention mha(4, 2, 0.0, true, true);
  Tensor x = randn({1, 3, 4});
  auto w = mha.forward(x, x, x, Tensor(), Tensor(), true, true, /*is_causal=*/true).second;
  auto wv = values(w);
  EXPECT_EQ(wv[1], 0.0);  // row 0 sees only key 0
  EXPECT_EQ(wv[2], 0.0);
  EXPECT_NEAR(wv[0], 1.0, 1e-6);
  EXPECT_EQ(mha(x).sizes(), (Shape{1, 3, 4}));
  EXPECT_LAYER_ERROR(ValueError, "MultiheadAttention", nn::MultiheadAttention(6, 4));
  EXPECT_LAYER_ERROR(ShapeError, "MultiheadAttention", mha.forward(x, randn({1, 3, 5}), randn({1, 3, 5})));
  EXPECT_LAYER_ERROR(ShapeError, "MultiheadAttention", mha.forward(x, randn({2, 3, 4}), randn({2, 3, 4})));
  EXPECT_LAYER_ERROR(ShapeError, "MultiheadAttention", mha.forward(randn({3, 4}), x, x));
  EXPECT_LAYER_ERROR(ShapeError, "MultiheadAttention", mha.forward(x, x, x, zeros({1, 4}, DType::Bool)));
  EXPECT_LAYER_ERROR(ShapeError, "MultiheadAttention", mha.forward(x, x, x, Tensor(), zeros({3, 2}, DType::Bool)));
  EXPECT_LAYER_ERROR(DTypeError, "MultiheadAttention", mha.forward(x, x, x, zeros({1, 3}, DType::Int64)));
  EXPECT_LAYER_ERROR(DTypeError, "MultiheadAttention", mha(randn({1, 3, 4}, DType::Float64)));
}
