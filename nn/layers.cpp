// The C++ layers (see layers.h): construction, PyTorch's default initialisation, forward.
#include "nn/layers.h"

#include <cmath>
#include <typeinfo>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/conv.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/norm.h"
#include "core/ops/pool.h"
#include "core/ops/softmax.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"

namespace bigmodel::nn {
namespace {

// U(-bound, bound) in place, outside the graph (what init.uniform_ does in Python).
void init_uniform(Tensor& t, double bound) {
  NoGradGuard no_grad;
  uniform_(t, -bound, bound);
}

}  // namespace

// ---- Linear ---------------------------------------------------------------------------
Linear::Linear(int64_t in, int64_t out, bool with_bias, DType dtype) : in_features(in), out_features(out) {
  BM_CHECK_VALUE(in >= 0 && out >= 0, "Linear", "in_features and out_features must be >= 0, got ", in, ", ", out);
  weight = register_parameter("weight", empty({out, in}, dtype));
  bias = register_parameter("bias", with_bias ? empty({out}, dtype) : Tensor());
  reset_parameters();
}

void Linear::reset_parameters() {
  // kaiming_uniform_(a = sqrt(5)): gain sqrt(2 / 6) times sqrt(3 / fan_in) = 1 / sqrt(fan_in).
  const double bound = in_features > 0 ? 1.0 / std::sqrt(static_cast<double>(in_features)) : 0.0;
  if (in_features > 0) init_uniform(weight, bound);
  if (bias.defined()) init_uniform(bias, bound);
}

Tensor Linear::forward(const Tensor& input) {
  return in_layer(type_name(), [&] { return linear(input, weight, bias); });
}

// ---- Conv2d ---------------------------------------------------------------------------
Conv2d::Conv2d(int64_t in, int64_t out, Size2 k, Size2 s, Size2 p, Size2 d, int64_t g, bool with_bias, DType dtype)
    : in_channels(in), out_channels(out), groups(g), kernel_size(k), stride(s), padding(p), dilation(d) {
  const char* op = "Conv2d";
  BM_CHECK_VALUE(g > 0, op, "groups must be a positive integer, got ", g);
  BM_CHECK_VALUE(in > 0 && out > 0, op, "in_channels and out_channels must be positive, got ", in, ", ", out);
  BM_CHECK_VALUE(in % g == 0 && out % g == 0, op, "in_channels (", in, ") and out_channels (", out,
                 ") must both be divisible by groups (", g, ")");
  BM_CHECK_VALUE(k.h > 0 && k.w > 0, op, "kernel_size must be positive, got (", k.h, ", ", k.w, ")");
  weight = register_parameter("weight", empty({out, in / g, k.h, k.w}, dtype));
  bias = register_parameter("bias", with_bias ? empty({out}, dtype) : Tensor());
  reset_parameters();
}

void Conv2d::reset_parameters() {
  const double fan_in = static_cast<double>(in_channels / groups * kernel_size.h * kernel_size.w);
  const double bound = 1.0 / std::sqrt(fan_in);
  init_uniform(weight, bound);
  if (bias.defined()) init_uniform(bias, bound);
}

Tensor Conv2d::forward(const Tensor& input) {
  return in_layer(type_name(), [&] {
    return conv2d(input, weight, bias, {stride.h, stride.w}, {padding.h, padding.w}, {dilation.h, dilation.w},
                  groups);
  });
}

// ---- MaxPool2d ------------------------------------------------------------------------
MaxPool2d::MaxPool2d(Size2 k, std::optional<Size2> s, Size2 p) : kernel_size(k), stride(s ? *s : k), padding(p) {}

Tensor MaxPool2d::forward(const Tensor& input) {
  return in_layer(type_name(), [&] {
    return max_pool2d(input, {kernel_size.h, kernel_size.w}, std::array<int64_t, 2>{stride.h, stride.w},
                      {padding.h, padding.w});
  });
}

// ---- AvgPool2d, AdaptiveAvgPool2d --------------------------------------------------------
AvgPool2d::AvgPool2d(Size2 k, std::optional<Size2> s, Size2 p, bool ceil, bool include_pad,
                     std::optional<int64_t> divisor)
    : kernel_size(k), stride(s ? *s : k), padding(p), ceil_mode(ceil), count_include_pad(include_pad),
      divisor_override(divisor) {
  BM_CHECK_VALUE(k.h > 0 && k.w > 0, "AvgPool2d", "kernel_size must be positive, got (", k.h, ", ", k.w, ")");
  BM_CHECK_VALUE(!divisor || *divisor > 0, "AvgPool2d", "divisor_override must be positive, got ",
                 divisor ? *divisor : 0);
}

Tensor AvgPool2d::forward(const Tensor& input) {
  return in_layer(type_name(), [&] {
    return avg_pool2d(input, {kernel_size.h, kernel_size.w}, std::array<int64_t, 2>{stride.h, stride.w},
                      {padding.h, padding.w}, ceil_mode, count_include_pad, divisor_override);
  });
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 out) : output_size(out) {
  BM_CHECK_VALUE(out.h >= 0 && out.w >= 0, "AdaptiveAvgPool2d", "output_size must be >= 0, got (", out.h, ", ",
                 out.w, ")");
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& input) {
  return in_layer(type_name(), [&] { return adaptive_avg_pool2d(input, {output_size.h, output_size.w}); });
}

// ---- BatchNorm2d ----------------------------------------------------------------------
BatchNorm2d::BatchNorm2d(int64_t n, double eps_, double momentum_, DType dtype)
    : num_features(n), eps(eps_), momentum(momentum_) {
  BM_CHECK_VALUE(n > 0, "BatchNorm2d", "num_features must be positive, got ", n);
  weight = register_parameter("weight", ones({n}, dtype));
  bias = register_parameter("bias", zeros({n}, dtype));
  running_mean = register_buffer("running_mean", zeros({n}, dtype));
  running_var = register_buffer("running_var", ones({n}, dtype));
  num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::Int64));
}

