// Shared pieces of the Python bindings: the Scalar and Device casters, shape parsing
// from *args, and the bind_* entry points each family file defines.
#pragma once
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/tensor.h"

namespace py = pybind11;

namespace pybind11::detail {

// Python bool/int/float (and NumPy scalars) -> bigmodel::Scalar.
template <>
struct type_caster<bigmodel::Scalar> {
  PYBIND11_TYPE_CASTER(bigmodel::Scalar, const_name("Union[bool, int, float]"));
  bool load(handle src, bool) {
    PyObject* o = src.ptr();
    if (PyBool_Check(o)) {
      value = bigmodel::Scalar(o == Py_True);
      return true;
    }
    if (PyLong_Check(o)) {
      int overflow = 0;
      long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
      if (overflow) return false;
      value = bigmodel::Scalar(static_cast<int64_t>(v));
      return true;
    }
    if (PyFloat_Check(o)) {
      value = bigmodel::Scalar(PyFloat_AsDouble(o));
      return true;
    }
    // NumPy scalars (np.float32(1), np.int64(3), np.bool_(True)).
    if (hasattr(src, "dtype") && hasattr(src, "item") && !hasattr(src, "_is_bigmodel_tensor") &&
        hasattr(src, "ndim") && src.attr("ndim").cast<int>() == 0) {
      object item = src.attr("item")();
      if (PyBool_Check(item.ptr()) || PyLong_Check(item.ptr()) || PyFloat_Check(item.ptr()))
        return load(item, true);
    }
    return false;
  }
  static handle cast(const bigmodel::Scalar& s, return_value_policy, handle) {
    if (s.is_bool()) return PyBool_FromLong(s.to_int());
    if (s.is_floating()) return PyFloat_FromDouble(s.to_double());
    return PyLong_FromLongLong(s.to_int());
  }
};

}  // namespace pybind11::detail

namespace bigmodel::python {

// operator.index(obj) as a new reference; raises the Python error (never returns null).
inline py::object index_of(py::handle obj) {
  PyObject* r = PyNumber_Index(obj.ptr());
  if (!r) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(r);
}

// Shape from *args: f(2, 3), f((2, 3)) and f([2, 3]) all give {2, 3}.
Shape shape_from_args(const py::args& args, const char* op);
// Device from a str, a bigmodel.device, or None (-> default).
Device device_from(const py::object& obj, Device fallback = Device());

void bind_tensor(py::module_& m, py::class_<Tensor>& cls);          // core: geometry, views, numpy, autograd
void bind_creation(py::module_& m, py::class_<Tensor>& cls);        // factories and random
void bind_elementwise(py::module_& m, py::class_<Tensor>& cls);     // unary/binary/compare/where
void bind_reduce(py::module_& m, py::class_<Tensor>& cls);          // reductions
void bind_linalg(py::module_& m, py::class_<Tensor>& cls);          // matmul family
void bind_shape_ops(py::module_& m, py::class_<Tensor>& cls);       // cat/stack/split/...
void bind_indexing(py::module_& m, py::class_<Tensor>& cls);        // __getitem__/__setitem__, gather...
void bind_nn_functional(py::module_& m, py::class_<Tensor>& cls);   // softmax, losses, activations
void bind_conv_pool(py::module_& m, py::class_<Tensor>& cls);       // conv2d, pooling
void bind_norm(py::module_& m, py::class_<Tensor>& cls);            // batch_norm, layer_norm
void bind_io(py::module_& m, py::class_<Tensor>& cls);              // safetensors files
void bind_autograd_function(py::module_& m);                         // Python-defined autograd nodes
void bind_rnn(py::module_& m, py::class_<Tensor>& cls);             // RNN/LSTM/GRU kernels
void bind_attention(py::module_& m, py::class_<Tensor>& cls);       // scaled_dot_product_attention
void bind_distributed(py::module_& m, py::class_<Tensor>& cls);     // process groups, collectives
void bind_cuda(py::module_& m, py::class_<Tensor>& cls);            // bm.cuda runtime: streams, memory
void bind_quant(py::module_& m, py::class_<Tensor>& cls);           // int8 quantization
void bind_amp(py::module_& m, py::class_<Tensor>& cls);             // autocast state
void bind_backends(py::module_& m);                                  // bm.backends choices
void bind_fused_optim(py::module_& m, py::class_<Tensor>& cls);  // multi-tensor optimizer steps, norms

}  // namespace bigmodel::python
