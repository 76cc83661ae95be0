// Python bindings for the attention family: scaled_dot_product_attention (PyTorch's
// signature) and _sdpa_with_weights (also returns the weights, for nn.MultiheadAttention).
#include "core/ops/attention.h"
#include "python/src/common.h"

namespace bigmodel::python {
namespace {

Tensor or_undefined(const std::optional<Tensor>& t) { return t ? *t : Tensor(); }
Generator* generator_from(const py::object& g) { return g.is_none() ? nullptr : g.cast<Generator*>(); }

}  // namespace

void bind_attention(py::module_& m, py::class_<Tensor>& /*cls*/) {
  m.def("scaled_dot_product_attention",
        [](const Tensor& q, const Tensor& k, const Tensor& v, std::optional<Tensor> attn_mask, double dropout_p,
           bool is_causal, std::optional<double> scale, const py::object& generator) {
          return scaled_dot_product_attention(q, k, v, or_undefined(attn_mask), dropout_p, is_causal, scale,
                                              generator_from(generator));
        },
        py::arg("query"), py::arg("key"), py::arg("value"), py::arg("attn_mask") = py::none(),
        py::arg("dropout_p") = 0.0, py::arg("is_causal") = false, py::arg("scale") = py::none(),
        py::arg("generator") = py::none());
  m.def("_sdpa_with_weights",
        [](const Tensor& q, const Tensor& k, const Tensor& v, std::optional<Tensor> attn_mask, double dropout_p,
           bool is_causal, std::optional<double> scale, const py::object& generator) {
          return scaled_dot_product_attention_with_weights(q, k, v, or_undefined(attn_mask), dropout_p, is_causal,
                                                           scale, generator_from(generator));
        },
        py::arg("query"), py::arg("key"), py::arg("value"), py::arg("attn_mask") = py::none(),
        py::arg("dropout_p") = 0.0, py::arg("is_causal") = false, py::arg("scale") = py::none(),
        py::arg("generator") = py::none());
}

}  // namespace bigmodel::python
