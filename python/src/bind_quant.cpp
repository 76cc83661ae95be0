// Python bindings: int8 quantization ops (core/ops/quant.h). Private names (_C._quantize_int8,
// ...): the user-facing API is bigmodel.quantization, which wraps packed tensors in QTensor.
#include "core/ops/quant.h"
#include "python/src/common.h"

namespace bigmodel::python {

namespace {
Tensor opt(const std::optional<Tensor>& t) { return t ? *t : Tensor(); }

std::array<int64_t, 2> pair_of(const std::vector<int64_t>& v, const char* what) {
  BM_CHECK_VALUE(v.size() == 1 || v.size() == 2, "quantized_conv2d", what, " must have 1 or 2 values, got ",
                 v.size());
  return {v[0], v.size() == 2 ? v[1] : v[0]};
}
}  // namespace

void bind_quant(py::module_& m, py::class_<Tensor>& /*cls*/) {
  m.def("_int8_words", &int8_words, py::arg("k"));
  m.def("_quantize_int8", &quantize_int8, py::arg("input"), py::arg("scale"));
  m.def("_dequantize_int8", &dequantize_int8, py::arg("q"), py::arg("k"), py::arg("scale"));
  m.def("_int8_gemm", [](const Tensor& a, const Tensor& b, int64_t k, std::optional<Tensor> a_scale,
                         std::optional<Tensor> b_scale, std::optional<Tensor> bias) {
    if (!a_scale && !b_scale) {
      BM_CHECK_VALUE(!bias, "int8_gemm", "bias needs a_scale and b_scale (the int32 result has no epilogue)");
      return int8_gemm(a, b, k);
    }
    BM_CHECK_VALUE(a_scale && b_scale, "int8_gemm", "give both a_scale and b_scale, or neither");
    return int8_gemm_scaled(a, b, k, *a_scale, *b_scale, opt(bias));
  }, py::arg("a"), py::arg("b"), py::arg("k"), py::arg("a_scale") = py::none(), py::arg("b_scale") = py::none(),
     py::arg("bias") = py::none());
  m.def("_quantized_linear", [](const Tensor& input, const Tensor& weight_q, int64_t in_features,
                                const Tensor& weight_scale, const Tensor& input_scale, std::optional<Tensor> bias) {
    return quantized_linear(input, weight_q, in_features, weight_scale, input_scale, opt(bias));
  }, py::arg("input"), py::arg("weight_q"), py::arg("in_features"), py::arg("weight_scale"), py::arg("input_scale"),
     py::arg("bias") = py::none());
  m.def("_quantized_conv2d", [](const Tensor& input, const Tensor& weight_q, const std::vector<int64_t>& weight_shape,
                                const Tensor& weight_scale, const Tensor& input_scale, std::optional<Tensor> bias,
                                const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                                const std::vector<int64_t>& dilation) {
    return quantized_conv2d(input, weight_q, Shape(weight_shape.begin(), weight_shape.end()), weight_scale,
                            input_scale, opt(bias), pair_of(stride, "stride"), pair_of(padding, "padding"),
                            pair_of(dilation, "dilation"));
  }, py::arg("input"), py::arg("weight_q"), py::arg("weight_shape"), py::arg("weight_scale"), py::arg("input_scale"),
     py::arg("bias") = py::none(), py::arg("stride") = std::vector<int64_t>{1, 1},
     py::arg("padding") = std::vector<int64_t>{0, 0}, py::arg("dilation") = std::vector<int64_t>{1, 1});
}

}  // namespace bigmodel::python
