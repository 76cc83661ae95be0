// CUDA-on-CPU emulation of cuDNN's legacy API, part 2 (-DBIGMODEL_CUDA=EMULATE only): the 2-d
// convolutions (cudnnConvolutionForward / BackwardData / BackwardFilter) and their
// cudnnFind*AlgorithmEx, on host memory. Semantics and checks follow the cudnn_cnn API
// reference (each rule is cited where it is checked); the algorithms all compute the same
// direct sum (float accumulation for float/half/bfloat16, double for double): their own
// rounding (Winograd, FFT) is not emulated, only their availability and workspace sizes.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "tests/cuda_emu/emu_cudnn.h"
#include "tests/cuda_emu/emu_streams.h"

using bm_emu_cudnn::fail;

namespace {

std::atomic<int64_t> g_conv_runs{0};

// The geometry of one call, read from its descriptors once they passed check().
struct Geo {
  cudnnDataType_t t;
  int N, C, H, W;         // x / dx
  int K, Cg, R, S;        // filter [K, C/groups, R, S]
  int P, Q;               // y / dy spatial sizes
  int groups;
  int pad[2], str[2], dil[2];
  bool flip;              // CUDNN_CONVOLUTION: the filter is applied flipped
  const cudnnTensorStruct* x;
  const cudnnFilterStruct* w;
  const cudnnTensorStruct* y;
  cudnnMathType_t math;
};

// The checks cudnnConvolutionForward / BackwardData / BackwardFilter document, on the
// descriptors of x (or dx), w (or dw) and y (or dy):
// - BAD_PARAM: a NULL descriptor or data pointer; descriptors not set; x, w, y of different
//   data types; not 4-d (the emulation covers 2-d convolutions: NOT_SUPPORTED for others);
//   x's feature maps != filter c * groups; the filter's output maps not a multiple of the group
//   count or != y's feature maps; x and y with different batch sizes; a dilated filter larger
//   than the padded input;
// - NOT_SUPPORTED: y's spatial sizes differ from what cudnnGetConvolutionNdForwardOutputDim
//   gives; a data type / compute type pair outside the documented configurations (FLOAT with
//   FLOAT, DOUBLE with DOUBLE, HALF with HALF or FLOAT, BFLOAT16 with FLOAT).
cudnnStatus_t check(const char* fn, const cudnnTensorStruct* x, const cudnnFilterStruct* w,
                    const cudnnConvolutionStruct* c, const cudnnTensorStruct* y, Geo& g) {
  if (!x || !w || !c || !y) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL descriptor");
  if (!x->set || !w->set || !c->set || !y->set) return fail(CUDNN_STATUS_BAD_PARAM, fn, "descriptor never set");
  if (x->dtype != w->dtype || x->dtype != y->dtype)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "x, w and y have different data types");
  if (x->nb != 4 || y->nb != 4 || w->nb != 4)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "only 4-d tensors / 2-d convolutions are emulated");
  const cudnnDataType_t t = x->dtype, ct = c->compute;
  const bool ok_types = (t == CUDNN_DATA_FLOAT && ct == CUDNN_DATA_FLOAT) ||
                        (t == CUDNN_DATA_DOUBLE && ct == CUDNN_DATA_DOUBLE) ||
                        (t == CUDNN_DATA_HALF && (ct == CUDNN_DATA_HALF || ct == CUDNN_DATA_FLOAT)) ||
                        (t == CUDNN_DATA_BFLOAT16 && ct == CUDNN_DATA_FLOAT);
  if (!ok_types) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "data type / compute type pair not supported");
  g.t = t;
  g.N = x->dims[0], g.C = x->dims[1], g.H = x->dims[2], g.W = x->dims[3];
  g.K = w->dims[0], g.Cg = w->dims[1], g.R = w->dims[2], g.S = w->dims[3];
  g.groups = c->groups;
  if (g.C != g.Cg * g.groups) return fail(CUDNN_STATUS_BAD_PARAM, fn, "x feature maps != filter c * group count");
  if (g.K % g.groups != 0) return fail(CUDNN_STATUS_BAD_PARAM, fn, "filter k not a multiple of the group count");
  if (y->dims[1] != g.K) return fail(CUDNN_STATUS_BAD_PARAM, fn, "y feature maps != filter k");
  if (y->dims[0] != g.N) return fail(CUDNN_STATUS_BAD_PARAM, fn, "x and y batch sizes differ");
  const int in[2] = {g.H, g.W}, f[2] = {g.R, g.S};
  int out[2];
  for (int i = 0; i < 2; ++i) {
    g.pad[i] = c->pad[i], g.str[i] = c->stride[i], g.dil[i] = c->dilation[i];
    const int span = (f[i] - 1) * g.dil[i] + 1, padded = in[i] + 2 * g.pad[i];
    if (span > padded) return fail(CUDNN_STATUS_BAD_PARAM, fn, "dilated filter larger than the padded input");
    out[i] = 1 + (padded - span) / g.str[i];
  }
  if (y->dims[2] != out[0] || y->dims[3] != out[1])
    return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "y spatial sizes differ from the convolution's output size");
  g.P = out[0], g.Q = out[1];
  g.flip = c->mode == CUDNN_CONVOLUTION;
  g.x = x, g.w = w, g.y = y;
  g.math = c->math;
  return CUDNN_STATUS_SUCCESS;
}

