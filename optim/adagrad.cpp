// bigmodel::optim::Adagrad (see adagrad.h): written with ops, so it runs on any device.
#include "optim/adagrad.h"

#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/unary.h"

namespace bigmodel::optim {

Adagrad::Adagrad(std::vector<Tensor> params, AdagradOptions options)
    : Adagrad(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

Adagrad::Adagrad(std::vector<ParamGroup> groups, AdagradOptions o)
    : Optimizer("Adagrad", {{"lr", o.lr},
                            {"lr_decay", o.lr_decay},
                            {"weight_decay", o.weight_decay},
                            {"initial_accumulator_value", o.initial_accumulator_value},
                            {"eps", o.eps},
                            {"maximize", o.maximize ? 1.0 : 0.0}}) {
  add_initial_groups(std::move(groups));
  for (const ParamGroup& g : param_groups())
    for (const Tensor& p : g.params) init_state(p, g);
}

void Adagrad::check_options(const Options& o) const {
  check_non_negative(o, "lr", "learning rate");
  check_non_negative(o, "lr_decay", "lr_decay");
  check_non_negative(o, "weight_decay", "weight_decay");
  check_non_negative(o, "initial_accumulator_value", "initial_accumulator_value");
  check_non_negative(o, "eps", "epsilon");
  check_flag(o, "maximize");
}

void Adagrad::init_state(const Tensor& p, const ParamGroup& group) {
  ParamState& state = state_for(p);
  if (!state.empty()) return;
  state["step"] = new_step();
  state["sum"] = full_like(p.detach(), Scalar(group.get("initial_accumulator_value")));
}

void Adagrad::update_group(ParamGroup& group) {
  const double lr = group.lr(), lr_decay = group.get("lr_decay"), eps = group.get("eps");
  const double weight_decay = group.get("weight_decay");
  const bool maximize = group.flag("maximize");
  for (Tensor& p : group.params) {
    if (!p.grad().defined()) continue;
    init_state(p, group);  // groups added after construction
    ParamState& state = state_for(p);
    Tensor grad = effective_grad(p, maximize, weight_decay);
    const int64_t t = advance_step(state);
    const double clr = lr / (1.0 + static_cast<double>(t - 1) * lr_decay);
    Tensor& sum = state.at("sum");
    add_(sum, mul(grad, grad));
    Tensor std_dev = sqrt(sum);
    add_(std_dev, Scalar(eps));
    Tensor param = p.detach();
    add_(param, div(grad, std_dev), Scalar(-clr));
  }
}

}  // namespace bigmodel::optim
