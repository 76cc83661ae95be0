// Python bindings for the indexing family: x[key] / x[key] = v parsed in C++ into
// TensorIndex lists, and index_select, gather, scatter(_add), index_add, index_put,
// embedding, one_hot, masked_select, nonzero and take as methods and module functions.

#include "core/ops/creation.h"
#include "core/ops/index.h"
#include "core/ops/view.h"
#include "python/src/common.h"

namespace bigmodel::python {
namespace {

const char* kValidIndices =
    "only integers, slices (`:`), ellipsis (`...`), None, bools, and integer or bool tensors, lists or "
    "arrays are valid indices";

py::handle numpy() {
  static py::handle np = py::module_::import("numpy").release();  // kept for the process
  return np;
}

// Lists, nested tuples and NumPy arrays of integers or bools become index tensors.
Tensor index_tensor_from(const py::handle& obj, Device device) {
  py::handle np = numpy();
  py::array arr = np.attr("asarray")(obj);
  char kind = arr.dtype().kind();
  if (arr.size() == 0 && kind == 'f') kind = 'i';  // [] is an empty integer index
  DType dtype;
  if (kind == 'b') {
    arr = arr.attr("astype")(np.attr("bool_"), py::arg("order") = "C");  // keeps 0-d arrays 0-d
    dtype = DType::Bool;
  } else if (kind == 'i' || kind == 'u') {
    arr = arr.attr("astype")(np.attr("int64"), py::arg("order") = "C");
    dtype = DType::Int64;
  } else {
    throw IndexError(str_cat("[index] ", kValidIndices, "; got a sequence of dtype ",
                             py::str(arr.dtype()).cast<std::string>()));
  }
  Shape sizes(arr.shape(), arr.shape() + arr.ndim());
  return to(from_host(arr.data(), sizes, dtype), device);
}

TensorIndex index_from(const py::handle& obj, Device device) {
  PyObject* o = obj.ptr();
  if (py::isinstance<Tensor>(obj)) return TensorIndex(obj.cast<Tensor>());
  if (PyBool_Check(o)) return TensorIndex::boolean(o == Py_True);
  if (PyLong_Check(o)) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    BM_CHECK_INDEX(!overflow, "index", "index ", py::str(obj).cast<std::string>(), " is too large");
    return TensorIndex(static_cast<int64_t>(v));
  }
  if (PySlice_Check(o)) {
    Py_ssize_t start = 0, stop = 0, step = 0;
    if (PySlice_Unpack(o, &start, &stop, &step) < 0) throw py::error_already_set();  // step 0
    BM_CHECK_VALUE(step > 0, "index", "step must be greater than zero, got ", step,
                   " (negative steps are not supported)");
    std::optional<int64_t> begin, end;  // PySlice_Unpack's clamps for None map back to "open"
    if (start != 0) begin = start;
    if (stop != PY_SSIZE_T_MAX) end = stop;
    return TensorIndex(indexing::Slice(begin, end, step));
  }
  if (obj.is_none()) return TensorIndex(indexing::None);
  if (o == Py_Ellipsis) return TensorIndex(indexing::Ellipsis);
  if (PyList_Check(o) || PyTuple_Check(o) || py::isinstance<py::array>(obj))
    return TensorIndex(index_tensor_from(obj, device));
  if (py::isinstance(obj, numpy().attr("bool_"))) return TensorIndex::boolean(obj.cast<bool>());
  if (PyIndex_Check(o) && !PyFloat_Check(o)) {  // NumPy integers and other __index__ objects
    py::int_ i = index_of(o);
    if (!i) throw py::error_already_set();
    return index_from(i, device);
  }
  throw IndexError(str_cat("[index] ", kValidIndices, "; got ", Py_TYPE(o)->tp_name));
}

std::vector<TensorIndex> indices_from(const Tensor& self, const py::handle& key) {
  std::vector<TensorIndex> out;
  if (PyTuple_Check(key.ptr())) {
    for (auto item : py::reinterpret_borrow<py::tuple>(key)) out.push_back(index_from(item, self.device()));
  } else {
    out.push_back(index_from(key, self.device()));
  }
  return out;
}

Tensor getitem(const Tensor& self, const py::handle& key) {
  if (PyLong_Check(key.ptr()) && !PyBool_Check(key.ptr()) && self.dim() > 0) {  // x[i]: the common case
    return index(self, {TensorIndex(key.cast<int64_t>())});
  }
  return index(self, indices_from(self, key));
}

void setitem(Tensor& self, const py::handle& key, const py::object& value) {
  std::vector<TensorIndex> indices = indices_from(self, key);
  if (py::isinstance<Tensor>(value)) {
    index_put_(self, indices, value.cast<Tensor>());
    return;
  }
  py::detail::make_caster<Scalar> scalar;
  if (scalar.load(value, true)) {
    index_put_(self, indices, py::detail::cast_op<Scalar>(scalar));
    return;
  }
  // Lists and arrays: made into a tensor of self's dtype by bm.tensor.
  py::object tensor_fn = py::module_::import("bigmodel").attr("tensor");
  index_put_(self, indices, tensor_fn(value, py::arg("dtype") = self.dtype()).cast<Tensor>());
}

// index_put's indices: a tuple/list of tensors (None = the whole dim).
std::vector<Tensor> tensor_list(const py::sequence& seq, Device device) {
  // A Tensor also passes pybind's sequence check; only real tuples and lists are index lists.
  BM_CHECK(PyTuple_Check(seq.ptr()) || PyList_Check(seq.ptr()), DTypeError, "index_put_",
           "indices must be a tuple or list of tensors, got ", Py_TYPE(seq.ptr())->tp_name);
  std::vector<Tensor> out;
  for (auto item : seq) {
    if (item.is_none()) out.emplace_back();
    else if (py::isinstance<Tensor>(item)) out.push_back(item.cast<Tensor>());
    else out.push_back(index_tensor_from(item, device));
  }
  return out;
}

py::object nonzero_py(const Tensor& self, bool as_tuple) {
  if (!as_tuple) return py::cast(nonzero(self));
  return py::tuple(py::cast(nonzero_tuple(self)));
}

}  // namespace

