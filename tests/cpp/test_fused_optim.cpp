// Multi-tensor optimizer ops (core/ops/fused_optim.h) on the CPU: the C++ SGD / Adam / AdamW
// take the fused path by default and give the same bits as their per-tensor loop (group
// option "foreach" = 0); the fused norm against a double reference; bad lists name the op.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/bigmodel.h"
#include "core/ops/fused_optim.h"

using namespace bigmodel;
using namespace bigmodel::optim;

namespace {

const std::vector<Shape> kShapes = {{1}, {7}, {33, 5}, {1000}, {3, 1023}};

std::vector<Tensor> make_params(DType dt, uint64_t seed) {
  manual_seed(seed);
  std::vector<Tensor> ps;
  for (const Shape& s : kShapes) {
    Tensor p = randn(s, dt);
    p.set_requires_grad(true);
    ps.push_back(p);
  }
  return ps;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.sizes() == b.sizes() &&
         std::memcmp(contiguous(a).data_ptr(), contiguous(b).data_ptr(), a.nbytes()) == 0;
}

// Runs `steps` steps of two optimizers (fused default, per-tensor loop) on equal params and
// gradients; every parameter and state tensor must match bit for bit.
template <class Make>
void expect_fused_equals_loop(DType dt, Make make, int steps = 4) {
  std::vector<Tensor> a = make_params(dt, 11), b = make_params(dt, 11);
  auto fused = make(std::vector<ParamGroup>{ParamGroup(a)});
  auto loop = make(std::vector<ParamGroup>{ParamGroup(b, {{"foreach", 0.0}})});
  manual_seed(5);
  for (int s = 0; s < steps; ++s) {
    for (size_t i = 0; i < a.size(); ++i) {
      if (s == 1 && i == 2) {  // a parameter without a gradient this step
        a[i].set_grad(Tensor());
        b[i].set_grad(Tensor());
        continue;
      }
      Tensor g = randn(a[i].sizes(), dt);
      a[i].set_grad(g);
      b[i].set_grad(clone(g));
    }
    fused->step();
    loop->step();
  }
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(same_bytes(a[i].detach(), b[i].detach())) << "param " << i;
    const ParamState& sa = fused->state(a[i]);
    const ParamState& sb = loop->state(b[i]);
    ASSERT_EQ(sa.size(), sb.size()) << "param " << i;
    for (const auto& [name, t] : sa) EXPECT_TRUE(same_bytes(t, sb.at(name))) << "state " << name << " of param " << i;
  }
}

}  // namespace

TEST(FusedOptim, SGDMatchesPerTensorLoopBitwise) {
  for (DType dt : {DType::Float32, DType::Float64}) {
    expect_fused_equals_loop(dt, [](std::vector<ParamGroup> g) { return std::make_unique<SGD>(g, SGDOptions{0.1}); });
    expect_fused_equals_loop(dt, [](std::vector<ParamGroup> g) {
      return std::make_unique<SGD>(g, SGDOptions{0.05, 0.9, 0.0, 0.01, true, false});
    });
    expect_fused_equals_loop(dt, [](std::vector<ParamGroup> g) {
      return std::make_unique<SGD>(g, SGDOptions{0.05, 0.8, 0.3, 0.02, false, true});
    });
  }
}

TEST(FusedOptim, AdamAndAdamWMatchPerTensorLoopBitwise) {
  for (DType dt : {DType::Float32, DType::Float64}) {
    expect_fused_equals_loop(dt, [](std::vector<ParamGroup> g) { return std::make_unique<Adam>(g, AdamOptions{1e-2}); });
    expect_fused_equals_loop(dt, [](std::vector<ParamGroup> g) {
      return std::make_unique<Adam>(g, AdamOptions{3e-3, 0.8, 0.95, 1e-6, 0.05, true, true});
    });
    expect_fused_equals_loop(dt, [](std::vector<ParamGroup> g) {
      return std::make_unique<AdamW>(g, AdamWOptions{1e-2, 0.9, 0.999, 1e-8, 0.1, true, false});
    });
  }
}

