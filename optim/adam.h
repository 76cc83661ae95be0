// bigmodel::optim::Adam and AdamW, mirroring python/bigmodel/optim/adam.py (PyTorch's rules
// and state names "step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
//   g = grad (negated when maximize);  Adam: g += weight_decay * p;  AdamW: p *= 1 - lr * weight_decay
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  amsgrad: vmax = max(vmax, v), v := vmax
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#pragma once
#include <vector>

#include "core/ops/fused_optim.h"
#include "optim/optimizer.h"

namespace bigmodel::optim {

// Group options: lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, master_weights.
// float16/bfloat16 parameters keep float32 state; master_weights (float16/bfloat16 parameters
// only) adds a float32 master copy "master_param" that the step updates, p = its rounding.
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool maximize = false;
  bool master_weights = false;
};

// The same fields; AdamW's weight decay defaults to 1e-2, as in PyTorch.
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
  bool maximize = false;
  bool master_weights = false;
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options = {});
  Adam(std::vector<ParamGroup> groups, AdamOptions defaults = {});

 protected:
  Adam(const char* name, bool decoupled, std::vector<ParamGroup> groups, const Options& defaults);
  void check_options(const Options& o) const override;
  void update_group(ParamGroup& group) override;
  DType state_dtype(const Tensor& param) const override { return fused_state_dtype(param.dtype()); }

 private:
  bool decoupled_;  // AdamW: weight decay shrinks p directly instead of joining the gradient
};

// Adam with decoupled weight decay (Loshchilov & Hutter).
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions options = {});
  AdamW(std::vector<ParamGroup> groups, AdamWOptions defaults = {});
};

}  // namespace bigmodel::optim