enum class Dir { Fwd, BwdData, BwdFilter };

// The emulation's algorithm table (availability, workspace, relative time, determinism): a
// model, not cuDNN's heuristics. DIRECT and the FFT algorithms are never available here.
// Deterministic per the cudnn_cnn reference except BWD_DATA_ALGO_0, BWD_FILTER_ALGO_0 and
// BWD_FILTER_ALGO_3 (atomic adds: "the results are non-deterministic").
struct AlgoInfo {
  int algo;
  bool supported;
  size_t ws;
  float time;
  bool deterministic;
};

std::vector<AlgoInfo> algos(Dir d, const Geo& g) {
  const size_t es = bm_emu_cudnn::type_size(g.t);
  const bool unit = g.str[0] == 1 && g.str[1] == 1 && g.dil[0] == 1 && g.dil[1] == 1;
  const bool wino = unit && g.R == 3 && g.S == 3 && g.t != CUDNN_DATA_DOUBLE;
  const bool wino_nf = unit && g.R == g.S && (g.R == 3 || g.R == 5) && g.t != CUDNN_DATA_DOUBLE;
  const size_t col = static_cast<size_t>(g.Cg) * g.R * g.S * g.P * g.Q * es;  // one image's im2col
  const size_t tiles = static_cast<size_t>(g.C + g.K) * ((g.H + 3) / 4) * ((g.W + 3) / 4) * 36 * es;
  if (d == Dir::Fwd)
    return {{CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, true, 0, 3.0f, true},
            {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, true, 256 + 8 * static_cast<size_t>(g.R) * g.S * g.Cg, 1.0f, true},
            {CUDNN_CONVOLUTION_FWD_ALGO_GEMM, true, col, 2.0f, true},
            {CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, false, 0, 0, true},
            {CUDNN_CONVOLUTION_FWD_ALGO_FFT, false, 0, 0, true},
            {CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, false, 0, 0, true},
            {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, wino, 0, 1.5f, true},
            {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, wino_nf, tiles, 2.5f, true}};
  if (d == Dir::BwdData)
    return {{CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, true, 0, 2.0f, false},
            {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, true, 256 + col / std::max(1, g.P), 1.0f, true},
            {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, false, 0, 0, true},
            {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, false, 0, 0, true},
            {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, wino, 0, 1.5f, true},
            {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED, wino_nf, tiles, 2.5f, true}};
  return {{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, true, 0, 2.0f, false},
          {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, true, 256 + col, 1.0f, true},
          {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, false, 0, 0, true},
          {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, true, 512, 2.5f, false},
          {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED, wino_nf, tiles, 3.0f, true},
          {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING, false, 0, 0, true}};
}

// The algorithm that runs on tensor cores when the math type allows it (reported by Find with
// CUDNN_TENSOR_OP_MATH). For FLOAT data that is TF32, which CUDNN_DEFAULT_MATH permits on
// NVIDIA A100 and later ("Tensor Core TF32 operation is permitted") and CUDNN_FMA_MATH forbids
// ("restricted to only kernels that use FMA instructions").
bool tensor_op_algo(Dir d, int algo) {
  return d == Dir::Fwd ? algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM : algo == 1;
}
bool uses_tensor_ops(const Geo& g, Dir d, int algo) {
  if (!tensor_op_algo(d, algo) || g.math == CUDNN_FMA_MATH || g.t == CUDNN_DATA_DOUBLE) return false;
  return g.t != CUDNN_DATA_FLOAT || g.math == CUDNN_DEFAULT_MATH || g.math == CUDNN_TENSOR_OP_MATH ||
         g.math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// A float rounded to TF32 (10 explicit mantissa bits, to nearest): what a tensor core reads.
float tf32(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0xfffu + ((u >> 13) & 1u)) & ~0x1fffu;
  std::memcpy(&v, &u, 4);
  return v;
}

