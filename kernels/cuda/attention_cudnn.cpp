// The cuDNN baseline behind the attention stubs (core/ops/attention.h; bm.backends.attention =
// "cudnn"): cuDNN's fused flash SDPA forward and backward built with NVIDIA's header-only cuDNN
// frontend (a dependency found at configure time, see scripts/fetch_cudnn_frontend.sh). One
// graph per problem (shapes, strides, dtype, mask, scale), built once and cached: building
// costs milliseconds to seconds. Host code only, so it is a .cpp (g++ parses the frontend
// faster than nvcc). Without the frontend nothing is registered and the front end says why.
#if defined(BIGMODEL_WITH_CUDNN_FRONTEND) && defined(BIGMODEL_WITH_CUDNN)
#include <cudnn_frontend.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/cuda_info.h"
#include "core/ops/attention.h"
#include "core/shape.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/runtime.h"

namespace bigmodel::cuda {
namespace {

namespace fe = cudnn_frontend;
constexpr const char* kOp = "scaled_dot_product_attention";

// Fixed tensor ids of the variant pack (the frontend's uids).
enum Uid : int64_t { kQ = 1, kK, kV, kO, kStats, kBias, kDO, kDQ, kDK, kDV };

struct Problem {
  bool backward = false;
  int device = 0;
  DType dtype = DType::BFloat16;
  int64_t B = 0, H = 0, L = 0, S = 0, D = 0;
  int64_t sq[4] = {}, sk[4] = {}, sv[4] = {}, sdo[4] = {}, sb[4] = {};
  bool has_bias = false;
  int64_t bias_b = 1, bias_h = 1;
  bool causal = false;
  float scale = 1.0f;

