// The autograd graph and engine: recording nodes, saved-tensor version checks, gradient
// accumulation into leaves, hooks, and the backward pass (dependency counting, then
// nodes in reverse creation order).
#include "core/autograd.h"

#include <atomic>
#include <cctype>
#include <queue>
#include <unordered_map>

#include "core/dispatch.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"

namespace bigmodel {
namespace {

thread_local bool g_grad_enabled = true;
thread_local bool g_anomaly_enabled = false;
thread_local bool g_anomaly_check_forward = true;
std::atomic<AnomalyMode::ContextFn> g_anomaly_context{nullptr};
std::atomic<uint64_t> g_next_sequence_nr{0};
// The node whose backward this thread is running (for saved outputs; see SavedTensor).
thread_local std::shared_ptr<Node> g_running_node;

struct RunningNodeGuard {
  explicit RunningNodeGuard(std::shared_ptr<Node> n) : prev(std::move(g_running_node)) { g_running_node = std::move(n); }
  ~RunningNodeGuard() { g_running_node = std::move(prev); }
  std::shared_ptr<Node> prev;
};

std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
  AutogradMeta& meta = leaf.impl()->meta();
  if (auto acc = meta.grad_accumulator.lock()) return acc;
  auto acc = std::make_shared<AccumulateGrad>(leaf.impl_ptr());
  acc->outputs.push_back({leaf.sizes(), leaf.dtype(), leaf.device()});
  meta.grad_accumulator = acc;
  return acc;
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return Edge{};
  if (t.is_leaf()) return Edge{grad_accumulator(t), 0};
  return Edge{t.grad_fn(), t.output_nr()};
}

}  // namespace

Node::Node() : sequence_nr(g_next_sequence_nr++) {}

std::string node_display_name(const Node& node) {
  std::string n = node.name();
  if (n == "AccumulateGrad") return n;
  std::string out;
  bool up = true;
  for (char c : n) {  // "log_softmax" -> "LogSoftmax"
    if (c == '_') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    up = false;
  }
  return out + "Backward0";
}

bool GradMode::is_enabled() { return g_grad_enabled; }
void GradMode::set_enabled(bool enabled) { g_grad_enabled = enabled; }

bool AnomalyMode::is_enabled() { return g_anomaly_enabled; }
bool AnomalyMode::check_forward() { return g_anomaly_check_forward; }
void AnomalyMode::set_enabled(bool enabled, bool check_forward) {
  g_anomaly_enabled = enabled;
  g_anomaly_check_forward = check_forward;
}
void AnomalyMode::set_context_callback(ContextFn fn) { g_anomaly_context.store(fn); }

namespace {

// "nan" or "inf" when a floating tensor holds such values, else "" (integers are finite).
const char* nonfinite_kind(const Tensor& t) {
  if (!t.defined() || !is_floating(t.dtype()) || t.numel() == 0) return "";
  NoGradGuard no_grad;
  if (all(isfinite(t)).item().to<bool>()) return "";
  return any(isnan(t)).item().to<bool>() ? "nan" : "inf";
}

std::string creation_note(const Node& node) {
  if (node.creation_context.empty())
    return "\n(no creation traceback: the op was recorded outside anomaly mode or from C++)";
  return "\nThe forward op was created at (most recent call last):\n" + node.creation_context;
}

// Forward check of a freshly recorded op's outputs (anomaly mode with check_forward).
void check_forward_outputs(const Node& node, const std::vector<Tensor>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const char* kind = nonfinite_kind(outputs[i]);
    const std::string name = node_display_name(node);
    BM_CHECK_RUNTIME(*kind == 0, name, "anomaly detected: Function '", name, "' produced ", kind,
                     " values in its forward output ", i, creation_note(node));
  }
}

// Backward check of the gradients one node returned (anomaly mode).
void check_backward_outputs(const Node& node, const std::vector<Tensor>& grads) {
  for (size_t i = 0; i < grads.size(); ++i) {
    const char* kind = nonfinite_kind(grads[i]);
    const std::string name = node_display_name(node);
    BM_CHECK_RUNTIME(*kind == 0, name, "anomaly detected: Function '", name, "' returned ", kind,
                     " values in its gradient for input ", i, creation_note(node));
  }
}

}  // namespace