int64_t toff(const cudnnTensorStruct* d, int n, int c, int h, int w) {
  return static_cast<int64_t>(n) * d->strides[0] + static_cast<int64_t>(c) * d->strides[1] +
         static_cast<int64_t>(h) * d->strides[2] + static_cast<int64_t>(w) * d->strides[3];
}
// Filter element [k, c, r, s] in its format: NCHW is KCRS, NHWC is KRSC.
int64_t foff(const Geo& g, int k, int c, int r, int s) {
  if (g.w->format == CUDNN_TENSOR_NHWC) return ((static_cast<int64_t>(k) * g.R + r) * g.S + s) * g.Cg + c;
  return ((static_cast<int64_t>(k) * g.Cg + c) * g.R + r) * g.S + s;
}
int64_t tspan(const cudnnTensorStruct* d) {
  int64_t s = 1;
  for (int i = 0; i < d->nb; ++i) s += static_cast<int64_t>(d->dims[i] - 1) * d->strides[i];
  return s;
}

// The three directions on dense copies in the accumulation type Acc. Dense layouts: x [N,C,H,W],
// w [K,Cg,R,S] as applied (flipped back for CUDNN_CONVOLUTION), y [N,K,P,Q]. out = alpha * sum
// + beta * out, with out not read when beta == 0 ("Scaling Parameters").
template <typename Acc>
void run(Dir d, const Geo& g, bool tc, double alpha, double beta, const void* x, const void* w, const void* y,
         void* out) {
  auto rd = [&](double v) { return tc && g.t == CUDNN_DATA_FLOAT ? static_cast<Acc>(tf32(static_cast<float>(v))) : static_cast<Acc>(v); };
  std::vector<Acc> X, Wt, Y;
  if (d != Dir::BwdData) {
    X.resize(static_cast<size_t>(g.N) * g.C * g.H * g.W);
    size_t i = 0;
    for (int n = 0; n < g.N; ++n)
      for (int c = 0; c < g.C; ++c)
        for (int h = 0; h < g.H; ++h)
          for (int ww = 0; ww < g.W; ++ww) X[i++] = rd(bm_emu_cudnn::load(g.t, x, toff(g.x, n, c, h, ww)));
  }
  auto wsrc = [&](int r, int s, int& rr, int& ss) { rr = g.flip ? g.R - 1 - r : r, ss = g.flip ? g.S - 1 - s : s; };
  if (d != Dir::BwdFilter) {
    Wt.resize(static_cast<size_t>(g.K) * g.Cg * g.R * g.S);
    size_t i = 0;
    for (int k = 0; k < g.K; ++k)
      for (int c = 0; c < g.Cg; ++c)
        for (int r = 0; r < g.R; ++r)
          for (int s = 0; s < g.S; ++s) {
            int rr, ss;
            wsrc(r, s, rr, ss);
            Wt[i++] = rd(bm_emu_cudnn::load(g.t, w, foff(g, k, c, rr, ss)));
          }
  }
  if (d != Dir::Fwd) {
    Y.resize(static_cast<size_t>(g.N) * g.K * g.P * g.Q);
    size_t i = 0;
    for (int n = 0; n < g.N; ++n)
      for (int k = 0; k < g.K; ++k)
        for (int p = 0; p < g.P; ++p)
          for (int q = 0; q < g.Q; ++q) Y[i++] = rd(bm_emu_cudnn::load(g.t, y, toff(g.y, n, k, p, q)));
  }
  const int Kg = g.K / g.groups;
  std::vector<Acc> acc(d == Dir::Fwd ? static_cast<size_t>(g.N) * g.K * g.P * g.Q
                                     : (d == Dir::BwdData ? static_cast<size_t>(g.N) * g.C * g.H * g.W
                                                          : static_cast<size_t>(g.K) * g.Cg * g.R * g.S),
                       Acc(0));
  auto xi = [&](int n, int c, int h, int ww) { return ((static_cast<size_t>(n) * g.C + c) * g.H + h) * g.W + ww; };
  auto wi = [&](int k, int c, int r, int s) { return ((static_cast<size_t>(k) * g.Cg + c) * g.R + r) * g.S + s; };
  auto yi = [&](int n, int k, int p, int q) { return ((static_cast<size_t>(n) * g.K + k) * g.P + p) * g.Q + q; };
  for (int n = 0; n < g.N; ++n)
    for (int k = 0; k < g.K; ++k) {
      const int c0 = (k / Kg) * g.Cg;
      for (int p = 0; p < g.P; ++p)
        for (int q = 0; q < g.Q; ++q) {
          Acc sum = 0;
          for (int c = 0; c < g.Cg; ++c)
            for (int r = 0; r < g.R; ++r) {
              const int h = p * g.str[0] - g.pad[0] + r * g.dil[0];
              if (h < 0 || h >= g.H) continue;
              for (int s = 0; s < g.S; ++s) {
                const int ww = q * g.str[1] - g.pad[1] + s * g.dil[1];
                if (ww < 0 || ww >= g.W) continue;
                if (d == Dir::Fwd) sum += X[xi(n, c0 + c, h, ww)] * Wt[wi(k, c, r, s)];
                else if (d == Dir::BwdData) acc[xi(n, c0 + c, h, ww)] += Y[yi(n, k, p, q)] * Wt[wi(k, c, r, s)];
                else acc[wi(k, c, r, s)] += Y[yi(n, k, p, q)] * X[xi(n, c0 + c, h, ww)];
              }
            }
          if (d == Dir::Fwd) acc[yi(n, k, p, q)] = sum;
        }
    }
  const Acc a = static_cast<Acc>(alpha), b = static_cast<Acc>(beta);
  auto blend = [&](int64_t off, Acc v) {
    Acc r = a * v;
    if (b != Acc(0)) r += b * static_cast<Acc>(bm_emu_cudnn::load(g.t, out, off));
    bm_emu_cudnn::store(g.t, out, off, r);
  };
  size_t i = 0;
  if (d == Dir::Fwd) {
    for (int n = 0; n < g.N; ++n)
      for (int k = 0; k < g.K; ++k)
        for (int p = 0; p < g.P; ++p)
          for (int q = 0; q < g.Q; ++q) blend(toff(g.y, n, k, p, q), acc[i++]);
  } else if (d == Dir::BwdData) {
    for (int n = 0; n < g.N; ++n)
      for (int c = 0; c < g.C; ++c)
        for (int h = 0; h < g.H; ++h)
          for (int ww = 0; ww < g.W; ++ww) blend(toff(g.x, n, c, h, ww), acc[i++]);
  } else {
    for (int k = 0; k < g.K; ++k)
      for (int c = 0; c < g.Cg; ++c)
        for (int r = 0; r < g.R; ++r)
          for (int s = 0; s < g.S; ++s) {
            int rr, ss;
            wsrc(r, s, rr, ss);
            blend(foff(g, k, c, rr, ss), acc[i++]);
          }
  }
}

