// Multi-tensor optimizer ops (core/ops/fused_optim.h) on the CPU: the C++ SGD / Adam / AdamW
// take the fused path by default and give the same bits as their per-tensor loop (group
// option "foreach" = 0); the fused norm against a double reference; bad lists name the op.
#include <gtest/gtest.h>

#include <algorithm>
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

TEST(FusedOptim, HalfParamsFusedEqualsLoopWithFloat32StateAndMasters) {
  for (DType dt : {DType::BFloat16, DType::Float16}) {
    for (bool master : {false, true}) {
      expect_fused_equals_loop(dt, [master](std::vector<ParamGroup> g) {
        return std::make_unique<SGD>(g, SGDOptions{0.05, 0.9, 0.0, 0.01, true, false, master});
      });
      expect_fused_equals_loop(dt, [master](std::vector<ParamGroup> g) {
        AdamWOptions o{1e-2, 0.8, 0.95, 1e-6, 0.1, true, false, master};
        return std::make_unique<AdamW>(g, o);
      });
      expect_fused_equals_loop(dt, [master](std::vector<ParamGroup> g) {
        AdamOptions o{3e-3, 0.9, 0.999, 1e-8, 0.05, false, true, master};
        return std::make_unique<Adam>(g, o);
      });
    }
  }
  manual_seed(2);
  Tensor p = to(randn({9}), DType::BFloat16);
  p.set_requires_grad(true);
  p.set_grad(to(randn({9}), DType::BFloat16));
  AdamOptions o{0.1};
  o.master_weights = true;
  Adam opt(std::vector<Tensor>{p}, o);
  opt.step();
  EXPECT_EQ(opt.state(p).at("exp_avg").dtype(), DType::Float32);
  const Tensor& m = opt.state(p).at("master_param");
  EXPECT_EQ(m.dtype(), DType::Float32);
  EXPECT_TRUE(same_bytes(p.detach(), to(m, DType::BFloat16)));
}

TEST(FusedOptim, MasterWeightsStateDictAndOlderDicts) {
  auto make = [] {
    manual_seed(4);
    std::vector<Tensor> ps;
    for (const Shape& s : kShapes) {
      Tensor p = to(randn(s), DType::BFloat16);
      p.set_requires_grad(true);
      ps.push_back(p);
    }
    return ps;
  };
  auto grads = [](std::vector<Tensor>& ps, uint64_t seed) {
    manual_seed(seed);
    for (Tensor& p : ps) p.set_grad(to(randn(p.sizes()), DType::BFloat16));
  };
  AdamWOptions o{1e-2};
  o.master_weights = true;
  std::vector<Tensor> ref = make(), a = make();
  AdamW r(ref, o), first(a, o);
  for (uint64_t s = 0; s < 4; ++s) {
    grads(ref, 100 + s);
    r.step();
  }
  for (uint64_t s = 0; s < 2; ++s) {
    grads(a, 100 + s);
    first.step();
  }
  OptimizerStateDict sd = first.state_dict();
  EXPECT_TRUE(std::any_of(sd.tensors.begin(), sd.tensors.end(),
                          [](const auto& kv) { return kv.first == "state.0.master_param"; }));
  AdamW second(a, o);  // a restart: new optimizer, the same (bfloat16) parameters
  second.load_state_dict(sd);
  for (uint64_t s = 2; s < 4; ++s) {
    grads(a, 100 + s);
    second.step();
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(same_bytes(a[i].detach(), ref[i].detach())) << "param " << i;
  // An older dict: no master copies, bfloat16 state, no master_weights option.
  for (auto it = sd.tensors.begin(); it != sd.tensors.end();) {
    if (it->first.find("master_param") != std::string::npos) {
      it = sd.tensors.erase(it);
    } else {
      if (it->first.find("exp_avg") != std::string::npos) it->second = to(it->second, DType::BFloat16);
      ++it;
    }
  }
  sd.metadata.erase("param_groups.0.master_weights");
  AdamW third(a, o);
  third.load_state_dict(sd);
  EXPECT_EQ(third.state(a[0]).at("exp_avg").dtype(), DType::Float32);
  grads(a, 7);
  third.step();
  EXPECT_TRUE(same_bytes(a[1].detach(), to(third.state(a[1]).at("master_param"), DType::BFloat16)));
  // master_weights on a float32 parameter: a clear error at the step
  Tensor f = ones({3});
  f.set_requires_grad(true);
  f.set_grad(ones({3}));
  AdamW bad(std::vector<Tensor>{f}, o);
  try {
    bad.step();
    ADD_FAILURE() << "no error for master_weights on float32";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("[AdamW] master_weights = 1 keeps float32 master copies"), std::string::npos)
        << e.what();
  }
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
  expect_msg([&] { fused_sgd_({ones({3}, DType::Int32)}, {ones({3}, DType::Int32)}, bufs, FusedSGDOptions{}); },
             "[fused_sgd_] supports float32, float64, float16 and bfloat16 parameters, got int32");
  expect_msg([&] { fused_adam_(p, p, p, {ones({3}), ones({5})}, {}, {zeros({}), zeros({})}, FusedAdamOptions{}); },
             "[fused_adam_] exp_avg_sqs[1] has shape [5] but params[1] has shape [4]");
  expect_msg([&] { fused_adam_(p, p, p, p, {}, {zeros({})}, FusedAdamOptions{}); },
             "[fused_adam_] expected one state_steps entry per parameter");
  expect_msg([&] { fused_norm({}, 2.0); }, "[fused_norm] expects at least one tensor");
  expect_msg([&] { fused_norm({ones({2})}, -1.0); }, "[fused_norm] norm_type must be positive or inf");
  expect_msg([&] { fused_mul_({ones({2})}, ones({2})); }, "[fused_mul_] expects a one-element scale");
}

