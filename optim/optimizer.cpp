// bigmodel::optim::Optimizer (see optimizer.h): groups, zero_grad, the state dict in
// safetensors form, and the helpers the update rules share.
#include "optim/optimizer.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"
#include "core/shape.h"

namespace bigmodel::optim {
namespace {

// Shortest text that reads back as the same double ("%.17g" always round-trips).
std::string format_number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

bool parse_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno != ERANGE;
}

bool parse_index(const std::string& s, int64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

const ParamState& empty_state() {
  static const ParamState empty;
  return empty;
}

}  // namespace

double ParamGroup::get(const std::string& name) const {
  auto it = options.find(name);
  BM_CHECK_VALUE(it != options.end(), "optim", "parameter group has no option '", name, "'");
  return it->second;
}

void Optimizer::add_initial_groups(std::vector<ParamGroup> groups) {
  check_options(defaults_);
  BM_CHECK_VALUE(!groups.empty(), name_, "optimizer got an empty parameter list");
  for (ParamGroup& g : groups) add_param_group(std::move(g));
}

void Optimizer::add_param_group(ParamGroup group) {
  const std::string& op = name_;
  BM_CHECK_VALUE(!group.params.empty(), op, "optimizer got an empty parameter list");
  std::set<const TensorImpl*> seen;
  for (const ParamGroup& g : groups_)
    for (const Tensor& p : g.params) seen.insert(p.impl());
  std::set<const TensorImpl*> own;
  for (size_t i = 0; i < group.params.size(); ++i) {
    const Tensor& p = group.params[i];
    BM_CHECK_VALUE(p.defined(), op, "parameter ", i, " is undefined");
    BM_CHECK_VALUE(p.requires_grad(), op, "parameter ", i, " does not require grad");
    BM_CHECK_VALUE(p.is_leaf(), op, "can't optimize a non-leaf tensor (parameter ", i, ")");
    BM_CHECK_VALUE(own.insert(p.impl()).second, op, "optimizer contains a parameter group with duplicate parameters");
    BM_CHECK_VALUE(!seen.count(p.impl()), op, "some parameters appear in more than one parameter group");
  }
  for (const auto& [key, value] : defaults_) group.options.emplace(key, value);  // keeps overrides
  check_options(group.options);
  groups_.push_back(std::move(group));
}

std::vector<Tensor> Optimizer::params() const {
  std::vector<Tensor> out;
  for (const ParamGroup& g : groups_) out.insert(out.end(), g.params.begin(), g.params.end());
  return out;
}

const ParamState& Optimizer::state(const Tensor& param) const {
  if (!param.defined()) return empty_state();
  auto it = state_.find(param.impl());
  return it == state_.end() ? empty_state() : it->second;
}

void Optimizer::set_lr(double lr) {
  BM_CHECK_VALUE(lr >= 0.0, name_, "invalid learning rate: ", lr);
  for (ParamGroup& g : groups_) g.set_lr(lr);
}

void Optimizer::step() {
  NoGradGuard no_grad;
  for (ParamGroup& g : groups_) update_group(g);
}

void Optimizer::zero_grad(bool set_to_none) {
  for (ParamGroup& g : groups_) {
    for (Tensor& p : g.params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      if (set_to_none) {
        p.set_grad(Tensor());
      } else {
        NoGradGuard no_grad;
        zero_(grad);
      }
    }
  }
}

OptimizerStateDict Optimizer::state_dict() const {
  OptimizerStateDict sd;
  sd.metadata["optimizer"] = name_;
  sd.metadata["param_groups"] = std::to_string(groups_.size());
  int64_t index = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    std::string indices;
    for (const Tensor& p : groups_[g].params) {
      if (!indices.empty()) indices += ",";
      indices += std::to_string(index);
      for (const auto& [name, t] : state(p)) sd.tensors.emplace_back("state." + std::to_string(index) + "." + name, t);
      ++index;
    }
    sd.metadata[prefix + "params"] = indices;
    for (const auto& [key, value] : groups_[g].options) sd.metadata[prefix + key] = format_number(value);
  }
  return sd;
}

