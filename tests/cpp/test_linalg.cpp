// GEMM kernel paths: contiguous, transposed (BLAS Trans flags), packed (no unit stride),
// broadcast batches and every dtype, each against a naive double-precision loop; the fused
// linear kernel (bias + activation) likewise.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

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

// linear / linear_act on the CPU's linear_kernel (GEMM, then bias + aux + activation in one
// pass over each row) against the definition, through strided operands and every float dtype.
TEST(Gemm, LinearActFusedMatchesDefinition) {
  const int64_t M = 6, K = 5, N = 7;
  Tensor x = random_matrix(M, K, 8), w = random_matrix(N, K, 9), b = reshape(random_matrix(N, 1, 10), {N});
  for (DType dt : {DType::Float64, DType::Float32, DType::Float16, DType::BFloat16}) {
    const double tol = dt == DType::Float64 ? 1e-12 : dt == DType::Float32 ? 1e-5 : dt == DType::Float16 ? 3e-3 : 2e-2;
    Tensor xc = to(x, dt), wc = to(w, dt), bc = to(b, dt);
    std::vector<double> pre = naive(xc, transpose(wc, 0, 1));  // from the rounded inputs
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) pre[i * N + j] += to(bc, DType::Float64).data<double>()[j];
    for (const char* act : {"none", "relu", "gelu", "gelu_tanh"}) {
      std::vector<double> ref = pre;
      for (double& v : ref) {
        const std::string a = act;
        if (a == "relu") v = v > 0 ? v : 0;
        if (a == "gelu") v = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
        if (a == "gelu_tanh") v = 0.5 * v * (1 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
      }
      for (const Tensor& xv : {xc, transposed_view(xc), gapped_view(xc)}) {
        SCOPED_TRACE(std::string(act) + " " + dtype_name(dt));
        expect_matches(linear_act(xv, wc, bc, act), ref, tol);
        expect_matches(linear_act(xv, transposed_view(wc), bc, act), ref, tol);
      }
      if (std::string(act) == "none") expect_matches(linear(gapped_view(xc), wc, bc), ref, tol);
    }
  }
  EXPECT_THROW(linear_act(x, w, b, "swish"), ValueError);
  EXPECT_THROW(linear_act(x, reshape(w, {N * K}), Tensor(), "relu"), ShapeError);
  EXPECT_THROW(linear_act(x, w, to(b, DType::Float32), "relu"), DTypeError);
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
