// bigmodel::nn::Module: registration, traversal, modes and state_dict (see module.h).
#include "nn/module.h"

#include <map>
#include <optional>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/creation.h"
#include "core/ops/view.h"
#include "core/shape.h"

namespace bigmodel::nn {

void rethrow_in_layer(const std::string& layer) {
  const std::string tag = "[" + layer + "]";
  auto msg = [&](const Error& e) {
    const std::string what = e.what();
    return what.compare(0, tag.size(), tag) == 0 ? what : tag + " " + what;
  };
  // Most derived first, so the rethrown exception keeps its exact type.
  try {
    throw;
  } catch (const OutOfMemoryError& e) {
    throw OutOfMemoryError(msg(e));
  } catch (const ShapeError& e) {
    throw ShapeError(msg(e));
  } catch (const ValueError& e) {
    throw ValueError(msg(e));
  } catch (const DTypeError& e) {
    throw DTypeError(msg(e));
  } catch (const IndexError& e) {
    throw IndexError(msg(e));
  } catch (const DeviceError& e) {
    throw DeviceError(msg(e));
  } catch (const NotImplementedError& e) {
    throw NotImplementedError(msg(e));
  } catch (const Error& e) {
    throw Error(msg(e));
  }
}

Tensor Module::forward(const Tensor&) {
  throw NotImplementedError("[Module] " + type_name() + " has no forward()");
}

void Module::check_new_name(const std::string& name, const char* op) const {
  BM_CHECK_VALUE(!name.empty() && name.find('.') == std::string::npos, op, "invalid name '", name,
                 "' (must be non-empty and contain no '.')");
  auto taken = [&](const auto& list) {
    for (const auto& kv : list)
      if (kv.first == name) return true;
    return false;
  };
  BM_CHECK_VALUE(!taken(params_) && !taken(buffers_) && !taken(children_), op, "attribute '", name,
                 "' already exists in ", type_name());
}

Tensor Module::register_parameter(const std::string& name, Tensor param) {
  check_new_name(name, "register_parameter");
  if (param.defined()) {
    BM_CHECK_DTYPE(is_floating(param.dtype()), "register_parameter", "parameter '", name,
                   "' must have a floating dtype, got ", dtype_name(param.dtype()));
    BM_CHECK_VALUE(param.is_leaf(), "register_parameter", "parameter '", name,
                   "' must be a leaf tensor (detach it first)");
    param.set_requires_grad(true);
  }
  params_.emplace_back(name, param);
  return param;
}

Tensor Module::register_buffer(const std::string& name, Tensor buffer, bool persistent) {
  check_new_name(name, "register_buffer");
  buffers_.emplace_back(name, buffer);
  if (!persistent) non_persistent_.insert(name);
  return buffer;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "register_module");
  BM_CHECK_VALUE(module != nullptr, "register_module", "module '", name, "' is null");
  BM_CHECK_VALUE(module.get() != this, "register_module", "a module cannot be its own child ('", name, "')");
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, bool recurse, bool buffers, bool persistent_only, bool dedup,
                     StateDict& out, std::set<const void*>& seen) const {
  const std::string base = prefix.empty() ? "" : prefix + ".";
  for (const auto& [name, t] : buffers ? buffers_ : params_) {
    if (!t.defined()) continue;
    if (buffers && persistent_only && non_persistent_.count(name)) continue;
    if (dedup && !seen.insert(t.impl()).second) continue;
    out.emplace_back(base + name, t);
  }
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect(base + name, true, buffers, persistent_only, dedup, out, seen);
}

StateDict Module::named_parameters(bool recurse) const {
  StateDict out;
  std::set<const void*> seen;
  collect("", recurse, false, false, true, out, seen);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& kv : named_parameters(recurse)) out.push_back(kv.second);
  return out;
}

StateDict Module::named_buffers(bool recurse) const {
  StateDict out;
  std::set<const void*> seen;
  collect("", recurse, true, false, true, out, seen);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const { return children_; }

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& kv : children_) out.push_back(kv.second);
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& kv : children_) kv.second->train(on);
}

namespace {
// Converts each tensor of `dict` in place (Tensor::set_data); dtype applies to floating ones.
void convert_in_place(const StateDict& dict, const Device& device, std::optional<DType> dtype) {
  NoGradGuard no_grad;
  for (const auto& kv : dict) {
    Tensor t = kv.second;
    const DType want = dtype && is_floating(t.dtype()) ? *dtype : t.dtype();
    if (t.device() == device && t.dtype() == want) continue;
    t.set_data(bigmodel::to(t.detach(), device, want));
  }
}
}  // namespace

