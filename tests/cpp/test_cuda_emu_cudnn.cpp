// cuda tier (emulation build only): checks of the emulated cuDNN itself (tests/cuda_emu/
// emu_cudnn*.cpp) where the wrapper tests could pass for the wrong reason: the CONVOLUTION mode
// flips the filter, alpha/beta blending ignores a NaN output when beta is 0, documented
// BAD_PARAM / NOT_SUPPORTED statuses, Find*Ex leaves its output undefined, an LSTM and a GRU
// step against hand-written cell equations (GRU's recurrent bias inside r * (...)), the reverse
// direction starting at each sequence's own end, and the v8 backward call order. Also that the
// conv wrapper reaches cuDNN for geometries with pad_h != pad_w (it silently falls back to our
// kernels when its descriptors cannot express a problem). Host pointers stand for device ones:
// the emulated device memory is host memory.
#ifdef BIGMODEL_CUDA_EMU
#include <cudnn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/backends.h"
#include "core/ops/conv.h"
#include "core/ops/creation.h"
#include "core/ops/view.h"
#include "core/random.h"
#include "tests/cuda_emu/emu_cudnn.h"

using namespace bigmodel;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Conv {
  cudnnHandle_t h = nullptr;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t c = nullptr;
  Conv() {
    cudnnCreate(&h);
    cudnnCreateTensorDescriptor(&x);
    cudnnCreateTensorDescriptor(&y);
    cudnnCreateFilterDescriptor(&w);
    cudnnCreateConvolutionDescriptor(&c);
  }
  ~Conv() {
    cudnnDestroyConvolutionDescriptor(c);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroy(h);
  }
};

// One-layer RNN descriptors over host buffers; weights set through cudnnGetRNNWeightParams.
struct Rnn {
  cudnnHandle_t h = nullptr;
  cudnnRNNDescriptor_t r = nullptr;
  cudnnDropoutDescriptor_t drop = nullptr;
  cudnnRNNDataDescriptor_t x = nullptr, y = nullptr;
  cudnnTensorDescriptor_t hd = nullptr, m = nullptr, b = nullptr;
  std::vector<char> w, work, reserve;
  std::vector<int32_t> lengths;
  Rnn(cudnnRNNMode_t mode, bool bidir, int T, int B, int I, int H, std::vector<int32_t> lens,
      cudnnRNNDataLayout_t layout = CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED)
      : lengths(lens) {
    cudnnCreate(&h);
    cudnnCreateRNNDescriptor(&r);
    cudnnCreateDropoutDescriptor(&drop);
    cudnnCreateRNNDataDescriptor(&x);
    cudnnCreateRNNDataDescriptor(&y);
    cudnnCreateTensorDescriptor(&hd);
    cudnnCreateTensorDescriptor(&m);
    cudnnCreateTensorDescriptor(&b);
    EXPECT_EQ(cudnnSetDropoutDescriptor(drop, h, 0.0f, nullptr, 0, 0), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetRNNDescriptor_v8(r, CUDNN_RNN_ALGO_STANDARD, mode, CUDNN_RNN_DOUBLE_BIAS,
                                       bidir ? CUDNN_BIDIRECTIONAL : CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT,
                                       CUDNN_DATA_DOUBLE, CUDNN_DATA_DOUBLE, CUDNN_DEFAULT_MATH, I, H, H, 1, drop,
                                       CUDNN_RNN_PADDED_IO_ENABLED),
              CUDNN_STATUS_SUCCESS);
    double fill = 0.0;
    const int D = bidir ? 2 : 1;
    EXPECT_EQ(cudnnSetRNNDataDescriptor(x, CUDNN_DATA_DOUBLE, layout, T, B, I, lengths.data(), &fill),
              CUDNN_STATUS_SUCCESS);
    fill = -7.0;  // a visible padding value for y
    EXPECT_EQ(cudnnSetRNNDataDescriptor(y, CUDNN_DATA_DOUBLE, layout, T, B, D * H, lengths.data(), &fill),
              CUDNN_STATUS_SUCCESS);
    const int dims[3] = {D, B, H}, strides[3] = {B * H, H, 1};
    EXPECT_EQ(cudnnSetTensorNdDescriptor(hd, CUDNN_DATA_DOUBLE, 3, dims, strides), CUDNN_STATUS_SUCCESS);
    size_t wbytes = 0, work_bytes = 0, res_bytes = 0;
    EXPECT_EQ(cudnnGetRNNWeightSpaceSize(h, r, &wbytes), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnGetRNNTempSpaceSizes(h, r, CUDNN_FWD_MODE_TRAINING, x, &work_bytes, &res_bytes),
              CUDNN_STATUS_SUCCESS);
    w.assign(wbytes, 0), work.assign(work_bytes, 0), reserve.assign(res_bytes, 0);
  }
  ~Rnn() {
    cudnnDestroyTensorDescriptor(b);
    cudnnDestroyTensorDescriptor(m);
    cudnnDestroyTensorDescriptor(hd);
    cudnnDestroyRNNDataDescriptor(y);
    cudnnDestroyRNNDataDescriptor(x);
    cudnnDestroyDropoutDescriptor(drop);
    cudnnDestroyRNNDescriptor(r);
    cudnnDestroy(h);
  }
  // Sets every element of linear layer `id`'s matrix of pseudo-layer p to mv, its bias to bv.
  void set(int p, int id, double mv, double bv) {
    void *ma = nullptr, *ba = nullptr;
    ASSERT_EQ(cudnnGetRNNWeightParams(h, r, p, w.size(), w.data(), id, m, &ma, b, &ba), CUDNN_STATUS_SUCCESS);
    cudnnDataType_t t;
    int nb = 0, d[3], s[3];
    ASSERT_EQ(cudnnGetTensorNdDescriptor(m, 3, &t, &nb, d, s), CUDNN_STATUS_SUCCESS);
    ASSERT_EQ(nb, 3);
    for (int i = 0; i < d[0] * d[1] * d[2]; ++i) static_cast<double*>(ma)[i] = mv;
    ASSERT_EQ(cudnnGetTensorNdDescriptor(b, 3, &t, &nb, d, s), CUDNN_STATUS_SUCCESS);
    for (int i = 0; i < d[0] * d[1] * d[2]; ++i) static_cast<double*>(ba)[i] = bv;
  }
  cudnnStatus_t forward(const double* xv, double* yv, const double* hx, double* hy, const double* cx, double* cy) {
    return cudnnRNNForward(h, r, CUDNN_FWD_MODE_TRAINING, lengths.data(), x, xv, y, yv, hd, hx, hy, hd, cx, cy,
                           w.size(), w.data(), work.size(), work.data(), reserve.size(), reserve.data());
  }
};

}  // namespace