std::vector<Tensor> FunctionNode::apply(std::vector<Tensor>&& grads) {
  BM_CHECK_RUNTIME(fn_ != nullptr, name_,
                   "trying to backward through the graph a second time (or directly access "
                   "saved tensors after they have already been freed); pass retain_graph=True "
                   "to the first backward call");
  for (size_t i = 0; i < grads.size(); ++i) {  // ops' formulas expect every output's grad
    if (!grads[i].defined()) grads[i] = zeros(outputs[i].sizes, outputs[i].dtype, outputs[i].device);
  }
  return fn_(grads);
}

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>&& grads) {
  Tensor leaf(leaf_);
  Tensor g = grads[0];
  AutogradMeta& meta = leaf_->meta();
  for (auto& hook : meta.hooks) {
    Tensor replaced = hook(g);
    if (replaced.defined()) g = replaced;
  }
  // Python threads whose backward passes share this leaf must not interleave here: the
  // kernels below keep the GIL, so the read of .grad and its update are one step for them.
  {
    KernelHookPause keep_gil;
    Tensor old = leaf.grad();
    if (GradMode::is_enabled()) {
      // create_graph: .grad keeps its history (out of place, so earlier graphs stay valid).
      meta.grad = (old.defined() ? add(old, g) : (g.dtype() == leaf.dtype() ? clone(g) : to(g, leaf.dtype())))
                      .impl_ptr();
    } else if (old.defined()) {
      add_(old, g);  // accumulate in place, as PyTorch does for an existing .grad
    } else {
      // A fresh gradient must not alias anything the graph may still use.
      meta.grad = (g.dtype() == leaf.dtype() ? clone(g) : to(g, leaf.dtype())).impl_ptr();
    }
  }
  for (auto& hook : meta.post_accumulate_hooks) hook(leaf);
  return {};
}

SavedTensor::SavedTensor(const Tensor& t, bool is_output, uint32_t output_nr)
    : output_nr_(output_nr), is_output_(is_output) {
  if (!t.defined()) return;
  data_ = t.detach();
  // detach() links the alias to `t` as its base; a saved output would then hold its own
  // grad_fn alive (node -> saved alias -> t -> grad_fn -> node), leaking every graph that is
  // never backpropagated (found by LeakSanitizer). The storage's version counter is all
  // unpack() needs, so the saved alias keeps no base.
  data_.impl()->base.reset();
  version_ = t.version();
  if (!is_output_ && t.requires_grad()) {
    if (t.is_leaf()) {
      leaf_ = t.impl_ptr();
    } else {
      grad_fn_ = t.grad_fn();
      output_nr_ = t.output_nr();
    }
  }
}

Tensor SavedTensor::unpack(const char* op) const {
  if (!data_.defined()) return data_;
  BM_CHECK_RUNTIME(data_.version() == version_, op,
                   "one of the variables needed for gradient computation has been modified by "
                   "an inplace operation: a tensor of shape ", shape_str(data_.sizes()),
                   " is at version ", data_.version(), "; expected version ", version_);
  // A backward pass that builds a graph (create_graph) needs the saved value connected to
  // its history, so that second derivatives see how it depends on the inputs.
  if (GradMode::is_enabled()) {
    if (leaf_) return Tensor(leaf_);
    // A saved output belongs to the node now running backward (only a backward pass
    // unpacks it, so that node is the one that saved it).
    std::shared_ptr<Node> fn = is_output_ ? g_running_node : grad_fn_;
    if (fn) {
      Tensor alias = Tensor::make_view(data_, data_.sizes(), data_.strides(), data_.offset());
      alias.impl()->base.reset();
      AutogradMeta& meta = alias.impl()->meta();
      meta.requires_grad = true;
      meta.grad_fn = fn;
      meta.output_nr = output_nr_;
      return alias;
    }
  }
  return data_;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record_function(const char* name, const std::vector<Tensor>& inputs,
                     const std::vector<Tensor>& outputs, BackwardFn fn, SecondOrder second_order) {
  auto node = std::make_shared<FunctionNode>(name, std::move(fn));
  node->second_order = second_order;
  node->next_edges.reserve(inputs.size());
  for (const Tensor& t : inputs) node->next_edges.push_back(gradient_edge(t));
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    node->outputs.push_back({out.sizes(), out.dtype(), out.device()});
    if (!is_floating(out.dtype())) continue;  // integer outputs (indices) carry no gradient
    AutogradMeta& meta = out.impl()->meta();
    meta.requires_grad = true;
    meta.grad_fn = node;
    meta.output_nr = static_cast<uint32_t>(i);
  }
  if (g_anomaly_enabled) {  // the only cost when the mode is off
    if (AnomalyMode::ContextFn ctx = g_anomaly_context.load()) node->creation_context = ctx();
    if (g_anomaly_check_forward) check_forward_outputs(*node, outputs);
  }
}

