// Python bindings for the conv_pool family: conv1d / conv2d and the 2-D pools as module
// functions of bigmodel._C with PyTorch's signatures (int-or-tuple arguments, padding
// strings, return_indices); bigmodel.nn.functional re-exports them.
#include "core/ops/conv.h"
#include "core/ops/pool.h"
#include "python/src/common.h"

namespace bigmodel::python {
namespace {

// An int or a 1- / 2-element sequence of ints -> (h, w), as PyTorch's _pair.
std::array<int64_t, 2> pair_arg(const py::handle& obj, const char* name, const char* op) {
  if (py::isinstance<py::bool_>(obj)) throw ValueError(str_cat("[", op, "] ", name, " must be an int or a tuple of ints"));
  if (py::isinstance<py::int_>(obj)) {
    const int64_t v = obj.cast<int64_t>();
    return {v, v};
  }
  if (py::isinstance<py::sequence>(obj) && !py::isinstance<py::str>(obj)) {
    const auto seq = obj.cast<py::sequence>();
    if (seq.size() == 1 || seq.size() == 2) {
      const int64_t a = seq[0].cast<int64_t>();
      return {a, seq.size() == 2 ? seq[1].cast<int64_t>() : a};
    }
    throw ValueError(str_cat("[", op, "] ", name, " must have 2 elements, got ", seq.size()));
  }
  throw ValueError(str_cat("[", op, "] ", name, " must be an int or a tuple of ints, got ",
                           std::string(py::str(obj.get_type().attr("__name__")))));
}

// An int or a 1-element sequence -> int, as PyTorch's _single.
int64_t single_arg(const py::handle& obj, const char* name, const char* op) {
  if (py::isinstance<py::int_>(obj) && !py::isinstance<py::bool_>(obj)) return obj.cast<int64_t>();
  if (py::isinstance<py::sequence>(obj) && !py::isinstance<py::str>(obj)) {
    const auto seq = obj.cast<py::sequence>();
    if (seq.size() == 1) return seq[0].cast<int64_t>();
    throw ValueError(str_cat("[", op, "] ", name, " must have 1 element, got ", seq.size()));
  }
  throw ValueError(str_cat("[", op, "] ", name, " must be an int or a 1-tuple of ints"));
}

// Pool stride: None (or an empty sequence, as PyTorch allows) means the kernel size.
std::optional<std::array<int64_t, 2>> stride_arg(const py::object& obj, const char* op) {
  if (obj.is_none()) return std::nullopt;
  if (py::isinstance<py::sequence>(obj) && py::len(obj) == 0) return std::nullopt;
  return pair_arg(obj, "stride", op);
}

// Adaptive output_size: an int or a pair whose None entries keep the input's size.
std::array<int64_t, 2> adaptive_size(const Tensor& input, const py::object& obj, const char* op) {
  if (py::isinstance<py::sequence>(obj) && !py::isinstance<py::str>(obj)) {
    const auto seq = obj.cast<py::sequence>();
    if (seq.size() != 2) throw ValueError(str_cat("[", op, "] output_size must have 2 elements, got ", seq.size()));
    std::array<int64_t, 2> r{};
    for (int d = 0; d < 2; ++d) {
      if (seq[d].is_none()) {
        BM_CHECK_SHAPE(input.dim() >= 2, op, "output_size None needs an input with spatial dims, got input ",
                       shape_str(input.sizes()));
        r[d] = input.size(input.dim() - 2 + d);
      } else {
        r[d] = seq[d].cast<int64_t>();
      }
    }
    return r;
  }
  return pair_arg(obj, "output_size", op);
}

Tensor or_undefined(const std::optional<Tensor>& t) { return t ? *t : Tensor(); }

py::object with_indices(const std::pair<Tensor, Tensor>& r, bool return_indices) {
  if (return_indices) return py::make_tuple(r.first, r.second);
  return py::cast(r.first);
}

}  // namespace

void bind_conv_pool(py::module_& m, py::class_<Tensor>& /*cls*/) {
  m.def("conv2d", [](const Tensor& input, const Tensor& weight, std::optional<Tensor> bias, py::object stride,
                     py::object padding, py::object dilation, int64_t groups) {
    const char* op = "conv2d";
    const auto s = pair_arg(stride, "stride", op), d = pair_arg(dilation, "dilation", op);
    if (py::isinstance<py::str>(padding))
      return conv2d(input, weight, or_undefined(bias), s, parse_conv_padding(padding.cast<std::string>(), op), d,
                    groups);
    return conv2d(input, weight, or_undefined(bias), s, pair_arg(padding, "padding", op), d, groups);
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
        py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1);

  // conv2d's input gradient as an op (differentiable in both operands): what
  // nn.functional.conv_transpose2d is built on.
  m.def("_conv2d_backward_input", [](const Tensor& grad_output, const Tensor& weight, const std::vector<int64_t>& sizes,
                                     py::object stride, py::object padding, py::object dilation, int64_t groups) {
    const char* op = "conv_transpose2d";
    const auto s = pair_arg(stride, "stride", op), pd = pair_arg(padding, "padding", op),
               d = pair_arg(dilation, "dilation", op);
    BM_CHECK_VALUE(groups > 0, op, "groups must be positive, got ", groups);
    Conv2dParams p;
    p.stride_h = s[0], p.stride_w = s[1], p.pad_h = pd[0], p.pad_w = pd[1];
    p.dilation_h = d[0], p.dilation_w = d[1], p.groups = groups;
    return conv2d_backward_input(grad_output, weight, Shape(sizes.begin(), sizes.end()), p);
  }, py::arg("grad_output"), py::arg("weight"), py::arg("input_sizes"), py::arg("stride") = 1,
        py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1);

  m.def("conv1d", [](const Tensor& input, const Tensor& weight, std::optional<Tensor> bias, py::object stride,
                     py::object padding, py::object dilation, int64_t groups) {
    const char* op = "conv1d";
    const int64_t s = single_arg(stride, "stride", op), d = single_arg(dilation, "dilation", op);
    if (py::isinstance<py::str>(padding))
      return conv1d(input, weight, or_undefined(bias), s, parse_conv_padding(padding.cast<std::string>(), op), d,
                    groups);
    return conv1d(input, weight, or_undefined(bias), s, single_arg(padding, "padding", op), d, groups);
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
        py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1);

  auto max_pool = [](const Tensor& input, py::object kernel_size, py::object stride, py::object padding,
                     py::object dilation, bool ceil_mode) {
    const char* op = "max_pool2d";
    return max_pool2d_with_indices(input, pair_arg(kernel_size, "kernel_size", op), stride_arg(stride, op),
                                   pair_arg(padding, "padding", op), pair_arg(dilation, "dilation", op), ceil_mode);
  };
  m.def("max_pool2d", [max_pool](const Tensor& input, py::object kernel_size, py::object stride, py::object padding,
                                 py::object dilation, bool ceil_mode, bool return_indices) {
    return with_indices(max_pool(input, kernel_size, stride, padding, dilation, ceil_mode), return_indices);
  }, py::arg("input"), py::arg("kernel_size"), py::arg("stride") = py::none(), py::arg("padding") = 0,
        py::arg("dilation") = 1, py::arg("ceil_mode") = false, py::arg("return_indices") = false);
  m.def("max_pool2d_with_indices", [max_pool](const Tensor& input, py::object kernel_size, py::object stride,
                                              py::object padding, py::object dilation, bool ceil_mode) {
    return max_pool(input, kernel_size, stride, padding, dilation, ceil_mode);
  }, py::arg("input"), py::arg("kernel_size"), py::arg("stride") = py::none(), py::arg("padding") = 0,
        py::arg("dilation") = 1, py::arg("ceil_mode") = false);

  m.def("avg_pool2d", [](const Tensor& input, py::object kernel_size, py::object stride, py::object padding,
                         bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override) {
    const char* op = "avg_pool2d";
    return avg_pool2d(input, pair_arg(kernel_size, "kernel_size", op), stride_arg(stride, op),
                      pair_arg(padding, "padding", op), ceil_mode, count_include_pad, divisor_override);
  }, py::arg("input"), py::arg("kernel_size"), py::arg("stride") = py::none(), py::arg("padding") = 0,
        py::arg("ceil_mode") = false, py::arg("count_include_pad") = true, py::arg("divisor_override") = py::none());

  m.def("adaptive_avg_pool2d", [](const Tensor& input, py::object output_size) {
    return adaptive_avg_pool2d(input, adaptive_size(input, output_size, "adaptive_avg_pool2d"));
  }, py::arg("input"), py::arg("output_size"));
  m.def("adaptive_max_pool2d", [](const Tensor& input, py::object output_size, bool return_indices) {
    return with_indices(adaptive_max_pool2d(input, adaptive_size(input, output_size, "adaptive_max_pool2d")),
                        return_indices);
  }, py::arg("input"), py::arg("output_size"), py::arg("return_indices") = false);
}

}  // namespace bigmodel::python
