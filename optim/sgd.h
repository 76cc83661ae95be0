// bigmodel::optim::SGD, mirroring python/bigmodel/optim/sgd.py: stochastic gradient descent
// with momentum, dampening, Nesterov momentum and weight decay, PyTorch's update rule:
//   g = grad (negated when maximize) + weight_decay * p
//   buf = g on the first step, else momentum * buf + (1 - dampening) * g
//   g = g + momentum * buf (Nesterov) or buf
//   p -= lr * g
#pragma once
#include <vector>

#include "core/tensor.h"

namespace bigmodel::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
};

class SGD {
 public:
  // params: the tensors to update (e.g. module.parameters()); checks the options as
  // Python does (ValueError "[SGD] ...").
  SGD(std::vector<Tensor> params, SGDOptions options);
  // One update of every parameter that has a gradient (outside the graph).
  void step();
  // Clears the parameters' gradients: drops them (default) or zeroes them in place.
  void zero_grad(bool set_to_none = true);

  double lr() const { return options_.lr; }
  void set_lr(double lr);  // for learning-rate schedules
  const SGDOptions& options() const { return options_; }
  const std::vector<Tensor>& params() const { return params_; }
  // The momentum buffer of params()[i]; undefined before its first momentum step.
  const Tensor& momentum_buffer(size_t i) const { return buffers_.at(i); }

 private:
  std::vector<Tensor> params_;
  std::vector<Tensor> buffers_;
  SGDOptions options_;
};

}  // namespace bigmodel::optim
