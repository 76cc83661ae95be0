// C++ optimizers and LR schedules (optim/): every update rule and schedule replayed against
// tests/fixtures/optim_reference.json (written by the Python optimizers, see
// tests/fixtures/make_optim_reference.py), state dict round trips through safetensors, and
// option checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/bigmodel.h"

using namespace bigmodel;
using namespace bigmodel::optim;

namespace {

// ---- a minimal JSON reader for the fixture (numbers, strings, arrays, objects, null) ----
struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  double number = 0;
  bool boolean = false;
  std::string str;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;

  const Json& operator[](const std::string& key) const {
    for (const auto& [k, v] : members)
      if (k == key) return v;
    throw std::runtime_error("fixture: no key " + key);
  }
  const Json& operator[](size_t i) const { return items.at(i); }
  bool has(const std::string& key) const {
    for (const auto& m : members)
      if (m.first == key) return true;
    return false;
  }
};

struct JsonReader {
  const std::string& s;
  size_t at = 0;
  void ws() {
    while (at < s.size() && std::isspace(static_cast<unsigned char>(s[at]))) ++at;
  }
  void expect(char c) {
    ws();
    if (at >= s.size() || s[at] != c) throw std::runtime_error(std::string("fixture: expected ") + c);
    ++at;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (s.at(at) != '"') {
      if (s[at] == '\\') ++at;  // the fixture has no escapes beyond \" and \\ .
      out += s[at++];
    }
    ++at;
    return out;
  }
  Json value() {
    ws();
    Json v;
    const char c = s.at(at);
    if (c == '{') {
      v.kind = Json::Object;
      ++at;
      ws();
      if (s[at] == '}') return ++at, v;
      for (;;) {
        std::string key = string();
        expect(':');
        v.members.emplace_back(key, value());
        ws();
        if (s[at++] == '}') return v;
      }
    }
    if (c == '[') {
      v.kind = Json::Array;
      ++at;
      ws();
      if (s[at] == ']') return ++at, v;
      for (;;) {
        v.items.push_back(value());
        ws();
        if (s[at++] == ']') return v;
      }
    }
    if (c == '"') {
      v.kind = Json::String;
      v.str = string();
      return v;
    }
    if (s.compare(at, 4, "null") == 0) return at += 4, v;
    if (s.compare(at, 4, "true") == 0) {
      v.kind = Json::Bool;
      v.boolean = true;
      return at += 4, v;
    }
    if (s.compare(at, 5, "false") == 0) {
      v.kind = Json::Bool;
      return at += 5, v;
    }
    size_t used = 0;
    v.kind = Json::Number;
    v.number = std::stod(s.substr(at, 40), &used);
    at += used;
    return v;
  }
};

const Json& fixture() {
  static const Json root = [] {
    std::string path = __FILE__;
    path = path.substr(0, path.rfind("/cpp/")) + "/fixtures/optim_reference.json";
    std::ifstream f(path);
    if (!f) throw std::runtime_error("cannot open " + path);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string text = ss.str();
    JsonReader r{text};
    return r.value();
  }();
  return root;
}

std::vector<double> numbers(const Json& j) {
  std::vector<double> out;
  for (const Json& x : j.items) out.push_back(x.number);
  return out;
}

std::vector<double> values(const Tensor& t) {
  Tensor c = contiguous(to(t.detach(), DType::Float64));
  const double* p = c.data<double>();
  return std::vector<double>(p, p + c.numel());
}

Tensor param(const std::vector<double>& v, const Shape& shape) {
  Tensor t = from_vector<double>(v, shape);
  t.set_requires_grad(true);
  return t;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, const std::string& where) {
  ASSERT_EQ(got.size(), want.size()) << where;
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-12 + 1e-10 * std::abs(want[i])) << where << " element " << i;
}

double opt_get(const Json& o, const char* key, double fallback) { return o.has(key) ? o[key].number : fallback; }

