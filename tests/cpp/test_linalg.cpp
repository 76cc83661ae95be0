// GEMM kernel paths: contiguous, transposed (BLAS Trans flags), packed (no unit stride),
// broadcast batches and every dtype, each against a naive double-precision loop.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/shape_ops.h"
#include "core/ops/view.h"

using namespace bigmodel;

namespace {

// A [rows, cols] float64 tensor of values from a seeded generator (never all zeros).
Tensor random_matrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(-2.0, 2.0);
  std::vector<double> v(rows * cols);
  for (double& x : v) x = dist(gen);
  return from_vector<double>(v, {rows, cols});
}

double at(const Tensor& t, int64_t i, int64_t j) {
  const Tensor d = to(t, DType::Float64);
  return d.data<double>()[i * d.stride(0) + j * d.stride(1)];
}

// c = a @ b by the definition, reading a and b through their strides.
std::vector<double> naive(const Tensor& a, const Tensor& b) {
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  std::vector<double> c(M * N, 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) c[i * N + j] += at(a, i, k) * at(b, k, j);
  return c;
}

void expect_matches(const Tensor& out, const std::vector<double>& ref, double tol) {
  ASSERT_EQ(out.dim(), 2);
  const int64_t N = out.size(1);
  for (int64_t i = 0; i < out.size(0); ++i)
    for (int64_t j = 0; j < N; ++j)
      EXPECT_NEAR(at(out, i, j), ref[i * N + j], tol * (1.0 + std::fabs(ref[i * N + j]))) << i << "," << j;
}

// The same values as `m`, laid out as a transposed view (unit stride on dim 0).
Tensor transposed_view(const Tensor& m) { return transpose(contiguous(transpose(m, 0, 1)), 0, 1); }

// The same values as `m` with no unit stride at all (every other column of a wider matrix).
Tensor gapped_view(const Tensor& m) {
  Tensor wide = zeros({m.size(0), m.size(1) * 2}, m.dtype());
  Tensor even = slice(wide, 1, 0, m.size(1) * 2, 2);
  copy_(even, m);
  return even;
}

}  // namespace

TEST(Gemm, StridedLayoutsMatchNaiveLoop) {
  const int64_t M = 7, K = 5, N = 6;
  Tensor a = random_matrix(M, K, 1), b = random_matrix(K, N, 2);
  const std::vector<double> ref = naive(a, b);
  for (DType dt : {DType::Float32, DType::Float64}) {
    const double tol = dt == DType::Float32 ? 1e-5 : 1e-12;
    Tensor ac = to(a, dt), bc = to(b, dt);
    std::vector<Tensor> as = {ac, transposed_view(ac), gapped_view(ac)};
    std::vector<Tensor> bs = {bc, transposed_view(bc), gapped_view(bc)};
    EXPECT_EQ(as[1].stride(0), 1);
    EXPECT_NE(as[2].stride(1), 1);
    for (const Tensor& x : as)
      for (const Tensor& y : bs) expect_matches(matmul(x, y), ref, tol);
  }
}

TEST(Gemm, HalfAndIntegerTypes) {
  Tensor a = random_matrix(4, 9, 3), b = random_matrix(9, 3, 4);
  for (DType dt : {DType::Float16, DType::BFloat16}) {
    Tensor ah = to(a, dt), bh = to(b, dt);
    const std::vector<double> ref = naive(ah, bh);  // from the rounded inputs
    expect_matches(matmul(transposed_view(ah), bh), ref, dt == DType::Float16 ? 2e-3 : 1e-2);
  }
  for (DType dt : {DType::Int32, DType::Int64}) {
    Tensor ai = to(mul(a, Scalar(10.0)), dt), bi = to(mul(b, Scalar(10.0)), dt);
    expect_matches(matmul(ai, transposed_view(bi)), naive(ai, bi), 0.0);
  }
}

TEST(Gemm, BroadcastBatchesAndShapes) {
  // [3, 4] @ [5, 4, 2] -> [5, 3, 2]: the matrix is shared by every batch (stride 0).
  Tensor a = random_matrix(3, 4, 5);
  Tensor b = reshape(random_matrix(20, 2, 6), {5, 4, 2});
  Tensor out = matmul(a, b);
  ASSERT_EQ(out.sizes(), (Shape{5, 3, 2}));
  for (int64_t i = 0; i < 5; ++i) expect_matches(select(out, 0, i), naive(a, select(b, 0, i)), 1e-12);
  // Vector cases drop the promoted dim.
  Tensor v = reshape(random_matrix(4, 1, 7), {4});
  EXPECT_EQ(matmul(a, v).sizes(), (Shape{3}));
  EXPECT_EQ(matmul(v, b).sizes(), (Shape{5, 2}));
  EXPECT_EQ(matmul(v, v).dim(), 0);
  EXPECT_NEAR(dot(v, v).item().to<double>(), naive(reshape(v, {1, 4}), reshape(v, {4, 1}))[0], 1e-12);
}

TEST(Gemm, BadInputsThrow) {
  Tensor a = zeros({2, 3}), b = zeros({4, 5});
  EXPECT_THROW(matmul(a, b), ShapeError);
  EXPECT_THROW(matmul(a, zeros({3, 2}, DType::Float64)), DTypeError);
  EXPECT_THROW(matmul(zeros({}), a), ValueError);
  EXPECT_THROW(matmul(zeros({2, 2}, DType::Bool), zeros({2, 2}, DType::Bool)), DTypeError);
  try {
    matmul(a, b);
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "[matmul] shapes [2, 3] and [4, 5] cannot be multiplied (3 != 4)");
  }
}

TEST(ShapeOps, CatSplitRoundTrip) {
  Tensor a = random_matrix(3, 4, 8);
  std::vector<Tensor> parts = split(a, std::vector<int64_t>{1, 3}, 1);
  ASSERT_EQ(parts.size(), 2u);
  Tensor back = cat(parts, 1);
  expect_matches(back, naive(a, to(eye(4), DType::Float64)), 1e-12);
  Tensor tri = triu(a, 1);
  EXPECT_EQ(at(tri, 1, 1), 0.0);
  EXPECT_EQ(at(tri, 1, 2), at(a, 1, 2));
  Tensor f = flip(a, {0, 1});
  EXPECT_EQ(at(f, 0, 0), at(a, 2, 3));
}