// ------------------------------------------------------------------ mixed precision
namespace {

// float32 values with every kind of bit pattern: normals of all exponents, float16/bfloat16
// subnormals and round-to-nearest ties, values that overflow to inf, signed zeros, inf, NaN.
Tensor edge_values(int64_t n) {
  Tensor t = empty({n}, DType::Float32);
  float* v = t.data<float>();
  uint32_t x = 12345;
  for (int64_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;  // LCG: every exponent and mantissa shows up
    uint32_t bits = x;
    if (i % 7 == 0) bits = (bits & 0x80000000u) | 0x33000000u | (bits & 0x1fffu);  // near float16 subnormals
    if (i % 11 == 0) bits = (bits & 0xffff0000u) | 0x8000u;                      // bfloat16 ties
    if (i % 13 == 0) bits = (bits & 0xffffe000u) | 0x1000u;                      // float16 ties
    if ((bits & 0x7f800000u) == 0x7f800000u) bits &= 0xbfffffffu;                 // no stray inf/NaN
    std::memcpy(&v[i], &bits, 4);
  }
  const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 65520.0f, -65519.0f, 1e-8f, 3.0e38f};
  for (int64_t i = 0; i < 9 && i < n; ++i) v[i * 3] = specials[i];
  return t;
}

}  // namespace

TEST(FusedOptim, HalfParamsRoundExactlyAsTheScalarConversions) {
  // lr = 0 and zero gradients: the step leaves every master value as it is (x + 0 * -0), so the
  // parameter must become exactly the scalar rounding of its master copy (the AVX2/F16C
  // conversions of the CPU kernel against Half/BFloat16's own).
  for (DType dt : {DType::BFloat16, DType::Float16}) {
    const int64_t n = 4099;  // several 512-element sub-blocks and an odd tail
    Tensor master = edge_values(n), keep = clone(master);
    std::vector<Tensor> p = {zeros({n}, dt)}, g = {zeros({n}, dt)}, bufs;
    fused_sgd_(p, g, bufs, FusedSGDOptions{0.0}, {master});
    EXPECT_TRUE(same_bytes(master, keep));
    Tensor want = to(keep, dt);  // the scalar conversion
    EXPECT_TRUE(same_bytes(p[0], want)) << dtype_name(dt);
    // and widening back: the plain half path (no master) reads p exactly
    Tensor before = clone(p[0]);
    fused_sgd_(p, g, bufs, FusedSGDOptions{0.0});
    EXPECT_TRUE(same_bytes(p[0], before)) << dtype_name(dt);
  }
}

