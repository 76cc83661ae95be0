// bigmodel::optim::SGD (see sgd.h): the update is written with ops, so it runs on any device.
// A group whose parameters, gradients and buffers share one device and dtype (float32/float64)
// and are contiguous takes one multi-tensor call (fused_sgd_, the same bits); the option
// "foreach" = 0 in a group keeps the per-tensor loop.
#include "optim/sgd.h"

#include "core/error.h"
#include "core/ops/elementwise.h"
#include "core/ops/fused_optim.h"
#include "core/ops/view.h"

namespace bigmodel::optim {
namespace {

Options to_options(const SGDOptions& o) {
  return {{"lr", o.lr},
          {"momentum", o.momentum},
          {"dampening", o.dampening},
          {"weight_decay", o.weight_decay},
          {"nesterov", o.nesterov ? 1.0 : 0.0},
          {"maximize", o.maximize ? 1.0 : 0.0}};
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, SGDOptions options) : SGD(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions defaults) : Optimizer("SGD", to_options(defaults)), options_(defaults) {
  add_initial_groups(std::move(groups));
}

void SGD::check_options(const Options& o) const {
  const std::string& op = type_name();
  auto lr = o.find("lr");
  BM_CHECK_VALUE(lr != o.end() && lr->second >= 0.0, op, "invalid learning rate: ", lr == o.end() ? -1.0 : lr->second);
  check_non_negative(o, "momentum", "momentum");
  check_non_negative(o, "weight_decay", "weight_decay");
  BM_CHECK_VALUE(o.count("dampening"), op, "missing option 'dampening'");
  check_flag(o, "nesterov");
  check_flag(o, "maximize");
  BM_CHECK_VALUE(o.at("nesterov") == 0.0 || (o.at("momentum") > 0.0 && o.at("dampening") == 0.0), op,
                 "Nesterov momentum requires a momentum and zero dampening");
}

const Tensor& SGD::momentum_buffer(size_t i) const {
  static const Tensor undefined;
  const ParamState& s = state(params().at(i));
  auto it = s.find("momentum_buffer");
  return it == s.end() ? undefined : it->second;
}

void SGD::update_group(ParamGroup& group) {
  const double lr = group.lr(), momentum = group.get("momentum"), dampening = group.get("dampening");
  const double weight_decay = group.get("weight_decay");
  const bool nesterov = group.flag("nesterov"), maximize = group.flag("maximize");
  if (!group.has("foreach") || group.get("foreach") != 0.0) {
    std::vector<Tensor> params, grads, bufs, all;
    for (Tensor& param : group.params) {
      if (!param.grad().defined()) continue;
      params.push_back(param);
      grads.push_back(param.grad());
      if (momentum != 0.0) {
        const ParamState& st = state_for(param);
        auto it = st.find("momentum_buffer");
        bufs.push_back(it == st.end() ? Tensor() : it->second);
        if (bufs.back().defined()) all.push_back(bufs.back());
      }
    }
    all.insert(all.end(), params.begin(), params.end());
    all.insert(all.end(), grads.begin(), grads.end());
    if (fused_blocker(all).empty()) {
      fused_sgd_(params, grads, bufs, FusedSGDOptions{lr, momentum, dampening, weight_decay, nesterov, maximize});
      for (size_t i = 0; i < bufs.size(); ++i) state_for(params[i])["momentum_buffer"] = bufs[i];
      return;
    }
  }
  for (Tensor& param : group.params) {
    if (!param.grad().defined()) continue;
    Tensor p = param.detach();  // the update itself is not part of any graph
    Tensor d_p = effective_grad(param, maximize, weight_decay);
    if (momentum != 0.0) {
      ParamState& state = state_for(param);
      auto it = state.find("momentum_buffer");
      if (it == state.end()) {
        it = state.emplace("momentum_buffer", clone(d_p)).first;
      } else {
        mul_(it->second, Scalar(momentum));
        add_(it->second, d_p, Scalar(1.0 - dampening));
      }
      d_p = nesterov ? add(d_p, it->second, Scalar(momentum)) : it->second;
    }
    add_(p, d_p, Scalar(-lr));
  }
}

}  // namespace bigmodel::optim
