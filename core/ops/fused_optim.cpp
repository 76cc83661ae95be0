// Front ends of the multi-tensor optimizer ops (see fused_optim.h): check the lists once,
// advance the step counters, create missing momentum buffers, then one kernel call per list.
#include "core/ops/fused_optim.h"

#include <cmath>
#include <string>
#include <utility>

#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/view.h"
#include "core/shape.h"

namespace bigmodel {

BM_DEFINE_KERNEL(fused_sgd_kernel);
BM_DEFINE_KERNEL(fused_adam_kernel);
BM_DEFINE_KERNEL(fused_norm_kernel);
BM_DEFINE_KERNEL(fused_mul_kernel);
BM_DEFINE_KERNEL(fused_unscale_kernel);

namespace {

struct NamedList {
  const char* name;
  const std::vector<Tensor>* tensors;
  bool state = true;  // of fused_state_dtype(params' dtype); false: of the params' dtype (grads)
};

bool is_half(DType dt) { return dt == DType::Float16 || dt == DType::BFloat16; }

// Every list has one entry per parameter; every entry is defined, contiguous, on the
// parameters' device and shaped like its parameter; grads share the parameters' dtype
// (Float32, Float64, Float16 or BFloat16) and the state lists are of fused_state_dtype of it.
// allow_undefined lets one list hold undefined entries (momentum buffers still to be created).
// master_params: empty, or one float32 copy per half parameter.
void check_param_lists(const char* op, const std::vector<Tensor>& params, std::vector<NamedList> lists,
                       const std::vector<Tensor>& master_params, const char* allow_undefined = nullptr) {
  const size_t n = params.size();
  for (const NamedList& l : lists) {
    BM_CHECK_VALUE(l.tensors->size() == n, op, "expected one ", l.name, " per parameter: got ", n,
                   " params and ", l.tensors->size(), " ", l.name);
  }
  BM_CHECK_VALUE(master_params.empty() || master_params.size() == n, op,
                 "expected one master_params entry per parameter (or none): got ", n, " params and ",
                 master_params.size(), " master_params");
  if (n == 0) return;
  BM_CHECK_VALUE(params[0].defined(), op, "params[0] is undefined");
  const DType dt = params[0].dtype();
  const DType st = fused_state_dtype(dt);
  const Device dev = params[0].device();
  BM_CHECK_DTYPE(dt == DType::Float32 || dt == DType::Float64 || is_half(dt), op,
                 "supports float32, float64, float16 and bfloat16 parameters, got ", dtype_name(dt),
                 " (use the per-tensor optimizer path for other dtypes)");
  BM_CHECK_DTYPE(master_params.empty() || is_half(dt), op,
                 "master_params are float32 copies of float16/bfloat16 parameters, but the parameters are ",
                 dtype_name(dt), " (pass no master_params)");
  lists.insert(lists.begin(), NamedList{"params", &params, false});
  if (!master_params.empty()) lists.push_back({"master_params", &master_params, true});
  for (const NamedList& l : lists) {
    const DType want = l.state ? st : dt;
    for (size_t i = 0; i < n; ++i) {
      const Tensor& t = (*l.tensors)[i];
      if (!t.defined()) {
        BM_CHECK_VALUE(allow_undefined && std::string(allow_undefined) == l.name, op, l.name, "[", i,
                       "] is undefined");
        continue;
      }
      BM_CHECK_DTYPE(t.dtype() == want, op, "expected every ", want == dt ? "tensor" : "state tensor", " of dtype ",
                     dtype_name(want), want == dt ? " (params[0])" : " (the state of the parameters' dtype ",
                     want == dt ? "" : dtype_name(dt), want == dt ? "" : ")", ", got ", l.name, "[", i, "] of dtype ",
                     dtype_name(t.dtype()));
      BM_CHECK_DEVICE(t.device() == dev, op, "expected every tensor on ", dev.str(), " (params[0]), got ", l.name,
                      "[", i, "] on ", t.device().str());
      BM_CHECK_SHAPE(t.sizes() == params[i].sizes(), op, l.name, "[", i, "] has shape ", shape_str(t.sizes()),
                     " but params[", i, "] has shape ", shape_str(params[i].sizes()));
      BM_CHECK_VALUE(t.is_contiguous(), op, "expects contiguous tensors, ", l.name, "[", i, "] with shape ",
                     shape_str(t.sizes()), " is not");
    }
  }
}

// step += 1 (PyTorch keeps it as a float32 0-d tensor) and its new value, as the per-tensor
// optimizers' advance_step does. A CPU float32 counter is updated directly (no op dispatch:
// a model has hundreds of them).
int64_t advance_step_counter(const char* op, const Tensor& step, size_t i) {
  BM_CHECK_VALUE(step.defined() && step.numel() == 1, op, "state_steps[", i, "] must be a one-element tensor, got ",
                 step.defined() ? shape_str(step.sizes()) : std::string("undefined"));
  if (step.device().is_cpu() && step.dtype() == DType::Float32) {
    float* v = step.data<float>();
    *v = *v + 1.0f;
    step.bump_version();
    return static_cast<int64_t>(*v);
  }
  Tensor s = step;
  add_(s, Scalar(1.0));
  return static_cast<int64_t>(s.item().to_double());
}

void bump_versions(const std::vector<Tensor>& tensors) {
  for (const Tensor& t : tensors)
    if (t.defined()) t.bump_version();
}

}  // namespace

void fused_sgd_(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                std::vector<Tensor>& momentum_buffers, const FusedSGDOptions& o,
                const std::vector<Tensor>& master_params) {
  static const char* op = "fused_sgd_";
  const bool momentum = o.momentum != 0.0;
  std::vector<NamedList> lists{{"grads", &grads, false}};
  if (momentum) lists.push_back({"momentum_buffers", &momentum_buffers});
  check_param_lists(op, params, lists, master_params, "momentum_buffers");
  BM_CHECK_VALUE(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0), op,
                 "Nesterov momentum requires a momentum and zero dampening");
  if (params.empty()) return;
  std::vector<uint8_t> first(momentum ? params.size() : 0, 0);
  if (momentum) {
    for (size_t i = 0; i < params.size(); ++i) {
      if (momentum_buffers[i].defined()) continue;
      momentum_buffers[i] =
          Tensor::empty(params[i].sizes(), fused_state_dtype(params[i].dtype()), params[i].device());
      first[i] = 1;
    }
  }
  const std::vector<Tensor> no_buffers;
  fused_sgd_kernel.get(params[0].device())(params, grads, momentum ? momentum_buffers : no_buffers, first,
                                           master_params, o);
  bump_versions(params);
  bump_versions(master_params);
  if (momentum) bump_versions(momentum_buffers);
}

