// Python bindings for the matmul family: bm.matmul/mm/bmm/mv/dot/outer/addmm, the
// Tensor methods and `@`, and _C.linear / _C._linear_act (nn.functional builds on them).
#include "core/ops/linalg.h"
#include "python/src/common.h"

namespace bigmodel::python {

void bind_linalg(py::module_& m, py::class_<Tensor>& cls) {
  m.def("matmul", &matmul, py::arg("input"), py::arg("other"));
  m.def("mm", &mm, py::arg("input"), py::arg("mat2"));
  m.def("bmm", &bmm, py::arg("input"), py::arg("mat2"));
  m.def("mv", &mv, py::arg("input"), py::arg("vec"));
  m.def("dot", &dot, py::arg("input"), py::arg("other"));
  m.def("outer", &outer, py::arg("input"), py::arg("vec2"));
  m.def("ger", &outer, py::arg("input"), py::arg("vec2"));
  m.def("addmm", &addmm, py::arg("input"), py::arg("mat1"), py::arg("mat2"), py::kw_only(),
        py::arg("beta") = Scalar(int64_t{1}), py::arg("alpha") = Scalar(int64_t{1}));
  m.def("linear", [](const Tensor& input, const Tensor& weight, std::optional<Tensor> bias) {
    return linear(input, weight, bias ? *bias : Tensor());
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none());
  // act(linear(...)) in one fused GEMM where possible; nn.functional's _linear_act wraps it.
  m.def("_linear_act", [](const Tensor& input, const Tensor& weight, std::optional<Tensor> bias,
                          const std::string& act) { return linear_act(input, weight, bias ? *bias : Tensor(), act); },
        py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("act") = "none");

  cls.def("matmul", &matmul, py::arg("other"))
      .def("__matmul__", &matmul)
      // `other @ self` reaches here only when `other` is not a Tensor (e.g. a NumPy array
      // or a list); let Python report the unsupported operand types then.
      .def("__rmatmul__", [](const Tensor& self, py::object other) -> py::object {
        if (!py::isinstance<Tensor>(other)) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
        return py::cast(matmul(other.cast<Tensor>(), self));
      })
      .def("mm", &mm, py::arg("mat2"))
      .def("bmm", &bmm, py::arg("mat2"))
      .def("mv", &mv, py::arg("vec"))
      .def("dot", &dot, py::arg("other"))
      .def("outer", &outer, py::arg("vec2"))
      .def("addmm", &addmm, py::arg("mat1"), py::arg("mat2"), py::kw_only(), py::arg("beta") = Scalar(int64_t{1}),
           py::arg("alpha") = Scalar(int64_t{1}));
}

}  // namespace bigmodel::python
