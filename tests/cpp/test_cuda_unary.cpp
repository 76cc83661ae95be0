// cuda tier (C++): unary ops forward and backward, where/masked_fill, arange/linspace,
// tril/triu and flip on the GPU against the same ops on the CPU: odd sizes (and one past
// 2^20 for the grid-stride loops), misaligned, transposed and expanded inputs, every dtype
// the CPU accepts. Skips with a printed reason where no GPU is visible; without one, the
// no-GPU error is checked instead.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/cuda_info.h"
#include "core/ops/compare.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/shape_ops.h"
#include "core/ops/unary.h"
#include "core/ops/view.h"
#include "tests/cpp/cuda_test_skip.h"

using namespace bigmodel;

namespace {

const Device kGpu(DeviceType::CUDA, 0);
const DType kFloats[] = {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16};
const int64_t kSizes[] = {1, 7, 33, 1000, 1023};

// Random values in the op's domain: `positive` gives [0.1, 5), otherwise N(0, 2) (integers
// rounded from 20x that). Never zeros.
Tensor random_cpu(const Shape& shape, DType dtype, uint32_t seed, bool positive = false) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd(0.0, 2.0);
  std::uniform_real_distribution<double> ud(0.1, 5.0);
  Tensor t = Tensor::empty(shape, DType::Float64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = positive ? ud(gen) : nd(gen);
    p[i] = dtype == DType::Bool ? (v > 0.0) : (is_floating(dtype) ? v : std::round(v * 20));
  }
  return to(t, dtype);
}

void expect_same_bits(const Tensor& gpu, const Tensor& cpu) {
  ASSERT_TRUE(gpu.device().is_cuda());
  Tensor a = contiguous(to(gpu, Device())), b = contiguous(cpu);
  ASSERT_EQ(a.sizes(), b.sizes());
  ASSERT_EQ(a.dtype(), b.dtype());
  EXPECT_EQ(std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()), 0) << "GPU and CPU bits differ";
}

// |gpu - cpu| <= atol + rtol |cpu| per dtype (CUDA's libm and glibc differ by an ulp or two,
// which half types may round to one of their own ulps); NaN must match NaN.
void expect_close(const Tensor& gpu, const Tensor& cpu) {
  ASSERT_TRUE(gpu.device().is_cuda());
  ASSERT_EQ(gpu.sizes(), cpu.sizes());
  ASSERT_EQ(gpu.dtype(), cpu.dtype());
  if (!is_floating(cpu.dtype())) return expect_same_bits(gpu, cpu);
  double atol = 1e-6, rtol = 1e-5;
  if (cpu.dtype() == DType::Float64) atol = rtol = 1e-12;
  if (cpu.dtype() == DType::Float16) atol = rtol = 1e-3;
  if (cpu.dtype() == DType::BFloat16) atol = rtol = 1e-2;
  Tensor a = contiguous(to(to(gpu, Device()), DType::Float64)), b = contiguous(to(cpu, DType::Float64));
  const double* pa = a.data<double>();
  const double* pb = b.data<double>();
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const bool ok = (std::isnan(pb[i]) && std::isnan(pa[i])) || pa[i] == pb[i] ||
                    std::fabs(pa[i] - pb[i]) <= atol + rtol * std::fabs(pb[i]);
    if (!ok && bad++ == 0) first = i;
  }
  EXPECT_EQ(bad, 0) << bad << " of " << a.numel() << " elements differ; first at " << first << ": gpu "
                    << (first >= 0 ? pa[first] : 0.0) << " cpu " << (first >= 0 ? pb[first] : 0.0);
}

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> fn;
  bool positive;  // domain (0, inf)
  bool ints;      // also defined on int32/int64
};