TEST(FusedOptim, HalfParamsTakeTheLoop) {
  manual_seed(2);
  Tensor p = to(randn({9}), DType::BFloat16);
  p.set_requires_grad(true);
  p.set_grad(to(randn({9}), DType::BFloat16));
  EXPECT_FALSE(fused_blocker({p}).empty());
  Tensor before = clone(p.detach());
  Adam opt(std::vector<Tensor>{p}, AdamOptions{0.1});
  opt.step();  // the per-tensor loop: no DTypeError
  EXPECT_FALSE(same_bytes(p.detach(), before));
  EXPECT_EQ(opt.state(p).at("step").item().to_double(), 1.0);
}

TEST(FusedOptim, NormMatchesDoubleReference) {
  manual_seed(7);
  std::vector<Tensor> ts;
  for (int64_t n : {1, 7, 1000, 40000}) ts.push_back(randn({n}, DType::Float32));
  ts.push_back(transpose(randn({33, 31}, DType::Float32), 0, 1));  // non-contiguous
  for (double p : {2.0, 1.0, 3.0, static_cast<double>(INFINITY)}) {
    double acc = 0.0;
    for (const Tensor& t : ts) {
      Tensor c = contiguous(t);
      const float* x = c.data<float>();
      for (int64_t i = 0; i < c.numel(); ++i) {
        const double v = std::fabs(static_cast<double>(x[i]));
        acc = std::isinf(p) ? std::max(acc, v) : acc + std::pow(v, p);
      }
    }
    const double want = std::isinf(p) ? acc : std::pow(acc, 1.0 / p);
    Tensor got = fused_norm(ts, p);
    EXPECT_EQ(got.dtype(), DType::Float32);
    EXPECT_EQ(got.dim(), 0);
    EXPECT_NEAR(got.item().to_double(), want, want * 1e-6) << "p=" << p;
  }
}

TEST(FusedOptim, MulScalesEveryTensor) {
  std::vector<Tensor> ts = {full({5}, 2.0, DType::Float32), full({3, 3}, -4.0, DType::Float32)};
  fused_mul_(ts, full({}, 0.25, DType::Float32));
  EXPECT_EQ(contiguous(ts[0]).data<float>()[4], 0.5f);
  EXPECT_EQ(contiguous(ts[1]).data<float>()[8], -1.0f);
}

TEST(FusedOptim, BadInputsNameTheOp) {
  std::vector<Tensor> p = {ones({3}), ones({4})};
  std::vector<Tensor> bufs;
  auto expect_msg = [](auto fn, const char* what) {
    try {
      fn();
      ADD_FAILURE() << "no exception for " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_msg([&] { fused_sgd_(p, {ones({3})}, bufs, FusedSGDOptions{}); }, "[fused_sgd_] expected one grads per parameter");
  expect_msg([&] { fused_sgd_(p, {ones({3}), ones({4}, DType::Float64)}, bufs, FusedSGDOptions{}); },
             "[fused_sgd_] expected every tensor of dtype float32");
  expect_msg([&] { fused_sgd_({ones({3}, DType::Float16)}, {ones({3}, DType::Float16)}, bufs, FusedSGDOptions{}); },
             "[fused_sgd_] supports float32 and float64 parameters, got float16");
  expect_msg([&] { fused_adam_(p, p, p, {ones({3}), ones({5})}, {}, {zeros({}), zeros({})}, FusedAdamOptions{}); },
             "[fused_adam_] exp_avg_sqs[1] has shape [5] but params[1] has shape [4]");
  expect_msg([&] { fused_adam_(p, p, p, p, {}, {zeros({})}, FusedAdamOptions{}); },
             "[fused_adam_] expected one state_steps entry per parameter");
  expect_msg([&] { fused_norm({}, 2.0); }, "[fused_norm] expects at least one tensor");
  expect_msg([&] { fused_norm({ones({2})}, -1.0); }, "[fused_norm] norm_type must be positive or inf");
  expect_msg([&] { fused_mul_({ones({2})}, ones({2})); }, "[fused_mul_] expects a one-element scale");
}
