// bigmodel::optim learning-rate schedules (see lr_scheduler.h). The formulas, their order of
// floating-point operations included, follow python/bigmodel/optim/lr_scheduler.py, so
// both give the same numbers.
#include "optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace bigmodel::optim {
namespace {

constexpr double kPi = 3.141592653589793;  // math.pi

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

double anneal_cos(double start, double end, double pct) { return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1); }
double anneal_linear(double start, double end, double pct) { return (end - start) * pct + start; }

}  // namespace

// ---- base ------------------------------------------------------------------------------

LRScheduler::LRScheduler(Optimizer& optimizer, std::string name) : name_(std::move(name)), optimizer_(&optimizer) {
  for (ParamGroup& g : optimizer.param_groups())
    if (!g.has("initial_lr")) g.options["initial_lr"] = g.lr();
}

void LRScheduler::initial_step() {
  base_lrs_.clear();
  for (const ParamGroup& g : optimizer_->param_groups()) base_lrs_.push_back(g.get("initial_lr"));
  step();
}

void LRScheduler::step() { step(last_epoch_ + 1); }

void LRScheduler::step(int64_t epoch) {
  last_epoch_ = epoch;
  std::vector<double> values = get_lr();
  std::vector<ParamGroup>& groups = optimizer_->param_groups();
  BM_CHECK_VALUE(values.size() == groups.size(), name_, "computed ", values.size(), " learning rates for ",
                 groups.size(), " parameter groups (was a group added after the scheduler?)");
  last_lr_.clear();
  for (size_t i = 0; i < groups.size(); ++i) {
    groups[i].set_lr(values[i]);
    last_lr_.push_back(values[i]);
  }
}

std::map<std::string, double> LRScheduler::state_dict() const {
  std::map<std::string, double> out{{"last_epoch", static_cast<double>(last_epoch_)}};
  for (size_t i = 0; i < base_lrs_.size(); ++i) out["base_lr." + std::to_string(i)] = base_lrs_[i];
  for (size_t i = 0; i < last_lr_.size(); ++i) out["last_lr." + std::to_string(i)] = last_lr_[i];
  return out;
}

void LRScheduler::load_state_dict(const std::map<std::string, double>& state) {
  auto get = [&](const std::string& key) {
    auto it = state.find(key);
    BM_CHECK_VALUE(it != state.end(), name_, "scheduler state dict has no '", key, "' entry");
    return it->second;
  };
  const size_t n = optimizer_->param_groups().size();
  std::vector<double> base(n), last(n);
  for (size_t i = 0; i < n; ++i) {
    base[i] = get("base_lr." + std::to_string(i));
    last[i] = get("last_lr." + std::to_string(i));
  }
  BM_CHECK_VALUE(!state.count("base_lr." + std::to_string(n)), name_, "scheduler state dict has more than ", n,
                 " groups");
  last_epoch_ = static_cast<int64_t>(get("last_epoch"));
  base_lrs_ = std::move(base);
  last_lr_ = std::move(last);
}

// ---- closed-form schedules -----------------------------------------------------------------

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
  BM_CHECK_VALUE(step_size > 0, name_, "step_size must be positive, got ", step_size);
  initial_step();
}

std::vector<double> StepLR::get_lr() {
  const double f = std::pow(gamma_, static_cast<double>(floor_div(last_epoch(), step_size_)));
  std::vector<double> out;
  for (double base : base_lrs()) out.push_back(base * f);
  return out;
}

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma)
    : LRScheduler(optimizer, "MultiStepLR"), milestones_(std::move(milestones)), gamma_(gamma) {
  std::sort(milestones_.begin(), milestones_.end());
  initial_step();
}

std::vector<double> MultiStepLR::get_lr() {
  const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch()) - milestones_.begin();
  const double f = std::pow(gamma_, static_cast<double>(passed));
  std::vector<double> out;
  for (double base : base_lrs()) out.push_back(base * f);
  return out;
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer, "ExponentialLR"), gamma_(gamma) {
  initial_step();
}

