// bigmodel::optim::Optimizer, the C++ base of every optimizer (mirrors
// python/bigmodel/optim/optimizer.py): parameter groups with per-group options, per-parameter
// state, zero_grad, and a state dict that is a safetensors::Contents, so it saves as a file.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "core/tensor.h"

namespace bigmodel::optim {

// A group's options: named numbers ("lr", "momentum", "beta1", ...; flags are 0 or 1).
// Every optimizer has "lr". Schedules add their own keys ("initial_lr", "max_lr", ...) as
// they do to Python's group dicts; unknown keys are kept and saved, never interpreted.
using Options = std::map<std::string, double>;

// One parameter's state: named tensors ("step", "exp_avg", ...), Python's optimizer.state[p].
using ParamState = std::map<std::string, Tensor>;

// The optimizer's state in file form: tensors "state.<param index>.<name>" (indices count
// the parameters of every group in order, as PyTorch's state_dict does) and, in the
// metadata, "optimizer" (the type name), "param_groups" (their number),
// "param_groups.<g>.params" ("0,1,2") and "param_groups.<g>.<option>" (the number, exactly).
// safetensors::save(path, sd.tensors, sd.metadata) writes it; safetensors::load reads it back.
using OptimizerStateDict = safetensors::Contents;

struct ParamGroup {
  std::vector<Tensor> params;
  Options options;  // overrides when added; afterwards every option (defaults filled in)

  ParamGroup() = default;
  ParamGroup(std::vector<Tensor> params, Options options = {})  // NOLINT: {params, {...}} reads well
      : params(std::move(params)), options(std::move(options)) {}

  bool has(const std::string& name) const { return options.count(name) != 0; }
  // The option's value; ValueError naming it when the group has no such option.
  double get(const std::string& name) const;
  bool flag(const std::string& name) const { return get(name) != 0.0; }
  double lr() const { return get("lr"); }
  void set_lr(double lr) { options["lr"] = lr; }
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;  // it holds parameter handles and their state
  Optimizer& operator=(const Optimizer&) = delete;

  // "SGD", "Adam", ...: the prefix of every error message.
  const std::string& type_name() const { return name_; }

  // Adds a group; options it does not set take the defaults. Its parameters must be
  // defined leaf tensors that require grad, appear once, and belong to no other group;
  // its options are checked as the constructor checks them (ValueError "[Adam] ...").
  void add_param_group(ParamGroup group);
  // One update of every parameter that has a gradient, outside the graph.
  void step();
  // Clears the parameters' gradients: drops them (default) or zeroes them in place.
  void zero_grad(bool set_to_none = true);

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  const Options& defaults() const { return defaults_; }
  // Every group's parameters, in order (the indices the state dict uses).
  std::vector<Tensor> params() const;
  // The state of `param`: empty before its first update or for a tensor this optimizer does not hold.
  const ParamState& state(const Tensor& param) const;

  // Group 0's learning rate; set_lr sets every group's (for hand-written schedules).
  double lr() const { return groups_.at(0).lr(); }
  void set_lr(double lr);

  OptimizerStateDict state_dict() const;
  // Restores options and state from state_dict() output (of an optimizer of the same type
  // and the same group sizes). Everything is checked before anything changes: the type,
  // the group and parameter counts, every option (as the constructor checks them), every
  // state name and shape. Floating state is cast to state_dtype(parameter) on its device
  // ("master_param" stays float32); a group lacking master_weights (older dicts) keeps its own.
  void load_state_dict(const OptimizerStateDict& state_dict);

 protected:
  Optimizer(std::string name, Options defaults) : name_(std::move(name)), defaults_(std::move(defaults)) {}

  // Throws ValueError "[<name>] ..." when a group's options are invalid. Called for every
  // added group and every loaded state dict (the subclass constructor checks its defaults
  // when it adds its first group).
  virtual void check_options(const Options& options) const = 0;
  // One group's in-place update; grad mode is off.
  virtual void update_group(ParamGroup& group) = 0;

  // The state of a parameter, created empty on first use.
  ParamState& state_for(const Tensor& param) { return state_[param.impl()]; }
  // Adds the constructor's parameters as one group or the given groups (at least one).
  void add_initial_groups(std::vector<ParamGroup> groups);

  // Shared pieces of the update rules (as python/bigmodel/optim/_common.py).
  void check_non_negative(const Options& o, const std::string& key, const char* label) const;
  void check_flag(const Options& o, const std::string& key) const;
  // The gradient the update uses: -grad when maximizing, plus weight_decay * p (L2 form).
  static Tensor effective_grad(const Tensor& param, bool maximize, double weight_decay = 0.0);
  // The step counter is a float32 0-d CPU tensor, as PyTorch keeps it.
  static Tensor new_step();
  static int64_t advance_step(ParamState& state);

  // Mixed precision (SGD/Adam/AdamW, as python/bigmodel/optim/_common.py): the dtype a
  // parameter's floating state is kept in (those three: float32 for float16/bfloat16).
  virtual DType state_dtype(const Tensor& param) const { return param.dtype(); }
  // The group option master_weights = 1 keeps a float32 copy "master_param" of each
  // float16/bfloat16 parameter; ValueError naming the first parameter of another dtype.
  static bool master_weights(const ParamGroup& group) { return group.has("master_weights") && group.flag("master_weights"); }
  void check_master_weights(const ParamGroup& group) const;
  // The tensor an update runs on: the master copy (created from p when missing), a float32
  // copy of a half p (write_back rounds it into p), or p.detach() itself.
  static Tensor working_param(const Tensor& param, ParamState& state, bool master_weights);
  static void write_back(const Tensor& param, const Tensor& work);
  // effective_grad for the working copy: a half gradient widened to float32, L2 decay on `work`.
  static Tensor working_grad(const Tensor& param, const Tensor& work, bool maximize, double weight_decay = 0.0);

 private:
  std::string name_;
  Options defaults_;
  std::vector<ParamGroup> groups_;
  std::map<const TensorImpl*, ParamState> state_;  // keyed by parameter identity, as Python's
};

}  // namespace bigmodel::optim
