// The extension module bigmodel._C: exceptions, dtypes, devices, grad mode, and the
// Tensor class whose methods each op family's bind_*.cpp adds.
#include "python/src/common.h"

#include "core/dispatch.h"
#include "core/threads.h"

namespace bigmodel::python {

Shape shape_from_args(const py::args& args, const char* op) {
  if (args.size() == 1 && (py::isinstance<py::tuple>(args[0]) || py::isinstance<py::list>(args[0]))) {
    Shape s;
    for (auto v : args[0]) s.push_back(v.cast<int64_t>());
    return s;
  }
  Shape s;
  for (auto v : args) {
    BM_CHECK(!PyFloat_Check(v.ptr()), DTypeError, op, "shape must contain integers, got a float");
    s.push_back(v.cast<int64_t>());
  }
  return s;
}

Device device_from(const py::object& obj, Device fallback) {
  if (obj.is_none()) return fallback;
  if (py::isinstance<py::str>(obj)) return Device(obj.cast<std::string>());
  return obj.cast<Device>();
}

// core/dispatch.h's kernel-call hook: kernels over enough elements run with the GIL
// released, so Python threads overlap their math. Only a thread holding the GIL releases
// it: nested kernels and C++ threads (data loader workers) pass through untouched.
void* release_gil_for_kernel() {
  return PyGILState_Check() ? static_cast<void*>(PyEval_SaveThread()) : nullptr;
}
void restore_gil_after_kernel(void* state) {
  if (state) PyEval_RestoreThread(static_cast<PyThreadState*>(state));
}
const KernelCallHook kReleaseGilHook{&release_gil_for_kernel, &restore_gil_after_kernel};

}  // namespace bigmodel::python

using namespace bigmodel;
using namespace bigmodel::python;

PYBIND11_MODULE(_C, m) {
  m.doc() = "bigmodel C++ core";
  g_kernel_call_hook.store(&kReleaseGilHook);
  // For bench/bench_threads.py and tests: turn the GIL release around kernels off and on.
  m.def("_set_kernel_gil_release", [](bool on) { g_kernel_call_hook.store(on ? &kReleaseGilHook : nullptr); });

  static py::exception<OutOfMemoryError> oom(m, "OutOfMemoryError", PyExc_RuntimeError);
  // Our argument, dtype and index errors are ValueError/TypeError/IndexError AND
  // RuntimeError: PyTorch raises RuntimeError for most of them, so code ported from it
  // (`except RuntimeError:`) keeps working, and `except ValueError:` works as well.
  auto make_error = [&m](const char* name, PyObject* bases) {
    py::object cls = py::reinterpret_steal<py::object>(
        PyErr_NewException((std::string("bigmodel.") + name).c_str(), bases, nullptr));
    Py_DECREF(bases);
    m.attr(name) = cls;
    return cls.release().ptr();  // kept for the life of the process, like py::exception's
  };
  static PyObject* argument_error =
      make_error("InvalidArgumentError", PyTuple_Pack(2, PyExc_ValueError, PyExc_RuntimeError));
  static PyObject* shape_error = make_error("ShapeError", PyTuple_Pack(1, argument_error));
  static PyObject* dtype_error = make_error("DTypeError", PyTuple_Pack(2, PyExc_TypeError, PyExc_RuntimeError));
  static PyObject* index_error =
      make_error("TensorIndexError", PyTuple_Pack(2, PyExc_IndexError, PyExc_RuntimeError));
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const OutOfMemoryError& e) {
      PyErr_SetString(oom.ptr(), e.what());
    } catch (const ShapeError& e) {
      PyErr_SetString(shape_error, e.what());
    } catch (const ValueError& e) {
      PyErr_SetString(argument_error, e.what());
    } catch (const DTypeError& e) {
      PyErr_SetString(dtype_error, e.what());
    } catch (const IndexError& e) {
      PyErr_SetString(index_error, e.what());
    } catch (const NotImplementedError& e) {
      PyErr_SetString(PyExc_NotImplementedError, e.what());
    } catch (const Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });

  py::enum_<DType> dtype(m, "dtype");
  for (int i = 0; i < kNumDTypes; ++i) dtype.value(dtype_name(static_cast<DType>(i)), static_cast<DType>(i));
  dtype.def("__repr__", [](DType t) { return std::string("bigmodel.") + dtype_name(t); })
      .def("__str__", [](DType t) { return std::string("bigmodel.") + dtype_name(t); })
      .def_property_readonly("is_floating_point", [](DType t) { return is_floating(t); })
      .def_property_readonly("itemsize", [](DType t) { return itemsize(t); });
  m.def("promote_types", &promote_types);

  py::class_<Device>(m, "device")
      .def(py::init<const std::string&>())
      .def(py::init([](const std::string& type, int index) { return Device(type + ":" + std::to_string(index)); }))
      .def_property_readonly("type", [](const Device& d) { return d.is_cpu() ? "cpu" : "cuda"; })
      .def_property_readonly("index", [](const Device& d) -> py::object {
        return d.is_cpu() ? py::object(py::none()) : py::object(py::int_(d.index));
      })
      .def("__eq__", [](const Device& a, const Device& b) { return a == b; })
      .def("__eq__", [](const Device& a, const std::string& b) { return a == Device(b); })
      .def("__hash__", [](const Device& d) { return std::hash<std::string>()(d.str()); })
      .def("__str__", &Device::str)
      .def("__repr__", [](const Device& d) {
        return d.is_cpu() ? std::string("device(type='cpu')")
                          : "device(type='cuda', index=" + std::to_string(d.index) + ")";
      });
  py::implicitly_convertible<std::string, Device>();

  m.def("_set_num_threads", &set_num_threads, py::arg("n"));
  m.def("_get_num_threads", &get_num_threads);
  m.def("is_grad_enabled", &GradMode::is_enabled);
  m.def("set_grad_enabled", &GradMode::set_enabled);

  py::class_<Node, std::shared_ptr<Node>>(m, "Node")
      .def("name", &Node::name)
      .def_property_readonly("next_functions", [](const Node& n) {
        py::list out;
        for (const Edge& e : n.next_edges) out.append(py::make_tuple(e.fn, e.input_nr));
        return out;
      })
      .def("__repr__", [](const Node& n) { return "<" + node_display_name(n) + ">"; });

  py::class_<Tensor> cls(m, "Tensor");
  bind_tensor(m, cls);
  bind_creation(m, cls);
  bind_elementwise(m, cls);
  bind_reduce(m, cls);
  bind_linalg(m, cls);
  bind_shape_ops(m, cls);
  bind_indexing(m, cls);
  bind_nn_functional(m, cls);
  bind_conv_pool(m, cls);
  bind_norm(m, cls);
  bind_io(m, cls);
  bind_autograd_function(m);
  bind_rnn(m, cls);
  bind_attention(m, cls);
  bind_distributed(m, cls);
  bind_cuda(m, cls);
  bind_quant(m, cls);
  bind_amp(m, cls);
  bind_backends(m);
  bind_fused_optim(m, cls);
}
