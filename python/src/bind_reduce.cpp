// Python bindings for reductions.
#include "core/ops/reduce.h"
#include "python/src/common.h"

namespace bigmodel::python {
namespace {

// dim=None -> all dims; an int or a sequence of ints otherwise.
std::vector<int64_t> dims_from(const py::object& dim) {
  if (dim.is_none()) return {};
  if (py::isinstance<py::int_>(dim)) return {dim.cast<int64_t>()};
  return dim.cast<std::vector<int64_t>>();
}

}  // namespace

void bind_reduce(py::module_& m, py::class_<Tensor>& cls) {
  auto sum_fn = [](const Tensor& t, py::object dim, bool keepdim, std::optional<DType> dtype) {
    return sum(t, dims_from(dim), keepdim, dtype);
  };
  auto mean_fn = [](const Tensor& t, py::object dim, bool keepdim) { return mean(t, dims_from(dim), keepdim); };
  cls.def("sum", sum_fn, py::arg("dim") = py::none(), py::arg("keepdim") = false, py::arg("dtype") = py::none());
  m.def("sum", sum_fn, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false,
        py::arg("dtype") = py::none());
  cls.def("mean", mean_fn, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def("mean", mean_fn, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
}

}  // namespace bigmodel::python
