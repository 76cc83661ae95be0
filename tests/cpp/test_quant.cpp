// int8 quantization ops: the int8 GEMM (AVX2 and portable micro-kernels) exact against a
// naive int64 loop on odd sizes, quantize/dequantize round trips, and argument errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>

#include "core/ops/creation.h"
#include "core/ops/quant.h"
#include "core/ops/view.h"

using namespace bigmodel;

namespace {

// Random int8 values (full range) packed into the Int32 [rows, ceil(k/4)] layout.
Tensor packed_random(int64_t rows, int64_t k, uint32_t seed, std::vector<int8_t>& values) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(-128, 127);
  values.resize(rows * k);
  for (auto& v : values) v = static_cast<int8_t>(dist(gen));
  Tensor t = zeros({rows, int8_words(k)}, DType::Int32);
  auto* bytes = reinterpret_cast<int8_t*>(t.data<int32_t>());
  for (int64_t r = 0; r < rows; ++r) std::memcpy(bytes + r * int8_words(k) * 4, &values[r * k], k);
  return t;
}

void expect_exact(int64_t m, int64_t n, int64_t k) {
  std::vector<int8_t> av, bv;
  Tensor a = packed_random(m, k, 1 + m, av), b = packed_random(n, k, 2 + n, bv);
  Tensor c = int8_gemm(a, b, k);
  ASSERT_EQ(c.dtype(), DType::Int32);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int64_t want = 0;
      for (int64_t p = 0; p < k; ++p) want += int64_t{av[i * k + p]} * bv[j * k + p];
      ASSERT_EQ(c.data<int32_t>()[i * n + j], want)
          << m << "x" << n << "x" << k << " at " << i << "," << j;
    }
}

}  // namespace

TEST(Quant, Int8GemmExactOddSizes) {
  for (auto [m, n, k] :
       {std::array<int64_t, 3>{1, 1, 1}, {7, 17, 13}, {13, 5, 130}, {6, 16, 4}, {25, 33, 257}})
    expect_exact(m, n, k);
}

TEST(Quant, Int8GemmPortableKernelExact) {
  setenv("BIGMODEL_INT8_PORTABLE", "1", 1);
  expect_exact(7, 17, 13);
  expect_exact(19, 3, 66);
  unsetenv("BIGMODEL_INT8_PORTABLE");
}

TEST(Quant, Int8GemmFewRowsExact) {  // M <= 4 reads B as bytes (no packing); k tails of 1..15
  for (auto [m, n, k] : {std::array<int64_t, 3>{1, 21, 1000}, {3, 40, 47}, {4, 17, 16}, {2, 5, 3}})
    expect_exact(m, n, k);
  setenv("BIGMODEL_INT8_PORTABLE", "1", 1);
  expect_exact(3, 40, 47);
  unsetenv("BIGMODEL_INT8_PORTABLE");
}

namespace {

// The fused CPU convolution against the generic im2col + int8 GEMM + NHWC -> NCHW path,
// which the CUDA build uses: the same arithmetic, so the results must be bit-identical.
void expect_conv_matches_im2col(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh,
                                int64_t kw, Conv2dParams p, bool with_bias) {
  const int64_t K = c * kh * kw;
  std::vector<int8_t> wv;
  Tensor wq = packed_random(o, K, 7 + o, wv);
  Tensor x = randn({n, c, h, w});
  Tensor s_in = from_vector<float>({0.03f}, {1});
  std::vector<float> swv(o), bv(o);
  for (int64_t i = 0; i < o; ++i) swv[i] = 0.001f * (i + 1), bv[i] = 0.1f * i - 0.5f;
  Tensor sw = from_vector<float>(swv, {o});
  Tensor bias = with_bias ? from_vector<float>(bv, {o}) : Tensor();
  Tensor got = quantized_conv2d(x, wq, {o, c, kh, kw}, sw, s_in, bias, {p.stride_h, p.stride_w},
                                {p.pad_h, p.pad_w}, {p.dilation_h, p.dilation_w});
  const int64_t oh = (h + 2 * p.pad_h - p.dilation_h * (kh - 1) - 1) / p.stride_h + 1;
  const int64_t ow = (w + 2 * p.pad_w - p.dilation_w * (kw - 1) - 1) / p.stride_w + 1;
  ASSERT_EQ(got.sizes(), (Shape{n, o, oh, ow}));
  Tensor cols = empty({n * oh * ow, int8_words(K)}, DType::Int32);
  int8_im2col_kernel.get(Device())(cols, x, s_in, kh, kw, oh, ow, p);
  Tensor y = int8_gemm_scaled(cols, wq, K, s_in, sw, bias);
  Tensor want = contiguous(permute(reshape(y, {n, oh, ow, o}), {0, 3, 1, 2}));
  for (int64_t i = 0; i < want.numel(); ++i)
    ASSERT_EQ(got.data<float>()[i], want.data<float>()[i])
        << "at " << i << " of " << shape_str(want.sizes());
}

Conv2dParams conv_params(int64_t stride, int64_t pad, int64_t dil, int64_t stride_w = 0) {
  Conv2dParams p;
  p.stride_h = stride, p.stride_w = stride_w ? stride_w : stride, p.pad_h = p.pad_w = pad;
  p.dilation_h = p.dilation_w = dil;
  return p;
}

}  // namespace

