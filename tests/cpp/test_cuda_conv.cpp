// cuda tier (C++): the CUDA conv kernels (kernels/cuda/conv*.cu) called through their stubs
// with NaN-poisoned outputs, against the CPU kernels on the same inputs: forward (bias or
// not), input gradient and weight gradient over strides, paddings (asymmetric too),
// dilations, groups, odd sizes and every floating dtype; then ours against cuDNN. Every
// output element must be written (no NaN left). Skips where no GPU is visible.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "core/backends.h"
#include "core/cuda_info.h"
#include "core/ops/conv.h"
#include "core/ops/creation.h"
#include "core/ops/view.h"
#include "tests/cpp/cuda_test_skip.h"

using namespace bigmodel;

namespace {

const Device kGpu(DeviceType::CUDA, 0);
const Device kCpu;

struct ConvCase {
  int64_t N, C, H, W, O, kH, kW;
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
  bool bias = false;
  int64_t extra_h = 0, extra_w = 0;  // bottom / right padding beyond the top / left ('same', even kernels)
  int64_t oH() const { return (H + 2 * ph + extra_h - dh * (kH - 1) - 1) / sh + 1; }
  int64_t oW() const { return (W + 2 * pw + extra_w - dw * (kW - 1) - 1) / sw + 1; }
  Conv2dParams params() const {
    Conv2dParams p;
    p.stride_h = sh, p.stride_w = sw, p.pad_h = ph, p.pad_w = pw, p.dilation_h = dh, p.dilation_w = dw;
    p.groups = groups;
    return p;
  }
  std::string str() const {
    return "N" + std::to_string(N) + " C" + std::to_string(C) + " " + std::to_string(H) + "x" + std::to_string(W) +
           " O" + std::to_string(O) + " k" + std::to_string(kH) + "x" + std::to_string(kW) + " s" +
           std::to_string(sh) + "," + std::to_string(sw) + " p" + std::to_string(ph) + "," + std::to_string(pw) +
           "+" + std::to_string(extra_h) + "," + std::to_string(extra_w) + " d" + std::to_string(dh) + "," +
           std::to_string(dw) + " g" + std::to_string(groups) + (bias ? " bias" : "");
  }
};

ConvCase make_case(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kH, int64_t kW) {
  ConvCase c;
  c.N = N, c.C = C, c.H = H, c.W = W, c.O = O, c.kH = kH, c.kW = kW;
  return c;
}

std::vector<ConvCase> cases() {
  std::vector<ConvCase> v;
  v.push_back(make_case(1, 1, 5, 5, 1, 1, 1));
  ConvCase c = make_case(7, 3, 11, 9, 5, 3, 3);
  c.ph = c.pw = 1, c.bias = true;
  v.push_back(c);
  c = make_case(1, 33, 13, 7, 17, 3, 3);
  c.sh = c.sw = 2, c.ph = c.pw = 1, c.bias = true;
  v.push_back(c);
  c = make_case(7, 33, 9, 10, 33, 3, 3);  // depthwise
  c.ph = c.pw = 1, c.groups = 33, c.bias = true;
  v.push_back(c);
  c = make_case(2, 3, 17, 15, 6, 5, 3);
  c.sh = 2, c.sw = 3, c.ph = 2, c.pw = 1, c.dw = 2, c.groups = 3;
  v.push_back(c);
  c = make_case(1, 6, 12, 11, 4, 2, 4);  // even kernels, dilation 2: 'same' is symmetric (1, 3)
  c.dh = c.dw = 2, c.ph = 1, c.pw = 3, c.groups = 2, c.bias = true;
  v.push_back(c);
  c = make_case(1, 4, 9, 8, 4, 4, 2);  // kernel 4 'same': top 1, bottom 2; kernel 2: left 0, right 1
  c.ph = 1, c.extra_h = 1, c.pw = 0, c.extra_w = 1;
  v.push_back(c);
  c = make_case(3, 8, 8, 8, 130, 1, 1);
  c.bias = true;
  v.push_back(c);
  c = make_case(2, 70, 6, 6, 66, 3, 3);
  c.ph = c.pw = 1;
  v.push_back(c);
  c = make_case(1, 3, 40, 37, 8, 7, 7);
  c.sh = c.sw = 3, c.ph = c.pw = 3, c.bias = true;
  v.push_back(c);
  c = make_case(8, 16, 32, 32, 16, 3, 3);  // long reduction: split-K weight gradient
  c.ph = c.pw = 1;
  v.push_back(c);
  return v;
}

Tensor random_cpu(const Shape& shape, DType dtype, uint32_t seed, double scale = 1.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd(0.0, scale);
  Tensor t = Tensor::empty(shape, DType::Float64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = nd(gen);
  return to(t, dtype);
}

Tensor poisoned_gpu(const Shape& shape, DType dtype) {
  return to(full(shape, std::numeric_limits<double>::quiet_NaN(), dtype), kGpu);
}

double tolerance(DType t) {
  switch (t) {
    case DType::Float64: return 1e-11;
    case DType::Float32: return 2e-5;
    case DType::Float16: return 4e-3;
    default: return 2e-2;
  }
}

// Max |gpu - cpu| over max(1, max |cpu|); every GPU element must be finite (written).
void expect_close(const Tensor& gpu, const Tensor& cpu, double tol, const std::string& what) {
  ASSERT_EQ(gpu.sizes(), cpu.sizes()) << what;
  Tensor a = contiguous(to(to(gpu, kCpu), DType::Float64)), e = contiguous(to(cpu, DType::Float64));
  const double* pa = a.data<double>();
  const double* pe = e.data<double>();
  double err = 0, mag = 1;
  int64_t bad = -1;
  for (int64_t i = 0; i < a.numel(); ++i) {
    if (!std::isfinite(pa[i])) {
      bad = i;
      break;
    }
    err = std::max(err, std::abs(pa[i] - pe[i]));
    mag = std::max(mag, std::abs(pe[i]));
  }
  ASSERT_EQ(bad, -1) << what << ": element " << bad << " not written (NaN poison left) or not finite";
  EXPECT_LE(err / mag, tol) << what << ": max error " << err << " (largest value " << mag << ")";
}

// Runs the three kernels of `c` in `dtype` on both devices and compares.
// `slack` widens the tolerance (cuDNN's Winograd / FFT algorithms round more loosely).
void run_case(const ConvCase& c, DType dtype, uint32_t seed, double slack = 1.0) {
  const Conv2dParams p = c.params();
  const double wscale = 1.0 / std::sqrt(static_cast<double>(c.C / c.groups * c.kH * c.kW));
  Tensor x = random_cpu({c.N, c.C, c.H, c.W}, dtype, seed);
  Tensor w = random_cpu({c.O, c.C / c.groups, c.kH, c.kW}, dtype, seed + 1, wscale);
  Tensor b = c.bias ? random_cpu({c.O}, dtype, seed + 2) : Tensor();
  Tensor gy = random_cpu({c.N, c.O, c.oH(), c.oW()}, dtype, seed + 3);
  Tensor xg = to(x, kGpu), wg = to(w, kGpu), gyg = to(gy, kGpu);
  Tensor bg = c.bias ? to(b, kGpu) : Tensor();
  const std::string what = c.str() + " " + dtype_name(dtype);
  const double tol = tolerance(dtype) * slack;

  Tensor out_cpu = Tensor::empty({c.N, c.O, c.oH(), c.oW()}, dtype);
  conv2d_forward_kernel.get(kCpu)(out_cpu, x, w, b, p);
  Tensor out_gpu = poisoned_gpu(out_cpu.sizes(), dtype);
  conv2d_forward_kernel.get(kGpu)(out_gpu, xg, wg, bg, p);
  expect_close(out_gpu, out_cpu, tol, "forward " + what);

  Tensor gx_cpu = Tensor::empty(x.sizes(), dtype);
  conv2d_backward_input_kernel.get(kCpu)(gx_cpu, gy, w, p);
  Tensor gx_gpu = poisoned_gpu(x.sizes(), dtype);
  conv2d_backward_input_kernel.get(kGpu)(gx_gpu, gyg, wg, p);
  expect_close(gx_gpu, gx_cpu, tol, "backward_input " + what);

  Tensor gw_cpu = Tensor::empty(w.sizes(), dtype);
  conv2d_backward_weight_kernel.get(kCpu)(gw_cpu, gy, x, p);
  Tensor gw_gpu = poisoned_gpu(w.sizes(), dtype);
  conv2d_backward_weight_kernel.get(kGpu)(gw_gpu, gyg, xg, p);
  // Both sides accumulate in float32 (float64): beyond summation order only the final
  // rounding differs; the weight gradient's long sums (N*oH*oW terms) get twice the margin.
  expect_close(gw_gpu, gw_cpu, 2 * tol, "backward_weight " + what);
}

// Restores the conv backend on scope exit.
struct BackendGuard {
  std::string prev = backend("conv");
  ~BackendGuard() { set_backend("conv", prev); }
};

}  // namespace

TEST(CudaConv, KernelsMatchCpuFloat32) {
  SKIP_WITHOUT_GPU();
  BackendGuard guard;
  set_backend("conv", "ours");
  uint32_t seed = 1;
  for (const ConvCase& c : cases()) run_case(c, DType::Float32, seed += 10);
}

TEST(CudaConv, KernelsMatchCpuFloat64) {
  SKIP_WITHOUT_GPU();
  BackendGuard guard;
  set_backend("conv", "ours");
  uint32_t seed = 2;
  for (const ConvCase& c : cases()) run_case(c, DType::Float64, seed += 10);
}

TEST(CudaConv, KernelsMatchCpuHalfTypes) {
  SKIP_WITHOUT_GPU();
  BackendGuard guard;
  set_backend("conv", "ours");
  uint32_t seed = 3;
  for (DType t : {DType::BFloat16, DType::Float16})
    for (const ConvCase& c : cases()) run_case(c, t, seed += 10);
}

TEST(CudaConv, EmptyBatchWeightGradientIsZero) {
  SKIP_WITHOUT_GPU();
  BackendGuard guard;
  set_backend("conv", "ours");
  ConvCase c = make_case(0, 2, 5, 5, 3, 3, 3);
  Tensor gw = poisoned_gpu({3, 2, 3, 3}, DType::Float32);
  conv2d_backward_weight_kernel.get(kGpu)(gw, Tensor::empty({0, 3, 3, 3}, DType::Float32, kGpu),
                                          Tensor::empty({0, 2, 5, 5}, DType::Float32, kGpu), c.params());
  expect_close(gw, zeros({3, 2, 3, 3}), 0.0, "empty batch grad_weight");
}

TEST(CudaConv, CudnnBackendMatchesCpu) {
  SKIP_WITHOUT_GPU();
  BackendGuard guard;
  set_backend("conv", "cudnn");
  try {
    run_case(make_case(1, 1, 3, 3, 1, 3, 3), DType::Float32, 7);
  } catch (const Error& e) {
    if (std::string(e.what()).find("without cuDNN") != std::string::npos) GTEST_SKIP() << e.what();
    throw;
  }
  uint32_t seed = 4;
  for (DType t : {DType::Float32, DType::BFloat16, DType::Float16, DType::Float64})
    for (const ConvCase& c : cases())  // asymmetric cases fall back to ours
      run_case(c, t, seed += 10, (t == DType::Float32 || t == DType::Float64) ? 50.0 : 1.0);
}
