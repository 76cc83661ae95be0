// bigmodel::optim::Adam / AdamW (see adam.h): written with ops, so it runs on any device.
#include "optim/adam.h"

#include <cmath>

#include "core/error.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"

namespace bigmodel::optim {
namespace {

template <class O>
Options to_options(const O& o) {
  return {{"lr", o.lr},     {"beta1", o.beta1},
          {"beta2", o.beta2}, {"eps", o.eps},
          {"weight_decay", o.weight_decay}, {"amsgrad", o.amsgrad ? 1.0 : 0.0},
          {"maximize", o.maximize ? 1.0 : 0.0}};
}

}  // namespace

Adam::Adam(std::vector<Tensor> params, AdamOptions options)
    : Adam(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions defaults)
    : Adam("Adam", false, std::move(groups), to_options(defaults)) {}

Adam::Adam(const char* name, bool decoupled, std::vector<ParamGroup> groups, const Options& defaults)
    : Optimizer(name, defaults), decoupled_(decoupled) {
  add_initial_groups(std::move(groups));
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options)
    : AdamW(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions defaults)
    : Adam("AdamW", true, std::move(groups), to_options(defaults)) {}

void Adam::check_options(const Options& o) const {
  check_non_negative(o, "lr", "learning rate");
  check_non_negative(o, "eps", "epsilon");
  check_non_negative(o, "weight_decay", "weight_decay");
  int index = 0;
  for (const char* key : {"beta1", "beta2"}) {
    auto it = o.find(key);
    BM_CHECK_VALUE(it != o.end(), type_name(), "missing option '", key, "'");
    BM_CHECK_VALUE(it->second >= 0.0 && it->second < 1.0, type_name(), "invalid beta parameter at index ", index,
                   ": ", it->second);
    ++index;
  }
  check_flag(o, "amsgrad");
  check_flag(o, "maximize");
}

void Adam::update_group(ParamGroup& group) {
  const double lr = group.lr(), beta1 = group.get("beta1"), beta2 = group.get("beta2"), eps = group.get("eps");
  const double weight_decay = group.get("weight_decay");
  const bool amsgrad = group.flag("amsgrad"), maximize = group.flag("maximize");
  for (Tensor& p : group.params) {
    if (!p.grad().defined()) continue;
    ParamState& state = state_for(p);
    if (state.empty()) {
      state["step"] = new_step();
      state["exp_avg"] = zeros_like(p.detach());
      state["exp_avg_sq"] = zeros_like(p.detach());
      if (amsgrad) state["max_exp_avg_sq"] = zeros_like(p.detach());
    }
    Tensor param = p.detach();
    Tensor grad;
    if (decoupled_) {
      grad = effective_grad(p, maximize);
      if (weight_decay != 0.0) mul_(param, Scalar(1.0 - lr * weight_decay));
    } else {
      grad = effective_grad(p, maximize, weight_decay);
    }
    const int64_t t = advance_step(state);
    Tensor& exp_avg = state.at("exp_avg");
    Tensor& exp_avg_sq = state.at("exp_avg_sq");
    mul_(exp_avg, Scalar(beta1));
    add_(exp_avg, grad, Scalar(1.0 - beta1));
    mul_(exp_avg_sq, Scalar(beta2));
    add_(exp_avg_sq, mul(grad, grad), Scalar(1.0 - beta2));
    const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(t));
    const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(beta2, static_cast<double>(t)));
    Tensor second = exp_avg_sq;
    if (amsgrad) {
      auto it = state.find("max_exp_avg_sq");
      if (it == state.end()) it = state.emplace("max_exp_avg_sq", zeros_like(p.detach())).first;  // switched on late
      copy_(it->second, maximum(it->second, exp_avg_sq));
      second = it->second;
    }
    Tensor denom = div(sqrt(second), Scalar(bias_correction2_sqrt));
    add_(denom, Scalar(eps));
    add_(param, div(exp_avg, denom), Scalar(-lr / bias_correction1));
  }
}

}  // namespace bigmodel::optim
