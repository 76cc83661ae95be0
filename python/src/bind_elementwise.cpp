// Python bindings for elementwise ops: operators, methods and module functions.
#include "core/ops/elementwise.h"
#include "python/src/common.h"

namespace bigmodel::python {

void bind_elementwise(py::module_& m, py::class_<Tensor>& cls) {
  cls.def("__add__", [](const Tensor& a, const Tensor& b) { return add(a, b); }, py::is_operator())
      .def("__add__", [](const Tensor& a, const Scalar& b) { return add(a, b); }, py::is_operator())
      .def("__radd__", [](const Tensor& a, const Scalar& b) { return add(a, b); }, py::is_operator())
      .def("__sub__", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, py::is_operator())
      .def("__sub__", [](const Tensor& a, const Scalar& b) { return sub(a, b); }, py::is_operator())
      .def("__rsub__", [](const Tensor& a, const Scalar& b) { return rsub(a, b); }, py::is_operator())
      .def("__mul__", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, py::is_operator())
      .def("__mul__", [](const Tensor& a, const Scalar& b) { return mul(a, b); }, py::is_operator())
      .def("__rmul__", [](const Tensor& a, const Scalar& b) { return mul(a, b); }, py::is_operator())
      .def("__truediv__", [](const Tensor& a, const Tensor& b) { return div(a, b); }, py::is_operator())
      .def("__truediv__", [](const Tensor& a, const Scalar& b) { return div(a, b); }, py::is_operator())
      .def("__rtruediv__", [](const Tensor& a, const Scalar& b) { return rdiv(a, b); }, py::is_operator())
      .def("__iadd__", [](Tensor& a, const Tensor& b) { return add_(a, b); }, py::is_operator())
      .def("__iadd__", [](Tensor& a, const Scalar& b) { return add_(a, b); }, py::is_operator())
      .def("__isub__", [](Tensor& a, const Tensor& b) { return sub_(a, b); }, py::is_operator())
      .def("__isub__", [](Tensor& a, const Scalar& b) { return sub_(a, b); }, py::is_operator())
      .def("__imul__", [](Tensor& a, const Tensor& b) { return mul_(a, b); }, py::is_operator())
      .def("__imul__", [](Tensor& a, const Scalar& b) { return mul_(a, b); }, py::is_operator())
      .def("__itruediv__", [](Tensor& a, const Tensor& b) { return div_(a, b); }, py::is_operator())
      .def("__itruediv__", [](Tensor& a, const Scalar& b) { return div_(a, b); }, py::is_operator())
      .def("add", [](const Tensor& a, const Tensor& b, const Scalar& alpha) { return add(a, b, alpha); },
           py::arg("other"), py::arg("alpha") = 1)
      .def("add", [](const Tensor& a, const Scalar& b) { return add(a, b); })
      .def("sub", [](const Tensor& a, const Tensor& b, const Scalar& alpha) { return sub(a, b, alpha); },
           py::arg("other"), py::arg("alpha") = 1)
      .def("sub", [](const Tensor& a, const Scalar& b) { return sub(a, b); })
      .def("mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); })
      .def("mul", [](const Tensor& a, const Scalar& b) { return mul(a, b); })
      .def("div", [](const Tensor& a, const Tensor& b) { return div(a, b); })
      .def("div", [](const Tensor& a, const Scalar& b) { return div(a, b); })
      .def("add_", [](Tensor& a, const Tensor& b, const Scalar& alpha) { return add_(a, b, alpha); },
           py::arg("other"), py::arg("alpha") = 1)
      .def("add_", [](Tensor& a, const Scalar& b) { return add_(a, b); })
      .def("sub_", [](Tensor& a, const Tensor& b, const Scalar& alpha) { return sub_(a, b, alpha); },
           py::arg("other"), py::arg("alpha") = 1)
      .def("sub_", [](Tensor& a, const Scalar& b) { return sub_(a, b); })
      .def("mul_", [](Tensor& a, const Tensor& b) { return mul_(a, b); })
      .def("mul_", [](Tensor& a, const Scalar& b) { return mul_(a, b); })
      .def("div_", [](Tensor& a, const Tensor& b) { return div_(a, b); })
      .def("div_", [](Tensor& a, const Scalar& b) { return div_(a, b); });

  m.def("add", [](const Tensor& a, const Tensor& b, const Scalar& alpha) { return add(a, b, alpha); },
        py::arg("input"), py::arg("other"), py::arg("alpha") = 1);
  m.def("add", [](const Tensor& a, const Scalar& b) { return add(a, b); });
  m.def("sub", [](const Tensor& a, const Tensor& b, const Scalar& alpha) { return sub(a, b, alpha); },
        py::arg("input"), py::arg("other"), py::arg("alpha") = 1);
  m.def("sub", [](const Tensor& a, const Scalar& b) { return sub(a, b); });
  m.def("mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); });
  m.def("mul", [](const Tensor& a, const Scalar& b) { return mul(a, b); });
  m.def("div", [](const Tensor& a, const Tensor& b) { return div(a, b); });
  m.def("div", [](const Tensor& a, const Scalar& b) { return div(a, b); });
  m.def("result_type", [](const Tensor& a, const Tensor& b) { return result_type(a, b); });
  m.def("result_type", [](const Tensor& a, const Scalar& b) { return result_type(a, b); });
}

}  // namespace bigmodel::python