// The C++ optimizer for a fixture entry, built through its typed options struct; the second
// group overrides lr.
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, const Json& o, std::vector<ParamGroup> groups) {
  if (name == "SGD") {
    SGDOptions s;
    s.lr = opt_get(o, "lr", s.lr);
    s.momentum = opt_get(o, "momentum", s.momentum);
    s.dampening = opt_get(o, "dampening", s.dampening);
    s.weight_decay = opt_get(o, "weight_decay", s.weight_decay);
    s.nesterov = opt_get(o, "nesterov", 0) != 0;
    s.maximize = opt_get(o, "maximize", 0) != 0;
    return std::make_unique<SGD>(std::move(groups), s);
  }
  if (name == "Adam" || name == "AdamW") {
    AdamWOptions a;
    if (name == "Adam") a.weight_decay = 0.0;
    a.lr = opt_get(o, "lr", a.lr);
    a.beta1 = opt_get(o, "beta1", a.beta1);
    a.beta2 = opt_get(o, "beta2", a.beta2);
    a.eps = opt_get(o, "eps", a.eps);
    a.weight_decay = opt_get(o, "weight_decay", a.weight_decay);
    a.amsgrad = opt_get(o, "amsgrad", 0) != 0;
    a.maximize = opt_get(o, "maximize", 0) != 0;
    if (name == "AdamW") return std::make_unique<AdamW>(std::move(groups), a);
    return std::make_unique<Adam>(std::move(groups),
                                  AdamOptions{a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.amsgrad, a.maximize});
  }
  if (name == "RMSprop") {
    RMSpropOptions r;
    r.lr = opt_get(o, "lr", r.lr);
    r.alpha = opt_get(o, "alpha", r.alpha);
    r.eps = opt_get(o, "eps", r.eps);
    r.weight_decay = opt_get(o, "weight_decay", r.weight_decay);
    r.momentum = opt_get(o, "momentum", r.momentum);
    r.centered = opt_get(o, "centered", 0) != 0;
    r.maximize = opt_get(o, "maximize", 0) != 0;
    return std::make_unique<RMSprop>(std::move(groups), r);
  }
  if (name == "Adagrad") {
    AdagradOptions a;
    a.lr = opt_get(o, "lr", a.lr);
    a.lr_decay = opt_get(o, "lr_decay", a.lr_decay);
    a.weight_decay = opt_get(o, "weight_decay", a.weight_decay);
    a.initial_accumulator_value = opt_get(o, "initial_accumulator_value", a.initial_accumulator_value);
    a.eps = opt_get(o, "eps", a.eps);
    a.maximize = opt_get(o, "maximize", 0) != 0;
    return std::make_unique<Adagrad>(std::move(groups), a);
  }
  throw std::runtime_error("unknown optimizer " + name);
}

Shape shape_of(const Json& j) {
  Shape s;
  for (const Json& d : j.items) s.push_back(static_cast<int64_t>(d.number));
  return s;
}

}  // namespace

TEST(OptimReference, EveryOptimizerMatchesPython) {
  const Json& fx = fixture();
  const Shape s0 = shape_of(fx["shapes"][0]), s1 = shape_of(fx["shapes"][1]);
  ASSERT_GE(fx["optimizers"].items.size(), 13u);
  for (const Json& cfg : fx["optimizers"].items) {
    const std::string name = cfg["name"].str;
    Tensor a = param(numbers(fx["init"][0]), s0), b = param(numbers(fx["init"][1]), s1);
    auto opt = make_optimizer(name, cfg["options"], {ParamGroup({a}), ParamGroup({b}, {{"lr", cfg["group1_lr"].number}})});
    ASSERT_EQ(opt->type_name(), name);
    ASSERT_EQ(opt->param_groups().size(), 2u);
    const std::vector<double> b_before = values(b);
    for (size_t step = 0; step < cfg["expected"].items.size(); ++step) {
      const Json& grads = fx["grads"][step];
      a.set_grad(from_vector<double>(numbers(grads[0]), s0));
      b.set_grad(grads[1].kind == Json::Null ? Tensor() : from_vector<double>(numbers(grads[1]), s1));
      opt->step();
      const std::string where = name + " " + std::to_string(&cfg - &fx["optimizers"].items[0]) + " step " +
                                std::to_string(step);
      expect_close(values(a), numbers(cfg["expected"][step][0]), where + " param 0");
      expect_close(values(b), numbers(cfg["expected"][step][1]), where + " param 1");
    }
    EXPECT_NE(values(a), numbers(fx["init"][0])) << name << ": the fixture must move the parameters";
    EXPECT_NE(values(b), b_before);
    EXPECT_TRUE(a.is_leaf() && a.requires_grad());
  }
}

