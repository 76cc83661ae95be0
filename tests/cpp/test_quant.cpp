// int8 quantization ops: the int8 GEMM (AVX2 and portable micro-kernels) exact against a
// naive int64 loop on odd sizes, quantize/dequantize round trips, and argument errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>

#include "core/ops/creation.h"
#include "core/ops/quant.h"

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
      ASSERT_EQ(c.data<int32_t>()[i * n + j], want) << m << "x" << n << "x" << k << " at " << i << "," << j;
    }
}

}  // namespace

TEST(Quant, Int8GemmExactOddSizes) {
  for (auto [m, n, k] : {std::array<int64_t, 3>{1, 1, 1}, {7, 17, 13}, {13, 5, 130}, {6, 16, 4}, {25, 33, 257}})
    expect_exact(m, n, k);
}

TEST(Quant, Int8GemmPortableKernelExact) {
  setenv("BIGMODEL_INT8_PORTABLE", "1", 1);
  expect_exact(7, 17, 13);
  expect_exact(19, 3, 66);
  unsetenv("BIGMODEL_INT8_PORTABLE");
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
