// Reverse-mode autograd: graph nodes, saved tensors with version checks, grad mode, the
// helper every op front end uses to record its backward, and the engine that runs it.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace bigmodel {

struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
  bool valid() const { return fn != nullptr; }
};

// The shape, dtype and device of one forward output, to make zero gradients when a
// node receives none for some output.
struct OutputMeta {
  Shape sizes;
  DType dtype;
  Device device;
};

// How far a node's backward can be differentiated again (create_graph=True).
enum class SecondOrder : uint8_t {
  None,          // its backward runs a kernel that is not itself differentiable
  ConstantGrad,  // differentiable in the saved inputs, but drops the incoming gradient's history:
                 // right only when that gradient has none (the node is at the root, as a loss is)
  Full,          // written with differentiable ops; tested against finite differences
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node() = default;
  // grads[i] is the gradient of forward output i (undefined if none flowed);
  // returns one gradient per forward input, aligned with next_edges.
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grads) = 0;
  virtual std::string name() const = 0;
  virtual void release() {}  // drops saved tensors once backward has run

  std::vector<Edge> next_edges;
  std::vector<OutputMeta> outputs;
  uint64_t sequence_nr;  // later nodes run first when both are ready
  // Hooks on the gradient of one output (register_hook / retain_grad on non-leaves).
  std::vector<std::pair<uint32_t, GradHook>> pre_hooks;
  // retain_grad() hooks run after pre_hooks, so .grad sees the hooked gradient (as in PyTorch).
  std::vector<std::pair<uint32_t, GradHook>> retain_grad_hooks;
  // Where the forward op was created (a Python traceback), captured only in anomaly mode.
  std::string creation_context;
  // Whether backward may run with grad mode on under create_graph, recording its formula so
  // that it can be differentiated again (see SecondOrder). A node that may not runs as in a
  // plain backward, and its gradients get a history that raises NotImplementedError when a
  // second derivative reaches it, instead of passing for constants.
  SecondOrder second_order = SecondOrder::Full;
};

using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grads)>;

// A node whose backward is a closure written with ops (so it runs on every device).
class FunctionNode : public Node {
 public:
  FunctionNode(std::string name, BackwardFn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  std::string name() const override { return name_; }
  void release() override { fn_ = nullptr; }

 private:
  std::string name_;
  BackwardFn fn_;
};

// Accumulates the incoming gradient into a leaf's .grad and runs its hooks.
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {}
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  std::string name() const override { return "AccumulateGrad"; }

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

// A tensor kept for backward. Unpacking checks that no in-place op changed it since.
class SavedTensor {
 public:
  SavedTensor() = default;
  // is_output: t is an output of the op saving it (its history is the node being recorded,
  // which a backward that builds a graph finds as the node it is running).
  explicit SavedTensor(const Tensor& t, bool is_output = false, uint32_t output_nr = 0);
  Tensor unpack(const char* op) const;  // throws Error if modified in place
  bool defined() const { return data_.defined(); }

 private:
  Tensor data_;  // detached alias (no history, so no reference cycles)
  uint64_t version_ = 0;
  // Where the saved tensor's gradient goes, for backward passes that build a graph
  // (create_graph): its grad_fn and output number, or the leaf itself. Saved at
  // construction, when an op's own outputs have no history yet, so no cycle forms.
  std::shared_ptr<Node> grad_fn_;
  uint32_t output_nr_ = 0;
  std::shared_ptr<TensorImpl> leaf_;
  bool is_output_ = false;
};

// "SumBackward0" for a node named "sum", as PyTorch prints grad_fn.
std::string node_display_name(const Node& node);

// Grad mode: thread-local switch that turns graph recording on or off.
struct GradMode {
  static bool is_enabled();
  static void set_enabled(bool enabled);
};

class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) : prev_(GradMode::is_enabled()) { GradMode::set_enabled(enabled); }
  ~GradModeGuard() { GradMode::set_enabled(prev_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool prev_;
};

// Anomaly detection (debugging NaN/Inf): thread-local, off by default. While on, every
// recorded op checks its floating outputs for NaN/Inf and stores where it was created, and
// backward checks every gradient a node returns; either failure throws an Error naming the
// node ("DivBackward0") and its creation context. Off, it costs one thread-local load per op.
struct AnomalyMode {
  static bool is_enabled();
  static bool check_forward();  // also check forward outputs (on by default with the mode)
  static void set_enabled(bool enabled, bool check_forward = true);
  // A callback returning a description of the caller's context (Python registers one that
  // formats its stack); called at record time only while the mode is on. nullptr: none.
  using ContextFn = std::string (*)();
  static void set_context_callback(ContextFn fn);
};

// RAII: anomaly mode on (or off) for a scope, restoring the previous setting.
class DetectAnomalyGuard {
 public:
  explicit DetectAnomalyGuard(bool enabled = true, bool check_forward = true)
      : prev_(AnomalyMode::is_enabled()), prev_forward_(AnomalyMode::check_forward()) {
    AnomalyMode::set_enabled(enabled, check_forward);
  }
  ~DetectAnomalyGuard() { AnomalyMode::set_enabled(prev_, prev_forward_); }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool prev_, prev_forward_;
};

// True when grad mode is on and some input requires grad: the op must record a node.
bool needs_grad(const std::vector<Tensor>& inputs);
inline bool needs_grad(std::initializer_list<Tensor> inputs) {
  return needs_grad(std::vector<Tensor>(inputs));
}

// Records `fn` as the backward of an op with these inputs and outputs. Call only when
// needs_grad(inputs). Undefined inputs are allowed (they get no gradient).
// second_order: how far fn can be differentiated again; Full only where fn is written with
// differentiable ops and tests/python/test_double_backward.py checks it.
void record_function(const char* name, const std::vector<Tensor>& inputs,
                     const std::vector<Tensor>& outputs, BackwardFn fn,
                     SecondOrder second_order = SecondOrder::None);

// Called by every in-place op on `self` before it writes: checks that the write is legal
// for autograd (no leaf requiring grad in grad mode) and bumps the version counter.
// `sources` are the other inputs of the op: if any needs grad, a view `self` is refused
// here, before anything is written.
void check_inplace(const Tensor& self, const char* op, const std::vector<Tensor>& sources = {});
// After an in-place op whose inputs need grad: `self` gets a new grad_fn.
void rebase_history(const Tensor& self, const char* name, const std::vector<Tensor>& inputs,
                    BackwardFn fn);

// Runs backward from `roots` with seed gradients `grads` (one each; defined). With
// create_graph the backward formulas are recorded (grad mode on), so the gradients have
// history and can be differentiated again.
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                  bool retain_graph, bool create_graph = false);
// torch.autograd.grad: the gradients of `roots` (seeded with `grads`) with respect to
// `inputs`, returned instead of accumulated into any .grad; an input the roots do not
// depend on gets an undefined tensor.
std::vector<Tensor> grad_of(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                            const std::vector<Tensor>& inputs, bool retain_graph, bool create_graph);

// Sums `grad` over broadcast dims so it has shape `shape` (the inverse of broadcasting).
Tensor sum_to(const Tensor& grad, const Shape& shape);

}  // namespace bigmodel
