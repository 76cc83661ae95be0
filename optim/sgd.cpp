// bigmodel::optim::SGD (see sgd.h): the update is written with ops, so it runs on any device.
// A group whose parameters and gradients share one device and dtype (float32/float64/float16/
// bfloat16), with buffers of the state dtype, all contiguous, takes one multi-tensor call
// (fused_sgd_, the same bits); the option "foreach" = 0 in a group keeps the per-tensor loop.
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
          {"maximize", o.maximize ? 1.0 : 0.0},
          {"master_weights", o.master_weights ? 1.0 : 0.0}};
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
  if (o.count("master_weights")) check_flag(o, "master_weights");
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
  const bool master = master_weights(group);
  check_master_weights(group);
  for (Tensor& p : group.params)  // master_weights switched off: p is the truth again
    if (!master && p.grad().defined()) state_for(p).erase("master_param");
  if (!group.has("foreach") || group.get("foreach") != 0.0) {
    std::vector<Tensor> params, grads, bufs, masters, pg, state;
    for (Tensor& param : group.params) {
      if (!param.grad().defined()) continue;
      params.push_back(param);
      grads.push_back(param.grad());
      if (master) masters.push_back(working_param(param, state_for(param), true));
      if (momentum != 0.0) {
        const ParamState& st = state_for(param);
        auto it = st.find("momentum_buffer");
        bufs.push_back(it == st.end() ? Tensor() : it->second);
        if (bufs.back().defined()) state.push_back(bufs.back());
      }
    }
    pg = params;
    pg.insert(pg.end(), grads.begin(), grads.end());
    state.insert(state.end(), masters.begin(), masters.end());
    bool fits = fused_blocker(pg, /*any_floating=*/true).empty();
    if (fits && !params.empty()) {
      const DType dt = params[0].dtype();
      fits = dt == DType::Float32 || dt == DType::Float64 || dt == DType::Float16 || dt == DType::BFloat16;
      fits = fits && (state.empty() || (fused_blocker(state).empty() && state[0].dtype() == fused_state_dtype(dt) &&
                                        state[0].device() == params[0].device()));
    }
    if (fits) {
      fused_sgd_(params, grads, bufs, FusedSGDOptions{lr, momentum, dampening, weight_decay, nesterov, maximize},
                 masters);
      for (size_t i = 0; i < bufs.size(); ++i) state_for(params[i])["momentum_buffer"] = bufs[i];
      return;
    }
  }
  for (Tensor& param : group.params) {
    if (!param.grad().defined()) continue;
    ParamState& state = state_for(param);
    // Half p: the float32 step on the master copy or on float(p), rounded back at the end.
    Tensor p = working_param(param, state, master);  // the update itself is not part of any graph
    Tensor d_p = working_grad(param, p, maximize, weight_decay);
    if (momentum != 0.0) {
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
    write_back(param, p);
  }
}

}  // namespace bigmodel::optim
