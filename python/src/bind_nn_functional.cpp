// Python bindings for softmax/log_softmax (module functions and Tensor methods) and the
// losses, as module functions of bigmodel._C with PyTorch's signatures; the pure-Python
// bigmodel.nn.functional re-exports them.
#include "core/ops/loss.h"
#include "core/ops/softmax.h"
#include "python/src/common.h"

namespace bigmodel::python {
namespace {

// PyTorch's legacy implicit softmax dim: 0 for 0-, 1- and 3-d inputs, else 1.
int64_t softmax_dim(const Tensor& t, const py::object& dim) {
  if (!dim.is_none()) return dim.cast<int64_t>();
  return (t.dim() == 0 || t.dim() == 1 || t.dim() == 3) ? 0 : 1;
}

// The legacy size_average/reduce flags override `reduction`, as in PyTorch.
std::string reduction_from(const py::object& size_average, const py::object& reduce, const std::string& reduction) {
  if (size_average.is_none() && reduce.is_none()) return reduction;
  const bool avg = size_average.is_none() || size_average.cast<bool>();
  const bool red = reduce.is_none() || reduce.cast<bool>();
  return red ? (avg ? "mean" : "sum") : "none";
}

Tensor or_undefined(const std::optional<Tensor>& t) { return t ? *t : Tensor(); }

}  // namespace

void bind_nn_functional(py::module_& m, py::class_<Tensor>& cls) {
  m.def("softmax", [](const Tensor& t, py::object dim, std::optional<DType> dtype) {
    return softmax(t, softmax_dim(t, dim), dtype);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("dtype") = py::none());
  m.def("log_softmax", [](const Tensor& t, py::object dim, std::optional<DType> dtype) {
    return log_softmax(t, softmax_dim(t, dim), dtype);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("dtype") = py::none());
  cls.def("softmax", [](const Tensor& t, int64_t dim, std::optional<DType> dtype) { return softmax(t, dim, dtype); },
          py::arg("dim"), py::arg("dtype") = py::none());
  cls.def("log_softmax", [](const Tensor& t, int64_t dim, std::optional<DType> dtype) {
    return log_softmax(t, dim, dtype);
  }, py::arg("dim"), py::arg("dtype") = py::none());

  const auto weight = py::arg("weight") = py::none();
  const auto size_average = py::arg("size_average") = py::none();
  const auto reduce = py::arg("reduce") = py::none();
  const auto reduction = py::arg("reduction") = "mean";

  m.def("cross_entropy", [](const Tensor& input, const Tensor& target, std::optional<Tensor> w, py::object sa,
                            int64_t ignore_index, py::object rd, const std::string& r, double label_smoothing) {
    return cross_entropy(input, target, or_undefined(w), ignore_index, reduction_from(sa, rd, r), label_smoothing);
  }, py::arg("input"), py::arg("target"), weight, size_average, py::arg("ignore_index") = -100, reduce, reduction,
        py::arg("label_smoothing") = 0.0);
  m.def("nll_loss", [](const Tensor& input, const Tensor& target, std::optional<Tensor> w, py::object sa,
                       int64_t ignore_index, py::object rd, const std::string& r) {
    return nll_loss(input, target, or_undefined(w), ignore_index, reduction_from(sa, rd, r));
  }, py::arg("input"), py::arg("target"), weight, size_average, py::arg("ignore_index") = -100, reduce, reduction);
  m.def("mse_loss", [](const Tensor& input, const Tensor& target, py::object sa, py::object rd, const std::string& r) {
    return mse_loss(input, target, reduction_from(sa, rd, r));
  }, py::arg("input"), py::arg("target"), size_average, reduce, reduction);
  m.def("l1_loss", [](const Tensor& input, const Tensor& target, py::object sa, py::object rd, const std::string& r) {
    return l1_loss(input, target, reduction_from(sa, rd, r));
  }, py::arg("input"), py::arg("target"), size_average, reduce, reduction);
  m.def("binary_cross_entropy_with_logits",
        [](const Tensor& input, const Tensor& target, std::optional<Tensor> w, py::object sa, py::object rd,
           const std::string& r, std::optional<Tensor> pos_weight) {
          return binary_cross_entropy_with_logits(input, target, or_undefined(w), or_undefined(pos_weight),
                                                  reduction_from(sa, rd, r));
        },
        py::arg("input"), py::arg("target"), weight, size_average, reduce, reduction,
        py::arg("pos_weight") = py::none());
  m.def("binary_cross_entropy", [](const Tensor& input, const Tensor& target, std::optional<Tensor> w, py::object sa,
                                   py::object rd, const std::string& r) {
    return binary_cross_entropy(input, target, or_undefined(w), reduction_from(sa, rd, r));
  }, py::arg("input"), py::arg("target"), weight, size_average, reduce, reduction);
}

}  // namespace bigmodel::python