void Optimizer::load_state_dict(const OptimizerStateDict& sd) {
  const std::string& op = name_;
  auto meta = [&](const std::string& key) -> const std::string& {
    auto it = sd.metadata.find(key);
    BM_CHECK_VALUE(it != sd.metadata.end(), op, "state dict has no '", key, "' entry");
    return it->second;
  };
  BM_CHECK_VALUE(meta("optimizer") == name_, op, "state dict is for a ", meta("optimizer"), " optimizer, not ", name_);
  int64_t n_groups = 0;
  BM_CHECK_VALUE(parse_index(meta("param_groups"), n_groups), op, "bad param_groups entry '", meta("param_groups"), "'");
  BM_CHECK_VALUE(n_groups == static_cast<int64_t>(groups_.size()), op, "loaded state dict has ", n_groups,
                 " parameter groups, the optimizer has ", groups_.size());

  // Saved index -> own parameter, group by group, position by position (as PyTorch maps them).
  const int64_t n_params = static_cast<int64_t>(params().size());
  std::map<int64_t, Tensor> id_map;
  std::vector<Options> new_options(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    const std::string& list = meta(prefix + "params");
    std::vector<std::string> items = list.empty() ? std::vector<std::string>{} : split(list, ',');
    BM_CHECK_VALUE(items.size() == groups_[g].params.size(), op, "loaded state dict has a group (", g, ") of ",
                   items.size(), " parameters where the optimizer's group has ", groups_[g].params.size());
    for (size_t i = 0; i < items.size(); ++i) {
      int64_t idx = 0;
      BM_CHECK_VALUE(parse_index(items[i], idx) && idx < n_params, op, "group ", g, " names parameter index '",
                     items[i], "', which does not exist");
      BM_CHECK_VALUE(id_map.emplace(idx, groups_[g].params[i]).second, op, "parameter index ", idx,
                     " appears twice in the state dict");
    }
    for (const auto& [key, text] : sd.metadata) {
      if (key.compare(0, prefix.size(), prefix) != 0 || key == prefix + "params") continue;
      double v = 0.0;
      BM_CHECK_VALUE(parse_number(text, v), op, "option ", key, " is not a number: '", text, "'");
      new_options[g][key.substr(prefix.size())] = v;
    }
    for (const auto& [key, value] : defaults_) {
      (void)value;
      if (key == "master_weights" && !new_options[g].count(key))  // an option added later: keep the group's
        new_options[g][key] = groups_[g].has(key) ? groups_[g].get(key) : 0.0;
      BM_CHECK_VALUE(new_options[g].count(key), op, "loaded state dict's group ", g, " lacks option '", key, "'");
    }
    check_options(new_options[g]);
  }

  std::map<const TensorImpl*, ParamState> new_state;
  for (const auto& [name, value] : sd.tensors) {
    std::vector<std::string> parts = split(name, '.');
    int64_t idx = 0;
    BM_CHECK_VALUE(parts.size() == 3 && parts[0] == "state" && parse_index(parts[1], idx) && !parts[2].empty(), op,
                   "unexpected state dict entry '", name, "' (expected state.<index>.<name>)");
    auto it = id_map.find(idx);
    BM_CHECK_VALUE(it != id_map.end(), op, "loaded state refers to parameter index ", idx, ", which does not exist");
    const Tensor& p = it->second;
    BM_CHECK_VALUE(value.defined(), op, "state entry ", name, " is undefined");
    if (parts[2] != "step") {
      BM_CHECK_VALUE(value.sizes() == p.sizes(), op, "state entry ", name, " has shape ", shape_str(value.sizes()),
                     " but its parameter has shape ", shape_str(p.sizes()));
    }
    NoGradGuard no_grad;
    Tensor v = value.detach();
    if (parts[2] == "master_param") v = to(v, p.device(), DType::Float32);
    else if (parts[2] != "step" && is_floating(v.dtype())) v = to(v, p.device(), state_dtype(p));
    new_state[p.impl()][parts[2]] = clone(v);
  }
  // Everything is checked: commit.
  state_ = std::move(new_state);
  for (size_t g = 0; g < groups_.size(); ++g) groups_[g].options = std::move(new_options[g]);
}

void Optimizer::check_non_negative(const Options& o, const std::string& key, const char* label) const {
  auto it = o.find(key);
  BM_CHECK_VALUE(it != o.end(), name_, "missing option '", key, "'");
  BM_CHECK_VALUE(it->second >= 0.0, name_, "invalid ", label, " value: ", it->second);  // NaN fails too
}

void Optimizer::check_flag(const Options& o, const std::string& key) const {
  auto it = o.find(key);
  BM_CHECK_VALUE(it != o.end(), name_, "missing option '", key, "'");
  BM_CHECK_VALUE(it->second == 0.0 || it->second == 1.0, name_, "option '", key, "' is a flag (0 or 1), got ",
                 it->second);
}

Tensor Optimizer::effective_grad(const Tensor& param, bool maximize, double weight_decay) {
  Tensor g = param.grad().detach();
  if (maximize) g = neg(g);
  if (weight_decay != 0.0) g = add(g, param.detach(), Scalar(weight_decay));
  return g;
}

Tensor Optimizer::new_step() { return zeros({}, DType::Float32); }

namespace {
bool is_half(DType dt) { return dt == DType::Float16 || dt == DType::BFloat16; }
}  // namespace

void Optimizer::check_master_weights(const ParamGroup& group) const {
  if (!master_weights(group)) return;
  for (size_t i = 0; i < group.params.size(); ++i) {
    const Tensor& p = group.params[i];
    BM_CHECK_VALUE(is_half(p.dtype()), name_,
                   "master_weights = 1 keeps float32 master copies of float16/bfloat16 parameters, but parameter ", i,
                   " of the group is ", dtype_name(p.dtype()), " with shape ", shape_str(p.sizes()),
                   "; put it in a group with master_weights = 0");
  }
}

Tensor Optimizer::working_param(const Tensor& param, ParamState& state, bool master) {
  if (master) {
    auto it = state.find("master_param");
    if (it == state.end()) it = state.emplace("master_param", contiguous(clone(to(param.detach(), DType::Float32)))).first;
    return it->second;
  }
  if (is_half(param.dtype())) return to(param.detach(), DType::Float32);
  return param.detach();
}

void Optimizer::write_back(const Tensor& param, const Tensor& work) {
  if (!is_half(param.dtype())) return;
  Tensor p = param.detach();
  copy_(p, work);
}

Tensor Optimizer::working_grad(const Tensor& param, const Tensor& work, bool maximize, double weight_decay) {
  Tensor g = param.grad().detach();
  if (is_half(param.dtype())) g = to(g, DType::Float32);
  if (maximize) g = neg(g);
  if (weight_decay != 0.0) g = add(g, work, Scalar(weight_decay));
  return g;
}

int64_t Optimizer::advance_step(ParamState& state) {
  Tensor& step = state["step"];
  add_(step, Scalar(1.0));
  return static_cast<int64_t>(step.item().to_double());
}

}  // namespace bigmodel::optim
