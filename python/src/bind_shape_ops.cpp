// Python bindings for join/split/rearrange ops: bm.cat (concat, concatenate), stack,
// split, chunk, unbind, tril, triu, flip, roll, and the matching Tensor methods.
#include "core/ops/shape_ops.h"
#include "python/src/common.h"

namespace bigmodel::python {
namespace {

// PyTorch returns tuples from split/chunk/unbind.
py::tuple as_tuple(const std::vector<Tensor>& ts) {
  py::tuple out(ts.size());
  for (size_t i = 0; i < ts.size(); ++i) out[i] = py::cast(ts[i]);
  return out;
}

std::vector<Tensor> tensor_list(const py::object& seq, const char* op) {
  BM_CHECK(py::isinstance<py::sequence>(seq) && !py::isinstance<Tensor>(seq), DTypeError, op,
           "expected a sequence of tensors, got ", py::str(py::type::of(seq)).cast<std::string>());
  std::vector<Tensor> out;
  for (auto item : seq) {
    BM_CHECK(py::isinstance<Tensor>(item), DTypeError, op, "expected a sequence of tensors, but element ",
             out.size(), " is ", py::str(py::type::of(item)).cast<std::string>());
    out.push_back(item.cast<Tensor>());
  }
  return out;
}

py::tuple split_any(const Tensor& t, const py::object& size_or_sections, int64_t dim) {
  if (py::isinstance<py::int_>(size_or_sections)) return as_tuple(split(t, size_or_sections.cast<int64_t>(), dim));
  return as_tuple(split(t, size_or_sections.cast<std::vector<int64_t>>(), dim));
}

std::vector<int64_t> ints_from(const py::object& obj) {
  if (obj.is_none()) return {};
  if (py::isinstance<py::int_>(obj)) return {obj.cast<int64_t>()};
  return obj.cast<std::vector<int64_t>>();
}

// flip(0, 1), flip((0, 1)), flip([0, 1]) and flip(dims=...) all name the same dims.
std::vector<int64_t> dims_from_args(const py::args& args, const py::kwargs& kwargs) {
  if (kwargs.contains("dims")) return ints_from(kwargs["dims"]);
  if (args.size() == 1) return ints_from(args[0]);
  return args.cast<std::vector<int64_t>>();
}

}  // namespace

void bind_shape_ops(py::module_& m, py::class_<Tensor>& cls) {
  auto cat_fn = [](const py::object& tensors, int64_t dim) { return cat(tensor_list(tensors, "cat"), dim); };
  m.def("cat", cat_fn, py::arg("tensors"), py::arg("dim") = 0);
  m.def("concat", cat_fn, py::arg("tensors"), py::arg("dim") = 0);
  m.def("concatenate", cat_fn, py::arg("tensors"), py::arg("dim") = 0);
  m.def("stack", [](const py::object& tensors, int64_t dim) { return stack(tensor_list(tensors, "stack"), dim); },
        py::arg("tensors"), py::arg("dim") = 0);
  m.def("split", &split_any, py::arg("tensor"), py::arg("split_size_or_sections"), py::arg("dim") = 0);
  m.def("chunk", [](const Tensor& t, int64_t c, int64_t d) { return as_tuple(chunk(t, c, d)); }, py::arg("input"),
        py::arg("chunks"), py::arg("dim") = 0);
  m.def("unbind", [](const Tensor& t, int64_t d) { return as_tuple(unbind(t, d)); }, py::arg("input"),
        py::arg("dim") = 0);
  m.def("tril", &tril, py::arg("input"), py::arg("diagonal") = 0);
  m.def("triu", &triu, py::arg("input"), py::arg("diagonal") = 0);
  m.def("flip", [](const Tensor& t, const py::object& dims) { return flip(t, ints_from(dims)); }, py::arg("input"),
        py::arg("dims"));
  m.def("roll", [](const Tensor& t, const py::object& shifts, const py::object& dims) {
    return roll(t, ints_from(shifts), ints_from(dims));
  }, py::arg("input"), py::arg("shifts"), py::arg("dims") = py::none());

  cls.def("split", &split_any, py::arg("split_size"), py::arg("dim") = 0)
      .def("chunk", [](const Tensor& t, int64_t c, int64_t d) { return as_tuple(chunk(t, c, d)); },
           py::arg("chunks"), py::arg("dim") = 0)
      .def("unbind", [](const Tensor& t, int64_t d) { return as_tuple(unbind(t, d)); }, py::arg("dim") = 0)
      .def("tril", &tril, py::arg("diagonal") = 0)
      .def("triu", &triu, py::arg("diagonal") = 0)
      .def("flip", [](const Tensor& t, const py::args& a, const py::kwargs& k) { return flip(t, dims_from_args(a, k)); })
      .def("fliplr", [](const Tensor& t) { return flip(t, {1}); })
      .def("flipud", [](const Tensor& t) { return flip(t, {0}); })
      .def("repeat", [](const Tensor& t, const py::args& a) { return repeat(t, shape_from_args(a, "repeat")); })
      .def("roll", [](const Tensor& t, const py::object& shifts, const py::object& dims) {
        return roll(t, ints_from(shifts), ints_from(dims));
      }, py::arg("shifts"), py::arg("dims") = py::none());
}

}  // namespace bigmodel::python