std::vector<double> ExponentialLR::get_lr() {
  const double f = std::pow(gamma_, static_cast<double>(last_epoch()));
  std::vector<double> out;
  for (double base : base_lrs()) out.push_back(base * f);
  return out;
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer, "CosineAnnealingLR"), t_max_(T_max), eta_min_(eta_min) {
  BM_CHECK_VALUE(T_max > 0, name_, "T_max must be positive, got ", T_max);
  initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() {
  const double c = (1 + std::cos(kPi * static_cast<double>(last_epoch()) / static_cast<double>(t_max_))) / 2;
  std::vector<double> out;
  for (double base : base_lrs()) out.push_back(eta_min_ + (base - eta_min_) * c);
  return out;
}

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor, int64_t total_iters)
    : LRScheduler(optimizer, "LinearLR"), start_factor_(start_factor), end_factor_(end_factor), total_iters_(total_iters) {
  BM_CHECK_VALUE(start_factor > 0 && start_factor <= 1, name_, "start_factor must be in (0, 1], got ", start_factor);
  BM_CHECK_VALUE(end_factor >= 0 && end_factor <= 1, name_, "end_factor must be in [0, 1], got ", end_factor);
  BM_CHECK_VALUE(total_iters > 0, name_, "total_iters must be positive, got ", total_iters);
  initial_step();
}

std::vector<double> LinearLR::get_lr() {
  const double frac = static_cast<double>(std::min(last_epoch(), total_iters_)) / static_cast<double>(total_iters_);
  const double f = start_factor_ + (end_factor_ - start_factor_) * frac;
  std::vector<double> out;
  for (double base : base_lrs()) out.push_back(base * f);
  return out;
}

LambdaLR::LambdaLR(Optimizer& optimizer, Fn lr_lambda)
    : LambdaLR(optimizer, std::vector<Fn>(optimizer.param_groups().size(), lr_lambda)) {}

LambdaLR::LambdaLR(Optimizer& optimizer, std::vector<Fn> lr_lambdas)
    : LRScheduler(optimizer, "LambdaLR"), lambdas_(std::move(lr_lambdas)) {
  const size_t n = optimizer.param_groups().size();
  BM_CHECK_VALUE(lambdas_.size() == n, name_, "expected ", n, " lr_lambdas, got ", lambdas_.size());
  for (size_t i = 0; i < n; ++i) BM_CHECK_VALUE(static_cast<bool>(lambdas_[i]), name_, "lr_lambda ", i, " is empty");
  initial_step();
}

std::vector<double> LambdaLR::get_lr() {
  std::vector<double> out;
  for (size_t i = 0; i < base_lrs().size(); ++i) out.push_back(base_lrs()[i] * lambdas_.at(i)(last_epoch()));
  return out;
}

WarmupCosineLR::WarmupCosineLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps, double min_lr)
    : LRScheduler(optimizer, "warmup_cosine"), warmup_steps_(warmup_steps), total_steps_(total_steps), min_lr_(min_lr) {
  BM_CHECK_VALUE(warmup_steps >= 0 && total_steps > 0 && warmup_steps <= total_steps, name_,
                 "need 0 <= warmup_steps <= total_steps and total_steps > 0, got warmup_steps=", warmup_steps,
                 ", total_steps=", total_steps);
  BM_CHECK_VALUE(min_lr >= 0, name_, "min_lr must be non-negative, got ", min_lr);
  initial_step();
}