void bind_indexing(py::module_& m, py::class_<Tensor>& cls) {
  cls.def("__getitem__", [](const Tensor& self, py::handle key) { return getitem(self, key); })
      .def("__setitem__", [](Tensor& self, py::handle key, py::object value) { setitem(self, key, value); })
      .def("index_select", &index_select, py::arg("dim"), py::arg("index"))
      .def("gather", &gather, py::arg("dim"), py::arg("index"))
      .def("scatter", py::overload_cast<const Tensor&, int64_t, const Tensor&, const Tensor&>(&scatter),
           py::arg("dim"), py::arg("index"), py::arg("src"))
      .def("scatter", py::overload_cast<const Tensor&, int64_t, const Tensor&, const Scalar&>(&scatter),
           py::arg("dim"), py::arg("index"), py::arg("value"))
      .def("scatter_", [](Tensor& s, int64_t d, const Tensor& i, const Tensor& src) { return scatter_(s, d, i, src); },
           py::arg("dim"), py::arg("index"), py::arg("src"))
      .def("scatter_", [](Tensor& s, int64_t d, const Tensor& i, const Scalar& v) { return scatter_(s, d, i, v); },
           py::arg("dim"), py::arg("index"), py::arg("value"))
      .def("scatter_add", &scatter_add, py::arg("dim"), py::arg("index"), py::arg("src"))
      .def("scatter_add_", [](Tensor& s, int64_t d, const Tensor& i, const Tensor& src) {
             return scatter_add_(s, d, i, src);
           }, py::arg("dim"), py::arg("index"), py::arg("src"))
      .def("index_add", &index_add, py::arg("dim"), py::arg("index"), py::arg("source"), py::arg("alpha") = 1)
      .def("index_add_", [](Tensor& s, int64_t d, const Tensor& i, const Tensor& src, const Scalar& alpha) {
             return index_add_(s, d, i, src, alpha);
           }, py::arg("dim"), py::arg("index"), py::arg("source"), py::arg("alpha") = 1)
      .def("index_put_", [](Tensor& s, const py::sequence& idx, const Tensor& values, bool accumulate) {
             return advanced_index_put_(s, tensor_list(idx, s.device()), values, accumulate);
           }, py::arg("indices"), py::arg("values"), py::arg("accumulate") = false)
      .def("index_put", [](const Tensor& s, const py::sequence& idx, const Tensor& values, bool accumulate) {
             return advanced_index_put(s, tensor_list(idx, s.device()), values, accumulate);
           }, py::arg("indices"), py::arg("values"), py::arg("accumulate") = false)
      .def("masked_select", &masked_select, py::arg("mask"))
      .def("nonzero", &nonzero_py, py::arg("as_tuple") = false)
      .def("take", &take, py::arg("index"));

  m.def("index_select", &index_select, py::arg("input"), py::arg("dim"), py::arg("index"));
  m.def("gather", &gather, py::arg("input"), py::arg("dim"), py::arg("index"));
  m.def("scatter", py::overload_cast<const Tensor&, int64_t, const Tensor&, const Tensor&>(&scatter),
        py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("src"));
  m.def("scatter", py::overload_cast<const Tensor&, int64_t, const Tensor&, const Scalar&>(&scatter),
        py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("value"));
  m.def("scatter_add", &scatter_add, py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("src"));
  m.def("index_add", &index_add, py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("source"),
        py::arg("alpha") = 1);
  m.def("index_put", [](const Tensor& s, const py::sequence& idx, const Tensor& values, bool accumulate) {
          return advanced_index_put(s, tensor_list(idx, s.device()), values, accumulate);
        }, py::arg("input"), py::arg("indices"), py::arg("values"), py::arg("accumulate") = false);
  // As torch.nn.functional.embedding: the indices come first.
  m.def("embedding", [](const Tensor& input, const Tensor& weight, std::optional<int64_t> padding_idx) {
          return embedding(weight, input, padding_idx);
        }, py::arg("input"), py::arg("weight"), py::arg("padding_idx") = py::none());
  m.def("one_hot", &one_hot, py::arg("tensor"), py::arg("num_classes") = -1);
  m.def("masked_select", &masked_select, py::arg("input"), py::arg("mask"));
  m.def("nonzero", &nonzero_py, py::arg("input"), py::arg("as_tuple") = false);
  m.def("take", &take, py::arg("input"), py::arg("index"));
}

}  // namespace bigmodel::python
