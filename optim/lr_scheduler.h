// bigmodel::optim learning-rate schedules, mirroring python/bigmodel/optim/lr_scheduler.py:
// each computes the LRs in closed form from the base LRs and last_epoch, so step(epoch) and
// resuming agree exactly with stepping. Construction performs the initial step (epoch 0),
// as PyTorch does; call step() after each optimizer.step() (or each epoch).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "optim/optimizer.h"

namespace bigmodel::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances last_epoch by one (or sets it) and writes get_lr() into the optimizer's groups.
  void step();
  void step(int64_t epoch);
  // The LRs this scheduler set last, one per parameter group.
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  // Each group's "initial_lr": its lr when the first scheduler was attached.
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  Optimizer& optimizer() const { return *optimizer_; }

  // {"last_epoch", "base_lr.<g>", "last_lr.<g>"}; load_state_dict restores them (the group
  // count must match) without touching the optimizer, whose own state dict holds its lrs.
  std::map<std::string, double> state_dict() const;
  void load_state_dict(const std::map<std::string, double>& state);

 protected:
  // name: the prefix of error messages. Sets each group's "initial_lr" to its lr unless an
  // earlier scheduler did (as Python's setdefault) and reads base_lrs from them.
  LRScheduler(Optimizer& optimizer, std::string name);
  // The LRs for last_epoch(), one per group. May set other group options (OneCycleLR's momentum).
  virtual std::vector<double> get_lr() = 0;
  // Subclass constructors end with this: reads base_lrs from the groups' "initial_lr" and
  // steps to epoch 0 (virtual calls work only once the subclass is constructed).
  void initial_step();

  std::string name_;

 private:
  Optimizer* optimizer_;
  int64_t last_epoch_ = -1;
  std::vector<double> base_lrs_;
  std::vector<double> last_lr_;
};

// lr = base * gamma ^ floor(epoch / step_size).
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);

 protected:
  std::vector<double> get_lr() override;

 private:
  int64_t step_size_;
  double gamma_;
};

// lr = base * gamma ^ (number of milestones <= epoch); repeated milestones count repeatedly.
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1);

 protected:
  std::vector<double> get_lr() override;

 private:
  std::vector<int64_t> milestones_;  // sorted
  double gamma_;
};

// lr = base * gamma ^ epoch.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);

 protected:
  std::vector<double> get_lr() override;

 private:
  double gamma_;
};

// lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0.0);

 protected:
  std::vector<double> get_lr() override;

 private:
  int64_t t_max_;
  double eta_min_;
};

// lr = base * (start_factor + (end_factor - start_factor) * min(epoch, total_iters) / total_iters).
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0, int64_t total_iters = 5);

 protected:
  std::vector<double> get_lr() override;

 private:
  double start_factor_, end_factor_;
  int64_t total_iters_;
};

// lr = base * lr_lambda(epoch): one function for every group, or one per group.
class LambdaLR : public LRScheduler {
 public:
  using Fn = std::function<double(int64_t)>;
  LambdaLR(Optimizer& optimizer, Fn lr_lambda);
  LambdaLR(Optimizer& optimizer, std::vector<Fn> lr_lambdas);

 protected:
  std::vector<double> get_lr() override;

 private:
  std::vector<Fn> lambdas_;
};

// Linear warm-up then cosine decay to min_lr (an absolute LR), the usual LLM schedule:
//   t < warmup_steps:      lr = base * (t + 1) / warmup_steps
//   warmup <= t < total:   lr = min_lr + (base - min_lr) * (1 + cos(pi * (t - warmup) / (total - warmup))) / 2
//   t >= total_steps:      lr = min_lr
class WarmupCosineLR : public LRScheduler {
 public:
  WarmupCosineLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps, double min_lr = 0.0);

 protected:
  std::vector<double> get_lr() override;

 private:
  int64_t warmup_steps_, total_steps_;
  double min_lr_;
};

struct OneCycleOptions {
  double pct_start = 0.3;
  std::string anneal_strategy = "cos";  // or "linear"
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  bool three_phase = false;
};

// The 1cycle policy: warm up from max_lr / div_factor to max_lr over pct_start of the steps,
// then anneal to initial_lr / final_div_factor (three_phase: back to initial_lr first).
// With cycle_momentum the group's "momentum" (SGD, RMSprop) or "beta1" (Adam) cycles
// inversely between max_momentum and base_momentum. Sets the groups' "initial_lr",
// "max_lr", "min_lr", "max_momentum", "base_momentum" as Python does.
class OneCycleLR : public LRScheduler {
 public:
  // max_lrs: one value for every group, or one per group.
  OneCycleLR(Optimizer& optimizer, std::vector<double> max_lrs, int64_t total_steps, OneCycleOptions options = {});
  OneCycleLR(Optimizer& optimizer, double max_lr, int64_t total_steps, OneCycleOptions options = {})
      : OneCycleLR(optimizer, std::vector<double>{max_lr}, total_steps, options) {}

 protected:
  std::vector<double> get_lr() override;

 private:
  struct Phase {
    double end_step;
    const char* start_lr;
    const char* end_lr;
    const char* start_momentum;
    const char* end_momentum;
  };
  void set_momentum(ParamGroup& group, double m) const;

  int64_t total_steps_;
  bool anneal_cos_;
  bool cycle_momentum_;
  const char* momentum_key_ = "momentum";  // or "beta1"
  std::vector<Phase> phases_;
};

}  // namespace bigmodel::optim