// One direction's run: pointer and workspace checks, then the sum. "Scaling Parameters":
// alpha and beta point to host floats, or doubles for DOUBLE data.
cudnnStatus_t execute(const char* fn, Dir d, cudnnHandle_t h, const void* alpha, const void* beta, const Geo& g,
                      int algo, void* ws, size_t ws_bytes, const void* x, const void* w, const void* y, void* out) {
  if (!h || !alpha || !beta) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL handle or scaling factor");
  if (!x || !w || !y || !out) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL data pointer");
  const std::vector<AlgoInfo> table = algos(d, g);
  const auto it = std::find_if(table.begin(), table.end(), [&](const AlgoInfo& a) { return a.algo == algo; });
  // "The specified algorithm does not support the parameters provided": NOT_SUPPORTED.
  if (it == table.end() || !it->supported) return fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "algorithm not supported here");
  // Less workspace than the algorithm needs (cudnnGet*WorkspaceSize): the call cannot run.
  if (ws_bytes < it->ws || (it->ws > 0 && !ws))
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "workspace smaller than the algorithm requires");
  const size_t ws_used = it->ws;
  const bool dbl = g.t == CUDNN_DATA_DOUBLE;
  const double a = dbl ? *static_cast<const double*>(alpha) : *static_cast<const float*>(alpha);
  const double b = dbl ? *static_cast<const double*>(beta) : *static_cast<const float*>(beta);
  const bool tc = uses_tensor_ops(g, d, algo);
  // The sum runs on the handle's stream (queued with BIGMODEL_EMU_ASYNC=1), on copies of the
  // descriptors: the caller may destroy them once the call returns.
  auto xd = std::make_shared<cudnnTensorStruct>(*g.x);
  auto wd = std::make_shared<cudnnFilterStruct>(*g.w);
  auto yd = std::make_shared<cudnnTensorStruct>(*g.y);
  bm_emu::on_stream(h->stream, fn, [=] {
    Geo gg = g;
    gg.x = xd.get();
    gg.w = wd.get();
    gg.y = yd.get();
    bm_emu_cudnn::scribble(ws, ws_used);  // the algorithm's scratch: whatever it was is gone
    if (dbl) run<double>(d, gg, tc, a, b, x, w, y, out);
    else run<float>(d, gg, tc, a, b, x, w, y, out);
  });
  ++g_conv_runs;
  return CUDNN_STATUS_SUCCESS;
}