TEST(FusedOptim, MasterWeightsFollowTheFloat32StepExactly) {
  // bfloat16-exact parameters and gradients: the float32 master copies of a bfloat16 Adam run
  // are the float32 run's parameters bit for bit, and the bfloat16 parameters their rounding.
  manual_seed(21);
  std::vector<Tensor> p32, p16, m16, g32, g16, s32[2], s16[2], st32, st16;
  for (const Shape& s : kShapes) {
    Tensor a = to(to(randn(s), DType::BFloat16), DType::Float32);
    p32.push_back(clone(a));
    p16.push_back(to(a, DType::BFloat16));
    m16.push_back(clone(a));
    for (int k = 0; k < 2; ++k) {
      s32[k].push_back(zeros(s));
      s16[k].push_back(zeros(s));
    }
    st32.push_back(zeros({}));
    st16.push_back(zeros({}));
  }
  const FusedAdamOptions o{1e-2, 0.9, 0.99, 1e-8, 0.1, false, false, true};
  for (int step = 0; step < 3; ++step) {
    g32.clear();
    g16.clear();
    for (const Shape& s : kShapes) {
      Tensor g = to(randn(s), DType::BFloat16);
      g16.push_back(g);
      g32.push_back(to(g, DType::Float32));
    }
    fused_adam_(p32, g32, s32[0], s32[1], {}, st32, o);
    fused_adam_(p16, g16, s16[0], s16[1], {}, st16, o, m16);
  }
  for (size_t i = 0; i < kShapes.size(); ++i) {
    EXPECT_TRUE(same_bytes(m16[i], p32[i])) << "master " << i;
    EXPECT_TRUE(same_bytes(p16[i], to(p32[i], DType::BFloat16))) << "param " << i;
    EXPECT_TRUE(same_bytes(s16[1][i], s32[1][i])) << "exp_avg_sq " << i;
  }
}

TEST(FusedOptim, MasterAndUnscaleBadInputsNameTheOp) {
  std::vector<Tensor> h = {ones({3}, DType::BFloat16)}, bufs;
  auto msg = [](auto fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "no exception";
  };
  EXPECT_NE(msg([&] { fused_sgd_({ones({3})}, {ones({3})}, bufs, FusedSGDOptions{}, {ones({3})}); })
                .find("[fused_sgd_] master_params are float32 copies of float16/bfloat16 parameters"),
            std::string::npos);
  EXPECT_NE(msg([&] { fused_sgd_(h, h, bufs, FusedSGDOptions{}, {ones({3}, DType::Float64)}); })
                .find("got master_params[0] of dtype float64"),
            std::string::npos);
  EXPECT_NE(msg([&] { fused_unscale_({ones({3})}, zeros({2}), ones({1})); })
                .find("[fused_unscale_] expects a one-element found_inf"),
            std::string::npos);
  Tensor found = zeros({1});
  std::vector<Tensor> g = {full({5}, Scalar(4.0), DType::Float16), full({3}, Scalar(2.0), DType::Float16)};
  fused_unscale_(g, found, full({1}, Scalar(0.5)));
  EXPECT_EQ(found.item().to_double(), 0.0);
  EXPECT_EQ(g[0].data<Half>()[4], Half(2.0f));
  g[1].data<Half>()[2] = Half(INFINITY);
  fused_unscale_(g, found, full({1}, Scalar(1.0)));
  EXPECT_EQ(found.item().to_double(), 1.0);
}
