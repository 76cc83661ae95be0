// Front ends of the fused LSTM / GRU cell steps: validation, allocation, kernel dispatch,
// and a backward that runs the family's fused backward kernel (one pass over the gates
// instead of a dozen elementwise ops per time step).
#include "core/ops/rnn.h"

#include "core/autograd.h"
#include "core/ops/shape_ops.h"
#include "core/ops/view.h"
#include "core/shape.h"

namespace bigmodel {

BM_DEFINE_KERNEL(lstm_pointwise_kernel);
BM_DEFINE_KERNEL(lstm_pointwise_backward_kernel);
BM_DEFINE_KERNEL(gru_pointwise_kernel);
BM_DEFINE_KERNEL(gru_pointwise_backward_kernel);

namespace {

// gates [B, k*H] (or [k*H]) against state [B, H] (or [H]); same dtype (floating) and device.
void check_cell_args(const char* op, const Tensor& gates, const char* gates_name, int64_t k,
                     const Tensor& state, const char* state_name) {
  BM_CHECK_SHAPE(gates.dim() == 1 || gates.dim() == 2, op, "expected ", gates_name, " of shape [B, ", k,
                 "*H] or [", k, "*H], got ", shape_str(gates.sizes()));
  BM_CHECK_SHAPE(state.dim() == gates.dim(), op, "expected ", state_name, " with ", gates.dim(), " dims to match ",
                 gates_name, " ", shape_str(gates.sizes()), ", got ", shape_str(state.sizes()));
  const int64_t H = state.size(-1);
  const bool batch_ok = gates.dim() == 1 || gates.size(0) == state.size(0);
  BM_CHECK_SHAPE(batch_ok && gates.size(-1) == k * H, op, "expected ", gates_name, " of shape [B, ", k,
                 "*H] for ", state_name, " of shape [B, H]; got ", gates_name, " ", shape_str(gates.sizes()), " and ",
                 state_name, " ", shape_str(state.sizes()));
  BM_CHECK_DTYPE(is_floating(gates.dtype()), op, "expects floating point tensors, got ", dtype_name(gates.dtype()));
  BM_CHECK_DTYPE(gates.dtype() == state.dtype(), op, "expected one dtype, got ", gates_name, " ",
                 dtype_name(gates.dtype()), " and ", state_name, " ", dtype_name(state.dtype()));
  BM_CHECK_DEVICE(gates.device() == state.device(), op, "expected one device, got ", gates.device().str(), " and ",
                  state.device().str());
}

std::pair<Tensor, Tensor> lstm_batched(const Tensor& gates, const Tensor& c_prev) {
  static const char* op = "lstm_cell_pointwise";
  Tensor g = contiguous(gates.detach()), cp = contiguous(c_prev.detach());
  Tensor h = Tensor::empty(c_prev.sizes(), c_prev.dtype(), c_prev.device());
  Tensor c = Tensor::empty(c_prev.sizes(), c_prev.dtype(), c_prev.device());
  if (h.numel() > 0) lstm_pointwise_kernel.get(g.device())(h, c, g, cp);
  if (needs_grad({gates, c_prev})) {
    SavedTensor sg(g), scp(cp), sc(c);
    record_function(op, {gates, c_prev}, {h, c}, [=](const std::vector<Tensor>& grads) {
      Tensor gg = Tensor::empty(sg.unpack(op).sizes(), grads[0].dtype(), grads[0].device());
      Tensor gcp = Tensor::empty(scp.unpack(op).sizes(), grads[0].dtype(), grads[0].device());
      if (gcp.numel() > 0)
        lstm_pointwise_backward_kernel.get(gg.device())(gg, gcp, contiguous(grads[0]), contiguous(grads[1]),
                                                         sg.unpack(op), scp.unpack(op), sc.unpack(op));
      return std::vector<Tensor>{gg, gcp};
    });
  }
  return {h, c};
}

Tensor gru_batched(const Tensor& gi, const Tensor& gh, const Tensor& h_prev) {
  static const char* op = "gru_cell_pointwise";
  Tensor a = contiguous(gi.detach()), b = contiguous(gh.detach()), hp = contiguous(h_prev.detach());
  Tensor h = Tensor::empty(h_prev.sizes(), h_prev.dtype(), h_prev.device());
  if (h.numel() > 0) gru_pointwise_kernel.get(a.device())(h, a, b, hp);
  if (needs_grad({gi, gh, h_prev})) {
    SavedTensor sa(a), sb(b), shp(hp);
    record_function(op, {gi, gh, h_prev}, {h}, [=](const std::vector<Tensor>& grads) {
      Tensor ta = sa.unpack(op), tb = sb.unpack(op), thp = shp.unpack(op);
      Tensor ga = Tensor::empty(ta.sizes(), ta.dtype(), ta.device());
      Tensor gb = Tensor::empty(tb.sizes(), tb.dtype(), tb.device());
      Tensor ghp = Tensor::empty(thp.sizes(), thp.dtype(), thp.device());
      if (ghp.numel() > 0)
        gru_pointwise_backward_kernel.get(ta.device())(ga, gb, ghp, contiguous(grads[0]), ta, tb, thp);
      return std::vector<Tensor>{ga, gb, ghp};
    });
  }
  return h;
}

}  // namespace

std::vector<Tensor> rnn_time_steps(const Tensor& x) {
  BM_CHECK_SHAPE(x.dim() > 0, "rnn_time_steps", "expected a tensor with a time dim, got shape ",
                 shape_str(x.sizes()));
  std::vector<Tensor> steps;
  {
    NoGradGuard no_grad;  // the per-step selects record nothing; the one node below covers them
    for (int64_t t = 0; t < x.size(0); ++t) steps.push_back(select(x.detach(), 0, t));
  }
  if (needs_grad({x}) && !steps.empty()) {
    record_function("rnn_time_steps", {x}, steps,
                    [](const std::vector<Tensor>& grads) { return std::vector<Tensor>{stack(grads, 0)}; });
  }
  return steps;
}

std::pair<Tensor, Tensor> lstm_cell_pointwise(const Tensor& gates, const Tensor& c_prev) {
  check_cell_args("lstm_cell_pointwise", gates, "gates", 4, c_prev, "c_prev");
  if (gates.dim() == 1) {  // unbatched: run as a batch of one (views keep autograd intact)
    auto [h, c] = lstm_batched(unsqueeze(gates, 0), unsqueeze(c_prev, 0));
    return {squeeze(h, 0), squeeze(c, 0)};
  }
  return lstm_batched(gates, c_prev);
}

Tensor gru_cell_pointwise(const Tensor& gi, const Tensor& gh, const Tensor& h_prev) {
  static const char* op = "gru_cell_pointwise";
  check_cell_args(op, gi, "gi", 3, h_prev, "h_prev");
  BM_CHECK_SHAPE(gh.sizes() == gi.sizes(), op, "expected gi and gh of one shape, got ", shape_str(gi.sizes()),
                 " and ", shape_str(gh.sizes()));
  BM_CHECK_DTYPE(gh.dtype() == gi.dtype(), op, "expected one dtype, got gi ", dtype_name(gi.dtype()), " and gh ",
                 dtype_name(gh.dtype()));
  BM_CHECK_DEVICE(gh.device() == gi.device(), op, "expected one device, got ", gi.device().str(), " and ",
                  gh.device().str());
  if (gi.dim() == 1) return squeeze(gru_batched(unsqueeze(gi, 0), unsqueeze(gh, 0), unsqueeze(h_prev, 0)), 0);
  return gru_batched(gi, gh, h_prev);
}

}  // namespace bigmodel
