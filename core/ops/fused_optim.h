// Multi-tensor (fused) optimizer updates and norms: one call updates a whole list of
// parameters (SGD, Adam/AdamW) or reduces a whole list of tensors (total norm), so a step
// costs a few kernel launches instead of several per parameter. The CPU kernels compute
// every element with the same float operations, in the same order, as the per-tensor
// optimizers (python/bigmodel/optim, optim/*.cpp), so both paths agree bit for bit.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace bigmodel {

struct FusedSGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
};

struct FusedAdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool maximize = false;
  bool decoupled = false;  // AdamW: p *= 1 - lr * weight_decay instead of g += weight_decay * p
};

// The per-tensor numbers of one Adam step at step count t, computed in double exactly as the
// per-tensor optimizers compute them (the kernels then round them to the parameter dtype).
struct AdamStepScalars {
  double step_size;              // -lr / (1 - beta1^t)
  double bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};
inline AdamStepScalars adam_step_scalars(const FusedAdamOptions& o, int64_t t) {
  const double bias_correction1 = 1.0 - std::pow(o.beta1, static_cast<double>(t));
  return {-o.lr / bias_correction1, std::sqrt(1.0 - std::pow(o.beta2, static_cast<double>(t)))};
}

// The dtype of the optimizer state (and master copies) kept for parameters of dtype dt:
// Float32 for Float16/BFloat16, else dt itself.
inline DType fused_state_dtype(DType dt) {
  return (dt == DType::Float16 || dt == DType::BFloat16) ? DType::Float32 : dt;
}

// Kernels. The front ends below have checked everything: every list has one entry per
// parameter, every tensor is contiguous, on the parameters' device, shaped like its parameter;
// params and grads share one dtype (Float32, Float64, Float16 or BFloat16), the state lists
// (and master_params) are of fused_state_dtype of it. momentum_buffers is empty when
// momentum == 0; first_step[i] != 0 makes buffer i start as the gradient (buf = d_p).
// max_exp_avg_sqs is empty unless amsgrad. master_params is empty, or (half parameters only)
// one float32 copy per parameter: the update reads and writes it and stores its rounding
// into the parameter. steps[i] is tensor i's step count after this step's increment.
BM_DECLARE_KERNEL(fused_sgd_kernel,
                  void (*)(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                           const std::vector<Tensor>& momentum_buffers, const std::vector<uint8_t>& first_step,
                           const std::vector<Tensor>& master_params, const FusedSGDOptions& options));
BM_DECLARE_KERNEL(fused_adam_kernel,
                  void (*)(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                           const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                           const std::vector<Tensor>& max_exp_avg_sqs, const std::vector<Tensor>& master_params,
                           const std::vector<int64_t>& steps, const FusedAdamOptions& options));
// GradScaler's unscale: grads[i] *= inv_scale (computed in float32 for half grads, in the
// grads' dtype otherwise) and found_inf (float32, 1 element) is set to 1 when any element read
// was inf/NaN (left alone otherwise). inv_scale: float32, 1 element. All on one device.
BM_DECLARE_KERNEL(fused_unscale_kernel,
                  void (*)(const std::vector<Tensor>& grads, const Tensor& found_inf, const Tensor& inv_scale));
// out: 0-d of the tensors' dtype on their device. norm_type: +inf (max |x|) or > 0
// ((sum |x|^p)^(1/p)). Sums accumulate in double in a fixed order (deterministic).
BM_DECLARE_KERNEL(fused_norm_kernel,
                  void (*)(const Tensor& out, const std::vector<Tensor>& tensors, double norm_type));
// tensors[i] *= scale (a 0-d tensor of their dtype on their device; read there, no host sync).
BM_DECLARE_KERNEL(fused_mul_kernel, void (*)(const std::vector<Tensor>& tensors, const Tensor& scale));

// One SGD step over params (PyTorch's rule, see optim/sgd.h). grads[i] is params[i]'s
// gradient. With momentum, momentum_buffers has one entry per parameter; undefined entries
// are created (the first step's buffer is the gradient) and returned through the vector.
// Float16/BFloat16 params: buffers are float32 and the step runs in float32 (see the top);
// master_params (optional, half params only): float32 copies updated in place, p = round(master).
void fused_sgd_(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                std::vector<Tensor>& momentum_buffers, const FusedSGDOptions& options,
                const std::vector<Tensor>& master_params = {});
// One Adam / AdamW step (see optim/adam.h). state_steps are the per-parameter step counters
// (0-d tensors, PyTorch's state["step"]); each is incremented and its new value used.
// max_exp_avg_sqs: one per parameter when amsgrad, else empty. Half params: float32 state,
// optional float32 master_params as in fused_sgd_.
void fused_adam_(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                 const std::vector<Tensor>& max_exp_avg_sqs, const std::vector<Tensor>& state_steps,
                 const FusedAdamOptions& options, const std::vector<Tensor>& master_params = {});
// GradScaler's fused unscale + inf check (PyTorch's _amp_foreach_non_finite_check_and_unscale_):
// every grad *= inv_scale in one pass, found_inf set to 1.0 if any grad held inf/NaN. grads:
// one floating dtype, one device, contiguous; found_inf, inv_scale: float32 one-element tensors
// on that device. No host sync.
void fused_unscale_(const std::vector<Tensor>& grads, const Tensor& found_inf, const Tensor& inv_scale);
// The norm of all tensors taken as one vector (clip_grad_norm_'s total norm): a 0-d tensor of
// their dtype on their device. norm_type 2 (default), 1, any p > 0, or inf.
Tensor fused_norm(const std::vector<Tensor>& tensors, double norm_type = 2.0);
// tensors[i] *= scale for every i; scale a 0-d (or 1-element) tensor on their device.
void fused_mul_(const std::vector<Tensor>& tensors, const Tensor& scale);

// Why these tensors cannot form one list of fused_sgd_ / fused_adam_ (a mixture of devices or
// dtypes, a dtype other than Float32/Float64, a non-contiguous tensor), or "" when they can.
// The optimizers call it to choose between the fused and the per-tensor path. any_floating:
// every floating dtype passes (fused_norm + fused_mul_ + fused_unscale_, and the params +
// grads of half parameters, whose state lists are checked apart as float32).
std::string fused_blocker(const std::vector<Tensor>& tensors, bool any_floating = false);

}  // namespace bigmodel
