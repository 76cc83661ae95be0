// bigmodel::optim::Adagrad, mirroring python/bigmodel/optim/adagrad.py (PyTorch's rule and
// state names "step", "sum"):
//   g = grad (negated when maximize) + weight_decay * p
//   clr = lr / (1 + (t - 1) lr_decay);  s += g^2;  p -= clr g / (sqrt(s) + eps)
// The accumulator s starts at initial_accumulator_value and exists from construction.
#pragma once
#include <vector>

#include "optim/optimizer.h"

namespace bigmodel::optim {

// Group options: lr, lr_decay, weight_decay, initial_accumulator_value, eps, maximize.
struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double initial_accumulator_value = 0.0;
  double eps = 1e-10;
  bool maximize = false;
};

class Adagrad : public Optimizer {
 public:
  Adagrad(std::vector<Tensor> params, AdagradOptions options = {});
  Adagrad(std::vector<ParamGroup> groups, AdagradOptions defaults = {});

 protected:
  void check_options(const Options& o) const override;
  void update_group(ParamGroup& group) override;

 private:
  void init_state(const Tensor& p, const ParamGroup& group);
};

}  // namespace bigmodel::optim