namespace {

// Writing through a view would leave the base (and its other views) with a stale
// history, so it is refused. A view nobody else aliases (an op's reshaped result) is
// just a tensor: it forgets its base and goes on.
void ensure_history_rebasable(const Tensor& self, const char* name) {
  auto& base = self.impl()->base;
  if (base && base.use_count() == 1) base.reset();
  BM_CHECK_RUNTIME(!base, name,
                   "in-place operations that need gradients are not supported on views of other "
                   "tensors (the base would miss the history); use the out-of-place form");
}

}  // namespace

void check_inplace(const Tensor& self, const char* op, const std::vector<Tensor>& sources) {
  if (GradMode::is_enabled()) {
    if (self.requires_grad()) {
      BM_CHECK_RUNTIME(!self.is_leaf(), op,
                       "a leaf tensor that requires grad is being used in an in-place operation");
    }
    bool grad = self.requires_grad();
    for (const Tensor& t : sources) grad = grad || (t.defined() && t.requires_grad());
    if (grad) ensure_history_rebasable(self, op);
  }
  self.bump_version();
}

void rebase_history(const Tensor& self, const char* name, const std::vector<Tensor>& inputs,
                    BackwardFn fn) {
  ensure_history_rebasable(self, name);
  record_function(name, inputs, {self}, std::move(fn));
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.sizes() == shape) return grad;
  const int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < grad.dim(); ++d) {
    if (d < lead || (shape[d - lead] == 1 && grad.size(d) != 1)) dims.push_back(d);
  }
  Tensor r = dims.empty() ? grad : sum(grad, dims, /*keepdim=*/true);
  return reshape(r, shape);
}

namespace {

// What grad_of() wants back: the gradient arriving at each (node, input_nr) target.
struct Capture {
  std::vector<Edge> targets;
  std::vector<Tensor> grads;
};

void execute_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                      bool retain_graph, bool create_graph, Capture* capture);

// Under create_graph, the gradients a first-order-only node produced get a history that
// raises when a second derivative reaches it (the forward inputs and the incoming
// gradients are its edges), so they never pass silently for constants.
void guard_second_order(const Node& node, std::vector<Edge> edges, std::vector<Tensor>& out) {
  for (const Edge& e : node.next_edges)
    if (e.fn) edges.push_back(e);
  if (edges.empty()) return;
  const std::string name = node.name();
  auto guard = std::make_shared<FunctionNode>(name + "_backward", [name](const std::vector<Tensor>&) -> std::vector<Tensor> {
    throw NotImplementedError(str_cat("[", name, "] a second derivative (create_graph=True) through the backward of ",
                                      name, " is not supported: that backward runs a kernel that is not itself "
                                      "differentiable. The first derivatives are right; differentiating them again "
                                      "through ", name, " is what is missing"));
  });
  guard->next_edges = std::move(edges);
  for (size_t i = 0; i < out.size(); ++i) {
    const Tensor& o = out[i];
    guard->outputs.push_back(o.defined() ? OutputMeta{o.sizes(), o.dtype(), o.device()} : OutputMeta{{}, DType::Float32, Device()});
    if (!o.defined() || !is_floating(o.dtype())) continue;
    Tensor alias = o.detach();
    alias.impl()->base.reset();
    AutogradMeta& meta = alias.impl()->meta();
    meta.requires_grad = true;
    meta.grad_fn = guard;
    meta.output_nr = static_cast<uint32_t>(i);
    out[i] = alias;
  }
}

}  // namespace

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                  bool retain_graph, bool create_graph) {
  execute_backward(roots, grads, retain_graph, create_graph, nullptr);
}

std::vector<Tensor> grad_of(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                            const std::vector<Tensor>& inputs, bool retain_graph, bool create_graph) {
  Capture capture;
  for (const Tensor& t : inputs) {
    BM_CHECK_RUNTIME(t.defined() && t.requires_grad(), "grad",
                     "one of the differentiated tensors does not require grad");
    capture.targets.push_back(gradient_edge(t));
  }
  capture.grads.resize(inputs.size());
  execute_backward(roots, grads, retain_graph, create_graph, &capture);
  return capture.grads;
}