TEST(CudaEmuCudnn, ConvolutionModeFlipsTheFilterAndBlends) {
  Conv k;
  ASSERT_EQ(cudnnSetTensor4dDescriptor(k.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 3, 3), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetFilter4dDescriptor(k.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 1, 1, 2, 2), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetTensor4dDescriptor(k.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 2, 2), CUDNN_STATUS_SUCCESS);
  const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 2, 3, 4};
  const float cc[4] = {37, 47, 67, 77}, conv[4] = {23, 33, 53, 63};  // by hand
  for (int mode = 0; mode < 2; ++mode) {
    ASSERT_EQ(cudnnSetConvolution2dDescriptor(k.c, 0, 0, 1, 1, 1, 1, mode ? CUDNN_CONVOLUTION : CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_FLOAT),
              CUDNN_STATUS_SUCCESS);
    float y[4];
    for (float& v : y) v = static_cast<float>(kNaN);
    const float two = 2.0f, zero = 0.0f, one = 1.0f;
    ASSERT_EQ(cudnnConvolutionForward(k.h, &two, k.x, x, k.w, w, k.c, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr,
                                      0, &zero, k.y, y),
              CUDNN_STATUS_SUCCESS);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(y[i], 2 * (mode ? conv[i] : cc[i])) << "mode " << mode << " y" << i;
    ASSERT_EQ(cudnnConvolutionForward(k.h, &one, k.x, x, k.w, w, k.c, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr,
                                      0, &one, k.y, y),
              CUDNN_STATUS_SUCCESS);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(y[i], 3 * (mode ? conv[i] : cc[i])) << "beta=1, mode " << mode;
  }
}