TEST(Quant, FusedConv2dMatchesIm2colPath) {
  // Whole and partial 16-position strips and 6-channel tiles, odd K, padding, strides, dilation.
  expect_conv_matches_im2col(2, 4, 11, 11, 13, 3, 3, conv_params(1, 0, 1), true);
  expect_conv_matches_im2col(1, 3, 9, 8, 5, 3, 3, conv_params(2, 1, 1), false);
  expect_conv_matches_im2col(2, 2, 12, 10, 6, 3, 2, conv_params(1, 2, 2), true);
  expect_conv_matches_im2col(1, 5, 7, 9, 7, 1, 1, conv_params(1, 0, 1, 2), true);
  expect_conv_matches_im2col(1, 1, 28, 28, 32, 3, 3, conv_params(1, 0, 1),
                             true);  // the ArticleCNN's conv1
  expect_conv_matches_im2col(1, 2, 3, 3, 4, 3, 3, conv_params(1, 5, 1),
                             true);  // padding wider than the input
  setenv("BIGMODEL_INT8_PORTABLE", "1", 1);
  expect_conv_matches_im2col(2, 4, 11, 11, 13, 3, 3, conv_params(1, 1, 1), true);
  unsetenv("BIGMODEL_INT8_PORTABLE");
}

TEST(Quant, VectorQuantizeMatchesScalar) {  // the AVX2 path rounds ties to even and maps NaN to 0
                                            // as the scalar one
  const float scale = 0.25f;
  std::vector<float> x;
  for (int i = -140; i <= 140; ++i)
    x.push_back(0.125f * i);  // every tie (k + 0.5) * scale, and saturation
  for (float v : {std::nanf(""), INFINITY, -INFINITY, 1e30f, -1e-30f, 0.0f, -0.0f}) x.push_back(v);
  Tensor t = from_vector<float>(x, {1, static_cast<int64_t>(x.size())});
  Tensor s = from_vector<float>({scale}, {1});
  Tensor fast = quantize_int8(t, s);
  setenv("BIGMODEL_INT8_PORTABLE", "1", 1);
  Tensor slow = quantize_int8(t, s);
  unsetenv("BIGMODEL_INT8_PORTABLE");
  const auto* a = reinterpret_cast<const int8_t*>(fast.data<int32_t>());
  const auto* b = reinterpret_cast<const int8_t*>(slow.data<int32_t>());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(a[i], b[i]) << "x = " << x[i];
  EXPECT_EQ(a[141], 0);  // 0.5 steps: ties go to even
  EXPECT_EQ(a[143], 2);  // 1.5
  EXPECT_EQ(a[145], 2);  // 2.5
  EXPECT_EQ(a[139], 0);  // -0.5
  EXPECT_EQ(a[281], 0);  // NaN
  EXPECT_EQ(a[282], 127);
  EXPECT_EQ(a[283], -127);
  // Inexact scales: values at and next to ties, where x * (1 / scale) and x / scale can round
  // apart.
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> u(-40.f, 40.f);
  for (float sc : {0.1f, 0.0371f, 0.3f}) {
    std::vector<float> y;
    for (int k = -130; k <= 130; ++k) {
      const float t = static_cast<float>((k + 0.5) * sc);
      y.insert(y.end(), {t, std::nextafter(t, 1e9f), std::nextafter(t, -1e9f)});
    }
    for (int k = 0; k < 3000; ++k) y.push_back(u(gen));
    Tensor ty = from_vector<float>(y, {1, static_cast<int64_t>(y.size())});
    Tensor sy = from_vector<float>({sc}, {1});
    Tensor f2 = quantize_int8(ty, sy);
    setenv("BIGMODEL_INT8_PORTABLE", "1", 1);
    Tensor s2 = quantize_int8(ty, sy);
    unsetenv("BIGMODEL_INT8_PORTABLE");
    const auto* fa = reinterpret_cast<const int8_t*>(f2.data<int32_t>());
    const auto* sa = reinterpret_cast<const int8_t*>(s2.data<int32_t>());
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_EQ(fa[i], sa[i]) << "x = " << y[i] << ", scale " << sc;
  }
}

TEST(Quant, QuantizeRoundTripWithinHalfStep) {
  std::vector<float> x = {0.3f, -1.2f, 2.54f, 0.0f, 1e-3f, -2.54f, 7.0f};
  Tensor t = from_vector<float>(x, {1, 7});
  const float scale = 0.02f;
  Tensor s = from_vector<float>({scale}, {1});
  Tensor back = dequantize_int8(quantize_int8(t, s), 7, s);
  for (int i = 0; i < 7; ++i) {
    const float clipped = std::max(-127 * scale, std::min(127 * scale, x[i]));
    EXPECT_LE(std::abs(back.data<float>()[i] - clipped), 0.5f * scale * 1.0001f) << i;
  }
  EXPECT_FLOAT_EQ(back.data<float>()[6], 127 * scale);  // saturates
}

TEST(Quant, BadArgumentsThrowNamingTheOp) {
  Tensor a = zeros({2, 2}, DType::Int32);
  EXPECT_THROW(int8_gemm(a, a, 9), ShapeError);
  EXPECT_THROW(int8_gemm(zeros({2, 2}), a, 8), DTypeError);
  EXPECT_THROW(quantize_int8(zeros({2, 3}), from_vector<float>({1.f, 1.f, 1.f}, {3})), ShapeError);
  try {
    int8_gemm(a, a, 9);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[int8_gemm]"), std::string::npos);
  }
}