// cudnnFind*AlgorithmEx: every algorithm's perf, successful ones first sorted by time, up to
// requestedAlgoCount of them (BAD_PARAM when it is <= 0 or an output pointer is NULL). An
// algorithm that needs more than the workspace given fails in its perf entry. The output
// buffer's "content will be overwritten with arbitrary values": NaN bytes here, so a caller
// that relies on it after Find reads garbage.
template <typename Perf, typename AlgoT>
cudnnStatus_t find(const char* fn, Dir d, cudnnHandle_t h, const Geo& g, void* out, size_t out_bytes, int requested,
                   int* returned, Perf* perf, void* ws, size_t ws_bytes, const void* in1, const void* in2) {
  if (!h || !out || !in1 || !in2) return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL handle or data pointer");
  if (!returned || !perf || requested <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, fn, "NULL perf / count pointer or requestedAlgoCount <= 0");
  if (ws_bytes > 0 && !ws) return fail(CUDNN_STATUS_BAD_PARAM, fn, "workSpace NULL with a non-zero size");
  // Find runs the algorithms and returns their times: it waits for the handle's stream.
  if (bm_emu::async_mode()) bm_emu::complete(h->stream);
  std::vector<AlgoInfo> table = algos(d, g);
  std::stable_sort(table.begin(), table.end(), [&](const AlgoInfo& a, const AlgoInfo& b) {
    const bool ra = a.supported && a.ws <= ws_bytes, rb = b.supported && b.ws <= ws_bytes;
    return ra != rb ? ra : (ra && a.time < b.time);
  });
  const int n = std::min<int>(requested, static_cast<int>(table.size()));
  for (int i = 0; i < n; ++i) {
    const AlgoInfo& a = table[i];
    Perf p{};
    p.algo = static_cast<AlgoT>(a.algo);
    p.status = !a.supported ? CUDNN_STATUS_NOT_SUPPORTED
                            : (a.ws > ws_bytes ? CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED : CUDNN_STATUS_SUCCESS);
    p.time = p.status == CUDNN_STATUS_SUCCESS ? a.time * 0.01f : -1.0f;
    p.memory = a.ws;
    p.determinism = a.deterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
    p.mathType = uses_tensor_ops(g, d, a.algo) ? CUDNN_TENSOR_OP_MATH
                                               : (g.math == CUDNN_FMA_MATH ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH);
    perf[i] = p;
  }
  *returned = n;
  bm_emu_cudnn::scribble(out, out_bytes);
  bm_emu_cudnn::scribble(ws, ws_bytes);
  return CUDNN_STATUS_SUCCESS;
}

size_t filter_bytes(const Geo& g) {
  return static_cast<size_t>(g.K) * g.Cg * g.R * g.S * bm_emu_cudnn::type_size(g.t);
}
size_t tensor_bytes(const cudnnTensorStruct* d) {
  return static_cast<size_t>(tspan(d)) * bm_emu_cudnn::type_size(d->dtype);
}

}  // namespace

int64_t bm_emu_cudnn::conv_runs() { return g_conv_runs.load(); }

