// bigmodel::nn::Module, the C++ base class of every layer (mirrors python/bigmodel/nn/module.py):
// parameter / buffer / submodule registration, dotted-name traversal, train/eval, zero_grad,
// and state_dict save/load with the same keys as Python, so weights interchange.
#pragma once
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace bigmodel::nn {

// Called inside a catch block: rethrows the current bigmodel::Error as the same subclass with
// "[layer] " prepended (unless already there), so an op's error names the layer it came from.
[[noreturn]] void rethrow_in_layer(const std::string& layer);

// Runs fn(); a bigmodel::Error escaping it is rethrown by rethrow_in_layer(layer).
template <class Fn>
auto in_layer(const std::string& layer, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error&) {
    rethrow_in_layer(layer);
  }
}

// An ordered name -> tensor list (registration order, as Python's OrderedDict); the form
// bigmodel::safetensors::save takes and safetensors::load returns in Contents::tensors.
using StateDict = std::vector<std::pair<std::string, Tensor>>;

// What load_state_dict(..., strict=false) skipped.
struct LoadResult {
  std::vector<std::string> missing_keys;
  std::vector<std::string> unexpected_keys;
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;  // parameters are handles: a copy would silently share them
  Module& operator=(const Module&) = delete;

  // Layers map one tensor to one; the base class has no forward (NotImplementedError).
  virtual Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input) { return forward(input); }
  // The class name, used in error messages ("Linear", ...).
  virtual std::string type_name() const { return "Module"; }

  // Registration. Names are non-empty, contain no '.', and are unique across parameters,
  // buffers and children (ValueError otherwise). A parameter is a floating leaf tensor and is
  // marked requires_grad; an undefined tensor registers an absent entry (Python's None),
  // which traversal and state_dict skip. Each returns what it registered.
  Tensor register_parameter(const std::string& name, Tensor param);
  Tensor register_buffer(const std::string& name, Tensor buffer, bool persistent = true);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // Traversal, in registration order, depth first; a parameter shared by two modules
  // appears once (under its first name).
  StateDict named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  StateDict named_buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  std::vector<std::shared_ptr<Module>> children() const;

  // Sets the mode of this module and every descendant (dropout, batch norm read it).
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves every parameter and buffer to `device` and, when given, converts the floating ones to
  // `dtype` (like PyTorch's module->to()). In place: handles held elsewhere (an optimizer's
  // parameter list, a layer's own members) stay valid; gradients that no longer fit are dropped.
  Module& to(const Device& device);
  Module& to(DType dtype);
  Module& to(const Device& device, DType dtype);

  // Clears every parameter's gradient: drops it (default) or zeroes it in place.
  void zero_grad(bool set_to_none = true);

  // Parameters and persistent buffers under dotted names ("fc1.weight"), detached.
  StateDict state_dict() const;
  // Copies the given tensors into this module's parameters and buffers in place (dtype
  // converted, so the optimizer's handles stay valid). Every key and shape is checked
  // before anything is copied, so a failed load changes nothing. strict: missing or
  // unexpected keys are errors (ValueError listing them); shape mismatches always are.
  LoadResult load_state_dict(const StateDict& state, bool strict = true);

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name, const char* op) const;
  void collect(const std::string& prefix, bool recurse, bool buffers, bool persistent_only, bool dedup,
               StateDict& out, std::set<const void*>& seen) const;

  bool training_ = true;
  StateDict params_;
  StateDict buffers_;
  std::set<std::string> non_persistent_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

}  // namespace bigmodel::nn