namespace {

std::unique_ptr<LRScheduler> make_scheduler(const Json& cfg, Optimizer& opt) {
  const std::string name = cfg["name"].str;
  const Json& a = cfg["args"];
  auto num = [&](const char* k, double d) { return a.has(k) ? a[k].number : d; };
  auto integer = [&](const char* k) { return static_cast<int64_t>(a[k].number); };
  if (name == "StepLR") return std::make_unique<StepLR>(opt, integer("step_size"), num("gamma", 0.1));
  if (name == "MultiStepLR") {
    std::vector<int64_t> m;
    for (const Json& x : a["milestones"].items) m.push_back(static_cast<int64_t>(x.number));
    return std::make_unique<MultiStepLR>(opt, m, num("gamma", 0.1));
  }
  if (name == "ExponentialLR") return std::make_unique<ExponentialLR>(opt, num("gamma", 0));
  if (name == "CosineAnnealingLR") return std::make_unique<CosineAnnealingLR>(opt, integer("T_max"), num("eta_min", 0));
  if (name == "LinearLR")
    return std::make_unique<LinearLR>(opt, num("start_factor", 1.0 / 3), num("end_factor", 1.0), integer("total_iters"));
  if (name == "WarmupCosineLR")
    return std::make_unique<WarmupCosineLR>(opt, integer("warmup_steps"), integer("total_steps"), num("min_lr", 0));
  if (name == "LambdaLR")  // the fixture's lambda_fn
    return std::make_unique<LambdaLR>(opt, [](int64_t e) { return std::pow(0.95, static_cast<double>(e)) + 0.01 * e; });
  if (name == "OneCycleLR") {
    std::vector<double> max_lr = a["max_lr"].kind == Json::Array ? numbers(a["max_lr"]) : std::vector<double>{a["max_lr"].number};
    OneCycleOptions o;
    o.pct_start = num("pct_start", o.pct_start);
    if (a.has("anneal_strategy")) o.anneal_strategy = a["anneal_strategy"].str;
    o.three_phase = a.has("three_phase") && a["three_phase"].boolean;
    o.base_momentum = num("base_momentum", o.base_momentum);
    o.max_momentum = num("max_momentum", o.max_momentum);
    o.div_factor = num("div_factor", o.div_factor);
    o.final_div_factor = num("final_div_factor", o.final_div_factor);
    return std::make_unique<OneCycleLR>(opt, max_lr, integer("total_steps"), o);
  }
  throw std::runtime_error("unknown scheduler " + name);
}

std::vector<double> momenta(const Optimizer& opt) {
  std::vector<double> out;
  for (const ParamGroup& g : opt.param_groups()) out.push_back(g.has("beta1") ? g.get("beta1") : g.get("momentum"));
  return out;
}

}  // namespace

TEST(OptimReference, EveryScheduleMatchesPython) {
  const Json& fx = fixture();
  ASSERT_GE(fx["schedulers"].items.size(), 9u);
  for (const Json& cfg : fx["schedulers"].items) {
    const std::string name = cfg["name"].str;
    Tensor a = param({1.0, 2.0}, {2}), b = param({3.0}, {1});
    std::vector<ParamGroup> groups{ParamGroup({a}), ParamGroup({b}, {{"lr", 0.02}})};
    std::unique_ptr<Optimizer> opt;
    if (cfg["optimizer"].str == "SGD") opt = std::make_unique<SGD>(groups, SGDOptions{0.1, 0.9});
    else opt = std::make_unique<Adam>(groups, AdamOptions{0.1});
    auto sched = make_scheduler(cfg, *opt);
    for (size_t row = 0; row < cfg["lrs"].items.size(); ++row) {
      if (row > 0) sched->step();
      const std::string where = name + " (" + cfg["optimizer"].str + ") epoch " + std::to_string(row);
      expect_close(sched->get_last_lr(), numbers(cfg["lrs"][row]), where + " lr");
      EXPECT_EQ(sched->get_last_lr()[0], opt->param_groups()[0].lr()) << where;
      EXPECT_EQ(sched->get_last_lr()[1], opt->param_groups()[1].lr()) << where;
      expect_close(momenta(*opt), numbers(cfg["momenta"][row]), where + " momentum");
      EXPECT_EQ(sched->last_epoch(), static_cast<int64_t>(row));
    }
  }
}