namespace {

void execute_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                      bool retain_graph, bool create_graph, Capture* capture) {
  // Backward formulas are not themselves recorded, unless a graph of the backward is wanted.
  GradModeGuard grad_mode(create_graph);
  const bool anomaly = AnomalyMode::is_enabled();
  // Seed: the root tensors' edges.
  struct Pending {
    std::vector<Tensor> grads;
  };
  std::unordered_map<Node*, int> deps;
  std::unordered_map<Node*, Pending> buffers;
  std::vector<std::shared_ptr<Node>> stack;
  std::vector<Edge> root_edges;
  for (const Tensor& r : roots) root_edges.push_back(gradient_edge(r));

  // Count dependencies (how many edges point at each node) with an explicit DFS.
  std::unordered_map<Node*, bool> seen;
  for (const Edge& e : root_edges) {
    if (e.valid() && !seen[e.fn.get()]) {
      seen[e.fn.get()] = true;
      stack.push_back(e.fn);
    }
  }
  while (!stack.empty()) {
    auto node = stack.back();
    stack.pop_back();
    for (const Edge& e : node->next_edges) {
      if (!e.valid()) continue;
      ++deps[e.fn.get()];
      if (!seen[e.fn.get()]) {
        seen[e.fn.get()] = true;
        stack.push_back(e.fn);
      }
    }
  }

  auto add_grad = [&](const Edge& e, const Tensor& g) {
    Pending& p = buffers[e.fn.get()];
    if (p.grads.empty()) p.grads.resize(e.fn->outputs.size());
    Tensor& slot = p.grads[e.input_nr];
    slot = slot.defined() ? add(slot, g) : g;
  };
  auto cmp = [](const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) {
    return a->sequence_nr < b->sequence_nr;
  };
  std::priority_queue<std::shared_ptr<Node>, std::vector<std::shared_ptr<Node>>, decltype(cmp)> ready(cmp);
  for (size_t i = 0; i < root_edges.size(); ++i) {
    if (!root_edges[i].valid()) continue;
    add_grad(root_edges[i], grads[i]);
  }
  for (const Edge& e : root_edges) {
    if (e.valid() && deps[e.fn.get()] == 0) {
      deps[e.fn.get()] = -1;  // queued
      ready.push(e.fn);
    }
  }
  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.top();
    ready.pop();
    std::vector<Tensor> in = std::move(buffers[node.get()].grads);
    buffers.erase(node.get());
    in.resize(node->outputs.size());
    bool any = false;
    for (const Tensor& g : in) any = any || g.defined();
    if (!any) {  // nothing flowed into this node: its inputs get nothing either
      for (const Edge& e : node->next_edges)
        if (e.valid() && --deps[e.fn.get()] == 0) ready.push(e.fn);
      continue;
    }
    for (auto* hooks : {&node->pre_hooks, &node->retain_grad_hooks}) {
      if (capture && hooks == &node->retain_grad_hooks) continue;  // grad() fills no .grad
      for (auto& [out_nr, hook] : *hooks) {
        if (out_nr < in.size() && in[out_nr].defined()) {
          Tensor replaced = hook(in[out_nr]);
          if (replaced.defined()) in[out_nr] = replaced;
        }
      }
    }
    if (capture) {
      for (size_t k = 0; k < capture->targets.size(); ++k) {
        const Edge& t = capture->targets[k];
        if (t.fn.get() == node.get() && t.input_nr < in.size() && in[t.input_nr].defined())
          capture->grads[k] = in[t.input_nr];
      }
      // grad() accumulates into no leaf: the leaves' nodes are not run.
      if (dynamic_cast<AccumulateGrad*>(node.get()) != nullptr) continue;
    }
    std::vector<Tensor> out;
    std::vector<Edge> grad_edges;  // the incoming gradients with history (create_graph only)
    if (create_graph)
      for (const Tensor& g : in)
        if (g.defined() && g.requires_grad()) grad_edges.push_back(gradient_edge(g));
    const bool record = create_graph && (node->second_order == SecondOrder::Full ||
                                         (node->second_order == SecondOrder::ConstantGrad && grad_edges.empty()));
    {
      GradModeGuard mode(record);
      RunningNodeGuard running(record ? node : nullptr);
      out = node->apply(std::move(in));
    }
    if (create_graph && !record) guard_second_order(*node, std::move(grad_edges), out);
    if (!retain_graph) node->release();
    if (anomaly) check_backward_outputs(*node, out);
    for (size_t i = 0; i < node->next_edges.size() && i < out.size(); ++i) {
      const Edge& e = node->next_edges[i];
      if (!e.valid()) continue;
      if (out[i].defined()) {
        const OutputMeta& m = e.fn->outputs[e.input_nr];
        BM_CHECK_RUNTIME(out[i].sizes() == m.sizes, node->name(),
                         "backward produced a gradient of shape ", shape_str(out[i].sizes()),
                         " for an input of shape ", shape_str(m.sizes));
        add_grad(e, out[i]);
      }
      if (--deps[e.fn.get()] == 0) ready.push(e.fn);
    }
  }
}

}  // namespace
}  // namespace bigmodel