  std::string describe() const {
    return str_cat(backward ? "backward" : "forward", " B=", B, " H=", H, " Nq=", L, " Nk=", S, " D=", D, " ",
                   dtype_name(dtype), causal ? " causal" : "", has_bias ? str_cat(" mask [", bias_b, ", ", bias_h,
                                                                                  ", ", L, ", ", S, "]")
                                                                        : std::string());
  }
  std::vector<int64_t> key() const {
    int32_t scale_bits = 0;
    std::memcpy(&scale_bits, &scale, sizeof scale_bits);
    std::vector<int64_t> k{backward, device, static_cast<int64_t>(dtype), B, H, L, S, D, has_bias, bias_b, bias_h,
                           causal, scale_bits};
    for (const int64_t* s : {sq, sk, sv, sdo, sb}) k.insert(k.end(), s, s + 4);
    return k;
  }
};

// cuDNN's own failure text carried into ours; GRAPH_NOT_SUPPORTED or no engine from the
// heuristics is a case cuDNN does not take (NotImplementedError), anything else a runtime failure.
void fe_check(fe::error_t st, const char* step, const Problem& pr) {  // by value: its getters are not const
  if (st.is_good()) return;
  const std::string msg = str_cat("[", kOp, "] cuDNN frontend ", step, " failed for ", pr.describe(), ": ",
                                  st.get_message(), " (bm.backends.attention = 'cudnn'; 'ours' takes this case)");
  const fe::error_code_t code = st.get_code();
  if (code == fe::error_code_t::GRAPH_NOT_SUPPORTED || code == fe::error_code_t::HEURISTIC_QUERY_FAILED)
    throw NotImplementedError(msg);
  throw Error(msg);
}

void cudnn_check(cudnnStatus_t st, const char* expr) {
  if (st != CUDNN_STATUS_SUCCESS) throw Error(str_cat("[", kOp, "] cuDNN call ", expr, " failed: ", cudnnGetErrorString(st)));
}

std::mutex g_mutex;  // guards the handles, the graph cache and every execution on a handle
std::vector<cudnnHandle_t> g_handles;  // per device ordinal; process lifetime
std::map<std::vector<int64_t>, std::shared_ptr<fe::graph::Graph>> g_graphs;

cudnnHandle_t handle_for(int device, cudaStream_t stream) {
  if (static_cast<int>(g_handles.size()) <= device) g_handles.resize(device + 1, nullptr);
  if (!g_handles[device]) cudnn_check(cudnnCreate(&g_handles[device]), "cudnnCreate");
  cudnn_check(cudnnSetStream(g_handles[device], stream), "cudnnSetStream");
  return g_handles[device];
}

std::vector<int64_t> strides_of(const int64_t (&s)[4]) { return {s[0], s[1], s[2], s[3]}; }

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> st(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * dims[i + 1];
  return st;
}

using TensorAttr = std::shared_ptr<fe::graph::Tensor_attributes>;

TensorAttr input(fe::graph::Graph& g, const char* name, int64_t uid, std::vector<int64_t> dims,
                 std::vector<int64_t> strides) {
  return g.tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim(dims).set_stride(strides));
}

void mark_output(const TensorAttr& t, int64_t uid, std::vector<int64_t> dims) {
  t->set_output(true).set_uid(uid).set_dim(dims).set_stride(contiguous_strides(dims));
}

// The forward or backward graph of `pr`: O and Stats (and dQ/dK/dV) are contiguous, as the
// front end allocates them.
std::shared_ptr<fe::graph::Graph> build_graph(const Problem& pr, cudnnHandle_t handle) {
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(pr.dtype == DType::Float16 ? fe::DataType_t::HALF : fe::DataType_t::BFLOAT16)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  const std::vector<int64_t> qdims{pr.B, pr.H, pr.L, pr.D}, kdims{pr.B, pr.H, pr.S, pr.D};
  const std::vector<int64_t> stat_dims{pr.B, pr.H, pr.L, 1};
  TensorAttr q = input(*g, "Q", kQ, qdims, strides_of(pr.sq));
  TensorAttr k = input(*g, "K", kK, kdims, strides_of(pr.sk));
  TensorAttr v = input(*g, "V", kV, kdims, strides_of(pr.sv));
  TensorAttr bias;
  if (pr.has_bias) {
    bias = input(*g, "Bias", kBias, {pr.bias_b, pr.bias_h, pr.L, pr.S}, strides_of(pr.sb));
  }
  if (!pr.backward) {
    auto attrs = fe::graph::SDPA_attributes().set_name("sdpa").set_generate_stats(true).set_attn_scale(pr.scale);
    // Top-left alignment: row i sees keys j <= i, as our kernels and PyTorch do for Nq != Nk.
    if (pr.causal)
      attrs.set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT).set_diagonal_band_right_bound(0);
    if (bias) attrs.set_bias(bias);
    auto [o, stats] = g->sdpa(q, k, v, attrs);
    mark_output(o, kO, qdims);
    mark_output(stats, kStats, stat_dims);
    stats->set_data_type(fe::DataType_t::FLOAT);
  } else {
    TensorAttr o = input(*g, "O", kO, qdims, contiguous_strides(qdims));
    TensorAttr dout = input(*g, "dO", kDO, qdims, strides_of(pr.sdo));
    TensorAttr stats = input(*g, "Stats", kStats, stat_dims, contiguous_strides(stat_dims));
    stats->set_data_type(fe::DataType_t::FLOAT);
    auto attrs = fe::graph::SDPA_backward_attributes().set_name("sdpa_backward").set_attn_scale(pr.scale);
    if (pr.causal)
      attrs.set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT).set_diagonal_band_right_bound(0);
    if (bias) attrs.set_bias(bias);
    auto [dq, dk, dv] = g->sdpa_backward(q, k, v, o, dout, stats, attrs);
    mark_output(dq, kDQ, qdims);
    mark_output(dk, kDK, kdims);
    mark_output(dv, kDV, kdims);
  }
  try {
    fe_check(g->validate(), "validate", pr);
    fe_check(g->build_operation_graph(handle), "build_operation_graph", pr);
    fe_check(g->create_execution_plans({fe::HeurMode_t::A}), "create_execution_plans", pr);
    fe_check(g->check_support(), "check_support", pr);
    fe_check(g->build_plans(fe::BuildPlanPolicy_t::HEURISTICS_CHOICE), "build_plans", pr);
  } catch (const bigmodel::Error&) {
    throw;
  } catch (const std::exception& e) {  // the frontend throws on some backend failures
    throw Error(str_cat("[", kOp, "] cuDNN frontend failed for ", pr.describe(), ": ", e.what()));
  }
  return g;
}

