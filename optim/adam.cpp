// bigmodel::optim::Adam / AdamW (see adam.h): written with ops, so it runs on any device. A
// group whose parameters and gradients share one device and dtype (float32/float64/float16/
// bfloat16), with state of the state dtype, all contiguous, takes one multi-tensor call
// (fused_adam_, the same bits); the option "foreach" = 0 in a group keeps the per-tensor loop.
#include "optim/adam.h"

#include <cmath>

#include "core/error.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/fused_optim.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"

namespace bigmodel::optim {
namespace {

template <class O>
Options to_options(const O& o) {
  return {{"lr", o.lr},     {"beta1", o.beta1},
          {"beta2", o.beta2}, {"eps", o.eps},
          {"weight_decay", o.weight_decay}, {"amsgrad", o.amsgrad ? 1.0 : 0.0},
          {"maximize", o.maximize ? 1.0 : 0.0}, {"master_weights", o.master_weights ? 1.0 : 0.0}};
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
  if (o.count("master_weights")) check_flag(o, "master_weights");
}

namespace {

// The group's step as one fused_adam_ call; false (no update done) when the tensors do not fit
// it. state_for(p) is the optimizer's (protected) per-parameter state.
// Why one fused call cannot take these params + grads and their state lists ("" when it can).
std::string fused_lists_blocker(const std::vector<Tensor>& params_grads, const std::vector<Tensor>& state) {
  std::string why = fused_blocker(params_grads, /*any_floating=*/true);
  if (!why.empty() || params_grads.empty()) return why;
  const DType dt = params_grads[0].dtype();
  if (dt != DType::Float32 && dt != DType::Float64 && dt != DType::Float16 && dt != DType::BFloat16)
    return "dtype " + std::string(dtype_name(dt));
  if (state.empty()) return "";
  why = fused_blocker(state);
  if (!why.empty()) return why;
  if (state[0].dtype() != fused_state_dtype(dt) || state[0].device() != params_grads[0].device())
    return "state of another dtype or device";
  return "";
}

// The group's step as one fused_adam_ call; false (no update done) when the tensors do not fit
// it. state_for(p) is the optimizer's (protected) per-parameter state.
template <class StateFor>
bool adam_step_fused(const std::vector<Tensor>& group_params, StateFor state_for, const FusedAdamOptions& o,
                     bool master) {
  std::vector<Tensor> params, grads;
  for (const Tensor& p : group_params) {
    if (!p.grad().defined()) continue;
    params.push_back(p);
    grads.push_back(p.grad());
  }
  if (params.empty()) return true;
  std::vector<Tensor> all = params;
  all.insert(all.end(), grads.begin(), grads.end());
  if (!fused_lists_blocker(all, {}).empty()) return false;
  std::vector<Tensor> m, v, vmax, steps, masters, state_tensors;
  for (const Tensor& p : params) {
    ParamState& state = state_for(p);
    const DType sd = fused_state_dtype(p.dtype());
    if (state.empty()) {
      state["step"] = zeros({}, DType::Float32);  // as Optimizer::new_step
      state["exp_avg"] = zeros(p.sizes(), sd, p.device());
      state["exp_avg_sq"] = zeros(p.sizes(), sd, p.device());
    }
    if (o.amsgrad && !state.count("max_exp_avg_sq")) state["max_exp_avg_sq"] = zeros(p.sizes(), sd, p.device());
    m.push_back(state.at("exp_avg"));
    v.push_back(state.at("exp_avg_sq"));
    if (o.amsgrad) vmax.push_back(state.at("max_exp_avg_sq"));
    if (master) {  // as Optimizer::working_param: made from p when missing (older state dicts)
      auto it = state.find("master_param");
      if (it == state.end()) it = state.emplace("master_param", contiguous(clone(to(p.detach(), DType::Float32)))).first;
      masters.push_back(it->second);
    }
    steps.push_back(state.at("step"));
  }
  for (const auto* list : {&m, &v, &vmax, &masters}) state_tensors.insert(state_tensors.end(), list->begin(), list->end());
  if (!fused_lists_blocker(all, state_tensors).empty()) return false;  // loaded state of another layout: the loop
  fused_adam_(params, grads, m, v, vmax, steps, o, masters);
  return true;
}

}  // namespace

void Adam::update_group(ParamGroup& group) {
  const double lr = group.lr(), beta1 = group.get("beta1"), beta2 = group.get("beta2"), eps = group.get("eps");
  const double weight_decay = group.get("weight_decay");
  const bool amsgrad = group.flag("amsgrad"), maximize = group.flag("maximize");
  const bool master = master_weights(group);
  check_master_weights(group);
  for (Tensor& p : group.params)  // master_weights switched off: p is the truth again
    if (!master && p.grad().defined()) state_for(p).erase("master_param");
  if ((!group.has("foreach") || group.get("foreach") != 0.0) &&
      adam_step_fused(group.params, [this](const Tensor& p) -> ParamState& { return state_for(p); },
                      FusedAdamOptions{lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_}, master))
    return;
  for (Tensor& p : group.params) {
    if (!p.grad().defined()) continue;
    ParamState& state = state_for(p);
    const DType sd = state_dtype(p);
    if (state.empty()) {
      state["step"] = new_step();
      state["exp_avg"] = zeros(p.sizes(), sd, p.device());
      state["exp_avg_sq"] = zeros(p.sizes(), sd, p.device());
      if (amsgrad) state["max_exp_avg_sq"] = zeros(p.sizes(), sd, p.device());
    }
    // Half p: the float32 step on the master copy or on float(p), rounded back at the end.
    Tensor param = working_param(p, state, master);
    Tensor grad;
    if (decoupled_) {
      grad = working_grad(p, param, maximize);
      if (weight_decay != 0.0) mul_(param, Scalar(1.0 - lr * weight_decay));
    } else {
      grad = working_grad(p, param, maximize, weight_decay);
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
      if (it == state.end()) it = state.emplace("max_exp_avg_sq", zeros(p.sizes(), sd, p.device())).first;  // late
      copy_(it->second, maximum(it->second, exp_avg_sq));
      second = it->second;
    }
    Tensor denom = div(sqrt(second), Scalar(bias_correction2_sqrt));
    add_(denom, Scalar(eps));
    add_(param, div(exp_avg, denom), Scalar(-lr / bias_correction1));
    write_back(p, param);
  }
}

}  // namespace bigmodel::optim