Module& Module::to(const Device& device, DType dtype) {
  BM_CHECK_DTYPE(is_floating(dtype), "Module.to", "expected a floating dtype, got ", dtype_name(dtype),
                 " (parameters are floating)");
  convert_in_place(named_parameters(), device, dtype);
  convert_in_place(named_buffers(), device, dtype);
  return *this;
}

Module& Module::to(const Device& device) {
  convert_in_place(named_parameters(), device, std::nullopt);
  convert_in_place(named_buffers(), device, std::nullopt);
  return *this;
}

Module& Module::to(DType dtype) {
  // Each tensor stays on its own device.
  BM_CHECK_DTYPE(is_floating(dtype), "Module.to", "expected a floating dtype, got ", dtype_name(dtype),
                 " (parameters are floating)");
  for (const StateDict& dict : {named_parameters(), named_buffers()})
    for (const auto& kv : dict) convert_in_place({kv}, kv.second.device(), dtype);
  return *this;
}

void Module::zero_grad(bool set_to_none) {
  for (Tensor& p : parameters()) {
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

// Parameters then buffers per module, module by module (Python's order), not deduplicated:
// a shared tensor is saved under every name, as PyTorch does.
StateDict Module::state_dict() const {
  StateDict own;
  std::set<const void*> seen;
  std::vector<std::pair<std::string, const Module*>> mods{{"", this}};
  for (size_t i = 0; i < mods.size(); ++i) {  // preorder, like named_modules
    const auto [prefix, m] = mods[i];
    m->collect(prefix, false, false, false, false, own, seen);
    m->collect(prefix, false, true, true, false, own, seen);
    std::vector<std::pair<std::string, const Module*>> kids;
    for (const auto& [name, child] : m->children_) kids.emplace_back(prefix.empty() ? name : prefix + "." + name, child.get());
    mods.insert(mods.begin() + static_cast<std::ptrdiff_t>(i) + 1, kids.begin(), kids.end());
  }
  for (auto& kv : own) kv.second = kv.second.detach();
  return own;
}

LoadResult Module::load_state_dict(const StateDict& state, bool strict) {
  const char* op = "load_state_dict";
  StateDict own = state_dict();
  std::map<std::string, const Tensor*> given;
  for (const auto& kv : state) given[kv.first] = &kv.second;
  std::set<std::string> own_names;
  for (const auto& kv : own) own_names.insert(kv.first);

  LoadResult result;
  for (const auto& kv : own)
    if (!given.count(kv.first)) result.missing_keys.push_back(kv.first);
  for (const auto& kv : state)
    if (!own_names.count(kv.first)) result.unexpected_keys.push_back(kv.first);

  std::vector<std::string> errors;
  auto quoted = [](const std::vector<std::string>& keys) {
    std::string s;
    for (const auto& k : keys) s += (s.empty() ? "\"" : ", \"") + k + "\"";
    return s;
  };
  if (strict && !result.missing_keys.empty())
    errors.push_back("Missing key(s) in state_dict: " + quoted(result.missing_keys) + ".");
  if (strict && !result.unexpected_keys.empty())
    errors.push_back("Unexpected key(s) in state_dict: " + quoted(result.unexpected_keys) + ".");
  std::vector<std::pair<Tensor, Tensor>> copies;
  for (auto& [name, dst] : own) {
    auto it = given.find(name);
    if (it == given.end()) continue;
    const Tensor& src = *it->second;
    if (!src.defined()) {
      errors.push_back("While copying \"" + name + "\": the given tensor is undefined.");
    } else if (src.sizes() != dst.sizes()) {
      errors.push_back("size mismatch for " + name + ": copying a param with shape " + shape_str(src.sizes()) +
                       " from checkpoint, the shape in current model is " + shape_str(dst.sizes()) + ".");
    } else {
      copies.emplace_back(dst, src);
    }
  }
  if (!errors.empty()) {
    std::string msg = "Error(s) in loading state_dict for " + type_name() + ":";
    for (const auto& e : errors) msg += "\n\t" + e;
    BM_CHECK_VALUE(false, op, msg);
  }
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) copy_(dst, src.detach());
  return result;
}

}  // namespace bigmodel::nn