// A size-1 dim may carry any stride; cuDNN gets the packed one (its layout checks read them).
void copy_strides(int64_t (&dst)[4], const Tensor& t) {
  for (int i = 3; i >= 0; --i) {
    dst[i] = t.size(i) != 1 ? t.stride(i) : (i == 3 ? 1 : dst[i + 1] * t.size(i + 1));
  }
}

Problem make_problem(bool backward, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias,
                     double scale, bool causal) {
  Problem pr;
  pr.backward = backward;
  pr.device = q.device().index;
  pr.dtype = q.dtype();
  pr.B = q.size(0);
  pr.H = q.size(1);
  pr.L = q.size(2);
  pr.S = k.size(2);
  pr.D = q.size(3);
  copy_strides(pr.sq, q);
  copy_strides(pr.sk, k);
  copy_strides(pr.sv, v);
  pr.has_bias = bias.defined();
  if (pr.has_bias) {
    pr.bias_b = bias.size(0);
    pr.bias_h = bias.size(1);
    copy_strides(pr.sb, bias);
  }
  pr.causal = causal;
  pr.scale = static_cast<float>(scale);
  return pr;
}

// Finds or builds the graph of `pr` and runs it on the current stream with `ptrs`.
void run(const Problem& pr, std::unordered_map<int64_t, void*>& ptrs) {
  DeviceGuard guard(pr.device);
  const Device dev(DeviceType::CUDA, pr.device);
  std::lock_guard<std::mutex> lock(g_mutex);
  cudnnHandle_t handle = handle_for(pr.device, current_cuda_stream(pr.device));
  auto& slot = g_graphs[pr.key()];
  if (!slot) slot = build_graph(pr, handle);
  int64_t ws_bytes = 0;
  fe_check(slot->get_workspace_size(ws_bytes), "get_workspace_size", pr);
  // From the caching allocator: freed when it leaves scope, kept from other streams meanwhile.
  Tensor ws = ws_bytes > 0 ? Tensor::empty({(ws_bytes + 3) / 4}, DType::Float32, dev) : Tensor();
  fe_check(slot->execute(handle, ptrs, ws_bytes > 0 ? ws.data_ptr() : nullptr), "execute", pr);
  BM_CUDA_CHECK_LAUNCH();
}

void cudnn_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                   const Tensor& bias, double scale, bool causal) {
  const Problem pr = make_problem(false, q, k, v, bias, scale, causal);
  std::unordered_map<int64_t, void*> ptrs{
      {kQ, q.data_ptr()}, {kK, k.data_ptr()}, {kV, v.data_ptr()}, {kO, out.data_ptr()}, {kStats, lse.data_ptr()}};
  if (bias.defined()) ptrs[kBias] = bias.data_ptr();
  run(pr, ptrs);
}

void cudnn_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout, const Tensor& q,
                    const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& bias,
                    double scale, bool causal) {
  Problem pr = make_problem(true, q, k, v, bias, scale, causal);
  copy_strides(pr.sdo, dout);
  std::unordered_map<int64_t, void*> ptrs{{kQ, q.data_ptr()},      {kK, k.data_ptr()},       {kV, v.data_ptr()},
                                          {kO, out.data_ptr()},    {kStats, lse.data_ptr()}, {kDO, dout.data_ptr()},
                                          {kDQ, dq.data_ptr()},    {kDK, dk.data_ptr()},     {kDV, dv.data_ptr()}};
  if (bias.defined()) ptrs[kBias] = bias.data_ptr();
  run(pr, ptrs);
}

}  // namespace

BM_REGISTER_KERNEL(cudnn_attention_forward_kernel, CUDA, &cudnn_forward);
BM_REGISTER_KERNEL(cudnn_attention_backward_kernel, CUDA, &cudnn_backward);

}  // namespace bigmodel::cuda

#endif  // BIGMODEL_WITH_CUDNN_FRONTEND && BIGMODEL_WITH_CUDNN