cudnnStatus_t CUDNNWINAPI cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha,
                                                  const cudnnTensorDescriptor_t xDesc, const void* x,
                                                  const cudnnFilterDescriptor_t wDesc, const void* w,
                                                  const cudnnConvolutionDescriptor_t convDesc,
                                                  cudnnConvolutionFwdAlgo_t algo, void* workSpace,
                                                  size_t workSpaceSizeInBytes, const void* beta,
                                                  const cudnnTensorDescriptor_t yDesc, void* y) {
  const char* fn = "cudnnConvolutionForward";
  Geo g;
  const cudnnStatus_t st = check(fn, xDesc, wDesc, convDesc, yDesc, g);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  return execute(fn, Dir::Fwd, handle, alpha, beta, g, algo, workSpace, workSpaceSizeInBytes, x, w, y, y);
}

cudnnStatus_t CUDNNWINAPI cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha,
                                                       const cudnnFilterDescriptor_t wDesc, const void* w,
                                                       const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                       const cudnnConvolutionDescriptor_t convDesc,
                                                       cudnnConvolutionBwdDataAlgo_t algo, void* workSpace,
                                                       size_t workSpaceSizeInBytes, const void* beta,
                                                       const cudnnTensorDescriptor_t dxDesc, void* dx) {
  const char* fn = "cudnnConvolutionBackwardData";
  Geo g;
  const cudnnStatus_t st = check(fn, dxDesc, wDesc, convDesc, dyDesc, g);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  return execute(fn, Dir::BwdData, handle, alpha, beta, g, algo, workSpace, workSpaceSizeInBytes, dx, w, dy, dx);
}

cudnnStatus_t CUDNNWINAPI cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha,
                                                         const cudnnTensorDescriptor_t xDesc, const void* x,
                                                         const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                         const cudnnConvolutionDescriptor_t convDesc,
                                                         cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace,
                                                         size_t workSpaceSizeInBytes, const void* beta,
                                                         const cudnnFilterDescriptor_t dwDesc, void* dw) {
  const char* fn = "cudnnConvolutionBackwardFilter";
  Geo g;
  const cudnnStatus_t st = check(fn, xDesc, dwDesc, convDesc, dyDesc, g);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  return execute(fn, Dir::BwdFilter, handle, alpha, beta, g, algo, workSpace, workSpaceSizeInBytes, x, dw, dy, dw);
}

cudnnStatus_t CUDNNWINAPI cudnnFindConvolutionForwardAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnFilterDescriptor_t wDesc,
    const void* w, const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc, void* y,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t* perfResults,
    void* workSpace, size_t workSpaceSizeInBytes) {
  const char* fn = "cudnnFindConvolutionForwardAlgorithmEx";
  Geo g;
  const cudnnStatus_t st = check(fn, xDesc, wDesc, convDesc, yDesc, g);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  return find<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
      fn, Dir::Fwd, handle, g, y, tensor_bytes(yDesc), requestedAlgoCount, returnedAlgoCount, perfResults, workSpace,
      workSpaceSizeInBytes, x, w);
}

cudnnStatus_t CUDNNWINAPI cudnnFindConvolutionBackwardDataAlgorithmEx(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const void* w, const cudnnTensorDescriptor_t dyDesc,
    const void* dy, const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc, void* dx,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionBwdDataAlgoPerf_t* perfResults,
    void* workSpace, size_t workSpaceSizeInBytes) {
  const char* fn = "cudnnFindConvolutionBackwardDataAlgorithmEx";
  Geo g;
  const cudnnStatus_t st = check(fn, dxDesc, wDesc, convDesc, dyDesc, g);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  return find<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
      fn, Dir::BwdData, handle, g, dx, tensor_bytes(dxDesc), requestedAlgoCount, returnedAlgoCount, perfResults,
      workSpace, workSpaceSizeInBytes, w, dy);
}

cudnnStatus_t CUDNNWINAPI cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t dyDesc,
    const void* y, const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc, void* dw,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionBwdFilterAlgoPerf_t* perfResults,
    void* workSpace, size_t workSpaceSizeInBytes) {
  const char* fn = "cudnnFindConvolutionBackwardFilterAlgorithmEx";
  Geo g;
  const cudnnStatus_t st = check(fn, xDesc, dwDesc, convDesc, dyDesc, g);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  return find<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
      fn, Dir::BwdFilter, handle, g, dw, filter_bytes(g), requestedAlgoCount, returnedAlgoCount, perfResults,
      workSpace, workSpaceSizeInBytes, x, y);
}