std::vector<double> WarmupCosineLR::get_lr() {
  const int64_t t = last_epoch(), w = warmup_steps_, n = total_steps_;
  std::vector<double> out;
  for (double base : base_lrs()) {
    if (t < w) {
      out.push_back(base * static_cast<double>(t + 1) / static_cast<double>(w));
    } else if (t >= n || n == w) {
      out.push_back(min_lr_);
    } else {
      const double c = (1 + std::cos(kPi * static_cast<double>(t - w) / static_cast<double>(n - w))) / 2;
      out.push_back(min_lr_ + (base - min_lr_) * c);
    }
  }
  return out;
}

// ---- OneCycleLR ------------------------------------------------------------------------------

OneCycleLR::OneCycleLR(Optimizer& optimizer, std::vector<double> max_lrs, int64_t total_steps, OneCycleOptions o)
    : LRScheduler(optimizer, "OneCycleLR"), total_steps_(total_steps), cycle_momentum_(o.cycle_momentum) {
  BM_CHECK_VALUE(total_steps > 0, name_, "total_steps must be positive, got ", total_steps);
  BM_CHECK_VALUE(o.pct_start >= 0 && o.pct_start <= 1, name_, "pct_start must be in [0, 1], got ", o.pct_start);
  BM_CHECK_VALUE(o.anneal_strategy == "cos" || o.anneal_strategy == "linear", name_,
                 "anneal_strategy must be 'cos' or 'linear', got '", o.anneal_strategy, "'");
  anneal_cos_ = o.anneal_strategy == "cos";
  const double total = static_cast<double>(total_steps);
  if (o.three_phase) {
    phases_ = {{o.pct_start * total - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
               {2 * o.pct_start * total - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"},
               {total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"}};
  } else {
    phases_ = {{o.pct_start * total - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
               {total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"}};
  }
  std::vector<ParamGroup>& groups = optimizer.param_groups();
  if (max_lrs.size() == 1) max_lrs.resize(groups.size(), max_lrs[0]);
  BM_CHECK_VALUE(max_lrs.size() == groups.size(), name_, "expected ", groups.size(), " values for max_lr, got ",
                 max_lrs.size());
  if (cycle_momentum_) {
    const Options& d = optimizer.defaults();
    BM_CHECK_VALUE(d.count("momentum") || d.count("beta1"), name_,
                   "optimizer must support momentum or betas with cycle_momentum enabled");
    momentum_key_ = d.count("beta1") ? "beta1" : "momentum";
  }
  for (size_t i = 0; i < groups.size(); ++i) {
    Options& g = groups[i].options;
    g["initial_lr"] = max_lrs[i] / o.div_factor;
    g["max_lr"] = max_lrs[i];
    g["min_lr"] = g["initial_lr"] / o.final_div_factor;
    if (cycle_momentum_) {
      set_momentum(groups[i], o.max_momentum);
      g["max_momentum"] = o.max_momentum;
      g["base_momentum"] = o.base_momentum;
    }
  }
  initial_step();
}

void OneCycleLR::set_momentum(ParamGroup& group, double m) const { group.options[momentum_key_] = m; }

std::vector<double> OneCycleLR::get_lr() {
  const int64_t step = last_epoch();
  BM_CHECK_VALUE(step <= total_steps_, name_, "tried to step ", step, " times; the total number of steps is ",
                 total_steps_);
  auto anneal = anneal_cos_ ? anneal_cos : anneal_linear;
  const double s = static_cast<double>(step);
  std::vector<double> lrs;
  for (ParamGroup& group : optimizer().param_groups()) {
    double start = 0.0;
    for (size_t i = 0; i < phases_.size(); ++i) {
      const Phase& phase = phases_[i];
      const double end = phase.end_step;
      if (s <= end || i == phases_.size() - 1) {
        const double pct = (s - start) / (end - start);
        lrs.push_back(anneal(group.get(phase.start_lr), group.get(phase.end_lr), pct));
        if (cycle_momentum_)
          set_momentum(group, anneal(group.get(phase.start_momentum), group.get(phase.end_momentum), pct));
        break;
      }
      start = end;
    }
  }
  return lrs;
}

}  // namespace bigmodel::optim
