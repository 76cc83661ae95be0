// Python bindings of the multi-tensor (fused) optimizer updates and norms (core/ops/fused_optim.h):
// _C._fused_sgd_, _C._fused_adam_, _C._fused_norm, _C._fused_mul_, _C._fused_unscale_, _C._fused_blocker. Private names (as
// torch._fused_adam_): bm.optim and bm.nn.utils.clip_grad_norm_ are their users.
#include "common.h"
#include "core/ops/fused_optim.h"

namespace bigmodel::python {

void bind_fused_optim(py::module_& m, py::class_<Tensor>& /*cls*/) {
  m.def(
      "_fused_sgd_",
      [](const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
         const std::vector<std::optional<Tensor>>& momentum_buffers, double lr, double momentum, double dampening,
         double weight_decay, bool nesterov, bool maximize, const std::vector<Tensor>& master_params) {
        std::vector<Tensor> bufs;
        bufs.reserve(momentum_buffers.size());
        for (const auto& b : momentum_buffers) bufs.push_back(b ? *b : Tensor());
        FusedSGDOptions o{lr, momentum, dampening, weight_decay, nesterov, maximize};
        fused_sgd_(params, grads, bufs, o, master_params);
        return bufs;
      },
      py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"), py::kw_only(), py::arg("lr"),
      py::arg("momentum") = 0.0, py::arg("dampening") = 0.0, py::arg("weight_decay") = 0.0,
      py::arg("nesterov") = false, py::arg("maximize") = false, py::arg("master_params") = std::vector<Tensor>{},
      "One SGD step over a list of parameters; momentum_buffers (None entries are created) are returned.\n"
      "float16/bfloat16 params: float32 buffers; master_params: float32 copies updated in place, p = round(master).");
  m.def(
      "_fused_adam_",
      [](const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& exp_avgs,
         const std::vector<Tensor>& exp_avg_sqs, const std::vector<Tensor>& max_exp_avg_sqs,
         const std::vector<Tensor>& state_steps, double lr, double beta1, double beta2, double eps,
         double weight_decay, bool amsgrad, bool maximize, bool decoupled,
         const std::vector<Tensor>& master_params) {
        FusedAdamOptions o{lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled};
        fused_adam_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, o, master_params);
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("max_exp_avg_sqs"),
      py::arg("state_steps"), py::kw_only(), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
      py::arg("weight_decay") = 0.0, py::arg("amsgrad") = false, py::arg("maximize") = false,
      py::arg("decoupled") = false, py::arg("master_params") = std::vector<Tensor>{},
      "One Adam (decoupled=True: AdamW) step over a list of parameters; increments state_steps.\n"
      "float16/bfloat16 params: float32 state; master_params: float32 copies updated in place, p = round(master).");
  m.def("_fused_unscale_", &fused_unscale_, py::arg("grads"), py::arg("found_inf"), py::arg("inv_scale"),
        "grads[i] *= inv_scale in one pass; found_inf (float32, 1 element) set to 1 if any grad held inf/NaN.");
  m.def("_fused_norm", &fused_norm, py::arg("tensors"), py::arg("norm_type") = 2.0,
        "The norm of all tensors taken as one vector (0-d tensor of their dtype, on their device).");
  m.def("_fused_mul_", &fused_mul_, py::arg("tensors"), py::arg("scale"),
        "tensors[i] *= scale for every i (scale: a one-element tensor on their device).");
  m.def(
      "_fused_blocker",
      [](const std::vector<Tensor>& tensors, bool any_floating) -> std::optional<std::string> {
        std::string why = fused_blocker(tensors, any_floating);
        if (why.empty()) return std::nullopt;
        return why;
      },
      py::arg("tensors"), py::arg("any_floating") = false,
      "None when _fused_sgd_/_fused_adam_ can take these tensors, else the reason\n"
      "(any_floating=True: the check of _fused_norm/_fused_mul_, which take every floating dtype).");
}

}  // namespace bigmodel::python