const std::vector<UnaryCase>& unary_cases() {
  static const std::vector<UnaryCase> cases = {
      {"neg", [](const Tensor& x) { return neg(x); }, false, true},
      {"abs", [](const Tensor& x) { return abs(x); }, false, true},
      {"sign", [](const Tensor& x) { return sign(x); }, false, true},
      {"relu", [](const Tensor& x) { return relu(x); }, false, true},
      {"square", [](const Tensor& x) { return square(x); }, false, true},
      {"clamp", [](const Tensor& x) { return clamp(x, Scalar(int64_t{-1}), Scalar(int64_t{2})); }, false, true},
      {"clamp_min", [](const Tensor& x) { return clamp_min(x, Scalar(int64_t{-1})); }, false, true},
      {"clamp_max", [](const Tensor& x) { return clamp_max(x, Scalar(int64_t{1})); }, false, true},
      {"exp", [](const Tensor& x) { return exp(x); }, false, false},
      {"log", [](const Tensor& x) { return log(x); }, true, false},
      {"log1p", [](const Tensor& x) { return log1p(x); }, true, false},
      {"expm1", [](const Tensor& x) { return expm1(x); }, false, false},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, true, false},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, true, false},
      {"sin", [](const Tensor& x) { return sin(x); }, false, false},
      {"cos", [](const Tensor& x) { return cos(x); }, false, false},
      {"tanh", [](const Tensor& x) { return tanh(x); }, false, false},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, false, false},
      {"erf", [](const Tensor& x) { return erf(x); }, false, false},
      {"reciprocal", [](const Tensor& x) { return reciprocal(x); }, true, false},
      {"gelu", [](const Tensor& x) { return gelu(x); }, false, false},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); }, false, false},
      {"silu", [](const Tensor& x) { return silu(x); }, false, false},
      {"softplus", [](const Tensor& x) { return softplus(x, 2.0, 3.0); }, false, false},
      {"floor", [](const Tensor& x) { return floor(x); }, false, false},
      {"ceil", [](const Tensor& x) { return ceil(x); }, false, false},
      {"round", [](const Tensor& x) { return round(mul(x, Scalar(4.0))); }, false, false},  // many .5 ties
      {"trunc", [](const Tensor& x) { return trunc(x); }, false, false},
  };
  return cases;
}

TEST(CudaUnary, EveryOpEveryDtypeOddSizes) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 1;
  for (const UnaryCase& c : unary_cases()) {
    std::vector<DType> dtypes(std::begin(kFloats), std::end(kFloats));
    if (c.ints) dtypes.insert(dtypes.end(), {DType::Int32, DType::Int64});
    for (DType dt : dtypes) {
      for (int64_t n : kSizes) {
        SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dt) + " n=" + std::to_string(n));
        Tensor x = random_cpu({n}, dt, seed++, c.positive);
        Tensor g = to(x, kGpu);
        expect_close(c.fn(g), c.fn(x));
        if (n > 1) expect_close(c.fn(slice(g, 0, 1, n)), c.fn(slice(x, 0, 1, n)));  // misaligned: strided path
      }
    }
  }
}

TEST(CudaUnary, IntegerInputsToFloatOpsGiveFloat32) {
  SKIP_WITHOUT_GPU();
  Tensor x = random_cpu({1023}, DType::Int32, 5, true);
  Tensor g = to(x, kGpu);
  Tensor r = exp(mul(g, Scalar(0.01)));
  EXPECT_EQ(r.dtype(), DType::Float32);
  expect_close(r, exp(mul(x, Scalar(0.01))));
  expect_close(sqrt(g), sqrt(x));
  expect_close(clamp(g, Scalar(0.5), Scalar(30.5)), clamp(x, Scalar(0.5), Scalar(30.5)));  // float bounds: float32
}