// Backward data and backward filter are the adjoints of the forward in both modes, with
// strides, pads, dilations and groups: <conv(x, w), dy> = <x, bwd_data(dy, w)> = <w, bwd_filter(x, dy)>.
TEST(CudaEmuCudnn, BackwardsAreAdjointsOfTheForward) {
  Conv k;
  const int N = 2, C = 4, H = 7, W = 6, K = 6, R = 3, S = 2, G = 2;
  ASSERT_EQ(cudnnSetTensor4dDescriptor(k.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_DOUBLE, N, C, H, W), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetFilter4dDescriptor(k.w, CUDNN_DATA_DOUBLE, CUDNN_TENSOR_NCHW, K, C / G, R, S), CUDNN_STATUS_SUCCESS);
  int n, c, oh, ow;
  for (int mode = 0; mode < 2; ++mode) {
    ASSERT_EQ(cudnnSetConvolution2dDescriptor(k.c, 1, 2, 2, 1, 1, 2, mode ? CUDNN_CONVOLUTION : CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_DOUBLE),
              CUDNN_STATUS_SUCCESS);
    ASSERT_EQ(cudnnSetConvolutionGroupCount(k.c, G), CUDNN_STATUS_SUCCESS);
    ASSERT_EQ(cudnnGetConvolution2dForwardOutputDim(k.c, k.x, k.w, &n, &c, &oh, &ow), CUDNN_STATUS_SUCCESS);
    ASSERT_EQ(cudnnSetTensor4dDescriptor(k.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_DOUBLE, n, c, oh, ow), CUDNN_STATUS_SUCCESS);
    std::vector<double> x(N * C * H * W), w(K * (C / G) * R * S), dy(static_cast<size_t>(n) * c * oh * ow);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7 * static_cast<double>(i) + 0.1);
    for (size_t i = 0; i < w.size(); ++i) w[i] = std::cos(1.3 * static_cast<double>(i));
    for (size_t i = 0; i < dy.size(); ++i) dy[i] = std::sin(0.37 * static_cast<double>(i) + 2.0);
    std::vector<double> y(dy.size(), kNaN), dx(x.size(), kNaN), dw(w.size(), kNaN);
    const double one = 1.0, zero = 0.0;
    ASSERT_EQ(cudnnConvolutionForward(k.h, &one, k.x, x.data(), k.w, w.data(), k.c,
                                      CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, k.y, y.data()),
              CUDNN_STATUS_SUCCESS);
    ASSERT_EQ(cudnnConvolutionBackwardData(k.h, &one, k.w, w.data(), k.y, dy.data(), k.c,
                                           CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, nullptr, 0, &zero, k.x, dx.data()),
              CUDNN_STATUS_SUCCESS);
    ASSERT_EQ(cudnnConvolutionBackwardFilter(k.h, &one, k.x, x.data(), k.y, dy.data(), k.c,
                                             CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr, 0, &zero, k.w, dw.data()),
              CUDNN_STATUS_SUCCESS);
    double a = 0, b = 0, d = 0;
    for (size_t i = 0; i < y.size(); ++i) a += y[i] * dy[i];
    for (size_t i = 0; i < x.size(); ++i) b += x[i] * dx[i];
    for (size_t i = 0; i < w.size(); ++i) d += w[i] * dw[i];
    EXPECT_GT(std::fabs(a), 1.0) << "mode " << mode;
    EXPECT_NEAR(b, a, 1e-10) << "mode " << mode;
    EXPECT_NEAR(d, a, 1e-10) << "mode " << mode;
  }
}

