// bigmodel::optim::RMSprop, mirroring python/bigmodel/optim/rmsprop.py (PyTorch's rule and
// state names "step", "square_avg", "momentum_buffer", "grad_avg"):
//   g = grad (negated when maximize) + weight_decay * p
//   v = alpha v + (1 - alpha) g^2;  centered: ga = alpha ga + (1 - alpha) g, avg = sqrt(v - ga^2) + eps
//   otherwise avg = sqrt(v) + eps
//   momentum > 0: buf = momentum buf + g / avg, p -= lr buf;  else p -= lr g / avg
#pragma once
#include <vector>

#include "optim/optimizer.h"

namespace bigmodel::optim {

// Group options: lr, alpha, eps, weight_decay, momentum, centered, maximize.
struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
  bool maximize = false;
};

class RMSprop : public Optimizer {
 public:
  RMSprop(std::vector<Tensor> params, RMSpropOptions options = {});
  RMSprop(std::vector<ParamGroup> groups, RMSpropOptions defaults = {});

 protected:
  void check_options(const Options& o) const override;
  void update_group(ParamGroup& group) override;
};

}  // namespace bigmodel::optim
