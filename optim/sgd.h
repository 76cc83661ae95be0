// bigmodel::optim::SGD, mirroring python/bigmodel/optim/sgd.py: stochastic gradient descent
// with momentum, dampening, Nesterov momentum and weight decay, PyTorch's update rule:
//   g = grad (negated when maximize) + weight_decay * p
//   buf = g on the first step, else momentum * buf + (1 - dampening) * g
//   g = g + momentum * buf (Nesterov) or buf
//   p -= lr * g
#pragma once
#include <vector>

#include "core/ops/fused_optim.h"
#include "optim/optimizer.h"

namespace bigmodel::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
  // float16/bfloat16 parameters only: a float32 master copy "master_param" that the step
  // updates (p = its rounding); half parameters always keep a float32 momentum buffer.
  bool master_weights = false;
};

class SGD : public Optimizer {
 public:
  // params: the tensors to update (e.g. module.parameters()); checks the options as
  // Python does (ValueError "[SGD] ..."). Group options: lr, momentum, dampening,
  // weight_decay, nesterov, maximize, master_weights.
  SGD(std::vector<Tensor> params, SGDOptions options);
  // Several groups; each group's options override `defaults`.
  SGD(std::vector<ParamGroup> groups, SGDOptions defaults);

  // The defaults the optimizer was built with (per-group values live in param_groups()).
  const SGDOptions& options() const { return options_; }
  // The momentum buffer of params()[i]; undefined before its first momentum step.
  const Tensor& momentum_buffer(size_t i) const;

 protected:
  void check_options(const Options& o) const override;
  void update_group(ParamGroup& group) override;
  DType state_dtype(const Tensor& param) const override { return fused_state_dtype(param.dtype()); }

 private:
  SGDOptions options_;
};

}  // namespace bigmodel::optim