Tensor BatchNorm2d::forward(const Tensor& input) {
  BM_CHECK_SHAPE(input.dim() == 4, "BatchNorm2d", "expected 4D input (got ", input.dim(), "D input of shape ",
                 shape_str(input.sizes()), ")");
  if (is_training()) {
    NoGradGuard no_grad;
    add_(num_batches_tracked, Scalar(int64_t{1}));
  }
  return in_layer(type_name(), [&] {
    return batch_norm(input, running_mean, running_var, weight, bias, is_training(), momentum, eps);
  });
}

// ---- Dropout, Flatten, ReLU -------------------------------------------------------------
Dropout::Dropout(double p_) : p(p_) {
  BM_CHECK_VALUE(p >= 0.0 && p <= 1.0, "Dropout", "probability has to be between 0 and 1, but got ", p);
}

Tensor Dropout::forward(const Tensor& input) {
  if (!is_training() || p == 0.0) return input;
  if (p == 1.0) return mul(input, Scalar(0.0));
  return mul(input, dropout_mask(input.sizes(), p, input.dtype(), input.device()));
}

Tensor Flatten::forward(const Tensor& input) {
  return in_layer(type_name(), [&] { return flatten(input, start_dim, end_dim); });
}

Tensor ReLU::forward(const Tensor& input) {
  return in_layer(type_name(), [&] { return relu(input); });
}

// ---- GELU, Tanh, Sigmoid, Softmax, LogSoftmax ------------------------------------------------
GELU::GELU(std::string approx) : approximate(std::move(approx)) {
  BM_CHECK_VALUE(approximate == "none" || approximate == "tanh", "GELU",
                 "approximate must be 'none' or 'tanh', got '", approximate, "'");
}

Tensor GELU::forward(const Tensor& input) {
  return in_layer(type_name(), [&] { return gelu(input, approximate); });
}

Tensor Tanh::forward(const Tensor& input) {
  return in_layer(type_name(), [&] { return tanh(input); });
}

Tensor Sigmoid::forward(const Tensor& input) {
  return in_layer(type_name(), [&] { return sigmoid(input); });
}

Tensor Softmax::forward(const Tensor& input) {
  return in_layer(type_name(), [&] { return softmax(input, dim); });
}

Tensor LogSoftmax::forward(const Tensor& input) {
  return in_layer(type_name(), [&] { return log_softmax(input, dim); });
}

// ---- Sequential ------------------------------------------------------------------------
Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) push_back(m);
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(size_), std::move(module));
  ++size_;
}

namespace {

// The linear_act activation a child stands for when it directly follows a Linear: "relu",
// "gelu", "gelu_tanh", or nullptr. Exact types only: a subclass may override forward.
const char* fusable_activation(const Module& m) {
  if (typeid(m) == typeid(ReLU)) return "relu";
  if (typeid(m) != typeid(GELU)) return nullptr;
  const std::string& approximate = static_cast<const GELU&>(m).approximate;
  return approximate == "none" ? "gelu" : approximate == "tanh" ? "gelu_tanh" : nullptr;
}

}  // namespace

Tensor Sequential::forward(const Tensor& input) {
  // A Linear followed by ReLU / GELU runs as one linear_act (the activation in the GEMM's
  // epilogue, as the C++ BERT's intermediate layer and Python's feed-forward blocks do): the
  // two modules' values and gradients (within rounding), one pass over the output less.
  const auto mods = children();
  Tensor x = input;
  for (size_t i = 0; i < mods.size(); ++i) {
    const Module& m = *mods[i];
    const char* act = i + 1 < mods.size() && typeid(m) == typeid(Linear) ? fusable_activation(*mods[i + 1]) : nullptr;
    if (act) {
      const auto& lin = static_cast<const Linear&>(m);
      x = in_layer(lin.type_name(), [&] { return linear_act(x, lin.weight, lin.bias, act); });
      ++i;  // the activation ran inside linear_act
    } else {
      x = (*mods[i])(x);
    }
  }
  return x;
}

// ---- ModuleList ---------------------------------------------------------------------------
ModuleList::ModuleList(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) push_back(m);
}

void ModuleList::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

std::shared_ptr<Module> ModuleList::operator[](int64_t i) const {
  const auto n = static_cast<int64_t>(modules_.size());
  BM_CHECK_INDEX(i >= -n && i < n, "ModuleList", "index ", i, " is out of range for ", n, " modules");
  return modules_[static_cast<size_t>(i < 0 ? i + n : i)];
}

Tensor ModuleList::forward(const Tensor&) {
  throw NotImplementedError("[ModuleList] has no forward(); iterate over it in the parent's forward");
}

}  // namespace bigmodel::nn
