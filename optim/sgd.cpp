// bigmodel::optim::SGD (see sgd.h): the update is written with ops, so it runs on any device.
#include "optim/sgd.h"

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"

namespace bigmodel::optim {

SGD::SGD(std::vector<Tensor> params, SGDOptions o) : params_(std::move(params)), options_(o) {
  const char* op = "SGD";
  BM_CHECK_VALUE(o.lr >= 0.0, op, "invalid learning rate: ", o.lr);
  BM_CHECK_VALUE(o.momentum >= 0.0, op, "invalid momentum value: ", o.momentum);
  BM_CHECK_VALUE(o.weight_decay >= 0.0, op, "invalid weight_decay value: ", o.weight_decay);
  BM_CHECK_VALUE(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0), op,
                 "Nesterov momentum requires a momentum and zero dampening");
  for (size_t i = 0; i < params_.size(); ++i) {
    BM_CHECK_VALUE(params_[i].defined(), op, "parameter ", i, " is undefined");
    BM_CHECK_VALUE(params_[i].requires_grad(), op, "parameter ", i, " does not require grad");
  }
  buffers_.resize(params_.size());
}

void SGD::set_lr(double lr) {
  BM_CHECK_VALUE(lr >= 0.0, "SGD", "invalid learning rate: ", lr);
  options_.lr = lr;
}

void SGD::step() {
  NoGradGuard no_grad;
  const SGDOptions& o = options_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor grad = params_[i].grad();
    if (!grad.defined()) continue;
    Tensor p = params_[i].detach();  // the update itself is not part of any graph
    Tensor d_p = o.maximize ? neg(grad) : grad;
    if (o.weight_decay != 0.0) d_p = add(d_p, p, Scalar(o.weight_decay));
    if (o.momentum != 0.0) {
      Tensor& buf = buffers_[i];
      if (!buf.defined()) {
        buf = clone(d_p);
      } else {
        mul_(buf, Scalar(o.momentum));
        add_(buf, d_p, Scalar(1.0 - o.dampening));
      }
      d_p = o.nesterov ? add(d_p, buf, Scalar(o.momentum)) : buf;
    }
    add_(p, d_p, Scalar(-o.lr));
  }
}

void SGD::zero_grad(bool set_to_none) {
  for (Tensor& p : params_) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (set_to_none) {
      p.set_grad(Tensor());
    } else {
      NoGradGuard no_grad;
      zero_(g);
    }
  }
}

}  // namespace bigmodel::optim
