// bigmodel::optim::RMSprop (see rmsprop.h): written with ops, so it runs on any device.
#include "optim/rmsprop.h"

#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/unary.h"

namespace bigmodel::optim {

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions options)
    : RMSprop(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

RMSprop::RMSprop(std::vector<ParamGroup> groups, RMSpropOptions o)
    : Optimizer("RMSprop", {{"lr", o.lr},
                            {"alpha", o.alpha},
                            {"eps", o.eps},
                            {"weight_decay", o.weight_decay},
                            {"momentum", o.momentum},
                            {"centered", o.centered ? 1.0 : 0.0},
                            {"maximize", o.maximize ? 1.0 : 0.0}}) {
  add_initial_groups(std::move(groups));
}

void RMSprop::check_options(const Options& o) const {
  check_non_negative(o, "lr", "learning rate");
  check_non_negative(o, "eps", "epsilon");
  check_non_negative(o, "momentum", "momentum");
  check_non_negative(o, "weight_decay", "weight_decay");
  check_non_negative(o, "alpha", "alpha");
  check_flag(o, "centered");
  check_flag(o, "maximize");
}

void RMSprop::update_group(ParamGroup& group) {
  const double lr = group.lr(), alpha = group.get("alpha"), eps = group.get("eps");
  const double momentum = group.get("momentum"), weight_decay = group.get("weight_decay");
  const bool centered = group.flag("centered"), maximize = group.flag("maximize");
  for (Tensor& p : group.params) {
    if (!p.grad().defined()) continue;
    ParamState& state = state_for(p);
    if (state.empty()) {
      state["step"] = new_step();
      state["square_avg"] = zeros_like(p.detach());
      if (momentum > 0.0) state["momentum_buffer"] = zeros_like(p.detach());
      if (centered) state["grad_avg"] = zeros_like(p.detach());
    }
    Tensor grad = effective_grad(p, maximize, weight_decay);
    advance_step(state);
    Tensor& square_avg = state.at("square_avg");
    mul_(square_avg, Scalar(alpha));
    add_(square_avg, mul(grad, grad), Scalar(1.0 - alpha));
    Tensor avg;
    if (centered) {
      auto it = state.find("grad_avg");
      if (it == state.end()) it = state.emplace("grad_avg", zeros_like(p.detach())).first;
      mul_(it->second, Scalar(alpha));
      add_(it->second, grad, Scalar(1.0 - alpha));
      avg = sqrt(sub(square_avg, mul(it->second, it->second)));
    } else {
      avg = sqrt(square_avg);
    }
    add_(avg, Scalar(eps));
    Tensor param = p.detach();
    if (momentum > 0.0) {
      auto it = state.find("momentum_buffer");
      if (it == state.end()) it = state.emplace("momentum_buffer", zeros_like(p.detach())).first;
      mul_(it->second, Scalar(momentum));
      add_(it->second, div(grad, avg));
      add_(param, it->second, Scalar(-lr));
    } else {
      add_(param, div(grad, avg), Scalar(-lr));
    }
  }
}

}  // namespace bigmodel::optim