void fused_adam_(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                 const std::vector<Tensor>& max_exp_avg_sqs, const std::vector<Tensor>& state_steps,
                 const FusedAdamOptions& o, const std::vector<Tensor>& master_params) {
  static const char* op = "fused_adam_";
  std::vector<NamedList> lists{{"grads", &grads, false}, {"exp_avgs", &exp_avgs}, {"exp_avg_sqs", &exp_avg_sqs}};
  if (o.amsgrad) lists.push_back({"max_exp_avg_sqs", &max_exp_avg_sqs});
  check_param_lists(op, params, lists, master_params);
  BM_CHECK_VALUE(o.amsgrad || max_exp_avg_sqs.empty(), op, "max_exp_avg_sqs given without amsgrad");
  BM_CHECK_VALUE(state_steps.size() == params.size(), op, "expected one state_steps entry per parameter: got ",
                 params.size(), " params and ", state_steps.size(), " state_steps");
  BM_CHECK_VALUE(o.beta1 >= 0.0 && o.beta1 < 1.0 && o.beta2 >= 0.0 && o.beta2 < 1.0, op,
                 "betas must be in [0, 1), got (", o.beta1, ", ", o.beta2, ")");
  if (params.empty()) return;
  std::vector<int64_t> steps(params.size());
  for (size_t i = 0; i < params.size(); ++i) steps[i] = advance_step_counter(op, state_steps[i], i);
  fused_adam_kernel.get(params[0].device())(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, master_params,
                                            steps, o);
  bump_versions(params);
  bump_versions(master_params);
  bump_versions(exp_avgs);
  bump_versions(exp_avg_sqs);
  bump_versions(max_exp_avg_sqs);
}

Tensor fused_norm(const std::vector<Tensor>& tensors, double norm_type) {
  static const char* op = "fused_norm";
  BM_CHECK_VALUE(!tensors.empty(), op, "expects at least one tensor");
  BM_CHECK_VALUE(norm_type > 0.0 && !std::isnan(norm_type) && !(std::isinf(norm_type) && norm_type < 0), op,
                 "norm_type must be positive or inf, got ", norm_type);
  BM_CHECK_VALUE(tensors[0].defined(), op, "tensors[0] is undefined");
  const DType dt = tensors[0].dtype();
  const Device dev = tensors[0].device();
  BM_CHECK_DTYPE(is_floating(dt), op, "expects floating point tensors, got ", dtype_name(dt));
  std::vector<Tensor> flat;
  flat.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    BM_CHECK_VALUE(t.defined(), op, "tensors[", i, "] is undefined");
    BM_CHECK_DTYPE(t.dtype() == dt, op, "expected every tensor of dtype ", dtype_name(dt), " (tensors[0]), got tensors[",
                   i, "] of dtype ", dtype_name(t.dtype()));
    BM_CHECK_DEVICE(t.device() == dev, op, "expected every tensor on ", dev.str(), " (tensors[0]), got tensors[", i,
                    "] on ", t.device().str());
    flat.push_back(contiguous(t.detach()));  // a no-op for the usual (contiguous) gradients
  }
  Tensor out = Tensor::empty({}, dt, dev);
  fused_norm_kernel.get(dev)(out, flat, norm_type);
  return out;
}

