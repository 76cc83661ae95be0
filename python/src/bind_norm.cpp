// Python bindings for the norm family: batch_norm and layer_norm as module functions of
// bigmodel._C with PyTorch's F.batch_norm / F.layer_norm signatures.
#include "core/ops/norm.h"
#include "python/src/common.h"

namespace bigmodel::python {
namespace {

Tensor or_undefined(const std::optional<Tensor>& t) { return t ? *t : Tensor(); }

// normalized_shape may be an int or a sequence of ints, as in PyTorch.
Shape normalized_shape_from(const py::object& obj) {
  if (py::isinstance<py::int_>(obj)) return Shape{obj.cast<int64_t>()};
  return obj.cast<Shape>();
}

}  // namespace

void bind_norm(py::module_& m, py::class_<Tensor>& /*cls*/) {
  m.def("batch_norm",
        [](const Tensor& input, std::optional<Tensor> running_mean, std::optional<Tensor> running_var,
           std::optional<Tensor> weight, std::optional<Tensor> bias, bool training, double momentum, double eps) {
          return batch_norm(input, or_undefined(running_mean), or_undefined(running_var), or_undefined(weight),
                            or_undefined(bias), training, momentum, eps);
        },
        py::arg("input"), py::arg("running_mean"), py::arg("running_var"), py::arg("weight") = py::none(),
        py::arg("bias") = py::none(), py::arg("training") = false, py::arg("momentum") = 0.1,
        py::arg("eps") = 1e-5);
  m.def("layer_norm",
        [](const Tensor& input, const py::object& normalized_shape, std::optional<Tensor> weight,
           std::optional<Tensor> bias, double eps) {
          return layer_norm(input, normalized_shape_from(normalized_shape), or_undefined(weight), or_undefined(bias),
                            eps);
        },
        py::arg("input"), py::arg("normalized_shape"), py::arg("weight") = py::none(), py::arg("bias") = py::none(),
        py::arg("eps") = 1e-5);
}

}  // namespace bigmodel::python
