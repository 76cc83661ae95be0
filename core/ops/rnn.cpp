// Front ends of the fused LSTM / GRU cell steps: validation, allocation, kernel dispatch,
// and a backward that runs the family's fused backward kernel (one pass over the gates
// instead of a dozen elementwise ops per time step).
#include "core/ops/rnn.h"

#include <algorithm>
#include <climits>
#include <memory>

#include "core/amp.h"
#include "core/autograd.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/shape_ops.h"
#include "core/ops/view.h"
#include "core/shape.h"

namespace bigmodel {

BM_DEFINE_KERNEL(lstm_pointwise_kernel);
BM_DEFINE_KERNEL(lstm_pointwise_backward_kernel);
BM_DEFINE_KERNEL(gru_pointwise_kernel);
BM_DEFINE_KERNEL(gru_pointwise_backward_kernel);
BM_DEFINE_KERNEL(rnn_vendor_forward_kernel);
BM_DEFINE_KERNEL(rnn_vendor_backward_kernel);

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

std::vector<Tensor> lstm_layer(const Tensor& xp_in, const Tensor& h0_in, const Tensor& c0_in, const Tensor& w_in,
                               bool reverse) {
  static const char* op = "lstm_layer";
  // Under autocast every operand goes to the lower dtype (the matmuls inside would anyway).
  const Tensor xp = amp::autocast_lower(xp_in), h0 = amp::autocast_lower(h0_in), c0 = amp::autocast_lower(c0_in),
               w_hh = amp::autocast_lower(w_in);
  amp::AutocastOffGuard autocast_off;
  BM_CHECK_SHAPE(xp.dim() == 3 && xp.size(2) % 4 == 0, op, "expected xp of shape [T, B, 4H], got ",
                 shape_str(xp.sizes()));
  const int64_t T = xp.size(0), B = xp.size(1), H = xp.size(2) / 4;
  BM_CHECK_SHAPE(T > 0, op, "expected at least one time step, got xp of shape ", shape_str(xp.sizes()));
  const Shape state{B, H};
  BM_CHECK_SHAPE(h0.sizes() == state && c0.sizes() == state, op, "expected h0 and c0 of shape ", shape_str(state),
                 " for xp of shape ", shape_str(xp.sizes()), ", got ", shape_str(h0.sizes()), " and ",
                 shape_str(c0.sizes()));
  BM_CHECK_SHAPE(w_hh.dim() == 2 && w_hh.size(0) == 4 * H && w_hh.size(1) == H, op, "expected w_hh of shape [",
                 4 * H, ", ", H, "], got ", shape_str(w_hh.sizes()));
  BM_CHECK_DTYPE(is_floating(xp.dtype()), op, "expects floating point tensors, got ", dtype_name(xp.dtype()));
  for (const Tensor* t : {&h0, &c0, &w_hh}) {
    BM_CHECK_DTYPE(t->dtype() == xp.dtype(), op, "expected one dtype, got xp ", dtype_name(xp.dtype()), " and ",
                   dtype_name(t->dtype()));
    BM_CHECK_DEVICE(t->device() == xp.device(), op, "expected one device, got ", xp.device().str(), " and ",
                    t->device().str());
  }
  const Device dev = xp.device();
  const DType dt = xp.dtype();
  Tensor gates = Tensor::empty(xp.sizes(), dt, dev);  // pre-activations, kept for the backward
  Tensor out = Tensor::empty({T, B, H}, dt, dev), cs = Tensor::empty({T, B, H}, dt, dev);
  const Tensor h_init = contiguous(h0.detach()), c_init = contiguous(c0.detach());
  Tensor h_n, c_n;
  {
    NoGradGuard no_grad;
    copy_(gates, xp.detach());
    const Tensor w_t = t(w_hh.detach());
    Tensor h = h_init, c = c_init;
    for (int64_t i = 0; i < T; ++i) {
      const int64_t step = reverse ? T - 1 - i : i;
      Tensor g = select(gates, 0, step);
      add_(g, mm(h, w_t));
      Tensor hs = select(out, 0, step), cst = select(cs, 0, step);
      if (B * H > 0) lstm_pointwise_kernel.get(dev)(hs, cst, g, c);
      h = hs;
      c = cst;
    }
    h_n = clone(h);  // own tensors, not views into out / cs
    c_n = clone(c);
  }
  if (needs_grad({xp, h0, c0, w_hh})) {
    SavedTensor s_gates(gates), s_cs(cs), s_out(out), s_h0(h_init), s_c0(c_init), s_w(w_hh);
    record_function(op, {xp, h0, c0, w_hh}, {out, h_n, c_n}, [=](const std::vector<Tensor>& grads) {
      amp::AutocastOffGuard no_autocast;
      const Tensor G = s_gates.unpack(op), CS = s_cs.unpack(op), OUT = s_out.unpack(op);
      const Tensor H0 = s_h0.unpack(op), C0 = s_c0.unpack(op), W = s_w.unpack(op);
      Tensor dG = Tensor::empty(G.sizes(), dt, dev);
      Tensor dh_next = grads[1].defined() ? contiguous(grads[1]) : zeros(state, dt, dev);
      Tensor dc_next = grads[2].defined() ? contiguous(grads[2]) : zeros(state, dt, dev);
      for (int64_t i = T - 1; i >= 0; --i) {
        const int64_t step = reverse ? T - 1 - i : i;
        const int64_t prev = reverse ? step + 1 : step - 1;  // the step that produced h/c_prev
        const Tensor c_prev = i == 0 ? C0 : select(CS, 0, prev);
        const Tensor dh = grads[0].defined() ? contiguous(add(select(grads[0], 0, step), dh_next)) : dh_next;
        Tensor dg = select(dG, 0, step);
        Tensor dc_prev = Tensor::empty(state, dt, dev);
        if (B * H > 0)
          lstm_pointwise_backward_kernel.get(dev)(dg, dc_prev, dh, dc_next, select(G, 0, step), c_prev,
                                                  select(CS, 0, step));
        dh_next = mm(dg, W);
        dc_next = dc_prev;
      }
      // dW = sum_t dG_t^T h_prev(t): one GEMM over the T-1 steps whose h_prev is in OUT, plus
      // the first step's (h_prev = h0).
      const int64_t first = reverse ? T - 1 : 0;
      Tensor dW = mm(t(select(dG, 0, first)), H0);
      if (T > 1) {
        const int64_t n = (T - 1) * B;
        const Tensor dg_rest = reshape(narrow(dG, 0, reverse ? 0 : 1, T - 1), {n, 4 * H});
        const Tensor h_rest = reshape(narrow(OUT, 0, reverse ? 1 : 0, T - 1), {n, H});
        dW = add(dW, mm(t(dg_rest), h_rest));
      }
      return std::vector<Tensor>{dG, dh_next, dc_next, dW};
    });
  }
  return {out, h_n, c_n};
}

RnnCell rnn_cell_from_name(const std::string& mode) {
  if (mode == "RNN_TANH") return RnnCell::Tanh;
  if (mode == "RNN_RELU") return RnnCell::Relu;
  if (mode == "LSTM") return RnnCell::Lstm;
  if (mode == "GRU") return RnnCell::Gru;
  throw ValueError(str_cat("[cudnn_rnn] unknown mode '", mode,
                           "' (expected 'RNN_TANH', 'RNN_RELU', 'LSTM' or 'GRU')"));
}

std::vector<Tensor> cudnn_rnn(const Tensor& x_in, const Tensor& h0_in, const Tensor& c0_in,
                              const std::vector<Tensor>& weights_in, RnnCell cell,
                              int64_t num_layers, bool bidirectional, bool bias,
                              const std::vector<int64_t>& lengths) {
  static const char* op = "cudnn_rnn";
  const bool lstm = cell == RnnCell::Lstm;
  // Under autocast every operand goes to the lower dtype, as lstm_layer does.
  const Tensor x = amp::autocast_lower(x_in), h0 = amp::autocast_lower(h0_in);
  const Tensor c0 = c0_in.defined() ? amp::autocast_lower(c0_in) : Tensor();
  std::vector<Tensor> weights;
  for (const Tensor& w : weights_in) weights.push_back(w.defined() ? amp::autocast_lower(w) : w);
  amp::AutocastOffGuard autocast_off;

  BM_CHECK_VALUE(num_layers >= 1, op, "expected num_layers >= 1, got ", num_layers);
  BM_CHECK_SHAPE(x.defined() && x.dim() == 3, op,
                 "expected input of shape [T, B, input_size], got ",
                 x.defined() ? shape_str(x.sizes()) : std::string("None"));
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), D = bidirectional ? 2 : 1;
  BM_CHECK_SHAPE(T > 0 && B > 0 && I > 0, op, "expected a non-empty input [T, B, input_size], got ",
                 shape_str(x.sizes()));
  BM_CHECK_SHAPE(h0.defined() && h0.dim() == 3 && h0.size(0) == num_layers * D && h0.size(1) == B &&
                     h0.size(2) > 0,
                 op, "expected h0 of shape [", num_layers * D, ", ", B,
                 ", H] (num_layers*num_directions, batch, "
                 "hidden_size) for input ",
                 shape_str(x.sizes()), ", got ",
                 h0.defined() ? shape_str(h0.sizes()) : std::string("None"));
  const int64_t H = h0.size(2);
  if (lstm) {
    BM_CHECK_SHAPE(c0.defined() && c0.sizes() == h0.sizes(), op, "expected c0 of shape ",
                   shape_str(h0.sizes()), " (as h0) for an LSTM, got ",
                   c0.defined() ? shape_str(c0.sizes()) : std::string("None"));
  } else {
    BM_CHECK_VALUE(!c0.defined(), op, "c0 is only taken by an LSTM");
  }
  const int64_t G = lstm ? 4 : (cell == RnnCell::Gru ? 3 : 1);
  const int64_t per = bias ? 4 : 2;
  BM_CHECK_VALUE(static_cast<int64_t>(weights.size()) == num_layers * D * per, op, "expected ",
                 num_layers * D * per, " weights (", per, " per layer and direction), got ",
                 weights.size());
  // int32 is what cuDNN takes for every size and count.
  BM_CHECK_VALUE(T * B <= INT_MAX && G * H * std::max(I, D * H) <= INT_MAX, op,
                 "sizes beyond int32: input ", shape_str(x.sizes()), ", hidden_size ", H);
  BM_CHECK_DTYPE(is_floating(x.dtype()), op, "expects floating point tensors, got ",
                 dtype_name(x.dtype()));
  const DType dt = x.dtype();
  const Device dev = x.device();
  static const char* names[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  auto check_same = [&](const Tensor& t, const std::string& what) {
    BM_CHECK_DTYPE(t.dtype() == dt, op, "expected one dtype, got input ", dtype_name(dt), " and ",
                   what, " ", dtype_name(t.dtype()));
    BM_CHECK_DEVICE(t.device() == dev, op, "expected one device, got input on ", dev.str(), " and ",
                    what, " on ", t.device().str());
  };
  check_same(h0, "h0");
  if (lstm) check_same(c0, "c0");
  for (int64_t l = 0; l < num_layers; ++l) {
    for (int64_t d = 0; d < D; ++d) {
      const int64_t in = l == 0 ? I : D * H;
      for (int64_t k = 0; k < per; ++k) {
        const Tensor& w = weights[(l * D + d) * per + k];
        const std::string what = str_cat(names[k], "_l", l, d == 1 ? "_reverse" : "");
        const Shape want = k == 0 ? Shape{G * H, in} : (k == 1 ? Shape{G * H, H} : Shape{G * H});
        BM_CHECK_SHAPE(w.defined() && w.sizes() == want, op, "expected ", what, " of shape ",
                       shape_str(want), " for input ", shape_str(x.sizes()), " and hidden_size ", H,
                       ", got ", w.defined() ? shape_str(w.sizes()) : std::string("None"));
        check_same(w, what);
      }
    }
  }
  RnnVendorDesc desc;
  desc.cell = cell;
  desc.num_layers = num_layers;
  desc.seq_len = T;
  desc.batch = B;
  desc.input_size = I;
  desc.hidden_size = H;
  desc.bidirectional = bidirectional;
  desc.bias = bias;
  if (lengths.empty()) {
    desc.lengths.assign(static_cast<size_t>(B), static_cast<int32_t>(T));
  } else {
    BM_CHECK_VALUE(static_cast<int64_t>(lengths.size()) == B, op, "expected ", B,
                   " lengths (one per batch entry), got ", lengths.size());
    for (int64_t v : lengths) {
      BM_CHECK_VALUE(v >= 1 && v <= T, op, "lengths must lie in [1, ", T,
                     "] (the padded sequence length), got ", v);
      desc.lengths.push_back(static_cast<int32_t>(v));
    }
  }
  // Last, so that every argument check above also runs (and is tested) on the CPU.
  BM_CHECK_DEVICE(dev.is_cuda(), op, "the cuDNN backend runs on CUDA tensors, got input on ",
                  dev.str(), " (bm.backends.rnn = 'cudnn' only changes CUDA layers)");

  const Tensor X = contiguous(x.detach()), HX = contiguous(h0.detach());
  const Tensor CX = lstm ? contiguous(c0.detach()) : Tensor();
  std::vector<Tensor> W;
  for (const Tensor& w : weights) W.push_back(contiguous(w.detach()));
  Tensor y = Tensor::empty({T, B, D * H}, dt, dev), hy = Tensor::empty(h0.sizes(), dt, dev);
  Tensor cy = lstm ? Tensor::empty(h0.sizes(), dt, dev) : Tensor();
  auto state = std::make_shared<RnnVendorState>();
  state->dev_lengths = from_vector(desc.lengths, {B}, dev);
  std::vector<Tensor> inputs = {x, h0, c0};
  inputs.insert(inputs.end(), weights.begin(), weights.end());
  const bool grad = needs_grad(inputs);
  rnn_vendor_forward_kernel.get(dev)(desc, y, hy, cy, X, HX, CX, W, grad, *state);
  std::vector<Tensor> outputs = {y, hy};
  if (lstm) outputs.push_back(cy);
  if (grad) {
    bool weights_grad = false;
    for (const Tensor& w : weights) weights_grad = weights_grad || w.requires_grad();
    SavedTensor sx(X), shx(HX), scx(CX), sy(y);
    std::vector<Shape> wshapes;
    for (const Tensor& w : W) wshapes.push_back(w.sizes());
    record_function(op, inputs, outputs, [=](const std::vector<Tensor>& grads) {
      amp::AutocastOffGuard no_autocast;
      BM_CHECK_RUNTIME(!state->consumed, op,
                       "a second backward through one cuDNN RNN forward is not supported (cuDNN's "
                       "backward overwrites the forward's reserve space); run the forward again, or "
                       "use bm.backends.rnn = 'ours'");
      state->consumed = true;
      const Tensor gx = sx.unpack(op), ghx = shx.unpack(op), gy = sy.unpack(op);
      const Tensor gcx = lstm ? scx.unpack(op) : Tensor();
      // cuDNN reads dy/dhy/dcy as dense arrays of the forward's dtype.
      auto dense = [&](const Tensor& g) { return contiguous(g.dtype() == dt ? g : to(g, dt)); };
      const Tensor dy = dense(grads[0]), dhy = dense(grads[1]);
      const Tensor dcy = lstm ? dense(grads[2]) : Tensor();
      Tensor dx = Tensor::empty(gx.sizes(), dt, dev), dhx = Tensor::empty(ghx.sizes(), dt, dev);
      Tensor dcx = lstm ? Tensor::empty(gcx.sizes(), dt, dev) : Tensor();
      std::vector<Tensor> dw;
      if (weights_grad)
        for (const Shape& s : wshapes) dw.push_back(Tensor::empty(s, dt, dev));
      rnn_vendor_backward_kernel.get(dev)(desc, dx, dhx, dcx, weights_grad ? &dw : nullptr, gx, ghx,
                                          gcx, gy, dy, dhy, dcy, *state);
      std::vector<Tensor> result = {dx, dhx, dcx};
      if (weights_grad) {
        result.insert(result.end(), dw.begin(), dw.end());
      } else {
        result.resize(result.size() + wshapes.size());
      }
      return result;
    });
  }
  return outputs;
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
