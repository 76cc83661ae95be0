// softmax / log_softmax front ends. The backward is written with ops (sum, mul, sub and
// softmax itself), so it runs on every device and is differentiable again.
#include "core/ops/softmax.h"

#include "core/autograd.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/ops/view.h"

namespace bigmodel {

BM_DEFINE_KERNEL(softmax_kernel);

namespace {

Tensor softmax_impl(const Tensor& self, int64_t dim, std::optional<DType> dtype, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  if (dtype) {
    BM_CHECK_DTYPE(is_floating(*dtype), op, "dtype must be floating point, got ", dtype_name(*dtype));
  }
  Tensor x = dtype && *dtype != self.dtype() ? to(self, *dtype) : self;
  BM_CHECK_DTYPE(is_floating(x.dtype()), op, "expects a floating point tensor, got ", dtype_name(x.dtype()),
                 "; pass dtype= or convert with .float() first");
  const int64_t d = wrap_dim(dim, x.dim(), op);
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (i < d) outer *= x.size(i);
    else if (i == d) n = x.size(i);
    else inner *= x.size(i);
  }
  Tensor src = contiguous(x.detach());
  Tensor out = Tensor::empty(x.sizes(), x.dtype(), x.device());
  if (out.numel() > 0) softmax_kernel.get(x.device())(out, src, outer, n, inner, log);
  if (needs_grad({x})) {
    const int64_t wd = x.dim() == 0 ? 0 : d;
    if (log) {
      // d/dx log_softmax: g - softmax(x) * sum(g), with softmax recomputed from x.
      SavedTensor saved_in(x);
      record_function(op, {x}, {out}, [=](const std::vector<Tensor>& g) {
        Tensor probs = softmax(saved_in.unpack(op), wd);
        return std::vector<Tensor>{sub(g[0], mul(probs, sum(g[0], {wd}, true)))};
      }, SecondOrder::Full);
    } else {
      // d/dx softmax: y * (g - sum(g * y)).
      SavedTensor saved_out(out, /*is_output=*/true);
      record_function(op, {x}, {out}, [=](const std::vector<Tensor>& g) {
        Tensor y = saved_out.unpack(op);
        return std::vector<Tensor>{mul(y, sub(g[0], sum(mul(g[0], y), {wd}, true)))};
      }, SecondOrder::Full);
    }
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& self, int64_t dim, std::optional<DType> dtype) {
  return softmax_impl(self, dim, dtype, false);
}

Tensor log_softmax(const Tensor& self, int64_t dim, std::optional<DType> dtype) {
  return softmax_impl(self, dim, dtype, true);
}

}  // namespace bigmodel