TEST(CudaUnary, NonContiguousAndExpandedInputs) {
  SKIP_WITHOUT_GPU();
  for (DType dt : kFloats) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random_cpu({33, 31}, dt, 11);
    Tensor g = to(x, kGpu);
    Tensor row = random_cpu({1, 31}, dt, 12);
    for (const UnaryCase& c : unary_cases()) {
      if (c.positive) continue;
      SCOPED_TRACE(c.name);
      expect_close(c.fn(transpose(g, 0, 1)), c.fn(transpose(x, 0, 1)));
      expect_close(c.fn(slice(g, 1, 0, 31, 3)), c.fn(slice(x, 1, 0, 31, 3)));
      expect_close(c.fn(expand(to(row, kGpu), {7, 31})), c.fn(expand(row, {7, 31})));  // stride-0 dim
    }
  }
}

TEST(CudaUnary, LargeSizeExercisesGridStride) {
  SKIP_WITHOUT_GPU();
  const int64_t n = (int64_t{1} << 24) + 37;  // > 65536 blocks x 256 threads x 1 element
  Tensor x = random_cpu({n}, DType::Float32, 21);
  Tensor g = to(x, kGpu);
  expect_close(sigmoid(g), sigmoid(x));
  expect_close(neg(slice(g, 0, 1, n)), neg(slice(x, 0, 1, n)));
  Tensor h = to(x, DType::Float16);
  expect_close(exp(to(h, kGpu)), exp(h));
}

TEST(CudaUnary, PredicatesLogicalAndBitwise) {
  SKIP_WITHOUT_GPU();
  for (DType dt : kFloats) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random_cpu({1000}, dt, 31);
    // Put inf, -inf and nan in: log of a negative is nan, 1/0 would be inf.
    Tensor special = to(from_vector(std::vector<double>{INFINITY, -INFINITY, NAN, 1.5, -0.0}, Shape{5}), dt);
    for (const Tensor& t : {x, special}) {
      Tensor g = to(t, kGpu);
      expect_same_bits(isnan(g), isnan(t));
      expect_same_bits(isinf(g), isinf(t));
      expect_same_bits(isfinite(g), isfinite(t));
    }
  }
  Tensor b = random_cpu({1023}, DType::Bool, 32);
  expect_same_bits(logical_not(to(b, kGpu)), logical_not(b));
  expect_same_bits(bitwise_not(to(b, kGpu)), bitwise_not(b));
  for (DType dt : {DType::Int32, DType::Int64}) {
    Tensor i = random_cpu({1023}, dt, 33);
    expect_same_bits(bitwise_not(to(i, kGpu)), bitwise_not(i));
    expect_same_bits(logical_not(to(i, kGpu)), logical_not(i));
  }
}

TEST(CudaUnary, InPlaceFormsMatchCpu) {
  SKIP_WITHOUT_GPU();
  for (DType dt : kFloats) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random_cpu({33, 31}, dt, 41);
    Tensor g = to(x, kGpu);
    Tensor xt = transpose(x, 0, 1), gt = transpose(g, 0, 1);  // in place on a strided view
    exp_(xt);
    exp_(gt);
    expect_close(g, x);
    Tensor xs = slice(x, 1, 1, 31), gs = slice(g, 1, 1, 31);
    clamp_(xs, Scalar(0.5), Scalar(2.0));
    clamp_(gs, Scalar(0.5), Scalar(2.0));
    expect_close(g, x);
  }
}

// d(sum(op(x) * w))/dx on the GPU against the CPU, through autograd (the backward kernel).
TEST(CudaUnaryBackward, EveryDifferentiableOpMatchesCpu) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 100;
  for (const UnaryCase& c : unary_cases()) {
    for (DType dt : kFloats) {
      for (int64_t n : {7, 1023}) {
        SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dt) + " n=" + std::to_string(n));
        Tensor x = random_cpu({n}, dt, seed++, c.positive);
        Tensor w = random_cpu({n}, dt, seed++);
        Tensor xc = clone(x), xg = to(x, kGpu).detach();
        xc.set_requires_grad(true);
        xg.set_requires_grad(true);
        c.fn(xc).backward(w);
        c.fn(xg).backward(to(w, kGpu));
        ASSERT_TRUE(xg.grad().defined());
        expect_close(xg.grad(), xc.grad());
      }
    }
  }
}