void fused_mul_(const std::vector<Tensor>& tensors, const Tensor& scale) {
  static const char* op = "fused_mul_";
  BM_CHECK_VALUE(scale.defined() && scale.numel() == 1, op, "expects a one-element scale, got ",
                 scale.defined() ? shape_str(scale.sizes()) : std::string("undefined"));
  if (tensors.empty()) return;
  BM_CHECK_VALUE(tensors[0].defined(), op, "tensors[0] is undefined");
  const DType dt = tensors[0].dtype();
  const Device dev = tensors[0].device();
  BM_CHECK_DTYPE(is_floating(dt), op, "expects floating point tensors, got ", dtype_name(dt));
  BM_CHECK_DEVICE(scale.device() == dev, op, "scale is on ", scale.device().str(), ", the tensors on ", dev.str());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    BM_CHECK_VALUE(t.defined(), op, "tensors[", i, "] is undefined");
    BM_CHECK_DTYPE(t.dtype() == dt, op, "expected every tensor of dtype ", dtype_name(dt), " (tensors[0]), got tensors[",
                   i, "] of dtype ", dtype_name(t.dtype()));
    BM_CHECK_DEVICE(t.device() == dev, op, "expected every tensor on ", dev.str(), " (tensors[0]), got tensors[", i,
                    "] on ", t.device().str());
    BM_CHECK_VALUE(t.is_contiguous(), op, "expects contiguous tensors, tensors[", i, "] with shape ",
                   shape_str(t.sizes()), " is not");
  }
  Tensor s = contiguous(to(reshape(scale.detach(), {}), dt));  // as g.mul_(coef.to(g.dtype))
  fused_mul_kernel.get(dev)(tensors, s);
  bump_versions(tensors);
}

void fused_unscale_(const std::vector<Tensor>& grads, const Tensor& found_inf, const Tensor& inv_scale) {
  static const char* op = "fused_unscale_";
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"found_inf", &found_inf}, {"inv_scale", &inv_scale}}) {
    BM_CHECK_VALUE(t->defined() && t->numel() == 1, op, "expects a one-element ", name, ", got ",
                   t->defined() ? shape_str(t->sizes()) : std::string("undefined"));
    BM_CHECK_DTYPE(t->dtype() == DType::Float32, op, name, " must be float32, got ", dtype_name(t->dtype()));
    BM_CHECK_VALUE(t->is_contiguous(), op, name, " must be contiguous");
  }
  BM_CHECK_DEVICE(found_inf.device() == inv_scale.device(), op, "found_inf is on ", found_inf.device().str(),
                  ", inv_scale on ", inv_scale.device().str());
  if (grads.empty()) return;
  BM_CHECK_VALUE(grads[0].defined(), op, "grads[0] is undefined");
  const DType dt = grads[0].dtype();
  const Device dev = grads[0].device();
  BM_CHECK_DTYPE(is_floating(dt), op, "expects floating point grads, got ", dtype_name(dt));
  BM_CHECK_DEVICE(found_inf.device() == dev, op, "found_inf and inv_scale are on ", found_inf.device().str(),
                  ", the grads on ", dev.str());
  for (size_t i = 0; i < grads.size(); ++i) {
    const Tensor& t = grads[i];
    BM_CHECK_VALUE(t.defined(), op, "grads[", i, "] is undefined");
    BM_CHECK_DTYPE(t.dtype() == dt, op, "expected every grad of dtype ", dtype_name(dt), " (grads[0]), got grads[", i,
                   "] of dtype ", dtype_name(t.dtype()));
    BM_CHECK_DEVICE(t.device() == dev, op, "expected every grad on ", dev.str(), " (grads[0]), got grads[", i,
                    "] on ", t.device().str());
    BM_CHECK_VALUE(t.is_contiguous(), op, "expects contiguous grads, grads[", i, "] with shape ", shape_str(t.sizes()),
                   " is not");
  }
  fused_unscale_kernel.get(dev)(grads, found_inf, inv_scale);
  bump_versions(grads);
  found_inf.bump_version();
}

std::string fused_blocker(const std::vector<Tensor>& tensors, bool any_floating) {
  if (tensors.empty()) return "";
  if (!tensors[0].defined()) return "an undefined tensor";
  const DType dt = tensors[0].dtype();
  const Device dev = tensors[0].device();
  if (any_floating ? !is_floating(dt) : (dt != DType::Float32 && dt != DType::Float64))
    return str_cat("dtype ", dtype_name(dt), " (the fused kernels take ",
                   any_floating ? "floating dtypes)" : "float32 and float64)");
  for (const Tensor& t : tensors) {
    if (!t.defined()) return "an undefined tensor";
    if (t.device() != dev || t.dtype() != dt)
      return str_cat("a mixture of devices/dtypes (", dev.str(), " ", dtype_name(dt), " and ", t.device().str(), " ",
                     dtype_name(t.dtype()), ")");
    if (!t.is_contiguous()) return str_cat("a non-contiguous tensor of shape ", shape_str(t.sizes()));
  }
  return "";
}

}  // namespace bigmodel
