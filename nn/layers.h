// The C++ layers mirroring bigmodel.nn (python/bigmodel/nn): Linear, Conv2d, MaxPool2d,
// AvgPool2d, AdaptiveAvgPool2d, BatchNorm2d, Dropout, Flatten, the activations (ReLU, GELU,
// Tanh, Sigmoid, Softmax, LogSoftmax) and the containers Sequential and ModuleList. Parameter and buffer names and the
// default initialisation (PyTorch's, drawn from bigmodel's default generator) equal Python's,
// so state dicts interchange (e.g. through core/safetensors.h).
#pragma once
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "nn/module.h"

namespace bigmodel::nn {

// An int or an (h, w) pair: Conv2d(1, 32, 3) and Conv2d(1, 32, {3, 5}) both work.
struct Size2 {
  int64_t h, w;
  Size2(int64_t v) : h(v), w(v) {}  // NOLINT: implicit on purpose
  Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
};

// y = x W^T + b, W [out, in]; W and b from U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, DType dtype = kDefaultFloat);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Linear"; }
  void reset_parameters();
  int64_t in_features, out_features;
  Tensor weight, bias;  // bias undefined when built without one
};

// weight [out, in / groups, kH, kW] and bias [out], both from U(-1/sqrt(fan_in), 1/sqrt(fan_in))
// with fan_in = in / groups * kH * kW (kaiming_uniform with a = sqrt(5), PyTorch's default).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Size2 stride = 1, Size2 padding = 0,
         Size2 dilation = 1, int64_t groups = 1, bool bias = true, DType dtype = kDefaultFloat);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Conv2d"; }
  void reset_parameters();
  int64_t in_channels, out_channels, groups;
  Size2 kernel_size, stride, padding, dilation;
  Tensor weight, bias;
};

class MaxPool2d : public Module {
 public:
  // stride defaults to kernel_size, as in PyTorch.
  explicit MaxPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt, Size2 padding = 0);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "MaxPool2d"; }
  Size2 kernel_size, stride, padding;
};

// Mean over kernel_size windows; stride defaults to kernel_size. count_include_pad: padded
// zeros count in the divisor; divisor_override (> 0) replaces the divisor.
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt, Size2 padding = 0,
                     bool ceil_mode = false, bool count_include_pad = true,
                     std::optional<int64_t> divisor_override = std::nullopt);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "AvgPool2d"; }
  Size2 kernel_size, stride, padding;
  bool ceil_mode, count_include_pad;
  std::optional<int64_t> divisor_override;
};

// Averages each [H, W] plane of an [N, C, H, W] or [C, H, W] input down to output_size.
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  Size2 output_size;
};

// weight (ones), bias (zeros); buffers running_mean (zeros), running_var (ones) and
// num_batches_tracked (int64 0-d), the names PyTorch uses. Training normalises with the batch
// statistics and updates the running ones; eval uses the running ones. Input [N, C, H, W].
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, DType dtype = kDefaultFloat);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "BatchNorm2d"; }
  int64_t num_features;
  double eps, momentum;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
};

// Zeroes each element with probability p and scales the rest by 1 / (1 - p) while
// training (bigmodel's default generator); the identity in eval mode.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Dropout"; }
  double p;
};

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Flatten"; }
  int64_t start_dim, end_dim;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "ReLU"; }
};

// approximate "none": x * Phi(x) with the erf; "tanh": the tanh approximation.
class GELU : public Module {
 public:
  explicit GELU(std::string approximate = "none");
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "GELU"; }
  std::string approximate;
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Tanh"; }
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Sigmoid"; }
};

// Softmax along dim (negative counts from the end). C++ takes the dim explicitly: Python's
// implicit-dim legacy rule is deprecated in PyTorch too.
class Softmax : public Module {
 public:
  explicit Softmax(int64_t dim) : dim(dim) {}
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Softmax"; }
  int64_t dim;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(int64_t dim) : dim(dim) {}
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "LogSoftmax"; }
  int64_t dim;
};

// Runs its children in order; they are named "0", "1", ... as in Python.
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  void push_back(std::shared_ptr<Module> module);
  size_t size() const { return size_; }
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Sequential"; }

 private:
  size_t size_ = 0;
};

// A list of modules registered as children "0", "1", ... (their parameters appear in the
// parent's state_dict as "<list>.<i>.<name>", as Python's ModuleList). It has no forward
// (NotImplementedError): the parent iterates over it.
class ModuleList : public Module {
 public:
  ModuleList() = default;
  ModuleList(std::initializer_list<std::shared_ptr<Module>> modules);
  void push_back(std::shared_ptr<Module> module);
  size_t size() const { return modules_.size(); }
  // Negative i counts from the end; IndexError when out of range.
  std::shared_ptr<Module> operator[](int64_t i) const;
  // The i-th module as an M (ValueError when it is another type).
  template <class M>
  std::shared_ptr<M> get(int64_t i) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[i]);
    if (!m)
      throw ValueError("[ModuleList] module " + std::to_string(i) + " has another type (" +
                       (*this)[i]->type_name() + ")");
    return m;
  }
  std::vector<std::shared_ptr<Module>>::const_iterator begin() const { return modules_.begin(); }
  std::vector<std::shared_ptr<Module>>::const_iterator end() const { return modules_.end(); }
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "ModuleList"; }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace bigmodel::nn