TEST(CudaUnaryBackward, NonContiguousGradient) {
  SKIP_WITHOUT_GPU();
  Tensor x = random_cpu({31, 33}, DType::Float32, 200);
  Tensor w = random_cpu({33, 31}, DType::Float32, 201);
  Tensor xc = clone(x), xg = to(x, kGpu).detach();
  xc.set_requires_grad(true);
  xg.set_requires_grad(true);
  transpose(gelu(xc), 0, 1).backward(w);  // the gradient arriving at gelu is transposed
  transpose(gelu(xg), 0, 1).backward(to(w, kGpu));
  expect_close(xg.grad(), xc.grad());
}

TEST(CudaWhere, AllDtypesBroadcastAndMaskedFill) {
  SKIP_WITHOUT_GPU();
  const DType all[] = {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16,
                       DType::Int32,   DType::Int64,   DType::Bool};
  uint32_t seed = 300;
  for (DType dt : all) {
    for (int64_t n : kSizes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " n=" + std::to_string(n));
      Tensor c = random_cpu({n}, DType::Bool, seed++), a = random_cpu({n}, dt, seed++), b = random_cpu({n}, dt, seed++);
      expect_same_bits(where(to(c, kGpu), to(a, kGpu), to(b, kGpu)), where(c, a, b));
    }
    Tensor c = random_cpu({7, 1, 5}, DType::Bool, seed++);
    Tensor a = random_cpu({33, 5}, dt, seed++), b = random_cpu({7, 33, 1}, dt, seed++);
    expect_same_bits(where(to(c, kGpu), to(a, kGpu), to(b, kGpu)), where(c, a, b));  // three-way broadcast
    Tensor at = transpose(random_cpu({5, 33}, dt, seed++), 0, 1);
    expect_same_bits(where(to(c, kGpu), to(at, kGpu), to(b, kGpu)), where(c, at, b));
    Tensor m = random_cpu({33, 5}, DType::Bool, seed++);
    expect_same_bits(masked_fill(to(a, kGpu), to(m, kGpu), Scalar(int64_t{1})), masked_fill(a, m, Scalar(int64_t{1})));
    Tensor ac = clone(a), ag = to(a, kGpu);
    masked_fill_(ac, m, Scalar(int64_t{0}));
    masked_fill_(ag, to(m, kGpu), Scalar(int64_t{0}));  // out aliases the input
    expect_same_bits(ag, ac);
  }
  const int64_t big = (int64_t{1} << 22) + 5;
  Tensor c = random_cpu({big}, DType::Bool, 1), a = random_cpu({big}, DType::Float32, 2);
  expect_same_bits(where(to(c, kGpu), to(a, kGpu), Scalar(-1.0)), where(c, a, Scalar(-1.0)));
}

TEST(CudaRange, ArangeAndLinspaceBitwise) {
  SKIP_WITHOUT_GPU();
  const DType numeric[] = {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int32, DType::Int64};
  for (DType dt : numeric) {
    SCOPED_TRACE(dtype_name(dt));
    expect_same_bits(arange(Scalar(int64_t{1023}), dt, kGpu), arange(Scalar(int64_t{1023}), dt));
    expect_same_bits(arange(Scalar(int64_t{-7}), Scalar(int64_t{1000}), Scalar(int64_t{3}), dt, kGpu),
                     arange(Scalar(int64_t{-7}), Scalar(int64_t{1000}), Scalar(int64_t{3}), dt));
    expect_same_bits(arange(Scalar(0.1), Scalar(33.3), Scalar(0.37), dt, kGpu),
                     arange(Scalar(0.1), Scalar(33.3), Scalar(0.37), dt));
    for (int64_t n : {1, 2, 7, 33, 1000, 1023}) {
      expect_same_bits(linspace(-3.3, 17.1, n, dt, kGpu), linspace(-3.3, 17.1, n, dt));
      expect_same_bits(linspace(5.0, -1.0, n, dt, kGpu), linspace(5.0, -1.0, n, dt));
    }
  }
  const int64_t big = (int64_t{1} << 24) + 3;
  expect_same_bits(arange(Scalar(int64_t{0}), Scalar(big), Scalar(int64_t{1}), DType::Int64, kGpu),
                   arange(Scalar(int64_t{0}), Scalar(big), Scalar(int64_t{1}), DType::Int64));
  expect_same_bits(linspace(0.0, 1.0, big, DType::Float32, kGpu), linspace(0.0, 1.0, big, DType::Float32));
}