TEST(OptimCpp, StateDictRoundTripsThroughSafetensors) {
  manual_seed(3);
  Tensor a = param(values(randn({4}, DType::Float64)), {4}), b = param(values(randn({2, 3}, DType::Float64)), {2, 3});
  Tensor a2 = param(values(a), {4}), b2 = param(values(b), {2, 3});
  Adam opt({ParamGroup({a}), ParamGroup({b}, {{"lr", 0.05}})}, AdamOptions{0.01, 0.8, 0.99, 1e-8, 0.01, true});
  std::vector<std::pair<Tensor, Tensor>> grads;
  for (int i = 0; i < 6; ++i) grads.emplace_back(randn({4}, DType::Float64), randn({2, 3}, DType::Float64));
  for (int i = 0; i < 3; ++i) {
    a.set_grad(grads[i].first);
    b.set_grad(grads[i].second);
    opt.step();
  }
  opt.param_groups()[1].options["initial_lr"] = 0.125;  // extra keys (a schedule's) travel too
  OptimizerStateDict sd = opt.state_dict();
  EXPECT_EQ(sd.metadata.at("optimizer"), "Adam");
  EXPECT_EQ(sd.metadata.at("param_groups"), "2");
  EXPECT_EQ(sd.metadata.at("param_groups.1.params"), "1");
  EXPECT_EQ(sd.metadata.at("param_groups.1.lr"), "0.050000000000000003");
  ASSERT_EQ(sd.tensors.size(), 8u);  // 2 params x {exp_avg, exp_avg_sq, max_exp_avg_sq, step}
  EXPECT_EQ(sd.tensors[0].first, "state.0.exp_avg");
  EXPECT_EQ(sd.tensors[3].first, "state.0.step");
  EXPECT_EQ(sd.tensors[3].second.item().to_double(), 3.0);

  // Through bytes, into a fresh optimizer over copies of the parameters.
  const safetensors::Contents loaded = safetensors::deserialize(safetensors::serialize(sd.tensors, sd.metadata));
  Tensor a2d = a2.detach(), b2d = b2.detach();
  {
    NoGradGuard no_grad;
    copy_(a2d, a);  // the copies take the values after 3 steps
    copy_(b2d, b);
  }
  Adam fresh({ParamGroup({a2}), ParamGroup({b2})}, AdamOptions{0.5});
  fresh.load_state_dict(loaded);
  EXPECT_EQ(fresh.param_groups()[1].lr(), 0.05);
  EXPECT_EQ(fresh.param_groups()[0].get("beta1"), 0.8);
  EXPECT_EQ(fresh.param_groups()[1].get("initial_lr"), 0.125);
  EXPECT_TRUE(fresh.param_groups()[0].flag("amsgrad"));
  for (int i = 3; i < 6; ++i) {
    a.set_grad(grads[i].first);
    b.set_grad(grads[i].second);
    a2.set_grad(grads[i].first);
    b2.set_grad(grads[i].second);
    opt.step();
    fresh.step();
  }
  EXPECT_EQ(values(a2), values(a));  // bit for bit: same state, same options, same rule
  EXPECT_EQ(values(b2), values(b));
  EXPECT_EQ(fresh.state(a2).at("step").item().to_double(), 6.0);
}

TEST(OptimCpp, LoadStateDictChecksEverythingFirst) {
  Tensor a = param({1.0, 2.0}, {2}), b = param({3.0}, {1});
  SGD opt({a, b}, SGDOptions{0.1, 0.9});
  a.set_grad(from_vector<double>({0.5, -0.5}, {2}));
  b.set_grad(from_vector<double>({0.25}, {1}));
  opt.step();
  const OptimizerStateDict good = opt.state_dict();
  const std::vector<double> buf = values(opt.momentum_buffer(0));

  auto expect_rejected = [&](OptimizerStateDict sd, const std::string& fragment) {
    try {
      opt.load_state_dict(sd);
      ADD_FAILURE() << "accepted a state dict that should fail with " << fragment;
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("[SGD] ", 0), 0u) << e.what();
    }
    EXPECT_EQ(values(opt.momentum_buffer(0)), buf);  // unchanged
    EXPECT_EQ(opt.lr(), 0.1);
  };
  OptimizerStateDict sd = good;
  sd.metadata["optimizer"] = "Adam";
  expect_rejected(sd, "for a Adam optimizer");
  sd = good;
  sd.metadata["param_groups"] = "2";
  expect_rejected(sd, "2 parameter groups");
  sd = good;
  sd.metadata["param_groups.0.params"] = "0";
  expect_rejected(sd, "group (0) of 1 parameters");
  sd = good;
  sd.metadata["param_groups.0.lr"] = "-1";
  expect_rejected(sd, "invalid learning rate");
  sd = good;
  sd.metadata["param_groups.0.lr"] = "0.1x";
  expect_rejected(sd, "not a number");
  sd = good;
  sd.metadata.erase("param_groups.0.momentum");
  expect_rejected(sd, "lacks option 'momentum'");
  sd = good;
  sd.tensors[0].second = zeros({3}, DType::Float64);
  expect_rejected(sd, "has shape [3]");
  sd = good;
  sd.tensors.emplace_back("state.7.momentum_buffer", zeros({1}, DType::Float64));
  expect_rejected(sd, "parameter index 7");
  sd = good;
  sd.tensors.emplace_back("bogus", zeros({1}, DType::Float64));
  expect_rejected(sd, "unexpected state dict entry 'bogus'");
  // The good one loads; float32 state is cast to the parameter's float64.
  sd = good;
  sd.metadata["param_groups.0.lr"] = "0.25";
  sd.tensors[0].second = to(sd.tensors[0].second, DType::Float32);
  opt.load_state_dict(sd);
  EXPECT_EQ(opt.lr(), 0.25);
  EXPECT_EQ(opt.momentum_buffer(0).dtype(), DType::Float64);
}

