// Python-defined autograd nodes: _record_python_function attaches a node whose backward
// is a Python callable (used by bm.utils.Function and activation checkpointing), and
// _run_backward runs the engine from several roots at once (nested backward passes), and
// anomaly mode's switches plus the callback that gives core the Python creation traceback.
#include "python/src/common.h"

namespace bigmodel::python {
namespace {

Tensor tensor_or_undefined(const py::handle& h, const char* op) {
  if (h.is_none()) return Tensor();
  BM_CHECK(py::isinstance<Tensor>(h), DTypeError, op, "expected a Tensor or None, got ",
           std::string(py::str(py::type::of(h).attr("__name__"))));
  return h.cast<Tensor>();
}

// Anomaly mode's creation context: the Python stack of the op being recorded (innermost
// frames last, at most 40). Called by core only while the mode is on.
std::string python_creation_context() {
  if (!Py_IsInitialized()) return {};
  py::gil_scoped_acquire gil;
  try {
    py::list frames = py::module_::import("traceback").attr("format_stack")(py::none(), 40);
    std::string out;
    for (auto f : frames) out += f.cast<std::string>();
    return out;
  } catch (const std::exception&) {  // e.g. the interpreter is shutting down
    return {};
  }
}

}  // namespace

void bind_autograd_function(py::module_& m) {
  // Records `backward` as the grad_fn of `outputs` (fresh tensors, e.g. detached forward
  // results). backward(list of output grads) must return one Tensor-or-None per input.
  // Returns whether a node was recorded (grad mode on and some input requires grad).
  m.def("_record_python_function", [](const std::string& name, const py::list& inputs_py,
                                      const std::vector<Tensor>& outputs, const py::function& backward) {
    constexpr const char* op = "autograd.Function";
    std::vector<Tensor> inputs;
    for (auto h : inputs_py) inputs.push_back(tensor_or_undefined(h, op));
    if (!needs_grad(inputs)) return false;
    for (const Tensor& o : outputs)
      BM_CHECK_VALUE(o.is_leaf() && !o.requires_grad(), op, "outputs must be fresh tensors without history");
    // The callable is released from whatever thread drops the node: take the GIL for it.
    std::shared_ptr<py::function> fn(new py::function(backward), [](py::function* f) {
      py::gil_scoped_acquire gil;
      delete f;
    });
    const size_t n_inputs = inputs.size();
    std::vector<Shape> input_shapes;
    for (const Tensor& t : inputs) input_shapes.push_back(t.defined() ? t.sizes() : Shape{});
    record_function(name.c_str(), inputs, outputs,
                    [fn, n_inputs, input_shapes, name](const std::vector<Tensor>& grads) {
                      py::gil_scoped_acquire gil;
                      py::list g;
                      for (const Tensor& t : grads) g.append(t);
                      py::object r = (*fn)(g);
                      BM_CHECK_VALUE(py::isinstance<py::sequence>(r) && !py::isinstance<py::str>(r), name,
                                     "backward must return a sequence of gradients");
                      py::sequence seq = r;
                      BM_CHECK_VALUE(seq.size() == n_inputs, name, "backward returned ", seq.size(),
                                     " gradients, expected ", n_inputs);
                      std::vector<Tensor> out;
                      for (size_t i = 0; i < n_inputs; ++i) {
                        Tensor t = tensor_or_undefined(seq[i], name.c_str());
                        BM_CHECK_SHAPE(!t.defined() || t.sizes() == input_shapes[i], name, "gradient ", i,
                                       " has shape ", shape_str(t.sizes()), ", the input has shape ",
                                       shape_str(input_shapes[i]));
                        out.push_back(t);
                      }
                      return out;
                    }, SecondOrder::Full);
    return true;
  }, py::arg("name"), py::arg("inputs"), py::arg("outputs"), py::arg("backward"));

  AnomalyMode::set_context_callback(&python_creation_context);
  m.def("_set_anomaly_enabled", &AnomalyMode::set_enabled, py::arg("enabled"), py::arg("check_forward") = true);
  m.def("_is_anomaly_enabled", &AnomalyMode::is_enabled);
  m.def("_is_anomaly_check_forward_enabled", &AnomalyMode::check_forward);

  m.def("_run_backward", [](const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
                            bool create_graph) {
    BM_CHECK_VALUE(roots.size() == grads.size(), "backward", roots.size(), " roots but ", grads.size(), " gradients");
    for (size_t i = 0; i < roots.size(); ++i) {
      BM_CHECK_RUNTIME(roots[i].requires_grad(), "backward", "root ", i, " does not require grad");
      BM_CHECK_SHAPE(roots[i].sizes() == grads[i].sizes(), "backward", "gradient has shape ",
                     shape_str(grads[i].sizes()), " but root ", i, " has shape ", shape_str(roots[i].sizes()));
    }
    std::vector<Tensor> seeds;
    for (const Tensor& g : grads) seeds.push_back(create_graph ? g : g.detach());
    run_backward(roots, seeds, retain_graph, create_graph);
  }, py::arg("roots"), py::arg("grads"), py::arg("retain_graph") = false, py::arg("create_graph") = false);

  // bm.autograd.grad: gradients of roots with respect to inputs (None where unused).
  m.def("_grad", [](const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                    const std::vector<Tensor>& inputs, bool retain_graph, bool create_graph) {
    BM_CHECK_VALUE(roots.size() == grads.size(), "grad", roots.size(), " outputs but ", grads.size(), " grad_outputs");
    for (size_t i = 0; i < roots.size(); ++i) {
      BM_CHECK_RUNTIME(roots[i].requires_grad(), "grad", "output ", i, " does not require grad and has no grad_fn");
      BM_CHECK_SHAPE(roots[i].sizes() == grads[i].sizes(), "grad", "grad_output has shape ",
                     shape_str(grads[i].sizes()), " but output ", i, " has shape ", shape_str(roots[i].sizes()));
    }
    std::vector<Tensor> seeds;
    for (const Tensor& g : grads) seeds.push_back(create_graph ? g : g.detach());
    py::list out;
    for (const Tensor& g : grad_of(roots, seeds, inputs, retain_graph, create_graph)) {
      out.append(g.defined() ? py::cast(g) : py::none());
    }
    return out;
  }, py::arg("roots"), py::arg("grads"), py::arg("inputs"), py::arg("retain_graph"), py::arg("create_graph"));
}

}  // namespace bigmodel::python