TEST(CudaEmuCudnn, DocumentedStatusesAndBroadcast) {
  Conv k;
  ASSERT_EQ(cudnnSetTensor4dDescriptor(k.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 4, 5, 5), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetFilter4dDescriptor(k.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 6, 2, 3, 3), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetConvolution2dDescriptor(k.c, 1, 1, 2, 2, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
            CUDNN_STATUS_SUCCESS);
  int n, c, h, w;
  // 4 input maps, filter c 2: needs 2 groups.
  EXPECT_EQ(cudnnGetConvolution2dForwardOutputDim(k.c, k.x, k.w, &n, &c, &h, &w), CUDNN_STATUS_BAD_PARAM);
  ASSERT_EQ(cudnnSetConvolutionGroupCount(k.c, 2), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnGetConvolution2dForwardOutputDim(k.c, k.x, k.w, &n, &c, &h, &w), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(std::vector<int>({n, c, h, w}), std::vector<int>({2, 6, 3, 3}));  // 1 + (5 + 2 - 3) / 2
  std::vector<float> x(2 * 4 * 25, 1.0f), wt(6 * 2 * 9, 1.0f), y(2 * 6 * 16, 0.0f);
  const float one = 1.0f, zero = 0.0f;
  auto fwd = [&] {
    return cudnnConvolutionForward(k.h, &one, k.x, x.data(), k.w, wt.data(), k.c,
                                   CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, k.y, y.data());
  };
  ASSERT_EQ(cudnnSetTensor4dDescriptor(k.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 6, 4, 4), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(fwd(), CUDNN_STATUS_NOT_SUPPORTED);  // y 4x4, the convolution gives 3x3
  ASSERT_EQ(cudnnSetTensor4dDescriptor(k.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 5, 3, 3), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(fwd(), CUDNN_STATUS_BAD_PARAM);  // y has 5 maps, the filter 6
  ASSERT_EQ(cudnnSetTensor4dDescriptor(k.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, 2, 6, 3, 3), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(fwd(), CUDNN_STATUS_BAD_PARAM);  // data types differ
  ASSERT_EQ(cudnnSetTensor4dDescriptor(k.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 6, 3, 3), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(fwd(), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(y[0], 2 * 4.0f);  // corner: 2 channels x 2 x 2 taps inside
  EXPECT_EQ(y[4], 2 * 9.0f);  // centre
  ASSERT_EQ(cudnnSetConvolution2dDescriptor(k.c, 1, 1, 2, 2, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_DOUBLE),
            CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(fwd(), CUDNN_STATUS_NOT_SUPPORTED);  // FLOAT data with DOUBLE compute: no such configuration
  EXPECT_EQ(cudnnSetConvolution2dDescriptor(k.c, -1, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
            CUDNN_STATUS_BAD_PARAM);

  // cudnnAddTensor: A's dimensions are C's or 1.
  cudnnTensorDescriptor_t a;
  ASSERT_EQ(cudnnCreateTensorDescriptor(&a), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetTensor4dDescriptor(a, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 6, 1, 1), CUDNN_STATUS_SUCCESS);
  const float bias[6] = {1, 2, 3, 4, 5, 6};
  ASSERT_EQ(cudnnAddTensor(k.h, &one, a, bias, &one, k.y, y.data()), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(y[0], 8.0f + 1);
  EXPECT_EQ(y[9 * 7 + 4], 18.0f + 2);  // n 1, c 1, centre
  ASSERT_EQ(cudnnSetTensor4dDescriptor(a, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 1, 1), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnAddTensor(k.h, &one, a, bias, &one, k.y, y.data()), CUDNN_STATUS_BAD_PARAM);
  cudnnDestroyTensorDescriptor(a);
}

TEST(CudaEmuCudnn, FindExLeavesTheOutputUndefined) {
  Conv k;
  ASSERT_EQ(cudnnSetTensor4dDescriptor(k.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 2, 4, 4), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetFilter4dDescriptor(k.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 3, 2, 3, 3), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetTensor4dDescriptor(k.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 2, 2), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetConvolution2dDescriptor(k.c, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
            CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetConvolutionMathType(k.c, CUDNN_FMA_MATH), CUDNN_STATUS_SUCCESS);
  std::vector<float> x(32, 1.0f), w(54, 1.0f), y(12, 0.0f);
  std::vector<char> ws(1 << 16);
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int count = 0;
  ASSERT_EQ(cudnnFindConvolutionForwardAlgorithmEx(k.h, k.x, x.data(), k.w, w.data(), k.c, k.y, y.data(),
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf, ws.data(),
                                                   ws.size()),
            CUDNN_STATUS_SUCCESS);
  ASSERT_GT(count, 1);
  EXPECT_EQ(perf[0].status, CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(perf[0].mathType, CUDNN_FMA_MATH);
  EXPECT_EQ(perf[count - 1].status, CUDNN_STATUS_NOT_SUPPORTED);  // failures after the successes
  for (float v : y) EXPECT_TRUE(std::isnan(v));
  EXPECT_EQ(cudnnFindConvolutionForwardAlgorithmEx(k.h, k.x, x.data(), k.w, w.data(), k.c, k.y, y.data(), 0, &count,
                                                   perf, ws.data(), ws.size()),
            CUDNN_STATUS_BAD_PARAM);
}

TEST(CudaEmuCudnn, LstmAndGruStepsMatchTheDocumentedEquations) {
  const double x = 1.5, h0 = 0.2, c0 = -0.4;
  {  // LSTM, linLayerID 0-3 input i, f, c', o; 4-7 recurrent
    Rnn r(CUDNN_LSTM, false, 1, 1, 1, 1, {1});
    const double W[4] = {0.5, -0.3, 0.8, 0.2}, R[4] = {0.1, 0.4, -0.6, 0.7};
    const double bW[4] = {0.01, 0.02, 0.03, 0.04}, bR[4] = {0.05, 0.06, 0.07, 0.08};
    for (int g = 0; g < 4; ++g) {
      r.set(0, g, W[g], bW[g]);
      r.set(0, 4 + g, R[g], bR[g]);
    }
    double y = kNaN, hy = kNaN, cy = kNaN;
    ASSERT_EQ(r.forward(&x, &y, &h0, &hy, &c0, &cy), CUDNN_STATUS_SUCCESS);
    auto pre = [&](int g) { return W[g] * x + R[g] * h0 + bW[g] + bR[g]; };
    const double i = 1 / (1 + std::exp(-pre(0))), f = 1 / (1 + std::exp(-pre(1)));
    const double g = std::tanh(pre(2)), o = 1 / (1 + std::exp(-pre(3)));
    const double c = f * c0 + i * g, h = o * std::tanh(c);
    EXPECT_NEAR(cy, c, 1e-14);
    EXPECT_NEAR(hy, h, 1e-14);
    EXPECT_NEAR(y, h, 1e-14);
  }
  {  // GRU, linLayerID 0-2 input r, u, h'; 3-5 recurrent; b_Rh inside r * (R_h h + b_Rh)
    Rnn r(CUDNN_GRU, false, 1, 1, 1, 1, {1});
    const double W[3] = {0.5, -0.3, 0.8}, R[3] = {0.1, 0.4, -0.6};
    const double bW[3] = {0.01, 0.02, 0.03}, bR[3] = {0.05, 0.06, 0.9};
    for (int g = 0; g < 3; ++g) {
      r.set(0, g, W[g], bW[g]);
      r.set(0, 3 + g, R[g], bR[g]);
    }
    double y = kNaN, hy = kNaN;
    ASSERT_EQ(r.forward(&x, &y, &h0, &hy, nullptr, nullptr), CUDNN_STATUS_SUCCESS);
    const double rr = 1 / (1 + std::exp(-(W[0] * x + R[0] * h0 + bW[0] + bR[0])));
    const double u = 1 / (1 + std::exp(-(W[1] * x + R[1] * h0 + bW[1] + bR[1])));
    const double n = std::tanh(W[2] * x + bW[2] + rr * (R[2] * h0 + bR[2]));
    EXPECT_NEAR(hy, (1 - u) * n + u * h0, 1e-14);
    EXPECT_NEAR(y, hy, 1e-14);
  }
}

TEST(CudaEmuCudnn, ReverseDirectionStartsAtEachSequencesEnd) {
  // tanh RNN, T 3, batch 2 with lengths {3, 1}, bidirectional: every weight 0.5, biases 0.
  Rnn r(CUDNN_RNN_TANH, true, 3, 2, 1, 1, {3, 1});
  for (int p = 0; p < 2; ++p) {
    r.set(p, 0, 0.5, 0.0);
    r.set(p, 1, 0.5, 0.0);
  }
  const double x[6] = {1.0, 2.0, 0.3, 1e6, -0.7, 1e6};  // [t][b]; x past a length is garbage
  const double hx[4] = {0.1, 0.2, 0.3, 0.4};             // [dir][b]
  double y[12], hy[4];
  ASSERT_EQ(r.forward(x, y, hx, hy, nullptr, nullptr), CUDNN_STATUS_SUCCESS);
  auto step = [](double xv, double h) { return std::tanh(0.5 * xv + 0.5 * h); };
  // batch 1 (length 1): both directions see x[0][1] only, from their own hx.
  EXPECT_NEAR(y[2], step(2.0, 0.2), 1e-14);  // t 0, b 1, forward
  EXPECT_NEAR(y[3], step(2.0, 0.4), 1e-14);  // t 0, b 1, reverse
  for (int t = 1; t < 3; ++t) {  // paddingFill
    EXPECT_EQ(y[t * 4 + 2], -7.0);
    EXPECT_EQ(y[t * 4 + 3], -7.0);
  }
  // batch 0 (length 3): the reverse direction runs t 2, 1, 0 and ends at t 0.
  const double r2 = step(-0.7, 0.3), r1 = step(0.3, r2), r0 = step(1.0, r1);
  EXPECT_NEAR(y[1], r0, 1e-14);
  EXPECT_NEAR(y[9], r2, 1e-14);
  EXPECT_NEAR(hy[2], r0, 1e-14);  // [dir 1][b 0]
  EXPECT_NEAR(hy[3], step(2.0, 0.4), 1e-14);
  EXPECT_NEAR(hy[1], step(2.0, 0.2), 1e-14);  // forward b 1 stops at its length
}

// The three RNN data layouts hold the same vectors at the documented places: SEQ_MAJOR_UNPACKED
// [t][b], BATCH_MAJOR_UNPACKED [b][t], SEQ_MAJOR_PACKED the running sequences of each step in turn.
TEST(CudaEmuCudnn, RnnDataLayoutsAgree) {
  const int T = 3, B = 3;
  const std::vector<int32_t> lens = {3, 2, 1};  // sorted, as the packed layout requires
  const double xs[3][3] = {{0.5, -1.0, 2.0}, {0.25, 0.75, 0}, {-0.5, 0, 0}};  // [t][b]
  std::vector<std::vector<double>> ys;
  for (cudnnRNNDataLayout_t layout : {CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED,
                                      CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED}) {
    Rnn r(CUDNN_RNN_TANH, false, T, B, 1, 1, lens, layout);
    r.set(0, 0, 0.8, 0.1);
    r.set(0, 1, -0.4, 0.2);
    std::vector<double> x, y(T * B, kNaN);
    for (int i = 0; i < T * B; ++i) {
      const int t = layout == CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED ? i % T : i / B;
      const int b = layout == CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED ? i / T : i % B;
      if (layout != CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED) x.push_back(xs[t][b]);
    }
    if (layout == CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED)
      for (int t = 0; t < T; ++t)
        for (int b = 0; b < B; ++b)
          if (t < lens[b]) x.push_back(xs[t][b]);
    ASSERT_EQ(r.forward(x.data(), y.data(), nullptr, nullptr, nullptr, nullptr), CUDNN_STATUS_SUCCESS);
    std::vector<double> tb(T * B, -7.0);  // back to [t][b], padding as the fill value
    int k = 0;
    for (int t = 0; t < T; ++t)
      for (int b = 0; b < B; ++b) {
        if (layout == CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED) tb[t * B + b] = y[t * B + b];
        if (layout == CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED) tb[t * B + b] = y[b * T + t];
        if (layout == CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED && t < lens[b]) tb[t * B + b] = y[k++];
      }
    ys.push_back(tb);
  }
  EXPECT_NEAR(ys[0][0], std::tanh(0.8 * 0.5 + 0.3), 1e-14);
  EXPECT_EQ(ys[0][2 * B + 2], -7.0);  // padding
  EXPECT_EQ(ys[1], ys[0]);
  EXPECT_EQ(ys[2], ys[0]);
}

TEST(CudaEmuCudnn, BackwardCallsFollowTheDocumentedOrder) {
  Rnn r(CUDNN_RNN_TANH, false, 2, 1, 1, 1, {2});
  r.set(0, 0, 0.5, 0.1);
  r.set(0, 1, 0.5, 0.1);
  const double x[2] = {1.0, -1.0}, hx = 0.3;
  double y[2], dy[2] = {1.0, 1.0}, dx[2], dhx;
  std::vector<char> dw(r.w.size(), 0);
  auto weights = [&](cudnnWgradMode_t mode) {
    return cudnnRNNBackwardWeights_v8(r.h, r.r, mode, r.lengths.data(), r.x, x, r.hd, &hx, r.y, y, dw.size(),
                                      dw.data(), r.work.size(), r.work.data(), r.reserve.size(), r.reserve.data());
  };
  EXPECT_EQ(weights(CUDNN_WGRAD_MODE_ADD), CUDNN_STATUS_BAD_PARAM);  // nothing in the reserve space yet
  ASSERT_EQ(r.forward(x, y, &hx, nullptr, nullptr, nullptr), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(weights(CUDNN_WGRAD_MODE_ADD), CUDNN_STATUS_BAD_PARAM);  // backward data has not run
  ASSERT_EQ(cudnnRNNBackwardData_v8(r.h, r.r, r.lengths.data(), r.y, y, dy, r.x, dx, r.hd, &hx, nullptr, &dhx, r.hd,
                                    nullptr, nullptr, nullptr, r.w.size(), r.w.data(), r.work.size(), r.work.data(),
                                    r.reserve.size(), r.reserve.data()),
            CUDNN_STATUS_SUCCESS);
  // dL/dx0 = (1 - y0^2) * 0.5 * (1 + (1 - y1^2) * 0.5), by hand.
  EXPECT_NEAR(dx[0], (1 - y[0] * y[0]) * 0.5 * (1 + (1 - y[1] * y[1]) * 0.5), 1e-14);
  EXPECT_EQ(weights(CUDNN_WGRAD_MODE_SET), CUDNN_STATUS_NOT_SUPPORTED);  // "only ADD is supported"
  ASSERT_EQ(weights(CUDNN_WGRAD_MODE_ADD), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(weights(CUDNN_WGRAD_MODE_ADD), CUDNN_STATUS_SUCCESS);  // adds again: twice the gradient
  void *ma = nullptr, *ba = nullptr;
  ASSERT_EQ(cudnnGetRNNWeightParams(r.h, r.r, 0, dw.size(), dw.data(), 1, r.m, &ma, r.b, &ba), CUDNN_STATUS_SUCCESS);
  const double d1 = 1 - y[1] * y[1], d0 = (1 - y[0] * y[0]) * (1 + d1 * 0.5);
  EXPECT_NEAR(*static_cast<double*>(ma), 2 * (d0 * hx + d1 * y[0]), 1e-14);  // dR
  EXPECT_NEAR(*static_cast<double*>(ba), 2 * (d0 + d1), 1e-14);                // db_R
}

// The wrapper (kernels/cuda/conv_cudnn.cu) falls back to our kernels when cuDNN's descriptors do
// not give the problem's output size, so a geometry mistake there would go unseen by the
// comparison tests: here every problem cuDNN can express must reach it.
TEST(CudaEmuCudnn, ConvWrapperReachesCudnnForUnequalPadsAndStrides) {
  struct Restore {
    std::string was = backend("conv");
    ~Restore() { set_backend("conv", was); }
  } restore;
  set_backend("conv", "cudnn");
  const Device gpu(DeviceType::CUDA, 0);
  struct Case {
    int64_t N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, g;
  };
  for (const Case& k : {Case{2, 3, 17, 15, 6, 5, 3, 2, 3, 2, 1, 1, 2, 3}, Case{1, 6, 12, 11, 4, 2, 4, 1, 1, 1, 3, 2, 2, 2}}) {
    Conv2dParams p;
    p.stride_h = k.sh, p.stride_w = k.sw, p.pad_h = k.ph, p.pad_w = k.pw, p.dilation_h = k.dh, p.dilation_w = k.dw;
    p.groups = k.g;
    const int64_t oh = (k.H + 2 * k.ph - k.dh * (k.kh - 1) - 1) / k.sh + 1;
    const int64_t ow = (k.W + 2 * k.pw - k.dw * (k.kw - 1) - 1) / k.sw + 1;
    manual_seed(1);
    const Tensor x = randn({k.N, k.C, k.H, k.W}), w = randn({k.O, k.C / k.g, k.kh, k.kw});
    Tensor ref = Tensor::empty({k.N, k.O, oh, ow}, DType::Float32);
    conv2d_forward_kernel.get(Device())(ref, x, w, Tensor(), p);
    Tensor out = Tensor::empty({k.N, k.O, oh, ow}, DType::Float32, gpu);
    const int64_t before = bm_emu_cudnn::conv_runs();
    conv2d_forward_kernel.get(gpu)(out, to(x, gpu), to(w, gpu), Tensor(), p);
    EXPECT_EQ(bm_emu_cudnn::conv_runs(), before + 1) << "cuDNN did not run for pads " << k.ph << "," << k.pw;
    const Tensor got = to(out, Device());
    double err = 0;
    for (int64_t i = 0; i < ref.numel(); ++i)
      err = std::max(err, static_cast<double>(std::fabs(got.data<float>()[i] - ref.data<float>()[i])));
    EXPECT_LE(err, 1e-4);
  }
}

#endif  // BIGMODEL_CUDA_EMU