TEST(OptimCpp, BadOptionsThrowNamingTheOptimizer) {
  Tensor p = param({1.0}, {1});
  auto expect_error = [](const std::function<void()>& make, const std::string& prefix) {
    try {
      make();
      ADD_FAILURE() << "no error for " << prefix;
    } catch (const ValueError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u) << e.what();
    }
  };
  expect_error([&] { Adam({p}, AdamOptions{-1.0}); }, "[Adam] invalid learning rate value: -1");
  expect_error([&] { Adam({p}, AdamOptions{0.1, 1.0}); }, "[Adam] invalid beta parameter at index 0: 1");
  expect_error([&] { Adam({p}, AdamOptions{0.1, 0.9, -0.5}); }, "[Adam] invalid beta parameter at index 1");
  expect_error([&] { Adam({p}, AdamOptions{0.1, 0.9, 0.999, -1e-8}); }, "[Adam] invalid epsilon value");
  expect_error([&] { Adam({p}, AdamOptions{std::nan("")}); }, "[Adam] invalid learning rate value");
  expect_error([&] { AdamW({p}, AdamWOptions{0.1, 0.9, 0.999, 1e-8, -0.1}); }, "[AdamW] invalid weight_decay value");
  expect_error([&] { RMSprop({p}, RMSpropOptions{0.1, -0.99}); }, "[RMSprop] invalid alpha value");
  expect_error([&] { RMSprop({p}, RMSpropOptions{0.1, 0.99, 1e-8, 0.0, -0.9}); }, "[RMSprop] invalid momentum value");
  expect_error([&] { Adagrad({p}, AdagradOptions{0.1, -0.1}); }, "[Adagrad] invalid lr_decay value");
  expect_error([&] { Adagrad({p}, AdagradOptions{0.1, 0.0, 0.0, -1.0}); },
               "[Adagrad] invalid initial_accumulator_value value");
  expect_error([&] { SGD({p}, SGDOptions{0.1, 0.0, 0.0, 0.0, true}); }, "[SGD] Nesterov momentum requires");
  // Group overrides are checked too, and so are parameters.
  expect_error([&] { Adam({ParamGroup({p}, {{"lr", -2.0}})}); }, "[Adam] invalid learning rate value: -2");
  expect_error([&] { Adam({ParamGroup({p}, {{"amsgrad", 0.5}})}); }, "[Adam] option 'amsgrad' is a flag");
  expect_error([&] { Adam(std::vector<Tensor>{}); }, "[Adam] optimizer got an empty parameter list");
  expect_error([&] { Adam({p, p}); }, "[Adam] optimizer contains a parameter group with duplicate parameters");
  expect_error([&] { Adam({ParamGroup({p}), ParamGroup({p})}); }, "[Adam] some parameters appear in more than one");
  expect_error([&] { Adam({from_vector<double>({1.0}, {1})}); }, "[Adam] parameter 0 does not require grad");
  expect_error([&] { Adam({mul(p, 2.0)}); }, "[Adam] can't optimize a non-leaf tensor");
  Adam ok({p});
  expect_error([&] { ok.set_lr(-1); }, "[Adam] invalid learning rate");
}