TEST(CudaShapeOps, TrilTriuAndFlip) {
  SKIP_WITHOUT_GPU();
  const DType all[] = {DType::Float32, DType::Float64, DType::Float16, DType::Int32, DType::Int64, DType::Bool};
  uint32_t seed = 400;
  for (DType dt : all) {
    SCOPED_TRACE(dtype_name(dt));
    for (const Shape& s : {Shape{1, 1}, Shape{7, 33}, Shape{33, 7}, Shape{3, 5, 1000}, Shape{2, 1023, 3}}) {
      Tensor x = random_cpu(s, dt, seed++);
      Tensor g = to(x, kGpu);
      for (int64_t d : {-40, -2, 0, 1, 5, 1100}) {
        expect_same_bits(tril(g, d), tril(x, d));
        expect_same_bits(triu(g, d), triu(x, d));
      }
      expect_same_bits(tril(transpose(g, -1, -2), 1), tril(transpose(x, -1, -2), 1));  // strided input
      expect_same_bits(flip(g, {0}), flip(x, {0}));
      expect_same_bits(flip(g, {-1}), flip(x, {-1}));
      expect_same_bits(flip(g, {0, -1}), flip(x, {0, -1}));
      expect_same_bits(flip(transpose(g, 0, -1), {0}), flip(transpose(x, 0, -1), {0}));
    }
    Tensor x = random_cpu({4, 1, 5, 6}, dt, seed++);
    expect_same_bits(flip(slice(to(x, kGpu), 3, 1, 6, 2), {1, 3}), flip(slice(x, 3, 1, 6, 2), {1, 3}));
    Tensor s = random_cpu({}, dt, seed++);
    expect_same_bits(flip(to(s, kGpu), {0}), flip(s, {0}));
  }
  Tensor big = random_cpu({(1 << 11) + 1, 1 << 10}, DType::Float32, 1);
  expect_same_bits(triu(to(big, kGpu), 3), triu(big, 3));
  expect_same_bits(flip(to(big, kGpu), {0, 1}), flip(big, {0, 1}));
}

TEST(CudaNoGpu, ElementwiseOpsOnCudaRaiseDeviceError) {
  if (cuda::is_available()) GTEST_SKIP() << "a GPU is visible: the no-GPU path cannot be observed";
  auto expect_clean = [](const std::function<void()>& f) {
    try {
      f();
      ADD_FAILURE() << "expected DeviceError";
    } catch (const DeviceError& e) {
      std::string msg = e.what();
      EXPECT_TRUE(msg.find("no CUDA device is visible") != std::string::npos ||
                  msg.find("built without CUDA") != std::string::npos)
          << msg;
    }
  };
  expect_clean([] { exp(to(ones({3}), kGpu)); });
  expect_clean([] { arange(Scalar(int64_t{5}), std::nullopt, kGpu); });
  expect_clean([] { linspace(0.0, 1.0, 5, DType::Float32, kGpu); });
  expect_clean([] { rand({3}, DType::Float32, kGpu); });
  expect_clean([] { randn({3}, DType::Float32, kGpu); });
  expect_clean([] { randperm(5, DType::Int64, kGpu); });
  expect_clean([] { dropout_mask({4}, 0.5, DType::Float32, kGpu); });
}

}  // namespace