TEST(OptimCpp, ZeroGradAddParamGroupAndSkippedParams) {
  Tensor a = param({1.0, -1.0}, {2}), b = param({2.0}, {1});
  RMSprop opt({a}, RMSpropOptions{0.1});
  opt.add_param_group(ParamGroup({b}, {{"lr", 0.0}, {"momentum", 0.5}}));
  ASSERT_EQ(opt.param_groups().size(), 2u);
  EXPECT_EQ(opt.param_groups()[1].get("alpha"), 0.99);  // a default filled in
  EXPECT_EQ(opt.param_groups()[1].get("momentum"), 0.5);
  a.set_grad(from_vector<double>({1.0, 2.0}, {2}));
  b.set_grad(from_vector<double>({1.0}, {1}));
  opt.step();
  EXPECT_NE(values(a), (std::vector<double>{1.0, -1.0}));
  EXPECT_EQ(values(b), (std::vector<double>{2.0}));  // lr 0 leaves it, but its state exists
  EXPECT_EQ(opt.state(b).count("momentum_buffer"), 1u);
  EXPECT_EQ(opt.state(a).count("momentum_buffer"), 0u);
  opt.zero_grad(/*set_to_none=*/false);
  EXPECT_EQ(values(a.grad()), (std::vector<double>{0.0, 0.0}));
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  const std::vector<double> before = values(a);
  opt.step();  // no gradients: nothing moves
  EXPECT_EQ(values(a), before);
  // Adagrad's accumulator exists from construction, as in PyTorch.
  Adagrad ada({a}, AdagradOptions{0.1, 0.0, 0.0, 0.25});
  EXPECT_EQ(values(ada.state(a).at("sum")), (std::vector<double>{0.25, 0.25}));
}

TEST(OptimCpp, SchedulerChecksStateAndLambdas) {
  Tensor a = param({1.0}, {1}), b = param({2.0}, {1});
  SGD opt({ParamGroup({a}), ParamGroup({b}, {{"lr", 0.5}})}, SGDOptions{0.1, 0.9});
  EXPECT_THROW(StepLR(opt, 0), ValueError);
  EXPECT_THROW(CosineAnnealingLR(opt, 0), ValueError);
  EXPECT_THROW(WarmupCosineLR(opt, 5, 3), ValueError);
  EXPECT_THROW(OneCycleLR(opt, std::vector<double>{0.1, 0.2, 0.3}, 10), ValueError);
  EXPECT_THROW(LambdaLR(opt, std::vector<LambdaLR::Fn>{[](int64_t) { return 1.0; }}), ValueError);
  Adagrad ada({param({1.0}, {1})});
  EXPECT_THROW(OneCycleLR(ada, 0.1, 10), ValueError);  // no momentum to cycle
  OneCycleOptions no_cycle;
  no_cycle.cycle_momentum = false;
  OneCycleLR one(ada, 0.1, 2, no_cycle);
  one.step();
  one.step();
  EXPECT_THROW(one.step(), ValueError);  // past total_steps

  // Per-group lambdas; initial_lr survives a second scheduler; state dict round trip.
  SGD opt2({ParamGroup({param({1.0}, {1})}), ParamGroup({param({1.0}, {1})}, {{"lr", 1.0}})}, SGDOptions{0.1});
  LambdaLR lam(opt2, std::vector<LambdaLR::Fn>{[](int64_t e) { return 1.0 / (e + 1); }, [](int64_t e) { return 0.5 * e; }});
  lam.step();
  lam.step();
  EXPECT_EQ(lam.get_last_lr(), (std::vector<double>{0.1 / 3, 1.0}));
  ExponentialLR expo(opt2, 0.5);  // base lrs are the initial ones, not the current
  EXPECT_EQ(expo.base_lrs(), (std::vector<double>{0.1, 1.0}));
  expo.step(3);
  EXPECT_EQ(expo.get_last_lr(), (std::vector<double>{0.1 * 0.125, 0.125}));
  auto state = expo.state_dict();
  ExponentialLR other(opt2, 0.5);
  other.load_state_dict(state);
  EXPECT_EQ(other.last_epoch(), 3);
  other.step();
  EXPECT_EQ(other.get_last_lr(), (std::vector<double>{0.1 * 0.0625, 0.0625}));
  state.erase("base_lr.1");
  EXPECT_THROW(other.load_state_dict(state), ValueError);
}
